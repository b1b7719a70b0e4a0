//! The processor's runners: one processing core (`ods-processor`), two thin ways to feed it.
//!
//! * [`embedded`]: `ods run` reads the embedded log (one partition) into the embedded store; the
//!   position is stored in the same SQLite transaction as the batch's effects.
//! * [`kafka`]: `ods process` is a member of a consumer group on `ods.notifications.v1` and
//!   applies each owned partition's records, in order, to any [`ods_store::AnalyticsStore`]
//!   (ClickHouse in distributed mode). Positions live in the store, with the data; the module
//!   docs give the argument for the exactly-once effect.
//! * [`outlet`]: the output topics of distributed mode (`ods.rejections.v1`,
//!   `ods.deadletter.v1`, optionally `ods.validated.v1`), written before the store writes a
//!   batch. In embedded mode the store's `rejections` and `dead_letters` tables are their home.
//! * [`ProcessorMetrics`]: `ods_processor_*` metrics of both runners.

pub mod config;
pub mod embedded;
mod error;
pub mod kafka;
mod metrics;
pub mod outlet;

pub use config::ProcessorConfig;
pub use error::RunnerError;
pub use kafka::{kafka_source, KafkaRunner};
pub use metrics::ProcessorMetrics;
pub use outlet::KafkaOutlet;
