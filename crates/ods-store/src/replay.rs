//! Re-processing from a point of the log (`ods replay --from`).
//!
//! A full replay empties the store and processes the whole log again. Re-processing from an
//! offset X keeps what records before X did and redoes, with the processor as it is now (code
//! lists, rules, decoder), what records from X did. Because a notification's state depends on
//! all of its versions, that is done per notification:
//!
//! 1. the notifications with a record in `[X, P)` are found, where P is the stored position
//!    (records from P on are the running processor's, not the replay's);
//! 2. each of them is forgotten: its contribution is taken away from every aggregate, its state
//!    and rejections are deleted (as are the dead letters in `[X, P)`);
//! 3. all of their records before P, from offset 0, are decided and applied again in order.
//!
//! A notification without records from X on keeps its state, so the result equals a full
//! replay when the processor did not change, and otherwise has the new processor's verdict on
//! every notification that the records from X touched. All of this is **one** SQLite
//! transaction taken with the write lock at its start (`BEGIN IMMEDIATE`): queries keep
//! answering from the old state until it commits, a crash leaves the old state whole, and the
//! position is not moved. The log is keyed by notification id (intake keys every notification
//! event by it; zero reports by the reporter, whose re-application changes nothing).

use std::collections::HashSet;

use chrono::Utc;
use ods_log::{EmbeddedLog, LogError, LogRecord};
use ods_processor::Processor;
use rusqlite::{params, OptionalExtension, TransactionBehavior};

use crate::store::{cached_execute, lock, BatchStats, EmbeddedStore, StoreError};

/// Records scanned per read of the log.
pub const REPLAY_PAGE: usize = 20_000;

/// Where a replay reads records: one topic of the embedded log, or records in memory.
pub trait RecordSource {
    /// The `(offset, key)` of up to `limit` records with `from <= offset < until`, in order.
    fn keys(&self, from: i64, until: i64, limit: usize) -> Result<Vec<(i64, String)>, LogError>;

    /// Scans up to `limit` records with `from <= offset < until` in order and returns those
    /// whose key `keep` accepts, with the offset the scan stopped at (`until` at the end).
    fn matching(
        &self,
        from: i64,
        until: i64,
        limit: usize,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<(Vec<LogRecord>, i64), LogError>;
}

/// One topic of the embedded log as a [`RecordSource`].
pub struct LogTopic<'a> {
    /// The log.
    pub log: &'a EmbeddedLog,
    /// The topic.
    pub topic: &'a str,
}

impl RecordSource for LogTopic<'_> {
    fn keys(&self, from: i64, until: i64, limit: usize) -> Result<Vec<(i64, String)>, LogError> {
        self.log.read_keys(self.topic, from, until, limit)
    }

    fn matching(
        &self,
        from: i64,
        until: i64,
        limit: usize,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<(Vec<LogRecord>, i64), LogError> {
        self.log.read_matching(self.topic, from, until, limit, keep)
    }
}

/// Records in memory, in offset order (tests and tools).
impl RecordSource for Vec<LogRecord> {
    fn keys(&self, from: i64, until: i64, limit: usize) -> Result<Vec<(i64, String)>, LogError> {
        Ok(self
            .iter()
            .filter(|r| r.offset >= from && r.offset < until)
            .take(limit)
            .map(|r| (r.offset, r.key.clone()))
            .collect())
    }

    fn matching(
        &self,
        from: i64,
        until: i64,
        limit: usize,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<(Vec<LogRecord>, i64), LogError> {
        let scanned: Vec<&LogRecord> = self
            .iter()
            .filter(|r| r.offset >= from && r.offset < until)
            .take(limit)
            .collect();
        let next = match scanned.last() {
            Some(last) if scanned.len() == limit => last.offset + 1,
            _ => until,
        };
        let kept = scanned
            .into_iter()
            .filter(|r| keep(&r.key))
            .cloned()
            .collect();
        Ok((kept, next))
    }
}

/// The stage a replay is in, for progress reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayPhase {
    /// Reading the records from the replay point to find the notifications they touch.
    Finding,
    /// Reading the log from the start and applying the records of those notifications again.
    Reapplying,
}

/// A progress report: `done` of `total` offsets of the current phase read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayProgress {
    /// Stage.
    pub phase: ReplayPhase,
    /// Offsets read in this stage.
    pub done: i64,
    /// Offsets this stage reads.
    pub total: i64,
}

