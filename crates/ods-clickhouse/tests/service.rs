//! The ClickHouse store against a real server: conformance with the embedded store on the demo
//! data, idempotency (re-applied batches and prefixes, crashes between data and position),
//! migrations, reset, error classification.
//!
//! Needs `ODS_CLICKHOUSE_URL` (`tests/services/clickhouse.sh start` prints one). Without it the
//! tests are skipped with a notice, unless `ODS_SERVICE_TESTS=1` (set by `tests/run.sh` and
//! CI), where a missing server is a failure. Each test uses its own database.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use ods_clickhouse::{
    ClickHouseConfig, ClickHouseError, ClickHouseStore, CrashPoint, RetryPolicy, Writer, MIGRATIONS,
};
use ods_codelists::reference::ReferenceData;
use ods_codelists::CodeLists;
use ods_generator::events::{demo_events, DemoEvents};
use ods_generator::GeneratorConfig;
use ods_log::LogRecord;
use ods_processor::Processor;
use ods_store::review::review;
use ods_store::{
    AnalyticsStore, CellKey, CountQuery, Dimension, EmbeddedStore, NotificationView, Published,
    ReporterActivity, SignalRecord, SignalStatus, Summary,
};
use ods_validation::Limits;

const SOURCE: &str = "ods.notifications.v1";
const PARTITION: i32 = 3;

fn service_url() -> Option<String> {
    match std::env::var("ODS_CLICKHOUSE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("ODS_SERVICE_TESTS").as_deref() != Ok("1"),
                "ODS_CLICKHOUSE_URL is required when ODS_SERVICE_TESTS=1 (tests/services/clickhouse.sh start)"
            );
            eprintln!(
                "SKIPPED: ODS_CLICKHOUSE_URL not set; run tests/services/clickhouse.sh start"
            );
            None
        }
    }
}

fn processor() -> Processor {
    Processor::new(Arc::new(CodeLists::bundled().unwrap()), Limits::default())
}

struct DemoLog {
    records: Vec<LogRecord>,
    ids: Vec<String>,
}

/// Two years of demo data, a fifth of national volume.
fn demo_config() -> GeneratorConfig {
    GeneratorConfig {
        from: 2022,
        to: 2023,
        seed: 11,
        scale: 0.2,
        ..GeneratorConfig::default()
    }
}

/// Two years of demo data (a fifth of national volume) as log records, as intake would write
/// them, plus notifications the processor rejects (complaint code), and a poison record.
fn demo_log() -> &'static DemoLog {
    static LOG: OnceLock<DemoLog> = OnceLock::new();
    LOG.get_or_init(|| {
        let lists = CodeLists::bundled().unwrap();
        let reference = ReferenceData::bundled().unwrap();
        let demo = ods_generator::generate(&demo_config(), &lists, &reference).unwrap();
        // the processor rejects the complaint code planted in every 41st filing
        let DemoEvents { events, ids } = demo_events(&demo, &lists, Some(41));
        let mut payloads: Vec<Vec<u8>> = events
            .iter()
            .map(|e| ods_wire::encode_event(e).unwrap().1)
            .collect();
        // a producer retry wrote some records twice, and one record is poison
        for i in (0..payloads.len()).step_by(97).rev() {
            let again = payloads[i].clone();
            payloads.insert(i + 1, again);
        }
        payloads.insert(payloads.len() / 2, vec![0, 0, 0, 0, 1, 255, 255]);
        let records = payloads
            .into_iter()
            .enumerate()
            .map(|(offset, payload)| LogRecord {
                topic: SOURCE.into(),
                offset: offset as i64,
                key: String::new(),
                payload,
                appended_at_ms: 0,
            })
            .collect();
        DemoLog { records, ids }
    })
}

async fn clickhouse(url: &str, name: &str) -> ClickHouseStore {
    let config = ClickHouseConfig {
        url: url.to_string(),
        database: format!("ods_test_{name}_{}", std::process::id()),
        ..ClickHouseConfig::default()
    };
    let store = ClickHouseStore::connect(&config).await.unwrap();
    store.drop_database().await.unwrap();
    store.migrate().await.unwrap();
    store
}

fn embedded() -> (tempfile::TempDir, EmbeddedStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("store.sqlite")).unwrap();
    (dir, store)
}

