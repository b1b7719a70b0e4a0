//! The typed configuration of the Kafka adapter.

use std::collections::BTreeMap;
use std::time::Duration;

use ods_intake::NOTIFICATIONS_TOPIC;
use serde::Deserialize;

use crate::error::KafkaSinkError;

/// Default of [`KafkaConfig::message_timeout_ms`]: 10 seconds.
pub const DEFAULT_MESSAGE_TIMEOUT_MS: u64 = 10_000;

/// Default of [`KafkaConfig::metadata_interval_ms`]: 5 seconds.
pub const DEFAULT_METADATA_INTERVAL_MS: u64 = 5_000;

/// The `linger.ms` of the producer: small, so a lone notification is not held back.
pub const LINGER_MS: u64 = 5;

/// librdkafka properties the adapter sets itself; [`KafkaConfig::properties`] may not override
/// them, because the delivery guarantee depends on them.
pub const MANAGED_PROPERTIES: &[&str] = &[
    "bootstrap.servers",
    "metadata.broker.list",
    "enable.idempotence",
    "acks",
    "request.required.acks",
    "message.timeout.ms",
    "delivery.timeout.ms",
];

/// Configuration of the Kafka producer of intake (`[kafka]` in the configuration file).
///
/// Unknown keys are rejected. Everything but `brokers` has a default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list of bootstrap brokers (`bootstrap.servers`).
    pub brokers: String,
    /// The topic the doctors' events are written to; default `ods.notifications.v1`.
    pub topic: String,
    /// How long a record may wait for its confirmed write before the publish is reported as
    /// unavailable (`message.timeout.ms`); default 10,000.
    pub message_timeout_ms: u64,
    /// How often readiness re-checks the topic's metadata; default 5,000.
    pub metadata_interval_ms: u64,
    /// Further librdkafka properties passed through unchanged, for TLS and SASL
    /// (`security.protocol`, `sasl.mechanism`, `sasl.username`, `ssl.ca.location`, ...). The
    /// properties in [`MANAGED_PROPERTIES`] are refused.
    pub properties: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: String::new(),
            topic: NOTIFICATIONS_TOPIC.to_string(),
            message_timeout_ms: DEFAULT_MESSAGE_TIMEOUT_MS,
            metadata_interval_ms: DEFAULT_METADATA_INTERVAL_MS,
            properties: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    /// A configuration with the defaults and these bootstrap brokers.
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaConfig {
            brokers: brokers.into(),
            ..KafkaConfig::default()
        }
    }

    /// [`KafkaConfig::message_timeout_ms`] as a duration.
    pub fn message_timeout(&self) -> Duration {
        Duration::from_millis(self.message_timeout_ms)
    }

    /// [`KafkaConfig::metadata_interval_ms`] as a duration.
    pub fn metadata_interval(&self) -> Duration {
        Duration::from_millis(self.metadata_interval_ms)
    }

    /// Checks the configuration, with a message that says which key to fix.
    pub fn validate(&self) -> Result<(), KafkaSinkError> {
        let invalid = |key: &str, reason: String| {
            Err(KafkaSinkError::InvalidConfig {
                key: key.to_string(),
                reason,
            })
        };
        if self.brokers.trim().is_empty() {
            return invalid(
                "brokers",
                "no bootstrap brokers; set a `host:port` list such as `kafka-1:9092,kafka-2:9092`"
                    .to_string(),
            );
        }
        if self.topic.trim().is_empty() {
            return invalid("topic", "the topic name is empty".to_string());
        }
        // librdkafka requires message.timeout.ms > linger.ms and caps it at i32::MAX.
        if self.message_timeout_ms <= LINGER_MS || self.message_timeout_ms > i32::MAX as u64 {
            return invalid(
                "message_timeout_ms",
                format!(
                    "{} is out of range; use more than {LINGER_MS} ms (default {DEFAULT_MESSAGE_TIMEOUT_MS})",
                    self.message_timeout_ms
                ),
            );
        }
        if self.metadata_interval_ms == 0 {
            return invalid(
                "metadata_interval_ms",
                format!("must be positive (default {DEFAULT_METADATA_INTERVAL_MS})"),
            );
        }
        if let Some(key) = self
            .properties
            .keys()
            .find(|k| MANAGED_PROPERTIES.contains(&k.as_str()))
        {
            return invalid(
                "properties",
                format!(
                    "`{key}` is set by ods itself (the delivery guarantee depends on it); remove it, \
                     or use `brokers` / `message_timeout_ms`"
                ),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_and_unknown_keys_are_rejected() {
        let c: KafkaConfig = serde_json::from_str(r#"{"brokers": "k:9092"}"#).unwrap();
        assert_eq!(c.topic, NOTIFICATIONS_TOPIC);
        assert_eq!(c.message_timeout_ms, 10_000);
        assert!(c.properties.is_empty());
        assert!(c.validate().is_ok());
        assert!(serde_json::from_str::<KafkaConfig>(r#"{"brokers": "k", "acks": "1"}"#).is_err());
    }

    #[test]
    fn validation_names_the_key() {
        let err = KafkaConfig::default().validate().unwrap_err();
        assert!(err.to_string().contains("brokers"), "{err}");

        let mut c = KafkaConfig::new("k:9092");
        c.properties.insert("acks".into(), "1".into());
        let err = c.validate().unwrap_err();
        assert!(err.to_string().contains("`acks`"), "{err}");

        let mut c = KafkaConfig::new("k:9092");
        c.message_timeout_ms = 5;
        assert!(c.validate().is_err());

        let mut c = KafkaConfig::new("k:9092");
        c.properties
            .insert("security.protocol".into(), "sasl_ssl".into());
        assert!(c.validate().is_ok());
    }
}
