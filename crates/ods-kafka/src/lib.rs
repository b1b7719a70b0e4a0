//! The Kafka adapter of intake: where a notification is written in distributed mode.
//!
//! [`KafkaSink`] implements [`ods_intake::EventSink`] over an rdkafka
//! [`FutureProducer`](rdkafka::producer::FutureProducer). Every event is encoded with
//! [`ods_wire::encode_event`] (Avro, Confluent framing) and written to the topic
//! (`ods.notifications.v1` by default) keyed by [`ods_model::Event::key`], so all versions of a
//! notification land in one partition, in order. [`ensure_topics`] creates the topics on brokers
//! that do not auto-create them (`tansu`); [`KafkaConfig`] is the typed configuration.
//! [`RegistryFollower`] keeps intake's registry derived from the topic.
//!
//! # Delivery argument
//!
//! * **202 only after a confirmed write.** [`EventSink::publish`](ods_intake::EventSink::publish)
//!   resolves `Ok` only when the delivery report of *every* record says the partition leader
//!   wrote it with `acks=all`, i.e. every in-sync replica has it. Intake answers 202 only on
//!   `Ok`, so an accepted notification survives the loss of any broker but the last in-sync one.
//! * **No duplicates from producer retries.** `enable.idempotence=true` gives the producer an id
//!   and per-partition sequence numbers; when librdkafka retries a request whose response was lost
//!   (timeouts, `NOT_LEADER_FOR_PARTITION`, reconnects) the broker drops the second copy, and
//!   ordering per partition is kept.
//! * **Unconfirmed is not rejected.** When no confirmation arrives within `message_timeout_ms`
//!   (brokers down or slow), publish reports
//!   [`PublishError::Unavailable`](ods_intake::PublishError::Unavailable) and the HTTP layer
//!   answers 503 with `Retry-After`. Such a record *may or may not* have been written (the
//!   request may have reached the leader and only the answer been lost). The same holds for the
//!   earlier records of a multi-event publish whose later record was refused by a full queue
//!   ([`PublishError::Backpressure`](ods_intake::PublishError::Backpressure)). That is safe
//!   because the doctor's client must retry with the same `Idempotency-Key`, intake reuses the
//!   same notification id for that key, and the processor deduplicates by
//!   (notification id, version): a second copy of version 1 is skipped as a redelivery.
//!   Nothing is ever reported accepted that was not confirmed.
//!
//! # Operations
//!
//! [`EventSink::is_ready`](ods_intake::EventSink::is_ready) is true while a background task
//! fetched the topic's metadata within the last two intervals (default 5 s) and the producer
//! has no fatal error; [`EventSink::in_flight`](ods_intake::EventSink::in_flight) is librdkafka's
//! out-queue length: records not yet confirmed plus delivery reports not yet served (so it can
//! stay above zero for a moment after a publish resolved). Logs carry topic, partition and offset of every
//! confirmed record at debug level. TLS and SASL settings go through
//! [`KafkaConfig::properties`] to the producer, the registry follower and the admin client;
//! librdkafka is built with rdkafka's `ssl` feature (OpenSSL: `SSL`, `SASL_SSL`, SASL
//! `PLAIN`/`SCRAM-SHA-256`/`SCRAM-SHA-512`). Kerberos (`GSSAPI`) would need the `gssapi` feature
//! and is not built.

mod admin;
mod config;
mod error;
mod follower;
mod read;
mod sink;

pub use admin::{
    ensure_topics, ensure_topics_within, BROKER_DEFAULT_REPLICATION, CREATE_TOPICS_TIMEOUT,
};
pub use config::{
    KafkaConfig, DEFAULT_MESSAGE_TIMEOUT_MS, DEFAULT_METADATA_INTERVAL_MS, LINGER_MS,
    MANAGED_PROPERTIES,
};
pub use error::KafkaSinkError;
pub use follower::{follower_config, registry_source, RegistryFollower};
pub use read::{read_topic_to_end, write_records, TopicRecord};
pub use sink::{producer_config, KafkaSink, DELIVERY_REPORT_GRACE};