async fn fold(store: &dyn AnalyticsStore, records: &[LogRecord], batch: usize) {
    let processor = processor();
    for chunk in records.chunks(batch) {
        store
            .apply_batch(SOURCE, PARTITION, &processor, chunk.to_vec())
            .await
            .unwrap();
    }
}

fn queries() -> Vec<CountQuery> {
    let q = |group_by: Vec<Dimension>| CountQuery {
        group_by,
        ..CountQuery::default()
    };
    use Dimension::*;
    vec![
        q(vec![]),
        q(vec![Year]),
        q(vec![Year, DiagnosisGroup]),
        q(vec![Quarter, Sex]),
        CountQuery {
            from: Some("2022-04".into()),
            to: Some("2023-02".into()),
            ..q(vec![Month])
        },
        q(vec![Sector, SbiSection]),
        CountQuery {
            filters: vec![(SbiSection, vec!["F".into(), "C".into()])],
            ..q(vec![Diagnosis, Exposure, ExposureGroup])
        },
        q(vec![AgeBand, DetectionRoute, Consequence]),
        CountQuery {
            filters: vec![(Sex, vec!["F".into()]), (Year, vec!["2023".into()])],
            ..q(vec![DiagnosisGroup, AgeBand])
        },
        CountQuery {
            sector_scope: Some(vec!["Q".into(), "1071".into()]),
            ..q(vec![Year, DiagnosisGroup])
        },
        CountQuery {
            sector_scope: Some(vec!["Q".into()]),
            ..q(vec![])
        },
        CountQuery {
            sector_scope: Some(vec![]),
            ..q(vec![Sex])
        },
    ]
}

/// Queries for the exact counts per reporter (the sector-fund reporter threshold).
fn reporter_queries() -> Vec<CountQuery> {
    use Dimension::*;
    vec![
        CountQuery::default(),
        CountQuery {
            group_by: vec![Year, SbiSection],
            ..CountQuery::default()
        },
        CountQuery {
            group_by: vec![Quarter, DiagnosisGroup, Sector, SbiSection],
            sector_scope: Some(vec!["F".into(), "1071".into()]),
            ..CountQuery::default()
        },
        CountQuery {
            group_by: vec![Month, Sex],
            filters: vec![(
                DiagnosisGroup,
                vec!["musculoskeletal".into(), "skin".into()],
            )],
            from: Some("2022-03".into()),
            to: Some("2023-06".into()),
            sector_scope: Some(vec!["C".into(), "Q".into()]),
        },
        CountQuery {
            group_by: vec![Year],
            sector_scope: Some(vec![]),
            ..CountQuery::default()
        },
    ]
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

#[derive(Debug, PartialEq)]
struct Answers {
    published: Vec<Published>,
    by_reporter: Vec<Vec<(CellKey, String, i64)>>,
    exact: Vec<Vec<(CellKey, i64)>>,
    summary: Summary,
    activity: Vec<ReporterActivity>,
    views: Vec<Option<NotificationView>>,
    position: i64,
}

async fn answers(store: &dyn AnalyticsStore, ids: &[String]) -> Answers {
    let mut published = Vec::new();
    let mut exact = Vec::new();
    for q in queries() {
        published.push(store.counts(&q).await.unwrap());
        exact.push(store.counts_unsuppressed(&q).await.unwrap());
    }
    let mut by_reporter = Vec::new();
    for q in reporter_queries() {
        by_reporter.push(sorted(store.exact_counts_by_reporter(&q).await.unwrap()));
    }
    let mut views = Vec::new();
    for id in ids.iter().step_by(13).chain(ids.iter().step_by(41)) {
        views.push(store.notification(id).await.unwrap());
    }
    views.push(store.notification("no-such-id").await.unwrap());
    Answers {
        published,
        by_reporter,
        exact,
        summary: store.summary().await.unwrap(),
        activity: store.reporter_activity().await.unwrap(),
        views,
        position: store.position(SOURCE, PARTITION).await.unwrap(),
    }
}

/// The answers of the embedded store on the whole demo log (computed once).
async fn reference() -> &'static Answers {
    static REFERENCE: tokio::sync::OnceCell<Answers> = tokio::sync::OnceCell::const_new();
    REFERENCE
        .get_or_init(|| async {
            let log = demo_log();
            let (_dir, store) = embedded();
            fold(&store, &log.records, 500).await;
            answers(&store, &log.ids).await
        })
        .await
}

