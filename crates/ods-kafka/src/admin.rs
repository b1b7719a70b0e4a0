//! Topic creation for brokers that do not auto-create topics (such as `tansu`).

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::RDKafkaErrorCode;

use crate::config::MANAGED_PROPERTIES;
use crate::error::KafkaSinkError;

/// How long [`ensure_topics`] lets the brokers take before it reports an error: 30 seconds.
pub const CREATE_TOPICS_TIMEOUT: Duration = Duration::from_secs(30);

/// The replication factor [`ensure_topics`] asks for: `-1`, the broker's
/// `default.replication.factor` (KIP-464, Kafka 2.4+).
pub const BROKER_DEFAULT_REPLICATION: i32 = -1;

/// Topic settings [`ensure_topics`] creates every topic with: kept forever. The notifications
/// topic is the record of every accepted notification (intake rebuilds its registry from it and
/// a new ClickHouse database is filled from it); rejections and dead letters are its audit
/// trail. Kafka's default (`retention.ms` of 7 days) would silently delete them.
pub const TOPIC_CONFIG: [(&str, &str); 2] = [("retention.ms", "-1"), ("retention.bytes", "-1")];

/// Creates each `(name, partitions)` topic that does not exist yet, with the broker's default
/// replication factor and [`TOPIC_CONFIG`]. An existing topic keeps its settings: check its
/// retention when it was created by hand. A topic that already exists counts as success (its partition count is
/// left as it is). `properties` are the same pass-through librdkafka properties as
/// [`crate::KafkaConfig::properties`] (TLS, SASL).
///
/// Run it once at start-up of `ods intake` before the first publish; it needs a tokio runtime
/// only to await the result (librdkafka does the work on its own threads). It gives up after
/// [`CREATE_TOPICS_TIMEOUT`]; see [`ensure_topics_within`] for another bound.
pub async fn ensure_topics(
    brokers: &str,
    topics: &[(&str, i32)],
    properties: &BTreeMap<String, String>,
) -> Result<(), KafkaSinkError> {
    ensure_topics_within(brokers, topics, properties, CREATE_TOPICS_TIMEOUT).await
}

/// [`ensure_topics`] that gives up after `timeout` (for the request and for the controller's
/// operation) with [`KafkaSinkError::CreateTopic`].
pub async fn ensure_topics_within(
    brokers: &str,
    topics: &[(&str, i32)],
    properties: &BTreeMap<String, String>,
    timeout: Duration,
) -> Result<(), KafkaSinkError> {
    if topics.is_empty() {
        return Ok(());
    }
    if let Some(&(name, partitions)) = topics.iter().find(|(n, p)| n.is_empty() || *p < 1) {
        return Err(KafkaSinkError::CreateTopic {
            topic: name.to_string(),
            reason: format!("needs a name and at least one partition (got {partitions})"),
        });
    }
    let mut config = ClientConfig::new();
    for (key, value) in properties
        .iter()
        .filter(|(k, _)| !MANAGED_PROPERTIES.contains(&k.as_str()))
    {
        config.set(key, value);
    }
    config.set("bootstrap.servers", brokers);
    let admin: AdminClient<DefaultClientContext> =
        config.create().map_err(|source| KafkaSinkError::Client {
            what: "admin client",
            source,
        })?;

    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|&(name, partitions)| {
            TOPIC_CONFIG.iter().fold(
                NewTopic::new(
                    name,
                    partitions,
                    TopicReplication::Fixed(BROKER_DEFAULT_REPLICATION),
                ),
                |topic, (key, value)| topic.set(key, value),
            )
        })
        .collect();
    let options = AdminOptions::new()
        .request_timeout(Some(timeout))
        .operation_timeout(Some(timeout));
    let names = topics
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ");

    // librdkafka times the request out itself; the outer timeout only guards a stuck client.
    let results = tokio::time::timeout(
        timeout + Duration::from_secs(5),
        admin.create_topics(&new_topics, &options),
    )
    .await
    .map_err(|_| KafkaSinkError::CreateTopic {
        topic: names.clone(),
        reason: "no answer from the brokers in time".to_string(),
    })?
    .map_err(|e| KafkaSinkError::CreateTopic {
        topic: names,
        reason: e.to_string(),
    })?;

    for result in results {
        match result {
            Ok(topic) => tracing::info!(topic = %topic, "kafka topic created"),
            Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => {
                tracing::debug!(topic = %topic, "kafka topic already exists")
            }
            Err((topic, code)) => {
                return Err(KafkaSinkError::CreateTopic {
                    topic,
                    reason: code.to_string(),
                })
            }
        }
    }
    Ok(())
}
