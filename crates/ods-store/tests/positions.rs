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