#[tokio::test]
async fn same_answers_as_the_embedded_store_on_demo_data() {
    let Some(url) = service_url() else { return };
    let log = demo_log();
    let expected = reference().await;
    // the data must exercise every kind of answer
    let s = &expected.summary;
    assert!(s.notifications_counted > 500, "{s:?}");
    assert!(
        s.notifications_rejected > 0 && s.notifications_withdrawn > 0,
        "{s:?}"
    );
    assert!(
        s.zero_reports > 0 && s.dead_letters == 1 && s.reporters > 0,
        "{s:?}"
    );
    assert!(expected
        .published
        .iter()
        .flat_map(|p| &p.cells)
        .any(|c| c.suppressed));
    // sector funds' answers (scoped) publish something, under their stricter rules
    assert!(expected.published[9].cells.iter().any(|c| !c.suppressed));
    // reporter counts: several reporters per cell, and they add up to the counts
    let national = &expected.by_reporter[0];
    assert!(national.len() > 50, "{} reporters", national.len());
    assert_eq!(
        national.iter().map(|(_, _, n)| n).sum::<i64>(),
        s.notifications_counted
    );
    assert_eq!(national.len() as i64, s.reporters);
    assert!(expected.by_reporter[4].is_empty());
    // reporter activity: every counted notification and zero report, with its service
    let activity = &expected.activity;
    assert_eq!(
        activity.iter().map(|a| a.notifications).sum::<i64>(),
        s.notifications_counted
    );
    assert_eq!(
        activity.iter().map(|a| a.zero_reports).sum::<i64>(),
        s.zero_reports
    );
    assert!(activity
        .iter()
        .all(|a| !a.service.is_empty() && a.notifications + a.zero_reports > 0));
    assert!(expected
        .views
        .iter()
        .flatten()
        .any(|v| v.status == "rejected" && v.reasons.is_some()));
    assert_eq!(expected.position, log.records.len() as i64);

    let store = clickhouse(&url, "conformance").await;
    fold(&store, &log.records, 700).await;
    let actual = answers(&store, &log.ids).await;
    assert_eq!(actual.summary, expected.summary);
    assert_eq!(actual.activity, expected.activity);
    for (i, (a, e)) in actual.published.iter().zip(&expected.published).enumerate() {
        assert_eq!(a, e, "published answer to query {i}: {:?}", queries()[i]);
    }
    for (i, (a, e)) in actual
        .by_reporter
        .iter()
        .zip(&expected.by_reporter)
        .enumerate()
    {
        assert_eq!(
            a,
            e,
            "counts by reporter, query {i}: {:?}",
            reporter_queries()[i]
        );
    }
    assert_eq!(&actual, expected);
    store.drop_database().await.unwrap();
}

#[tokio::test]
async fn reapplied_batches_and_prefixes_change_nothing() {
    let Some(url) = service_url() else { return };
    let log = demo_log();
    let store = clickhouse(&url, "reapply").await;
    let processor = processor();
    let records = &log.records;
    let mut position = 0usize;
    let mut step = 0usize;
    while position < records.len() {
        let size = [300usize, 450, 120][step % 3];
        let to = (position + size).min(records.len());
        let batch = records[position..to].to_vec();
        let stats = store
            .apply_batch(SOURCE, PARTITION, &processor, batch.clone())
            .await
            .unwrap();
        assert_eq!(stats.next_offset, to as i64);
        // the same batch again, and a prefix of it: nothing to do
        let again = store
            .apply_batch(SOURCE, PARTITION, &processor, batch.clone())
            .await
            .unwrap();
        assert_eq!((again.records, again.next_offset), (0, to as i64));
        let prefix = batch[..batch.len() / 2].to_vec();
        store
            .apply_batch(SOURCE, PARTITION, &processor, prefix)
            .await
            .unwrap();
        // a redelivery starting before the position, reaching past it
        if to < records.len() {
            let from = to.saturating_sub(37);
            let next = (to + 80).min(records.len());
            let stats = store
                .apply_batch(SOURCE, PARTITION, &processor, records[from..next].to_vec())
                .await
                .unwrap();
            assert_eq!(stats.records, next - to);
            position = next;
        } else {
            position = to;
        }
        step += 1;
    }
    let actual = answers(&store, &log.ids).await;
    assert_eq!(&actual, reference().await);
    store.drop_database().await.unwrap();
}

