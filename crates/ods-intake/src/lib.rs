//! Where a notification enters `ods`.
//!
//! [`Intake`] is the producer core: it validates a doctor's JSON with every rule
//! (`ods-validation`), builds the event with the reporter's pseudonym (the token carries the
//! pseudonym; the BIG number never reaches this service), and publishes it through an
//! [`EventSink`]: the embedded log in `ods run`, Kafka in distributed mode. It answers "accepted"
//! only after the sink confirmed the write is durable; when the sink is full it answers
//! "unavailable" and nothing was written.
//!
//! [`router`] exposes it over HTTP (axum).

pub mod batch;
mod http;
pub mod openapi;
mod registry;
mod service;

pub use http::{router, IntakeState, ProcessingStatus, StatusSource};
pub use registry::{
    IdempotentRecord, IntakeRegistry, RegistryEntry, RegistryError, RegistryWriter, VersionEntry,
};
pub use service::{
    Accepted, Actor, EmbeddedSink, EventSink, Intake, IntakeError, IntakeMetrics, PublishError,
    PublishFuture, Published, NOTIFICATIONS_TOPIC,
};
