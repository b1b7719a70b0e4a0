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

/// The forms in which both stores keep a decision's results: the new state as JSON and the
/// enriched record as Avro. They depend on the record alone, so they are made when the record
/// is assessed, off the store's critical path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredForms {
    /// The new [`NotificationState`] as JSON.
    pub state_json: String,
    /// The [`NotificationValidated`] record as Avro datum bytes (empty when there is none); an
    /// encoding failure is kept as its message, for the store to report.
    pub validated_avro: Result<Vec<u8>, String>,
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
        validated: Arc<NotificationValidated>,
        /// The stored forms of `state` and `validated`.
        stored: Arc<StoredForms>,
    },
    /// A version that breaks a rule: retract what the notification contributed, record why.
    Reject {
        /// New state.
        state: NotificationState,
        /// Contribution to take away.
        retract: Option<Contribution>,
        /// The rejection for the store, the reporter and `ods.rejections.v1`.
        rejection: Arc<NotificationRejected>,
        /// The stored form of `state`.
        stored: Arc<StoredForms>,
    },
    /// A withdrawal: retract, final.
    Withdraw {
        /// New state.
        state: NotificationState,
        /// Contribution to take away.
        retract: Option<Contribution>,
        /// The stored form of `state`.
        stored: Arc<StoredForms>,
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

    /// Decodes and judges one record on its own: the code lists, the rules and the enrichment,
    /// everything that does not depend on the stored state of its notification. Assessing needs
    /// no store, so a runner can assess the next batch while the store writes the previous one;
    /// [`Processor::decide_assessed`] completes the decision once the state is known.
    pub fn assess(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        payload: &[u8],
        now: DateTime<Utc>,
    ) -> Assessed {
        let outcome = match self.decode(topic, partition, offset, payload, now) {
            Err(dead) => Outcome::Undecodable(dead),
            Ok(event) => {
                let verdict = self.verdict(&event, partition, offset, payload);
                decoded(event, verdict)
            }
        };
        Assessed { offset, outcome }
    }

    /// Decides what a decoded event does, given the stored state of its notification (assesses
    /// and decides in one step; [`Processor::assess`] and [`Processor::decide_assessed`] split
    /// the two).
    pub fn decide(
        &self,
        previous: Option<&NotificationState>,
        event: &Event,
        partition: i32,
        offset: i64,
        original_payload: &[u8],
    ) -> Decision {
        let verdict = self.verdict(event, partition, offset, original_payload);
        self.decide_assessed(
            previous,
            &Assessed {
                offset,
                outcome: decoded(event.clone(), verdict),
            },
        )
    }

    /// Completes the decision of an assessed record with the stored state of its notification
    /// (`None` when it has none): versions, withdrawals and what to retract. The assessment is
    /// only read, so a batch that failed can be decided again from the same assessments.
    pub fn decide_assessed(
        &self,
        previous: Option<&NotificationState>,
        assessed: &Assessed,
    ) -> Decision {
        let (event, verdict, stored) = match &assessed.outcome {
            Outcome::Undecodable(dead) => return Decision::DeadLetter(dead.clone()),
            Outcome::Decoded {
                event,
                verdict,
                stored,
            } => (event, verdict, stored),
        };
        if let Event::ZeroReport(z) = event {
            return Decision::ZeroReport {
                reporter: z.reporter.to_string(),
                service: z.affiliation.label().to_string(),
                period: z.period,
            };
        }
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
        let (Some(state), Some(stored)) = (new_state(event, verdict.as_ref()), stored) else {
            // a filing or amendment always has a verdict
            return Decision::Skip {
                reason: "unreachable",
            };
        };
        let stored = stored.clone();
        match (event, verdict) {
            (Event::Withdrawn(_), _) => Decision::Withdraw {
                state,
                retract,
                stored,
            },
            (_, Some(Verdict::Counts { add, validated })) => Decision::Count {
                state,
                retract,
                add: add.clone(),
                validated: validated.clone(),
                stored,
            },
            (_, Some(Verdict::Rejected(rejection))) => Decision::Reject {
                state,
                retract,
                rejection: rejection.clone(),
                stored,
            },
            (_, None) => Decision::Skip {
                reason: "unreachable",
            },
        }
    }

    /// The verdict on a filing's or amendment's content; `None` for other events.
    fn verdict(
        &self,
        event: &Event,
        partition: i32,
        offset: i64,
        payload: &[u8],
    ) -> Option<Verdict> {
        match event {
            Event::Filed(f) => Some(self.judge(
                event,
                &f.notification,
                f.notified_at,
                f.notified_at,
                (partition, offset, payload),
            )),
            Event::Amended(a) => Some(self.judge(
                event,
                &a.notification,
                a.notified_at,
                a.amended_at,
                (partition, offset, payload),
            )),
            Event::Withdrawn(_) | Event::ZeroReport(_) => None,
        }
    }

    fn judge(
        &self,
        event: &Event,
        notification: &Notification,
        notified_at: DateTime<Utc>,
        changed_at: DateTime<Utc>,
        (partition, offset, payload): (i32, i64, &[u8]),
    ) -> Verdict {
        let version = event.version();
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
                Verdict::Counts {
                    add,
                    validated: Arc::new(validated),
                }
            }
            Err(violations) => Verdict::Rejected(Arc::new(NotificationRejected {
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
            })),
        }
    }
}

