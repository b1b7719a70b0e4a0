use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use ods_codelists::CodeLists;
use ods_log::{Append, EmbeddedLog, LogError};
use ods_model::{
    Affiliation, Event, NotificationAmended, NotificationFiled, NotificationId,
    NotificationWithdrawn, ReporterPseudonym, WithdrawalReason, ZeroReport,
};
use ods_validation::{validate_notification, validate_period, Limits, Violation};
use ods_wire::WireError;
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::Instrument;
use uuid::Uuid;

use crate::registry::{
    IdempotentRecord, IntakeRegistry, RegistryEntry, RegistryError, RegistryWriter,
};

/// The topic of doctors' events.
pub const NOTIFICATIONS_TOPIC: &str = "ods.notifications.v1";

/// Why a publish was not confirmed. Nothing was *confirmed*: the embedded log writes all or
/// nothing, but a Kafka write that timed out, or the earlier records of a multi-record publish
/// whose later record was refused, may still have reached the broker. Clients retry with the
/// same `Idempotency-Key`, which reuses the same notification id, and the processor drops a
/// second copy of a version as a redelivery, so such a leftover never counts twice.
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

/// What a confirmed publish tells: `Some` when the sink also applied the events to the intake
/// registry in the same write (with, for each event, the notifications it probably duplicates),
/// `None` when the caller is to apply them.
pub type Published = Option<Vec<Vec<String>>>;

/// A future returned by [`EventSink::publish`].
pub type PublishFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Published, PublishError>> + Send + 'a>>;

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

/// [`EventSink`] over the embedded log. Every publish is also applied to the intake registry kept
/// in the log's own database ([`IntakeRegistry::open_in_log`]), in the append's transaction: the
/// registry can never lag the log, and both share one commit and one fsync.
pub struct EmbeddedSink {
    log: Arc<EmbeddedLog>,
}

impl EmbeddedSink {
    /// A sink appending to `log`, whose database holds the intake registry.
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
            let written = self
                .log
                .append_then(records, move |tx, offsets| {
                    crate::registry::apply_in_append(tx, offsets, &events)
                })
                .await
                .map(|(_, applied)| {
                    // the records are durable; registry work that failed was rolled back alone,
                    // and the catch-up at the next start re-applies it
                    Some(applied.unwrap_or_else(|e| {
                        tracing::error!(error = %e, "registry update in the log's transaction failed; the events are durable");
                        Vec::new()
                    }))
                });
            match written {
                Ok(published) => Ok(published),
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
    duplicate_warnings: prometheus::IntCounter,
}

impl IntakeMetrics {
    /// Registers `ods_intake_validation_failures_total{rule}`, `ods_intake_accepted_total{kind}`,
    /// `ods_intake_producer_in_flight` and `ods_intake_duplicate_warnings_total`.
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
        let duplicate_warnings = prometheus::IntCounter::new(
            "ods_intake_duplicate_warnings_total",
            "Notifications accepted with a probable-duplicate warning",
        )?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(duplicate_warnings.clone()))?;
        Ok(IntakeMetrics {
            validation_failures,
            accepted,
            in_flight,
            duplicate_warnings,
        })
    }
}

/// A durably accepted notification version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Accepted {
    /// Notification id.
    pub id: String,
    /// Version created.
    pub version: u32,
    /// Always `accepted`: validation by the processor follows.
    pub status: String,
    /// Non-blocking remarks, e.g. a probable duplicate of an earlier notification of the same
    /// doctor (same sex, birth year, diagnosis, sector and diagnosis month).
    pub warnings: Vec<String>,
}

impl Accepted {
    fn new(id: String, version: u32) -> Self {
        Accepted {
            id,
            version,
            status: "accepted".into(),
            warnings: Vec::new(),
        }
    }
}

