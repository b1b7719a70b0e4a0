//! `ods bench signals`: what a signal sweep costs, against baselines measured in the same run.
//!
//! 1. **Sweep**: ten years of national generated data (2014-2023, the demo generator at national
//!    volume with the planted scenario) folded into an embedded store; a full sweep as of
//!    2023-12 (every series' last 12 months, under-reporting, emerging pairs, silent services)
//!    next to reading the same inputs from the store alone (series, section totals, the pair
//!    counts of the window and of the history before it, reporter activity).
//! 2. **Farrington over many series**: `--series` generated monthly series of 120 months
//!    (Poisson counts, levels from 0.5 to 50 a month, yearly seasonality), the improved Farrington
//!    method of the sweep on each series' last 12 months; next to R `surveillance`'s
//!    `farringtonFlexible` on the same series with the same control when `Rscript` and the
//!    package are installed (`apt-get install r-cran-surveillance`), timed inside R around the
//!    loop only, with the share of identical alarms.
//!
//! No timed assertion anywhere: it prints a measurement.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use ods_codelists::reference::ReferenceData;
use ods_codelists::CodeLists;
use ods_generator::{GeneratorConfig, Rng, Scenario};
use ods_log::LogRecord;
use ods_model::Period;
use ods_processor::Processor;
use ods_stats::aberration::farrington_flexible;
use ods_store::{AnalyticsStore, EmbeddedStore};
use ods_sweep::{monthly_control, SweepConfig};
use ods_validation::Limits;

/// Months per generated series.
const MONTHS: usize = 120;
/// Months evaluated at the end of each series.
const EVALUATED: usize = 12;

const R_SCRIPT: &str = r#"
suppressPackageStartupMessages(library(surveillance))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
ids <- unique(d$series)
n <- sum(d$series == ids[1])
ctl <- list(b = 3, w = 2, noPeriods = 4, pastWeeksNotIncluded = 3, thresholdMethod = "nbPlugin",
            range = (n - 11):n)
alarms <- vector("list", length(ids))
elapsed <- system.time({
  for (i in seq_along(ids)) {
    s <- sts(observed = matrix(d$count[d$series == ids[i]], ncol = 1), frequency = 12, start = c(2014, 1))
    r <- suppressWarnings(farringtonFlexible(s, control = ctl))
    alarms[[i]] <- as.logical(alarms(r))
  }
})[["elapsed"]]
cat("elapsed", elapsed, "\n")
cat("alarms", paste(ifelse(is.na(unlist(alarms)), "NA", ifelse(unlist(alarms), "1", "0")), collapse = ""), "\n")
"#;

fn national_store(dir: &Path) -> Result<EmbeddedStore> {
    let lists = CodeLists::bundled()?;
    let reference = ReferenceData::bundled()?;
    let scenario = Scenario::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/scenarios/planted-signals.json"),
    )
    .unwrap_or_default();
    let config = GeneratorConfig {
        seed: 7,
        scenario,
        ..GeneratorConfig::default()
    };
    let demo = ods_generator::generate(&config, &lists, &reference)?;
    let events = ods_generator::events::demo_events(&demo, &lists, None).events;
    let store = EmbeddedStore::open(&dir.join("store.sqlite"))?;
    let processor = Processor::new(Arc::new(lists), Limits::default());
    let mut offset = 0i64;
    for chunk in events.chunks(5000) {
        let mut records = Vec::with_capacity(chunk.len());
        for e in chunk {
            records.push(LogRecord {
                topic: "bench".into(),
                offset,
                key: e.key(),
                payload: ods_wire::encode_event(e)?.1,
                appended_at_ms: 0,
            });
            offset += 1;
        }
        store.apply_batch("bench", 0, &processor, &records)?;
    }
    Ok(store)
}

fn generated_series(count: usize) -> Vec<Vec<f64>> {
    let mut rng = Rng::new(42);
    (0..count)
        .map(|_| {
            let level = 0.5 * 100f64.powf(rng.unit());
            let amplitude = 0.3 * rng.unit();
            let phase = rng.unit() * std::f64::consts::TAU;
            (0..MONTHS)
                .map(|m| {
                    let season =
                        1.0 + amplitude * (m as f64 / 12.0 * std::f64::consts::TAU + phase).sin();
                    rng.poisson(level * season) as f64
                })
                .collect()
        })
        .collect()
}

