//! The Kafka runner of `ods process`: a consumer-group member that feeds the records of its
//! partitions, in order, into an [`AnalyticsStore`].
//!
//! # Why every aggregate is counted exactly once
//!
//! *Positions live in the store, with the data* (Quickwit's design). The store keeps the next
//! offset per (source, partition) and writes it only after the batch's data
//! ([`AnalyticsStore::apply_batch`]); records before the stored position are ignored, and a
//! batch applied again (after a crash part-way) writes the same rows again, which changes no
//! answer (`ods-clickhouse` explains why). So the runner only has to make sure no record after
//! the stored position is *skipped*:
//!
//! * **On assignment** the runner reads the stored position of every assigned partition and
//!   assigns the partition *at that offset* (inside the rebalance callback, before any fetch).
//!   A partition the store has never seen starts at the beginning of the log. The group's
//!   committed offsets are not used to decide where to start.
//! * **Two stages, one round in flight.** The polling thread polls a round (the records of all
//!   polled partitions) and assesses it ([`Processor::assess`]: decoding, code lists, rules,
//!   enrichment; nothing that depends on stored state); the applier thread decides and applies
//!   rounds in the order they were polled, one store call per round (one transaction or one
//!   insert per table). The polling thread hands a round over only when the applier has taken
//!   the previous one, so while round *n* is written, round *n + 1* is polled and assessed.
//!   Before handing a round over, the polling thread also asks the store what applying it will
//!   need to read ([`AnalyticsStore::look_ahead`]: for ClickHouse, which of its notifications
//!   have a stored state). The answer may miss what round *n* writes meanwhile; the store keeps
//!   track of that and looks those notifications up again (see `ods-clickhouse`).
//! * **No round is in flight during a rebalance.** Rebalance callbacks run inside `poll` on the
//!   polling thread, and both wait until the applier has finished every round handed to it
//!   before they read positions or let partitions go: when a partition is revoked no batch of
//!   it is being applied, and an assignment reads positions that include every applied round.
//!   Records of a revoked (or re-assigned) partition that were polled but not handed over are
//!   dropped, and the new owner starts from the store's position. Rebalancing is eager
//!   (`range,roundrobin`, classic protocol): every assignment re-places *all* owned partitions
//!   at their stored positions, so nothing polled and dropped is lost.
//! * **A failed round is retried, never skipped**: the applier retries it until it succeeds;
//!   the polling thread, waiting to hand over the next round, polls nothing meanwhile. If that
//!   outlasts `max.poll.interval.ms`, the member leaves the group and its partitions move to
//!   another member, which starts from the same stored positions.
//! * **Undecodable records** are decided as dead letters (stored, and sent to the dead-letter
//!   topic) and never stop a partition.
//! * Offsets are also committed to the group (`enable.auto.offset.store=false`; an offset is
//!   stored for commit only after the store confirmed the batch), for the lag tools that read
//!   group offsets. They are informational.
//!
//! Two members briefly owning one partition (a zombie after a session timeout) is harmless for
//! the same reason a crash is: both decide from the stored states and write identical,
//! offset-versioned rows; the position only moves forward.
//!
//! The notifications topic's partition count must not change while data is in it: the order of
//! a notification's versions is the order of one partition (all share its id as key).
//!
//! # Shutdown
//! [`KafkaRunner::stop`] stops polling, lets the applier finish the rounds handed to it, commits
//! the stored offsets and leaves the group (the revocation runs on the polling thread).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ods_kafka::KafkaConfig;
use ods_processor::{Assessed, Processor};
use ods_store::AnalyticsStore;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaResult;
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::runtime::Handle;

use crate::config::ProcessorConfig;
use crate::error::RunnerError;
use crate::metrics::ProcessorMetrics;

/// Properties the runner sets itself; `[kafka.properties]` may not override them.
pub const RUNNER_MANAGED_PROPERTIES: &[&str] = &[
    "group.id",
    "enable.auto.offset.store",
    "auto.offset.reset",
    "statistics.interval.ms",
    "partition.assignment.strategy",
    "group.protocol",
];

/// How long a poll waits for more records once a round has some (see `Worker::poll_round`).
const IDLE_STEP: Duration = Duration::from_millis(2);

/// How often a position lookup is tried in the rebalance callback before falling back.
const POSITION_ATTEMPTS: u32 = 5;

/// The store's name of the Kafka source `topic` (positions are per (source, partition)).
pub fn kafka_source(topic: &str) -> String {
    format!("kafka:{topic}")
}

