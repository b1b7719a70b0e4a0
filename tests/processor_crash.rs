//! `ods process` killed with SIGKILL at 20 random points while it works through 100,000
//! generated events (the demo data set, almost twice over), restarted each time: afterwards
//! every aggregate, total and notification status in ClickHouse equals the fold of the topic,
//! and every rejection and dead letter is on its output topic.
//!
//! The broker is librdkafka's mock cluster (its listeners are real TCP ports the child process
//! connects to); the store is the ClickHouse server of `ODS_CLICKHOUSE_URL`. Without that
//! variable the test is skipped with a notice, unless `ODS_SERVICE_TESTS=1`.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

#[path = "support/distributed.rs"]
#[allow(dead_code)] // each test binary uses its own part of the shared helpers
mod distributed;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ods_clickhouse::{ClickHouseConfig, ClickHouseStore};
use ods_codelists::reference::ReferenceData;
use ods_codelists::CodeLists;
use ods_generator::events::demo_events;
use ods_generator::{GeneratorConfig, Rng};
use ods_kafka::{read_topic_to_end, KafkaConfig, TopicRecord};
use ods_log::LogRecord;
use ods_processor::Processor;
use ods_runner::{kafka_source, ProcessorConfig};
use ods_store::{AnalyticsStore, CountQuery, Dimension, EmbeddedStore};
use rdkafka::mocking::MockCluster;

const TOPIC: &str = "ods.notifications.v1";
/// The mock cluster keeps at most 5 MB per partition; 16 partitions hold the 45 MB of records.
const PARTITIONS: i32 = 16;
const EVENTS: usize = 100_000;
const KILLS: usize = 20;
const HANG_GUARD: Duration = Duration::from_secs(600);

fn clickhouse_url() -> Option<String> {
    match std::env::var("ODS_CLICKHOUSE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        Some(url) => Some(url),
        None => {
            assert!(
                std::env::var("ODS_SERVICE_TESTS").as_deref() != Ok("1"),
                "ODS_SERVICE_TESTS=1 but ODS_CLICKHOUSE_URL is not set"
            );
            eprintln!("skipped: set ODS_CLICKHOUSE_URL (tests/services/clickhouse.sh start)");
            None
        }
    }
}

/// At least [`EVENTS`] generated events (with complaint codes the processor rejects), a few
/// written twice as a producer retry would, and three poison records.
fn payloads() -> Vec<(String, Vec<u8>)> {
    let lists = CodeLists::bundled().unwrap();
    let reference = ReferenceData::bundled().unwrap();
    let cfg = GeneratorConfig {
        seed: 23,
        scale: 1.9,
        ..GeneratorConfig::default()
    };
    let demo = ods_generator::generate(&cfg, &lists, &reference).unwrap();
    let events = demo_events(&demo, &lists, Some(61)).events;
    assert!(events.len() >= EVENTS, "{} events", events.len());
    let mut out = Vec::with_capacity(events.len() + 2000);
    for (i, event) in events.iter().take(EVENTS).enumerate() {
        let payload = ods_wire::encode_event(event).unwrap().1;
        if i % 101 == 0 {
            out.push((event.key(), payload.clone()));
        }
        out.push((event.key(), payload));
    }
    for (n, at) in [out.len() / 4, out.len() / 2, out.len() * 3 / 4]
        .into_iter()
        .enumerate()
    {
        out.insert(at, (format!("poison-{n}"), vec![0, 0, 0, 0, 9, 1, 2, 3]));
    }
    out
}

