//! `ods bench intake`: the durable intake path against a bare axum handler, same machine, same
//! run, same load. Traffic goes to 127.0.0.1 only; request counts are bounded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use ods_http::RateLimiter;
use ods_identity::{BigNumber, Principal, PseudonymKey, Pseudonymizer, TokenStore};
use ods_intake::{EmbeddedSink, Intake, IntakeMetrics, IntakeRegistry, IntakeState};
use ods_log::EmbeddedLog;
use ods_model::Affiliation;
use ods_validation::Limits;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

struct Measured {
    accepted: usize,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// CPU time of the whole process (server, load generator, log writer) per request, in
    /// microseconds; `None` where `/proc/self/stat` cannot be read.
    cpu_us_per_request: Option<f64>,
}

/// User plus system CPU time of this process so far (all threads, also those that ended), in
/// seconds, from `/proc/self/stat` (Linux; clock ticks of 1/100 s, the kernel's `USER_HZ`).
fn process_cpu_seconds() -> Option<f64> {
    const USER_HZ: f64 = 100.0;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // the command name (field 2) may hold spaces; the fields after it start with the state
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let user: f64 = fields.nth(11)?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    Some((user + system) / USER_HZ)
}

fn body() -> Value {
    json!({
        "service_id": "AD0001", "diagnosis_code": "L694",
        "exposures": [{"code": "ER003", "primary": true}, {"code": "PS001", "primary": false}],
        "sector_code": "1071", "occupation_code": "7512", "sex": "F", "birth_year": 1980,
        "diagnosis_date": "2024-03-01", "consequence": "temporary", "absence_band": "1to3m",
        "detection_route": "absence_guidance", "prevention_advice": ["organisational"]
    })
}

async fn serve(app: Router) -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{address}"))
}

async fn load(url: &str, token: &str, requests: usize, concurrency: usize) -> Result<Measured> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let payload = serde_json::to_vec(&body())?;
    let gate = Arc::new(Semaphore::new(concurrency.max(1)));
    let cpu_before = process_cpu_seconds();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(requests);
    for _ in 0..requests {
        let permit = gate.clone().acquire_owned().await?;
        let (client, url, token, payload) = (
            client.clone(),
            url.to_string(),
            token.to_string(),
            payload.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let status = client
                .post(url)
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(payload)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0);
            drop(permit);
            (status, sent.elapsed())
        }));
    }
    let mut latencies = Vec::with_capacity(requests);
    let mut accepted = 0;
    for task in tasks {
        let (status, latency) = task.await?;
        if status == 202 {
            accepted += 1;
        }
        latencies.push(latency);
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu_us_per_request = cpu_before
        .zip(process_cpu_seconds())
        .map(|(before, after)| (after - before) * 1e6 / requests.max(1) as f64);
    latencies.sort();
    let at = |q: f64| -> f64 {
        let index = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies
            .get(index)
            .copied()
            .unwrap_or(Duration::ZERO)
            .as_secs_f64()
            * 1000.0
    };
    Ok(Measured {
        accepted,
        seconds,
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        cpu_us_per_request,
    })
}

/// The median of `values` (the mean of the middle two for an even count).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// One load level: per round, both targets and their ratio.
struct Level {
    concurrency: usize,
    rounds: Vec<(Measured, Measured)>,
}

impl Level {
    fn rate(m: &Measured) -> f64 {
        m.accepted as f64 / m.seconds.max(f64::MIN_POSITIVE)
    }

    /// Median over the rounds of `f` applied to (bare, durable).
    fn median_of(&self, f: impl Fn(&Measured, &Measured) -> f64) -> f64 {
        let mut values: Vec<f64> = self.rounds.iter().map(|(b, d)| f(b, d)).collect();
        median(&mut values)
    }

    /// Median over the rounds of the process CPU time per request of one target, where measured.
    fn cpu_per_request(&self, durable: bool) -> Option<f64> {
        let mut values: Vec<f64> = self
            .rounds
            .iter()
            .filter_map(|(b, d)| if durable { d } else { b }.cpu_us_per_request)
            .collect();
        (!values.is_empty()).then(|| median(&mut values))
    }