/// Why intake did not accept.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The content breaks rules; every violation is listed.
    #[error("{} rule violation(s)", .0.len())]
    Invalid(Vec<Violation>),
    /// Publishing was not confirmed (see [`PublishError`]).
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// No such notification for this caller (also when it is someone else's).
    #[error("no notification {0} of yours")]
    NotFound(String),
    /// `If-Match` named another version than the current one.
    #[error("the notification is at version {current}, not {expected}")]
    VersionConflict {
        /// Current version.
        current: u32,
        /// Version the caller expected.
        expected: u32,
    },
    /// The notification was withdrawn; it cannot change any more.
    #[error("notification {0} was withdrawn")]
    Withdrawn(String),
    /// An `Idempotency-Key` was reused for a different request.
    #[error("the Idempotency-Key was used before for a different request")]
    IdempotencyMismatch,
    /// The caller's role may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The registry failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// Who asks to change or read a notification.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    /// The doctor, by pseudonym.
    Reporter(&'a ReporterPseudonym),
    /// An administrator (may act on any notification).
    Admin,
}

/// The producer core.
pub struct Intake {
    lists: Arc<CodeLists>,
    limits: Limits,
    sink: Arc<dyn EventSink>,
    registry: Arc<IntakeRegistry>,
    /// Applies confirmed events to the registry, many publishes per transaction, for a sink that
    /// leaves that to intake (Kafka); started at the first such publish, so a sink that applies
    /// the registry itself (the embedded log) never starts the thread.
    registry_writer: std::sync::OnceLock<Result<RegistryWriter, String>>,
    metrics: IntakeMetrics,
    /// Serialises amendments and withdrawals, so a version check and its publish are atomic.
    changes: tokio::sync::Mutex<()>,
}

fn request_hash(body: &serde_json::Value) -> String {
    hex::encode(Sha256::digest(body.to_string().as_bytes()))
}

impl Intake {
    /// An intake over `sink`, keeping `registry` up to date: through the sink when it applies the
    /// registry in its own write, otherwise on a writer thread of its own (started at the first
    /// publish, stopped when the intake is dropped).
    pub fn new(
        lists: Arc<CodeLists>,
        limits: Limits,
        sink: Arc<dyn EventSink>,
        registry: Arc<IntakeRegistry>,
        metrics: IntakeMetrics,
    ) -> Self {
        Intake {
            lists,
            limits,
            sink,
            registry_writer: std::sync::OnceLock::new(),
            registry,
            metrics,
            changes: tokio::sync::Mutex::new(()),
        }
    }

    /// The registry.
    pub fn registry(&self) -> &Arc<IntakeRegistry> {
        &self.registry
    }

