//! `KafkaSink` against librdkafka's in-process mock cluster: confirmed writes, failures reported as unavailable, idempotent retries.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{NaiveDate, TimeZone, Utc};
use ods_intake::{EventSink, PublishError, NOTIFICATIONS_TOPIC};
use ods_kafka::{KafkaConfig, KafkaSink};
use ods_model::{
    AbsenceBand, Affiliation, Consequence, DetectionRoute, Event, ExposureRef, Notification,
    NotificationAmended, NotificationFiled, NotificationId, NotificationWithdrawn,
    PreventionAdvice, ReporterPseudonym, Sex, WithdrawalReason,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use uuid::Uuid;

/// Bound on anything that should finish: only a guard against hangs, never a timing assertion.
const HANG_GUARD: Duration = Duration::from_secs(60);

fn notification() -> Notification {
    Notification {
        affiliation: Affiliation::Service("AD0001".into()),
        diagnosis_code: "L694".into(),
        exposures: vec![ExposureRef {
            code: "ER003".into(),
            primary: true,
        }],
        sector_code: "1071".into(),
        occupation_code: "7512".into(),
        sex: Sex::Female,
        birth_year: 1980,
        diagnosis_date: NaiveDate::from_ymd_opt(2024, 10, 1).unwrap(),
        consequence: Consequence::Temporary,
        absence_band: AbsenceBand::OneToThreeMonths,
        detection_route: DetectionRoute::PmoPago,
        prevention_advice: vec![PreventionAdvice::Technical],
        guideline_code: None,
    }
}

fn reporter() -> ReporterPseudonym {
    ReporterPseudonym::from_hex(&"5e".repeat(16)).unwrap()
}

fn filed(n: u128) -> Event {
    Event::Filed(NotificationFiled {
        event_id: Uuid::from_u128(1_000_000 + n),
        notification_id: NotificationId(Uuid::from_u128(n)),
        reporter: reporter(),
        notified_at: Utc.with_ymd_and_hms(2024, 10, 2, 9, 0, 0).unwrap(),
        notification: notification(),
    })
}

fn amended(n: u128) -> Event {
    let at = Utc.with_ymd_and_hms(2024, 10, 2, 9, 0, 0).unwrap();
    Event::Amended(NotificationAmended {
        event_id: Uuid::from_u128(2_000_000 + n),
        notification_id: NotificationId(Uuid::from_u128(n)),
        version: 2,
        reporter: reporter(),
        notified_at: at,
        amended_at: at,
        notification: notification(),
    })
}

fn withdrawn(n: u128) -> Event {
    Event::Withdrawn(NotificationWithdrawn {
        event_id: Uuid::from_u128(3_000_000 + n),
        notification_id: NotificationId(Uuid::from_u128(n)),
        version: 3,
        reporter: reporter(),
        withdrawn_at: Utc.with_ymd_and_hms(2024, 11, 2, 9, 0, 0).unwrap(),
        reason: WithdrawalReason::ALL[0],
    })
}

/// A sink on the mock cluster with a short message timeout and quick readiness checks.
fn sink(cluster: &MockCluster<'_, impl rdkafka::ClientContext>, timeout_ms: u64) -> KafkaSink {
    let mut config = KafkaConfig::new(cluster.bootstrap_servers());
    config.message_timeout_ms = timeout_ms;
    config.metadata_interval_ms = 200;
    // pass-through properties: reconnect quickly after a broker comes back
    config.properties = BTreeMap::from([
        ("reconnect.backoff.ms".into(), "50".into()),
        ("reconnect.backoff.max.ms".into(), "200".into()),
    ]);
    KafkaSink::new(&config).unwrap()
}

/// Waits (bounded by the hang guard) until `is_ready()` equals `want`.
async fn wait_ready(sink: &KafkaSink, want: bool) {
    tokio::time::timeout(HANG_GUARD, async {
        while sink.is_ready() != want {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("sink never became ready={want}"));
}

/// One record read back from the topic.
#[derive(Debug)]
struct Read {
    partition: i32,
    key: String,
    event: Event,
}

/// Every record of `topic`, read from the beginning up to the high watermarks.
async fn read_topic(bootstrap: String, topic: &'static str, partitions: i32) -> Vec<Read> {
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", "mock-cluster-test")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut remaining: HashMap<i32, i64> = HashMap::new();
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            let (low, high) = consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .unwrap();
            remaining.insert(p, high - low);
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&tpl).unwrap();
        let mut out = Vec::new();
        let start = std::time::Instant::now();
        while remaining.values().any(|&r| r > 0) {
            assert!(start.elapsed() < HANG_GUARD, "topic not read in time");
            let Some(message) = consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            let message = message.unwrap();
            *remaining.get_mut(&message.partition()).unwrap() -= 1;
            let key = String::from_utf8(message.key().unwrap().to_vec()).unwrap();
            let event = ods_wire::decode_event(message.payload().unwrap()).unwrap();
            out.push(Read {
                partition: message.partition(),
                key,
                event,
            });
        }
        out
    })
    .await
    .unwrap()
}

