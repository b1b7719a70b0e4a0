//! System tests: the real `ods` binary as a user runs it.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const ODS: &str = env!("CARGO_BIN_EXE_ods");

struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(data_dir: &Path) -> Server {
        Self::start_with(data_dir, &[])
    }

    fn start_with(data_dir: &Path, env: &[(&str, &str)]) -> Server {
        let mut command = Command::new(ODS);
        // debug-level logs go to a file in the data directory, so tests can scan them
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.join("server.log"))
            .unwrap();
        command
            .args([
                "--data-dir",
                data_dir.to_str().unwrap(),
                "run",
                "--listen",
                "127.0.0.1:0",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .env("RUST_LOG", "debug,hyper=info,h2=info");
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start ods run");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("ods run exited before serving")
                .unwrap();
            if let Some(rest) = line.strip_prefix("ods is running at ") {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Server { child, base }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn kill(mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ods(data_dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(ODS)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .expect("run ods")
}

fn token(data_dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["tokens", "create"];
    all.extend_from_slice(args);
    let out = ods(data_dir, &all);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "the token alone on stdout");
    text.trim().to_string()
}

/// A reporter token for a doctor with this BIG number at this service.
fn reporter_token(data_dir: &Path, big: &str, service: &str) -> String {
    token(
        data_dir,
        &["--role", "reporter", "--big", big, "--service-id", service],
    )
}

fn valid_body() -> Value {
    json!({
        "service_id": "AD0001",
        "diagnosis_code": "L694",
        "exposures": [{"code": "ER003", "primary": true}],
        "sector_code": "1071",
        "occupation_code": "7512",
        "sex": "F",
        "birth_year": 1980,
        "diagnosis_date": "2024-03-01",
        "consequence": "temporary",
        "absence_band": "1to3m",
        "detection_route": "absence_guidance",
        "prevention_advice": ["organisational"]
    })
}

async fn counted(client: &reqwest::Client, server: &Server, analyst: &str) -> i64 {
    let summary: Value = client
        .get(server.url("/api/v1/stats/summary"))
        .bearer_auth(analyst)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    summary["notifications_counted"].as_i64().unwrap()
}

/// Polls until the counted total equals `expected` (generous deadline for loaded CI machines;
/// the observed latency is printed by callers).
async fn wait_counted(
    client: &reqwest::Client,
    server: &Server,
    analyst: &str,
    expected: i64,
) -> Duration {
    let started = Instant::now();
    loop {
        let n = counted(client, server, analyst).await;
        if n == expected {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "only {n} of {expected} counted after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_valid_notification_is_accepted_and_counted_an_invalid_one_gets_every_violation() {
    let dir = tempfile::tempdir().unwrap();
    let reporter = reporter_token(dir.path(), "19012345601", "AD0001");
    let analyst = token(dir.path(), &["--role", "analyst"]);
    let server = Server::start(dir.path());
    let client = reqwest::Client::new();

    assert_eq!(
        reqwest::get(server.url("/healthz")).await.unwrap().status(),
        200
    );
    assert_eq!(
        reqwest::get(server.url("/readyz")).await.unwrap().status(),
        200
    );

    let response = client
        .post(server.url("/api/v1/notifications"))
        .bearer_auth(&reporter)
        .json(&valid_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.unwrap();
    assert_eq!(accepted["status"], "accepted");
    assert_eq!(accepted["version"], 1);
    assert!(uuid::Uuid::parse_str(accepted["id"].as_str().unwrap()).is_ok());
    let latency = wait_counted(&client, &server, &analyst, 1).await;
    eprintln!("accepted -> counted in {latency:?}");

    let mut bad = valid_body();
    bad["diagnosis_code"] = json!("L111");
    bad["sex"] = json!("V");
    bad["worker_name"] = json!("J. Jansen");
    let response = client
        .post(server.url("/api/v1/notifications"))
        .bearer_auth(&reporter)
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await.unwrap();
    let violations = problem["violations"].as_array().unwrap();
    let rules: Vec<&str> = violations
        .iter()
        .map(|v| v["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules.len(), 3, "{problem}");
    for rule in ["diagnosis.complaint_code", "sex.invalid", "field.unknown"] {
        assert!(rules.contains(&rule), "{rule} missing in {problem}");
    }
    for v in violations {
        for key in ["field", "value", "rule", "message", "message_nl"] {
            assert!(!v[key].is_null(), "{key} missing in {v}");
        }
    }

    // no token, wrong role, malformed JSON
    let status = |r: reqwest::Response| r.status().as_u16();
    let url = server.url("/api/v1/notifications");
    assert_eq!(
        status(client.post(&url).json(&valid_body()).send().await.unwrap()),
        401
    );
    assert_eq!(
        status(
            client
                .post(&url)
                .bearer_auth(&analyst)
                .json(&valid_body())
                .send()
                .await
                .unwrap()
        ),
        403
    );
    let malformed = client
        .post(&url)
        .bearer_auth(&reporter)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(status(malformed), 400);
    assert_eq!(counted(&client, &server, &analyst).await, 1);

    // a zero report
    let zero = client
        .post(server.url("/api/v1/zero-reports"))
        .bearer_auth(&reporter)
        .json(&json!({"period": "2024-03"}))
        .send()
        .await
        .unwrap();
    assert_eq!(zero.status(), 202);

    // metrics have the conventional names
    let metrics = reqwest::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "ods_intake_requests_total",
        "ods_intake_validation_failures_total",
        "ods_processor_events_total",
        "ods_intake_request_duration_seconds",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    assert!(!metrics.contains("19012345601"));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_right_after_202_loses_nothing_and_counts_once() {
    let dir = tempfile::tempdir().unwrap();
    let reporter = token(
        dir.path(),
        &[
            "--role",
            "reporter",
            "--big",
            "19012345602",
            "--self-employed",
        ],
    );
    let analyst = token(dir.path(), &["--role", "analyst"]);
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    let server = Server::start(dir.path());
    for i in 0..25 {
        let mut body = valid_body();
        body.as_object_mut().unwrap().remove("service_id");
        body["self_employed"] = json!(true);
        body["birth_year"] = json!(1960 + i);
        let response = client
            .post(server.url("/api/v1/notifications"))
            .bearer_auth(&reporter)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        ids.push(
            response.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    server.kill(); // right after the last 202

    let server = Server::start(dir.path());
    wait_counted(&client, &server, &analyst, 25).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        counted(&client, &server, &analyst).await,
        25,
        "nothing counted twice"
    );
    // the doctor still finds every notification (the registry caught up with the log)
    for id in &ids {
        let url = server.url(&format!("/api/v1/notifications/{id}"));
        assert_eq!(
            client
                .get(url)
                .bearer_auth(&reporter)
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    server.kill();

    // again: a restart replays nothing twice
    let server = Server::start(dir.path());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(counted(&client, &server, &analyst).await, 25);
    drop(server);

    // the log holds each accepted notification exactly once
    let log = ods_log::EmbeddedLog::open(&dir.path().join("log.sqlite"), 1).unwrap();
    let records = log.read_from("ods.notifications.v1", 0, 1000).unwrap();
    let mut logged: Vec<String> = records
        .iter()
        .map(|r| {
            ods_wire::decode_event(&r.payload)
                .unwrap()
                .notification_id()
                .unwrap()
                .to_string()
        })
        .collect();
    logged.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(logged, expected);
    drop(log);
    // no file of the data directory (databases, WAL files, key) and no server log line holds
    // the BIG number
    let log_text = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    assert!(
        log_text.contains("notification accepted"),
        "debug logs were captured"
    );
    assert!(
        !log_text.contains("19012345602"),
        "the BIG number is in the server log"
    );
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains("19012345602"),
                "{}",
                path.display()
            );
        }
    }
    // replay rebuilds the same aggregates
    let out = ods(dir.path(), &["replay"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = Server::start(dir.path());
    assert_eq!(counted(&client, &server, &analyst).await, 25);
}

/// Files `n` valid notifications (distinct birth years from `first_year`), returns their ids.
async fn file(
    client: &reqwest::Client,
    server: &Server,
    reporter: &str,
    n: usize,
    first_year: i64,
) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let mut body = valid_body();
        body["birth_year"] = json!(first_year + i as i64);
        let response = client
            .post(server.url("/api/v1/notifications"))
            .bearer_auth(reporter)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        let answer: Value = response.json().await.unwrap();
        ids.push(answer["id"].as_str().unwrap().to_string());
    }
    ids
}

async fn status_of(client: &reqwest::Client, server: &Server, reporter: &str, id: &str) -> Value {
    client
        .get(server.url(&format!("/api/v1/notifications/{id}")))
        .bearer_auth(reporter)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// `ods replay --from`, while the server runs, with corrected code lists: notifications with a
/// record from the point on get the new verdict, earlier ones keep theirs.
#[tokio::test(flavor = "multi_thread")]
async fn replay_from_a_point_applies_corrected_code_lists_to_later_notifications() {
    let dir = tempfile::tempdir().unwrap();
    let reporter = reporter_token(dir.path(), "19012345601", "AD0001");
    let analyst = token(dir.path(), &["--role", "analyst"]);
    let server = Server::start(dir.path());
    let client = reqwest::Client::new();
    let early = file(&client, &server, &reporter, 3, 1960).await; // offsets 0-2
    wait_counted(&client, &server, &analyst, 3).await;
    let late = file(&client, &server, &reporter, 3, 1970).await; // offsets 3-5
    wait_counted(&client, &server, &analyst, 6).await;

    // the correction: L694 is no longer in force after 2020
    let lists = tempfile::tempdir().unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/codelists");
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        let mut text = std::fs::read_to_string(&path).unwrap();
        if path.file_name().unwrap() == "diagnoses.csv" {
            let line = text.lines().find(|l| l.starts_with("L694,")).unwrap();
            let corrected = line.replacen(",2010-01-01,,", ",2010-01-01,2020-01-01,", 1);
            assert_ne!(line, corrected);
            text = text.replace(line, &corrected);
        }
        std::fs::write(lists.path().join(path.file_name().unwrap()), text).unwrap();
    }
    let replay = |from: &str| {
        let out = Command::new(ODS)
            .arg("--data-dir")
            .arg(dir.path())
            .args(["replay", "--from", from])
            .env("ODS_CODELISTS_DIR", lists.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{stderr}");
        stderr
    };
    let stderr = replay("3");
    assert!(
        stderr.contains("re-processed 3 notifications with records in offsets 3..6"),
        "{stderr}"
    );
    assert_eq!(counted(&client, &server, &analyst).await, 3);
    for id in &early {
        let view = status_of(&client, &server, &reporter, id).await;
        assert_eq!(view["status"], "validated", "{view}");
    }
    for id in &late {
        let view = status_of(&client, &server, &reporter, id).await;
        assert_eq!(view["status"], "rejected", "{view}");
        let reasons = view["reasons"].to_string();
        assert!(reasons.contains("diagnosis_code"), "{view}");
    }

    // a time before everything: every notification, nothing left counted
    let stderr = replay("2000-01-01");
    assert!(stderr.contains("is offset 0"), "{stderr}");
    assert!(stderr.contains("re-processed 6 notifications"), "{stderr}");
    assert_eq!(counted(&client, &server, &analyst).await, 0);
    // the processor goes on from its position: a new filing is decided as before (the server
    // still runs with the bundled lists)
    file(&client, &server, &reporter, 1, 1980).await;
    wait_counted(&client, &server, &analyst, 1).await;

    // a point past the end of the log is refused, naming the end
    let out = Command::new(ODS)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["replay", "--from", "99"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("past the end of the log (offset 7)"));
    let out = ods(dir.path(), &["replay", "--from", "last tuesday"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("RFC 3339"));
    // while the server runs: a full replay (which empties the store) and a second server on
    // the same directory are refused, naming the server's process
    let pid = server.child.id().to_string();
    let out = ods(dir.path(), &["replay"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("stop it first") && stderr.contains(&pid),
        "{stderr}"
    );
    let out = ods(dir.path(), &["run", "--listen", "127.0.0.1:0"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("another `ods run`") && stderr.contains(&pid),
        "{stderr}"
    );
    assert_eq!(
        counted(&client, &server, &analyst).await,
        1,
        "the server still serves"
    );
    // a mistyped data directory is refused, and nothing is created there
    let elsewhere = dir.path().join("typo");
    let out = ods(&elsewhere, &["replay", "--from", "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no embedded log at"));
    assert!(!elsewhere.join("store.sqlite").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_probable_duplicate_is_accepted_with_a_warning_naming_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let reporter = reporter_token(dir.path(), "19012345601", "AD0001");
    let other_doctor = reporter_token(dir.path(), "19012345602", "AD0001");
    let server = Server::start(dir.path());
    let client = reqwest::Client::new();
    let mut answers = Vec::new();
    for _ in 0..2 {
        let response = client
            .post(server.url("/api/v1/notifications"))
            .bearer_auth(&reporter)
            .json(&valid_body())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        answers.push(response.json::<Value>().await.unwrap());
    }
    assert_eq!(answers[0]["warnings"], json!([]));
    let first = answers[0]["id"].as_str().unwrap();
    let warnings = answers[1]["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let warning = warnings[0].as_str().unwrap();
    assert!(
        warning.contains("probable duplicate") && warning.contains(first),
        "{warning}"
    );
    // identical filings sent at the same moment: the registry checks each as it applies it, so
    // exactly one (the first applied) goes without a warning
    let at_once: Vec<_> = (0..8)
        .map(|_| {
            tokio::spawn(
                client
                    .post(server.url("/api/v1/notifications"))
                    .bearer_auth(&other_doctor)
                    .json(&valid_body())
                    .send(),
            )
        })
        .collect();
    let mut unwarned = 0;
    for response in at_once {
        let response = response.await.unwrap().unwrap();
        assert_eq!(response.status(), 202);
        let answer = response.json::<Value>().await.unwrap();
        if answer["warnings"] == json!([]) {
            unwarned += 1;
        }
    }
    assert_eq!(
        unwarned, 1,
        "exactly one of eight identical filings is unwarned"
    );
}

#[test]
fn generate_is_byte_identical_per_seed() {
    let dir = tempfile::tempdir().unwrap();
    let run = |seed: &str, name: &str| {
        let out = dir.path().join(name);
        let status = Command::new(ODS)
            .args([
                "generate", "--from", "2022", "--to", "2023", "--seed", seed, "--scale", "0.3",
                "--out",
            ])
            .arg(&out)
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::read(out).unwrap()
    };
    let a = run("7", "a.ndjson");
    assert_eq!(a, run("7", "b.ndjson"));
    assert_ne!(a, run("8", "c.ndjson"));
    let first: Value = serde_json::from_slice(a.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert!(first["kind"].is_string());
}

#[test]
fn ods_analyze_runs_a_method_with_r_named_options_and_names_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("weekly.csv");
    std::fs::write(
        &input,
        "date,count\n2024-01-01,3\n2024-01-08,2\n2024-01-15,4\n2024-01-22,3\n2024-01-29,2\n2024-02-05,12\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        Command::new(ODS)
            .args(["analyze"])
            .args(args)
            .env_remove("RUST_BACKTRACE")
            .output()
            .unwrap()
    };
    let path = input.to_str().unwrap();
    let out = run(&["ears-c1", "--input", path, "--baseline", "3"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("date,count,upperbound,alarm"), "{text}");
    assert!(text.contains("2024-02-05,12,6.0902323"), "{text}");
    assert!(text.trim_end().ends_with(",true,3,1"), "{text}");

    let out = run(&[
        "ears-c1",
        "--input",
        path,
        "--baseline",
        "3",
        "--format",
        "json",
    ]);
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 6);

    let out = run(&["ears-c1", "--input", path, "--w", "3"]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("`w`") && err.contains("does not apply to ears-c1"),
        "{err}"
    );

    std::fs::write(&input, "date,count\n2024-01-01,3\n2024-01-08,-2\n").unwrap();
    let out = run(&["ears-c1", "--input", path, "--baseline", "3"]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("line 3") && err.contains("\"-2\""), "{err}");
    assert!(out.stdout.is_empty(), "nothing is written on an error");
}

#[test]
fn a_malformed_code_list_stops_startup_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let lists = dir.path().join("lists");
    std::fs::create_dir(&lists).unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/codelists");
    for name in [
        "diagnoses.csv",
        "exposures.csv",
        "sectors.csv",
        "occupations.csv",
        "services.csv",
        "guidelines.csv",
    ] {
        std::fs::copy(source.join(name), lists.join(name)).unwrap();
    }
    let text = std::fs::read_to_string(lists.join("sectors.csv")).unwrap();
    std::fs::write(
        lists.join("sectors.csv"),
        format!("{text}9999,99,ZZ,class,x,y,2008-01-01,,\n"),
    )
    .unwrap();
    let line = text.lines().count() + 1;
    let out = Command::new(ODS)
        .args([
            "--data-dir",
            dir.path().join("data").to_str().unwrap(),
            "run",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("ODS_CODELISTS_DIR", &lists)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("sectors.csv:{line}:")), "{stderr}");
    assert!(stderr.contains("ZZ"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_can_be_listed_and_revoked_while_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let analyst = token(dir.path(), &["--role", "analyst", "--label", "test"]);
    let server = Server::start(dir.path());
    let client = reqwest::Client::new();
    let get = |t: String| {
        client
            .get(server.url("/api/v1/stats/summary"))
            .bearer_auth(t)
            .send()
    };
    assert_eq!(get(analyst.clone()).await.unwrap().status(), 200);
    let fund = token(
        dir.path(),
        &["--role", "sector_fund", "--sectors", "F,1071"],
    );
    assert_eq!(get(fund).await.unwrap().status(), 403);
    let list = String::from_utf8(ods(dir.path(), &["tokens", "list"]).stdout).unwrap();
    assert_eq!(list.lines().count(), 2);
    assert!(
        !list.contains(analyst.rsplit('_').next().unwrap()),
        "secrets are never listed"
    );
    let id = analyst.split('_').nth(1).unwrap();
    assert!(ods(dir.path(), &["tokens", "revoke", id]).status.success());
    assert_eq!(get(analyst).await.unwrap().status(), 401);
    let bad = ods(
        dir.path(),
        &[
            "tokens",
            "create",
            "--role",
            "reporter",
            "--big",
            "123",
            "--self-employed",
        ],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("11 digits"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_doctor_amends_withdraws_and_reads_only_own_notifications() {
    let dir = tempfile::tempdir().unwrap();
    let me = reporter_token(dir.path(), "19012345603", "AD0001");
    let other = reporter_token(dir.path(), "19012345604", "AD0002");
    let analyst = token(dir.path(), &["--role", "analyst"]);
    let admin = token(dir.path(), &["--role", "admin"]);
    let server = Server::start(dir.path());
    let client = reqwest::Client::new();
    let notifications = server.url("/api/v1/notifications");

    // idempotent filing: the same key gives the same answer and one notification
    let file = |key: &'static str, body: Value| {
        client
            .post(&notifications)
            .bearer_auth(&me)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let first: Value = file("k-1", valid_body())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let again = file("k-1", valid_body()).await.unwrap();
    assert_eq!(again.status(), 202);
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    let mut different = valid_body();
    different["sex"] = json!("M");
    assert_eq!(file("k-1", different).await.unwrap().status(), 422);
    let id = first["id"].as_str().unwrap().to_string();
    wait_counted(&client, &server, &analyst, 1).await;
    let one = server.url(&format!("/api/v1/notifications/{id}"));

    // read: processing status, ETag, history; nobody else may read it
    let mut status = String::new();
    for _ in 0..300 {
        let response = client.get(&one).bearer_auth(&me).send().await.unwrap();
        assert_eq!(response.headers()["etag"], "\"1\"");
        let body: Value = response.json().await.unwrap();
        status = body["status"].as_str().unwrap().to_string();
        if status == "validated" {
            assert_eq!(body["notification"]["diagnosis_code"], "L694");
            assert_eq!(body["history"][0]["kind"], "filed");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, "validated");
    assert_eq!(
        client
            .get(&one)
            .bearer_auth(&other)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        client
            .get(&one)
            .bearer_auth(&analyst)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        client
            .get(&one)
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // amend with optimistic concurrency
    let mut amended = valid_body();
    amended["consequence"] = json!("permanent");
    amended["absence_band"] = json!("gt6m");
    let put = |version: &str, body: Value, who: &str| {
        client
            .put(&one)
            .bearer_auth(who.to_string())
            .header("If-Match", version)
            .json(&body)
            .send()
    };
    assert_eq!(
        put("\"2\"", amended.clone(), &me).await.unwrap().status(),
        412
    );
    assert_eq!(
        put("\"1\"", amended.clone(), &other)
            .await
            .unwrap()
            .status(),
        404
    );
    let mut invalid = amended.clone();
    invalid["diagnosis_code"] = json!("L111");
    assert_eq!(put("\"1\"", invalid, &me).await.unwrap().status(), 422);
    let response = put("\"1\"", amended.clone(), &me).await.unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()["etag"], "\"2\"");
    let body: Value = client
        .get(&one)
        .bearer_auth(&me)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["version"], 2);
    assert_eq!(body["notification"]["consequence"], "permanent");
    assert_eq!(
        counted(&client, &server, &analyst).await,
        1,
        "an amendment replaces, it does not add"
    );

    // withdraw: counted nowhere, final
    let delete = client
        .delete(&one)
        .bearer_auth(&me)
        .header("If-Match", "\"2\"")
        .json(&json!({"reason": "not_occupational"}))
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 202);
    wait_counted(&client, &server, &analyst, 0).await;
    assert_eq!(put("\"3\"", amended, &me).await.unwrap().status(), 409);
    let body: Value = client
        .get(&one)
        .bearer_auth(&me)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "withdrawn");
    let kinds: Vec<&str> = body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["filed", "amended", "withdrawn"]);
    let bad_reason = client
        .delete(&one)
        .bearer_auth(&me)
        .json(&json!({"reason": "because"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_reason.status(), 422);

    // the own overview: paged, filterable by status
    let second: Value = client
        .post(&notifications)
        .bearer_auth(&me)
        .json(&valid_body())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list: Value = client
        .get(format!("{notifications}?limit=1"))
        .bearer_auth(&me)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["id"], second["id"], "newest first");
    let cursor = list["next_before"].as_str().unwrap();
    let rest: Value = client
        .get(format!("{notifications}?limit=5&before={cursor}"))
        .bearer_auth(&me)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rest["items"][0]["id"].as_str().unwrap(), id);
    let withdrawn: Value = client
        .get(format!("{notifications}?status=withdrawn"))
        .bearer_auth(&me)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(withdrawn["items"].as_array().unwrap().len(), 1);
    let theirs: Value = client
        .get(&notifications)
        .bearer_auth(&other)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(theirs["items"].as_array().unwrap().is_empty());

    // finding a code in seconds
    let found: Value = client
        .get(server.url("/api/v1/codelists/diagnoses?q=epicondyl"))
        .bearer_auth(&me)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        found["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["entry"]["code"] == "L694"),
        "{found}"
    );
    let bakery: Value = client
        .get(server.url("/api/v1/codelists/sectors?q=bakker"))
        .bearer_auth(&me)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        bakery["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["entry"]["code"] == "1071"),
        "{bakery}"
    );
    assert_eq!(
        client
            .get(server.url("/api/v1/codelists/nope"))
            .bearer_auth(&me)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_over_its_rate_gets_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let analyst = token(dir.path(), &["--role", "analyst"]);
    let other = token(dir.path(), &["--role", "analyst"]);
    let server = Server::start_with(
        dir.path(),
        &[
            ("ODS_RATE_LIMIT_PER_MINUTE", "1"),
            ("ODS_RATE_LIMIT_BURST", "3"),
        ],
    );
    let client = reqwest::Client::new();
    let url = server.url("/api/v1/stats/summary");
    for _ in 0..3 {
        assert_eq!(
            client
                .get(&url)
                .bearer_auth(&analyst)
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    let limited = client.get(&url).bearer_auth(&analyst).send().await.unwrap();
    assert_eq!(limited.status(), 429);
    assert!(
        limited.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert_eq!(
        client
            .get(&url)
            .bearer_auth(&other)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_upload_answers_every_line_and_good_lines_stand() {
    let dir = tempfile::tempdir().unwrap();
    let reporter = reporter_token(dir.path(), "19012345605", "AD0001");
    let analyst = token(dir.path(), &["--role", "analyst"]);
    let server = Server::start(dir.path());
    let client = reqwest::Client::new();
    let url = server.url("/api/v1/notifications/batch");

    let mut bad = valid_body();
    bad["sex"] = json!("V");
    let ndjson = format!("{}\n{}\n\nnot json\n{}", valid_body(), bad, valid_body());
    let response = client
        .post(&url)
        .bearer_auth(&reporter)
        .header("content-type", "application/x-ndjson")
        .body(ndjson)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = response
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary: Vec<(u64, u64)> = lines
        .iter()
        .map(|l| (l["line"].as_u64().unwrap(), l["status"].as_u64().unwrap()))
        .collect();
    assert_eq!(summary, vec![(1, 202), (2, 422), (4, 400), (5, 202)]);
    assert_eq!(lines[1]["violations"][0]["rule"], "sex.invalid");
    // line 5 is the same case as line 1: accepted, with the warning a single filing would get
    assert_eq!(lines[0]["warnings"], json!([]));
    let first = lines[0]["id"].as_str().unwrap();
    let warnings = lines[3]["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].as_str().unwrap().contains("probable duplicate")
            && warnings[0].as_str().unwrap().contains(first),
        "{warnings:?}"
    );

    let csv = "service_id,diagnosis_code,exposures,sector_code,occupation_code,sex,birth_year,diagnosis_date,consequence,absence_band,detection_route,prevention_advice\r\n\
               AD0001,L694,ER003*|PS001,1071,7512,F,1980,2024-03-01,temporary,1to3m,absence_guidance,organisational|ppe\r\n\
               AD0001,L111,ER003*,1071,7512,F,1980,2024-03-01,temporary,1to3m,absence_guidance,\r\n";
    let response = client
        .post(&url)
        .bearer_auth(&reporter)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    let lines: Vec<Value> = response
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(
        (lines[0]["line"].as_u64(), lines[0]["status"].as_u64()),
        (Some(2), Some(202))
    );
    assert_eq!(
        lines[1]["violations"][0]["rule"],
        "diagnosis.complaint_code"
    );
    let id = lines[0]["id"].as_str().unwrap();
    let one: Value = client
        .get(server.url(&format!("/api/v1/notifications/{id}")))
        .bearer_auth(&reporter)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["notification"]["exposures"][1]["code"], "PS001");

    wait_counted(&client, &server, &analyst, 3).await;
    let wrong_type = client
        .post(&url)
        .bearer_auth(&reporter)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), 415);
}
