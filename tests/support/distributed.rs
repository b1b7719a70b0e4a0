//! Shared pieces of the distributed-mode system tests: start `ods intake` processes against a
//! Kafka-protocol broker (librdkafka's mock cluster or a real broker process) and drive the
//! doctors' API over HTTP.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::{json, Value};

/// The `ods` binary under test.
pub const ODS: &str = env!("CARGO_BIN_EXE_ods");
/// The notifications topic.
pub const TOPIC: &str = "ods.notifications.v1";
/// The BIG number of the test doctor (must never appear on a topic or in a file).
pub const BIG: &str = "19012345606";

/// A running `ods` service (`intake`, `process`, `serve`), killed (SIGKILL) when dropped.
pub struct Service {
    pub child: Child,
    pub base: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    /// Kills the process at once, like a crash.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A valid notification body.
pub fn body() -> Value {
    json!({
        "service_id": "AD0001", "diagnosis_code": "L694",
        "exposures": [{"code": "ER003", "primary": true}],
        "sector_code": "1071", "occupation_code": "7512", "sex": "F", "birth_year": 1980,
        "diagnosis_date": "2024-03-01", "consequence": "temporary", "absence_band": "1to3m",
        "detection_route": "absence_guidance"
    })
}

/// Writes a config file for `brokers` into `dir` and returns its path.
pub fn write_config(dir: &Path, brokers: &str) -> std::path::PathBuf {
    let config = dir.join("ods.toml");
    std::fs::write(
        &config,
        format!(
            "[kafka]\nbrokers = \"{brokers}\"\nmessage_timeout_ms = 5000\nmetadata_interval_ms = 500\n"
        ),
    )
    .unwrap();
    config
}

/// Creates a reporter token for the test doctor in `data_dir` and returns it.
pub fn reporter_token(data_dir: &Path) -> String {
    let out = Command::new(ODS)
        .arg("--data-dir")
        .arg(data_dir)
        .args([
            "tokens",
            "create",
            "--role",
            "reporter",
            "--big",
            BIG,
            "--service-id",
            "AD0001",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Starts `ods <command>` with `config` over `data_dir` on a free port (extra arguments after
/// the command); returns once it prints its address.
pub fn start_service(command: &str, config: &Path, data_dir: &Path, extra: &[&str]) -> Service {
    let mut child = Command::new(ODS)
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data_dir)
        .args([command, "--listen", "127.0.0.1:0"])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let started = format!("ods {command} is running");
    let base = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("ods {command} exited"))
            .unwrap();
        if let (true, Some(at)) = (line.starts_with(&started), line.find("http://")) {
            break line[at..].split_whitespace().next().unwrap().to_string();
        }
    };
    Service { child, base }
}

/// Starts `ods intake` (see [`start_service`]).
pub fn start_intake(config: &Path, data_dir: &Path, extra: &[&str]) -> Service {
    start_service("intake", config, data_dir, extra)
}

/// Waits until `/readyz` answers 200 (`ready`) or not.
pub async fn wait_ready(client: &reqwest::Client, intake: &Service, ready: bool) {
    let started = Instant::now();
    loop {
        let status = client
            .get(format!("{}/readyz", intake.base))
            .send()
            .await
            .unwrap()
            .status();
        if (status == 200) == ready {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "readyz never became {ready}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// POSTs a notification; returns its id (asserting 202).
pub async fn file(client: &reqwest::Client, intake: &Service, token: &str) -> String {
    let response = client
        .post(format!("{}/api/v1/notifications", intake.base))
        .bearer_auth(token)
        .json(&body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// GETs one notification: (status code, body).
pub async fn get(
    client: &reqwest::Client,
    intake: &Service,
    token: &str,
    id: &str,
) -> (u16, Value) {
    let response = client
        .get(format!("{}/api/v1/notifications/{id}", intake.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Amends with `If-Match: version`; returns the status code.
pub async fn amend(
    client: &reqwest::Client,
    intake: &Service,
    token: &str,
    id: &str,
    version: u32,
) -> u16 {
    let mut changed = body();
    changed["consequence"] = json!("permanent");
    client
        .put(format!("{}/api/v1/notifications/{id}", intake.base))
        .bearer_auth(token)
        .header("If-Match", format!("\"{version}\""))
        .json(&changed)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Withdraws with `If-Match: version`; returns the status code.
pub async fn withdraw(
    client: &reqwest::Client,
    intake: &Service,
    token: &str,
    id: &str,
    version: u32,
) -> u16 {
    client
        .delete(format!("{}/api/v1/notifications/{id}", intake.base))
        .bearer_auth(token)
        .header("If-Match", format!("\"{version}\""))
        .json(&json!({"reason": "not_occupational"}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Polls GET until the notification shows `version` (the follower of that instance read it).
pub async fn wait_version(
    client: &reqwest::Client,
    intake: &Service,
    token: &str,
    id: &str,
    version: u64,
) -> Value {
    let started = Instant::now();
    loop {
        let (status, body) = get(client, intake, token, id).await;
        if status == 200 && body["version"] == version {
            return body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{id} never showed version {version} at {}: {status} {body}",
            intake.base
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Two intake instances with their own data directories over one topic: a new instance
/// rebuilds its registry from the topic, each sees the other's changes, and a crashed instance
/// whose registry is lost rebuilds it at restart. Returns the ids filed (for topic checks).
pub async fn two_instances_share_the_topic(
    brokers: &str,
    root: &Path,
    create_topic: Option<i32>,
) -> Vec<String> {
    let client = reqwest::Client::new();
    let (dir_a, dir_b) = (root.join("a"), root.join("b"));
    std::fs::create_dir_all(&dir_a).unwrap();
    std::fs::create_dir_all(&dir_b).unwrap();
    let config = write_config(root, brokers);
    let token = reporter_token(&dir_a);
    // the same tokens in both instances (as an operator would distribute them)
    std::fs::copy(dir_a.join("tokens.sqlite"), dir_b.join("tokens.sqlite")).unwrap();

    let partitions = create_topic.map(|p| p.to_string());
    let mut extra: Vec<&str> = Vec::new();
    if let Some(p) = &partitions {
        extra.extend(["--create-topic", p.as_str()]);
    }
    let a = start_intake(&config, &dir_a, &extra);
    wait_ready(&client, &a, true).await;
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(file(&client, &a, &token).await);
    }
    assert_eq!(amend(&client, &a, &token, &ids[0], 1).await, 202);
    assert_eq!(withdraw(&client, &a, &token, &ids[1], 1).await, 202);

    // instance B starts later with an empty registry: it rebuilds from the topic before it
    // answers (503 until then), then knows every notification, version and withdrawal
    let b = start_intake(&config, &dir_b, &[]);
    wait_ready(&client, &b, true).await;
    let amended = wait_version(&client, &b, &token, &ids[0], 2).await;
    assert_eq!(amended["notification"]["consequence"], "permanent");
    let withdrawn = wait_version(&client, &b, &token, &ids[1], 2).await;
    assert_eq!(withdrawn["status"], "withdrawn");
    for id in &ids[2..] {
        wait_version(&client, &b, &token, id, 1).await;
    }
    // a change through B is seen by A, and a stale If-Match is refused everywhere
    assert_eq!(amend(&client, &b, &token, &ids[2], 1).await, 202);
    wait_version(&client, &a, &token, &ids[2], 2).await;
    assert_eq!(amend(&client, &a, &token, &ids[2], 1).await, 412);
    ids.push(file(&client, &b, &token).await);
    wait_version(&client, &a, &token, &ids[6], 1).await;

    // A crashes and loses its registry: the restart rebuilds it from the topic
    a.kill();
    for name in ["intake.sqlite", "intake.sqlite-wal", "intake.sqlite-shm"] {
        let _ = std::fs::remove_file(dir_a.join(name));
    }
    let a = start_intake(&config, &dir_a, &[]);
    wait_ready(&client, &a, true).await;
    let (status, body) = get(&client, &a, &token, &ids[2]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["version"], 2);
    let (status, body) = get(&client, &a, &token, &ids[1]).await;
    assert_eq!((status, body["status"].clone()), (200, json!("withdrawn")));
    assert_eq!(withdraw(&client, &a, &token, &ids[1], 2).await, 409);
    drop(b);
    ids
}

/// (key, notification id) of every record on the topic.
pub fn read_topic(bootstrap: &str, partitions: i32) -> Vec<(String, String)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "ods-intake-test")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut remaining: HashMap<i32, i64> = HashMap::new();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        let (low, high) = consumer
            .fetch_watermarks(TOPIC, p, Duration::from_secs(10))
            .unwrap();
        remaining.insert(p, high - low);
        tpl.add_partition_offset(TOPIC, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let started = Instant::now();
    while remaining.values().any(|r| *r > 0) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "topic not read in time"
        );
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message.unwrap();
        *remaining.get_mut(&message.partition()).unwrap() -= 1;
        let key = String::from_utf8(message.key().unwrap().to_vec()).unwrap();
        let payload = message.payload().unwrap();
        let text = String::from_utf8_lossy(payload);
        assert!(!text.contains(BIG), "the BIG number is on the topic");
        let event = ods_wire::decode_event(payload).unwrap();
        out.push((key, event.notification_id().unwrap().to_string()));
    }
    out
}

/// Polls GET until the notification has processing status `status`.
pub async fn wait_status(
    client: &reqwest::Client,
    intake: &Service,
    token: &str,
    id: &str,
    status: &str,
) -> Value {
    let started = Instant::now();
    loop {
        let (code, body) = get(client, intake, token, id).await;
        if code == 200 && body["status"] == status {
            return body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{id} never reached status {status}: {code} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
