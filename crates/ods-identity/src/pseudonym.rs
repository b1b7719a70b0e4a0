use std::fmt;
use std::path::Path;

use hmac::{Hmac, Mac};
use ods_model::ReporterPseudonym;
use rand::RngCore;
use sha2::Sha256;

/// A BIG number (Dutch register of healthcare professionals): exactly 11 digits.
///
/// Its `Debug` and `Display` never show the number, so it cannot leak into logs by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct BigNumber(String);

/// A text that is not a BIG number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a BIG number has exactly 11 digits (got {len} characters{kind})")]
pub struct BigNumberError {
    len: usize,
    kind: &'static str,
}

impl BigNumber {
    /// Parses 11 digits; surrounding white space is ignored.
    pub fn parse(text: &str) -> Result<Self, BigNumberError> {
        let text = text.trim();
        if text.len() == 11 && text.bytes().all(|b| b.is_ascii_digit()) {
            Ok(BigNumber(text.to_string()))
        } else {
            Err(BigNumberError {
                len: text.chars().count(),
                kind: if text.bytes().all(|b| b.is_ascii_digit()) {
                    ""
                } else {
                    ", not all digits"
                },
            })
        }
    }
}

impl fmt::Debug for BigNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BigNumber(<redacted>)")
    }
}

impl fmt::Display for BigNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<BIG redacted>")
    }
}

/// The secret key of the pseudonymisation (32 bytes). `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct PseudonymKey([u8; 32]);

/// A key that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PseudonymKeyError {
    /// Not 64 hex characters.
    #[error("the pseudonym key must be 64 hex characters (32 bytes); got {0} characters")]
    Malformed(usize),
    /// The key file cannot be read or written.
    #[error("pseudonym key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

impl PseudonymKey {
    /// Parses 64 hex characters.
    pub fn from_hex(text: &str) -> Result<Self, PseudonymKeyError> {
        let text = text.trim();
        let bytes = hex::decode(text).map_err(|_| PseudonymKeyError::Malformed(text.len()))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| PseudonymKeyError::Malformed(text.len()))?;
        Ok(PseudonymKey(key))
    }

    /// A new random key.
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        PseudonymKey(key)
    }

    /// Reads the key from `path`, creating the file with a new random key (mode 0600) when it
    /// does not exist yet.
    pub fn load_or_create(path: &Path) -> Result<Self, PseudonymKeyError> {
        let io = |source| PseudonymKeyError::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_hex(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                write_private(path, &hex::encode(key.0)).map_err(io)?;
                Ok(key)
            }
            Err(e) => Err(io(e)),
        }
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

impl fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PseudonymKey(<redacted>)")
    }
}

/// Computes reporter pseudonyms: the first 128 bits of HMAC-SHA-256(key, "ods-reporter-v1:" + BIG),
/// hex encoded. Deterministic per key, so one doctor keeps one pseudonym across notifications.
#[derive(Clone, Debug)]
pub struct Pseudonymizer {
    key: PseudonymKey,
}

impl Pseudonymizer {
    /// A pseudonymizer with this key.
    pub fn new(key: PseudonymKey) -> Self {
        Pseudonymizer { key }
    }

    /// The pseudonym of a BIG number.
    pub fn pseudonym(&self, big: &BigNumber) -> ReporterPseudonym {
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(&self.key.0) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts keys of any length"),
        };
        mac.update(b"ods-reporter-v1:");
        mac.update(big.0.as_bytes());
        let digest = mac.finalize().into_bytes();
        let hex = hex::encode(&digest[..ReporterPseudonym::HEX_LEN / 2]);
        match ReporterPseudonym::from_hex(&hex) {
            Some(p) => p,
            None => unreachable!("hex::encode yields lowercase hex of the right length"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_numbers_are_eleven_digits_and_never_printed() {
        let big = BigNumber::parse(" 19012345601 ").unwrap();
        assert!(!format!("{big:?} {big}").contains("19012345601"));
        assert!(BigNumber::parse("1901234560").is_err());
        assert!(BigNumber::parse("1901234560a").is_err());
    }

    #[test]
    fn pseudonyms_depend_on_key_and_number_only() {
        let key = PseudonymKey::from_hex(&"ab".repeat(32)).unwrap();
        let p = Pseudonymizer::new(key.clone());
        let a = BigNumber::parse("19012345601").unwrap();
        let b = BigNumber::parse("19012345602").unwrap();
        assert_eq!(p.pseudonym(&a), Pseudonymizer::new(key).pseudonym(&a));
        assert_ne!(p.pseudonym(&a), p.pseudonym(&b));
        let other = Pseudonymizer::new(PseudonymKey::from_hex(&"cd".repeat(32)).unwrap());
        assert_ne!(p.pseudonym(&a), other.pseudonym(&a));
        assert!(!p.pseudonym(&a).as_str().contains("19012345601"));
    }

    #[test]
    fn key_file_is_created_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/pseudonym.key");
        let first = PseudonymKey::load_or_create(&path).unwrap();
        let second = PseudonymKey::load_or_create(&path).unwrap();
        assert_eq!(first, second);
        assert!(!format!("{first:?}").contains(&hex::encode(first.0)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
