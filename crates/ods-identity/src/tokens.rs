use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use ods_model::{Affiliation, ReporterPseudonym};
use rand::RngCore;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A company doctor: files and manages own notifications.
    Reporter,
    /// An inspectorate analyst: national statistics and signals.
    Analyst,
    /// A sector fund: aggregated statistics of its own sectors only.
    SectorFund,
    /// Administrator: everything, including other doctors' notifications.
    Admin,
}

impl Role {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reporter => "reporter",
            Role::Analyst => "analyst",
            Role::SectorFund => "sector_fund",
            Role::Admin => "admin",
        }
    }

    /// Parses the stable name.
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "reporter" => Some(Role::Reporter),
            "analyst" => Some(Role::Analyst),
            "sector_fund" => Some(Role::SectorFund),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// The authenticated caller behind a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A doctor, known only by pseudonym, with the service their token is bound to.
    Reporter {
        /// Pseudonym of the BIG number.
        pseudonym: ReporterPseudonym,
        /// Bound service or self-employed.
        affiliation: Affiliation,
    },
    /// An analyst.
    Analyst,
    /// A sector fund bound to sector codes.
    SectorFund {
        /// Sector codes (SBI sections or finer) the fund may see.
        sectors: Vec<String>,
    },
    /// An administrator.
    Admin,
}

impl Principal {
    /// The role.
    pub fn role(&self) -> Role {
        match self {
            Principal::Reporter { .. } => Role::Reporter,
            Principal::Analyst => Role::Analyst,
            Principal::SectorFund { .. } => Role::SectorFund,
            Principal::Admin => Role::Admin,
        }
    }
}

/// A token as listed (never the secret).
#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    /// Public id of the token (also its prefix).
    pub id: String,
    /// Role.
    pub role: Role,
    /// Free label for administrators (no personal data).
    pub label: String,
    /// Service or `self_employed` for reporters.
    pub service: Option<String>,
    /// Sectors of a sector fund.
    pub sectors: Vec<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Failures of the token store.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The database failed.
    #[error("token store {path}: {source}")]
    Database {
        /// The database file.
        path: String,
        /// The error.
        source: rusqlite::Error,
    },
    /// A stored row is corrupt.
    #[error("token store: token {id} has an invalid stored value: {what}")]
    Corrupt {
        /// Token id.
        id: String,
        /// What is wrong.
        what: String,
    },
    /// No such token.
    #[error("no token with id '{0}'")]
    NotFound(String),
    /// A sector fund token without sectors.
    #[error("a sector_fund token needs at least one sector code")]
    NoSectors,
}

/// Bearer tokens stored as SHA-256 hashes in SQLite (WAL mode, safe for concurrent CLI and
/// server processes).
///
/// Authentication keeps the tokens it has resolved in memory, valid as long as SQLite's
/// `data_version` of the database does not change: any commit by another connection (an
/// `ods tokens revoke` in another process) or by this store empties the cache, so a revocation
/// takes effect on the next request while the common case costs no query.
pub struct TokenStore {
    path: String,
    conn: Mutex<Connection>,
    cache: Mutex<TokenCache>,
}

/// Resolved tokens by hash, valid for one `data_version` of the database.
#[derive(Default)]
struct TokenCache {
    data_version: i64,
    entries: std::collections::HashMap<Vec<u8>, (String, Principal)>,
}

/// How long a token lookup waits for a lock held by another connection.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The most resolved tokens kept in memory; the cache starts over when full.
const TOKEN_CACHE_MAX: usize = 10_000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE,
    role TEXT NOT NULL,
    reporter_pseudonym TEXT,
    service TEXT,
    sectors TEXT,
    label TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);";

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

impl TokenStore {
    /// Opens (creating if needed) the token database at `path`.
    pub fn open(path: &Path) -> Result<Self, TokenError> {
        let name = path.display().to_string();
        let db = |source| TokenError::Database {
            path: name.clone(),
            source,
        };
        let conn = Connection::open(path).map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        Ok(TokenStore {
            path: name,
            conn: Mutex::new(conn),
            cache: Mutex::new(TokenCache::default()),
        })
    }

