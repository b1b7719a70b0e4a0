//! One store interface, two implementations: [`AnalyticsStore`] is what the processor runners
//! and the query API need from a store. [`crate::EmbeddedStore`] (SQLite, `ods run`) and
//! `ods_clickhouse::ClickHouseStore` (distributed mode) implement it with identical answers
//! (checked by the conformance suite in `crates/ods-clickhouse/tests`).
//!
//! The trait is async because the ClickHouse client is; the embedded store runs its blocking
//! SQLite calls on tokio's blocking pool (`spawn_blocking`). Use it as `Arc<dyn
//! AnalyticsStore>`.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use ods_log::LogRecord;
use ods_processor::{Assessed, Processor};
use ods_wire::records::{DeadLetter, NotificationRejected, NotificationValidated};
use serde::Serialize;

use crate::disclosure::{self, Disclosed, ExactCell, Policy, Published};
use crate::queries::{CellKey, CountQuery, Dimension, NotificationView, ReporterActivity, Summary};
use crate::review::{AuditEntry, SignalRecord};
use crate::store::{BatchStats, StoreError};

/// Assessed records of several partitions of one source, each partition's in log order: what
/// [`AnalyticsStore::apply_assessed`] applies. Shared, so a failed batch is retried from the
/// same assessments without copying them.
pub type AssessedBatches = Arc<Vec<(i32, Vec<Assessed>)>>;

/// What a store looked up for a round before applying it ([`AnalyticsStore::look_ahead`]),
/// possibly while the previous round was still being applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LookAhead {
    /// The notifications of the round that were looked up.
    pub checked: HashSet<String>,
    /// Those of them that had a stored state then.
    pub stored: HashSet<String>,
}

/// Assesses `records` of one partition of `source` ([`Processor::assess`]), in order.
pub fn assess(
    processor: &Processor,
    source: &str,
    partition: i32,
    records: &[LogRecord],
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<Assessed> {
    records
        .iter()
        .map(|r| processor.assess(source, partition, r.offset, &r.payload, now))
        .collect()
}

/// [`assess`] for the records of several partitions, each in order.
pub fn assess_batches(
    processor: &Processor,
    source: &str,
    batches: &[(i32, Vec<LogRecord>)],
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<(i32, Vec<Assessed>)> {
    batches
        .iter()
        .map(|(partition, records)| {
            (
                *partition,
                assess(processor, source, *partition, records, now),
            )
        })
        .collect()
}

/// Pipeline totals before disclosure control (the scalar part of [`Summary`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Notifications currently counted (validated, not withdrawn).
    pub notifications_counted: i64,
    /// Notifications whose latest version was rejected by the processor.
    pub notifications_rejected: i64,
    /// Withdrawn notifications.
    pub notifications_withdrawn: i64,
    /// Zero reports (distinct reporter and month).
    pub zero_reports: i64,
    /// Distinct reporters with a counted notification.
    pub reporters: i64,
    /// Undecodable records set aside.
    pub dead_letters: i64,
}

/// What one batch decided that also leaves the store: the records of the distributed mode's
/// output topics (`ods.validated.v1`, `ods.rejections.v1`, `ods.deadletter.v1`). In embedded
/// mode the store's own `rejections` and `dead_letters` tables are their only home.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchOutputs {
    /// Validated versions (only when [`Outlet::wants_validated`]).
    pub validated: Vec<NotificationValidated>,
    /// Rejected versions, with the original event and reasons.
    pub rejections: Vec<NotificationRejected>,
    /// Undecodable records.
    pub dead_letters: Vec<DeadLetter>,
}

impl BatchOutputs {
    /// Whether there is nothing to emit.
    pub fn is_empty(&self) -> bool {
        self.validated.is_empty() && self.rejections.is_empty() && self.dead_letters.is_empty()
    }
}