    async fn registry_call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&IntakeRegistry) -> Result<T, RegistryError> + Send + 'static,
    ) -> Result<T, IntakeError> {
        let registry = self.registry.clone();
        tokio::task::spawn_blocking(move || f(&registry))
            .await
            .map_err(|e| IntakeError::Registry(RegistryError::Internal(e.to_string())))?
            .map_err(IntakeError::Registry)
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
        self.publish_reporting_duplicates(events).await.map(|_| ())
    }

    /// Publishes events durably (all or none), like [`Intake::publish`], and returns for each
    /// event the warnings for its doctor: for a filing that looks like an earlier notification of
    /// the same doctor (or an earlier filing of the same publish), a probable-duplicate warning
    /// naming it.
    pub async fn publish_with_warnings(
        &self,
        events: Vec<Event>,
    ) -> Result<Vec<Vec<String>>, PublishError> {
        let duplicates = self.publish_reporting_duplicates(events).await?;
        Ok(duplicates
            .into_iter()
            .map(|others| self.duplicate_warnings(others))
            .collect())
    }

    /// Publishes events durably (all or none), then applies them to the registry, and returns
    /// for each event the earlier notifications it probably duplicates (empty for all but
    /// filings, and when the registry update failed).
    async fn publish_reporting_duplicates(
        &self,
        events: Vec<Event>,
    ) -> Result<Vec<Vec<String>>, PublishError> {
        let kinds: Vec<&'static str> = events.iter().map(|e| e.kind().as_str()).collect();
        self.metrics.in_flight.inc();
        let result = self.sink.publish(events.clone()).await;
        self.metrics.in_flight.dec();
        let published = result?;
        for kind in kinds {
            self.metrics.accepted.with_label_values(&[kind]).inc();
        }
        if let Some(duplicates) = published {
            return Ok(duplicates);
        }
        // The write is durable; a failed registry update is repaired by the catch-up from the
        // log at the next start, so it does not fail the request (it only loses the warnings).
        let writer = self
            .registry_writer
            .get_or_init(|| RegistryWriter::start(self.registry.clone()).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| RegistryError::Internal(e.clone()));
        let applied = match writer {
            Ok(writer) => writer.apply(events).await,
            Err(e) => Err(e),
        };
        match applied {
            Ok(duplicates) => Ok(duplicates),
            Err(e) => {
                tracing::error!(error = %e, "registry update failed after a confirmed publish");
                Ok(Vec::new())
            }
        }
    }

    /// Validates, publishes, and answers with the new id. With an idempotency key, a repeated
    /// request gets the first answer and creates nothing new; a request whose publish was not
    /// confirmed is published again with the same ids, which the processor deduplicates.
    pub async fn file(
        &self,
        reporter: &ReporterPseudonym,
        body: &serde_json::Value,
        now: DateTime<Utc>,
        idempotency_key: Option<&str>,
    ) -> Result<Accepted, IntakeError> {
        let mut filed = self
            .prepare_filing(reporter, body, now)
            .map_err(IntakeError::Invalid)?;
        if let Some(key) = idempotency_key {
            let wanted = IdempotentRecord {
                request_hash: request_hash(body),
                notification_id: filed.notification_id.to_string(),
                event_id: filed.event_id.to_string(),
                notified_at: filed.notified_at,
                response: None,
            };
            let (who, key_owned) = (reporter.to_string(), key.to_string());
            let record = self
                .registry_call(move |r| r.reserve(&who, &key_owned, &wanted))
                .await?;
            if record.request_hash != request_hash(body) {
                return Err(IntakeError::IdempotencyMismatch);
            }
            if let Some((_, answer)) = &record.response {
                if let Ok(accepted) = serde_json::from_str::<Accepted>(answer) {
                    return Ok(accepted);
                }
            }
            filed.notification_id = NotificationId::parse(&record.notification_id)
                .map_err(|e| IntakeError::Registry(RegistryError::Internal(e.to_string())))?;
            filed.event_id = Uuid::parse_str(&record.event_id)
                .map_err(|e| IntakeError::Registry(RegistryError::Internal(e.to_string())))?;
            filed.notified_at = record.notified_at;
        }
        let id = filed.notification_id.to_string();
        let warnings = self
            .publish_with_warnings(vec![Event::Filed(filed)])
            .instrument(tracing::info_span!("publish_notification", notification_id = %id))
            .await?;
        tracing::info!(notification_id = %id, "notification accepted");
        let mut accepted = Accepted::new(id, 1);
        accepted.warnings = warnings.into_iter().flatten().collect();
        if let Some(key) = idempotency_key {
            let answer = serde_json::to_string(&accepted).unwrap_or_default();
            let (who, key) = (reporter.to_string(), key.to_string());
            self.registry_call(move |r| r.complete(&who, &key, 202, &answer))
                .await?;
        }
        Ok(accepted)
    }

    /// Warnings for a notification that looks like the earlier notifications `others` of the same
    /// reporter (same sex, birth year, diagnosis, sector and diagnosis month): it is accepted, and
    /// the doctor is asked to amend the earlier one if it is the same case. The registry finds
    /// them when it applies the filing; a registry failure there only loses the warning, never
    /// the notification.
    fn duplicate_warnings(&self, others: Vec<String>) -> Vec<String> {
        if !others.is_empty() {
            self.metrics.duplicate_warnings.inc();
        }
        others
            .into_iter()
            .map(|other| {
                format!(
                    "probable duplicate of notification {other} (same sex, birth year, diagnosis, sector and diagnosis month); if it is the same case, amend {other} and withdraw this one with reason 'duplicate'"
                )
            })
            .collect()
    }

    /// The notification `id` if `actor` may see it.
    pub async fn lookup(&self, actor: Actor<'_>, id: &str) -> Result<RegistryEntry, IntakeError> {
        let key = id.to_string();
        let entry = self.registry_call(move |r| r.get(&key)).await?;
        match (entry, actor) {
            (Some(e), Actor::Admin) => Ok(e),
            (Some(e), Actor::Reporter(me)) if e.reporter == me.as_str() => Ok(e),
            _ => Err(IntakeError::NotFound(id.to_string())),
        }
    }

    async fn changeable(
        &self,
        actor: Actor<'_>,
        id: &str,
        if_match: Option<u32>,
    ) -> Result<RegistryEntry, IntakeError> {
        let entry = self.lookup(actor, id).await?;
        if entry.withdrawn {
            return Err(IntakeError::Withdrawn(id.to_string()));
        }
        if let Some(expected) = if_match {
            if expected != entry.version {
                return Err(IntakeError::VersionConflict {
                    current: entry.version,
                    expected,
                });
            }
        }
        Ok(entry)
    }

    fn owner(entry: &RegistryEntry) -> Result<ReporterPseudonym, IntakeError> {
        ReporterPseudonym::from_hex(&entry.reporter).ok_or_else(|| {
            IntakeError::Registry(RegistryError::Internal(format!(
                "bad reporter of {}",
                entry.id
            )))
        })
    }

    /// Replaces a notification's content with a new version.
    pub async fn amend(
        &self,
        actor: Actor<'_>,
        id: &str,
        if_match: Option<u32>,
        body: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<Accepted, IntakeError> {
        let notification = validate_notification(body, &self.lists, now.date_naive(), &self.limits)
            .inspect_err(|v| self.count_violations(v))
            .map_err(IntakeError::Invalid)?;
        let _serialised = self.changes.lock().await;
        let entry = self.changeable(actor, id, if_match).await?;
        let version = entry.version + 1;
        let event = Event::Amended(NotificationAmended {
            event_id: Uuid::now_v7(),
            notification_id: NotificationId::parse(id)
                .map_err(|_| IntakeError::NotFound(id.to_string()))?,
            version,
            reporter: Self::owner(&entry)?,
            notified_at: entry.notified_at,
            amended_at: now,
            notification,
        });
        self.publish(vec![event]).await?;
        tracing::info!(notification_id = %id, version, "amendment accepted");
        Ok(Accepted::new(id.to_string(), version))
    }

    /// Withdraws a notification.
    pub async fn withdraw(
        &self,
        actor: Actor<'_>,
        id: &str,
        if_match: Option<u32>,
        reason: WithdrawalReason,
        now: DateTime<Utc>,
    ) -> Result<Accepted, IntakeError> {
        let _serialised = self.changes.lock().await;
        let entry = self.changeable(actor, id, if_match).await?;
        let version = entry.version + 1;
        let event = Event::Withdrawn(NotificationWithdrawn {
            event_id: Uuid::now_v7(),
            notification_id: NotificationId::parse(id)
                .map_err(|_| IntakeError::NotFound(id.to_string()))?,
            version,
            reporter: Self::owner(&entry)?,
            withdrawn_at: now,
            reason,
        });
        self.publish(vec![event]).await?;
        tracing::info!(notification_id = %id, version, "withdrawal accepted");
        Ok(Accepted::new(id.to_string(), version))
    }

    /// A reporter's own notifications, newest first.
    pub async fn list(
        &self,
        reporter: &ReporterPseudonym,
        from_ms: i64,
        to_ms: i64,
        before: Option<String>,
        limit: usize,
    ) -> Result<Vec<RegistryEntry>, IntakeError> {
        let who = reporter.to_string();
        self.registry_call(move |r| r.list(&who, from_ms, to_ms, before.as_deref(), limit))
            .await
    }
}
