//! [`KafkaSink`]: intake's [`EventSink`] over an idempotent, `acks=all` Kafka producer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ods_intake::{EventSink, PublishError};
use ods_model::Event;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::config::{KafkaConfig, LINGER_MS};
use crate::error::KafkaSinkError;

/// Extra time [`KafkaSink::publish`](EventSink::publish) waits past `message.timeout.ms` for a
/// delivery report before it gives up on its own. librdkafka reports every record within
/// `message.timeout.ms`, so this is only a guard against a stuck client.
pub const DELIVERY_REPORT_GRACE: Duration = Duration::from_secs(5);

/// Intake's [`EventSink`] in distributed mode: writes each event to a Kafka topic, keyed by
/// [`Event::key`], and resolves only when the broker confirmed every record.
///
/// The producer runs with `enable.idempotence=true`, `acks=all`, `compression.type=lz4`,
/// `linger.ms=5`, `message.timeout.ms` from the configuration and
/// `allow.auto.create.topics=false` (topics are made with [`crate::ensure_topics`], with the
/// partition count chosen on purpose). See the crate documentation for the delivery argument.
///
/// A background task (started by [`KafkaSink::new`], stopped when the sink is dropped) fetches
/// the topic's metadata every `metadata_interval_ms`; [`EventSink::is_ready`] is true while that
/// succeeded recently and the producer has no fatal error.
pub struct KafkaSink {
    producer: FutureProducer,
    topic: Arc<str>,
    message_timeout: Duration,
    health: Arc<Health>,
    monitor: JoinHandle<()>,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("topic", &self.topic)
            .field("message_timeout", &self.message_timeout)
            .finish_non_exhaustive()
    }
}

/// When the topic's metadata was last fetched successfully.
struct Health {
    started: Instant,
    /// Milliseconds since `started` of the last success, plus one; 0 = never.
    last_ok: AtomicU64,
    /// How old the last success may be while the sink still counts as ready.
    stale_after: Duration,
}

impl Health {
    fn mark_ok(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.last_ok.store(ms.saturating_add(1), Ordering::Release);
    }

    fn is_fresh(&self) -> bool {
        match self.last_ok.load(Ordering::Acquire) {
            0 => false,
            at => {
                let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
                let stale = u64::try_from(self.stale_after.as_millis()).unwrap_or(u64::MAX);
                now.saturating_sub(at - 1) <= stale
            }
        }
    }
}

/// The librdkafka configuration of the producer: the pass-through properties first, then the
/// settings the delivery guarantee depends on (which [`KafkaConfig::validate`] keeps out of the
/// pass-through properties).
pub fn producer_config(config: &KafkaConfig) -> ClientConfig {
    let mut client = ClientConfig::new();
    for (key, value) in &config.properties {
        client.set(key, value);
    }
    client
        .set("bootstrap.servers", &config.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", config.message_timeout_ms.to_string())
        .set("allow.auto.create.topics", "false");
    for (key, value) in [
        ("compression.type", "lz4".to_string()),
        ("linger.ms", LINGER_MS.to_string()),
    ] {
        if !config.properties.contains_key(key) {
            client.set(key, value);
        }
    }
    client
}

impl KafkaSink {
    /// Validates `config`, creates the producer and starts the readiness task.
    ///
    /// Must be called inside a tokio runtime ([`KafkaSinkError::NoRuntime`] otherwise). It does
    /// not wait for the brokers: an unreachable cluster shows as "not ready" and as unavailable
    /// publishes, not as an error here.
    pub fn new(config: &KafkaConfig) -> Result<Self, KafkaSinkError> {
        config.validate()?;
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| KafkaSinkError::NoRuntime)?;
        let producer: FutureProducer =
            producer_config(config)
                .create()
                .map_err(|source| KafkaSinkError::Client {
                    what: "producer",
                    source,
                })?;
        let interval = config.metadata_interval();
        let metadata_timeout = interval.min(config.message_timeout());
        let health = Arc::new(Health {
            started: Instant::now(),
            last_ok: AtomicU64::new(0),
            stale_after: interval * 2 + metadata_timeout,
        });
        let topic: Arc<str> = Arc::from(config.topic.as_str());
        let monitor = runtime.spawn(monitor_topic(
            producer.clone(),
            topic.clone(),
            interval,
            metadata_timeout,
            health.clone(),
        ));
        tracing::info!(
            brokers = %config.brokers,
            topic = %topic,
            message_timeout_ms = config.message_timeout_ms,
            "kafka producer created (idempotent, acks=all)"
        );
        Ok(KafkaSink {
            producer,
            topic,
            message_timeout: config.message_timeout(),
            health,
            monitor,
        })
    }

    /// The topic this sink writes to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The underlying producer (for statistics or a final flush at shutdown).
    pub fn producer(&self) -> &FutureProducer {
        &self.producer
    }

    async fn publish_all(&self, events: Vec<Event>) -> Result<(), PublishError> {
        // Encode everything first: an encoding defect writes nothing.
        let mut records = Vec::with_capacity(events.len());
        for event in &events {
            let (_, payload) = ods_wire::encode_event(event)?;
            records.push((event.key(), payload));
        }

        // Enqueue without blocking: `send_result` never waits for queue space.
        let mut deliveries = Vec::with_capacity(records.len());
        for (key, payload) in &records {
            let record = FutureRecord::to(&self.topic)
                .key(key.as_str())
                .payload(payload.as_slice());
            match self.producer.send_result(record) {
                Ok(delivery) => deliveries.push((key.as_str(), delivery)),
                Err((error, _)) => {
                    // Records enqueued before this one may still be written; the caller's retry
                    // with the same ids is deduplicated downstream (see the crate docs).
                    let error = self.classify(&error);
                    tracing::warn!(key = %key, error = %error, "kafka record not enqueued");
                    return Err(error);
                }
            }
        }

        // Await every delivery report; each arrives within message.timeout.ms.
        let guard = self.message_timeout + DELIVERY_REPORT_GRACE;
        let confirmed = tokio::time::timeout(guard, async {
            for (key, delivery) in deliveries {
                match delivery.await {
                    Ok(Ok(d)) => tracing::debug!(
                        topic = %self.topic,
                        partition = d.partition,
                        offset = d.offset,
                        key = %key,
                        "kafka record confirmed"
                    ),
                    Ok(Err((error, _))) => {
                        let error = self.classify(&error);
                        tracing::warn!(key = %key, error = %error, "kafka record not confirmed");
                        return Err(error);
                    }
                    Err(_) => {
                        return Err(PublishError::Unavailable(
                            "the kafka producer was closed before confirming the write".into(),
                        ))
                    }
                }
            }
            Ok(())
        })
        .await;
        match confirmed {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(topic = %self.topic, "no kafka delivery report in time");
                Err(PublishError::Unavailable(format!(
                    "no delivery report from the kafka client within {} ms; the write may or may \
                     not have happened",
                    guard.as_millis()
                )))
            }
        }
    }

    fn classify(&self, error: &KafkaError) -> PublishError {
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::QueueFull) => PublishError::Backpressure,
            Some(RDKafkaErrorCode::MessageTimedOut) => PublishError::Unavailable(format!(
                "no confirmed write to topic `{}` within {} ms (brokers down, slow or topic \
                 missing); the record may or may not have been written",
                self.topic,
                self.message_timeout.as_millis()
            )),
            _ => PublishError::Unavailable(format!(
                "write to topic `{}` failed: {error}",
                self.topic
            )),
        }
    }
}

