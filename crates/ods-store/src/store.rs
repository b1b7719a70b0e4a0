use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::review::{AuditEntry, SignalRecord, SignalStatus};
use chrono::Utc;
use ods_log::LogRecord;
use ods_processor::{Assessed, Contribution, Decision, NotificationState, Processor};
use ods_wire::records::NotificationRejected;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

/// Failures of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("embedded store {path}: {source}")]
    Database {
        /// Database file.
        path: String,
        /// The error.
        source: rusqlite::Error,
    },
    /// A stored value cannot be read back (corruption or a bug).
    #[error("embedded store: corrupt state for {what}: {reason}")]
    Corrupt {
        /// Which row.
        what: String,
        /// Why.
        reason: String,
    },
    /// A distributed store (ClickHouse) failed; `retryable` says whether the same call may
    /// succeed later (network, overload) or not (bad data, schema mismatch).
    #[error("{backend} store: {source}")]
    Backend {
        /// Which store.
        backend: &'static str,
        /// Whether retrying the same call can succeed.
        retryable: bool,
        /// The error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Reading the embedded log failed (replay).
    #[error(transparent)]
    Log(#[from] ods_log::LogError),
    /// A blocking store task panicked or was cancelled.
    #[error("store task failed: {0}")]
    Task(String),
    /// An answer was read from disclosure tables built for another query (a bug).
    #[error(transparent)]
    Disclosure(#[from] crate::disclosure::DisclosureError),
}

impl StoreError {
    /// Whether retrying the same call can succeed (nothing was applied in any case).
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Backend { retryable, .. } => *retryable,
            StoreError::Database { .. } | StoreError::Task(_) | StoreError::Log(_) => true,
            StoreError::Corrupt { .. } | StoreError::Disclosure(_) => false,
        }
    }
}

/// What one applied batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Records read.
    pub records: usize,
    /// Versions counted.
    pub validated: usize,
    /// Versions rejected.
    pub rejected: usize,
    /// Withdrawals.
    pub withdrawn: usize,
    /// Zero reports.
    pub zero_reports: usize,
    /// Redeliveries and stale versions.
    pub skipped: usize,
    /// Undecodable records.
    pub dead_letters: usize,
    /// The next offset to read.
    pub next_offset: i64,
    /// Rejected versions per rule id (a version breaking two rules counts under both).
    pub rejected_by_rule: BTreeMap<String, usize>,
}

impl BatchStats {
    /// Counts one rejected version, under each distinct rule it broke.
    pub fn count_rejection(&mut self, rejection: &NotificationRejected) {
        self.rejected += 1;
        let mut rules: Vec<&str> = rejection.reasons.iter().map(|r| r.rule.as_str()).collect();
        rules.sort_unstable();
        rules.dedup();
        for rule in rules {
            *self.rejected_by_rule.entry(rule.to_string()).or_default() += 1;
        }
    }
}

/// The embedded store: one writer connection (the processor) and one reader (queries).
/// Cloning is cheap (shared connections).
#[derive(Clone)]
pub struct EmbeddedStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) path: PathBuf,
    pub(crate) writer: Mutex<Connection>,
    pub(crate) reader: Mutex<Connection>,
    /// Declared last: dropped (and its thread joined) after the connections are closed.
    _checkpointer: Checkpointer,
}

/// How often the checkpointer copies committed WAL frames into the database file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(200);

/// The writer's own automatic checkpoint, a fallback for when the checkpointer falls behind
/// (in pages: 128 MB of WAL).
const FALLBACK_AUTOCHECKPOINT_PAGES: i64 = 32_768;