/// Where a store sends a batch's [`BatchOutputs`]. A store calls [`Outlet::emit`] after
/// deciding a batch and **before writing any of it**, and fails the batch when the outlet
/// fails; so every stored decision was emitted first (at-least-once on the outlet: a batch that
/// fails later and is processed again emits again; consumers recognise the copy by source
/// partition and offset).
#[async_trait]
pub trait Outlet: Send + Sync {
    /// Whether the store should hand over validated versions too (they are copied only then).
    fn wants_validated(&self) -> bool;

    /// Emits the outputs; resolves `Ok` only once all of them are durably written.
    async fn emit(&self, outputs: BatchOutputs) -> Result<(), StoreError>;
}

/// What the processor runner and the query API need from an analytics store.
#[async_trait]
pub trait AnalyticsStore: Send + Sync {
    /// A short name for logs and metrics (`embedded`, `clickhouse`).
    fn backend(&self) -> &'static str;

    /// Decides and applies records of several partitions of one source, assessed beforehand
    /// ([`Processor::assess`]) and consecutive per partition from its stored position, and
    /// stores the new positions: one transaction (embedded) or one set of inserts (ClickHouse)
    /// for a whole poll round. Idempotent: records before a stored position are ignored, and
    /// applying a batch again (or after a crash part-way) changes no answer. Stats per
    /// partition, in the given order.
    ///
    /// Assessing needs no store, so the Kafka runner assesses the next poll round while the
    /// store applies this one.
    ///
    /// `look_ahead` is what [`AnalyticsStore::look_ahead`] found for this round (or the
    /// default, nothing): the store relies on it only for notifications that no round applied
    /// after the look-up could have changed.
    async fn apply_assessed(
        &self,
        source: &str,
        processor: &Processor,
        batches: AssessedBatches,
        look_ahead: &LookAhead,
    ) -> Result<Vec<(i32, BatchStats)>, StoreError>;

    /// Looks up what applying `batches` will need to read, before it is applied: the Kafka
    /// runner calls it on its polling thread for round n+1 while round n is applied, and hands
    /// the answer to [`AnalyticsStore::apply_assessed`]. Only reads. The default looks up
    /// nothing (the embedded store reads states inside its transaction, where they cost little).
    async fn look_ahead(
        &self,
        _source: &str,
        _batches: &AssessedBatches,
    ) -> Result<LookAhead, StoreError> {
        Ok(LookAhead::default())
    }

    /// [`AnalyticsStore::apply_assessed`] for log records of several partitions, assessed here.
    async fn apply_batches(
        &self,
        source: &str,
        processor: &Processor,
        batches: Vec<(i32, Vec<LogRecord>)>,
    ) -> Result<Vec<(i32, BatchStats)>, StoreError> {
        let assessed = assess_batches(processor, source, &batches, chrono::Utc::now());
        self.apply_assessed(source, processor, Arc::new(assessed), &LookAhead::default())
            .await
    }

    /// [`AnalyticsStore::apply_batches`] for one partition.
    async fn apply_batch(
        &self,
        source: &str,
        partition: i32,
        processor: &Processor,
        records: Vec<LogRecord>,
    ) -> Result<BatchStats, StoreError> {
        let mut applied = self
            .apply_batches(source, processor, vec![(partition, records)])
            .await?;
        Ok(applied.pop().map(|(_, stats)| stats).unwrap_or_default())
    }

    /// The next offset to process for (source, partition); 0 when never processed.
    async fn position(&self, source: &str, partition: i32) -> Result<i64, StoreError>;

    /// Exact counts for the query's `group_by`, filters and period. Implementations ignore
    /// `sector_scope`: scope and suppression are disclosure control, applied by
    /// [`disclosure`] in the provided methods.
    async fn exact_counts(&self, query: &CountQuery) -> Result<Vec<(CellKey, i64)>, StoreError>;