impl EventSink for KafkaSink {
    fn publish(&self, events: Vec<Event>) -> ods_intake::PublishFuture<'_> {
        let span =
            tracing::debug_span!("kafka_publish", topic = %self.topic, records = events.len());
        // the registry is intake's to update (`Published` None)
        Box::pin(async move {
            self.publish_all(events)
                .instrument(span)
                .await
                .map(|()| None)
        })
    }

    fn is_ready(&self) -> bool {
        self.health.is_fresh() && self.producer.client().fatal_error().is_none()
    }

    fn in_flight(&self) -> usize {
        usize::try_from(self.producer.in_flight_count()).unwrap_or(0)
    }
}

impl Drop for KafkaSink {
    fn drop(&mut self) {
        self.monitor.abort();
    }
}

/// Fetches the topic's metadata every `interval` on a blocking thread and records successes.
async fn monitor_topic(
    producer: FutureProducer,
    topic: Arc<str>,
    interval: Duration,
    timeout: Duration,
    health: Arc<Health>,
) {
    let mut was_ok: Option<bool> = None;
    loop {
        let p = producer.clone();
        let t = topic.clone();
        let result = tokio::task::spawn_blocking(move || check_topic(&p, &t, timeout))
            .await
            .unwrap_or_else(|e| Err(format!("metadata task failed: {e}")));
        match result {
            Ok(partitions) => {
                health.mark_ok();
                if was_ok != Some(true) {
                    tracing::info!(topic = %topic, partitions, "kafka topic reachable");
                }
                was_ok = Some(true);
            }
            Err(reason) => {
                if was_ok != Some(false) {
                    tracing::warn!(topic = %topic, %reason, "kafka topic not reachable; intake not ready");
                }
                was_ok = Some(false);
            }
        }
        tokio::time::sleep(interval).await;
    }
}

/// The number of partitions of `topic`, or why its metadata could not be had.
fn check_topic(producer: &FutureProducer, topic: &str, timeout: Duration) -> Result<usize, String> {
    let metadata = producer
        .client()
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| e.to_string())?;
    let found = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| format!("topic `{topic}` missing from metadata"))?;
    if let Some(err) = found.error() {
        return Err(format!("topic `{topic}`: {}", RDKafkaErrorCode::from(err)));
    }
    if found.partitions().is_empty() {
        return Err(format!("topic `{topic}` has no partitions"));
    }
    Ok(found.partitions().len())
}