/// The consumer settings of the runner: pass-through properties (TLS, SASL), the consumer-only
/// properties of `[processor]`, then its own.
pub fn consumer_config(kafka: &KafkaConfig, config: &ProcessorConfig) -> ClientConfig {
    let mut client = ClientConfig::new();
    for (key, value) in kafka.properties.iter().chain(&config.consumer_properties) {
        client.set(key, value);
    }
    client
        .set("bootstrap.servers", &kafka.brokers)
        .set("group.id", &config.group_id)
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("allow.auto.create.topics", "false")
        .set("statistics.interval.ms", config.lag_interval_ms.to_string())
        // eager rebalancing: every assignment re-places all owned partitions at the store's
        // positions, so dropping polled-but-unapplied records at a rebalance loses nothing
        .set("group.protocol", "classic")
        .set("partition.assignment.strategy", "range,roundrobin");
    client
}

/// What the runner's thread and its owner share.
struct Shared {
    stop: AtomicBool,
    /// Bumped on every assignment change; a batch polled under an older generation is dropped.
    generation: AtomicU64,
    assigned: Mutex<BTreeSet<i32>>,
    /// Whether the member has been assigned partitions at least once since it started.
    joined: AtomicBool,
    /// Epoch milliseconds of the last poll round (liveness).
    last_poll_ms: AtomicU64,
    /// Rounds handed to the applier and not yet finished (applied, or given up at a stop).
    in_flight: Mutex<usize>,
    /// Signalled when `in_flight` drops.
    round_finished: Condvar,
}

impl Shared {
    fn new() -> Shared {
        Shared {
            stop: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            assigned: Mutex::new(BTreeSet::new()),
            joined: AtomicBool::new(false),
            last_poll_ms: AtomicU64::new(now_ms()),
            in_flight: Mutex::new(0),
            round_finished: Condvar::new(),
        }
    }

    fn round_handed_over(&self) {
        *lock(&self.in_flight) += 1;
    }

    fn round_finished(&self) {
        let mut in_flight = lock(&self.in_flight);
        *in_flight = in_flight.saturating_sub(1);
        self.round_finished.notify_all();
    }

    /// Whether the applier has finished every round handed to it.
    fn applier_idle(&self) -> bool {
        *lock(&self.in_flight) == 0
    }

