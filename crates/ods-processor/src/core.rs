//! The decision function.

use std::sync::Arc;

use chrono::{DateTime, Datelike, Utc};
use ods_codelists::CodeLists;
use ods_model::{Event, Notification, Period};
use ods_validation::{validate_notification, Limits, Violation};
use ods_wire::records::{
    DeadLetter, NotificationContentRecord, NotificationRejected, NotificationValidated,
    RejectionReason,
};
use serde::{Deserialize, Serialize};

use crate::keys::Contribution;

/// Where a notification stands after its latest processed version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Valid and counted.
    Validated,
    /// The latest version broke a rule; not counted.
    Rejected,
    /// Withdrawn by the doctor; not counted, final.
    Withdrawn,
}

impl Status {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Validated => "validated",
            Status::Rejected => "rejected",
            Status::Withdrawn => "withdrawn",
        }
    }

    /// Parses the stable name.
    pub fn parse(text: &str) -> Option<Status> {
        match text {
            "validated" => Some(Status::Validated),
            "rejected" => Some(Status::Rejected),
            "withdrawn" => Some(Status::Withdrawn),
            _ => None,
        }
    }
}

/// The per-notification state a store keeps between records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationState {
    /// Latest processed version.
    pub version: u32,
    /// Status after that version.
    pub status: Status,
    /// What the notification currently contributes to the aggregates (when validated).
    pub counted: Option<Contribution>,
}

/// What to do with one record.
// Decisions are made and applied one at a time, never collected, so the size difference between
// variants costs nothing worth an extra allocation per record.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// A valid version: retract the previous contribution (if any), add this one, store the
    /// enriched record and the new state.
    Count {
        /// New state.
        state: NotificationState,
        /// Contribution to take away first.
        retract: Option<Contribution>,
        /// Contribution to add.
        add: Contribution,
        /// The enriched record for the store and `ods.validated.v1`.
        validated: Box<NotificationValidated>,
    },
    /// A version that breaks a rule: retract what the notification contributed, record why.
    Reject {
        /// New state.
        state: NotificationState,
        /// Contribution to take away.
        retract: Option<Contribution>,
        /// The rejection for the store, the reporter and `ods.rejections.v1`.
        rejection: Box<NotificationRejected>,
    },
    /// A withdrawal: retract, final.
    Withdraw {
        /// New state.
        state: NotificationState,
        /// Contribution to take away.
        retract: Option<Contribution>,
    },
    /// A zero report for one reporter and month (idempotent by (reporter, period)).
    ZeroReport {
        /// Reporter pseudonym.
        reporter: String,
        /// Service label.
        service: String,
        /// Month.
        period: Period,
    },
    /// Nothing to change: a redelivery, a stale version, or a change to a withdrawn notification.
    Skip {
        /// Why.
        reason: &'static str,
    },
    /// An undecodable record: goes to the dead-letter table/topic, never stops the partition.
    DeadLetter(Box<DeadLetter>),
}

impl Decision {
    /// A low-cardinality label for metrics.
    pub fn outcome(&self) -> &'static str {
        match self {
            Decision::Count { .. } => "validated",
            Decision::Reject { .. } => "rejected",
            Decision::Withdraw { .. } => "withdrawn",
            Decision::ZeroReport { .. } => "zero_report",
            Decision::Skip { .. } => "skipped",
            Decision::DeadLetter(_) => "dead_letter",
        }
    }
}

/// The processing core, holding the code lists and rule limits.
#[derive(Debug, Clone)]
pub struct Processor {
    lists: Arc<CodeLists>,
    limits: Limits,
}

impl Processor {
    /// A processor with these code lists.
    pub fn new(lists: Arc<CodeLists>, limits: Limits) -> Self {
        Processor { lists, limits }
    }

    /// The code lists in use.
    pub fn lists(&self) -> &CodeLists {
        &self.lists
    }

