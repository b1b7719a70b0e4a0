//! `ods bench store`: the ClickHouse analytics store, measured against baselines in the same
//! run on the same server.
//!
//! 1. **Load**: `--events` generated events are decided and applied through the store
//!    (`ClickHouseStore::apply_batches`, what `ods process` does after polling) into the
//!    database `--database`; a database that already holds them is reused, so a large load is
//!    paid once.
//! 2. **Sink**: up to `--sink-rows` stored rows of the two large tables (`contributions`,
//!    `notifications`) are written by the store's writer (RowBinary over HTTP, batches of the
//!    configured size, confirmed before the next) into an empty database, and the very same
//!    rows (exported from there) by `clickhouse-client ... FORMAT TabSeparated` into another:
//!    rows/s of both and their ratio.
//! 3. **Queries**: the common dashboard questions, each `--runs` times, as published answers
//!    (sector scope, primary and complementary suppression: what the API serves) and as the
//!    exact count query alone (the baseline): p50/p95 of both and the ratio of the p95s.
//!
//! No timed assertion anywhere: it prints a measurement.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ods_clickhouse::{
    ClickHouseConfig, ClickHouseStore, ContributionRow, NotificationRow, TableRow,
};
use ods_codelists::reference::ReferenceData;
use ods_log::LogRecord;
use ods_processor::Processor;
use ods_store::{AnalyticsStore, CountQuery, Dimension};
use ods_validation::Limits;

/// Demo events at scale 1 (2014-2023).
const DEMO_EVENTS_AT_SCALE_1: f64 = 57_000.0;
/// Events generated per round (bounded memory).
const EVENTS_PER_ROUND: usize = 500_000;
/// Records per `apply_batches` call while loading (one poll round of `ods process`).
const LOAD_BATCH: usize = 5000;
/// The source name of the benchmark's records.
const SOURCE: &str = "bench";

/// What to measure and where.
pub struct StoreBench {
    /// ClickHouse HTTP URL.
    pub url: String,
    /// Native-protocol port of the same server, for `clickhouse-client`.
    pub native_port: u16,
    /// Database holding the loaded events (reused when it already holds them).
    pub database: String,
    /// Generated events to load.
    pub events: usize,
    /// Rows per table in the sink comparison.
    pub sink_rows: usize,
    /// Runs per query.
    pub runs: usize,
    /// ClickHouse `max_bytes_before_external_group_by` (0: the server's).
    pub group_by_spill_bytes: u64,
}

async fn store(url: &str, database: &str, group_by_spill_bytes: u64) -> Result<ClickHouseStore> {
    let config = ClickHouseConfig {
        url: url.to_string(),
        database: database.to_string(),
        group_by_spill_bytes,
        ..ClickHouseConfig::default()
    };
    let store = ClickHouseStore::connect(&config)
        .await
        .with_context(|| format!("connecting to ClickHouse at {url}"))?;
    store.migrate().await?;
    Ok(store)
}

/// Applies generated events to `store` until its position reaches `events`.
async fn load(store: &ClickHouseStore, events: usize) -> Result<f64> {
    let lists = Arc::new(ods_codelists::CodeLists::bundled()?);
    let reference = ReferenceData::bundled()?;
    let processor = Processor::new(lists.clone(), Limits::default());
    let mut next = store.position(SOURCE, 0).await? as usize;
    if next >= events {
        eprintln!("{} already holds {next} events", store.database());
        return Ok(f64::NAN);
    }
    let mut round = (next / EVENTS_PER_ROUND) as u32 + 1;
    let started = Instant::now();
    let loaded_before = next;
    while next < events {
        let want = (events - next).min(EVENTS_PER_ROUND);
        let config = ods_generator::GeneratorConfig {
            seed: 2000 + u64::from(round),
            scale: (want as f64 * 1.1 / DEMO_EVENTS_AT_SCALE_1).max(0.01),
            ..ods_generator::GeneratorConfig::default()
        };
        let demo = ods_generator::generate(&config, &lists, &reference)?;
        let generated =
            ods_generator::events::demo_events_in(&demo, &lists, Some(50), round).events;
        drop(demo);
        for chunk in generated[..want.min(generated.len())].chunks(LOAD_BATCH) {
            let mut records = Vec::with_capacity(chunk.len());
            for event in chunk {
                records.push(LogRecord {
                    topic: SOURCE.to_string(),
                    offset: next as i64,
                    key: event.key(),
                    payload: ods_wire::encode_event(event)?.1,
                    appended_at_ms: 0,
                });
                next += 1;
            }
            store
                .apply_batches(SOURCE, &processor, vec![(0, records)])
                .await?;
            eprint!("\rloaded {next}/{events} events");
        }
        round += 1;
    }
    eprintln!();
    Ok((next - loaded_before) as f64 / started.elapsed().as_secs_f64())
}