    /// Blocks until the applier has finished every round handed to it.
    fn wait_for_applier(&self) {
        let mut in_flight = lock(&self.in_flight);
        while *in_flight > 0 {
            in_flight = self
                .round_finished
                .wait(in_flight)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The consumer context: places assigned partitions at the store's positions, and reports lag.
struct RunnerContext {
    topic: String,
    source: String,
    store: Arc<dyn AnalyticsStore>,
    runtime: Handle,
    shared: Arc<Shared>,
    metrics: ProcessorMetrics,
}

impl ClientContext for RunnerContext {
    fn stats(&self, statistics: Statistics) {
        let assigned = lock(&self.shared.assigned).clone();
        let lags: Vec<(i32, i64)> = statistics
            .topics
            .get(&self.topic)
            .map(|topic| {
                topic
                    .partitions
                    .iter()
                    .filter(|(p, _)| assigned.contains(p))
                    .map(|(p, stats)| (*p, stats.consumer_lag_stored.max(0)))
                    .collect()
            })
            .unwrap_or_default();
        self.metrics.set_lags(&lags);
    }
}

impl RunnerContext {
    /// The stored position of `partition`, retried briefly; `None` if the store cannot say.
    fn stored_position(&self, partition: i32) -> Option<i64> {
        let mut wait = Duration::from_millis(200);
        for attempt in 1..=POSITION_ATTEMPTS {
            match self
                .runtime
                .block_on(self.store.position(&self.source, partition))
            {
                Ok(position) => return Some(position),
                Err(e) => {
                    tracing::warn!(partition, attempt, error = %e, "cannot read the stored position");
                    std::thread::sleep(wait);
                    wait *= 2;
                }
            }
        }
        None
    }

    fn assign(&self, consumer: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        // positions must include every round already handed to the applier
        self.shared.wait_for_applier();
        let partitions: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect();
        let mut placed = BTreeSet::new();
        for (topic, partition) in &partitions {
            let offset = match self.stored_position(*partition) {
                Some(0) => Offset::Beginning,
                Some(position) => Offset::Offset(position),
                None => {
                    // The store is unreachable: starting at the group's committed offset is
                    // safe (offsets are committed only after the store confirmed), and the
                    // store ignores records before its own position.
                    tracing::error!(
                        partition,
                        "store unreachable at assignment; starting at the committed offset"
                    );
                    Offset::Stored
                }
            };
            if let Err(e) = tpl.set_partition_offset(topic, *partition, offset) {
                tracing::error!(partition, error = %e, "cannot place the partition");
            }
            tracing::info!(topic = %topic, partition, offset = ?offset, "partition assigned");
            placed.insert(*partition);
        }
        if let Err(e) = consumer.assign(tpl) {
            tracing::error!(error = %e, "assignment failed");
            self.metrics.rebalanced("error");
            return;
        }
        *lock(&self.shared.assigned) = placed;
        self.shared.generation.fetch_add(1, Ordering::AcqRel);
        self.shared.joined.store(true, Ordering::Release);
        self.metrics.rebalanced("assign");
    }

    fn revoke(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        let revoked: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
        tracing::info!(partitions = ?revoked, "partitions revoked");
        // no round of these partitions may still be written after they are let go
        self.shared.wait_for_applier();
        // Commit what the store has confirmed before handing the partitions over.
        if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
            tracing::debug!(error = %e, "no offsets committed at revocation");
        }
        if let Err(e) = consumer.unassign() {
            tracing::error!(error = %e, "unassignment failed");
        }
        lock(&self.shared.assigned).clear();
        self.shared.generation.fetch_add(1, Ordering::AcqRel);
        self.metrics.rebalanced("revoke");
    }
}

impl ConsumerContext for RunnerContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => self.assign(consumer, tpl),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => self.revoke(consumer, tpl),
            other => {
                tracing::error!(error = ?other, "rebalance error; giving up the assignment");
                self.shared.wait_for_applier();
                let _ = consumer.unassign();
                lock(&self.shared.assigned).clear();
                self.shared.generation.fetch_add(1, Ordering::AcqRel);
                self.metrics.rebalanced("error");
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result {
            tracing::debug!(error = %e, "offset commit failed (informational; positions are in the store)");
        }
    }
}

/// A running consumer-group member; see the module docs.
pub struct KafkaRunner {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// What the polling thread needs: what the applier needs (it starts the applier with a copy),
/// and the size of a round.
struct Worker {
    applier: Applier,
    max_records: usize,
    max_wait: Duration,
}

/// What the applier thread needs.
#[derive(Clone)]
struct Applier {
    consumer: Arc<BaseConsumer<RunnerContext>>,
    topic: String,
    source: String,
    store: Arc<dyn AnalyticsStore>,
    processor: Arc<Processor>,
    runtime: Handle,
    shared: Arc<Shared>,
    metrics: ProcessorMetrics,
}

/// One poll round, assessed, by partition and in log order.
type Round = BTreeMap<i32, Vec<Assessed>>;

/// A round as handed to the applier: its records, and what the store looked up for it.
struct Handover {
    batches: ods_store::AssessedBatches,
    look_ahead: ods_store::LookAhead,
}

impl KafkaRunner {
    /// Joins the group of `config.group_id` on `kafka.topic` and starts processing on a thread
    /// of its own. Must be called inside a tokio runtime (the store is async).
    pub fn start(
        kafka: &KafkaConfig,
        config: &ProcessorConfig,
        store: Arc<dyn AnalyticsStore>,
        processor: Arc<Processor>,
        metrics: ProcessorMetrics,
    ) -> Result<KafkaRunner, RunnerError> {
        kafka.validate()?;
        config.validate()?;
        if let Some(key) = kafka
            .properties
            .keys()
            .chain(config.consumer_properties.keys())
            .find(|k| {
                RUNNER_MANAGED_PROPERTIES.contains(&k.as_str())
                    || ods_kafka::MANAGED_PROPERTIES.contains(&k.as_str())
            })
        {
            return Err(RunnerError::InvalidConfig {
                key: "kafka.properties / processor.consumer_properties".into(),
                reason: format!("`{key}` is set by the processor itself; remove it (the group is `[processor] group_id`)"),
            });
        }
        let runtime = Handle::try_current().map_err(|_| {
            RunnerError::Task("the Kafka runner must be started inside a tokio runtime".into())
        })?;
        let shared = Arc::new(Shared::new());
        let source = kafka_source(&kafka.topic);
        let context = RunnerContext {
            topic: kafka.topic.clone(),
            source: source.clone(),
            store: store.clone(),
            runtime: runtime.clone(),
            shared: shared.clone(),
            metrics: metrics.clone(),
        };
        let consumer: BaseConsumer<RunnerContext> = consumer_config(kafka, config)
            .create_with_context(context)
            .map_err(|source| RunnerError::Client {
                what: "consumer",
                source,
            })?;
        consumer
            .subscribe(&[kafka.topic.as_str()])
            .map_err(|source| RunnerError::Client {
                what: "subscribe",
                source,
            })?;
        let worker = Worker {
            applier: Applier {
                consumer: Arc::new(consumer),
                topic: kafka.topic.clone(),
                source,
                store,
                processor,
                runtime,
                shared: shared.clone(),
                metrics,
            },
            max_records: config.batch_max_records,
            max_wait: config.batch_max_wait(),
        };
        let thread = std::thread::Builder::new()
            .name("ods-processor".into())
            .spawn(move || worker.run())
            .map_err(|e| RunnerError::Task(format!("cannot start the processor thread: {e}")))?;
        tracing::info!(topic = %kafka.topic, group = %config.group_id, "processor joined the consumer group");
        Ok(KafkaRunner {
            shared,
            thread: Some(thread),
        })
    }

