//! `ods intake` (distributed mode) against a Kafka-protocol broker: librdkafka's mock cluster,
//! which listens on localhost, so the real `ods` process talks to it over TCP.
//! Proves: 202 only after the broker confirmed the write; a broker outage is a 503 with
//! Retry-After, never a 202; a retried request with its Idempotency-Key creates nothing new.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::time::{Duration, Instant};

use rdkafka::mocking::MockCluster;
use serde_json::Value;

const TOPIC: &str = "ods.notifications.v1";

#[tokio::test(flavor = "multi_thread")]
async fn ods_intake_answers_202_only_for_writes_the_broker_confirmed() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic(TOPIC, 2, 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ods.toml");
    std::fs::write(
        &config,
        format!(
            "[kafka]\nbrokers = \"{}\"\nmessage_timeout_ms = 1500\nmetadata_interval_ms = 200\n",
            cluster.bootstrap_servers()
        ),
    )
    .unwrap();
    let token = distributed::reporter_token(dir.path());

    let intake = distributed::start_intake(&config, dir.path(), &[]);
    let client = reqwest::Client::new();
    distributed::wait_ready(&client, &intake, true).await;
    let url = format!("{}/api/v1/notifications", intake.base);

    let post = |key: Option<&str>| {
        let mut request = client
            .post(&url)
            .bearer_auth(&token)
            .json(&distributed::body());
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        request.send()
    };
    let mut accepted = Vec::new();
    let first = post(None).await.unwrap();
    assert_eq!(first.status(), 202);
    accepted.push(
        first.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string(),
    );

    // a retried request with the same key: same answer, nothing new
    let a: Value = post(Some("retry-1")).await.unwrap().json().await.unwrap();
    let b: Value = post(Some("retry-1")).await.unwrap().json().await.unwrap();
    assert_eq!(a, b);
    accepted.push(a["id"].as_str().unwrap().to_string());

    // broker down: 503 with Retry-After, never 202
    cluster.broker_down(-1).unwrap();
    let down = post(Some("during-outage")).await.unwrap();
    assert_eq!(down.status(), 503);
    assert!(down.headers().contains_key("retry-after"));
    assert_eq!(down.headers()["content-type"], "application/problem+json");
    distributed::wait_ready(&client, &intake, false).await;

    // back up: the client's retry with the same key is accepted once
    cluster.broker_up(-1).unwrap();
    distributed::wait_ready(&client, &intake, true).await;
    // the producer may still be reconnecting: like a real client, retry on 503 with the same key
    let started = Instant::now();
    let retried = loop {
        let response = post(Some("during-outage")).await.unwrap();
        if response.status() != 503 {
            break response;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "still 503 a minute after the broker came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(retried.status(), 202);
    let retried_id = retried.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    accepted.push(retried_id.clone());

    let bootstrap = cluster.bootstrap_servers();
    let records = tokio::task::spawn_blocking(move || distributed::read_topic(&bootstrap, 2))
        .await
        .unwrap();
    for id in &accepted {
        let copies = records.iter().filter(|(_, n)| n == id).count();
        if *id == retried_id {
            // unconfirmed attempts reuse the same notification id: extra copies are possible, and
            // the processor drops them as redeliveries of version 1
            assert!(copies >= 1, "{id}: {copies}");
        } else {
            assert_eq!(copies, 1, "{id}");
        }
    }
    assert!(
        records.iter().all(|(key, id)| key == id),
        "records are keyed by notification id"
    );
    assert_eq!(
        records
            .iter()
            .map(|(_, id)| id)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        3
    );
}

#[path = "support/distributed.rs"]
#[allow(dead_code)] // each test binary uses its own part of the shared helpers
mod distributed;

#[tokio::test(flavor = "multi_thread")]
async fn intake_instances_derive_their_registry_from_the_topic() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic(TOPIC, 3, 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ids =
        distributed::two_instances_share_the_topic(&cluster.bootstrap_servers(), dir.path(), None)
            .await;
    let bootstrap = cluster.bootstrap_servers();
    let records = tokio::task::spawn_blocking(move || distributed::read_topic(&bootstrap, 3))
        .await
        .unwrap();
    for id in &ids {
        assert!(
            records.iter().any(|(_, n)| n == id),
            "{id} not on the topic"
        );
    }
}