async fn processed(store: &ClickHouseStore) -> i64 {
    let mut sum = 0;
    for p in 0..PARTITIONS {
        sum += store.position(&kafka_source(TOPIC), p).await.unwrap();
    }
    sum
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_twenty_points_then_restart_gives_the_fold() {
    let Some(url) = clickhouse_url() else {
        return;
    };
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic(TOPIC, PARTITIONS, 1).unwrap();
    let processor_config = ProcessorConfig::default();
    for topic in processor_config.output_topics() {
        cluster.create_topic(topic, 2, 1).unwrap();
    }
    let bootstrap = cluster.bootstrap_servers();
    let records = tokio::task::spawn_blocking(payloads).await.unwrap();
    {
        let (bootstrap, records) = (bootstrap.clone(), records.clone());
        tokio::task::spawn_blocking(move || {
            ods_kafka::write_records(&bootstrap, TOPIC, &records, HANG_GUARD).unwrap()
        })
        .await
        .unwrap();
    }
    let kafka = KafkaConfig::new(bootstrap.clone());
    let topic = {
        let kafka = kafka.clone();
        tokio::task::spawn_blocking(move || read_topic_to_end(&kafka, TOPIC, HANG_GUARD))
            .await
            .unwrap()
            .unwrap()
    };
    let total: i64 = topic.values().map(|r| r.len() as i64).sum();
    assert_eq!(total, records.len() as i64);

    let database = format!("ods_test_crash_{}", std::process::id());
    let ch = ClickHouseConfig {
        url: url.clone(),
        database: database.clone(),
        ..ClickHouseConfig::default()
    };
    let store = ClickHouseStore::connect(&ch).await.unwrap();
    store.drop_database().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ods.toml");
    std::fs::write(
        &config,
        format!(
            "[kafka]\nbrokers = \"{bootstrap}\"\n\n[processor]\nbatch_max_records = 700\n\
             batch_max_wait_ms = 50\n\n[processor.consumer_properties]\n\"session.timeout.ms\" = \"3000\"\n\
             \"heartbeat.interval.ms\" = \"300\"\n\n[clickhouse]\nurl = \"{url}\"\ndatabase = \"{database}\"\n"
        ),
    )
    .unwrap();

    // 20 kills at random points spread over the whole topic: each run is killed (at a random
    // moment within a batch) once the processor has passed the next point
    let started = Instant::now();
    let mut rng = Rng::new(2026);
    let mut targets: Vec<i64> = (0..KILLS)
        .map(|_| rng.below(total as usize * 19 / 20) as i64 + 1)
        .collect();
    targets.sort_unstable();
    let mut kill_points = Vec::new();
    for target in targets {
        let child = distributed::start_service("process", &config, dir.path(), &[]);
        let before = processed(&store).await;
        while processed(&store).await < target.max(before + 1) {
            assert!(
                started.elapsed() < HANG_GUARD,
                "no progress after a restart"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.below(300) as u64)).await;
        drop(child); // SIGKILL
        kill_points.push(processed(&store).await);
    }
    eprintln!("killed at positions {kill_points:?} of {total}");
    assert!(
        kill_points.len() == KILLS && kill_points[KILLS - 1] < total,
        "every kill must fall while records remain: {kill_points:?}"
    );

    let _last = distributed::start_service("process", &config, dir.path(), &[]);
    while processed(&store).await < total {
        assert!(
            started.elapsed() < HANG_GUARD,
            "never finished after the kills"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // the reference: the fold of each partition, in order
    let reference_dir = tempfile::tempdir().unwrap();
    let reference = EmbeddedStore::open(&reference_dir.path().join("r.sqlite")).unwrap();
    let processor = Processor::new(
        Arc::new(CodeLists::bundled().unwrap()),
        ods_validation::Limits::default(),
    );
    let mut rejected_versions = 0;
    for (partition, records) in &topic {
        rejected_versions += reference
            .apply_batch(
                &kafka_source(TOPIC),
                *partition,
                &processor,
                &as_log(records),
            )
            .unwrap()
            .rejected;
    }
    let want = AnalyticsStore::totals(&reference).await.unwrap();
    assert_eq!(store.totals().await.unwrap(), want);
    assert_eq!(want.dead_letters, 3);
    assert!(want.notifications_rejected > 0 && want.notifications_withdrawn > 0);
    let dims = [
        Dimension::Month,
        Dimension::Sector,
        Dimension::Diagnosis,
        Dimension::ExposureGroup,
        Dimension::Exposure,
        Dimension::Sex,
        Dimension::AgeBand,
        Dimension::DetectionRoute,
        Dimension::Consequence,
    ];
    for dims in [
        &dims[..],
        &[Dimension::Year, Dimension::SbiSection][..],
        &[Dimension::Quarter, Dimension::DiagnosisGroup][..],
    ] {
        let query = CountQuery {
            group_by: dims.to_vec(),
            ..CountQuery::default()
        };
        let mut expected = AnalyticsStore::exact_counts(&reference, &query)
            .await
            .unwrap();
        let mut actual = store.exact_counts(&query).await.unwrap();
        expected.sort();
        actual.sort();
        assert_eq!(actual.len(), expected.len(), "cells by {dims:?}");
        assert!(actual == expected, "counts by {dims:?} differ");
    }
    // statuses of a sample of notifications
    let mut ids = BTreeSet::new();
    for records in topic.values() {
        for r in records.iter().step_by(997) {
            if let Ok(event) = ods_wire::decode_event(&r.payload) {
                if let Some(id) = event.notification_id() {
                    ids.insert(id.to_string());
                }
            }
        }
    }
    for id in &ids {
        assert_eq!(
            store.notification(id).await.unwrap(),
            AnalyticsStore::notification(&reference, id).await.unwrap(),
            "status of {id}"
        );
    }

    // every rejection and dead letter reached its topic (at least once)
    let read = |name: String| {
        let kafka = kafka.clone();
        tokio::task::spawn_blocking(move || read_topic_to_end(&kafka, &name, HANG_GUARD).unwrap())
    };
    let rejected: BTreeMap<(i32, i64), usize> = read(processor_config.rejections_topic.clone())
        .await
        .unwrap()
        .values()
        .flatten()
        .fold(BTreeMap::new(), |mut seen, r| {
            let rejection: ods_wire::records::NotificationRejected =
                ods_wire::decode_record(&r.payload).unwrap();
            *seen
                .entry((rejection.source_partition, rejection.source_offset))
                .or_default() += 1;
            seen
        });
    assert_eq!(
        rejected.len(),
        rejected_versions,
        "one rejection per rejected version"
    );
    let dead = read(processor_config.dead_letter_topic.clone())
        .await
        .unwrap();
    let dead: BTreeSet<(i32, i64)> = dead
        .values()
        .flatten()
        .map(|r| {
            let d: ods_wire::records::DeadLetter = ods_wire::decode_record(&r.payload).unwrap();
            (d.source_partition, d.source_offset)
        })
        .collect();
    assert_eq!(dead.len(), 3);
    store.drop_database().await.unwrap();
}
