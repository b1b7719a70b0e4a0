//! `ods bench replay`: `ods replay` (decide, enrich and fold every record of the embedded log
//! into the embedded store) over many generated events, next to a plain read of the same log in
//! the same run; time, records/s and peak memory of the replay process.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};
use ods_codelists::reference::ReferenceData;
use ods_log::{Append, EmbeddedLog};
use ods_runner::embedded::NOTIFICATIONS_TOPIC;

/// Demo events at scale 1 (2014-2023).
const DEMO_EVENTS_AT_SCALE_1: usize = 57_000;
/// Events generated per round (bounded memory).
const EVENTS_PER_ROUND: usize = 500_000;
/// Records per log transaction when filling the log.
const APPEND_BATCH: usize = 5000;

/// Fills a log with `events` generated events (rounds of distinct ids), then measures.
pub async fn run(events: usize, keep: Option<PathBuf>) -> Result<()> {
    let temporary;
    let dir: PathBuf = match keep {
        Some(dir) => dir,
        None => {
            temporary = tempfile::tempdir()?;
            temporary.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&dir)?;
    let log_path = dir.join("log.sqlite");
    let log = EmbeddedLog::open(&log_path, 16)?;
    let existing = log.end_offset(NOTIFICATIONS_TOPIC)?;
    if existing < events as i64 {
        fill(&log, events - existing as usize, existing as usize).await?;
    }
    let total = log.end_offset(NOTIFICATIONS_TOPIC)?;

    eprintln!("reading the log ({total} records) ...");
    let started = Instant::now();
    let mut from = 0;
    let mut bytes = 0usize;
    loop {
        let records = log.read_from(NOTIFICATIONS_TOPIC, from, 2000)?;
        let Some(last) = records.last() else { break };
        from = last.offset + 1;
        bytes += records.iter().map(|r| r.payload.len()).sum::<usize>();
    }
    let read_seconds = started.elapsed().as_secs_f64();
    drop(log);

    eprintln!("ods replay ...");
    let started = Instant::now();
    let output = Command::new(std::env::current_exe()?)
        .arg("--data-dir")
        .arg(&dir)
        .arg("replay")
        .env("RUST_LOG", "warn")
        .output()
        .context("running ods replay")?;
    let replay_seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    anyhow::ensure!(output.status.success(), "ods replay failed: {stderr}");
    let peak = stderr
        .rsplit("peak memory ")
        .next()
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or("?");
    let read_rate = total as f64 / read_seconds;
    let replay_rate = total as f64 / replay_seconds;
    println!(
        "| records | log read (baseline) | ods replay | ratio | replay time | replay peak memory |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| {total} ({:.0} MB of Avro) | {read_rate:.0}/s | {replay_rate:.0}/s | {:.0}% | {replay_seconds:.0} s | {peak} MB |",
        bytes as f64 / 1e6,
        100.0 * replay_rate / read_rate
    );
    Ok(())
}

/// Appends `events` generated events, in rounds of distinct id namespaces.
async fn fill(log: &EmbeddedLog, events: usize, already: usize) -> Result<()> {
    let lists = ods_codelists::CodeLists::bundled()?;
    let reference = ReferenceData::bundled()?;
    let mut written = 0usize;
    let mut round = (already / EVENTS_PER_ROUND) as u32 + 1;
    while written < events {
        let want = (events - written).min(EVENTS_PER_ROUND);
        let config = ods_generator::GeneratorConfig {
            seed: 1000 + u64::from(round),
            scale: (want as f64 * 1.1 / DEMO_EVENTS_AT_SCALE_1 as f64).max(0.01),
            ..ods_generator::GeneratorConfig::default()
        };
        let demo = ods_generator::generate(&config, &lists, &reference)?;
        let generated =
            ods_generator::events::demo_events_in(&demo, &lists, Some(50), round).events;
        drop(demo);
        for chunk in generated[..want.min(generated.len())].chunks(APPEND_BATCH) {
            let mut batch = Vec::with_capacity(chunk.len());
            for event in chunk {
                batch.push(Append {
                    topic: NOTIFICATIONS_TOPIC.to_string(),
                    key: event.key(),
                    payload: ods_wire::encode_event(event)?.1,
                    appended_at_ms: 0,
                });
            }
            written += batch.len();
            log.append(batch).await?;
        }
        eprint!("\rlog filled with {}/{events} events", written);
        round += 1;
    }
    eprintln!();
    Ok(())
}
