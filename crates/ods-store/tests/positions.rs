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
