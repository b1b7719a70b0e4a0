use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use ods_codelists::CodeLists;
use ods_log::{Append, EmbeddedLog, LogError};
use ods_model::Affiliation;
use ods_model::{Event, NotificationFiled, NotificationId, ReporterPseudonym, ZeroReport};
use ods_validation::{validate_notification, validate_period, Limits, Violation};
use ods_wire::WireError;
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use serde::Serialize;
use tracing::Instrument;
use uuid::Uuid;

/// The topic of doctors' events.
pub const NOTIFICATIONS_TOPIC: &str = "ods.notifications.v1";

/// Why a publish did not happen. Nothing was written in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The sink's queue is full: retry after a short wait.
    #[error("the event log is busy; retry shortly")]
    Backpressure,
    /// The sink cannot confirm writes now.
    #[error("the event log is unavailable: {0}")]
    Unavailable(String),
    /// An event could not be encoded (a defect).
    #[error("encoding failed: {0}")]
    Encode(#[from] WireError),
}

/// A future returned by [`EventSink::publish`].
pub type PublishFuture<'a> = Pin<Box<dyn Future<Output = Result<(), PublishError>> + Send + 'a>>;

/// Where intake writes events: the embedded log or a Kafka topic.
pub trait EventSink: Send + Sync {
    /// Writes `events` durably, in order, keyed by notification (or reporter); resolves only when
    /// the write is confirmed.
    fn publish(&self, events: Vec<Event>) -> PublishFuture<'_>;
    /// Whether the sink can take writes now (for `/readyz`).
    fn is_ready(&self) -> bool;
    /// Writes waiting for confirmation (for the in-flight gauge).
    fn in_flight(&self) -> usize;
}

/// [`EventSink`] over the embedded log.
pub struct EmbeddedSink {
    log: Arc<EmbeddedLog>,
}

impl EmbeddedSink {
    /// A sink appending to `log`.
    pub fn new(log: Arc<EmbeddedLog>) -> Self {
        EmbeddedSink { log }
    }
}

impl EventSink for EmbeddedSink {
    fn publish(&self, events: Vec<Event>) -> PublishFuture<'_> {
        Box::pin(async move {
            let now = Utc::now().timestamp_millis();
            let mut records = Vec::with_capacity(events.len());
            for event in &events {
                let (_, payload) = ods_wire::encode_event(event)?;
                records.push(Append {
                    topic: NOTIFICATIONS_TOPIC.to_string(),
                    key: event.key(),
                    payload,
                    appended_at_ms: now,
                });
            }
            match self.log.append(records).await {
                Ok(_) => Ok(()),
                Err(LogError::Backpressure(_)) => Err(PublishError::Backpressure),
                Err(e) => Err(PublishError::Unavailable(e.to_string())),
            }
        })
    }

    fn is_ready(&self) -> bool {
        self.log.is_open()
    }

    fn in_flight(&self) -> usize {
        self.log.pending()
    }
}

/// Intake metrics.
#[derive(Clone)]
pub struct IntakeMetrics {
    validation_failures: IntCounterVec,
    accepted: IntCounterVec,
    in_flight: IntGauge,
}

impl IntakeMetrics {
    /// Registers `ods_intake_validation_failures_total{rule}`, `ods_intake_accepted_total{kind}`
    /// and `ods_intake_producer_in_flight`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let validation_failures = IntCounterVec::new(
            Opts::new(
                "ods_intake_validation_failures_total",
                "Rule violations found at intake, by rule",
            ),
            &["rule"],
        )?;
        let accepted = IntCounterVec::new(
            Opts::new(
                "ods_intake_accepted_total",
                "Events accepted durably, by kind",
            ),
            &["kind"],
        )?;
        let in_flight = IntGauge::new(
            "ods_intake_producer_in_flight",
            "Publishes waiting for the log or broker to confirm",
        )?;
        registry.register(Box::new(validation_failures.clone()))?;
        registry.register(Box::new(accepted.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        Ok(IntakeMetrics {
            validation_failures,
            accepted,
            in_flight,
        })
    }
}

