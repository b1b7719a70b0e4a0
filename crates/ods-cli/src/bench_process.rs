//! `ods bench process`: the Kafka processor (`ods process`'s runner, deciding, enriching and
//! writing every record to the store) against a raw rdkafka consume-and-discard loop over the
//! same topic on the same broker, in the same run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ods_codelists::reference::ReferenceData;
use ods_kafka::KafkaConfig;
use ods_processor::Processor;
use ods_runner::{kafka_source, KafkaRunner, ProcessorConfig, ProcessorMetrics};
use ods_store::{AnalyticsStore, EmbeddedStore};
use ods_validation::Limits;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::ClientConfig;

/// Events per partition the in-process mock broker holds comfortably (it keeps 5 MB per
/// partition).
const MOCK_EVENTS_PER_PARTITION: usize = 8000;
/// Demo events at scale 1 (2014-2023).
const DEMO_EVENTS_AT_SCALE_1: f64 = 57_000.0;

/// Where the benchmark runs.
pub struct ProcessBench {
    /// Events to process.
    pub events: usize,
    /// Partitions of the benchmark topic (raised for the mock broker when needed).
    pub partitions: i32,
    /// A real broker; default: librdkafka's in-process mock cluster.
    pub brokers: Option<String>,
    /// ClickHouse for the store; default: the embedded store in a temporary directory.
    pub clickhouse_url: Option<String>,
    /// Rounds of both loops over the same topic (medians are reported).
    pub rounds: usize,
    /// The processor's batch size, when not its default.
    pub batch_max_records: Option<usize>,
}

fn payloads(events: usize) -> Result<Vec<(String, Vec<u8>)>> {
    let lists = ods_codelists::CodeLists::bundled()?;
    let reference = ReferenceData::bundled()?;
    // The generator's volume follows its scale only roughly (about 0.9 of the demo's events per
    // unit at large scales), so a short draw is made again at a scale raised by the shortfall.
    let mut scale = (events as f64 / DEMO_EVENTS_AT_SCALE_1 * 1.1).max(0.01);
    let mut generated = Vec::new();
    for _ in 0..4 {
        let config = ods_generator::GeneratorConfig {
            seed: 99,
            scale,
            ..ods_generator::GeneratorConfig::default()
        };
        let demo = ods_generator::generate(&config, &lists, &reference)?;
        generated = ods_generator::events::demo_events(&demo, &lists, Some(50)).events;
        if generated.len() >= events {
            break;
        }
        scale *= events as f64 / generated.len().max(1) as f64 * 1.05;
    }
    anyhow::ensure!(
        generated.len() >= events,
        "generated only {} events",
        generated.len()
    );
    generated
        .iter()
        .take(events)
        .map(|e| Ok((e.key(), ods_wire::encode_event(e)?.1)))
        .collect()
}

/// Remembers when the raw consumer was first given partitions.
#[derive(Default)]
struct AssignmentClock {
    assigned_at: std::sync::Mutex<Option<Instant>>,
}

impl rdkafka::ClientContext for AssignmentClock {}

impl rdkafka::consumer::ConsumerContext for AssignmentClock {
    fn post_rebalance(
        &self,
        _consumer: &BaseConsumer<Self>,
        rebalance: &rdkafka::consumer::Rebalance<'_>,
    ) {
        if let rdkafka::consumer::Rebalance::Assign(_) = rebalance {
            let mut at = self
                .assigned_at
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            at.get_or_insert_with(Instant::now);
        }
    }
}

/// Reads every record of `topic` in a consumer group and throws it away; seconds taken from
/// the assignment to the last record (like the processor: group joining is not part of the
/// throughput, fetching the first records is).
fn consume_and_discard(bootstrap: &str, topic: &str, total: usize, round: usize) -> Result<f64> {
    let consumer: BaseConsumer<AssignmentClock> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set(
            "group.id",
            format!("ods-bench-raw-{}-{round}", std::process::id()),
        )
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .create_with_context(AssignmentClock::default())?;
    consumer.subscribe(&[topic])?;
    let joining = Instant::now();
    let mut seen = 0usize;
    let mut bytes = 0usize;
    while seen < total {
        anyhow::ensure!(
            joining.elapsed() < Duration::from_secs(3600),
            "raw consumer stalled"
        );
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message?;
            bytes += message.payload_len();
            seen += 1;
        }
    }
    let finished = Instant::now();
    let assigned_at = consumer
        .context()
        .assigned_at
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .unwrap_or(joining);
    tracing::debug!(bytes, "raw consumer done");
    Ok(finished.duration_since(assigned_at).as_secs_f64())
}

async fn processed(store: &dyn AnalyticsStore, topic: &str, partitions: i32) -> Result<i64> {
    let mut sum = 0;
    for p in 0..partitions {
        sum += store.position(&kafka_source(topic), p).await?;
    }
    Ok(sum)
}

