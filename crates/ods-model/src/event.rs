//! The events that cross the log (Kafka topic `ods.notifications.v1` or the embedded log).
//!
//! Every event is keyed by the notification id (zero reports by the reporter pseudonym), so all
//! versions of one notification are in one partition, in order.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::categories::WithdrawalReason;
use crate::notification::{Affiliation, Notification, NotificationId, ReporterPseudonym};
use crate::period::Period;

/// A new notification (version 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationFiled {
    /// Unique id of this event.
    pub event_id: Uuid,
    /// The notification's id.
    pub notification_id: NotificationId,
    /// Pseudonym of the filing doctor.
    pub reporter: ReporterPseudonym,
    /// When the notification was filed (the registry counts by this date).
    pub notified_at: DateTime<Utc>,
    /// The content.
    pub notification: Notification,
}

/// A full replacement of a notification's content, as a new version (>= 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationAmended {
    /// Unique id of this event.
    pub event_id: Uuid,
    /// The notification's id.
    pub notification_id: NotificationId,
    /// The new version, one more than the version it replaces.
    pub version: u32,
    /// Pseudonym of the doctor.
    pub reporter: ReporterPseudonym,
    /// When the notification was first filed (unchanged by amendments).
    pub notified_at: DateTime<Utc>,
    /// When this amendment was made.
    pub amended_at: DateTime<Utc>,
    /// The complete new content.
    pub notification: Notification,
}

/// The withdrawal of a notification; it then counts nowhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationWithdrawn {
    /// Unique id of this event.
    pub event_id: Uuid,
    /// The notification's id.
    pub notification_id: NotificationId,
    /// The version this withdrawal creates (one more than the last).
    pub version: u32,
    /// Pseudonym of the doctor.
    pub reporter: ReporterPseudonym,
    /// When it was withdrawn.
    pub withdrawn_at: DateTime<Utc>,
    /// Why.
    pub reason: WithdrawalReason,
}

/// "No cases this month": tells a silent doctor from one with nothing to notify (THOR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZeroReport {
    /// Unique id of this event.
    pub event_id: Uuid,
    /// Pseudonym of the doctor.
    pub reporter: ReporterPseudonym,
    /// The doctor's service or self-employed.
    pub affiliation: Affiliation,
    /// The month without cases.
    pub period: Period,
    /// When it was reported.
    pub reported_at: DateTime<Utc>,
}

/// Any event a doctor's action produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// See [`NotificationFiled`].
    Filed(NotificationFiled),
    /// See [`NotificationAmended`].
    Amended(NotificationAmended),
    /// See [`NotificationWithdrawn`].
    Withdrawn(NotificationWithdrawn),
    /// See [`ZeroReport`].
    ZeroReport(ZeroReport),
}

/// The kind of an [`Event`], for metrics labels and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// Filed.
    Filed,
    /// Amended.
    Amended,
    /// Withdrawn.
    Withdrawn,
    /// Zero report.
    ZeroReport,
}

impl EventKind {
    /// Label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Filed => "filed",
            EventKind::Amended => "amended",
            EventKind::Withdrawn => "withdrawn",
            EventKind::ZeroReport => "zero_report",
        }
    }
}

impl Event {
    /// The kind of event.
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Filed(_) => EventKind::Filed,
            Event::Amended(_) => EventKind::Amended,
            Event::Withdrawn(_) => EventKind::Withdrawn,
            Event::ZeroReport(_) => EventKind::ZeroReport,
        }
    }

    /// The partitioning key: the notification id, or for zero reports the reporter pseudonym.
    pub fn key(&self) -> String {
        match self {
            Event::Filed(e) => e.notification_id.to_string(),
            Event::Amended(e) => e.notification_id.to_string(),
            Event::Withdrawn(e) => e.notification_id.to_string(),
            Event::ZeroReport(e) => e.reporter.to_string(),
        }
    }

    /// The notification this event belongs to, if any.
    pub fn notification_id(&self) -> Option<NotificationId> {
        match self {
            Event::Filed(e) => Some(e.notification_id),
            Event::Amended(e) => Some(e.notification_id),
            Event::Withdrawn(e) => Some(e.notification_id),
            Event::ZeroReport(_) => None,
        }
    }

    /// The notification version this event creates (1 for filings; 0 for zero reports).
    pub fn version(&self) -> u32 {
        match self {
            Event::Filed(_) => 1,
            Event::Amended(e) => e.version,
            Event::Withdrawn(e) => e.version,
            Event::ZeroReport(_) => 0,
        }
    }

    /// The reporting doctor.
    pub fn reporter(&self) -> &ReporterPseudonym {
        match self {
            Event::Filed(e) => &e.reporter,
            Event::Amended(e) => &e.reporter,
            Event::Withdrawn(e) => &e.reporter,
            Event::ZeroReport(e) => &e.reporter,
        }
    }
}
