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
}

fn payloads(events: usize) -> Result<Vec<(String, Vec<u8>)>> {
    let lists = ods_codelists::CodeLists::bundled()?;
    let reference = ReferenceData::bundled()?;
    let config = ods_generator::GeneratorConfig {
        seed: 99,
        scale: (events as f64 / DEMO_EVENTS_AT_SCALE_1 * 1.1).max(0.01),
        ..ods_generator::GeneratorConfig::default()
    };
    let demo = ods_generator::generate(&config, &lists, &reference)?;
    let generated = ods_generator::events::demo_events(&demo, &lists, Some(50)).events;
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

/// Reads every record of `topic` in a consumer group and throws it away; seconds taken.
fn consume_and_discard(bootstrap: &str, topic: &str, total: usize) -> Result<f64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("ods-bench-raw-{}", std::process::id()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .create()?;
    consumer.subscribe(&[topic])?;
    // timed from the first record: group joining is not part of the throughput
    let joining = Instant::now();
    let mut started = None;
    let mut seen = 0usize;
    let mut bytes = 0usize;
    while seen < total {
        anyhow::ensure!(
            joining.elapsed() < Duration::from_secs(3600),
            "raw consumer stalled"
        );
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message?;
            started.get_or_insert_with(Instant::now);
            bytes += message.payload_len();
            seen += 1;
        }
    }
    let started = started.unwrap_or(joining);
    let seconds = started.elapsed().as_secs_f64();
    tracing::debug!(bytes, "raw consumer done");
    Ok(seconds)
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

    eprintln!("raw consume-and-discard ...");
    let raw_seconds = {
        let (bootstrap, topic, total) = (bootstrap.clone(), topic.clone(), bench.events);
        tokio::task::spawn_blocking(move || consume_and_discard(&bootstrap, &topic, total))
            .await??
    };

    let _tempdir;
    let (store, store_label): (Arc<dyn AnalyticsStore>, String) = match &bench.clickhouse_url {
        Some(url) => {
            let config = ods_clickhouse::ClickHouseConfig {
                url: url.clone(),
                database: format!("ods_bench_{}", std::process::id()),
                ..ods_clickhouse::ClickHouseConfig::default()
            };
            let store = ods_clickhouse::ClickHouseStore::connect(&config).await?;
            store.drop_database().await?;
            store.migrate().await?;
            let version = store.capabilities().version;
            (
                Arc::new(store),
                format!("ClickHouse {}.{}", version.major, version.minor),
            )
        }
        None => {
            let dir = tempfile::tempdir()?;
            let store = EmbeddedStore::open(&dir.path().join("store.sqlite"))?;
            _tempdir = dir;
            (Arc::new(store), "embedded store (SQLite)".to_string())
        }
    };
    eprintln!("ods processor into the {store_label} ...");
    let mut kafka = KafkaConfig::new(bootstrap.clone());
    kafka.topic = topic.clone();
    let config = ProcessorConfig {
        group_id: format!("ods-bench-processor-{}", std::process::id()),
        ..ProcessorConfig::default()
    };
    let processor = Arc::new(Processor::new(
        Arc::new(ods_codelists::CodeLists::bundled()?),
        Limits::default(),
    ));
    let metrics = ProcessorMetrics::register(&prometheus::Registry::new())?;
    let runner = KafkaRunner::start(&kafka, &config, store.clone(), processor, metrics)?;
    // timed from the assignment, like the raw loop from its first record
    let joining = Instant::now();
    while !runner.has_joined() {
        anyhow::ensure!(
            joining.elapsed() < Duration::from_secs(300),
            "processor never joined"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let started = Instant::now();
    while processed(store.as_ref(), &topic, partitions).await? < bench.events as i64 {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(3600),
            "processor stalled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let processor_seconds = started.elapsed().as_secs_f64();
    tokio::task::spawn_blocking(move || runner.stop()).await?;

    let raw_rate = bench.events as f64 / raw_seconds;
    let processor_rate = bench.events as f64 / processor_seconds;
    println!("| broker | store | events | raw consume-and-discard | ods processor | ratio |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| {broker_label}, {partitions} partitions | {store_label} | {} | {raw_rate:.0}/s | {processor_rate:.0}/s | {:.0}% |",
        bench.events,
        100.0 * processor_rate / raw_rate
    );
    Ok(())
}
