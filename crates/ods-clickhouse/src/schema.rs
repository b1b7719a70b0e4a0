//! Server capabilities and the schema migrations.

use clickhouse::{Client, Row};
use serde::Deserialize;

use crate::error::ClickHouseError;

/// A server version from `SELECT version()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerVersion {
    /// Major (18, 23, 24, ...).
    pub major: u32,
    /// Minor.
    pub minor: u32,
}

impl ServerVersion {
    /// Parses `18.16.1` or `23.8.2.7`.
    pub fn parse(text: &str) -> Option<ServerVersion> {
        let mut parts = text.trim().split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next().unwrap_or("0").parse().ok()?;
        Some(ServerVersion { major, minor })
    }
}

/// What the connected server supports: every version-specific choice of this crate is here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// The probed version.
    pub version: ServerVersion,
    /// `LowCardinality(String)` columns without an experimental setting (19.0 on; 18.16 needs
    /// `allow_experimental_low_cardinality_type`).
    pub low_cardinality: bool,
}

impl Capabilities {
    /// The capabilities of a server version.
    pub fn of(version: ServerVersion) -> Capabilities {
        Capabilities {
            version,
            low_cardinality: version.major >= 19,
        }
    }

    /// Asks the server (`SELECT version()`).
    pub async fn probe(client: &Client) -> Result<Capabilities, ClickHouseError> {
        let text: String = client
            .query("SELECT version()")
            .fetch_one()
            .await
            .map_err(|e| ClickHouseError::request("SELECT version()", e))?;
        let version = ServerVersion::parse(&text).ok_or_else(|| ClickHouseError::Unexpected {
            what: "SELECT version()".into(),
            reason: format!("'{text}' is not a version"),
        })?;
        Ok(Capabilities::of(version))
    }

    /// The type of low-cardinality string columns.
    pub fn lc_string(&self) -> &'static str {
        if self.low_cardinality {
            "LowCardinality(String)"
        } else {
            "String"
        }
    }
}

/// One migration: an SQL file under `crates/ods-clickhouse/migrations/`.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Order and identity (the file's number).
    pub version: u32,
    /// File name.
    pub name: &'static str,
    /// The SQL: statements separated by `;`, with `{db}` and `{lc_string}` placeholders.
    pub sql: &'static str,
}

/// Every migration, in order. Each statement is idempotent (`IF NOT EXISTS`, `IF EXISTS`), so a
/// crash part-way through a migration is repaired by running it again (no data is written
/// before every migration is recorded).
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_core.sql",
        sql: include_str!("../migrations/0001_core.sql"),
    },
    Migration {
        version: 2,
        name: "0002_signals.sql",
        sql: include_str!("../migrations/0002_signals.sql"),
    },
    Migration {
        version: 3,
        name: "0003_signal_review.sql",
        sql: include_str!("../migrations/0003_signal_review.sql"),
    },
];

/// The bookkeeping table of applied migrations (created before any migration runs).
pub fn schema_migrations_ddl(database: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {database}.schema_migrations (
    version UInt32,
    name String,
    applied_at_ms Int64
) ENGINE = ReplacingMergeTree()
ORDER BY version"
    )
}

impl Migration {
    /// The statements of this migration for `database` on a server with `caps`.
    pub fn statements(&self, database: &str, caps: &Capabilities) -> Vec<String> {
        let without_comments: String = self
            .sql
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        without_comments
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.replace("{db}", database)
                    .replace("{lc_string}", caps.lc_string())
            })
            .collect()
    }
}

/// Checks that a database name is a plain identifier (it is spliced into SQL).
pub fn check_database_name(name: &str) -> Result<(), ClickHouseError> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64;
    if ok {
        Ok(())
    } else {
        Err(ClickHouseError::Config(format!(
            "database name '{name}' must be letters, digits and '_' (not starting with a digit)"
        )))
    }
}

