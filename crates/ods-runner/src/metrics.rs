//! The processor metrics, shared by both runners.

use ods_store::BatchStats;
use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// Processor metrics (Prometheus, conventional names; labels of low cardinality).
#[derive(Clone)]
pub struct ProcessorMetrics {
    events: IntCounterVec,
    rejections: IntCounterVec,
    lag: IntGaugeVec,
    lag_total: IntGauge,
    batch_seconds: Histogram,
    batch_size: Histogram,
    batch_failures: IntCounterVec,
    rebalances: IntCounterVec,
    assigned: IntGauge,
}

impl ProcessorMetrics {
    /// Registers
    /// * `ods_processor_events_total{outcome}` (validated, rejected, withdrawn, zero_report,
    ///   skipped, dead_letter),
    /// * `ods_processor_rejections_total{rule}`,
    /// * `ods_processor_lag_records{partition}` per owned partition and
    ///   `ods_processor_lag_records_total`,
    /// * `ods_processor_batch_duration_seconds`, `ods_processor_batch_size`,
    /// * `ods_processor_batch_failures_total{retryable}`,
    /// * `ods_processor_rebalances_total{kind}` (assign, revoke, error) and
    ///   `ods_processor_assigned_partitions`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let events = IntCounterVec::new(
            Opts::new(
                "ods_processor_events_total",
                "Records processed, by outcome",
            ),
            &["outcome"],
        )?;
        let rejections = IntCounterVec::new(
            Opts::new(
                "ods_processor_rejections_total",
                "Rejected versions, by broken rule",
            ),
            &["rule"],
        )?;
        let lag = IntGaugeVec::new(
            Opts::new(
                "ods_processor_lag_records",
                "Records of an owned partition not yet processed",
            ),
            &["partition"],
        )?;
        let lag_total = IntGauge::new(
            "ods_processor_lag_records_total",
            "Records of all owned partitions not yet processed",
        )?;
        let batch_seconds = Histogram::with_opts(HistogramOpts::new(
            "ods_processor_batch_duration_seconds",
            "Time to decide and commit one batch",
        ))?;
        let batch_size = Histogram::with_opts(
            HistogramOpts::new("ods_processor_batch_size", "Records per batch")
                .buckets(vec![1.0, 10.0, 100.0, 500.0, 1000.0, 2000.0, 5000.0]),
        )?;
        let batch_failures = IntCounterVec::new(
            Opts::new(
                "ods_processor_batch_failures_total",
                "Batches that failed to apply (nothing of them was applied; they are retried)",
            ),
            &["retryable"],
        )?;
        let rebalances = IntCounterVec::new(
            Opts::new(
                "ods_processor_rebalances_total",
                "Consumer-group rebalance events, by kind",
            ),
            &["kind"],
        )?;
        let assigned = IntGauge::new(
            "ods_processor_assigned_partitions",
            "Partitions this processor owns",
        )?;
        registry.register(Box::new(events.clone()))?;
        registry.register(Box::new(rejections.clone()))?;
        registry.register(Box::new(lag.clone()))?;
        registry.register(Box::new(lag_total.clone()))?;
        registry.register(Box::new(batch_seconds.clone()))?;
        registry.register(Box::new(batch_size.clone()))?;
        registry.register(Box::new(batch_failures.clone()))?;
        registry.register(Box::new(rebalances.clone()))?;
        registry.register(Box::new(assigned.clone()))?;
        Ok(ProcessorMetrics {
            events,
            rejections,
            lag,
            lag_total,
            batch_seconds,
            batch_size,
            batch_failures,
            rebalances,
            assigned,
        })
    }

    /// Records an applied batch (of one partition, or a poll round over several).
    pub fn batch_applied(&self, stats: &BatchStats, seconds: f64) {
        self.batches_applied(std::slice::from_ref(stats), seconds);
    }

    /// Records one store call that applied the batches of several partitions.
    pub fn batches_applied(&self, batches: &[BatchStats], seconds: f64) {
        self.batch_seconds.observe(seconds);
        self.batch_size
            .observe(batches.iter().map(|s| s.records).sum::<usize>() as f64);
        for stats in batches {
            self.count(stats);
        }
    }

    fn count(&self, stats: &BatchStats) {
        for (outcome, n) in [
            ("validated", stats.validated),
            ("rejected", stats.rejected),
            ("withdrawn", stats.withdrawn),
            ("zero_report", stats.zero_reports),
            ("skipped", stats.skipped),
            ("dead_letter", stats.dead_letters),
        ] {
            if n > 0 {
                self.events.with_label_values(&[outcome]).inc_by(n as u64);
            }
        }
        for (rule, n) in &stats.rejected_by_rule {
            self.rejections
                .with_label_values(&[rule.as_str()])
                .inc_by(*n as u64);
        }
    }

    /// Records a batch that failed to apply.
    pub fn batch_failed(&self, retryable: bool) {
        self.batch_failures
            .with_label_values(&[if retryable { "true" } else { "false" }])
            .inc();
    }

    /// Records a rebalance event (`assign`, `revoke`, `error`).
    pub fn rebalanced(&self, kind: &str) {
        self.rebalances.with_label_values(&[kind]).inc();
    }

    /// Sets the lag of every owned partition (and forgets partitions no longer owned).
    pub fn set_lags(&self, lags: &[(i32, i64)]) {
        self.lag.reset();
        for (partition, lag) in lags {
            self.lag
                .with_label_values(&[partition.to_string().as_str()])
                .set(*lag);
        }
        self.lag_total.set(lags.iter().map(|(_, lag)| *lag).sum());
        self.assigned.set(lags.len() as i64);
    }

    /// Records processed so far, over all outcomes (`ods_processor_events_total` summed).
    pub fn events_processed(&self) -> u64 {
        [
            "validated",
            "rejected",
            "withdrawn",
            "zero_report",
            "skipped",
            "dead_letter",
        ]
        .iter()
        .map(|outcome| self.events.with_label_values(&[*outcome]).get())
        .sum()
    }

    /// Lag over all owned partitions.
    pub fn lag(&self) -> i64 {
        self.lag_total.get()
    }
}
