//! What intake knows of filed notifications: owner, versions, history, current content, and the
//! answers to idempotent requests.
//!
//! The registry is a view of the event log. In embedded mode it lives in the log's own database
//! ([`IntakeRegistry::open_in_log`]) and every append applies its events to it in the same
//! transaction ([`EmbeddedSink`](crate::EmbeddedSink)). Over Kafka,
//! [`Intake`](crate::Intake) applies every event to it right after the broker confirmed the write
//! ([`RegistryWriter`]), and the registry follower applies what other instances wrote. Applying is
//! idempotent (versions only move up), and [`IntakeRegistry::catch_up`] re-applies the log from
//! the registry's checkpoint at start-up, so a crash between a write and the registry update loses
//! nothing: the next start sees the event in the log.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ods_log::EmbeddedLog;
use ods_model::Event;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::service::NOTIFICATIONS_TOPIC;

/// Failures of the registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// SQLite failed.
    #[error("intake registry {path}: {source}")]
    Database {
        /// File.
        path: String,
        /// Error.
        source: rusqlite::Error,
    },
    /// Reading the log failed during catch-up.
    #[error("intake registry catch-up: {0}")]
    Log(String),
    /// A stored value is unusable or a registry task failed (a defect or corruption).
    #[error("intake registry: {0}")]
    Internal(String),
}

/// One version in a notification's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct VersionEntry {
    /// Version number.
    pub version: u32,
    /// `filed`, `amended` or `withdrawn`.
    pub kind: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// A notification as intake knows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegistryEntry {
    /// Id.
    pub id: String,
    /// Reporter pseudonym (for access checks; never shown to others).
    #[serde(skip)]
    pub reporter: String,
    /// First filing time.
    pub notified_at: DateTime<Utc>,
    /// Latest version.
    pub version: u32,
    /// Whether withdrawn.
    pub withdrawn: bool,
    /// Current content (the JSON contract), `None` after a withdrawal of a never-seen filing.
    pub content: Option<serde_json::Value>,
    /// Every version.
    pub history: Vec<VersionEntry>,
}

/// A stored answer to an idempotent request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentRecord {
    /// SHA-256 of the request body, to refuse a key reused for another request.
    pub request_hash: String,
    /// The notification id reserved for this request.
    pub notification_id: String,
    /// The event id reserved for this request.
    pub event_id: String,
    /// The filing time reserved for this request.
    pub notified_at: DateTime<Utc>,
    /// HTTP status and body once answered; `None` while the publish has not been confirmed.
    pub response: Option<(u16, String)>,
}