/// A record decoded and judged on its own ([`Processor::assess`]), waiting for the stored state
/// of its notification ([`Processor::decide_assessed`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Assessed {
    offset: i64,
    outcome: Outcome,
}

// Almost every record is decoded and has a verdict: the large variants are the common case, so
// boxing them would only add an allocation per record.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Undecodable(Box<DeadLetter>),
    Decoded {
        event: Event,
        verdict: Option<Verdict>,
        /// For a record about a notification: the stored forms of what it would make of it.
        stored: Option<Arc<StoredForms>>,
    },
}

/// A decoded record's outcome, with the stored forms of its state and record made now.
fn decoded(event: Event, verdict: Option<Verdict>) -> Outcome {
    let stored = new_state(&event, verdict.as_ref()).map(|state| {
        Arc::new(StoredForms {
            state_json: serde_json::to_string(&state).unwrap_or_default(),
            validated_avro: match &verdict {
                Some(Verdict::Counts { validated, .. }) => {
                    ods_wire::encode_record(validated.as_ref()).map_err(|e| e.to_string())
                }
                _ => Ok(Vec::new()),
            },
        })
    });
    Outcome::Decoded {
        event,
        verdict,
        stored,
    }
}

/// The state a notification has after this record, when the record is not skipped (`None` for
/// a zero report, or a filing or amendment without a verdict).
fn new_state(event: &Event, verdict: Option<&Verdict>) -> Option<NotificationState> {
    let version = event.version();
    match (event, verdict) {
        (Event::ZeroReport(_), _) => None,
        (Event::Withdrawn(_), _) => Some(NotificationState {
            version,
            status: Status::Withdrawn,
            counted: None,
        }),
        (_, Some(Verdict::Counts { add, .. })) => Some(NotificationState {
            version,
            status: Status::Validated,
            counted: Some(add.clone()),
        }),
        (_, Some(Verdict::Rejected(_))) => Some(NotificationState {
            version,
            status: Status::Rejected,
            counted: None,
        }),
        (_, None) => None,
    }
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
enum Verdict {
    Counts {
        add: Contribution,
        validated: Arc<NotificationValidated>,
    },
    Rejected(Arc<NotificationRejected>),
}

impl Assessed {
    /// The record's offset in its partition.
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// The notification the record is about (`None` for a zero report or undecodable bytes).
    pub fn notification_id(&self) -> Option<String> {
        match &self.outcome {
            Outcome::Decoded { event, .. } => event.notification_id().map(|id| id.to_string()),
            Outcome::Undecodable(_) => None,
        }
    }

    /// The notification and the pseudonym of the reporter of this version, for a record about
    /// a notification.
    pub fn subject(&self) -> Option<(String, String)> {
        match &self.outcome {
            Outcome::Decoded { event, .. } => event
                .notification_id()
                .map(|id| (id.to_string(), event.reporter().to_string())),
            Outcome::Undecodable(_) => None,
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
