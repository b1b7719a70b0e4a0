//! The output topics of distributed mode: rejections, dead letters and (optionally) validated
//! versions, written by an idempotent, `acks=all` producer before the store writes a batch.

use std::time::Duration;

use async_trait::async_trait;
use ods_kafka::{producer_config, KafkaConfig};
use ods_store::{BatchOutputs, Outlet, StoreError};
use ods_wire::WireRecord;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

use crate::config::ProcessorConfig;
use crate::error::RunnerError;

/// How long one record may wait for free space in the producer's queue.
const ENQUEUE_TIMEOUT: Duration = Duration::from_secs(5);

/// An [`Outlet`] writing to the output topics. Keys: the notification id for rejections and
/// validated versions (so all records of one notification share a partition, in order), and
/// `source-topic/partition/offset` for dead letters (and for rejected zero reports, which have
/// no id). A record's copy after a retried batch has the same key and the same source offset.
pub struct KafkaOutlet {
    producer: FutureProducer,
    source_topic: String,
    rejections_topic: String,
    dead_letter_topic: String,
    validated_topic: Option<String>,
    message_timeout: Duration,
}

/// The outlet failed: the batch was not written and is retried.
#[derive(Debug, thiserror::Error)]
#[error("writing {what} to topic {topic}: {reason}")]
pub struct OutletError {
    what: &'static str,
    topic: String,
    reason: String,
}

impl KafkaOutlet {
    /// Creates the producer (idempotent, `acks=all`, the TLS/SASL properties of `kafka`).
    pub fn new(kafka: &KafkaConfig, config: &ProcessorConfig) -> Result<Self, RunnerError> {
        kafka.validate()?;
        config.validate()?;
        let producer: FutureProducer =
            producer_config(kafka)
                .create()
                .map_err(|source| RunnerError::Client {
                    what: "output producer",
                    source,
                })?;
        Ok(KafkaOutlet {
            producer,
            source_topic: kafka.topic.clone(),
            rejections_topic: config.rejections_topic.clone(),
            dead_letter_topic: config.dead_letter_topic.clone(),
            validated_topic: config.validated_topic.clone(),
            message_timeout: kafka.message_timeout(),
        })
    }

    fn failure(what: &'static str, topic: &str, reason: String) -> StoreError {
        StoreError::Backend {
            backend: "kafka outlet",
            retryable: true,
            source: Box::new(OutletError {
                what,
                topic: topic.to_string(),
                reason,
            }),
        }
    }
}

/// One encoded record for a topic.
struct Outgoing<'a> {
    what: &'static str,
    topic: &'a str,
    key: String,
    payload: Vec<u8>,
}

fn encode<T: WireRecord>(
    what: &'static str,
    topic: &str,
    record: &T,
) -> Result<Vec<u8>, StoreError> {
    ods_wire::encode_record(record).map_err(|e| StoreError::Backend {
        backend: "kafka outlet",
        retryable: false,
        source: Box::new(OutletError {
            what,
            topic: topic.to_string(),
            reason: e.to_string(),
        }),
    })
}

#[async_trait]
impl Outlet for KafkaOutlet {
    fn wants_validated(&self) -> bool {
        self.validated_topic.is_some()
    }

    async fn emit(&self, outputs: BatchOutputs) -> Result<(), StoreError> {
        let mut outgoing = Vec::new();
        for rejection in &outputs.rejections {
            let key = rejection.notification_id.clone().unwrap_or_else(|| {
                format!(
                    "{}/{}/{}",
                    self.source_topic, rejection.source_partition, rejection.source_offset
                )
            });
            outgoing.push(Outgoing {
                what: "a rejection",
                topic: &self.rejections_topic,
                key,
                payload: encode("a rejection", &self.rejections_topic, rejection)?,
            });
        }
        for dead in &outputs.dead_letters {
            outgoing.push(Outgoing {
                what: "a dead letter",
                topic: &self.dead_letter_topic,
                key: format!(
                    "{}/{}/{}",
                    dead.source_topic, dead.source_partition, dead.source_offset
                ),
                payload: encode("a dead letter", &self.dead_letter_topic, dead)?,
            });
        }
        if let Some(topic) = &self.validated_topic {
            for validated in &outputs.validated {
                outgoing.push(Outgoing {
                    what: "a validated version",
                    topic,
                    key: validated.notification_id.clone(),
                    payload: encode("a validated version", topic, validated)?,
                });
            }
        }
        let mut deliveries = Vec::with_capacity(outgoing.len());
        for out in &outgoing {
            let record = FutureRecord::to(out.topic)
                .key(out.key.as_str())
                .payload(out.payload.as_slice());
            // `send` waits for queue space (bounded), then for the delivery report
            deliveries.push(async move {
                self.producer
                    .send(record, Timeout::After(ENQUEUE_TIMEOUT))
                    .await
                    .map_err(|(error, _): (KafkaError, _)| {
                        Self::failure(out.what, out.topic, error.to_string())
                    })
            });
        }
        let guard = self.message_timeout + ENQUEUE_TIMEOUT + Duration::from_secs(5);
        let results = tokio::time::timeout(guard, futures_util::future::join_all(deliveries))
            .await
            .map_err(|_| {
                Self::failure(
                    "the batch's outputs",
                    &self.rejections_topic,
                    format!("no delivery report within {} s", guard.as_secs()),
                )
            })?;
        for result in results {
            result?;
        }
        tracing::debug!(
            rejections = outputs.rejections.len(),
            dead_letters = outputs.dead_letters.len(),
            validated = outputs.validated.len(),
            "batch outputs confirmed by kafka"
        );
        Ok(())
    }
}