/// The registry (SQLite, WAL, `synchronous=NORMAL`: durability comes from the log).
pub struct IntakeRegistry {
    path: String,
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS notifications (
    id TEXT PRIMARY KEY,
    reporter TEXT NOT NULL,
    notified_at INTEGER NOT NULL,
    version INTEGER NOT NULL,
    withdrawn INTEGER NOT NULL DEFAULT 0,
    content TEXT
);
CREATE INDEX IF NOT EXISTS notifications_by_reporter ON notifications (reporter, id);
CREATE TABLE IF NOT EXISTS versions (
    id TEXT NOT NULL, version INTEGER NOT NULL, kind TEXT NOT NULL, at INTEGER NOT NULL,
    PRIMARY KEY (id, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idempotency (
    reporter TEXT NOT NULL, key TEXT NOT NULL, request_hash TEXT NOT NULL,
    notification_id TEXT NOT NULL, event_id TEXT NOT NULL, notified_at INTEGER NOT NULL,
    status INTEGER, response TEXT, created_at INTEGER NOT NULL,
    PRIMARY KEY (reporter, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoint (
    source TEXT PRIMARY KEY, next_offset INTEGER NOT NULL
);";

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl IntakeRegistry {
    /// Opens (creating if needed) the registry at `path`.
    pub fn open(path: &Path) -> Result<Self, RegistryError> {
        let name = path.display().to_string();
        let db = |source| RegistryError::Database {
            path: name.clone(),
            source,
        };
        let conn = Connection::open(path).map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        // The registry is a view of the log, repaired from it at start-up (`catch_up`), so it
        // needs no fsync per transaction: WAL with NORMAL stays consistent after a crash and may
        // only lose the newest transactions, which the catch-up re-applies.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(db)?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        add_duplicate_key(&conn).map_err(db)?;
        Ok(IntakeRegistry {
            path: name,
            conn: Mutex::new(conn),
        })
    }

    /// Opens the registry inside the embedded log's own database, for
    /// [`EmbeddedSink`](crate::EmbeddedSink): every publish then
    /// updates it in the log's transaction, one commit and one fsync for both. `previous` is
    /// where a registry of its own was kept before (`intake.sqlite`): when it exists, its
    /// idempotency keys are copied over (the rest is rebuilt from the log by
    /// [`IntakeRegistry::catch_up`]) and the file is removed.
    pub fn open_in_log(log: &EmbeddedLog, previous: Option<&Path>) -> Result<Self, RegistryError> {
        let registry = IntakeRegistry::open(log.path())?;
        if let Some(old) = previous.filter(|p| p.exists()) {
            let name = old.display().to_string();
            registry
                .with(|c| {
                    c.execute("ATTACH DATABASE ?1 AS previous", [&name])?;
                    let copied = c.execute_batch(
                        "INSERT OR IGNORE INTO main.idempotency SELECT * FROM previous.idempotency",
                    );
                    c.execute_batch("DETACH DATABASE previous")?;
                    copied
                })
                .map_err(|e| {
                    RegistryError::Internal(format!("copying the idempotency keys of {name}: {e}"))
                })?;
            for suffix in ["", "-wal", "-shm"] {
                let file = format!("{name}{suffix}");
                if let Err(e) = std::fs::remove_file(&file) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        return Err(RegistryError::Internal(format!("removing {file}: {e}")));
                    }
                }
            }
            tracing::info!(previous = %name, "intake registry moved into the log's database");
        }
        Ok(registry)
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, RegistryError> {
        let mut conn = match self.conn.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut conn).map_err(|source| RegistryError::Database {
            path: self.path.clone(),
            source,
        })
    }

    /// Applies confirmed events (idempotent: versions only move up) in one transaction, and
    /// returns for each the earlier notifications it probably duplicates (empty for all but
    /// filings), as the registry held them just before the event was applied.
    pub fn apply(&self, events: &[Event]) -> Result<Vec<Vec<String>>, RegistryError> {
        self.with(|conn| {
            let tx = conn.transaction()?;
            let found = apply_reporting_duplicates(&tx, events)?;
            tx.commit().map(|()| found)
        })
    }

    /// The next offset to read from `source` (a log topic or one Kafka partition); 0 when
    /// nothing was read from it yet.
    pub fn position(&self, source: &str) -> Result<i64, RegistryError> {
        self.with(|c| {
            c.query_row(
                "SELECT next_offset FROM checkpoint WHERE source = ?1",
                [source],
                |r| r.get(0),
            )
            .optional()
            .map(|o| o.unwrap_or(0))
        })
    }

    /// Applies `events` read from `source` and moves its position to `next_offset`, in one
    /// transaction (idempotent: versions only move up, so re-reading a range changes nothing).
    pub fn apply_from(
        &self,
        source: &str,
        next_offset: i64,
        events: &[Event],
    ) -> Result<(), RegistryError> {
        self.with(|conn| {
            let tx = conn.transaction()?;
            for event in events {
                apply_one(&tx, event)?;
            }
            tx.execute(
                "INSERT INTO checkpoint (source, next_offset) VALUES (?1, ?2)
                 ON CONFLICT (source) DO UPDATE SET next_offset = MAX(next_offset, excluded.next_offset)",
                params![source, next_offset],
            )?;
            tx.commit()
        })
    }

    /// Re-applies the embedded log from the registry's checkpoint to its end (at start-up).
    pub fn catch_up(&self, log: &EmbeddedLog) -> Result<usize, RegistryError> {
        let mut applied = 0;
        loop {
            let from = self.position(NOTIFICATIONS_TOPIC)?;
            let records = log
                .read_from(NOTIFICATIONS_TOPIC, from, 5000)
                .map_err(|e| RegistryError::Log(e.to_string()))?;
            let Some(last) = records.last().map(|r| r.offset) else {
                return Ok(applied);
            };
            // Undecodable records are the processor's to set aside (dead letters); the registry
            // only needs the events it can read.
            let events: Vec<Event> = records
                .iter()
                .filter_map(|r| ods_wire::decode_event(&r.payload).ok())
                .collect();
            applied += records.len();
            self.apply_from(NOTIFICATIONS_TOPIC, last + 1, &events)?;
        }
    }

    /// One notification with its history.
    pub fn get(&self, id: &str) -> Result<Option<RegistryEntry>, RegistryError> {
        self.with(|c| {
            let row = c
                .query_row(
                    "SELECT id, reporter, notified_at, version, withdrawn, content FROM notifications WHERE id = ?1",
                    [id],
                    |r| {
                        Ok(RegistryEntry {
                            id: r.get(0)?,
                            reporter: r.get(1)?,
                            notified_at: time(r.get(2)?),
                            version: r.get(3)?,
                            withdrawn: r.get::<_, i64>(4)? != 0,
                            content: r
                                .get::<_, Option<String>>(5)?
                                .and_then(|t| serde_json::from_str(&t).ok()),
                            history: Vec::new(),
                        })
                    },
                )
                .optional()?;
            let Some(mut entry) = row else { return Ok(None) };
            let mut stmt = c.prepare_cached("SELECT version, kind, at FROM versions WHERE id = ?1 ORDER BY version")?;
            entry.history = stmt
                .query_map([id], |r| {
                    Ok(VersionEntry {
                        version: r.get(0)?,
                        kind: r.get(1)?,
                        at: time(r.get(2)?),
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(Some(entry))
        })
    }

    /// Notifications of `reporter` that look like the same case as `n` (NCvB's probable-duplicate
    /// rule, `shared/domain.md` §2): not withdrawn, not `except`, with the same sex, birth year,
    /// diagnosis, sector and month of the diagnosis date. (The diagnosis month, not the month
    /// of notification: the same case notified twice carries the same diagnosis date even when
    /// the two notifications straddle a month.)
    pub fn probable_duplicates(
        &self,
        reporter: &str,
        n: &ods_model::Notification,
        except: Option<&str>,
    ) -> Result<Vec<String>, RegistryError> {
        self.with(|c| duplicates_of(c, reporter, n, except.unwrap_or("")))
    }

    /// A reporter's notifications, newest first, filed in `[from, to)` (epoch ms), after the
    /// cursor id (exclusive), at most `limit`.
    pub fn list(
        &self,
        reporter: &str,
        from_ms: i64,
        to_ms: i64,
        before_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RegistryEntry>, RegistryError> {
        let ids: Vec<String> = self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id FROM notifications WHERE reporter = ?1 AND notified_at >= ?2 AND notified_at < ?3
                 AND id < ?4 ORDER BY id DESC LIMIT ?5",
            )?;
            let rows = stmt.query_map(
                params![reporter, from_ms, to_ms, before_id.unwrap_or("~"), limit as i64],
                |r| r.get(0),
            )?;
            rows.collect()
        })?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(entry) = self.get(&id)? {
                out.push(entry);
            }
        }
        Ok(out)
    }

    /// The record of an idempotency key of a reporter.
    pub fn idempotent(
        &self,
        reporter: &str,
        key: &str,
    ) -> Result<Option<IdempotentRecord>, RegistryError> {
        self.with(|c| {
            c.query_row(
                "SELECT request_hash, notification_id, event_id, notified_at, status, response
                 FROM idempotency WHERE reporter = ?1 AND key = ?2",
                params![reporter, key],
                |r| {
                    let status: Option<u16> = r.get(4)?;
                    let body: Option<String> = r.get(5)?;
                    Ok(IdempotentRecord {
                        request_hash: r.get(0)?,
                        notification_id: r.get(1)?,
                        event_id: r.get(2)?,
                        notified_at: time(r.get(3)?),
                        response: status.zip(body),
                    })
                },
            )
            .optional()
        })
    }

    /// Reserves ids for a new idempotency key; returns the record that holds after the call (an
    /// existing one wins, so two concurrent requests with one key get one id).
    pub fn reserve(
        &self,
        reporter: &str,
        key: &str,
        record: &IdempotentRecord,
    ) -> Result<IdempotentRecord, RegistryError> {
        self.with(|c| {
            c.execute(
                "INSERT OR IGNORE INTO idempotency (reporter, key, request_hash, notification_id, event_id, notified_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    reporter,
                    key,
                    record.request_hash,
                    record.notification_id,
                    record.event_id,
                    millis(record.notified_at),
                    Utc::now().timestamp_millis()
                ],
            )
        })?;
        self.idempotent(reporter, key)?
            .ok_or_else(|| RegistryError::Internal("idempotency record vanished".into()))
    }

    /// Stores the answer given for an idempotency key.
    pub fn complete(
        &self,
        reporter: &str,
        key: &str,
        status: u16,
        body: &str,
    ) -> Result<(), RegistryError> {
        self.with(|c| {
            c.execute(
                "UPDATE idempotency SET status = ?3, response = ?4 WHERE reporter = ?1 AND key = ?2",
                params![reporter, key, status, body],
            )
            .map(|_| ())
        })
    }

    /// Forgets idempotency keys older than `max_age`.
    pub fn expire_idempotency(&self, max_age: chrono::Duration) -> Result<usize, RegistryError> {
        let cutoff = (Utc::now() - max_age).timestamp_millis();
        self.with(|c| c.execute("DELETE FROM idempotency WHERE created_at < ?1", [cutoff]))
    }
}

/// The most confirmed publishes one registry transaction applies together.
const GROUP_APPLY_MAX: usize = 512;

/// The events of one publish, and where to send, once they are applied, the probable duplicates
/// of each (see [`RegistryWriter::apply`]).
struct GroupRequest {
    events: Vec<Event>,
    reply: tokio::sync::oneshot::Sender<Result<Vec<Vec<String>>, RegistryError>>,
}

/// Applies `events` in `tx`, and returns for each the notifications it probably duplicates,
/// found just before it was applied (empty for all but filings). Asking in the transaction that
/// applies the filing means two identical filings sent at the same time still see each other.
fn apply_reporting_duplicates(
    tx: &rusqlite::Transaction<'_>,
    events: &[Event],
) -> rusqlite::Result<Vec<Vec<String>>> {
    let mut duplicates = Vec::with_capacity(events.len());
    for event in events {
        duplicates.push(match event {
            Event::Filed(e) => duplicates_of(
                tx,
                e.reporter.as_str(),
                &e.notification,
                &e.notification_id.to_string(),
            )?,
            _ => Vec::new(),
        });
        apply_one(tx, event)?;
    }
    Ok(duplicates)
}

/// Applies the events of one append to a registry kept in the log's own database, in the
/// append's transaction (see [`IntakeRegistry::open_in_log`]), and returns what each filing
/// probably duplicates. The registry's position in the log moves past these records only when it
/// stood right before them: were an earlier append's registry work ever rolled back, the position
/// stays at the gap and the catch-up at the next start re-applies from there.
pub(crate) fn apply_in_append(
    tx: &rusqlite::Transaction<'_>,
    offsets: &[i64],
    events: &[Event],
) -> rusqlite::Result<Vec<Vec<String>>> {
    let found = apply_reporting_duplicates(tx, events)?;
    if let (Some(first), Some(last)) = (offsets.first(), offsets.last()) {
        if *first == 0 {
            tx.prepare_cached(
                "INSERT INTO checkpoint (source, next_offset) VALUES (?1, ?2)
                 ON CONFLICT (source) DO UPDATE SET next_offset = excluded.next_offset
                 WHERE next_offset = 0",
            )?
            .execute(params![NOTIFICATIONS_TOPIC, last + 1])?;
        } else {
            tx.prepare_cached(
                "UPDATE checkpoint SET next_offset = ?3 WHERE source = ?1 AND next_offset = ?2",
            )?
            .execute(params![NOTIFICATIONS_TOPIC, first, last + 1])?;
        }
    }
    Ok(found)
}

/// The first five notifications of `reporter` that `n` probably duplicates, other than `except`.
fn duplicates_of(
    conn: &Connection,
    reporter: &str,
    n: &ods_model::Notification,
    except: &str,
) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(PROBABLE_DUPLICATES)?;
    let rows = stmt.query_map(params![reporter, duplicate_key(n), except], |r| r.get(0))?;
    rows.collect()
}

/// Applies confirmed events to the registry on one dedicated thread, many publishes per
/// transaction (group apply), so concurrent requests do not queue for one SQLite transaction
/// each. Every caller still waits for its own events to be applied, so a doctor who reads right
/// after a 202 sees the notification.
pub struct RegistryWriter {
    requests: std::sync::mpsc::Sender<GroupRequest>,
}

impl RegistryWriter {
    /// Starts the writer thread over `registry`; it stops when the writer is dropped.
    pub fn start(registry: std::sync::Arc<IntakeRegistry>) -> Result<Self, RegistryError> {
        let (requests, queue) = std::sync::mpsc::channel::<GroupRequest>();
        std::thread::Builder::new()
            .name("ods-intake-registry".into())
            .spawn(move || {
                while let Ok(first) = queue.recv() {
                    let mut group = vec![first];
                    while group.len() < GROUP_APPLY_MAX {
                        match queue.try_recv() {
                            Ok(next) => group.push(next),
                            Err(_) => break,
                        }
                    }
                    let result = registry.with(|conn| {
                        let tx = conn.transaction()?;
                        let mut found = Vec::with_capacity(group.len());
                        for request in &group {
                            found.push(apply_reporting_duplicates(&tx, &request.events)?);
                        }
                        tx.commit().map(|()| found)
                    });
                    match result {
                        Ok(found) => {
                            for (request, duplicates) in group.into_iter().zip(found) {
                                let _ = request.reply.send(Ok(duplicates));
                            }
                        }
                        // One bad group must not fail the others: apply each on its own.
                        Err(_) => {
                            for request in group {
                                let _ = request.reply.send(registry.apply(&request.events));
                            }
                        }
                    }
                }
            })
            .map_err(|e| RegistryError::Internal(format!("starting the registry writer: {e}")))?;
        Ok(RegistryWriter { requests })
    }

    /// Applies `events` (idempotent) together with whatever else is waiting; resolves when they
    /// are in the registry, with, for each event, the earlier notifications it probably
    /// duplicates (NCvB's rule, see [`IntakeRegistry::probable_duplicates`]; empty for all but
    /// filings), as the registry held them just before the event was applied.
    pub async fn apply(&self, events: Vec<Event>) -> Result<Vec<Vec<String>>, RegistryError> {
        let (reply, done) = tokio::sync::oneshot::channel();
        self.requests
            .send(GroupRequest { events, reply })
            .map_err(|_| RegistryError::Internal("the registry writer stopped".into()))?;
        done.await
            .map_err(|_| RegistryError::Internal("the registry writer stopped".into()))?
    }
}

/// The first five earlier notifications of a doctor (`?1`) with the same duplicate key (`?2`),
/// other than `?3`. The index on (reporter, dup_key, id) answers it in id order, so it reads a
/// handful of rows however many notifications the doctor has (withdrawn ones with the same key
/// are read and passed over).
const PROBABLE_DUPLICATES: &str = "SELECT id FROM notifications
    WHERE reporter = ?1 AND dup_key = ?2 AND withdrawn = 0 AND id <> ?3 ORDER BY id LIMIT 5";

/// What two notifications of one doctor share when they are probably the same case: sex, birth
/// year, diagnosis, sector and the month of the diagnosis date.
fn duplicate_key(n: &ods_model::Notification) -> String {
    // `Sex::code` is the JSON code, so keys match those filled from stored JSON by
    // `add_duplicate_key`
    format!(
        "{}|{}|{}|{}|{}",
        n.sex.code(),
        n.birth_year,
        n.diagnosis_code,
        n.sector_code,
        n.diagnosis_date.format("%Y-%m")
    )
}

/// Adds the indexed `dup_key` column to registries made before it existed, filled from the
/// stored content (the same text [`duplicate_key`] makes).
fn add_duplicate_key(conn: &Connection) -> rusqlite::Result<()> {
    let has_column = conn
        .prepare("SELECT 1 FROM pragma_table_info('notifications') WHERE name = 'dup_key'")?
        .exists([])?;
    if !has_column {
        conn.execute_batch(
            "ALTER TABLE notifications ADD COLUMN dup_key TEXT;
             UPDATE notifications SET dup_key =
               json_extract(content, '$.sex') || '|' || json_extract(content, '$.birth_year') || '|' ||
               json_extract(content, '$.diagnosis_code') || '|' || json_extract(content, '$.sector_code') || '|' ||
               substr(json_extract(content, '$.diagnosis_date'), 1, 7)
             WHERE content IS NOT NULL;",
        )?;
    }
    // with (reporter, dup_key) alone SQLite answered the duplicate check from the (reporter, id)
    // index, reading the doctor's notifications until five matched, or sorted all that shared
    // the key
    conn.execute_batch(
        "CREATE INDEX IF NOT EXISTS notifications_by_duplicate_key_and_id
             ON notifications (reporter, dup_key, id);
         DROP INDEX IF EXISTS notifications_by_duplicate_key;",
    )
}

fn apply_one(tx: &rusqlite::Transaction<'_>, event: &Event) -> rusqlite::Result<()> {
    let content = |n: &ods_model::Notification| serde_json::to_string(n).ok();
    match event {
        Event::Filed(e) => {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO notifications (id, reporter, notified_at, version, content, dup_key)
                 VALUES (?1, ?2, ?3, 1, ?4, ?5)",
            )?
            .execute(params![
                e.notification_id.to_string(),
                e.reporter.as_str(),
                millis(e.notified_at),
                content(&e.notification),
                duplicate_key(&e.notification)
            ])?;
            history(
                tx,
                &e.notification_id.to_string(),
                1,
                "filed",
                e.notified_at,
            )?;
        }
        Event::Amended(e) => {
            let id = e.notification_id.to_string();
            tx.prepare_cached(
                "INSERT OR IGNORE INTO notifications (id, reporter, notified_at, version, content)
                 VALUES (?1, ?2, ?3, 0, NULL)",
            )?
            .execute(params![id, e.reporter.as_str(), millis(e.notified_at)])?;
            tx.prepare_cached(
                "UPDATE notifications SET version = ?2, content = ?3, dup_key = ?4
                 WHERE id = ?1 AND version < ?2 AND withdrawn = 0",
            )?
            .execute(params![
                id,
                e.version,
                content(&e.notification),
                duplicate_key(&e.notification)
            ])?;
            history(tx, &id, e.version, "amended", e.amended_at)?;
        }
        Event::Withdrawn(e) => {
            let id = e.notification_id.to_string();
            tx.prepare_cached(
                "UPDATE notifications SET version = MAX(version, ?2), withdrawn = 1 WHERE id = ?1",
            )?
            .execute(params![id, e.version])?;
            history(tx, &id, e.version, "withdrawn", e.withdrawn_at)?;
        }
        Event::ZeroReport(_) => {}
    }
    Ok(())
}

fn history(
    tx: &rusqlite::Transaction<'_>,
    id: &str,
    version: u32,
    kind: &str,
    at: DateTime<Utc>,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO versions (id, version, kind, at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![id, version, kind, millis(at)])
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly by design
    use super::*;
    use ods_model::{NotificationFiled, NotificationId, NotificationWithdrawn, ReporterPseudonym};

    fn notification(changes: serde_json::Value) -> ods_model::Notification {
        let mut body = serde_json::json!({
            "service_id": "AD0001", "diagnosis_code": "L694",
            "exposures": [{"code": "ER003", "primary": true}],
            "sector_code": "1071", "occupation_code": "7512", "sex": "F", "birth_year": 1980,
            "diagnosis_date": "2024-03-01", "consequence": "temporary", "absence_band": "1to3m",
            "detection_route": "absence_guidance"
        });
        for (k, v) in changes.as_object().unwrap() {
            body[k] = v.clone();
        }
        let lists = ods_codelists::CodeLists::bundled().unwrap();
        let today = chrono::NaiveDate::from_ymd_opt(2024, 6, 1).unwrap();
        ods_validation::validate_notification(
            &body,
            &lists,
            today,
            &ods_validation::Limits::default(),
        )
        .unwrap()
    }

    fn filed(
        n: u128,
        reporter: &ReporterPseudonym,
        notification: ods_model::Notification,
    ) -> Event {
        Event::Filed(NotificationFiled {
            event_id: uuid::Uuid::from_u128(n),
            notification_id: NotificationId(uuid::Uuid::from_u128(n)),
            reporter: reporter.clone(),
            notified_at: Utc::now(),
            notification,
        })
    }

    #[test]
    fn probable_duplicates_are_same_reporter_sex_birth_year_diagnosis_sector_and_month() {
        let dir = tempfile::tempdir().unwrap();
        let registry = IntakeRegistry::open(&dir.path().join("r.sqlite")).unwrap();
        let me = ReporterPseudonym::from_hex(&"a1".repeat(16)).unwrap();
        let other = ReporterPseudonym::from_hex(&"b2".repeat(16)).unwrap();
        let base = notification(serde_json::json!({}));
        registry
            .apply(&[
                filed(1, &me, base.clone()),
                filed(2, &other, base.clone()),
                filed(
                    3,
                    &me,
                    notification(serde_json::json!({"birth_year": 1981})),
                ),
                filed(
                    4,
                    &me,
                    notification(serde_json::json!({"diagnosis_date": "2024-02-28"})),
                ),
                filed(
                    5,
                    &me,
                    notification(serde_json::json!({"diagnosis_date": "2024-03-30"})),
                ),
            ])
            .unwrap();
        let id = |n: u128| NotificationId(uuid::Uuid::from_u128(n)).to_string();
        assert_eq!(
            registry.probable_duplicates(me.as_str(), &base, None).unwrap(),
            vec![id(1), id(5)],
            "the same month of the same case; not another doctor's, not another birth year or month"
        );
        // a notification is not its own duplicate; a withdrawn one is none
        assert_eq!(
            registry
                .probable_duplicates(me.as_str(), &base, Some(&id(1)))
                .unwrap(),
            vec![id(5)]
        );
        registry
            .apply(&[Event::Withdrawn(NotificationWithdrawn {
                event_id: uuid::Uuid::from_u128(99),
                notification_id: NotificationId(uuid::Uuid::from_u128(5)),
                version: 2,
                reporter: me.clone(),
                withdrawn_at: Utc::now(),
                reason: ods_model::WithdrawalReason::parse("duplicate").unwrap(),
            })])
            .unwrap();
        assert_eq!(
            registry
                .probable_duplicates(me.as_str(), &base, Some(&id(1)))
                .unwrap(),
            Vec::<String>::new()
        );
    }

    /// The writer reports, with each applied publish, what its filing probably duplicates, as
    /// the registry held it just before: also for identical filings sent at the same moment,
    /// which a check before the publish (as intake did until 2026-12-02) let both pass unwarned.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writer_reports_duplicates_also_of_filings_applied_together() {
        let dir = tempfile::tempdir().unwrap();
        let registry =
            std::sync::Arc::new(IntakeRegistry::open(&dir.path().join("r.sqlite")).unwrap());
        let writer = RegistryWriter::start(registry.clone()).unwrap();
        let me = ReporterPseudonym::from_hex(&"a1".repeat(16)).unwrap();
        let base = notification(serde_json::json!({}));
        let id = |n: u128| NotificationId(uuid::Uuid::from_u128(n)).to_string();
        // one publish of two identical filings and a withdrawal: only the second filing warns
        let withdrawal = Event::Withdrawn(NotificationWithdrawn {
            event_id: uuid::Uuid::from_u128(90),
            notification_id: NotificationId(uuid::Uuid::from_u128(1)),
            version: 2,
            reporter: me.clone(),
            withdrawn_at: Utc::now(),
            reason: ods_model::WithdrawalReason::parse("duplicate").unwrap(),
        });
        let found = writer
            .apply(vec![
                filed(1, &me, base.clone()),
                filed(2, &me, base.clone()),
                withdrawal,
            ])
            .await
            .unwrap();
        assert_eq!(found, vec![vec![], vec![id(1)], vec![]]);
        // twenty identical filings at once: whatever the grouping, each sees all applied before
        // it, so exactly one (the first applied) names only filing 2, and a re-applied filing
        // does not report itself
        let applied = futures_util::future::join_all((10..30).map(|n| {
            let event = filed(n, &me, base.clone());
            let writer = &writer;
            async move { writer.apply(vec![event]).await.unwrap() }
        }))
        .await;
        let first_applied = applied.iter().filter(|found| found[0] == [id(2)]).count();
        assert_eq!(first_applied, 1, "{applied:?}");
        assert!(applied.iter().all(|found| found[0].len() <= 5));
        let again = writer
            .apply(vec![filed(2, &me, base.clone())])
            .await
            .unwrap();
        assert!(!again[0].contains(&id(2)), "{again:?}");
        assert_eq!(again[0].len(), 5, "the first five others, in id order");
    }

