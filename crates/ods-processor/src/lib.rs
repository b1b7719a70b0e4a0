//! The processing core of `ods`: one pure function from (previous state of a notification, next
//! log record) to a [`Decision`].
//!
//! The core decides; a runner applies. Both runners (the embedded log in `ods run` and the Kafka
//! consumer of `ods process`) feed records in log order and apply each [`Decision`] to a store
//! **in the same transaction as the source position** (see `ods-store`). Because decisions
//! depend only on the previous state and the record, replaying a record whose effect is already
//! stored is harmless: the version check turns it into [`Decision::Skip`], and a record whose
//! effect was not stored is decided again identically. That is the exactly-once *effect* on top
//! of at-least-once delivery.
//!
//! Semantics of versions (the "reference fold"):
//! * a filing creates version 1 and counts when it passes the rules;
//! * an amendment with a higher version replaces the content: the previous contribution is
//!   retracted and the new one added (or nothing added when the new content is rejected);
//! * a withdrawal retracts and is final; later versions are skipped;
//! * a record with a version not above the stored one is a redelivery or stale: skipped.
//!
//! Validation here re-applies the intake rules against the code lists in force on the diagnosis
//! date, taking "today" from the event's own timestamp so a replay next year decides the same.

mod core;
mod keys;

pub use crate::core::{Assessed, Decision, NotificationState, Processor, Status, StoredForms};
pub use keys::{Contribution, CountKey};