async fn publish(sink: &KafkaSink, events: Vec<Event>) -> Result<(), PublishError> {
    tokio::time::timeout(HANG_GUARD, sink.publish(events))
        .await
        .expect("publish hung")
        .map(|published| assert_eq!(published, None, "the registry is intake's to update"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_records_are_on_the_topic_once_in_order_per_key() {
    let cluster = MockCluster::new(3).unwrap();
    cluster.create_topic(NOTIFICATIONS_TOPIC, 4, 3).unwrap();
    let sink = sink(&cluster, 10_000);
    wait_ready(&sink, true).await;

    let ids: Vec<u128> = (1..=12).collect();
    // a batch of filings, amendments one by one, then a batch of withdrawals
    publish(&sink, ids.iter().map(|&n| filed(n)).collect())
        .await
        .unwrap();
    for &n in &ids {
        publish(&sink, vec![amended(n)]).await.unwrap();
    }
    publish(&sink, ids.iter().map(|&n| withdrawn(n)).collect())
        .await
        .unwrap();
    // librdkafka counts a delivery report until its polling thread has finished serving it,
    // which can be just after the publish resolved
    tokio::time::timeout(HANG_GUARD, async {
        while sink.in_flight() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("records still in flight after every publish was confirmed");

    let records = read_topic(cluster.bootstrap_servers(), NOTIFICATIONS_TOPIC, 4).await;
    assert_eq!(records.len(), ids.len() * 3, "exactly one record per event");
    let mut versions: HashMap<String, Vec<(i32, u32)>> = HashMap::new();
    for r in &records {
        assert_eq!(r.key, r.event.key(), "key is the notification id");
        versions
            .entry(r.key.clone())
            .or_default()
            .push((r.partition, r.event.version()));
    }
    assert_eq!(versions.len(), ids.len());
    for &n in &ids {
        let key = NotificationId(Uuid::from_u128(n)).to_string();
        let seen = &versions[&key];
        assert!(
            seen.iter().all(|(p, _)| *p == seen[0].0),
            "one partition per key"
        );
        let order: Vec<u32> = seen.iter().map(|(_, v)| *v).collect();
        assert_eq!(order, vec![1, 2, 3], "versions in order for {key}");
    }
    // the payloads round-trip
    assert!(records.iter().any(|r| r.event == filed(1)));
    assert!(records.iter().any(|r| r.event == withdrawn(12)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_means_unavailable_and_recovery_after_it_is_back() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic(NOTIFICATIONS_TOPIC, 1, 1).unwrap();
    let sink = sink(&cluster, 1_500);
    wait_ready(&sink, true).await;
    publish(&sink, vec![filed(1)]).await.unwrap();

    cluster.broker_down(-1).unwrap();
    let result = publish(&sink, vec![filed(2)]).await;
    assert!(
        matches!(result, Err(PublishError::Unavailable(_))),
        "no 202 without a confirmed write: {result:?}"
    );
    wait_ready(&sink, false).await;

    cluster.broker_up(-1).unwrap();
    wait_ready(&sink, true).await;
    publish(&sink, vec![filed(3)]).await.unwrap();

    let records = read_topic(cluster.bootstrap_servers(), NOTIFICATIONS_TOPIC, 1).await;
    let count = |n: u128| records.iter().filter(|r| r.event == filed(n)).count();
    assert_eq!(count(1), 1);
    assert_eq!(count(3), 1);
    assert!(
        count(2) <= 1,
        "an unconfirmed record is written at most once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_produce_errors_are_retried_without_duplicates() {
    // Retriable broker errors are retried by librdkafka until confirmed, in order and without
    // duplicates. Note: the mock broker rejects these requests without writing them, and it
    // deduplicates sequence numbers only for transactional producers (`rd_kafka_mock_validate_
    // records` returns early without a transactional id), so the "written, answer lost, retried"
    // case cannot be shown here; it needs a real broker.
    let cluster = MockCluster::new(3).unwrap();
    cluster.create_topic(NOTIFICATIONS_TOPIC, 2, 3).unwrap();
    let sink = sink(&cluster, 15_000);
    wait_ready(&sink, true).await;
    publish(&sink, vec![filed(100)]).await.unwrap();

    use RDKafkaRespErr::*;
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[
            RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
            RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        ],
    );
    let ids: Vec<u128> = (1..=20).collect();
    publish(&sink, ids.iter().map(|&n| filed(n)).collect())
        .await
        .unwrap();
    for &n in &ids {
        publish(&sink, vec![amended(n)]).await.unwrap();
    }
    cluster.clear_request_errors(RDKafkaApiKey::Produce);

    let records = read_topic(cluster.bootstrap_servers(), NOTIFICATIONS_TOPIC, 2).await;
    assert_eq!(records.len(), 1 + ids.len() * 2, "each event exactly once");
    for &n in &ids {
        let key = NotificationId(Uuid::from_u128(n)).to_string();
        let order: Vec<u32> = records
            .iter()
            .filter(|r| r.key == key)
            .map(|r| r.event.version())
            .collect();
        assert_eq!(order, vec![1, 2], "versions in order for {key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_broker_is_reported_unavailable_not_waited_for() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic(NOTIFICATIONS_TOPIC, 1, 1).unwrap();
    let sink = sink(&cluster, 1_500);
    wait_ready(&sink, true).await;
    publish(&sink, vec![filed(1)]).await.unwrap();

    cluster
        .broker_round_trip_time(-1, Duration::from_secs(8))
        .unwrap();
    let result = publish(&sink, vec![filed(2)]).await;
    assert!(
        matches!(result, Err(PublishError::Unavailable(_))),
        "a write confirmed too late is not confirmed: {result:?}"
    );

    cluster
        .broker_round_trip_time(-1, Duration::from_millis(0))
        .unwrap();
    wait_ready(&sink, true).await;
    // the producer recovers from the timed-out in-flight request (epoch bump) and writes again;
    // the timed-out record itself may or may not be on the topic, at most once
    tokio::time::timeout(HANG_GUARD, async {
        while publish(&sink, vec![filed(3)]).await.is_err() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the producer did not recover after the broker became fast again");
    let records = read_topic(cluster.bootstrap_servers(), NOTIFICATIONS_TOPIC, 1).await;
    let count = |n: u128| records.iter().filter(|r| r.event == filed(n)).count();
    assert_eq!(count(1), 1);
    assert!(count(2) <= 1);
    assert!(count(3) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_topic_is_not_created_by_writing_and_not_ready() {
    let cluster = MockCluster::new(1).unwrap();
    let sink = sink(&cluster, 1_500);
    let result = publish(&sink, vec![filed(1)]).await;
    assert!(
        matches!(result, Err(PublishError::Unavailable(_))),
        "{result:?}"
    );
    assert!(!sink.is_ready(), "no readiness without the topic");

    // once the topic exists (as `ensure_topics` makes it on a real broker) the sink is ready
    cluster.create_topic(NOTIFICATIONS_TOPIC, 1, 1).unwrap();
    wait_ready(&sink, true).await;
    publish(&sink, vec![filed(2)]).await.unwrap();
}

#[tokio::test]
async fn ensure_topics_reports_a_broker_without_create_topics() {
    // the mock cluster does not implement CreateTopics (it never answers): the helper must
    // report an error naming the topic after its timeout, not hang
    let cluster = MockCluster::new(1).unwrap();
    let result = tokio::time::timeout(
        HANG_GUARD,
        ods_kafka::ensure_topics_within(
            &cluster.bootstrap_servers(),
            &[(NOTIFICATIONS_TOPIC, 3)],
            &BTreeMap::new(),
            Duration::from_secs(2),
        ),
    )
    .await
    .expect("ensure_topics hung");
    let err = result.unwrap_err();
    assert!(err.to_string().contains(NOTIFICATIONS_TOPIC), "{err}");
}

#[tokio::test]
async fn ensure_topics_refuses_zero_partitions_without_connecting() {
    let err = ods_kafka::ensure_topics("127.0.0.1:1", &[("t", 0)], &BTreeMap::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("at least one partition"), "{err}");
}

#[test]
fn the_sink_needs_a_tokio_runtime() {
    let err = KafkaSink::new(&KafkaConfig::new("127.0.0.1:1")).unwrap_err();
    assert!(matches!(err, ods_kafka::KafkaSinkError::NoRuntime), "{err}");
}

#[tokio::test]
async fn librdkafka_rejects_unknown_pass_through_properties() {
    let mut config = KafkaConfig::new("127.0.0.1:1");
    config
        .properties
        .insert("sasl.mechanisms.typo".into(), "PLAIN".into());
    let err = KafkaSink::new(&config).unwrap_err();
    assert!(err.to_string().contains("sasl.mechanisms.typo"), "{err}");
}