/// Copies committed WAL frames into the database file on a thread and connection of its own
/// (`PRAGMA wal_checkpoint(PASSIVE)` every [`CHECKPOINT_INTERVAL`]), so the commits of the
/// processor never do it themselves: SQLite's automatic checkpoint runs inside the commit that
/// crosses the threshold, which made every few batches several times slower. A passive
/// checkpoint never blocks the writer or the readers; what it cannot copy yet (frames a reader
/// still needs) is copied by a later one. Durability is unchanged: a commit is in the WAL
/// before it returns, whether or not it was checkpointed.
struct Checkpointer {
    stop: Option<std::sync::mpsc::SyncSender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(conn: Connection) -> std::io::Result<Checkpointer> {
        let (stop, stopped) = std::sync::mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("ods-store-checkpoint".into())
            .spawn(move || {
                // woken only by the hang-up at drop; every timeout is a checkpoint
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(CHECKPOINT_INTERVAL)
                {
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::debug!(error = %e, "passive WAL checkpoint not done");
                    }
                }
            })?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // hanging up wakes the thread, which ends
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Positions per (source, partition). Data directories from before partitions kept one
/// `checkpoints` row per source: [`MIGRATE_CHECKPOINTS`] moves them to partition 0.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS positions (
    source TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (source, partition)
);
CREATE TABLE IF NOT EXISTS notifications (
    notification_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    status TEXT NOT NULL,
    reporter TEXT NOT NULL,
    state TEXT NOT NULL,
    validated BLOB,
    source_offset INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS notifications_by_reporter ON notifications (reporter);
CREATE TABLE IF NOT EXISTS rejections (
    notification_id TEXT,
    version INTEGER NOT NULL,
    reporter TEXT NOT NULL,
    reasons TEXT NOT NULL,
    source_offset INTEGER NOT NULL,
    rejected_at INTEGER NOT NULL,
    PRIMARY KEY (notification_id, version)
);
CREATE TABLE IF NOT EXISTS agg_counts (
    period TEXT NOT NULL, year INTEGER NOT NULL, quarter INTEGER NOT NULL,
    sector_code TEXT NOT NULL, sbi_section TEXT NOT NULL,
    diagnosis_code TEXT NOT NULL, diagnosis_group TEXT NOT NULL,
    primary_exposure TEXT NOT NULL, primary_exposure_group TEXT NOT NULL,
    sex TEXT NOT NULL, age_band TEXT NOT NULL, detection_route TEXT NOT NULL, consequence TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (period, sector_code, diagnosis_code, primary_exposure, sex, age_band, detection_route, consequence)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS agg_reporters (
    period TEXT NOT NULL, year INTEGER NOT NULL, quarter INTEGER NOT NULL,
    sector_code TEXT NOT NULL, sbi_section TEXT NOT NULL,
    diagnosis_code TEXT NOT NULL, diagnosis_group TEXT NOT NULL,
    primary_exposure TEXT NOT NULL, primary_exposure_group TEXT NOT NULL,
    sex TEXT NOT NULL, age_band TEXT NOT NULL, detection_route TEXT NOT NULL, consequence TEXT NOT NULL,
    reporter TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (period, sector_code, diagnosis_code, primary_exposure, sex, age_band, detection_route, consequence, reporter)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS agg_exposures (
    period TEXT NOT NULL, sector_code TEXT NOT NULL, sbi_section TEXT NOT NULL,
    diagnosis_code TEXT NOT NULL, diagnosis_group TEXT NOT NULL,
    exposure_code TEXT NOT NULL, exposure_group TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (period, sector_code, diagnosis_code, exposure_code)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS zero_reports (
    reporter TEXT NOT NULL, period TEXT NOT NULL, service TEXT NOT NULL,
    PRIMARY KEY (reporter, period)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS signals (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, subject TEXT NOT NULL, period TEXT NOT NULL,
    numbers TEXT NOT NULL, method TEXT NOT NULL, explanation TEXT NOT NULL, status TEXT NOT NULL,
    note TEXT, detected_at_ms INTEGER NOT NULL, updated_at_ms INTEGER NOT NULL,
    revision INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS signal_audit (
    signal_id TEXT NOT NULL, at_ms INTEGER NOT NULL, actor TEXT NOT NULL, from_status TEXT NOT NULL,
    to_status TEXT NOT NULL, note TEXT NOT NULL, revision INTEGER NOT NULL,
    PRIMARY KEY (signal_id, revision)
);
CREATE TABLE IF NOT EXISTS dead_letters (
    source TEXT NOT NULL, source_partition INTEGER NOT NULL DEFAULT 0, source_offset INTEGER NOT NULL,
    error TEXT NOT NULL, payload BLOB NOT NULL, failed_at INTEGER NOT NULL,
    PRIMARY KEY (source, source_partition, source_offset)
);";

/// Gives the dead letters of older data directories (keyed by source and offset only, which
/// let two partitions' dead letters at the same offset overwrite each other) a partition: 0, the
/// embedded log's only one (dead letters the Kafka runner wrote into an embedded store, in tests
/// and benchmarks, lose theirs). Run inside a transaction by [`migrate_dead_letters`]. The
/// column defaults to 0, so an older binary still writes the embedded log's dead letters.
const MIGRATE_DEAD_LETTERS: &str = "
CREATE TABLE dead_letters_by_partition (
    source TEXT NOT NULL, source_partition INTEGER NOT NULL DEFAULT 0, source_offset INTEGER NOT NULL,
    error TEXT NOT NULL, payload BLOB NOT NULL, failed_at INTEGER NOT NULL,
    PRIMARY KEY (source, source_partition, source_offset)
);
INSERT INTO dead_letters_by_partition
    SELECT source, 0, source_offset, error, payload, failed_at FROM dead_letters;
DROP TABLE dead_letters;
ALTER TABLE dead_letters_by_partition RENAME TO dead_letters;";

/// Applies [`MIGRATE_DEAD_LETTERS`] when `dead_letters` has no partition column, deciding and
/// migrating in one write transaction, so two processes opening an old store at once migrate it
/// once.
fn migrate_dead_letters(conn: &mut Connection) -> rusqlite::Result<()> {
    let by_offset = |c: &Connection| -> rusqlite::Result<bool> {
        c.query_row(
            "SELECT COUNT(*) = 0 FROM pragma_table_info('dead_letters') WHERE name = 'source_partition'",
            [],
            |r| r.get(0),
        )
    };
    // the write lock only when there is something to migrate (asked again under it)
    if !by_offset(conn)? {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if by_offset(&tx)? {
        tx.execute_batch(MIGRATE_DEAD_LETTERS)?;
    }
    tx.commit()
}

/// Fills `agg_reporters` (counted notifications per count cell and reporter, added with the
/// sector-fund reporter threshold) from the stored notification states, for data directories
/// from before it existed: the state of a validated notification holds its counted
/// contribution, and `reporter` the reporter of that version.
const BACKFILL_REPORTERS: &str = "
BEGIN;
INSERT INTO agg_reporters (period, year, quarter, sector_code, sbi_section, diagnosis_code,
    diagnosis_group, primary_exposure, primary_exposure_group, sex, age_band, detection_route,
    consequence, reporter, n)
SELECT json_extract(state, '$.counted.key.period'), json_extract(state, '$.counted.key.year'),
    json_extract(state, '$.counted.key.quarter'), json_extract(state, '$.counted.key.sector_code'),
    json_extract(state, '$.counted.key.sbi_section'), json_extract(state, '$.counted.key.diagnosis_code'),
    json_extract(state, '$.counted.key.diagnosis_group'), json_extract(state, '$.counted.key.primary_exposure'),
    json_extract(state, '$.counted.key.primary_exposure_group'), json_extract(state, '$.counted.key.sex'),
    json_extract(state, '$.counted.key.age_band'), json_extract(state, '$.counted.key.detection_route'),
    json_extract(state, '$.counted.key.consequence'), reporter, COUNT(*)
FROM notifications
WHERE status = 'validated' AND json_extract(state, '$.counted.key.period') IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14;
COMMIT;";

/// Moves the per-source checkpoints of older data directories to partition 0 (one transaction).
const MIGRATE_CHECKPOINTS: &str = "
BEGIN;
INSERT OR IGNORE INTO positions (source, partition, next_offset)
    SELECT source, 0, next_offset FROM checkpoints;
DROP TABLE checkpoints;
COMMIT;";

impl EmbeddedStore {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = |source| StoreError::Database {
            path: path.display().to_string(),
            source,
        };
        let open = || -> rusqlite::Result<Connection> {
            let conn = Connection::open(path)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            // NORMAL in WAL mode: a commit survives a process crash; a power loss may lose the
            // last commits, but atomically (data and position together), so they are simply
            // processed again from the log. The store is derived data; the log is the record.
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            // Checkpoints are the checkpointer's job (see `Checkpointer`); this is the fallback.
            conn.pragma_update(None, "wal_autocheckpoint", FALLBACK_AUTOCHECKPOINT_PAGES)?;
            conn.set_prepared_statement_cache_capacity(64);
            conn.busy_timeout(Duration::from_secs(10))?;
            Ok(conn)
        };
        let mut writer = open().map_err(db)?;
        let has_table = |name: &str| -> rusqlite::Result<bool> {
            writer.query_row(
                "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [name],
                |r| r.get(0),
            )
        };
        let backfill =
            has_table("notifications").map_err(db)? && !has_table("agg_reporters").map_err(db)?;
        writer.execute_batch(SCHEMA).map_err(db)?;
        if backfill {
            writer.execute_batch(BACKFILL_REPORTERS).map_err(db)?;
        }
        let legacy: bool = writer
            .query_row(
                "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'checkpoints'",
                [],
                |r| r.get(0),
            )
            .map_err(db)?;
        if legacy {
            writer.execute_batch(MIGRATE_CHECKPOINTS).map_err(db)?;
        }
        migrate_dead_letters(&mut writer).map_err(db)?;
        let reader = open().map_err(db)?;
        let checkpointer = Checkpointer::start(open().map_err(db)?).map_err(|e| {
            StoreError::Task(format!("cannot start the WAL checkpointer thread: {e}"))
        })?;
        Ok(EmbeddedStore {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer: Mutex::new(writer),
                reader: Mutex::new(reader),
                _checkpointer: checkpointer,
            }),
        })
    }

    pub(crate) fn db_error(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Database {
            path: self.inner.path.display().to_string(),
            source,
        }
    }

    /// The next offset to process for (`source`, `partition`) (0 when never processed).
    pub fn position(&self, source: &str, partition: i32) -> Result<i64, StoreError> {
        let conn = lock(&self.inner.reader);
        conn.query_row(
            "SELECT next_offset FROM positions WHERE source = ?1 AND partition = ?2",
            params![source, partition],
            |r| r.get(0),
        )
        .optional()
        .map(|o| o.unwrap_or(0))
        .map_err(|e| self.db_error(e))
    }

    /// The next offset to process for `source`, partition 0 (the embedded log has one).
    pub fn checkpoint(&self, source: &str) -> Result<i64, StoreError> {
        self.position(source, 0)
    }

    /// Decides and applies `records` (consecutive, from the stored position of `source`) in one
    /// transaction together with the new position. Write transactions take the write lock at
    /// their start (`BEGIN IMMEDIATE`), so one that meets another writer (`ods replay --from`
    /// in another process) waits up to the busy timeout instead of failing at its first write.
    /// Records before the stored position are ignored, so a redelivered batch changes nothing.
    /// The records are assessed before the transaction begins. Blocking: call from a blocking
    /// context.
    pub fn apply_batch(
        &self,
        source: &str,
        partition: i32,
        processor: &Processor,
        records: &[LogRecord],
    ) -> Result<BatchStats, StoreError> {
        let assessed = crate::api::assess(processor, source, partition, records, Utc::now());
        let mut applied = self.apply_assessed(source, processor, &[(partition, assessed)])?;
        Ok(applied.pop().map(|(_, stats)| stats).unwrap_or_default())
    }

    /// [`EmbeddedStore::apply_batch`] for several partitions of one source in **one**
    /// transaction (one commit for a whole poll round of the Kafka runner).
    pub fn apply_batches(
        &self,
        source: &str,
        processor: &Processor,
        batches: &[(i32, Vec<LogRecord>)],
    ) -> Result<Vec<(i32, BatchStats)>, StoreError> {
        let assessed = crate::api::assess_batches(processor, source, batches, Utc::now());
        self.apply_assessed(source, processor, &assessed)
    }

    /// Decides and applies records assessed beforehand ([`Processor::assess`]), of several
    /// partitions of one source, in one transaction with their new positions.
    pub fn apply_assessed(
        &self,
        source: &str,
        processor: &Processor,
        batches: &[(i32, Vec<Assessed>)],
    ) -> Result<Vec<(i32, BatchStats)>, StoreError> {
        let mut conn = lock(&self.inner.writer);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.db_error(e))?;
        let mut out = Vec::with_capacity(batches.len());
        for (partition, records) in batches {
            out.push((
                *partition,
                self.apply_in(&tx, source, *partition, processor, records)?,
            ));
        }
        tx.commit().map_err(|e| self.db_error(e))?;
        Ok(out)
    }

    /// Decides and applies assessed `records` of one partition inside `tx`, with the new
    /// position.
    fn apply_in(
        &self,
        tx: &Transaction<'_>,
        source: &str,
        partition: i32,
        processor: &Processor,
        records: &[Assessed],
    ) -> Result<BatchStats, StoreError> {
        let start: i64 = tx
            .prepare_cached(
                "SELECT next_offset FROM positions WHERE source = ?1 AND partition = ?2",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![source, partition], |r| r.get(0))
                    .optional()
            })
            .map_err(|e| self.db_error(e))?
            .unwrap_or(0);
        let mut stats = BatchStats {
            next_offset: start,
            ..BatchStats::default()
        };
        for record in records.iter().filter(|r| r.offset() >= start) {
            let offset = record.offset();
            self.apply_record(tx, source, processor, record, &mut stats)?;
            stats.next_offset = offset + 1;
        }
        cached_execute(
            tx,
            "INSERT INTO positions (source, partition, next_offset) VALUES (?1, ?2, ?3)
             ON CONFLICT (source, partition) DO UPDATE SET next_offset = excluded.next_offset",
            params![source, partition, stats.next_offset],
        )
        .map_err(|e| self.db_error(e))?;
        Ok(stats)
    }

    /// Decides and applies one assessed record inside `tx` (the position is the caller's);
    /// returns whether it was undecodable (a dead letter).
    pub(crate) fn apply_record(
        &self,
        tx: &Transaction<'_>,
        source: &str,
        processor: &Processor,
        record: &Assessed,
        stats: &mut BatchStats,
    ) -> Result<bool, StoreError> {
        stats.records += 1;
        let offset = record.offset();
        let subject = record.subject();
        let previous = match &subject {
            Some((id, _)) => load_state(tx, id).map_err(|e| self.wrap(e))?,
            None => None,
        };
        let decision = processor.decide_assessed(previous.as_ref(), record);
        apply(tx, source, offset, subject.as_ref(), &decision, stats).map_err(|e| self.wrap(e))?;
        Ok(matches!(decision, Decision::DeadLetter(_)))
    }

    /// Takes away what notification `id` contributes and deletes its state and rejections
    /// inside `tx`, as if none of its records had been processed; returns whether it had a
    /// state.
    pub(crate) fn forget_notification(
        &self,
        tx: &Transaction<'_>,
        id: &str,
    ) -> Result<bool, StoreError> {
        let Some(state) = load_state(tx, id).map_err(|e| self.wrap(e))? else {
            return Ok(false);
        };
        let forget = || -> rusqlite::Result<()> {
            if let Some(counted) = &state.counted {
                let reporter = stored_reporter(tx, id)?;
                add_counts(tx, counted, -1, &reporter)?;
            }
            cached_execute(
                tx,
                "DELETE FROM notifications WHERE notification_id = ?1",
                params![id],
            )?;
            cached_execute(
                tx,
                "DELETE FROM rejections WHERE notification_id = ?1",
                params![id],
            )?;
            Ok(())
        };
        forget().map_err(|e| self.db_error(e))?;
        Ok(true)
    }

    /// Deletes all derived data and positions, so the next run rebuilds everything from the log
    /// (`ods replay`).
    pub fn reset(&self) -> Result<(), StoreError> {
        let conn = lock(&self.inner.writer);
        conn.execute_batch(
            "BEGIN; DELETE FROM positions; DELETE FROM notifications; DELETE FROM rejections;
             DELETE FROM agg_counts; DELETE FROM agg_reporters; DELETE FROM agg_exposures;
             DELETE FROM zero_reports;
             DELETE FROM dead_letters; COMMIT;",
        )
        .map_err(|e| self.db_error(e))
    }

    fn wrap(&self, e: ApplyError) -> StoreError {
        match e {
            ApplyError::Db(source) => self.db_error(source),
            ApplyError::Corrupt(what, reason) => StoreError::Corrupt { what, reason },
        }
    }
}

pub(crate) fn lock(m: &Mutex<Connection>) -> std::sync::MutexGuard<'_, Connection> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

enum ApplyError {
    Db(rusqlite::Error),
    Corrupt(String, String),
}

impl From<rusqlite::Error> for ApplyError {
    fn from(e: rusqlite::Error) -> Self {
        ApplyError::Db(e)
    }
}

fn load_state(tx: &Transaction<'_>, id: &str) -> Result<Option<NotificationState>, ApplyError> {
    let text: Option<String> = tx
        .prepare_cached("SELECT state FROM notifications WHERE notification_id = ?1")?
        .query_row(params![id], |r| r.get(0))
        .optional()?;
    text.map(|t| {
        serde_json::from_str(&t)
            .map_err(|e| ApplyError::Corrupt(format!("notification {id}"), e.to_string()))
    })
    .transpose()
}

fn apply(
    tx: &Transaction<'_>,
    source: &str,
    offset: i64,
    subject: Option<&(String, String)>,
    decision: &Decision,
    stats: &mut BatchStats,
) -> Result<(), ApplyError> {
    let now = Utc::now().timestamp_millis();
    match decision {
        Decision::Count {
            state,
            retract,
            add,
            validated,
            stored,
        } => {
            if let Some(old) = retract {
                let reporter = stored_reporter(tx, &validated.notification_id)?;
                add_counts(tx, old, -1, &reporter)?;
            }
            add_counts(tx, add, 1, &validated.reporter_pseudonym)?;
            let bytes = stored
                .validated_avro
                .as_deref()
                .map_err(|e| ApplyError::Corrupt("validated record".into(), e.clone()))?;
            save_state(
                tx,
                &validated.notification_id,
                &validated.reporter_pseudonym,
                (state, &stored.state_json),
                Some(bytes),
                offset,
                now,
            )?;
            stats.validated += 1;
        }
        Decision::Reject {
            state,
            retract,
            rejection,
            stored,
        } => {
            let id = rejection.notification_id.clone().unwrap_or_default();
            if let Some(old) = retract {
                let reporter = stored_reporter(tx, &id)?;
                add_counts(tx, old, -1, &reporter)?;
            }
            save_state(
                tx,
                &id,
                &rejection.reporter_pseudonym,
                (state, &stored.state_json),
                None,
                offset,
                now,
            )?;
            let reasons = rejection_reasons_json(&rejection.reasons);
            cached_execute(
                tx,
                "INSERT OR REPLACE INTO rejections (notification_id, version, reporter, reasons, source_offset, rejected_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, rejection.version, rejection.reporter_pseudonym, reasons, offset, rejection.rejected_at],
            )?;
            stats.count_rejection(rejection);
        }
        Decision::Withdraw {
            state,
            retract,
            stored,
        } => {
            if let Some(old) = retract {
                let id = subject.map(|(id, _)| id.as_str()).unwrap_or_default();
                let reporter = stored_reporter(tx, id)?;
                add_counts(tx, old, -1, &reporter)?;
            }
            if let Some((id, reporter)) = subject {
                save_state(
                    tx,
                    id,
                    reporter,
                    (state, &stored.state_json),
                    None,
                    offset,
                    now,
                )?;
            }
            stats.withdrawn += 1;
        }
        Decision::ZeroReport {
            reporter,
            service,
            period,
        } => {
            cached_execute(
                tx,
                "INSERT OR IGNORE INTO zero_reports (reporter, period, service) VALUES (?1, ?2, ?3)",
                params![reporter, period.to_string(), service],
            )?;
            stats.zero_reports += 1;
        }
        Decision::Skip { .. } => stats.skipped += 1,
        Decision::DeadLetter(dead) => {
            cached_execute(
                tx,
                "INSERT OR REPLACE INTO dead_letters
                     (source, source_partition, source_offset, error, payload, failed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    source,
                    dead.source_partition,
                    offset,
                    dead.error,
                    dead.payload,
                    dead.failed_at
                ],
            )?;
            tracing::warn!(source, partition = dead.source_partition, offset, error = %dead.error, "undecodable record sent to dead letters");
            stats.dead_letters += 1;
        }
    }
    Ok(())
}

/// The stored form of rejection reasons (a JSON array of `field`, `value`, `rule`, `message`,
/// `message_nl`), the same in every store.
pub fn rejection_reasons_json(reasons: &[ods_wire::records::RejectionReason]) -> String {
    serde_json::to_string(
        &reasons
            .iter()
            .map(|r| {
                serde_json::json!({"field": r.field, "value": r.value, "rule": r.rule, "message": r.message, "message_nl": r.message_nl})
            })
            .collect::<Vec<_>>(),
    )
    .unwrap_or_default()
}

/// Executes `sql` as a statement prepared once per connection (the apply path runs the same
/// few statements for every record; parsing them each time cost more than executing them).
pub(crate) fn cached_execute(
    tx: &Transaction<'_>,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<usize> {
    tx.prepare_cached(sql)?.execute(params)
}

fn save_state(
    tx: &Transaction<'_>,
    id: &str,
    reporter: &str,
    (state, state_json): (&NotificationState, &str),
    validated: Option<&[u8]>,
    offset: i64,
    now: i64,
) -> rusqlite::Result<()> {
    cached_execute(
                tx,
        "INSERT INTO notifications (notification_id, version, status, reporter, state, validated, source_offset, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (notification_id) DO UPDATE SET version = excluded.version, status = excluded.status,
           reporter = excluded.reporter, state = excluded.state, validated = excluded.validated,
           source_offset = excluded.source_offset, updated_at = excluded.updated_at",
        params![
            id,
            state.version,
            state.status.as_str(),
            reporter,
            state_json,
            validated,
            offset,
            now
        ],
    )?;
    Ok(())
}

/// The reporter stored with a notification's state: the reporter of the version it last counted
/// (read before the new state replaces it).
fn stored_reporter(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<String> {
    Ok(tx
        .query_row(
            "SELECT reporter FROM notifications WHERE notification_id = ?1",
            params![id],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or_default())
}

fn add_counts(
    tx: &Transaction<'_>,
    c: &Contribution,
    delta: i64,
    reporter: &str,
) -> rusqlite::Result<()> {
    let k = &c.key;
    // a cell can only reach zero by a retraction: additions skip the clean-up statements
    let retracting = delta < 0;
    cached_execute(
        tx,
        "INSERT INTO agg_reporters (period, year, quarter, sector_code, sbi_section, diagnosis_code, diagnosis_group,
            primary_exposure, primary_exposure_group, sex, age_band, detection_route, consequence, reporter, n)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
         ON CONFLICT (period, sector_code, diagnosis_code, primary_exposure, sex, age_band, detection_route, consequence, reporter)
         DO UPDATE SET n = n + excluded.n",
        params![
            k.period, k.year, k.quarter, k.sector_code, k.sbi_section, k.diagnosis_code, k.diagnosis_group,
            k.primary_exposure, k.primary_exposure_group, k.sex, k.age_band, k.detection_route, k.consequence,
            reporter, delta
        ],
    )?;
    if retracting {
        cached_execute(
            tx,
            "DELETE FROM agg_reporters WHERE n = 0 AND period = ?1 AND sector_code = ?2 AND diagnosis_code = ?3
               AND primary_exposure = ?4 AND sex = ?5 AND age_band = ?6 AND detection_route = ?7 AND consequence = ?8
               AND reporter = ?9",
            params![k.period, k.sector_code, k.diagnosis_code, k.primary_exposure, k.sex, k.age_band, k.detection_route, k.consequence, reporter],
        )?;
    }
    cached_execute(
        tx,
        "INSERT INTO agg_counts (period, year, quarter, sector_code, sbi_section, diagnosis_code, diagnosis_group,
            primary_exposure, primary_exposure_group, sex, age_band, detection_route, consequence, n)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
         ON CONFLICT (period, sector_code, diagnosis_code, primary_exposure, sex, age_band, detection_route, consequence)
         DO UPDATE SET n = n + excluded.n",
        params![
            k.period, k.year, k.quarter, k.sector_code, k.sbi_section, k.diagnosis_code, k.diagnosis_group,
            k.primary_exposure, k.primary_exposure_group, k.sex, k.age_band, k.detection_route, k.consequence, delta
        ],
    )?;
    if retracting {
        cached_execute(
            tx,
            "DELETE FROM agg_counts WHERE n = 0 AND period = ?1 AND sector_code = ?2 AND diagnosis_code = ?3
               AND primary_exposure = ?4 AND sex = ?5 AND age_band = ?6 AND detection_route = ?7 AND consequence = ?8",
            params![k.period, k.sector_code, k.diagnosis_code, k.primary_exposure, k.sex, k.age_band, k.detection_route, k.consequence],
        )?;
    }
    for (code, group) in &c.exposures {
        cached_execute(
            tx,
            "INSERT INTO agg_exposures (period, sector_code, sbi_section, diagnosis_code, diagnosis_group, exposure_code, exposure_group, n)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (period, sector_code, diagnosis_code, exposure_code) DO UPDATE SET n = n + excluded.n",
            params![k.period, k.sector_code, k.sbi_section, k.diagnosis_code, k.diagnosis_group, code, group, delta],
        )?;
        if retracting {
            cached_execute(
                tx,
                "DELETE FROM agg_exposures WHERE n = 0 AND period = ?1 AND sector_code = ?2 AND diagnosis_code = ?3 AND exposure_code = ?4",
                params![k.period, k.sector_code, k.diagnosis_code, code],
            )?;
        }
    }
    Ok(())
}

impl EmbeddedStore {
    /// Runs a blocking call on tokio's blocking pool.
    async fn blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(EmbeddedStore) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(store))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }
}

