//! The embedded processor runner: reads the embedded log in order and applies batches to the
//! store, whose transaction also stores the position (see `ods-store`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ods_intake::NOTIFICATIONS_TOPIC;
use ods_log::EmbeddedLog;
use ods_processor::Processor;
use ods_store::EmbeddedStore;
use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry};
use tokio::sync::watch;

use crate::config::Config;

/// The embedded log has one partition per topic; this is its source name in checkpoints.
pub const SOURCE: &str = "ods.notifications.v1/0";

/// Processor metrics.
#[derive(Clone)]
pub struct ProcessorMetrics {
    events: IntCounterVec,
    lag: IntGauge,
    batch_seconds: Histogram,
    batch_size: Histogram,
}

impl ProcessorMetrics {
    /// Registers `ods_processor_events_total{outcome}`, `ods_processor_lag_records`,
    /// `ods_processor_batch_duration_seconds` and `ods_processor_batch_size`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let events = IntCounterVec::new(
            Opts::new(
                "ods_processor_events_total",
                "Records processed, by outcome",
            ),
            &["outcome"],
        )?;
        let lag = IntGauge::new(
            "ods_processor_lag_records",
            "Records in the log not yet processed",
        )?;
        let batch_seconds = Histogram::with_opts(HistogramOpts::new(
            "ods_processor_batch_duration_seconds",
            "Time to decide and commit one batch",
        ))?;
        let batch_size = Histogram::with_opts(
            HistogramOpts::new("ods_processor_batch_size", "Records per batch")
                .buckets(vec![1.0, 10.0, 100.0, 500.0, 1000.0, 2000.0, 5000.0]),
        )?;
        registry.register(Box::new(events.clone()))?;
        registry.register(Box::new(lag.clone()))?;
        registry.register(Box::new(batch_seconds.clone()))?;
        registry.register(Box::new(batch_size.clone()))?;
        Ok(ProcessorMetrics {
            events,
            lag,
            batch_seconds,
            batch_size,
        })
    }

    /// Current lag.
    pub fn lag(&self) -> i64 {
        self.lag.get()
    }
}

/// Processes one batch from the stored position; returns the number of records read.
pub async fn step(
    log: &Arc<EmbeddedLog>,
    store: &Arc<EmbeddedStore>,
    processor: &Arc<Processor>,
    batch_size: usize,
    metrics: Option<&ProcessorMetrics>,
) -> Result<usize> {
    let (log, store, processor) = (log.clone(), store.clone(), processor.clone());
    let metrics = metrics.cloned();
    tokio::task::spawn_blocking(move || -> Result<usize> {
        let from = store.checkpoint(SOURCE)?;
        let records = log.read_from(NOTIFICATIONS_TOPIC, from, batch_size)?;
        if records.is_empty() {
            if let Some(m) = &metrics {
                m.lag.set(0);
            }
            return Ok(0);
        }
        let started = Instant::now();
        let first = records[0].offset;
        let last = records[records.len() - 1].offset;
        let span = tracing::debug_span!(
            "process_batch",
            source = SOURCE,
            first_offset = first,
            last_offset = last
        );
        let _entered = span.enter();
        let stats = store.apply_batch(SOURCE, 0, &processor, &records)?;
        if let Some(m) = &metrics {
            m.batch_seconds.observe(started.elapsed().as_secs_f64());
            m.batch_size.observe(records.len() as f64);
            for (outcome, n) in [
                ("validated", stats.validated),
                ("rejected", stats.rejected),
                ("withdrawn", stats.withdrawn),
                ("zero_report", stats.zero_reports),
                ("skipped", stats.skipped),
                ("dead_letter", stats.dead_letters),
            ] {
                m.events.with_label_values(&[outcome]).inc_by(n as u64);
            }
            let end = log.end_offset(NOTIFICATIONS_TOPIC)?;
            m.lag.set(end - stats.next_offset);
        }
        tracing::debug!(
            records = records.len(),
            next_offset = stats.next_offset,
            "batch committed"
        );
        Ok(records.len())
    })
    .await
    .context("processor batch task")?
}

/// Runs until `shutdown` turns true; a batch in progress is finished first (graceful drain).
pub async fn run(
    log: Arc<EmbeddedLog>,
    store: Arc<EmbeddedStore>,
    processor: Arc<Processor>,
    batch_size: usize,
    metrics: ProcessorMetrics,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut appended = log.subscribe();
    let mut failures = 0u32;
    loop {
        if *shutdown.borrow() {
            break;
        }
        match step(&log, &store, &processor, batch_size, Some(&metrics)).await {
            Ok(0) => {
                failures = 0;
                tokio::select! {
                    _ = appended.changed() => {}
                    _ = shutdown.changed() => {}
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
            Ok(_) => failures = 0,
            Err(e) => {
                failures += 1;
                let wait = Duration::from_millis(200 * u64::from(failures.min(25)));
                tracing::error!(error = %format!("{e:#}"), retry_in_ms = wait.as_millis() as u64, "processor batch failed; nothing of it was applied");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }
    tracing::info!("processor stopped");
}

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
        let n = step(&log, &store, &processor, config.processor_batch_size, None).await?;
        if n == 0 {
            break;
        }
        done += n;
        eprint!("\rreplayed {done}/{total} records");
    }
    eprintln!(
        "\rreplayed {done}/{total} records in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
