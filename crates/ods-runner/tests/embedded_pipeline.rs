//! The two-stage embedded runner ([`Pipeline`]): the batch it reads ahead while the previous one
//! is written never counts anything twice or skips anything, also when the log grows between
//! steps and when another writer applies records the read-ahead already holds; every aggregate
//! equals the log folded in one go.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::sync::Arc;

use ods_codelists::reference::ReferenceData;
use ods_codelists::CodeLists;
use ods_generator::events::demo_events;
use ods_generator::GeneratorConfig;
use ods_log::{Append, EmbeddedLog};
use ods_processor::Processor;
use ods_runner::embedded::{Pipeline, EMBEDDED_SOURCE, NOTIFICATIONS_TOPIC};
use ods_store::{AnalyticsStore, CountQuery, Dimension, EmbeddedStore};
use ods_validation::Limits;

fn processor() -> Arc<Processor> {
    Arc::new(Processor::new(
        Arc::new(CodeLists::bundled().unwrap()),
        Limits::default(),
    ))
}

/// Demo events (with complaint codes the processor rejects), some appended twice as a client
/// retry would, and a poison record.
fn appends() -> Vec<Append> {
    let lists = CodeLists::bundled().unwrap();
    let reference = ReferenceData::bundled().unwrap();
    let cfg = GeneratorConfig {
        from: 2023,
        to: 2023,
        seed: 11,
        scale: 0.4,
        ..GeneratorConfig::default()
    };
    let demo = ods_generator::generate(&cfg, &lists, &reference).unwrap();
    let events = demo_events(&demo, &lists, Some(29)).events;
    let append = |key: String, payload: Vec<u8>| Append {
        topic: NOTIFICATIONS_TOPIC.into(),
        key,
        payload,
        appended_at_ms: 0,
    };
    let mut out = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let payload = ods_wire::encode_event(event).unwrap().1;
        if i % 41 == 0 {
            out.push(append(event.key(), payload.clone()));
        }
        out.push(append(event.key(), payload));
    }
    out.insert(out.len() / 2, append("poison".into(), b"not avro".to_vec()));
    out
}

async fn append_all(log: &EmbeddedLog, records: &[Append]) {
    for chunk in records.chunks(500) {
        log.append(chunk.to_vec()).await.unwrap();
    }
}

/// Steps until the log has nothing new; returns the records applied.
async fn drain(pipeline: &mut Pipeline) -> usize {
    let mut applied = 0;
    loop {
        let stats = pipeline.step().await.unwrap();
        if stats.records == 0 {
            return applied;
        }
        applied += stats.records;
    }
}

fn queries() -> Vec<CountQuery> {
    let q = |dims: &[Dimension]| CountQuery {
        group_by: dims.to_vec(),
        ..CountQuery::default()
    };
    vec![
        q(&[Dimension::Month, Dimension::Sector]),
        q(&[Dimension::DiagnosisGroup, Dimension::ExposureGroup]),
        q(&[Dimension::Diagnosis, Dimension::Sex, Dimension::AgeBand]),
        q(&[Dimension::DetectionRoute, Dimension::Consequence]),
    ]
}

