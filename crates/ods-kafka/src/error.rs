//! Errors of setting up the Kafka adapter (publishing reports [`ods_intake::PublishError`]).

use rdkafka::error::KafkaError;

/// Why the Kafka producer or the topic set-up could not be made.
#[derive(Debug, thiserror::Error)]
pub enum KafkaSinkError {
    /// A configuration value is wrong; the message says which and how to fix it.
    #[error("invalid kafka configuration `{key}`: {reason}")]
    InvalidConfig {
        /// The offending key.
        key: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// [`crate::KafkaSink::new`] was called outside a tokio runtime.
    #[error("the kafka sink must be created inside a tokio runtime (it starts a readiness task)")]
    NoRuntime,
    /// librdkafka refused the configuration or could not create the client.
    #[error("could not create the kafka {what}: {source}")]
    Client {
        /// `producer` or `admin client`.
        what: &'static str,
        /// The librdkafka error (names the bad property, if any).
        #[source]
        source: KafkaError,
    },
    /// Reading (or filling) a topic failed.
    #[error("topic `{topic}`: {reason}")]
    Read {
        /// The topic.
        topic: String,
        /// Why.
        reason: String,
    },
    /// Creating a topic failed (other than "already exists").
    #[error("could not create topic `{topic}`: {reason}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// The broker's or client's reason.
        reason: String,
    },
}
