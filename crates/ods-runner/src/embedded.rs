//! The embedded runner of `ods run`: reads the embedded log in order and applies batches to the
//! embedded store, whose transaction also stores the position (see `ods-store`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ods_log::EmbeddedLog;
use ods_processor::Processor;
use ods_store::{BatchStats, EmbeddedStore};
use tokio::sync::watch;

use crate::error::RunnerError;
use crate::metrics::ProcessorMetrics;

/// The topic the embedded runner reads.
pub const NOTIFICATIONS_TOPIC: &str = "ods.notifications.v1";

/// The embedded log has one partition per topic; this is its source name in the store's
/// positions (partition 0).
pub const EMBEDDED_SOURCE: &str = "ods.notifications.v1/0";

/// Processes one batch from the stored position; returns what it did (`records == 0`: the log
/// has nothing new).
pub async fn step(
    log: &Arc<EmbeddedLog>,
    store: &Arc<EmbeddedStore>,
    processor: &Arc<Processor>,
    batch_size: usize,
    metrics: Option<&ProcessorMetrics>,
) -> Result<BatchStats, RunnerError> {
    let (log, store, processor) = (log.clone(), store.clone(), processor.clone());
    let metrics = metrics.cloned();
    tokio::task::spawn_blocking(move || -> Result<BatchStats, RunnerError> {
        let from = store.checkpoint(EMBEDDED_SOURCE)?;
        let records = log.read_from(NOTIFICATIONS_TOPIC, from, batch_size)?;
        let Some(first) = records.first().map(|r| r.offset) else {
            if let Some(m) = &metrics {
                m.set_lags(&[(0, 0)]);
            }
            return Ok(BatchStats {
                next_offset: from,
                ..BatchStats::default()
            });
        };
        let started = Instant::now();
        let last = records.last().map(|r| r.offset).unwrap_or(first);
        let span = tracing::debug_span!(
            "process_batch",
            source = EMBEDDED_SOURCE,
            first_offset = first,
            last_offset = last
        );
        let _entered = span.enter();
        let stats = store.apply_batch(EMBEDDED_SOURCE, 0, &processor, &records)?;
        if let Some(m) = &metrics {
            m.batch_applied(&stats, started.elapsed().as_secs_f64());
            let end = log.end_offset(NOTIFICATIONS_TOPIC)?;
            m.set_lags(&[(0, end - stats.next_offset)]);
        }
        tracing::debug!(
            records = records.len(),
            next_offset = stats.next_offset,
            "batch committed"
        );
        Ok(stats)
    })
    .await
    .map_err(|e| RunnerError::Task(e.to_string()))?
}

/// Runs until `shutdown` turns true; a batch in progress is finished first (graceful drain).
/// A failed batch changed nothing (one SQLite transaction) and is retried with backoff.
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
            Ok(stats) if stats.records == 0 => {
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
                metrics.batch_failed(e.is_retryable());
                let wait = Duration::from_millis(200 * u64::from(failures.min(25)));
                tracing::error!(error = %e, retry_in_ms = wait.as_millis() as u64, "processor batch failed; nothing of it was applied");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }
    tracing::info!("processor stopped");
}