/// Runs R on the series; (seconds inside R, alarms as 1/0/NA characters), or why not.
fn r_reference(series: &[Vec<f64>]) -> std::result::Result<(f64, String), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut csv = String::from("series,count\n");
    for (i, s) in series.iter().enumerate() {
        for c in s {
            csv.push_str(&format!("{i},{c}\n"));
        }
    }
    let data = dir.path().join("series.csv");
    let script = dir.path().join("flexible.R");
    std::fs::write(&data, csv).map_err(|e| e.to_string())?;
    std::fs::write(&script, R_SCRIPT).map_err(|e| e.to_string())?;
    let out = Command::new("Rscript")
        .arg(&script)
        .arg(&data)
        .output()
        .map_err(|e| format!("Rscript not run ({e}); apt-get install r-cran-surveillance"))?;
    if !out.status.success() {
        return Err(format!(
            "Rscript failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name).map(|rest| rest.trim().to_string()))
    };
    let elapsed = field("elapsed")
        .and_then(|v| v.parse::<f64>().ok())
        .ok_or("no elapsed time in R's output")?;
    Ok((elapsed, field("alarms").unwrap_or_default()))
}

/// Runs the benchmark and prints its tables.
pub async fn run(series_count: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    eprintln!("folding ten years of national generated data into an embedded store ...");
    let store = {
        let path = dir.path().to_path_buf();
        tokio::task::spawn_blocking(move || national_store(&path)).await??
    };
    let totals = store.totals().context("reading totals")?;
    let reference = ReferenceData::bundled()?;
    let as_of = Period::new(2023, 12)?;
    let config = SweepConfig {
        recent_months: 12,
        ..SweepConfig::as_of(as_of)
    };
    let runs = 5;
    let mut read_s = f64::INFINITY;
    let mut sweep_s = f64::INFINITY;
    let mut raised = 0;
    for _ in 0..runs {
        let started = Instant::now();
        let series = ods_sweep::section_group_series(&store, as_of).await?;
        let sections = ods_sweep::section_expectations(&store, &reference, 2023).await?;
        let window_from = Period::new(2023, 1)?;
        let pairs = ods_sweep::pair_counts(&store, Some(window_from), as_of).await?;
        let history = ods_sweep::pair_counts(&store, None, Period::new(2022, 12)?).await?;
        let activity = store.reporter_activity()?;
        read_s = read_s.min(started.elapsed().as_secs_f64());
        std::hint::black_box((series, sections, pairs, history, activity));
        let started = Instant::now();
        raised = ods_sweep::sweep(&store as &dyn AnalyticsStore, &reference, &config)
            .await?
            .len();
        sweep_s = sweep_s.min(started.elapsed().as_secs_f64());
    }
    println!(
        "| data | reading the inputs (baseline) | full sweep | ratio | signals |\n|---|---|---|---|---|\n| 2014-2023 national, {} counted notifications, as of 2023-12, last 12 months of each series | {:.0} ms | {:.0} ms | {:.1}x | {raised} |",
        totals.notifications_counted,
        read_s * 1000.0,
        sweep_s * 1000.0,
        sweep_s / read_s
    );

    eprintln!("improved Farrington over {series_count} generated series ...");
    let series = generated_series(series_count);
    let control = farrington_control();
    let started = Instant::now();
    let mut alarms = String::new();
    for s in &series {
        for point in farrington_flexible(s, 12, &control)? {
            alarms.push(match point.alarm {
                Some(true) => '1',
                Some(false) => '0',
                None => 'N',
            });
        }
    }
    let ours = started.elapsed().as_secs_f64();
    let reference_cell = match r_reference(&series) {
        Ok((r_seconds, r_alarms)) => {
            let r_alarms = r_alarms.replace("NA", "N");
            let same = alarms
                .chars()
                .zip(r_alarms.chars())
                .filter(|(a, b)| a == b)
                .count();
            format!(
                "{:.2} s | {:.1}x faster | {same} of {} alarms identical",
                r_seconds,
                r_seconds / ours,
                alarms.len()
            )
        }
        Err(why) => format!("not measured: {why} | | "),
    };
    println!(
        "\n| series | ods-stats farrington_flexible | R surveillance farringtonFlexible | ratio | agreement |\n|---|---|---|---|---|\n| {series_count} x {MONTHS} months, last {EVALUATED} evaluated | {ours:.2} s | {reference_cell} |"
    );
    Ok(())
}

/// The sweep's control, evaluating the last [`EVALUATED`] months of a [`MONTHS`]-month series.
fn farrington_control() -> ods_stats::aberration::FlexibleControl {
    ods_stats::aberration::FlexibleControl {
        range: Some(MONTHS - EVALUATED..MONTHS),
        ..monthly_control()
    }
}