/// A durably accepted notification.
#[derive(Debug, Clone, Serialize)]
pub struct Accepted {
    /// Notification id.
    pub id: String,
    /// Version created.
    pub version: u32,
    /// Always `accepted`: validation by the processor follows.
    pub status: &'static str,
    /// Non-blocking remarks.
    pub warnings: Vec<String>,
}

/// Why intake did not accept.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The content breaks rules; every violation is listed.
    #[error("{} rule violation(s)", .0.len())]
    Invalid(Vec<Violation>),
    /// Publishing failed; nothing was written.
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// The producer core.
pub struct Intake {
    lists: Arc<CodeLists>,
    limits: Limits,
    sink: Arc<dyn EventSink>,
    metrics: IntakeMetrics,
}

impl Intake {
    /// An intake over `sink`.
    pub fn new(
        lists: Arc<CodeLists>,
        limits: Limits,
        sink: Arc<dyn EventSink>,
        metrics: IntakeMetrics,
    ) -> Self {
        Intake {
            lists,
            limits,
            sink,
            metrics,
        }
    }

    /// The code lists.
    pub fn lists(&self) -> &Arc<CodeLists> {
        &self.lists
    }

    /// The sink (for readiness).
    pub fn sink(&self) -> &Arc<dyn EventSink> {
        &self.sink
    }

    fn count_violations(&self, violations: &[Violation]) {
        for v in violations {
            self.metrics
                .validation_failures
                .with_label_values(&[v.rule.id()])
                .inc();
        }
    }

    /// Validates a body and builds the filing event, without publishing.
    pub fn prepare_filing(
        &self,
        reporter: &ReporterPseudonym,
        body: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<NotificationFiled, Vec<Violation>> {
        let notification = validate_notification(body, &self.lists, now.date_naive(), &self.limits)
            .inspect_err(|violations| self.count_violations(violations))?;
        Ok(NotificationFiled {
            event_id: Uuid::now_v7(),
            notification_id: NotificationId::new(),
            reporter: reporter.clone(),
            notified_at: now,
            notification,
        })
    }

    /// Validates a zero report and builds its event.
    pub fn prepare_zero_report(
        &self,
        reporter: &ReporterPseudonym,
        affiliation: &Affiliation,
        period: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<ZeroReport, Vec<Violation>> {
        let period = validate_period(period, now.date_naive())
            .inspect_err(|violations| self.count_violations(violations))?;
        Ok(ZeroReport {
            event_id: Uuid::now_v7(),
            reporter: reporter.clone(),
            affiliation: affiliation.clone(),
            period,
            reported_at: now,
        })
    }

    /// Publishes events durably (all or none).
    pub async fn publish(&self, events: Vec<Event>) -> Result<(), PublishError> {
        let kinds: Vec<&'static str> = events.iter().map(|e| e.kind().as_str()).collect();
        self.metrics.in_flight.inc();
        let result = self.sink.publish(events).await;
        self.metrics.in_flight.dec();
        if result.is_ok() {
            for kind in kinds {
                self.metrics.accepted.with_label_values(&[kind]).inc();
            }
        }
        result
    }

    /// Validates, publishes, and answers with the new id.
    pub async fn file(
        &self,
        reporter: &ReporterPseudonym,
        body: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<Accepted, IntakeError> {
        let filed = self
            .prepare_filing(reporter, body, now)
            .map_err(IntakeError::Invalid)?;
        let id = filed.notification_id.to_string();
        self.publish(vec![Event::Filed(filed)])
            .instrument(tracing::info_span!("publish_notification", notification_id = %id))
            .await?;
        tracing::info!(notification_id = %id, "notification accepted");
        Ok(Accepted {
            id,
            version: 1,
            status: "accepted",
            warnings: Vec::new(),
        })
    }
}