#[tokio::test]
async fn a_crash_between_data_and_position_gives_the_same_aggregates() {
    let Some(url) = service_url() else { return };
    let log = demo_log();
    let store = clickhouse(&url, "crash").await;
    let processor = processor();
    for (i, chunk) in log.records.chunks(400).enumerate() {
        let crash = if i % 2 == 0 {
            CrashPoint::BeforePosition
        } else {
            CrashPoint::BeforeStates
        };
        let before = store.position(SOURCE, PARTITION).await.unwrap();
        store
            .apply_batch_until(SOURCE, PARTITION, &processor, chunk, Some(crash))
            .await
            .unwrap();
        // the "crashed" batch left its position where it was
        assert_eq!(store.position(SOURCE, PARTITION).await.unwrap(), before);
        // restart: the runner reads the batch again from the stored position
        store
            .apply_batch(SOURCE, PARTITION, &processor, chunk.to_vec())
            .await
            .unwrap();
    }
    let actual = answers(&store, &log.ids).await;
    assert_eq!(&actual, reference().await);
    store.drop_database().await.unwrap();
}

#[tokio::test]
async fn positions_are_per_partition_and_reset_empties() {
    let Some(url) = service_url() else { return };
    let log = demo_log();
    let store = clickhouse(&url, "reset").await;
    let processor = processor();
    store
        .apply_batch(SOURCE, 0, &processor, log.records[..50].to_vec())
        .await
        .unwrap();
    assert_eq!(store.position(SOURCE, 0).await.unwrap(), 50);
    assert_eq!(store.position(SOURCE, 1).await.unwrap(), 0);
    assert_eq!(store.position("other", 0).await.unwrap(), 0);
    assert!(store.totals().await.unwrap().notifications_counted > 0);
    store.reset().await.unwrap();
    assert_eq!(store.position(SOURCE, 0).await.unwrap(), 0);
    assert_eq!(store.totals().await.unwrap(), ods_store::Totals::default());
    store.drop_database().await.unwrap();
}

#[tokio::test]
async fn migrations_run_once() {
    let Some(url) = service_url() else { return };
    let store = clickhouse(&url, "migrate").await;
    let again = store.migrate().await.unwrap();
    assert!(again.applied.is_empty());
    assert_eq!(again.already.len(), MIGRATIONS.len());
    let client = clickhouse::Client::default().with_url(&url);
    let rows: Vec<u64> = client
        .query(&format!(
            "SELECT count() FROM {}.schema_migrations",
            store.database()
        ))
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(rows, vec![MIGRATIONS.len() as u64]);
    store.drop_database().await.unwrap();
}

#[tokio::test]
async fn permanent_errors_name_the_row_and_transient_ones_are_retried() {
    let Some(url) = service_url() else { return };
    let rows: Vec<ods_clickhouse::PositionRow> = (0..5)
        .map(|i| ods_clickhouse::PositionRow {
            source: format!("s{i}"),
            source_partition: i,
            next_offset: 1,
            updated_at_ms: 0,
        })
        .collect();
    // a database that does not exist: permanent, reported at once with a row
    let retry = RetryPolicy {
        initial_backoff_ms: 5,
        max_backoff_ms: 20,
        max_attempts: 3,
    };
    let writer = Writer::new(
        clickhouse::Client::default().with_url(&url),
        "ods_test_missing_db",
        retry.clone(),
        100,
    );
    match writer.insert(&rows).await {
        Err(e @ ClickHouseError::RowRejected { .. }) => {
            assert!(!e.is_retryable());
            assert!(e.to_string().contains("position of s"), "{e}");
        }
        other => panic!("expected a permanent error, got {other:?}"),
    }
    // nothing listens there: retried, then returned as retryable
    let writer = Writer::new(
        clickhouse::Client::default().with_url("http://127.0.0.1:9"),
        "ods",
        retry,
        100,
    );
    match writer.insert(&rows).await {
        Err(e @ ClickHouseError::Exhausted { attempts: 3, .. }) => assert!(e.is_retryable()),
        other => panic!("expected retries to be exhausted, got {other:?}"),
    }
}