/// Asserts that `store` holds what the whole log, folded in one batch into a fresh store, gives:
/// totals, counts and reporter activity.
async fn assert_the_fold(store: &EmbeddedStore, log: &EmbeddedLog, processor: &Processor) {
    let reference_dir = tempfile::tempdir().unwrap();
    let reference = EmbeddedStore::open(&reference_dir.path().join("r.sqlite")).unwrap();
    let end = log.end_offset(NOTIFICATIONS_TOPIC).unwrap();
    let all = log
        .read_from(NOTIFICATIONS_TOPIC, 0, end as usize + 1)
        .unwrap();
    assert_eq!(all.len() as i64, end);
    reference
        .apply_batch(EMBEDDED_SOURCE, 0, processor, &all)
        .unwrap();
    let expected = AnalyticsStore::totals(&reference).await.unwrap();
    assert!(expected.notifications_counted > 500, "{expected:?}");
    assert!(expected.notifications_rejected > 0, "{expected:?}");
    assert_eq!(expected.dead_letters, 1, "{expected:?}");
    assert_eq!(AnalyticsStore::totals(store).await.unwrap(), expected);
    for query in queries() {
        let mut want = AnalyticsStore::exact_counts(&reference, &query)
            .await
            .unwrap();
        let mut got = AnalyticsStore::exact_counts(store, &query).await.unwrap();
        want.sort();
        got.sort();
        assert_eq!(got, want, "counts by {:?}", query.group_by);
    }
    assert_eq!(
        AnalyticsStore::reporter_activity(store).await.unwrap(),
        AnalyticsStore::reporter_activity(&reference).await.unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_ahead_batches_give_the_fold_when_the_log_grows_and_another_writer_interferes() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(&dir.path().join("log.sqlite"), 64).unwrap();
    let store = Arc::new(EmbeddedStore::open(&dir.path().join("store.sqlite")).unwrap());
    let processor = processor();
    let records = appends();
    assert!(records.len() > 1000, "{} records", records.len());
    let (first_half, second_half) = records.split_at(records.len() / 2);

    let mut pipeline = Pipeline::new(log.clone(), store.clone(), processor.clone(), 97, None);
    // an empty log: nothing to do, and no read-ahead is kept
    assert_eq!(pipeline.step().await.unwrap().records, 0);

    // the log grows while the pipeline is idle
    append_all(&log, first_half).await;
    let mut applied = drain(&mut pipeline).await;
    assert_eq!(applied, first_half.len());
    assert_eq!(
        store.checkpoint(EMBEDDED_SOURCE).unwrap(),
        first_half.len() as i64
    );

    // the log grows again; after one step the pipeline holds the next 97 records read ahead,
    // and another writer applies 150 records from the stored position, which the read-ahead
    // and the batch after it overlap
    append_all(&log, second_half).await;
    applied += pipeline.step().await.unwrap().records;
    let position = store.checkpoint(EMBEDDED_SOURCE).unwrap();
    assert_eq!(position, applied as i64);
    let foreign = log.read_from(NOTIFICATIONS_TOPIC, position, 150).unwrap();
    let by_other = store
        .apply_batch(EMBEDDED_SOURCE, 0, &processor, &foreign)
        .unwrap();
    assert_eq!(by_other.records, 150);
    applied += by_other.records;
    applied += drain(&mut pipeline).await;
    // every record applied exactly once, by one of the two writers
    assert_eq!(applied, records.len());
    assert_eq!(
        store.checkpoint(EMBEDDED_SOURCE).unwrap(),
        records.len() as i64
    );

    assert_the_fold(&store, &log, &processor).await;
}

/// Steps cancelled at arbitrary points (a dropped future: its blocking work may still finish on
/// its own) lose and double-count nothing: the next step starts from the stored position.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_cancelled_part_way_give_the_fold() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(&dir.path().join("log.sqlite"), 64).unwrap();
    let store = Arc::new(EmbeddedStore::open(&dir.path().join("store.sqlite")).unwrap());
    let processor = processor();
    let records = appends();
    append_all(&log, &records).await;
    let mut pipeline = Pipeline::new(log.clone(), store.clone(), processor.clone(), 37, None);
    // cancel after 0 to 3 ms, deterministic per attempt
    let mut attempt = 0u64;
    while store.checkpoint(EMBEDDED_SOURCE).unwrap() < records.len() as i64 {
        attempt += 1;
        assert!(attempt < 100_000, "no progress");
        let budget = std::time::Duration::from_micros((attempt * 7919) % 3000);
        let _ = tokio::time::timeout(budget, pipeline.step()).await;
    }
    // what a cancelled step left running finishes; then nothing is left to do
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(drain(&mut pipeline).await, 0);
    assert_eq!(
        store.checkpoint(EMBEDDED_SOURCE).unwrap(),
        records.len() as i64
    );

    assert_the_fold(&store, &log, &processor).await;
}

/// A step cancelled while its batch waits for the store, whose batch then fails (the store's
/// 10 s busy timeout runs out while another connection holds the write lock): the batch read
/// ahead during that step must not be applied on top of the old position, which would skip the
/// failed batch for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_cancelled_before_its_batch_failed_skips_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(&dir.path().join("log.sqlite"), 64).unwrap();
    let store_path = dir.path().join("store.sqlite");
    let store = Arc::new(EmbeddedStore::open(&store_path).unwrap());
    let processor = processor();
    let records = appends();
    append_all(&log, &records).await;
    let mut pipeline = Pipeline::new(log.clone(), store.clone(), processor.clone(), 37, None);
    assert_eq!(pipeline.step().await.unwrap().records, 37);

    // another connection holds the write lock; the next batch waits for it, and the step is
    // cancelled meanwhile (its blocking work goes on, then fails at the busy timeout)
    let holder = rusqlite::Connection::open(&store_path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let cancelled =
        tokio::time::timeout(std::time::Duration::from_millis(500), pipeline.step()).await;
    assert!(
        cancelled.is_err(),
        "the step finished under a held write lock"
    );
    tokio::time::sleep(std::time::Duration::from_secs(11)).await;
    holder.execute_batch("ROLLBACK").unwrap();
    // the premise: the cancelled step's batch did not get in
    assert_eq!(store.checkpoint(EMBEDDED_SOURCE).unwrap(), 37);

    assert_eq!(drain(&mut pipeline).await, records.len() - 37);
    assert_eq!(
        store.checkpoint(EMBEDDED_SOURCE).unwrap(),
        records.len() as i64
    );
    assert_the_fold(&store, &log, &processor).await;
}