#[async_trait]
impl crate::AnalyticsStore for EmbeddedStore {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    async fn apply_batch(
        &self,
        source: &str,
        partition: i32,
        processor: &Processor,
        records: Vec<LogRecord>,
    ) -> Result<BatchStats, StoreError> {
        let (source, processor) = (source.to_string(), processor.clone());
        self.blocking(move |s| s.apply_batch(&source, partition, &processor, &records))
            .await
    }

    async fn apply_batches(
        &self,
        source: &str,
        processor: &Processor,
        batches: Vec<(i32, Vec<LogRecord>)>,
    ) -> Result<Vec<(i32, BatchStats)>, StoreError> {
        let (source, processor) = (source.to_string(), processor.clone());
        self.blocking(move |s| s.apply_batches(&source, &processor, &batches))
            .await
    }

    async fn apply_assessed(
        &self,
        source: &str,
        processor: &Processor,
        batches: crate::AssessedBatches,
        _look_ahead: &crate::LookAhead,
    ) -> Result<Vec<(i32, BatchStats)>, StoreError> {
        let (source, processor) = (source.to_string(), processor.clone());
        self.blocking(move |s| s.apply_assessed(&source, &processor, &batches))
            .await
    }

    async fn position(&self, source: &str, partition: i32) -> Result<i64, StoreError> {
        let source = source.to_string();
        self.blocking(move |s| s.position(&source, partition)).await
    }

