//! The Kafka runner against librdkafka's mock cluster: three members of one group join and leave
//! while the topic is processed (partitions revoked and assigned mid-stream), and every
//! aggregate equals the fold of the topic, partition by partition.
//!
//! The store under test is ClickHouse when `ODS_CLICKHOUSE_URL` is set (then the output topics
//! are checked too), else the embedded store.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ods_codelists::reference::ReferenceData;
use ods_codelists::CodeLists;
use ods_generator::events::demo_events;
use ods_generator::GeneratorConfig;
use ods_kafka::{read_topic_to_end, KafkaConfig, TopicRecord};
use ods_log::LogRecord;
use ods_processor::Processor;
use ods_runner::{kafka_source, KafkaOutlet, KafkaRunner, ProcessorConfig, ProcessorMetrics};
use ods_store::{AnalyticsStore, CountQuery, Dimension, EmbeddedStore};
use ods_validation::Limits;
use rdkafka::mocking::MockCluster;

const TOPIC: &str = "ods.notifications.v1";
const PARTITIONS: i32 = 6;
const HANG_GUARD: Duration = Duration::from_secs(240);

fn processor() -> Arc<Processor> {
    Arc::new(Processor::new(
        Arc::new(CodeLists::bundled().unwrap()),
        Limits::default(),
    ))
}

/// Demo events (with complaint codes the processor rejects), some written twice as a producer
/// retry would, and two poison records.
fn payloads() -> Vec<(String, Vec<u8>)> {
    let lists = CodeLists::bundled().unwrap();
    let reference = ReferenceData::bundled().unwrap();
    let cfg = GeneratorConfig {
        from: 2022,
        to: 2023,
        seed: 5,
        scale: 0.25,
        ..GeneratorConfig::default()
    };
    let demo = ods_generator::generate(&cfg, &lists, &reference).unwrap();
    let events = demo_events(&demo, &lists, Some(37)).events;
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let payload = ods_wire::encode_event(event).unwrap().1;
        out.push((event.key(), payload.clone()));
        if i % 53 == 0 {
            out.push((event.key(), payload));
        }
    }
    out.insert(
        out.len() / 3,
        ("poison-1".into(), vec![0, 0, 0, 0, 1, 255, 255]),
    );
    out.insert(out.len() * 2 / 3, ("poison-2".into(), b"not avro".to_vec()));
    out
}

fn as_log(records: &[TopicRecord]) -> Vec<LogRecord> {
    records
        .iter()
        .map(|r| LogRecord {
            topic: TOPIC.into(),
            offset: r.offset,
            key: String::from_utf8_lossy(&r.key).into_owned(),
            payload: r.payload.clone(),
            appended_at_ms: 0,
        })
        .collect()
}

/// The store under test: ClickHouse when configured (its configuration is returned, to drop the
/// test database at the end), else embedded.
async fn store_under_test(
    kafka: &KafkaConfig,
    config: &ProcessorConfig,
) -> (
    Option<tempfile::TempDir>,
    Arc<dyn AnalyticsStore>,
    Option<ods_clickhouse::ClickHouseConfig>,
) {
    match std::env::var("ODS_CLICKHOUSE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        Some(url) => {
            let ch = ods_clickhouse::ClickHouseConfig {
                url,
                database: format!("ods_test_runner_{}", std::process::id()),
                ..ods_clickhouse::ClickHouseConfig::default()
            };
            let store = ods_clickhouse::ClickHouseStore::connect(&ch).await.unwrap();
            store.drop_database().await.unwrap();
            store.migrate().await.unwrap();
            let outlet = Arc::new(KafkaOutlet::new(kafka, config).unwrap());
            (None, Arc::new(store.with_outlet(outlet)), Some(ch))
        }
        None => {
            assert!(
                std::env::var("ODS_SERVICE_TESTS").as_deref() != Ok("1"),
                "ODS_SERVICE_TESTS=1 but ODS_CLICKHOUSE_URL is not set"
            );
            eprintln!("ODS_CLICKHOUSE_URL not set: testing the Kafka runner on the embedded store");
            let dir = tempfile::tempdir().unwrap();
            let store = EmbeddedStore::open(&dir.path().join("store.sqlite")).unwrap();
            (Some(dir), Arc::new(store), None)
        }
    }
}

