//! The embedded runner of `ods run` (and `ods replay`): reads the embedded log in order and
//! applies batches to the embedded store, whose transaction also stores the position (see
//! `ods-store`). Two stages ([`Pipeline`]): the next batch is read and assessed while the current
//! one is written.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use ods_log::EmbeddedLog;
use ods_processor::{Assessed, Processor};
use ods_store::{BatchStats, EmbeddedStore};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::RunnerError;
use crate::metrics::ProcessorMetrics;

/// The topic the embedded runner reads.
pub const NOTIFICATIONS_TOPIC: &str = "ods.notifications.v1";

/// The embedded log has one partition per topic; this is its source name in the store's
/// positions (partition 0).
pub const EMBEDDED_SOURCE: &str = "ods.notifications.v1/0";

/// A batch read from the log and assessed ([`ods_processor::Processor::assess`]) before its
/// turn to be applied.
struct Prepared {
    /// The offset the read started at.
    from: i64,
    /// The offset after its last record (`from` when it has none).
    next: i64,
    /// The records, assessed, in log order.
    assessed: Vec<Assessed>,
}

type PreparedTask = JoinHandle<Result<Prepared, RunnerError>>;

fn task_failed(e: tokio::task::JoinError) -> RunnerError {
    RunnerError::Task(e.to_string())
}

/// The embedded processor in two stages: while batch n is applied to the store (one SQLite
/// transaction with its position), batch n+1 is read from the log and assessed (decoding, rules,
/// enrichment, the forms to store) on another thread.
///
/// Reading ahead is safe because the store decides: a batch applies only its records at or after
/// the stored position, and a read-ahead is kept only once the batch before it is committed, so
/// it starts where the stored position then was, or before it when another writer applied
/// records meanwhile (those change nothing). After a failed batch, or a step cancelled part-way,
/// the next step reads again from the stored position. This relies on positions moving only
/// forward while a pipeline runs: the full `ods replay`, which resets them, holds the data
/// directory's lock, so no `ods run` runs meanwhile.
pub struct Pipeline {
    log: Arc<EmbeddedLog>,
    store: Arc<EmbeddedStore>,
    processor: Arc<Processor>,
    batch_size: usize,
    metrics: Option<ProcessorMetrics>,
    ahead: Option<PreparedTask>,
}

impl Pipeline {
    /// A pipeline from `log` into `store`, `batch_size` records per batch, recording batches
    /// and lag in `metrics` when given.
    pub fn new(
        log: Arc<EmbeddedLog>,
        store: Arc<EmbeddedStore>,
        processor: Arc<Processor>,
        batch_size: usize,
        metrics: Option<ProcessorMetrics>,
    ) -> Self {
        Pipeline {
            log,
            store,
            processor,
            batch_size: batch_size.max(1),
            metrics,
            ahead: None,
        }
    }

    /// Reads and assesses up to `batch_size` records from `from` on the blocking pool.
    fn prepare(&self, from: i64) -> PreparedTask {
        let (log, processor, batch_size) =
            (self.log.clone(), self.processor.clone(), self.batch_size);
        tokio::task::spawn_blocking(move || {
            let records = log.read_from(NOTIFICATIONS_TOPIC, from, batch_size)?;
            let next = records.last().map_or(from, |r| r.offset + 1);
            let assessed = ods_store::assess(&processor, EMBEDDED_SOURCE, 0, &records, Utc::now());
            Ok(Prepared {
                from,
                next,
                assessed,
            })
        })
    }

    /// Applies the next batch (read ahead during the previous step, or from the stored position)
    /// and starts reading the one after it; returns what it did (`records == 0`: the log had
    /// nothing new).
    pub async fn step(&mut self) -> Result<BatchStats, RunnerError> {
        loop {
            let ahead = match self.ahead.take() {
                Some(ahead) => ahead,
                None => {
                    let store = self.store.clone();
                    let from =
                        tokio::task::spawn_blocking(move || store.checkpoint(EMBEDDED_SOURCE))
                            .await
                            .map_err(task_failed)??;
                    self.prepare(from)
                }
            };
            let prepared = ahead.await.map_err(task_failed)??;
            if prepared.assessed.is_empty() {
                if let Some(m) = &self.metrics {
                    m.set_lags(&[(0, 0)]);
                }
                // the next step looks at the stored position again
                return Ok(BatchStats {
                    next_offset: prepared.from,
                    ..BatchStats::default()
                });
            }
            // Read ahead while this batch is written, but keep the read-ahead only once the batch
            // is committed: if the apply fails, or this future is dropped part-way, it is dropped
            // too and the next step reads from the stored position again.
            let ahead = self.prepare(prepared.next);
            match self.apply(prepared.assessed).await {
                // another writer had applied all of it: read again from the stored position
                Ok(stats) if stats.records == 0 => {}
                Ok(stats) => {
                    self.ahead = Some(ahead);
                    return Ok(stats);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Applies assessed records (the records before the stored position are skipped) with the
    /// new position, in one transaction on the blocking pool.
    async fn apply(&self, assessed: Vec<Assessed>) -> Result<BatchStats, RunnerError> {
        let (log, store, processor, metrics) = (
            self.log.clone(),
            self.store.clone(),
            self.processor.clone(),
            self.metrics.clone(),
        );
        tokio::task::spawn_blocking(move || -> Result<BatchStats, RunnerError> {
            let started = Instant::now();
            let span = tracing::debug_span!(
                "process_batch",
                source = EMBEDDED_SOURCE,
                first_offset = assessed.first().map(Assessed::offset),
                last_offset = assessed.last().map(Assessed::offset)
            );
            let _entered = span.enter();
            let records = assessed.len();
            let stats = store
                .apply_assessed(EMBEDDED_SOURCE, &processor, &[(0, assessed)])?
                .pop()
                .map(|(_, stats)| stats)
                .unwrap_or_default();
            if let Some(m) = metrics.as_ref().filter(|_| stats.records > 0) {
                m.batch_applied(&stats, started.elapsed().as_secs_f64());
                // the batch is committed: a failed look at the log's end only leaves the lag
                // gauge as it was
                match log.end_offset(NOTIFICATIONS_TOPIC) {
                    Ok(end) => m.set_lags(&[(0, end - stats.next_offset)]),
                    Err(e) => {
                        tracing::warn!(error = %e, "lag not updated: the log's end is unknown")
                    }
                }
            }
            tracing::debug!(
                records,
                applied = stats.records,
                next_offset = stats.next_offset,
                "batch committed"
            );
            Ok(stats)
        })
        .await
        .map_err(task_failed)?
    }
}

/// Runs a [`Pipeline`] until `shutdown` turns true; a batch in progress is finished first
/// (graceful drain; a batch read ahead is dropped, it was only read). A failed batch changed
/// nothing (one SQLite transaction) and is retried with backoff.
pub async fn run(
    log: Arc<EmbeddedLog>,
    store: Arc<EmbeddedStore>,
    processor: Arc<Processor>,
    batch_size: usize,
    metrics: ProcessorMetrics,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut appended = log.subscribe();
    let mut pipeline = Pipeline::new(log, store, processor, batch_size, Some(metrics.clone()));
    let mut failures = 0u32;
    loop {
        if *shutdown.borrow() {
            break;
        }
        match pipeline.step().await {
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