    fn forget_cached(&self) {
        let mut cache = match self.cache.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        cache.entries.clear();
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, TokenError> {
        let conn = match self.conn.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&conn).map_err(|source| TokenError::Database {
            path: self.path.clone(),
            source,
        })
    }

    /// Creates a token for `principal` and returns the secret token text. Only its hash is stored.
    pub fn create(&self, principal: &Principal, label: &str) -> Result<String, TokenError> {
        let mut id_bytes = [0u8; 6];
        let mut secret = [0u8; 24];
        rand::rng().fill_bytes(&mut id_bytes);
        rand::rng().fill_bytes(&mut secret);
        let id = hex::encode(id_bytes);
        let token = format!("ods_{id}_{}", hex::encode(secret));
        let (pseudonym, service, sectors) = match principal {
            Principal::Reporter {
                pseudonym,
                affiliation,
            } => (
                Some(pseudonym.to_string()),
                Some(affiliation.label().to_string()),
                None,
            ),
            Principal::SectorFund { sectors } if sectors.is_empty() => {
                return Err(TokenError::NoSectors)
            }
            Principal::SectorFund { sectors } => (None, None, Some(sectors.join(","))),
            Principal::Analyst | Principal::Admin => (None, None, None),
        };
        self.with(|c| {
            c.execute(
                "INSERT INTO tokens (id, hash, role, reporter_pseudonym, service, sectors, label, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    id,
                    hash(&token),
                    principal.role().as_str(),
                    pseudonym,
                    service,
                    sectors,
                    label,
                    Utc::now().to_rfc3339()
                ],
            )
        })?;
        // a new token invalidates no cached answer (only resolved tokens are cached)
        Ok(token)
    }

    /// The principal of a valid, unrevoked token; `None` for anything else.
    pub fn authenticate(&self, token: &str) -> Result<Option<Principal>, TokenError> {
        Ok(self
            .authenticate_with_id(token)?
            .map(|(_, principal)| principal))
    }

    /// The answer of [`TokenStore::authenticate_with_id`] when it is at hand without waiting: the
    /// token was resolved before and the database has not changed since (one `PRAGMA
    /// data_version`, microseconds). `None` when the store would have to look the token up, or
    /// another caller is using the connection: ask [`TokenStore::authenticate_with_id`] then (on
    /// a blocking thread). Lets an async caller answer the common case on its own thread.
    pub fn authenticate_if_cached(&self, token: &str) -> Option<(String, Principal)> {
        if token.len() > 128 {
            return None;
        }
        let conn = self.conn.try_lock().ok()?;
        // The pragma starts a read transaction, which in WAL mode waits only in rare cases (another
        // connection recovering the WAL after a crash); the caller's thread must not wait then.
        conn.busy_timeout(std::time::Duration::ZERO).ok()?;
        let data_version = conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut stmt| stmt.query_row([], |r| r.get::<_, i64>(0)));
        conn.busy_timeout(BUSY_TIMEOUT).ok()?;
        let data_version = data_version.ok()?;
        let cache = self.cache.lock().ok()?;
        if cache.data_version != data_version {
            return None;
        }
        cache.entries.get(&hash(token)).cloned()
    }

    /// Like [`TokenStore::authenticate`], with the token's public id (for per-token limits).
    pub fn authenticate_with_id(
        &self,
        token: &str,
    ) -> Result<Option<(String, Principal)>, TokenError> {
        if token.len() > 128 {
            return Ok(None);
        }
        let digest = hash(token);
        let (data_version, row) = self.with(|c| {
            let data_version: i64 = c
                .prepare_cached("PRAGMA data_version")?
                .query_row([], |r| r.get(0))?;
            {
                let mut cache = match self.cache.lock() {
                    Ok(guard) => guard,
                    Err(poisoned) => poisoned.into_inner(),
                };
                if cache.data_version != data_version {
                    cache.entries.clear();
                    cache.data_version = data_version;
                }
                if let Some(found) = cache.entries.get(&digest) {
                    return Ok((data_version, Err(found.clone())));
                }
            }
            let row = c
                .prepare_cached(
                    "SELECT id, role, reporter_pseudonym, service, sectors FROM tokens
                     WHERE hash = ?1 AND revoked_at IS NULL",
                )?
                .query_row(params![digest], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, Option<String>>(4)?,
                    ))
                })
                .optional()?;
            Ok((data_version, Ok(row)))
        })?;
        let row = match row {
            Err(cached) => return Ok(Some(cached)),
            Ok(row) => row,
        };
        let Some((id, role, pseudonym, service, sectors)) = row else {
            return Ok(None);
        };
        let corrupt = |what: &str| TokenError::Corrupt {
            id: id.clone(),
            what: what.to_string(),
        };
        let principal = match Role::parse(&role).ok_or_else(|| corrupt("role"))? {
            Role::Reporter => Principal::Reporter {
                pseudonym: pseudonym
                    .as_deref()
                    .and_then(ReporterPseudonym::from_hex)
                    .ok_or_else(|| corrupt("reporter_pseudonym"))?,
                affiliation: match service.as_deref() {
                    None => return Err(corrupt("service")),
                    Some("self_employed") => Affiliation::SelfEmployed,
                    Some(s) => Affiliation::Service(s.to_string()),
                },
            },
            Role::Analyst => Principal::Analyst,
            Role::SectorFund => Principal::SectorFund {
                sectors: sectors
                    .unwrap_or_default()
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
            },
            Role::Admin => Principal::Admin,
        };
        let mut cache = match self.cache.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        // A commit elsewhere since the lookup makes this answer stale: keep it out of the cache.
        if cache.data_version == data_version {
            if cache.entries.len() >= TOKEN_CACHE_MAX {
                cache.entries.clear();
            }
            cache
                .entries
                .insert(digest, (id.clone(), principal.clone()));
        }
        Ok(Some((id, principal)))
    }

    /// All tokens, newest first, without secrets.
    pub fn list(&self) -> Result<Vec<TokenInfo>, TokenError> {
        let rows = self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT id, role, label, service, sectors, created_at, revoked_at FROM tokens ORDER BY created_at DESC, id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, Option<String>>(6)?,
                ))
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        rows.into_iter()
            .map(|(id, role, label, service, sectors, created, revoked)| {
                let time = |t: &str| {
                    DateTime::parse_from_rfc3339(t)
                        .map(|d| d.with_timezone(&Utc))
                        .map_err(|_| TokenError::Corrupt {
                            id: id.clone(),
                            what: "timestamp".into(),
                        })
                };
                Ok(TokenInfo {
                    role: Role::parse(&role).ok_or_else(|| TokenError::Corrupt {
                        id: id.clone(),
                        what: "role".into(),
                    })?,
                    label,
                    service,
                    sectors: sectors
                        .map(|s| s.split(',').map(str::to_string).collect())
                        .unwrap_or_default(),
                    created_at: time(&created)?,
                    revoked_at: revoked.as_deref().map(time).transpose()?,
                    id,
                })
            })
            .collect()
    }

    /// The pseudonyms of the doctors with an unrevoked reporter token: the registered reporters
    /// (for participation statistics; never shown).
    pub fn registered_reporters(&self) -> Result<std::collections::BTreeSet<String>, TokenError> {
        let rows = self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT DISTINCT reporter_pseudonym FROM tokens
                 WHERE role = 'reporter' AND revoked_at IS NULL AND reporter_pseudonym IS NOT NULL",
            )?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect::<rusqlite::Result<std::collections::BTreeSet<_>>>()
        })?;
        Ok(rows)
    }

    /// Revokes a token by id (or by the full token text); it stops working at once.
    pub fn revoke(&self, id_or_token: &str) -> Result<(), TokenError> {
        let id = id_or_token
            .strip_prefix("ods_")
            .and_then(|rest| rest.split('_').next())
            .unwrap_or(id_or_token)
            .to_string();
        let changed = self.with(|c| {
            c.execute(
                "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                params![id, Utc::now().to_rfc3339()],
            )
        })?;
        self.forget_cached();
        if changed == 0 {
            return Err(TokenError::NotFound(id));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reporter() -> Principal {
        Principal::Reporter {
            pseudonym: ReporterPseudonym::from_hex(&"0f".repeat(16)).unwrap(),
            affiliation: Affiliation::Service("AD0001".into()),
        }
    }

    #[test]
    fn tokens_authenticate_until_revoked_and_only_hashes_are_stored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.sqlite");
        let store = TokenStore::open(&path).unwrap();
        let token = store.create(&reporter(), "dr test").unwrap();
        assert_eq!(store.authenticate(&token).unwrap(), Some(reporter()));
        assert_eq!(store.authenticate("ods_nope").unwrap(), None);
        let listed = store.list().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].service.as_deref(), Some("AD0001"));
        // a second process sees the same tokens
        let other = TokenStore::open(&path).unwrap();
        assert!(other.authenticate(&token).unwrap().is_some());
        other.revoke(&listed[0].id).unwrap();
        assert_eq!(store.authenticate(&token).unwrap(), None);
        assert!(matches!(
            store.revoke(&listed[0].id),
            Err(TokenError::NotFound(_))
        ));
        drop((store, other));
        let bytes = std::fs::read(&path).unwrap();
        let secret = token.rsplit('_').next().unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains(secret));
    }

    #[test]
    fn a_cached_token_stops_working_at_once_when_revoked_here_or_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.sqlite");
        let store = TokenStore::open(&path).unwrap();
        let here = store.create(&reporter(), "here").unwrap();
        let elsewhere = store.create(&Principal::Analyst, "elsewhere").unwrap();
        for _ in 0..3 {
            assert!(store.authenticate(&here).unwrap().is_some());
            assert!(store.authenticate(&elsewhere).unwrap().is_some());
        }
        store.revoke(&here).unwrap();
        assert_eq!(store.authenticate(&here).unwrap(), None);
        assert!(store.authenticate(&elsewhere).unwrap().is_some());
        // another process (the CLI) revokes while this store holds the token in memory
        TokenStore::open(&path).unwrap().revoke(&elsewhere).unwrap();
        assert_eq!(store.authenticate(&elsewhere).unwrap(), None);
        // a token created elsewhere works here at once
        let new = TokenStore::open(&path)
            .unwrap()
            .create(&Principal::Admin, "new")
            .unwrap();
        assert_eq!(store.authenticate(&new).unwrap(), Some(Principal::Admin));
    }

    /// The answer without waiting (for async callers) is only ever a cached one from an
    /// unchanged database: never for an unseen token, never after a revocation here or in
    /// another process, and never while another caller holds the connection.
    #[test]
    fn the_answer_without_waiting_is_never_stale() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.sqlite");
        let store = TokenStore::open(&path).unwrap();
        let token = store.create(&reporter(), "doctor").unwrap();
        let other = store.create(&Principal::Analyst, "analyst").unwrap();
        assert_eq!(
            store.authenticate_if_cached(&token),
            None,
            "not resolved yet"
        );
        let (id, principal) = store.authenticate_with_id(&token).unwrap().unwrap();
        assert_eq!(
            store.authenticate_if_cached(&token),
            Some((id, principal.clone()))
        );
        assert!(store.authenticate(&other).unwrap().is_some());
        {
            let _busy = store.conn.lock().unwrap();
            assert_eq!(
                store.authenticate_if_cached(&token),
                None,
                "connection in use"
            );
        }
        // another process revokes the other token: the cache is stale for every token
        TokenStore::open(&path).unwrap().revoke(&other).unwrap();
        assert_eq!(store.authenticate_if_cached(&token), None);
        assert_eq!(store.authenticate_if_cached(&other), None);
        assert_eq!(store.authenticate(&other).unwrap(), None);
        assert_eq!(store.authenticate(&token).unwrap(), Some(principal.clone()));
        assert!(store.authenticate_if_cached(&token).is_some());
        store.revoke(&token).unwrap();
        assert_eq!(store.authenticate_if_cached(&token), None);
        assert_eq!(store.authenticate(&token).unwrap(), None);
    }

    #[test]
    fn sector_fund_tokens_need_sectors() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::open(&dir.path().join("t.sqlite")).unwrap();
        let err = store.create(&Principal::SectorFund { sectors: vec![] }, "x");
        assert!(matches!(err, Err(TokenError::NoSectors)));
        let fund = Principal::SectorFund {
            sectors: vec!["F".into(), "1071".into()],
        };
        let token = store.create(&fund, "bouw").unwrap();
        assert_eq!(store.authenticate(&token).unwrap(), Some(fund));
    }
}