/// What a replay from a point did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayFromStats {
    /// The replay point.
    pub from: i64,
    /// The stored position: records at and after it were left to the processor.
    pub until: i64,
    /// Keys with a record in `[from, until)`: notification ids, and the reporters of zero
    /// reports (re-applying a zero report changes nothing).
    pub keys: usize,
    /// Notifications re-processed: those keys with a state after re-applying.
    pub notifications: usize,
    /// States taken back before re-applying.
    pub forgotten: usize,
    /// What applying their records again did (`records`: records applied).
    pub applied: BatchStats,
}

impl EmbeddedStore {
    /// Re-processes, in one transaction, every notification with a record at or after `from`
    /// (and before the stored position) of (`source`, `partition`), reading `log`; see the
    /// module docs. The position does not move. Blocking: call from a blocking context.
    pub fn replay_from(
        &self,
        source: &str,
        partition: i32,
        processor: &Processor,
        from: i64,
        log: &dyn RecordSource,
        progress: &mut dyn FnMut(ReplayProgress),
    ) -> Result<ReplayFromStats, StoreError> {
        self.replay_from_paged(
            source,
            partition,
            processor,
            from,
            log,
            REPLAY_PAGE,
            progress,
        )
    }

    /// [`EmbeddedStore::replay_from`] reading the log `page` records at a time
    /// ([`REPLAY_PAGE`] there).
    #[allow(clippy::too_many_arguments)]
    pub fn replay_from_paged(
        &self,
        source: &str,
        partition: i32,
        processor: &Processor,
        from: i64,
        log: &dyn RecordSource,
        page: usize,
        progress: &mut dyn FnMut(ReplayProgress),
    ) -> Result<ReplayFromStats, StoreError> {
        let page = page.max(1);
        let mut conn = lock(&self.inner.writer);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.db_error(e))?;
        let until: i64 = tx
            .query_row(
                "SELECT next_offset FROM positions WHERE source = ?1 AND partition = ?2",
                params![source, partition],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.db_error(e))?
            .unwrap_or(0);
        let from = from.max(0);
        let mut stats = ReplayFromStats {
            from,
            until,
            ..ReplayFromStats::default()
        };
        if from >= until {
            return Ok(stats);
        }

        // 1. the notifications touched from the replay point on
        let mut touched: HashSet<String> = HashSet::new();
        let mut next = from;
        while next < until {
            let keys = log.keys(next, until, page)?;
            let Some(&(last, _)) = keys.last() else {
                break;
            };
            touched.extend(keys.into_iter().map(|(_, key)| key));
            next = last + 1;
            progress(ReplayProgress {
                phase: ReplayPhase::Finding,
                done: next - from,
                total: until - from,
            });
        }
        stats.keys = touched.len();

        // 2. forget them (and the dead letters of the range, which are decided again)
        for id in &touched {
            if self.forget_notification(&tx, id)? {
                stats.forgotten += 1;
            }
        }
        cached_execute(
            &tx,
            "DELETE FROM dead_letters WHERE source = ?1 AND source_partition = ?2
                 AND source_offset >= ?3 AND source_offset < ?4",
            params![source, partition, from, until],
        )
        .map_err(|e| self.db_error(e))?;

        // 3. apply all of their records again, in order
        let now = Utc::now();
        let keep = |key: &str| touched.contains(key);
        let mut next = 0i64;
        while next < until {
            let (records, scanned_to) = log.matching(next, until, page, &keep)?;
            for record in &records {
                let assessed =
                    processor.assess(source, partition, record.offset, &record.payload, now);
                let dead =
                    self.apply_record(&tx, source, processor, &assessed, &mut stats.applied)?;
                if !dead && record.offset < from {
                    // a record the decoder now reads: its old dead letter goes
                    cached_execute(
                        &tx,
                        "DELETE FROM dead_letters
                         WHERE source = ?1 AND source_partition = ?2 AND source_offset = ?3",
                        params![source, partition, record.offset],
                    )
                    .map_err(|e| self.db_error(e))?;
                }
            }
            if scanned_to <= next {
                break;
            }
            next = scanned_to;
            progress(ReplayProgress {
                phase: ReplayPhase::Reapplying,
                done: next,
                total: until,
            });
        }
        stats.applied.next_offset = until;
        for key in &touched {
            let has_state: bool = tx
                .prepare_cached("SELECT COUNT(*) > 0 FROM notifications WHERE notification_id = ?1")
                .and_then(|mut stmt| stmt.query_row(params![key], |r| r.get(0)))
                .map_err(|e| self.db_error(e))?;
            stats.notifications += usize::from(has_state);
        }
        tx.commit().map_err(|e| self.db_error(e))?;
        Ok(stats)
    }
}