/// Runs `clickhouse-client` with `query`, stdin from `input` and stdout to `output` (files).
fn client(
    port: u16,
    query: &str,
    input: Option<&std::path::Path>,
    output: Option<&std::path::Path>,
) -> Result<String> {
    let mut command = Command::new("clickhouse-client");
    command
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--query",
            query,
        ])
        .stderr(Stdio::piped());
    command.stdin(match input {
        Some(path) => Stdio::from(std::fs::File::open(path)?),
        None => Stdio::null(),
    });
    command.stdout(match output {
        Some(path) => Stdio::from(std::fs::File::create(path)?),
        None => Stdio::piped(),
    });
    let out = command
        .output()
        .context("running clickhouse-client (apt-get install clickhouse-client)")?;
    if !out.status.success() {
        bail!(
            "clickhouse-client --query {query:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// One table's sink comparison: (rows, writer rows/s, clickhouse-client rows/s).
async fn sink_table<T>(
    bench: &StoreBench,
    source: &ClickHouseStore,
    writer_db: &ClickHouseStore,
    client_db: &ClickHouseStore,
) -> Result<(usize, f64, f64)>
where
    T: TableRow + for<'b> serde::Deserialize<'b>,
{
    let rows: Vec<T> = source.stored_rows(bench.sink_rows).await?;
    let started = Instant::now();
    writer_db.writer().insert(&rows).await?;
    let writer_rate = rows.len() as f64 / started.elapsed().as_secs_f64();

    let dir = tempfile::tempdir()?;
    let file = dir.path().join(format!("{}.tsv", T::TABLE));
    client(
        bench.native_port,
        &format!(
            "SELECT * FROM {}.{} FORMAT TabSeparated",
            writer_db.database(),
            T::TABLE
        ),
        None,
        Some(&file),
    )?;
    let started = Instant::now();
    client(
        bench.native_port,
        &format!(
            "INSERT INTO {}.{} FORMAT TabSeparated",
            client_db.database(),
            T::TABLE
        ),
        Some(&file),
        None,
    )?;
    let client_rate = rows.len() as f64 / started.elapsed().as_secs_f64();
    for db in [writer_db.database(), client_db.database()] {
        let n = client(
            bench.native_port,
            &format!("SELECT count() FROM {db}.{}", T::TABLE),
            None,
            None,
        )?;
        if n != rows.len().to_string() {
            bail!("{db}.{} holds {n} rows, not {}", T::TABLE, rows.len());
        }
    }
    Ok((rows.len(), writer_rate, client_rate))
}

/// The dashboard questions: (label, query).
fn dashboard_queries(last_year: i32, exposure_group: &str) -> Vec<(&'static str, CountQuery)> {
    let year = |y: i32| (format!("{y}-01"), format!("{y}-12"));
    let (from, to) = year(last_year);
    vec![
        (
            "national total per year",
            CountQuery {
                group_by: vec![Dimension::Year],
                ..CountQuery::default()
            },
        ),
        (
            "year x SBI section",
            CountQuery {
                group_by: vec![Dimension::Year, Dimension::SbiSection],
                ..CountQuery::default()
            },
        ),
        (
            "month x diagnosis group, last year",
            CountQuery {
                group_by: vec![Dimension::Month, Dimension::DiagnosisGroup],
                from: Some(from.clone()),
                to: Some(to.clone()),
                ..CountQuery::default()
            },
        ),
        (
            "monthly trend of the largest exposure group",
            CountQuery {
                group_by: vec![Dimension::Month],
                filters: vec![(Dimension::ExposureGroup, vec![exposure_group.to_string()])],
                ..CountQuery::default()
            },
        ),
        (
            "diagnosis group x exposure group, last year",
            CountQuery {
                group_by: vec![Dimension::DiagnosisGroup, Dimension::ExposureGroup],
                from: Some(from),
                to: Some(to),
                ..CountQuery::default()
            },
        ),
        (
            "sector fund F: year x diagnosis group",
            CountQuery {
                group_by: vec![Dimension::Year, Dimension::DiagnosisGroup],
                sector_scope: Some(vec!["F".into()]),
                ..CountQuery::default()
            },
        ),
    ]
}

fn percentile(sorted_ms: &[f64], p: f64) -> f64 {
    if sorted_ms.is_empty() {
        return f64::NAN;
    }
    let rank = ((p * sorted_ms.len() as f64).ceil() as usize).clamp(1, sorted_ms.len());
    sorted_ms[rank - 1]
}

async fn timed<F, Fut, T>(runs: usize, mut f: F) -> Result<(f64, f64)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ods_store::StoreError>>,
{
    let mut ms = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        f().await?;
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    Ok((percentile(&ms, 0.5), percentile(&ms, 0.95)))
}

/// Runs the benchmark and prints its tables.
pub async fn run(bench: StoreBench) -> Result<()> {
    let source = store(&bench.url, &bench.database, bench.group_by_spill_bytes).await?;
    let version = source.capabilities().version;
    eprintln!(
        "loading {} generated events into {} ...",
        bench.events, bench.database
    );
    let load_rate = load(&source, bench.events).await?;
    let totals = source.totals().await?;
    println!(
        "ClickHouse {}.{}: {} events in {} ({} counted notifications){}",
        version.major,
        version.minor,
        bench.events,
        bench.database,
        totals.notifications_counted,
        if load_rate.is_nan() {
            String::new()
        } else {
            format!("; loaded through the store at {load_rate:.0} events/s")
        }
    );

    eprintln!("sink: the store's writer vs clickhouse-client ...");
    let pid = std::process::id();
    let writer_db = store(&bench.url, &format!("ods_bench_writer_{pid}"), 0).await?;
    let client_db = store(&bench.url, &format!("ods_bench_client_{pid}"), 0).await?;
    let result = async {
        println!();
        println!("| table | rows | ods store writer | clickhouse-client (TSV) | ratio |");
        println!("|---|---|---|---|---|");
        for (table, (rows, writer, client)) in [
            (
                ContributionRow::TABLE,
                sink_table::<ContributionRow>(&bench, &source, &writer_db, &client_db).await?,
            ),
            (
                NotificationRow::TABLE,
                sink_table::<NotificationRow>(&bench, &source, &writer_db, &client_db).await?,
            ),
        ] {
            println!(
                "| {table} | {rows} | {writer:.0} rows/s | {client:.0} rows/s | {:.0}% |",
                100.0 * writer / client
            );
        }
        anyhow::Ok(())
    }
    .await;
    writer_db.drop_database().await?;
    client_db.drop_database().await?;
    result?;

    eprintln!("dashboard queries, {} runs each ...", bench.runs);
    let exact = |d: Dimension| {
        let query = CountQuery {
            group_by: vec![d],
            ..CountQuery::default()
        };
        let source = &source;
        async move { source.counts_unsuppressed(&query).await }
    };
    let last_year = exact(Dimension::Year)
        .await?
        .iter()
        .filter_map(|(key, _)| key.get("year")?.parse::<i32>().ok())
        .max()
        .unwrap_or(2023);
    let largest_group = exact(Dimension::ExposureGroup)
        .await?
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .and_then(|(mut key, _)| key.remove("exposure_group"))
        .unwrap_or_default();
    println!();
    println!(
        "| query | exact counts p50 / p95 (baseline) | published answer p50 / p95 | p95 ratio |"
    );
    println!("|---|---|---|---|");
    for (label, query) in dashboard_queries(last_year, &largest_group) {
        // a refused query (e.g. the server's memory limit) is a result too: say it, go on
        let raw = timed(bench.runs, || source.exact_counts(&query)).await;
        let published = timed(bench.runs, || source.counts(&query)).await;
        let cell = |r: &Result<(f64, f64)>| match r {
            Ok((p50, p95)) => format!("{p50:.1} / {p95:.1} ms"),
            Err(e) => format!("failed: {e}"),
        };
        let ratio = match (&raw, &published) {
            (Ok((_, raw95)), Ok((_, pub95))) => format!("{:.1}x", pub95 / raw95),
            _ => String::new(),
        };
        println!(
            "| {label} | {} | {} | {ratio} |",
            cell(&raw),
            cell(&published)
        );
    }
    match timed(bench.runs.min(10), || source.reporter_activity()).await {
        Ok((act50, act95)) => {
            println!("| reporter activity (all months) | | {act50:.1} / {act95:.1} ms | |")
        }
        Err(e) => println!("| reporter activity (all months) | | failed: {e} | |"),
    }
    Ok(())
}
