//! Positions are kept per (source, partition), and a data directory from before partitions
//! (one `checkpoints` row per source) still opens with its positions on partition 0.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use ods_store::{AnalyticsStore, EmbeddedStore};

#[tokio::test]
async fn old_checkpoints_move_to_partition_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    {
        let old = rusqlite::Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE checkpoints (source TEXT PRIMARY KEY, next_offset INTEGER NOT NULL);
             INSERT INTO checkpoints VALUES ('ods.notifications.v1/0', 1234);",
        )
        .unwrap();
    }
    let store = EmbeddedStore::open(&path).unwrap();
    assert_eq!(store.checkpoint("ods.notifications.v1/0").unwrap(), 1234);
    assert_eq!(store.position("ods.notifications.v1/0", 1).unwrap(), 0);
    drop(store);
    // opening again is a no-op
    let store = EmbeddedStore::open(&path).unwrap();
    let store: &dyn AnalyticsStore = &store;
    assert_eq!(
        store.position("ods.notifications.v1/0", 0).await.unwrap(),
        1234
    );
    assert_eq!(store.backend(), "embedded");
}

/// Committed data reaches the database file without any commit doing a checkpoint itself: the
/// store's checkpointer thread copies the WAL's frames in the background.
#[test]
fn the_checkpointer_copies_committed_frames_into_the_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    let store = EmbeddedStore::open(&path).unwrap();
    let before = std::fs::metadata(&path).unwrap().len();
    let processor = ods_processor::Processor::new(
        std::sync::Arc::new(ods_codelists::CodeLists::bundled().unwrap()),
        ods_validation::Limits::default(),
    );
    // undecodable records become dead letters, about 2 MB of them
    let records: Vec<ods_log::LogRecord> = (0..2000)
        .map(|offset| ods_log::LogRecord {
            topic: "t".into(),
            offset,
            key: String::new(),
            payload: vec![0xff; 1000],
            appended_at_ms: 0,
        })
        .collect();
    let stats = store.apply_batch("t", 0, &processor, &records).unwrap();
    assert_eq!(stats.dead_letters, 2000);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let now = std::fs::metadata(&path).unwrap().len();
        if now > before + 1_000_000 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the database file stayed at {now} bytes (from {before}): nothing was checkpointed"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    drop(store);
}

fn poison(offset: i64) -> ods_log::LogRecord {
    ods_log::LogRecord {
        topic: "t".into(),
        offset,
        key: "poison".into(),
        payload: b"not avro".to_vec(),
        appended_at_ms: 0,
    }
}

/// Dead letters are kept per (source, partition, offset): the Kafka runner's partitions share
/// one source name, and two of them can hold an undecodable record at the same offset.
#[tokio::test]
async fn dead_letters_of_two_partitions_at_the_same_offset_are_both_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("store.sqlite")).unwrap();
    let processor = ods_processor::Processor::new(
        std::sync::Arc::new(ods_codelists::CodeLists::bundled().unwrap()),
        ods_validation::Limits::default(),
    );
    for partition in [0, 1] {
        let stats = store
            .apply_batch("kafka:t", partition, &processor, &[poison(7)])
            .unwrap();
        assert_eq!(stats.dead_letters, 1);
    }
    // applied again (a redelivery): still two
    store
        .apply_batch("kafka:t", 1, &processor, &[poison(7)])
        .unwrap();
    let totals = AnalyticsStore::totals(&store).await.unwrap();
    assert_eq!(totals.dead_letters, 2);
}

/// A data directory from before dead letters had a partition keeps its dead letters, on
/// partition 0 (the embedded log's only one).
#[tokio::test]
async fn old_dead_letters_move_to_partition_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    {
        let old = rusqlite::Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE dead_letters (
                 source TEXT NOT NULL, source_offset INTEGER NOT NULL, error TEXT NOT NULL,
                 payload BLOB NOT NULL, failed_at INTEGER NOT NULL,
                 PRIMARY KEY (source, source_offset));
             INSERT INTO dead_letters VALUES ('ods.notifications.v1/0', 3, 'bad', x'00', 0);",
        )
        .unwrap();
    }
    let store = EmbeddedStore::open(&path).unwrap();
    assert_eq!(
        AnalyticsStore::totals(&store).await.unwrap().dead_letters,
        1
    );
    drop(store);
    // opening again is a no-op
    let store = EmbeddedStore::open(&path).unwrap();
    assert_eq!(
        AnalyticsStore::totals(&store).await.unwrap().dead_letters,
        1
    );
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let partition: i32 = conn
        .query_row(
            "SELECT source_partition FROM dead_letters WHERE source_offset = 3",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(partition, 0);
    // an older binary, which does not know the column, can still write the embedded log's
    conn.execute(
        "INSERT OR REPLACE INTO dead_letters (source, source_offset, error, payload, failed_at)
         VALUES ('ods.notifications.v1/0', 4, 'bad', x'00', 0)",
        [],
    )
    .unwrap();
}