    async fn exact_counts(
        &self,
        query: &crate::CountQuery,
    ) -> Result<Vec<(crate::CellKey, i64)>, StoreError> {
        let query = query.clone();
        self.blocking(move |s| s.exact_counts(&query)).await
    }

    async fn exact_counts_by_reporter(
        &self,
        query: &crate::CountQuery,
    ) -> Result<Vec<(crate::CellKey, String, i64)>, StoreError> {
        let query = query.clone();
        self.blocking(move |s| s.exact_counts_by_reporter(&query))
            .await
    }

    async fn reporter_activity(&self) -> Result<Vec<crate::ReporterActivity>, StoreError> {
        self.blocking(|s| s.reporter_activity()).await
    }

    async fn totals(&self) -> Result<crate::Totals, StoreError> {
        self.blocking(|s| s.totals()).await
    }

    async fn notification(&self, id: &str) -> Result<Option<crate::NotificationView>, StoreError> {
        let id = id.to_string();
        self.blocking(move |s| s.notification(&id)).await
    }

    async fn record_signals(&self, signals: &[SignalRecord]) -> Result<usize, StoreError> {
        let signals = signals.to_vec();
        self.blocking(move |s| s.record_signals(&signals)).await
    }

    async fn signals(&self) -> Result<Vec<SignalRecord>, StoreError> {
        self.blocking(|s| s.signals()).await
    }

