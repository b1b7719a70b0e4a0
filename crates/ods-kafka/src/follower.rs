//! The intake registry as a follower of the notifications topic (distributed mode).
//!
//! Intake answers "is this notification yours, at which version" from its registry. In
//! distributed mode the registry is derived from the topic: a [`RegistryFollower`] reads every
//! partition from the positions stored *in the registry itself* (one transaction per applied
//! range, events and position together), so
//! * a fresh or restored intake instance rebuilds its registry from the topic;
//! * several intake instances behind one load balancer converge: a notification filed through
//!   one is amendable through any other once the follower has read it;
//! * a crash between a confirmed publish and the registry update loses nothing.
//!
//! The follower uses plain partition assignment, not a consumer group: every instance reads
//! every partition and commits nothing to the broker.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ods_intake::IntakeRegistry;
use ods_model::Event;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::KafkaConfig;
use crate::error::KafkaSinkError;

/// The most records applied to the registry in one transaction.
const APPLY_BATCH: usize = 1000;
/// How long one poll waits for a record.
const POLL_WAIT: Duration = Duration::from_millis(100);

/// The registry's name for one partition of a topic, e.g. `kafka:ods.notifications.v1/3`.
pub fn registry_source(topic: &str, partition: i32) -> String {
    format!("kafka:{topic}/{partition}")
}