/// Runs the benchmark and prints the table row.
pub async fn run(bench: ProcessBench) -> Result<()> {
    let topic = format!("ods.bench.{}", std::process::id());
    let mock;
    let (bootstrap, partitions, broker_label) = match &bench.brokers {
        Some(b) => {
            ods_kafka::ensure_topics(
                b,
                &[(topic.as_str(), bench.partitions)],
                &Default::default(),
            )
            .await
            .context("creating the benchmark topic")?;
            (b.clone(), bench.partitions, b.clone())
        }
        None => {
            mock = MockCluster::new(1).context("starting the mock cluster")?;
            let partitions = bench
                .partitions
                .max(bench.events.div_ceil(MOCK_EVENTS_PER_PARTITION) as i32);
            mock.create_topic(&topic, partitions, 1)
                .context("creating the benchmark topic")?;
            (
                mock.bootstrap_servers(),
                partitions,
                "librdkafka mock cluster (in process)".to_string(),
            )
        }
    };
    eprintln!("generating {} events ...", bench.events);
    let records = tokio::task::spawn_blocking({
        let events = bench.events;
        move || payloads(events)
    })
    .await??;
    eprintln!("producing to {topic} ({partitions} partitions) on {broker_label} ...");
    {
        let (bootstrap, topic, records) = (bootstrap.clone(), topic.clone(), records);
        tokio::task::spawn_blocking(move || {
            ods_kafka::write_records(&bootstrap, &topic, &records, Duration::from_secs(600))
        })
        .await??;
    }

    let mut measured: Vec<(f64, f64)> = Vec::with_capacity(bench.rounds);
    let mut store_label = String::new();
    for round in 0..bench.rounds {
        eprintln!(
            "round {} of {}: raw consume-and-discard ...",
            round + 1,
            bench.rounds
        );
        let raw_seconds = {
            let (bootstrap, topic, total) = (bootstrap.clone(), topic.clone(), bench.events);
            tokio::task::spawn_blocking(move || {
                consume_and_discard(&bootstrap, &topic, total, round)
            })
            .await??
        };
        let (seconds, label) = process_round(&bench, &bootstrap, &topic, partitions, round).await?;
        store_label = label;
        measured.push((
            bench.events as f64 / raw_seconds,
            bench.events as f64 / seconds,
        ));
    }

    let median = |f: &dyn Fn(&(f64, f64)) -> f64| -> f64 {
        let mut values: Vec<f64> = measured.iter().map(f).collect();
        values.sort_by(f64::total_cmp);
        let mid = values.len() / 2;
        if values.len() % 2 == 1 {
            values[mid]
        } else {
            (values[mid - 1] + values[mid]) / 2.0
        }
    };
    let ratios: Vec<f64> = measured
        .iter()
        .map(|(raw, ods)| 100.0 * ods / raw)
        .collect();
    let lowest = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let highest = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let batch = bench
        .batch_max_records
        .unwrap_or(ProcessorConfig::default().batch_max_records);
    println!("| broker | store | events | batch_max_records | rounds | raw consume-and-discard (median) | ods processor (median) | ratio (median) | ratio per round |");
    println!("|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {broker_label}, {partitions} partitions | {store_label} | {} | {batch} | {} | {:.0}/s | {:.0}/s | {:.0}% | {lowest:.0}-{highest:.0}% |",
        bench.events,
        bench.rounds,
        median(&|(raw, _)| *raw),
        median(&|(_, ods)| *ods),
        median(&|(raw, ods)| 100.0 * ods / raw),
    );
    Ok(())
}

/// One run of the processor over the whole topic, in a new consumer group and into a new
/// store; seconds from the assignment to the last record applied, and the store's label.
async fn process_round(
    bench: &ProcessBench,
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    round: usize,
) -> Result<(f64, String)> {
    let mut _tempdir = None;
    let mut clickhouse = None;
    let (store, store_label): (Arc<dyn AnalyticsStore>, String) = match &bench.clickhouse_url {
        Some(url) => {
            let config = ods_clickhouse::ClickHouseConfig {
                url: url.clone(),
                database: format!("ods_bench_{}_{round}", std::process::id()),
                ..ods_clickhouse::ClickHouseConfig::default()
            };
            let store = Arc::new(ods_clickhouse::ClickHouseStore::connect(&config).await?);
            store.drop_database().await?;
            store.migrate().await?;
            let version = store.capabilities().version;
            clickhouse = Some(store.clone());
            (
                store,
                format!("ClickHouse {}.{}", version.major, version.minor),
            )
        }
        None => {
            let dir = tempfile::tempdir()?;
            let store = EmbeddedStore::open(&dir.path().join("store.sqlite"))?;
            _tempdir = Some(dir);
            (Arc::new(store), "embedded store (SQLite)".to_string())
        }
    };
    eprintln!(
        "round {} of {}: ods processor into the {store_label} ...",
        round + 1,
        bench.rounds
    );
    let mut kafka = KafkaConfig::new(bootstrap.to_string());
    kafka.topic = topic.to_string();
    let defaults = ProcessorConfig::default();
    let config = ProcessorConfig {
        group_id: format!("ods-bench-processor-{}-{round}", std::process::id()),
        batch_max_records: bench
            .batch_max_records
            .unwrap_or(defaults.batch_max_records),
        ..defaults
    };
    config.validate()?;
    let processor = Arc::new(Processor::new(
        Arc::new(ods_codelists::CodeLists::bundled()?),
        Limits::default(),
    ));
    let metrics = ProcessorMetrics::register(&prometheus::Registry::new())?;
    let runner = KafkaRunner::start(&kafka, &config, store.clone(), processor, metrics.clone())?;
    // timed from the assignment, like the raw loop
    let joining = Instant::now();
    while !runner.has_joined() {
        anyhow::ensure!(
            joining.elapsed() < Duration::from_secs(300),
            "processor never joined"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // watched through the runner's metrics (counted after each store commit), so that the
    // measurement does not query the store under test
    let started = Instant::now();
    while metrics.events_processed() < bench.events as u64 {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(3600),
            "processor stalled"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    tokio::task::spawn_blocking(move || runner.stop()).await?;
    let stored = processed(store.as_ref(), topic, partitions).await?;
    anyhow::ensure!(
        stored == bench.events as i64,
        "the store's positions add up to {stored} records, not {}",
        bench.events
    );
    if let Some(clickhouse) = clickhouse {
        clickhouse.drop_database().await?;
    }
    Ok((seconds, store_label))
}