    fn ratios(&self) -> Vec<f64> {
        let mut ratios: Vec<f64> = self
            .rounds
            .iter()
            .map(|(b, d)| Self::rate(d) / Self::rate(b).max(f64::MIN_POSITIVE) * 100.0)
            .collect();
        ratios.sort_by(f64::total_cmp);
        ratios
    }
}

/// Runs the comparison and prints a table (also as a Markdown row for the README). Each load
/// level runs `rounds` rounds of both targets, bare first in even rounds and durable first in odd
/// ones; the medians over the rounds are reported, with the range of the per-round ratios.
pub async fn intake(requests: usize, levels: &[usize], rounds: usize) -> Result<()> {
    let requests = requests.clamp(100, 1_000_000);
    if levels.is_empty() || levels.iter().any(|&c| c == 0 || c > 4096) {
        anyhow::bail!("--concurrency takes load levels between 1 and 4096, e.g. 32,128,512");
    }
    if !(1..=50).contains(&rounds) {
        anyhow::bail!("--rounds takes 1 to 50 rounds per load level (got {rounds})");
    }
    let dir = tempfile::tempdir().context("temporary data directory")?;
    let lists = Arc::new(ods_codelists::CodeLists::bundled()?);
    let tokens = Arc::new(TokenStore::open(&dir.path().join("tokens.sqlite"))?);
    let key = PseudonymKey::generate();
    let reporter = Principal::Reporter {
        pseudonym: Pseudonymizer::new(key).pseudonym(&BigNumber::parse("19000000000")?),
        affiliation: Affiliation::Service("AD0001".into()),
    };
    let token = tokens.create(&reporter, "bench")?;
    let log = EmbeddedLog::open(&dir.path().join("log.sqlite"), 4096)?;
    let registry = Arc::new(IntakeRegistry::open_in_log(&log, None)?);
    let metrics = prometheus::Registry::new();
    let intake = Arc::new(Intake::new(
        lists,
        Limits::default(),
        Arc::new(EmbeddedSink::new(log.clone())),
        registry,
        IntakeMetrics::register(&metrics)?,
    ));
    let intake_url = serve(ods_intake::router(IntakeState {
        intake,
        tokens,
        limiter: Arc::new(RateLimiter::new(u32::MAX, u32::MAX)),
        status: None,
    }))
    .await?;
    // the baseline: parse the same JSON body, answer 202 with a similar body, nothing else
    let bare = Router::new().route(
        "/api/v1/notifications",
        post(|Json(_body): Json<Value>| async {
            (StatusCode::ACCEPTED, Json(json!({"id": "00000000-0000-0000-0000-000000000000", "version": 1, "status": "accepted", "warnings": []})))
        }),
    );
    let bare_url = serve(bare).await?;

    eprintln!("warming up...");
    let warm_up = 500;
    for url in [&bare_url, &intake_url] {
        load(&format!("{url}/api/v1/notifications"), &token, warm_up, 32).await?;
    }
    let bare_target = format!("{bare_url}/api/v1/notifications");
    let durable_target = format!("{intake_url}/api/v1/notifications");
    let mut measured: Vec<Level> = Vec::new();
    for &concurrency in levels {
        let mut level = Level {
            concurrency,
            rounds: Vec::new(),
        };
        for round in 0..rounds {
            eprintln!(
                "concurrency {concurrency}, round {}/{rounds}: {requests} requests per target...",
                round + 1
            );
            let (bare, durable) = if round % 2 == 0 {
                let bare = load(&bare_target, &token, requests, concurrency).await?;
                (
                    bare,
                    load(&durable_target, &token, requests, concurrency).await?,
                )
            } else {
                let durable = load(&durable_target, &token, requests, concurrency).await?;
                (
                    load(&bare_target, &token, requests, concurrency).await?,
                    durable,
                )
            };
            if durable.accepted != requests {
                anyhow::bail!(
                    "only {} of {requests} durable requests were accepted at concurrency {concurrency}",
                    durable.accepted
                );
            }
            level.rounds.push((bare, durable));
        }
        measured.push(level);
    }

    println!(
        "{:<12} {:<24} {:>12} {:>10} {:>10} {:>12}",
        "concurrency", "target", "accepted/s", "p50 ms", "p99 ms", "CPU us/req"
    );
    for level in &measured {
        for (name, durable) in [("bare axum handler", false), ("ods intake (durable)", true)] {
            let pick = |b: &Measured, d: &Measured| -> (f64, f64, f64) {
                let m = if durable { d } else { b };
                (Level::rate(m), m.p50_ms, m.p99_ms)
            };
            println!(
                "{:<12} {:<24} {:>12.0} {:>10.2} {:>10.2} {:>12}",
                level.concurrency,
                name,
                level.median_of(|b, d| pick(b, d).0),
                level.median_of(|b, d| pick(b, d).1),
                level.median_of(|b, d| pick(b, d).2),
                level
                    .cpu_per_request(durable)
                    .map_or("-".to_string(), |us| format!("{us:.0}")),
            );
        }
        let ratios = level.ratios();
        println!(
            "{:<12} ratio durable/bare: median {:.0}% over {} rounds (range {:.0}-{:.0}%; target >= 40%)",
            level.concurrency,
            median(&mut ratios.clone()),
            ratios.len(),
            ratios.first().copied().unwrap_or(0.0),
            ratios.last().copied().unwrap_or(0.0),
        );
        if let (Some(bare), Some(durable)) =
            (level.cpu_per_request(false), level.cpu_per_request(true))
        {
            println!(
                "{:<12} CPU per request (whole process, load generator included): bare {bare:.0} us, durable {durable:.0} us, bare/durable {:.0}%",
                level.concurrency,
                bare / durable.max(f64::MIN_POSITIVE) * 100.0
            );
        }
    }
    println!();
    println!("| cores | load | bare axum handler | ods intake (durable) | ratio (median, range) |");
    println!("|---|---|---|---|---|");
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let cpu = |us: Option<f64>| us.map_or(String::new(), |us| format!(", {us:.0} µs CPU/req"));
    for level in &measured {
        let ratios = level.ratios();
        println!(
            "| {cores} | {requests} requests x {rounds} rounds, concurrency {} | {:.0}/s p50 {:.2} ms p99 {:.2} ms{} | {:.0}/s p50 {:.2} ms p99 {:.2} ms{} | {:.0}% ({:.0}-{:.0}%) |",
            level.concurrency,
            level.median_of(|b, _| Level::rate(b)),
            level.median_of(|b, _| b.p50_ms),
            level.median_of(|b, _| b.p99_ms),
            cpu(level.cpu_per_request(false)),
            level.median_of(|_, d| Level::rate(d)),
            level.median_of(|_, d| d.p50_ms),
            level.median_of(|_, d| d.p99_ms),
            cpu(level.cpu_per_request(true)),
            median(&mut ratios.clone()),
            ratios.first().copied().unwrap_or(0.0),
            ratios.last().copied().unwrap_or(0.0),
        );
    }
    let logged = log.end_offset(ods_intake::NOTIFICATIONS_TOPIC)? as usize;
    let expected = requests * rounds * measured.len() + warm_up;
    if logged != expected {
        anyhow::bail!("{logged} records in the log, expected {expected}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{median, process_cpu_seconds};

    /// The CPU time comes from the right fields of `/proc/self/stat`: it is there, and it grows
    /// by about the CPU time this thread burns (the kernel counts in 1/100 s, so the margins are
    /// wide; the upper bound catches a field taken from the wrong place, such as a start time).
    #[test]
    fn process_cpu_time_grows_with_work() {
        let before = process_cpu_seconds().expect("/proc/self/stat has the process CPU time");
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while started.elapsed() < std::time::Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        let after = process_cpu_seconds().expect("still readable");
        let grown = after - before;
        assert!(
            (0.1..30.0).contains(&grown),
            "{grown} s of CPU for 0.3 s of spinning"
        );
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }
}
