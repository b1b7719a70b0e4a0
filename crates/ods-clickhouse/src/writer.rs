//! Inserts with retries, and batching of records by size and time.
//!
//! The writer keeps its own copy of the rows (the caller's slice) until the server confirmed the
//! insert: every attempt builds a fresh `clickhouse::insert::Insert` from those rows, because the
//! crate's `Inserter` drops its buffer when an insert fails. Errors are classified
//! ([`crate::error::classify`]): retryable ones are retried with exponential backoff up to the
//! policy's attempts, then returned (the batch's position is not written, so the runner tries the
//! batch again later); permanent ones are returned at once, naming the refused row. Nothing is
//! dropped silently. Re-sending rows is safe: every table is a ReplacingMergeTree versioned by
//! source offset, so a row sent twice is one row.

use std::time::{Duration, Instant};

use clickhouse::Client;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use serde::Deserialize;

use crate::error::{classify, failing_row, ClickHouseError, ErrorClass};
use crate::rows::TableRow;

/// How inserts are retried.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Wait before the first retry (ms); doubles with every retry.
    pub initial_backoff_ms: u64,
    /// Longest wait between retries (ms).
    pub max_backoff_ms: u64,
    /// Attempts in total before a retryable error is returned to the caller.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_backoff_ms: 100,
            max_backoff_ms: 10_000,
            max_attempts: 8,
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1-based).
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u64 << retry.saturating_sub(1).min(20);
        Duration::from_millis(
            self.initial_backoff_ms
                .saturating_mul(factor)
                .min(self.max_backoff_ms),
        )
    }
}

/// Prometheus metrics of the store's writes.
#[derive(Clone)]
pub struct StoreMetrics {
    inserts: IntCounterVec,
    retries: IntCounterVec,
    duration: HistogramVec,
}

impl StoreMetrics {
    /// Registers `ods_store_inserts_total{table,outcome}`, `ods_store_insert_retries_total{table}`
    /// and `ods_store_insert_duration_seconds{table}`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let inserts = IntCounterVec::new(
            Opts::new(
                "ods_store_inserts_total",
                "Inserts into the analytics store, by table and outcome (ok, retryable, permanent)",
            ),
            &["table", "outcome"],
        )?;
        let retries = IntCounterVec::new(
            Opts::new(
                "ods_store_insert_retries_total",
                "Inserts retried after a retryable error",
            ),
            &["table"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "ods_store_insert_duration_seconds",
                "Time of one insert attempt",
            ),
            &["table"],
        )?;
        registry.register(Box::new(inserts.clone()))?;
        registry.register(Box::new(retries.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(StoreMetrics {
            inserts,
            retries,
            duration,
        })
    }
}

/// Writes rows with retries.
#[derive(Clone)]
pub struct Writer {
    client: Client,
    database: String,
    retry: RetryPolicy,
    max_rows_per_insert: usize,
    metrics: Option<StoreMetrics>,
}

impl Writer {
    /// A writer into `database`.
    pub fn new(
        client: Client,
        database: &str,
        retry: RetryPolicy,
        max_rows_per_insert: usize,
    ) -> Writer {
        Writer {
            client,
            database: database.to_string(),
            retry,
            max_rows_per_insert: max_rows_per_insert.max(1),
            metrics: None,
        }
    }

    /// Records inserts in these metrics.
    pub fn with_metrics(mut self, metrics: StoreMetrics) -> Writer {
        self.metrics = Some(metrics);
        self
    }

    /// Inserts `rows` into their table, in chunks, each retried until confirmed or failed.
    pub async fn insert<T: TableRow>(&self, rows: &[T]) -> Result<(), ClickHouseError> {
        for chunk in rows.chunks(self.max_rows_per_insert) {
            self.insert_chunk(chunk).await?;
        }
        Ok(())
    }

    async fn insert_chunk<T: TableRow>(&self, rows: &[T]) -> Result<(), ClickHouseError> {
        let table = format!("{}.{}", self.database, T::TABLE);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let started = Instant::now();
            let result = self.try_insert(&table, rows).await;
            if let Some(m) = &self.metrics {
                m.duration
                    .with_label_values(&[T::TABLE])
                    .observe(started.elapsed().as_secs_f64());
            }
            let error = match result {
                Ok(()) => {
                    self.count(T::TABLE, "ok");
                    return Ok(());
                }
                Err(e) => e,
            };
            match classify(&error) {
                ErrorClass::Retryable if attempt < self.retry.max_attempts => {
                    self.count(T::TABLE, "retryable");
                    if let Some(m) = &self.metrics {
                        m.retries.with_label_values(&[T::TABLE]).inc();
                    }
                    let wait = self.retry.backoff(attempt);
                    tracing::warn!(%table, attempt, rows = rows.len(), error = %error, retry_in_ms = wait.as_millis() as u64, "clickhouse insert failed; retrying");
                    tokio::time::sleep(wait).await;
                }
                ErrorClass::Retryable => {
                    self.count(T::TABLE, "retryable");
                    return Err(ClickHouseError::Exhausted {
                        what: format!("insert into {table}"),
                        attempts: attempt,
                        source: error,
                    });
                }
                ErrorClass::Permanent => {
                    self.count(T::TABLE, "permanent");
                    let row = self.locate(&table, rows, &error).await;
                    return Err(ClickHouseError::RowRejected {
                        table,
                        row: row
                            .map(|i| {
                                format!("row {} of {}: {}", i + 1, rows.len(), rows[i].describe())
                            })
                            .unwrap_or_else(|| format!("one of {} rows", rows.len())),
                        reason: error.to_string(),
                    });
                }
            }
        }
    }

    async fn try_insert<T: TableRow>(
        &self,
        table: &str,
        rows: &[T],
    ) -> Result<(), clickhouse::error::Error> {
        let mut insert = self.client.insert::<T>(table)?;
        for row in rows {
            insert.write(row).await?;
        }
        insert.end().await
    }

    /// Finds the refused row: the server's `(at row N)`, or else by bisection (inserting halves
    /// is safe: rows are idempotent, see the module docs).
    async fn locate<T: TableRow>(
        &self,
        table: &str,
        rows: &[T],
        error: &clickhouse::error::Error,
    ) -> Option<usize> {
        if let clickhouse::error::Error::BadResponse(message) = error {
            if let Some(n) = failing_row(message).filter(|n| (1..=rows.len()).contains(n)) {
                return Some(n - 1);
            }
        }
        let (mut lo, mut hi) = (0usize, rows.len());
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            match self.try_insert(table, &rows[lo..mid]).await {
                Err(e) if classify(&e) == ErrorClass::Permanent => hi = mid,
                Ok(()) => lo = mid,
                Err(_) => return None,
            }
        }
        (hi - lo == 1).then_some(lo)
    }

    fn count(&self, table: &str, outcome: &str) {
        if let Some(m) = &self.metrics {
            m.inserts.with_label_values(&[table, outcome]).inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy {
            initial_backoff_ms: 100,
            max_backoff_ms: 1000,
            max_attempts: 5,
        };
        assert_eq!(p.backoff(1), Duration::from_millis(100));
        assert_eq!(p.backoff(2), Duration::from_millis(200));
        assert_eq!(p.backoff(4), Duration::from_millis(800));
        assert_eq!(p.backoff(5), Duration::from_millis(1000));
        assert_eq!(p.backoff(60), Duration::from_millis(1000));
    }
}
