//! `ods replay`: rebuilds the embedded store from the embedded log with the embedded runner.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use ods_log::EmbeddedLog;
use ods_processor::Processor;
use ods_runner::embedded::{self, NOTIFICATIONS_TOPIC};
use ods_store::EmbeddedStore;

use crate::config::Config;

/// `ods replay`: clears the store and rebuilds every aggregate from the log.
pub async fn replay(config: &Config) -> Result<()> {
    let lists = Arc::new(config.code_lists()?);
    let log = EmbeddedLog::open(&config.log_path(), 16)?;
    let store = Arc::new(EmbeddedStore::open(&config.store_path())?);
    let processor = Arc::new(Processor::new(lists, ods_validation::Limits::default()));
    let total = log.end_offset(NOTIFICATIONS_TOPIC)?;
    store.reset()?;
    let started = Instant::now();
    let mut done = 0usize;
    loop {
        let stats =
            embedded::step(&log, &store, &processor, config.processor_batch_size, None).await?;
        if stats.records == 0 {
            break;
        }
        done += stats.records;
        eprint!("\rreplayed {done}/{total} records");
    }
    let seconds = started.elapsed().as_secs_f64();
    let peak = peak_memory_mb()
        .map(|mb| format!(", peak memory {mb:.0} MB"))
        .unwrap_or_default();
    eprintln!(
        "\rreplayed {done}/{total} records in {seconds:.1}s ({:.0} records/s{peak})",
        done as f64 / seconds.max(1e-9)
    );
    Ok(())
}

/// The process's peak resident memory (Linux `VmHWM`), in MB.
pub fn peak_memory_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