#[derive(Row, Deserialize)]
struct AppliedRow {
    version: u32,
}

/// What [`migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Versions applied now.
    pub applied: Vec<u32>,
    /// Versions that were applied before.
    pub already: Vec<u32>,
}

/// Creates the database and applies every migration not yet recorded in `schema_migrations`,
/// in order, recording each after its statements ran. Running it again is a no-op.
pub async fn migrate(
    client: &Client,
    database: &str,
    caps: &Capabilities,
) -> Result<MigrationReport, ClickHouseError> {
    check_database_name(database)?;
    let run = |sql: String, what: String| async move {
        client
            .query(&sql)
            .execute()
            .await
            .map_err(|e| ClickHouseError::request(what, e))
    };
    run(
        format!("CREATE DATABASE IF NOT EXISTS {database}"),
        format!("CREATE DATABASE {database}"),
    )
    .await?;
    run(
        schema_migrations_ddl(database),
        "CREATE TABLE schema_migrations".into(),
    )
    .await?;
    let applied: Vec<u32> = client
        .query(&format!(
            "SELECT version FROM {database}.schema_migrations GROUP BY version ORDER BY version"
        ))
        .fetch_all::<AppliedRow>()
        .await
        .map_err(|e| ClickHouseError::request("reading schema_migrations", e))?
        .into_iter()
        .map(|r| r.version)
        .collect();
    let mut report = MigrationReport {
        applied: Vec::new(),
        already: Vec::new(),
    };
    for m in MIGRATIONS {
        if applied.contains(&m.version) {
            report.already.push(m.version);
            continue;
        }
        for statement in m.statements(database, caps) {
            client.query(&statement).execute().await.map_err(|source| {
                ClickHouseError::Migration {
                    version: m.version,
                    name: m.name.to_string(),
                    source,
                }
            })?;
        }
        client
            .query(&format!(
                "INSERT INTO {database}.schema_migrations (version, name, applied_at_ms) VALUES (?, ?, ?)"
            ))
            .bind(m.version)
            .bind(m.name)
            .bind(chrono::Utc::now().timestamp_millis())
            .execute()
            .await
            .map_err(|source| ClickHouseError::Migration {
                version: m.version,
                name: m.name.to_string(),
                source,
            })?;
        tracing::info!(
            version = m.version,
            name = m.name,
            database,
            "clickhouse migration applied"
        );
        report.applied.push(m.version);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_capabilities() {
        let old = ServerVersion::parse("18.16.1").unwrap();
        assert_eq!(
            old,
            ServerVersion {
                major: 18,
                minor: 16
            }
        );
        assert!(!Capabilities::of(old).low_cardinality);
        let new = ServerVersion::parse("23.8.2.7").unwrap();
        assert!(Capabilities::of(new).low_cardinality);
        assert!(ServerVersion::parse("x").is_none());
    }

    #[test]
    fn migrations_are_ordered_and_rendered() {
        let versions: Vec<u32> = MIGRATIONS.iter().map(|m| m.version).collect();
        let mut sorted = versions.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(versions, sorted);
        let caps = Capabilities::of(ServerVersion {
            major: 18,
            minor: 16,
        });
        for m in MIGRATIONS {
            for s in m.statements("ods_x", &caps) {
                assert!(
                    s.starts_with("CREATE TABLE IF NOT EXISTS ods_x.")
                        || s.starts_with("DROP TABLE IF EXISTS ods_x."),
                    "{s}"
                );
                assert!(!s.contains('{'), "{s}");
                assert!(!s.contains("LowCardinality"), "{s}");
            }
        }
    }

    #[test]
    fn database_names_are_identifiers() {
        assert!(check_database_name("ods").is_ok());
        assert!(check_database_name("ods_test_1").is_ok());
        assert!(check_database_name("1ods").is_err());
        assert!(check_database_name("ods; DROP").is_err());
        assert!(check_database_name("").is_err());
    }
}
