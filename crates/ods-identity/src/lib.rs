//! Identity and privacy at the edge of `ods`.
//!
//! * [`BigNumber`] and [`Pseudonymizer`]: the reporting doctor's BIG number (11 digits) is turned
//!   into a [`ods_model::ReporterPseudonym`] with a keyed HMAC-SHA-256 before anything leaves
//!   intake. The key is held by intake only ([`PseudonymKey`]); its `Debug` output is redacted and
//!   it is never logged. Without the key a pseudonym cannot be linked back to a BIG number, even
//!   by trying all 10^11 numbers.
//! * [`TokenStore`]: opaque random bearer tokens with a [`Role`], stored only as SHA-256 hashes in
//!   a SQLite file, so `ods tokens create|list|revoke` work against the data directory while the
//!   server runs.

mod pseudonym;
mod tokens;

pub use pseudonym::{BigNumber, BigNumberError, PseudonymKey, PseudonymKeyError, Pseudonymizer};
pub use tokens::{Principal, Role, TokenError, TokenInfo, TokenStore};