    /// A registry kept in the log's database moves with every append, in its transaction, so
    /// the catch-up finds nothing to do; it takes over the idempotency keys of the registry file
    /// kept before, which it removes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_registry_in_the_log_moves_with_each_append_and_takes_over_the_old_keys() {
        use crate::service::{EmbeddedSink, EventSink};
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("intake.sqlite");
        let me = ReporterPseudonym::from_hex(&"a1".repeat(16)).unwrap();
        let kept = IdempotentRecord {
            request_hash: "h".into(),
            notification_id: "n".into(),
            event_id: "e".into(),
            notified_at: time(1),
            response: None,
        };
        IntakeRegistry::open(&old)
            .unwrap()
            .reserve(me.as_str(), "key", &kept)
            .unwrap();
        let log = EmbeddedLog::open(&dir.path().join("log.sqlite"), 16).unwrap();
        let registry = IntakeRegistry::open_in_log(&log, Some(&old)).unwrap();
        assert_eq!(registry.idempotent(me.as_str(), "key").unwrap(), Some(kept));
        assert!(!old.exists(), "the old registry file is removed");
        let sink = EmbeddedSink::new(log.clone());
        let base = notification(serde_json::json!({}));
        let id = |n: u128| NotificationId(uuid::Uuid::from_u128(n)).to_string();
        let first = sink
            .publish(vec![filed(1, &me, base.clone())])
            .await
            .unwrap();
        let second = sink
            .publish(vec![
                filed(2, &me, base.clone()),
                filed(3, &me, base.clone()),
            ])
            .await
            .unwrap();
        assert_eq!(first, Some(vec![vec![]]));
        assert_eq!(second, Some(vec![vec![id(1)], vec![id(1), id(2)]]));
        assert_eq!(registry.position(NOTIFICATIONS_TOPIC).unwrap(), 3);
        assert_eq!(registry.get(&id(3)).unwrap().unwrap().version, 1);
        assert_eq!(registry.catch_up(&log).unwrap(), 0, "nothing to catch up");
        // a position left behind (as after registry work rolled back) stays put, and the
        // catch-up re-applies from there
        registry
            .with(|c| c.execute("UPDATE checkpoint SET next_offset = 1", []))
            .unwrap();
        sink.publish(vec![filed(4, &me, base.clone())])
            .await
            .unwrap();
        assert_eq!(registry.position(NOTIFICATIONS_TOPIC).unwrap(), 1);
        assert_eq!(registry.catch_up(&log).unwrap(), 3);
        assert_eq!(registry.position(NOTIFICATIONS_TOPIC).unwrap(), 4);
    }

    #[test]
    fn a_registry_from_before_the_duplicate_key_is_migrated_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sqlite");
        let base = notification(serde_json::json!({}));
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(SCHEMA).unwrap();
            conn.execute(
                "INSERT INTO notifications (id, reporter, notified_at, version, content) VALUES ('n1', 'me', 0, 1, ?1)",
                [serde_json::to_string(&base).unwrap()],
            )
            .unwrap();
        }
        let registry = IntakeRegistry::open(&path).unwrap();
        assert_eq!(
            registry.probable_duplicates("me", &base, None).unwrap(),
            vec!["n1".to_string()]
        );
        // opening again does not migrate twice
        drop(registry);
        let registry = IntakeRegistry::open(&path).unwrap();
        assert_eq!(
            registry
                .probable_duplicates("me", &base, None)
                .unwrap()
                .len(),
            1
        );
    }

    /// The duplicate check reads a handful of entries of its own index in id order, not the
    /// doctor's notifications one by one until five match (with the older index SQLite took the
    /// (reporter, id) index: every notification of a doctor without duplicates, at each filing);
    /// also in a registry made with the older index.
    #[test]
    fn the_duplicate_check_reads_its_own_index_in_id_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(SCHEMA).unwrap();
            add_duplicate_key(&conn).unwrap();
            conn.execute_batch(
                "DROP INDEX IF EXISTS notifications_by_duplicate_key_and_id;
                 CREATE INDEX IF NOT EXISTS notifications_by_duplicate_key
                     ON notifications (reporter, dup_key);",
            )
            .unwrap();
        }
        let registry = IntakeRegistry::open(&path).unwrap();
        let plan: Vec<String> = registry
            .with(|c| {
                c.prepare(&format!("EXPLAIN QUERY PLAN {PROBABLE_DUPLICATES}"))?
                    .query_map(params!["me", "key", "id"], |r| r.get::<_, String>(3))?
                    .collect()
            })
            .unwrap();
        assert!(
            plan.iter()
                .any(|step| step.contains("USING INDEX notifications_by_duplicate_key_and_id")),
            "{plan:?}"
        );
        assert!(
            !plan.iter().any(|step| step.contains("TEMP B-TREE")),
            "{plan:?}"
        );
        // and it still answers in id order, first five
        let me = ReporterPseudonym::from_hex(&"a1".repeat(16)).unwrap();
        let base = notification(serde_json::json!({}));
        let events: Vec<Event> = (1..=8).rev().map(|n| filed(n, &me, base.clone())).collect();
        registry.apply(&events).unwrap();
        let found = registry
            .probable_duplicates(
                me.as_str(),
                &base,
                Some(&NotificationId(uuid::Uuid::from_u128(1)).to_string()),
            )
            .unwrap();
        let expected: Vec<String> = (2..=6)
            .map(|n| NotificationId(uuid::Uuid::from_u128(n)).to_string())
            .collect();
        assert_eq!(found, expected);
    }
}
