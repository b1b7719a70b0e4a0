//! Reading a whole topic, up to the end it has now: for tools (audits, comparisons) and tests.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::KafkaConfig;
use crate::error::KafkaSinkError;
use crate::follower::follower_config;

/// One record of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRecord {
    /// Partition.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
    /// Key (empty when none).
    pub key: Vec<u8>,
    /// Payload (empty when none).
    pub payload: Vec<u8>,
}

/// Every record of `topic` from the beginning up to the high watermarks it has when called, by
/// partition, in offset order. Blocking: call it from a blocking thread. Gives up after
/// `timeout` with [`KafkaSinkError::Read`].
pub fn read_topic_to_end(
    config: &KafkaConfig,
    topic: &str,
    timeout: Duration,
) -> Result<BTreeMap<i32, Vec<TopicRecord>>, KafkaSinkError> {
    let failed = |reason: String| KafkaSinkError::Read {
        topic: topic.to_string(),
        reason,
    };
    let consumer: BaseConsumer =
        follower_config(config)
            .create()
            .map_err(|source| KafkaSinkError::Client {
                what: "topic reader",
                source,
            })?;
    let started = Instant::now();
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| failed(e.to_string()))?;
    let mut ends = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for t in metadata.topics() {
        if let Some(error) = t.error() {
            return Err(failed(format!("{error:?}")));
        }
        for partition in t.partitions() {
            let (low, high) = consumer
                .fetch_watermarks(topic, partition.id(), timeout)
                .map_err(|e| failed(e.to_string()))?;
            if high > low {
                ends.insert(partition.id(), high);
                assignment
                    .add_partition_offset(topic, partition.id(), Offset::Beginning)
                    .map_err(|e| failed(e.to_string()))?;
            }
        }
    }
    let mut out: BTreeMap<i32, Vec<TopicRecord>> = BTreeMap::new();
    if ends.is_empty() {
        return Ok(out);
    }
    consumer
        .assign(&assignment)
        .map_err(|e| failed(e.to_string()))?;
    let done = |out: &BTreeMap<i32, Vec<TopicRecord>>| {
        ends.iter().all(|(p, end)| {
            out.get(p)
                .and_then(|records| records.last())
                .is_some_and(|r| r.offset + 1 >= *end)
        })
    };
    while !done(&out) {
        if started.elapsed() > timeout {
            return Err(failed(format!(
                "not read to the end within {} s",
                timeout.as_secs()
            )));
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message))
                if message.offset() < ends.get(&message.partition()).copied().unwrap_or(0) =>
            {
                out.entry(message.partition())
                    .or_default()
                    .push(TopicRecord {
                        partition: message.partition(),
                        offset: message.offset(),
                        key: message.key().map(<[u8]>::to_vec).unwrap_or_default(),
                        payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                    });
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => tracing::debug!(error = %e, "topic reader: transient error"),
            None => {}
        }
    }
    Ok(out)
}

/// Writes keyed records to `topic` in order (idempotent producer, lz4), waiting up to `timeout`
/// for every delivery: for tools, tests and benchmarks that fill a topic. Blocking: call it from
/// a blocking thread.
pub fn write_records(
    bootstrap: &str,
    topic: &str,
    records: &[(String, Vec<u8>)],
    timeout: Duration,
) -> Result<(), KafkaSinkError> {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let failed = |reason: String| KafkaSinkError::Read {
        topic: topic.to_string(),
        reason,
    };
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "20")
        .set("compression.type", "lz4")
        .create()
        .map_err(|source| KafkaSinkError::Client {
            what: "record writer",
            source,
        })?;
    let started = Instant::now();
    for (key, payload) in records {
        let mut record = BaseRecord::to(topic)
            .key(key.as_str())
            .payload(payload.as_slice());
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) if started.elapsed() < timeout => {
                    record = back;
                    producer.poll(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(failed(format!("not written in time: {e}"))),
            }
        }
    }
    producer
        .flush(timeout.saturating_sub(started.elapsed()))
        .map_err(|e| failed(format!("not confirmed in time: {e}")))
}