/// A proxy in front of the server that answers the first `failures` connections with 503.
async fn flaky_proxy(upstream: &str, failures: usize) -> String {
    use tokio::io::AsyncWriteExt;
    let upstream = upstream
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut served = 0usize;
        while let Ok((mut inbound, _)) = listener.accept().await {
            served += 1;
            if served <= failures {
                let _ = inbound
                    .write_all(
                        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    )
                    .await;
                let _ = inbound.shutdown().await;
                continue;
            }
            let upstream = upstream.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    format!("http://{address}")
}

#[tokio::test]
async fn inserts_are_retried_through_5xx_until_confirmed() {
    let Some(url) = service_url() else { return };
    let store = clickhouse(&url, "flaky").await;
    let proxy = flaky_proxy(&url, 2).await;
    let registry = prometheus::Registry::new();
    let metrics = ods_clickhouse::StoreMetrics::register(&registry).unwrap();
    let writer = Writer::new(
        clickhouse::Client::default().with_url(&proxy),
        store.database(),
        RetryPolicy {
            initial_backoff_ms: 5,
            max_backoff_ms: 20,
            max_attempts: 4,
        },
        100,
    )
    .with_metrics(metrics);
    let row = ods_clickhouse::PositionRow {
        source: "flaky".into(),
        source_partition: 0,
        next_offset: 42,
        updated_at_ms: 0,
    };
    writer.insert(&[row]).await.unwrap();
    assert_eq!(store.position("flaky", 0).await.unwrap(), 42);
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap();
    assert!(
        text.contains("ods_store_insert_retries_total{table=\"positions\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("ods_store_inserts_total{outcome=\"ok\",table=\"positions\"} 1"),
        "{text}"
    );
    store.drop_database().await.unwrap();
}

/// Records, lists, reviews and re-records signals; returns what the store answered at each step.
async fn signal_review_transcript(store: &dyn AnalyticsStore) -> Vec<String> {
    let raised = |id: &str, detected: i64| SignalRecord {
        id: id.to_string(),
        kind: "emerging_pair".into(),
        subject: BTreeMap::from([
            ("diagnosis".to_string(), "R612".to_string()),
            ("exposure".to_string(), format!("CH0{id}")),
        ]),
        period: "2022-06..2023-05".into(),
        numbers: BTreeMap::from([("a".to_string(), 36.0), ("ic025".to_string(), 2.5)]),
        method: "prr_evans_ic".into(),
        explanation: "36 notifications of diagnosis R612 with exposure CH018, it's \"new\"".into(),
        status: SignalStatus::New,
        note: None,
        detected_at_ms: detected,
        updated_at_ms: detected,
        revision: 1,
    };
    let mut out = Vec::new();
    let first = vec![raised("18", 1_000), raised("12", 2_000)];
    out.push(format!(
        "added {}",
        store.record_signals(&first).await.unwrap()
    ));
    // a later sweep finds one again (with other numbers) and a new one
    let mut again = raised("18", 5_000);
    again.numbers.insert("a".into(), 40.0);
    out.push(format!(
        "added {}",
        store
            .record_signals(&[again, raised("29", 3_000)])
            .await
            .unwrap()
    ));
    out.push(format!("{:?}", store.signals().await.unwrap()));
    let (current, audit) = store.signal("18").await.unwrap().unwrap();
    assert!(audit.is_empty());
    let (reviewing, entry) = review(
        &current,
        SignalStatus::UnderReview,
        "tok_a",
        "",
        Some(1),
        6_000,
    )
    .unwrap();
    out.push(format!(
        "saved {}",
        store.save_review(&reviewing, &entry).await.unwrap()
    ));
    // a second reviewer who read revision 1 too is refused by the store
    let (late, late_entry) = review(
        &current,
        SignalStatus::UnderReview,
        "tok_b",
        "",
        Some(1),
        6_500,
    )
    .unwrap();
    out.push(format!(
        "saved {}",
        store.save_review(&late, &late_entry).await.unwrap()
    ));
    let (reviewing, _) = store.signal("18").await.unwrap().unwrap();
    let (confirmed, entry) = review(
        &reviewing,
        SignalStatus::Confirmed,
        "tok_a",
        "acrylate nails; letter to the sector fund",
        Some(2),
        7_000,
    )
    .unwrap();
    out.push(format!(
        "saved {}",
        store.save_review(&confirmed, &entry).await.unwrap()
    ));
    out.push(format!("{:?}", store.signal("18").await.unwrap()));
    // derived data are rebuilt by replay; reviews are human work and stay
    store.reset().await.unwrap();
    out.push(format!("{:?}", store.signals().await.unwrap()));
    out.push(format!("{:?}", store.signal("nope").await.unwrap()));
    out
}

#[tokio::test]
async fn signals_and_their_reviews_are_kept_alike_in_both_stores() {
    let Some(url) = service_url() else { return };
    let (_dir, embedded) = embedded();
    let expected = signal_review_transcript(&embedded).await;
    assert_eq!(expected[0], "added 2");
    assert_eq!(expected[1], "added 1");
    assert_eq!(&expected[3..6], ["saved true", "saved false", "saved true"]);
    assert!(
        expected[6].contains("Confirmed") && expected[6].contains("tok_a"),
        "{}",
        expected[6]
    );
    assert!(
        expected[6].contains("ic025\": 2.5") || expected[6].contains("\"a\": 36.0"),
        "{}",
        expected[6]
    );
    let store = clickhouse(&url, "signal_review").await;
    let actual = signal_review_transcript(&store).await;
    assert_eq!(actual, expected);
    store.drop_database().await.unwrap();
}

/// A look-ahead is taken while the previous round is applied, so it can miss what that round
/// writes; the store looks those notifications up again. Here the look-ahead for the second
/// round is as stale as allowed (taken before the first round was applied): a notification
/// filed and withdrawn (version 3) in the first round, and its older amendment (version 2) in
/// the second, which must be skipped (taking the notification for a new one would count it
/// again).
#[tokio::test]
async fn a_stale_look_ahead_misses_nothing_the_previous_round_wrote() {
    let Some(url) = service_url() else { return };
    let lists = CodeLists::bundled().unwrap();
    let reference = ReferenceData::bundled().unwrap();
    let demo = ods_generator::generate(&demo_config(), &lists, &reference).unwrap();
    let DemoEvents { events, .. } = demo_events(&demo, &lists, None);
    let mut by_id: BTreeMap<String, Vec<&ods_model::Event>> = BTreeMap::new();
    for event in &events {
        if let Some(id) = event.notification_id() {
            by_id.entry(id.to_string()).or_default().push(event);
        }
    }
    let kinds = |es: &[&ods_model::Event]| -> Vec<&'static str> {
        es.iter().map(|e| e.kind().as_str()).collect()
    };
    let (id, history) = by_id
        .iter()
        .find(|(_, es)| kinds(es) == ["filed", "amended"])
        .expect("the demo data has a notification filed and amended");
    let (filed, amended) = (history[0], history[1]);
    let ods_model::Event::Amended(amendment) = amended else {
        unreachable!("the second event is an amendment")
    };
    // withdrawn after the amendment (version 3)
    let withdrawn = ods_model::Event::Withdrawn(ods_model::NotificationWithdrawn {
        event_id: amendment.event_id,
        notification_id: amendment.notification_id,
        version: 3,
        reporter: amendment.reporter.clone(),
        withdrawn_at: amendment.amended_at + chrono::Duration::days(1),
        reason: ods_model::WithdrawalReason::EnteredInError,
    });
    let withdrawn = &withdrawn;
    let records: Vec<LogRecord> = [filed, withdrawn, amended]
        .iter()
        .enumerate()
        .map(|(offset, event)| LogRecord {
            topic: SOURCE.into(),
            offset: offset as i64,
            key: id.clone(),
            payload: ods_wire::encode_event(event).unwrap().1,
            appended_at_ms: 0,
        })
        .collect();

    let store = clickhouse(&url, "look_ahead").await;
    let processor = processor();
    let now = chrono::Utc::now();
    let round = |records: &[LogRecord]| -> ods_store::AssessedBatches {
        Arc::new(vec![(
            PARTITION,
            ods_store::assess(&processor, SOURCE, PARTITION, records, now),
        )])
    };
    let (first, second) = (round(&records[..2]), round(&records[2..]));
    let stale = store.look_ahead(SOURCE, &second).await.unwrap();
    assert!(stale.checked.contains(id) && stale.stored.is_empty());
    store
        .apply_assessed(SOURCE, &processor, first, &ods_store::LookAhead::default())
        .await
        .unwrap();
    let applied = store
        .apply_assessed(SOURCE, &processor, second, &stale)
        .await
        .unwrap();
    assert_eq!(applied[0].1.skipped, 1, "{:?}", applied[0].1);
    let view = store.notification(id).await.unwrap().unwrap();
    assert_eq!(view.status, "withdrawn");
    assert_eq!(store.totals().await.unwrap().notifications_counted, 0);
    store.drop_database().await.unwrap();
}
