//! Errors of the runners.

use ods_store::StoreError;

/// Why a runner could not start or a batch could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The store failed; nothing of the batch was applied.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The embedded log failed.
    #[error(transparent)]
    Log(#[from] ods_log::LogError),
    /// A configuration value is wrong; the message says which and how to fix it.
    #[error("invalid processor configuration `{key}`: {reason}")]
    InvalidConfig {
        /// The offending key.
        key: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The Kafka adapter could not be set up.
    #[error(transparent)]
    Kafka(#[from] ods_kafka::KafkaSinkError),
    /// librdkafka refused to create a client or to subscribe.
    #[error("kafka {what}: {source}")]
    Client {
        /// What was attempted.
        what: &'static str,
        /// The librdkafka error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// A blocking task or the consumer thread failed.
    #[error("processor task failed: {0}")]
    Task(String),
}

impl RunnerError {
    /// Whether the same batch may succeed when tried again.
    pub fn is_retryable(&self) -> bool {
        match self {
            RunnerError::Store(e) => e.is_retryable(),
            RunnerError::Log(_) | RunnerError::Task(_) => true,
            RunnerError::InvalidConfig { .. }
            | RunnerError::Kafka(_)
            | RunnerError::Client { .. } => false,
        }
    }
}
