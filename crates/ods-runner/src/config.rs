//! The typed configuration of the Kafka runner (`[processor]` in the configuration file).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::error::RunnerError;

/// Default consumer group of `ods process`.
pub const DEFAULT_GROUP_ID: &str = "ods-processor";
/// Default topic of rejected versions.
pub const REJECTIONS_TOPIC: &str = "ods.rejections.v1";
/// Default topic of undecodable records.
pub const DEAD_LETTER_TOPIC: &str = "ods.deadletter.v1";
/// Topic of validated, enriched versions (published only when configured).
pub const VALIDATED_TOPIC: &str = "ods.validated.v1";

/// Configuration of the processor (`[processor]`). Unknown keys are rejected; everything has a
/// default. Brokers, the source topic and TLS/SASL properties come from `[kafka]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessorConfig {
    /// Consumer group of `ods process`; default `ods-processor`.
    pub group_id: String,
    /// Most records per batch (per poll round, over all owned partitions); default 10,000. A
    /// round is handed to the store as soon as nothing more is waiting and the store is idle,
    /// so rounds only grow this large while the store is busy (larger rounds mean fewer, larger
    /// transactions and inserts).
    pub batch_max_records: usize,
    /// Longest wait to fill a batch, in milliseconds; default 200.
    pub batch_max_wait_ms: u64,
    /// Topic for rejected versions; default `ods.rejections.v1`.
    pub rejections_topic: String,
    /// Topic for undecodable records; default `ods.deadletter.v1`.
    pub dead_letter_topic: String,
    /// Topic for validated, enriched versions; default none (not published). Set to
    /// `ods.validated.v1` to feed other consumers.
    pub validated_topic: Option<String>,
    /// How often librdkafka reports consumer lag per partition (`statistics.interval.ms`);
    /// default 5,000.
    pub lag_interval_ms: u64,
    /// librdkafka properties for the consumer only (`session.timeout.ms`,
    /// `heartbeat.interval.ms`, `max.poll.interval.ms`, `fetch.max.bytes`, ...), over the shared
    /// `[kafka.properties]`; the runner's own settings (group, offsets, assignment strategy)
    /// are refused.
    pub consumer_properties: BTreeMap<String, String>,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        ProcessorConfig {
            group_id: DEFAULT_GROUP_ID.to_string(),
            batch_max_records: 10_000,
            batch_max_wait_ms: 200,
            rejections_topic: REJECTIONS_TOPIC.to_string(),
            dead_letter_topic: DEAD_LETTER_TOPIC.to_string(),
            validated_topic: None,
            lag_interval_ms: 5000,
            consumer_properties: BTreeMap::new(),
        }
    }
}

impl ProcessorConfig {
    /// [`ProcessorConfig::batch_max_wait_ms`] as a duration.
    pub fn batch_max_wait(&self) -> Duration {
        Duration::from_millis(self.batch_max_wait_ms)
    }

    /// The output topics (rejections, dead letters, validated when set).
    pub fn output_topics(&self) -> Vec<&str> {
        let mut topics = vec![
            self.rejections_topic.as_str(),
            self.dead_letter_topic.as_str(),
        ];
        if let Some(validated) = &self.validated_topic {
            topics.push(validated.as_str());
        }
        topics
    }

    /// Checks the configuration, with a message that says which key to fix.
    pub fn validate(&self) -> Result<(), RunnerError> {
        let invalid = |key: &str, reason: &str| {
            Err(RunnerError::InvalidConfig {
                key: key.to_string(),
                reason: reason.to_string(),
            })
        };
        if self.group_id.trim().is_empty() {
            return invalid("group_id", "the consumer group name is empty");
        }
        if self.batch_max_records == 0 {
            return invalid("batch_max_records", "must be at least 1 (default 10000)");
        }
        if self.batch_max_wait_ms == 0 || self.batch_max_wait_ms > 60_000 {
            return invalid(
                "batch_max_wait_ms",
                "use 1 to 60000 milliseconds (default 200)",
            );
        }
        if self.lag_interval_ms < 100 {
            return invalid(
                "lag_interval_ms",
                "use at least 100 milliseconds (default 5000)",
            );
        }
        for (key, topic) in [
            ("rejections_topic", Some(&self.rejections_topic)),
            ("dead_letter_topic", Some(&self.dead_letter_topic)),
            ("validated_topic", self.validated_topic.as_ref()),
        ] {
            if topic.is_some_and(|t| t.trim().is_empty()) {
                return invalid(key, "the topic name is empty");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_and_validation_name_the_key() {
        let c = ProcessorConfig::default();
        assert!(c.validate().is_ok());
        assert_eq!(c.output_topics(), vec![REJECTIONS_TOPIC, DEAD_LETTER_TOPIC]);
        let c = ProcessorConfig {
            batch_max_records: 0,
            ..ProcessorConfig::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("batch_max_records"));
        let c = ProcessorConfig {
            validated_topic: Some(" ".into()),
            ..ProcessorConfig::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("validated_topic"));
    }
}