    async fn signal(
        &self,
        id: &str,
    ) -> Result<Option<(SignalRecord, Vec<AuditEntry>)>, StoreError> {
        let id = id.to_string();
        self.blocking(move |s| s.signal(&id)).await
    }

    async fn save_review(
        &self,
        record: &SignalRecord,
        entry: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let (record, entry) = (record.clone(), entry.clone());
        self.blocking(move |s| s.save_review(&record, &entry)).await
    }

    async fn reset(&self) -> Result<(), StoreError> {
        self.blocking(|s| s.reset()).await
    }
}

/// A review status column, refused when the text is not a known status.
fn status_column(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<SignalStatus> {
    let text: String = r.get(i)?;
    SignalStatus::parse(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("unknown signal status {text:?}").into(),
        )
    })
}

fn signal_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SignalRecord> {
    let json_error = |i: usize, e: serde_json::Error| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    };
    Ok(SignalRecord {
        id: r.get(0)?,
        kind: r.get(1)?,
        subject: serde_json::from_str(&r.get::<_, String>(2)?).map_err(|e| json_error(2, e))?,
        period: r.get(3)?,
        numbers: serde_json::from_str(&r.get::<_, String>(4)?).map_err(|e| json_error(4, e))?,
        method: r.get(5)?,
        explanation: r.get(6)?,
        status: status_column(r, 7)?,
        note: r.get(8)?,
        detected_at_ms: r.get(9)?,
        updated_at_ms: r.get(10)?,
        revision: u64::try_from(r.get::<_, i64>(11)?).unwrap_or(0),
    })
}