/// Keeps an [`IntakeRegistry`] up to date with the notifications topic, on a thread of its own.
pub struct RegistryFollower {
    caught_up: Arc<AtomicBool>,
    behind: Arc<AtomicI64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The consumer settings of the follower: the pass-through properties (TLS, SASL), then the
/// follower's own (no group membership, no commits, start at the earliest record).
pub fn follower_config(config: &KafkaConfig) -> ClientConfig {
    let mut client = ClientConfig::new();
    for (key, value) in &config.properties {
        client.set(key, value);
    }
    client
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", "ods-intake-registry")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("allow.auto.create.topics", "false");
    client
}

impl RegistryFollower {
    /// Starts following `config.topic` into `registry`. It does not wait for the brokers: until
    /// the partitions are known and read up to the end they had at start,
    /// [`RegistryFollower::is_caught_up`] is false.
    pub fn start(
        config: &KafkaConfig,
        registry: Arc<IntakeRegistry>,
    ) -> Result<Self, KafkaSinkError> {
        config.validate()?;
        let consumer: BaseConsumer =
            follower_config(config)
                .create()
                .map_err(|source| KafkaSinkError::Client {
                    what: "registry follower",
                    source,
                })?;
        let caught_up = Arc::new(AtomicBool::new(false));
        let behind = Arc::new(AtomicI64::new(-1));
        let stop = Arc::new(AtomicBool::new(false));
        let task = Follow {
            consumer,
            topic: config.topic.clone(),
            metadata_timeout: config.metadata_interval(),
            registry,
            caught_up: caught_up.clone(),
            behind: behind.clone(),
            stop: stop.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("ods-registry-follower".into())
            .spawn(move || task.run())
            .map_err(|e| KafkaSinkError::InvalidConfig {
                key: "registry follower".into(),
                reason: format!("cannot start its thread: {e}"),
            })?;
        Ok(RegistryFollower {
            caught_up,
            behind,
            stop,
            thread: Some(thread),
        })
    }

    /// Whether the registry has read every partition up to where it ended when the follower
    /// started (afterwards the follower keeps reading; new records arrive within a poll).
    pub fn is_caught_up(&self) -> bool {
        self.caught_up.load(Ordering::Acquire)
    }

    /// Records still to read to reach the start-up end of the topic; -1 before the partitions
    /// are known.
    pub fn records_behind(&self) -> i64 {
        self.behind.load(Ordering::Acquire)
    }

    /// Stops reading and waits for the thread (the current batch is applied first).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for RegistryFollower {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

struct Follow {
    consumer: BaseConsumer,
    topic: String,
    metadata_timeout: Duration,
    registry: Arc<IntakeRegistry>,
    caught_up: Arc<AtomicBool>,
    behind: Arc<AtomicI64>,
    stop: Arc<AtomicBool>,
}

impl Follow {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Partitions of the topic with their end offsets now; retried until the broker answers.
    fn partitions(&self) -> Option<BTreeMap<i32, i64>> {
        let mut wait = Duration::from_millis(200);
        while !self.stopped() {
            match self.read_ends() {
                Ok(ends) if !ends.is_empty() => return Some(ends),
                Ok(_) => tracing::warn!(topic = %self.topic, "the topic has no partitions yet"),
                Err(e) => {
                    tracing::warn!(topic = %self.topic, error = %e, "registry follower cannot read the topic's metadata; retrying")
                }
            }
            std::thread::sleep(wait);
            wait = (wait * 2).min(Duration::from_secs(5));
        }
        None
    }

    fn read_ends(&self) -> Result<BTreeMap<i32, i64>, rdkafka::error::KafkaError> {
        let metadata = self
            .consumer
            .fetch_metadata(Some(&self.topic), self.metadata_timeout)?;
        let mut ends = BTreeMap::new();
        for topic in metadata.topics() {
            if let Some(error) = topic.error() {
                return Err(rdkafka::error::KafkaError::MetadataFetch(error.into()));
            }
            for partition in topic.partitions() {
                let (_, high) = self.consumer.fetch_watermarks(
                    &self.topic,
                    partition.id(),
                    self.metadata_timeout,
                )?;
                ends.insert(partition.id(), high);
            }
        }
        Ok(ends)
    }

    fn run(self) {
        let Some(ends) = self.partitions() else {
            return;
        };
        let mut assignment = TopicPartitionList::new();
        let mut positions = BTreeMap::new();
        for &partition in ends.keys() {
            let source = registry_source(&self.topic, partition);
            let position = match self.registry.position(&source) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "registry follower cannot read its positions; stopped");
                    return;
                }
            };
            positions.insert(partition, position);
            let offset = if position == 0 {
                Offset::Beginning
            } else {
                Offset::Offset(position)
            };
            if let Err(e) = assignment.add_partition_offset(&self.topic, partition, offset) {
                tracing::error!(error = %e, partition, "registry follower cannot assign; stopped");
                return;
            }
        }
        if let Err(e) = self.consumer.assign(&assignment) {
            tracing::error!(error = %e, "registry follower cannot assign the partitions; stopped");
            return;
        }
        tracing::info!(topic = %self.topic, partitions = ends.len(), "registry follower reading");
        let started = Instant::now();
        let mut pending: BTreeMap<i32, (i64, Vec<Event>)> = BTreeMap::new();
        let mut buffered = 0usize;
        while !self.stopped() {
            let behind: i64 = ends
                .iter()
                .map(|(p, end)| (end - positions.get(p).copied().unwrap_or(0)).max(0))
                .sum();
            self.behind.store(behind, Ordering::Release);
            if behind == 0 && !self.caught_up.swap(true, Ordering::AcqRel) {
                tracing::info!(topic = %self.topic, seconds = started.elapsed().as_secs_f64(), "registry caught up with the topic");
            }
            match self.consumer.poll(POLL_WAIT) {
                Some(Ok(message)) => {
                    let entry = pending
                        .entry(message.partition())
                        .or_insert_with(|| (0, Vec::new()));
                    entry.0 = message.offset() + 1;
                    // Undecodable records are the processor's to dead-letter; the registry
                    // only needs what it can read.
                    if let Some(event) = message
                        .payload()
                        .and_then(|p| ods_wire::decode_event(p).ok())
                    {
                        entry.1.push(event);
                    }
                    buffered += 1;
                    if buffered < APPLY_BATCH {
                        continue;
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "registry follower read error; librdkafka retries");
                }
                None => {}
            }
            for (partition, (next, events)) in std::mem::take(&mut pending) {
                let source = registry_source(&self.topic, partition);
                let mut wait = Duration::from_millis(100);
                while let Err(e) = self.registry.apply_from(&source, next, &events) {
                    tracing::error!(error = %e, partition, "registry follower cannot apply; retrying");
                    if self.stopped() {
                        return;
                    }
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
                positions.insert(partition, next);
            }
            buffered = 0;
        }
    }
}