    /// The partitions this member owns now.
    pub fn assigned_partitions(&self) -> Vec<i32> {
        lock(&self.shared.assigned).iter().copied().collect()
    }

    /// Whether the member has been given partitions since it started.
    pub fn has_joined(&self) -> bool {
        self.shared.joined.load(Ordering::Acquire)
    }

    /// Milliseconds since the last poll round (a stuck store shows here).
    pub fn since_last_poll_ms(&self) -> u64 {
        now_ms().saturating_sub(self.shared.last_poll_ms.load(Ordering::Acquire))
    }

    /// Whether the thread is still running.
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops after the current batch, commits, leaves the group and waits for the thread.
    pub fn stop(mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("processor thread panicked");
            }
        }
    }
}

impl Drop for KafkaRunner {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
    }
}

impl Worker {
    fn stopped(&self) -> bool {
        self.applier.shared.stop.load(Ordering::Acquire)
    }

    fn generation(&self) -> u64 {
        self.applier.shared.generation.load(Ordering::Acquire)
    }

    /// Polls until `max_records` records or `max_wait` and assesses them; returns them by
    /// partition, in order, all of the current generation (records polled before an assignment
    /// change are dropped).
    fn poll_round(&self) -> Round {
        let mut round = Round::new();
        let mut count = 0usize;
        let mut generation = self.generation();
        let deadline = Instant::now() + self.max_wait;
        let now = chrono::Utc::now();
        while count < self.max_records && !self.stopped() {
            let left = deadline.saturating_duration_since(Instant::now());
            // once the round has records, poll in short steps: it is handed over as soon as
            // nothing more is waiting and the applier is idle (a round grows only while the
            // applier is busy anyway)
            let step = if count > 0 { left.min(IDLE_STEP) } else { left };
            let polled = self.applier.consumer.poll(step);
            self.applier
                .shared
                .last_poll_ms
                .store(now_ms(), Ordering::Release);
            if self.generation() != generation {
                // a rebalance ran inside poll: the partitions may have moved or been re-placed
                round.clear();
                count = 0;
                generation = self.generation();
            }
            match polled {
                Some(Ok(message)) => {
                    let partition = message.partition();
                    if !lock(&self.applier.shared.assigned).contains(&partition) {
                        continue;
                    }
                    // a record without payload is assessed as a dead letter
                    round
                        .entry(partition)
                        .or_default()
                        .push(self.applier.processor.assess(
                            &self.applier.source,
                            partition,
                            message.offset(),
                            message.payload().unwrap_or_default(),
                            now,
                        ));
                    count += 1;
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "consumer error; librdkafka retries");
                }
                None if count > 0 && self.applier.shared.applier_idle() => break,
                None => {}
            }
            if left.is_zero() {
                break;
            }
        }
        round
    }

    fn run(self) {
        let (rounds, received) = sync_channel::<Handover>(0);
        let applier = self.applier.clone();
        let applier = match std::thread::Builder::new()
            .name("ods-applier".into())
            .spawn(move || applier.run(received))
        {
            Ok(handle) => Some(handle),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the applier thread; processor stops");
                self.applier.shared.stop.store(true, Ordering::Release);
                None
            }
        };
        // The round handed over before the current one. The applier takes a round only after it
        // has finished (and let go of) the one before, so once a hand-over is done this thread
        // holds the last reference to the round before it and frees it here, off the applier's
        // path (freeing 10,000 assessed records took the applier 10-20 ms).
        let mut previous: Option<ods_store::AssessedBatches> = None;
        while !self.stopped() {
            let round = self.poll_round();
            if round.is_empty() {
                // a quiet stream: once the applier is done, the last round is not kept around
                if self.applier.shared.applier_idle() {
                    previous = None;
                }
                continue;
            }
            let batches: ods_store::AssessedBatches = Arc::new(round.into_iter().collect());
            let handed = batches.clone();
            // while the previous round is applied; a failed look-up only costs the applier the
            // reads it saves
            let look_ahead = self
                .applier
                .runtime
                .block_on(
                    self.applier
                        .store
                        .look_ahead(&self.applier.source, &batches),
                )
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "look-ahead failed; the applier reads for itself");
                    ods_store::LookAhead::default()
                });
            self.applier.shared.round_handed_over();
            // waits until the applier has taken the previous round
            if rounds
                .send(Handover {
                    batches,
                    look_ahead,
                })
                .is_err()
            {
                // the applier gave up (stopped while a round kept failing)
                self.applier.shared.round_finished();
                break;
            }
            drop(previous.replace(handed));
        }
        // graceful: the applier finishes the rounds handed to it
        drop(rounds);
        if let Some(applier) = applier {
            if applier.join().is_err() {
                tracing::error!("applier thread panicked");
            }
        }
        if let Err(e) = self
            .applier
            .consumer
            .commit_consumer_state(CommitMode::Sync)
        {
            tracing::debug!(error = %e, "no offsets committed at shutdown");
        }
        self.applier.consumer.unsubscribe();
        // serve the revocation so the group rebalances at once
        let _ = self.applier.consumer.poll(Duration::from_millis(100));
        tracing::info!("processor stopped and left the group");
    }
}