    /// Decodes a framed record; undecodable bytes become a dead letter.
    pub fn decode(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        payload: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Event, Box<DeadLetter>> {
        ods_wire::decode_event(payload).map_err(|e| {
            Box::new(DeadLetter {
                error: e.to_string(),
                payload: payload.to_vec(),
                source_topic: topic.to_string(),
                source_partition: partition,
                source_offset: offset,
                failed_at: now.timestamp_millis(),
            })
        })
    }

    /// Decides what a decoded event does, given the stored state of its notification.
    pub fn decide(
        &self,
        previous: Option<&NotificationState>,
        event: &Event,
        partition: i32,
        offset: i64,
        original_payload: &[u8],
    ) -> Decision {
        match event {
            Event::ZeroReport(z) => Decision::ZeroReport {
                reporter: z.reporter.to_string(),
                service: z.affiliation.label().to_string(),
                period: z.period,
            },
            Event::Filed(_) | Event::Amended(_) | Event::Withdrawn(_) => {
                let version = event.version();
                if let Some(prev) = previous {
                    if prev.status == Status::Withdrawn {
                        return Decision::Skip {
                            reason: "withdrawn",
                        };
                    }
                    if prev.version >= version {
                        return Decision::Skip {
                            reason: "stale_version",
                        };
                    }
                }
                let retract = previous.and_then(|p| p.counted.clone());
                match event {
                    Event::Withdrawn(_) => Decision::Withdraw {
                        state: NotificationState {
                            version,
                            status: Status::Withdrawn,
                            counted: None,
                        },
                        retract,
                    },
                    Event::Filed(f) => self.judge(
                        version,
                        retract,
                        event,
                        &f.notification,
                        f.notified_at,
                        f.notified_at,
                        (partition, offset, original_payload),
                    ),
                    Event::Amended(a) => self.judge(
                        version,
                        retract,
                        event,
                        &a.notification,
                        a.notified_at,
                        a.amended_at,
                        (partition, offset, original_payload),
                    ),
                    Event::ZeroReport(_) => Decision::Skip {
                        reason: "unreachable",
                    },
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn judge(
        &self,
        version: u32,
        retract: Option<Contribution>,
        event: &Event,
        notification: &Notification,
        notified_at: DateTime<Utc>,
        changed_at: DateTime<Utc>,
        (partition, offset, payload): (i32, i64, &[u8]),
    ) -> Decision {
        let period = Period::of(notified_at.date_naive());
        let body = serde_json::to_value(notification).unwrap_or(serde_json::Value::Null);
        let verdict =
            validate_notification(&body, &self.lists, changed_at.date_naive(), &self.limits)
                .and_then(|n| Contribution::of(&n, period, &self.lists).ok_or_else(Vec::new));
        let reporter = event.reporter().to_string();
        let notification_id = event.notification_id().map(|id| id.to_string());
        match verdict {
            Ok(add) => {
                let validated = NotificationValidated {
                    notification_id: notification_id.unwrap_or_default(),
                    version: i32::try_from(version).unwrap_or(i32::MAX),
                    reporter_pseudonym: reporter,
                    notified_at: notified_at.timestamp_millis(),
                    content: NotificationContentRecord::from_notification(notification),
                    diagnosis_group: add.key.diagnosis_group.clone(),
                    primary_exposure: add.key.primary_exposure.clone(),
                    primary_exposure_group: add.key.primary_exposure_group.clone(),
                    exposure_groups: {
                        let mut groups: Vec<String> =
                            add.exposures.iter().map(|(_, g)| g.clone()).collect();
                        groups.sort();
                        groups.dedup();
                        groups
                    },
                    sbi_section: add.key.sbi_section.clone(),
                    age_band: add.key.age_band.clone(),
                    period: add.key.period.clone(),
                    quarter: format!("{}-Q{}", add.key.year, add.key.quarter),
                    year: add.key.year,
                    iso_week: {
                        let w = notification.diagnosis_date.iso_week();
                        format!("{}-W{:02}", w.year(), w.week())
                    },
                    source_partition: partition,
                    source_offset: offset,
                };
                Decision::Count {
                    state: NotificationState {
                        version,
                        status: Status::Validated,
                        counted: Some(add.clone()),
                    },
                    retract,
                    add,
                    validated: Box::new(validated),
                }
            }
            Err(violations) => Decision::Reject {
                state: NotificationState {
                    version,
                    status: Status::Rejected,
                    counted: None,
                },
                retract,
                rejection: Box::new(NotificationRejected {
                    notification_id,
                    version: i32::try_from(version).unwrap_or(i32::MAX),
                    reporter_pseudonym: reporter,
                    reasons: reasons(&violations),
                    original_schema_id: ods_wire::unframe(payload)
                        .map(|(id, _)| id.0 as i32)
                        .unwrap_or(-1),
                    original_payload: payload.to_vec(),
                    source_partition: partition,
                    source_offset: offset,
                    rejected_at: changed_at.timestamp_millis(),
                }),
            },
        }
    }
}

fn reasons(violations: &[Violation]) -> Vec<RejectionReason> {
    if violations.is_empty() {
        return vec![RejectionReason {
            field: String::new(),
            value: "null".into(),
            rule: "codelist.inconsistent".into(),
            message: "a code of this notification is missing from the code lists".into(),
            message_nl: "een code van deze melding ontbreekt in de codelijsten".into(),
        }];
    }
    violations
        .iter()
        .map(|v| RejectionReason {
            field: v.field.clone(),
            value: v.value.to_string(),
            rule: v.rule.id().to_string(),
            message: v.message.clone(),
            message_nl: v.message_nl.clone(),
        })
        .collect()
}
