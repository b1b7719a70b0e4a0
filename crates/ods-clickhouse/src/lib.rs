//! The analytics store in distributed mode: ClickHouse, with exactly the answers of the embedded
//! store (`ods_store::EmbeddedStore`), behind the same [`ods_store::AnalyticsStore`] trait.
//!
//! ## Idempotent by construction
//! ClickHouse has no multi-table transactions (and old servers no insert deduplication), so the
//! embedded store's "checkpoint in the same transaction" is not available. Instead every write is
//! a **state row versioned by its source offset** in a `ReplacingMergeTree(source_offset)` table,
//! and every read takes the latest row per key (`argMax(..., source_offset)`):
//!
//! * `notifications`: the processor's state of each notification after its latest version;
//! * `contributions`: what each notification contributes to the aggregates after its latest
//!   version (`counted = 1` with the count key and exposures, or `counted = 0`);
//! * `rejections`, `zero_reports`, `dead_letters`: keyed by notification version, (reporter,
//!   month) and (source, partition, offset);
//! * `positions`: the next offset per (source, partition), `ReplacingMergeTree(next_offset)`.
//!
//! Aggregates are **computed at query time** (`GROUP BY` over the latest, counted contributions),
//! never incremented, so writing the same row twice changes nothing.
//!
//! A batch is written in this order: derived rows (contributions, rejections, zero reports, dead
//! letters), then the notification states, then the position. Why a crash anywhere gives the
//! same aggregates once the batch is processed again from the stored (old) position:
//!
//! * The processor decides from the previous state of a notification and the record only
//!   (`ods_processor`). A record whose state row was stored before the crash is decided again
//!   with that state and becomes `Skip` (version not above the stored one): nothing is written.
//! * A record whose state row was not stored is decided from the same previous state as the
//!   first time, so it produces **the identical rows** (same keys, same version = offset);
//!   ReplacingMergeTree and `argMax` make the second copy indistinguishable from the first.
//! * Because states are written after the derived rows, a stored state implies its derived rows
//!   are stored: a `Skip` never hides a missing contribution.
//! * The position is written last and only moves forward (`max(next_offset)`), so a batch is
//!   never skipped; re-reading records before it is harmless (above).
//!
//! The states a batch needs are loaded for all its notification ids: first which of them have a
//! state at all (reading only the id column), then those states (argMax); the batch's own newer
//! states are kept in memory while deciding, so a notification filed and amended in the same
//! batch is decided exactly as the embedded store would.
//!
//! The first question may be asked ahead ([`ods_store::AnalyticsStore::look_ahead`]): the Kafka
//! runner asks it for round n+1 while round n is applied (never earlier: round n-1 is complete
//! by then). The answer can miss only what round n writes, so the store remembers, per
//! partition, the notifications whose states the last applied round and any attempt since wrote,
//! and looks those up again. A look-ahead that misses a state written by another member (a
//! zombie after a rebalance) is harmless for the reason a crash is: that member wrote records
//! this member decides itself, in order, from its stored position; for a notification whose
//! earlier records lie before that position, the look-ahead (taken after the assignment) sees
//! their states.
//! `tests/service.rs` checks this with a crash before the states and before the position, and
//! re-applied batches and prefixes.
//!
//! With an [`ods_store::Outlet`] ([`ClickHouseStore::with_outlet`], the output topics of `ods
//! process`), the batch's rejections and dead letters are emitted after deciding and before any
//! row is written: a stored decision has always been emitted (at least once).
//!
//! Offsets order the versions of one notification because all of its events share a key (its
//! id) and therefore a partition.
//!
//! ## Writes
//! [`writer::Writer`] keeps its copy of the rows until the server confirmed the insert, retries
//! retryable errors (network, 5xx, too many parts) with exponential backoff and returns
//! permanent ones naming the refused row ([`error::classify`]). Metrics:
//! `ods_store_inserts_total{table,outcome}`, `ods_store_insert_retries_total{table}`,
//! `ods_store_insert_duration_seconds{table}`.
//!
//! ## Server versions
//! Debian's ClickHouse 18.16 and current releases (23+) both work: compression is off (18.16
//! answers LZ4 requests with empty bodies), values are bound client-side (`.bind()`), reads use
//! plain `RowBinary` (no `RowBinaryWithNamesAndTypes`), types are those 18.16 knows (`Int64`
//! milliseconds, no `DateTime64`, `Map` or `Bool`). What differs by version is behind
//! [`Capabilities`], probed with `SELECT version()`: `LowCardinality(String)` columns on 19+.
//! `tests/sql_check.rs` runs every DDL statement and query text ([`sql_catalog`]) through a
//! current ClickHouse engine (chdb).
//!
//! ## Migrations
//! Ordered SQL files under `migrations/`, applied by [`migrate`] and recorded in
//! `schema_migrations`; every statement is `IF NOT EXISTS`, so re-running is a no-op.

pub mod error;
mod rows;
mod schema;
pub mod sql;
mod store;
pub mod writer;

pub use error::{ClickHouseError, ErrorClass};
pub use rows::{
    ContributionRow, DeadLetterRow, NotificationRow, PositionRow, RejectionRow, SignalReviewRow,
    SignalRevisionRow, TableRow, ZeroReportRow,
};
pub use schema::{
    check_database_name, migrate, Capabilities, Migration, MigrationReport, ServerVersion,
    MIGRATIONS,
};
pub use sql::{sql_catalog, SqlCatalog};
pub use store::{ClickHouseConfig, ClickHouseStore, CrashPoint};
pub use writer::{RetryPolicy, StoreMetrics, Writer};

/// The database used when none is configured.
pub const DEFAULT_DATABASE: &str = "ods";
