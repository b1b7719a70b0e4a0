//! The embedded analytics store of `ods run`.
//!
//! ## Delivery guarantee: checkpoint stored with the data
//! The store keeps, per source (a log topic and partition), the next offset to process, in the
//! **same SQLite transaction** as every change that the processed records caused (notification
//! state, count deltas, rejections, zero reports, dead letters). After a crash at any point,
//! either a batch's changes and its new position are both on disk, or neither is; the runner
//! resumes at the stored position, so every record's effect is applied exactly once
//! (Quickwit's design; the Kafka-mode ClickHouse sink of issue 5 gets the same property from
//! idempotent, offset-versioned rows).
//!
//! ## One interface, two stores
//! [`AnalyticsStore`] is what the processor runners and the query API need; the embedded store
//! here and `ods_clickhouse::ClickHouseStore` (distributed mode) implement it with identical
//! answers. Positions are kept per (source, partition).
//!
//! ## Disclosure control
//! Published counts below [`SUPPRESSION_THRESHOLD`] (sector funds: below
//! [`SECTOR_FUND_THRESHOLD`] or from fewer than [`SECTOR_FUND_MIN_REPORTERS`] reporters) are
//! returned as `null` with `suppressed: true`, with complementary suppression so that no
//! withheld cell can be derived from totals, coarser queries or overlapping filters
//! (`shared/domain.md` §6). Stores answer exact counts only; sector scope and suppression are
//! one shared pure module ([`disclosure`]), so every store publishes the same.

mod api;
pub mod disclosure;
mod queries;
mod replay;
pub mod review;
mod store;

pub use api::{assess, AnalyticsStore, AssessedBatches, BatchOutputs, LookAhead, Outlet, Totals};
pub use disclosure::{Disclosed, DisclosureError, ExactCell, Policy, Published};
pub use queries::{
    CellKey, CountCell, CountQuery, Dimension, NotificationView, ReporterActivity, Summary,
};
pub use replay::{
    LogTopic, RecordSource, ReplayFromStats, ReplayPhase, ReplayProgress, REPLAY_PAGE,
};
pub use review::{AuditEntry, ReviewError, SignalRecord, SignalStatus};
pub use store::{rejection_reasons_json, BatchStats, EmbeddedStore, StoreError};

/// Cells with fewer notifications than this are suppressed in published answers.
pub const SUPPRESSION_THRESHOLD: i64 = 5;

/// For sector funds, cells with fewer notifications than this are suppressed.
pub const SECTOR_FUND_THRESHOLD: i64 = 10;

/// For sector funds, cells from fewer distinct reporting doctors than this are suppressed.
pub const SECTOR_FUND_MIN_REPORTERS: usize = 3;