const SIGNAL_COLUMNS: &str = "id, kind, subject, period, numbers, method, explanation, status, \
     note, detected_at_ms, updated_at_ms, revision";

impl EmbeddedStore {
    /// Adds the signals not stored yet (see [`crate::AnalyticsStore::record_signals`]).
    pub fn record_signals(&self, signals: &[SignalRecord]) -> Result<usize, StoreError> {
        let mut conn = lock(&self.inner.writer);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.db_error(e))?;
        let mut added = 0;
        for s in signals {
            added += tx
                .execute(
                    &format!(
                        "INSERT OR IGNORE INTO signals ({SIGNAL_COLUMNS})
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
                    ),
                    params![
                        s.id,
                        s.kind,
                        serde_json::to_string(&s.subject).unwrap_or_default(),
                        s.period,
                        serde_json::to_string(&s.numbers).unwrap_or_default(),
                        s.method,
                        s.explanation,
                        s.status.as_str(),
                        s.note,
                        s.detected_at_ms,
                        s.updated_at_ms,
                        i64::try_from(s.revision).unwrap_or(i64::MAX)
                    ],
                )
                .map_err(|e| self.db_error(e))?;
        }
        tx.commit().map_err(|e| self.db_error(e))?;
        Ok(added)
    }

    /// Every signal, newest detection first.
    pub fn signals(&self) -> Result<Vec<SignalRecord>, StoreError> {
        let conn = lock(&self.inner.reader);
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {SIGNAL_COLUMNS} FROM signals ORDER BY detected_at_ms DESC, id"
            ))
            .map_err(|e| self.db_error(e))?;
        let rows = stmt
            .query_map([], signal_from_row)
            .map_err(|e| self.db_error(e))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.db_error(e))
    }

    /// One signal and its audit trail, oldest change first.
    pub fn signal(&self, id: &str) -> Result<Option<(SignalRecord, Vec<AuditEntry>)>, StoreError> {
        let conn = lock(&self.inner.reader);
        let record = conn
            .query_row(
                &format!("SELECT {SIGNAL_COLUMNS} FROM signals WHERE id = ?1"),
                [id],
                signal_from_row,
            )
            .optional()
            .map_err(|e| self.db_error(e))?;
        let Some(record) = record else {
            return Ok(None);
        };
        let mut stmt = conn
            .prepare(
                "SELECT signal_id, at_ms, actor, from_status, to_status, note, revision
                 FROM signal_audit WHERE signal_id = ?1 ORDER BY revision",
            )
            .map_err(|e| self.db_error(e))?;
        let rows = stmt
            .query_map([id], |r| {
                let status = |i: usize| status_column(r, i);
                Ok(AuditEntry {
                    signal_id: r.get(0)?,
                    at_ms: r.get(1)?,
                    actor: r.get(2)?,
                    from_status: status(3)?,
                    to_status: status(4)?,
                    note: r.get(5)?,
                    revision: u64::try_from(r.get::<_, i64>(6)?).unwrap_or(0),
                })
            })
            .map_err(|e| self.db_error(e))?;
        let audit = rows
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.db_error(e))?;
        Ok(Some((record, audit)))
    }

    /// Stores a review change atomically: false (nothing written) when the stored revision is
    /// no longer the one before `record`'s.
    pub fn save_review(
        &self,
        record: &SignalRecord,
        entry: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let mut conn = lock(&self.inner.writer);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.db_error(e))?;
        let changed = tx
            .execute(
                "UPDATE signals SET status = ?1, note = ?2, updated_at_ms = ?3, revision = ?4
                 WHERE id = ?5 AND revision = ?6",
                params![
                    record.status.as_str(),
                    record.note,
                    record.updated_at_ms,
                    i64::try_from(record.revision).unwrap_or(i64::MAX),
                    record.id,
                    i64::try_from(record.revision.saturating_sub(1)).unwrap_or(i64::MAX)
                ],
            )
            .map_err(|e| self.db_error(e))?;
        if changed == 0 {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO signal_audit (signal_id, at_ms, actor, from_status, to_status, note, revision)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                entry.signal_id,
                entry.at_ms,
                entry.actor,
                entry.from_status.as_str(),
                entry.to_status.as_str(),
                entry.note,
                i64::try_from(entry.revision).unwrap_or(i64::MAX)
            ],
        )
        .map_err(|e| self.db_error(e))?;
        tx.commit().map_err(|e| self.db_error(e))?;
        Ok(true)
    }
}
