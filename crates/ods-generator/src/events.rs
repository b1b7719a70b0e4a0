//! Demo records as the events intake would have written, for tests and benchmarks of the
//! processor and the stores that need a realistic log without running intake.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use ods_codelists::CodeLists;
use ods_model::{
    Affiliation, Event, NotificationAmended, NotificationFiled, NotificationId,
    NotificationWithdrawn, Period, ReporterPseudonym, WithdrawalReason, ZeroReport,
};
use ods_validation::{validate_notification, Limits};
use uuid::Uuid;

use crate::generate::DemoRecord;

/// The events of a demo data set, with the ids of the filed notifications.
#[derive(Debug, Clone)]
pub struct DemoEvents {
    /// The events, in record order.
    pub events: Vec<Event>,
    /// The notification ids, in filing order.
    pub ids: Vec<String>,
}

/// A stable, unkeyed stand-in for intake's keyed HMAC pseudonym of a BIG number (FNV-1a), for
/// tests only: real pseudonyms come from `ods-identity` with a secret key.
pub fn test_pseudonym(big: &str) -> ReporterPseudonym {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in big.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
    }
    ReporterPseudonym::from_hex(&format!("{h:016x}{:016x}", h.rotate_left(17)))
        .unwrap_or_else(|| unreachable!("32 hex digits are a valid pseudonym"))
}

/// Turns demo records into events as intake would: records intake refuses are left out, ids and
/// event ids are deterministic (from the record's position), versions count up per
/// notification. When `complaint_every` is `Some(n)`, every n-th filing gets the complaint
/// code `L111`, which intake accepts and the processor rejects.
pub fn demo_events(
    records: &[DemoRecord],
    lists: &CodeLists,
    complaint_every: Option<usize>,
) -> DemoEvents {
    demo_events_in(records, lists, complaint_every, 0)
}

/// [`demo_events`] with ids in their own `namespace` (the upper 32 bits of every notification
/// and event id), so several generated data sets can share one log without colliding ids.
pub fn demo_events_in(
    records: &[DemoRecord],
    lists: &CodeLists,
    complaint_every: Option<usize>,
    namespace: u32,
) -> DemoEvents {
    let space = u128::from(namespace) << 96;
    struct Filed {
        id: NotificationId,
        reporter: ReporterPseudonym,
        version: u32,
        notified_at: DateTime<Utc>,
    }
    let mut filed: HashMap<&str, Filed> = HashMap::new();
    let mut events = Vec::new();
    let mut ids = Vec::new();
    let limits = Limits::default();
    for (i, record) in records.iter().enumerate() {
        let n = i as u128;
        let event = match record {
            DemoRecord::Notification {
                reference,
                big,
                at,
                body,
                ..
            } => {
                let Ok(mut notification) =
                    validate_notification(body, lists, at.date_naive(), &limits)
                else {
                    continue; // intake refuses it
                };
                if complaint_every.is_some_and(|every| every > 0 && i % every == 0) {
                    notification.diagnosis_code = "L111".into();
                }
                let id = NotificationId(Uuid::from_u128(space | (n + 1)));
                ids.push(id.to_string());
                filed.insert(
                    reference.as_str(),
                    Filed {
                        id,
                        reporter: test_pseudonym(big),
                        version: 1,
                        notified_at: *at,
                    },
                );
                Event::Filed(NotificationFiled {
                    event_id: Uuid::from_u128(space | (1 << 64) | n),
                    notification_id: id,
                    reporter: test_pseudonym(big),
                    notified_at: *at,
                    notification,
                })
            }
            DemoRecord::Amendment {
                reference,
                at,
                body,
                ..
            } => {
                let Some(f) = filed.get_mut(reference.as_str()) else {
                    continue;
                };
                let Ok(notification) = validate_notification(body, lists, at.date_naive(), &limits)
                else {
                    continue;
                };
                f.version += 1;
                Event::Amended(NotificationAmended {
                    event_id: Uuid::from_u128(space | (2 << 64) | n),
                    notification_id: f.id,
                    version: f.version,
                    reporter: f.reporter.clone(),
                    notified_at: f.notified_at,
                    amended_at: *at,
                    notification,
                })
            }
            DemoRecord::Withdrawal {
                reference,
                at,
                reason,
                ..
            } => {
                let Some(f) = filed.get_mut(reference.as_str()) else {
                    continue;
                };
                let Ok(reason) = WithdrawalReason::parse(reason) else {
                    continue;
                };
                f.version += 1;
                Event::Withdrawn(NotificationWithdrawn {
                    event_id: Uuid::from_u128(space | (3 << 64) | n),
                    notification_id: f.id,
                    version: f.version,
                    reporter: f.reporter.clone(),
                    withdrawn_at: *at,
                    reason,
                })
            }
            DemoRecord::ZeroReport {
                big,
                at,
                period,
                service_id,
                ..
            } => {
                let Ok(period) = Period::parse(period) else {
                    continue;
                };
                Event::ZeroReport(ZeroReport {
                    event_id: Uuid::from_u128(space | (4 << 64) | n),
                    reporter: test_pseudonym(big),
                    affiliation: match service_id {
                        Some(s) => Affiliation::Service(s.clone()),
                        None => Affiliation::SelfEmployed,
                    },
                    period,
                    reported_at: *at,
                })
            }
        };
        events.push(event);
    }
    DemoEvents { events, ids }
}