/// Waits until `runner` owns partitions (its join rebalance is done).
async fn wait_member(runner: &KafkaRunner, started: Instant) {
    while runner.assigned_partitions().is_empty() {
        assert!(
            started.elapsed() < HANG_GUARD,
            "member never got partitions"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn processed(store: &dyn AnalyticsStore) -> i64 {
    let mut sum = 0;
    for p in 0..PARTITIONS {
        sum += store.position(&kafka_source(TOPIC), p).await.unwrap();
    }
    sum
}

async fn wait_until(store: &dyn AnalyticsStore, at_least: i64, started: Instant) {
    while processed(store).await < at_least {
        assert!(
            started.elapsed() < HANG_GUARD,
            "processing stalled below {at_least}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn queries() -> Vec<CountQuery> {
    let q = |dims: &[Dimension]| CountQuery {
        group_by: dims.to_vec(),
        ..CountQuery::default()
    };
    vec![
        q(&[Dimension::Year]),
        q(&[Dimension::Month, Dimension::Sector]),
        q(&[Dimension::DiagnosisGroup, Dimension::ExposureGroup]),
        q(&[Dimension::Diagnosis, Dimension::Sex, Dimension::AgeBand]),
        q(&[Dimension::DetectionRoute, Dimension::Consequence]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn members_joining_and_leaving_mid_stream_give_the_fold() {
    let cluster = MockCluster::new(3).unwrap();
    cluster.create_topic(TOPIC, PARTITIONS, 3).unwrap();
    let mut config = ProcessorConfig {
        batch_max_records: 40,
        batch_max_wait_ms: 20,
        lag_interval_ms: 200,
        ..ProcessorConfig::default()
    };
    for (k, v) in [
        ("session.timeout.ms", "6000"),
        ("heartbeat.interval.ms", "300"),
        ("max.poll.interval.ms", "30000"),
    ] {
        config.consumer_properties.insert(k.into(), v.into());
    }
    for topic in config.output_topics() {
        cluster.create_topic(topic, 2, 3).unwrap();
    }
    let kafka = KafkaConfig::new(cluster.bootstrap_servers());

    let records = payloads();
    let produce_part = |part: usize| {
        let bootstrap = cluster.bootstrap_servers();
        let n = records.len();
        let chunk = records[n * part / 5..n * (part + 1) / 5].to_vec();
        tokio::task::spawn_blocking(move || {
            ods_kafka::write_records(&bootstrap, TOPIC, &chunk, HANG_GUARD).unwrap()
        })
    };

    let (_dir, store, clickhouse) = store_under_test(&kafka, &config).await;
    let with_outlet = clickhouse.is_some();
    let registry = prometheus::Registry::new();
    let metrics = ProcessorMetrics::register(&registry).unwrap();
    let start = |metrics: &ProcessorMetrics| {
        KafkaRunner::start(&kafka, &config, store.clone(), processor(), metrics.clone()).unwrap()
    };
    // records keep arriving while members join and leave, so every rebalance is mid-stream
    let started = Instant::now();
    produce_part(0).await.unwrap();
    let a = start(&metrics);
    wait_member(&a, started).await;
    produce_part(1).await.unwrap();
    let b = start(&metrics);
    wait_member(&b, started).await;
    produce_part(2).await.unwrap();
    let c = start(&metrics);
    wait_member(&c, started).await;
    produce_part(3).await.unwrap();
    tokio::task::spawn_blocking(move || a.stop()).await.unwrap();
    produce_part(4).await.unwrap();

    let topic = {
        let kafka = kafka.clone();
        tokio::task::spawn_blocking(move || read_topic_to_end(&kafka, TOPIC, HANG_GUARD))
            .await
            .unwrap()
            .unwrap()
    };
    let total: i64 = topic.values().map(|r| r.len() as i64).sum();
    assert_eq!(total, records.len() as i64);
    assert!(
        topic.len() as i32 == PARTITIONS,
        "every partition has records"
    );
    wait_until(store.as_ref(), total, started).await;
    // every partition is processed exactly to its end
    for (partition, records) in &topic {
        let end = records.last().unwrap().offset + 1;
        assert_eq!(
            store
                .position(&kafka_source(TOPIC), *partition)
                .await
                .unwrap(),
            end
        );
    }
    let owned: BTreeSet<i32> = b
        .assigned_partitions()
        .into_iter()
        .chain(c.assigned_partitions())
        .collect();
    assert_eq!(
        owned.len() as i32,
        PARTITIONS,
        "b and c own every partition"
    );
    tokio::task::spawn_blocking(move || {
        b.stop();
        c.stop();
    })
    .await
    .unwrap();

    // the reference: each partition folded in order into a fresh embedded store
    let reference_dir = tempfile::tempdir().unwrap();
    let reference = EmbeddedStore::open(&reference_dir.path().join("r.sqlite")).unwrap();
    let proc = processor();
    for (partition, records) in &topic {
        reference
            .apply_batch(&kafka_source(TOPIC), *partition, &proc, &as_log(records))
            .unwrap();
    }

    // the same answers as the fold
    let expected = AnalyticsStore::totals(&reference).await.unwrap();
    let actual = store.totals().await.unwrap();
    assert_eq!(actual, expected);
    assert!(actual.notifications_rejected > 0 && actual.dead_letters == 2);
    for query in queries() {
        let mut want = AnalyticsStore::exact_counts(&reference, &query)
            .await
            .unwrap();
        let mut got = store.exact_counts(&query).await.unwrap();
        want.sort();
        got.sort();
        assert_eq!(got, want, "counts by {:?}", query.group_by);
    }

    // rebalances happened and were counted
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap();
    let assigns = text
        .lines()
        .find(|l| l.starts_with("ods_processor_rebalances_total{kind=\"assign\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(
        assigns >= 5.0,
        "at least five assignments over three joins and a leave: {assigns}"
    );

    if with_outlet {
        check_output_topics(&kafka, &config, &topic).await;
    }
    if let Some(ch) = clickhouse {
        drop(store);
        let store = ods_clickhouse::ClickHouseStore::connect(&ch).await.unwrap();
        store.drop_database().await.unwrap();
    }
}

/// Every rejection and dead letter of the fold is on its topic (at least once), none else.
async fn check_output_topics(
    kafka: &KafkaConfig,
    config: &ProcessorConfig,
    topic: &BTreeMap<i32, Vec<TopicRecord>>,
) {
    let proc = processor();
    let mut want_rejected = BTreeSet::new();
    let mut want_dead = BTreeSet::new();
    for (partition, records) in topic {
        let mut states = std::collections::HashMap::new();
        for r in records {
            match proc.decode(TOPIC, *partition, r.offset, &r.payload, chrono::Utc::now()) {
                Err(_) => {
                    want_dead.insert((*partition, r.offset));
                }
                Ok(event) => {
                    let id = event.notification_id().map(|i| i.to_string());
                    let previous = id.as_ref().and_then(|i| states.get(i));
                    let decision = proc.decide(previous, &event, *partition, r.offset, &r.payload);
                    if let ods_processor::Decision::Reject { .. } = decision {
                        want_rejected.insert((*partition, r.offset));
                    }
                    let state = match decision {
                        ods_processor::Decision::Count { state, .. }
                        | ods_processor::Decision::Reject { state, .. }
                        | ods_processor::Decision::Withdraw { state, .. } => Some(state),
                        _ => None,
                    };
                    if let (Some(id), Some(state)) = (id, state) {
                        states.insert(id, state);
                    }
                }
            }
        }
    }
    let read = |name: String| {
        let kafka = kafka.clone();
        tokio::task::spawn_blocking(move || read_topic_to_end(&kafka, &name, HANG_GUARD).unwrap())
    };
    let rejections = read(config.rejections_topic.clone()).await.unwrap();
    let got_rejected: BTreeSet<(i32, i64)> = rejections
        .values()
        .flatten()
        .map(|r| {
            let rejection: ods_wire::records::NotificationRejected =
                ods_wire::decode_record(&r.payload).unwrap();
            (rejection.source_partition, rejection.source_offset)
        })
        .collect();
    assert_eq!(got_rejected, want_rejected);
    let dead = read(config.dead_letter_topic.clone()).await.unwrap();
    let got_dead: BTreeSet<(i32, i64)> = dead
        .values()
        .flatten()
        .map(|r| {
            let dead: ods_wire::records::DeadLetter = ods_wire::decode_record(&r.payload).unwrap();
            (dead.source_partition, dead.source_offset)
        })
        .collect();
    assert_eq!(got_dead, want_dead);
}