impl Applier {
    fn stopped(&self) -> bool {
        self.shared.stop.load(Ordering::Acquire)
    }

    /// Applies rounds in the order they arrive until the polling thread hangs up, or until a
    /// stop while a round keeps failing.
    fn run(self, rounds: Receiver<Handover>) {
        for round in rounds {
            let applied = self.apply(round);
            self.shared.round_finished();
            if !applied {
                break;
            }
        }
    }

    /// Applies one round (the records of every partition polled, in one store call), retrying
    /// until it is applied or the runner stops. Returns whether it was applied.
    fn apply(&self, round: Handover) -> bool {
        let Handover {
            batches,
            look_ahead,
        } = round;
        let records: usize = batches.iter().map(|(_, r)| r.len()).sum();
        let span = tracing::info_span!(
            "process_batch",
            partitions = ?batches.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
            first_offsets = ?batches.iter().filter_map(|(_, r)| r.first().map(Assessed::offset)).collect::<Vec<_>>(),
            records
        );
        let _entered = span.enter();
        let mut failures = 0u32;
        loop {
            let started = Instant::now();
            let result = self.runtime.block_on(self.store.apply_assessed(
                &self.source,
                &self.processor,
                batches.clone(),
                &look_ahead,
            ));
            match result {
                Ok(applied) => {
                    let seconds = started.elapsed().as_secs_f64();
                    let stats: Vec<_> = applied.iter().map(|(_, s)| s.clone()).collect();
                    self.metrics.batches_applied(&stats, seconds);
                    for (partition, stats) in &applied {
                        if let Err(e) =
                            self.consumer
                                .store_offset(&self.topic, *partition, stats.next_offset)
                        {
                            tracing::debug!(error = %e, "offset not stored for commit (informational)");
                        }
                    }
                    tracing::debug!(records, seconds, "batch applied");
                    return true;
                }
                Err(e) => {
                    failures += 1;
                    let retryable = e.is_retryable();
                    self.metrics.batch_failed(retryable);
                    let wait = if retryable {
                        Duration::from_millis(200 * u64::from(failures.min(25)))
                    } else {
                        Duration::from_secs(30)
                    };
                    tracing::error!(error = %e, retryable, retry_in_ms = wait.as_millis() as u64, "batch not applied; nothing after it is applied until it is");
                    let until = Instant::now() + wait;
                    while Instant::now() < until {
                        if self.stopped() {
                            return false;
                        }
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
        }
    }
}