    /// Exact counts per cell **and reporter** (pseudonym) for the query's `group_by`, filters and
    /// period: one row per (cell, reporter) with that reporter's currently counted
    /// notifications in the cell (the reporter of a notification's latest counted version).
    /// When `sector_scope` is set, only notifications whose SBI section or sector code is in the
    /// scope (the rows are many, so the store keeps them to the fund's sectors; disclosure
    /// control applies the scope again). For the reporter thresholds of sector funds only:
    /// never published.
    async fn exact_counts_by_reporter(
        &self,
        query: &CountQuery,
    ) -> Result<Vec<(CellKey, String, i64)>, StoreError>;

    /// Every reporter's activity per month and service: counted notifications by the month
    /// they were filed (the reporter and service of each notification's latest counted version)
    /// and zero reports, one row per (period, reporter, service) with either non-zero, ordered
    /// by (period, reporter, service). Reporter-level: for participation statistics only, never
    /// published as it is.
    async fn reporter_activity(&self) -> Result<Vec<ReporterActivity>, StoreError>;

    /// Pipeline totals.
    async fn totals(&self) -> Result<Totals, StoreError>;

    /// The processing status of one notification (latest version, status, rejection reasons).
    async fn notification(&self, id: &str) -> Result<Option<NotificationView>, StoreError>;

    /// Records signals raised by a sweep: ids not stored yet are added as given (status `new`,
    /// revision 1); a known id is left as it is (its review state and first numbers stay).
    /// Returns how many were added.
    async fn record_signals(&self, signals: &[SignalRecord]) -> Result<usize, StoreError>;

    /// Every stored signal at its latest revision, newest detection first.
    async fn signals(&self) -> Result<Vec<SignalRecord>, StoreError>;

    /// One signal and its audit trail (oldest change first).
    async fn signal(&self, id: &str)
        -> Result<Option<(SignalRecord, Vec<AuditEntry>)>, StoreError>;

    /// Stores a review change made with [`crate::review::review`]: the new revision and its
    /// audit entry. `Ok(false)` (nothing written) when the stored revision is no longer the one
    /// before `record`'s, i.e. someone else changed the signal meanwhile.
    async fn save_review(
        &self,
        record: &SignalRecord,
        entry: &AuditEntry,
    ) -> Result<bool, StoreError>;

    /// Deletes all derived data and positions (`ods replay` rebuilds from the log); signals
    /// and their reviews stay.
    async fn reset(&self) -> Result<(), StoreError>;

    /// Exact counts within the sector scope, without suppression: for internal computations
    /// (signals, checks) only, never to be published as they are.
    async fn counts_unsuppressed(
        &self,
        query: &CountQuery,
    ) -> Result<Vec<(CellKey, i64)>, StoreError> {
        let exact = self.exact_counts(&disclosure::store_query(query)).await?;
        Ok(disclosure::apply_scope(query, exact))
    }

    /// Every table behind the published answer to `query`, suppressed (sector scope, primary
    /// and complementary suppression, see [`disclosure`]). Answers to `query` and to coarser
    /// queries with the same scope are read from it with [`Disclosed::answer`].
    async fn disclosed(&self, query: &CountQuery) -> Result<Disclosed, StoreError> {
        let table = disclosure::table_query(query);
        let rows = if Policy::of(query).min_reporters > 0 {
            ExactCell::from_reporter_counts(self.exact_counts_by_reporter(&table).await?)
        } else {
            ExactCell::from_counts(self.exact_counts(&table).await?)
        };
        let query = query.clone();
        tokio::task::spawn_blocking(move || Disclosed::new(&query, rows))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))
    }

    /// Published counts: sector scope, primary and complementary suppression applied.
    async fn counts(&self, query: &CountQuery) -> Result<Published, StoreError> {
        Ok(self.disclosed(query).await?.answer(query)?)
    }

    /// Totals and published counts per year.
    async fn summary(&self) -> Result<Summary, StoreError> {
        let totals = self.totals().await?;
        let by_year = self
            .counts(&CountQuery {
                group_by: vec![Dimension::Year],
                ..CountQuery::default()
            })
            .await?;
        Ok(Summary::new(totals, by_year.cells))
    }
}
