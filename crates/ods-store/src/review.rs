//! Signals as the stores keep them, and their expert review (`new -> under_review -> confirmed |
//! dismissed`, as the NCvB SIGNAAL and RNV3P emergence groups work): the transition rule and the
//! audit entry it leaves are decided here, once, for both stores.
//!
//! A signal is recorded the first time a sweep raises it (ids are deterministic, so a later
//! sweep that finds it again changes nothing: its review state and first numbers stay). Every
//! review change writes a new revision of the signal and an audit entry (who, when, from, to,
//! note); the audit trail is never changed or deleted, and `ods replay` (which rebuilds derived
//! data) leaves signals and their reviews alone.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Review status of a signal.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SignalStatus {
    /// Raised by a sweep, not looked at yet.
    New,
    /// An expert is looking at it.
    UnderReview,
    /// Confirmed as a real signal (terminal).
    Confirmed,
    /// Dismissed (terminal).
    Dismissed,
}

impl SignalStatus {
    /// Every status.
    pub const ALL: [SignalStatus; 4] = [
        SignalStatus::New,
        SignalStatus::UnderReview,
        SignalStatus::Confirmed,
        SignalStatus::Dismissed,
    ];

    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            SignalStatus::New => "new",
            SignalStatus::UnderReview => "under_review",
            SignalStatus::Confirmed => "confirmed",
            SignalStatus::Dismissed => "dismissed",
        }
    }

    /// Parses a stable name.
    pub fn parse(text: &str) -> Option<SignalStatus> {
        SignalStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The statuses a signal may move to from this one.
    pub fn next(self) -> &'static [SignalStatus] {
        match self {
            SignalStatus::New => &[SignalStatus::UnderReview],
            SignalStatus::UnderReview => &[SignalStatus::Confirmed, SignalStatus::Dismissed],
            SignalStatus::Confirmed | SignalStatus::Dismissed => &[],
        }
    }
}

/// A signal as stored, with its review state.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SignalRecord {
    /// Deterministic id (kind, subject, period).
    pub id: String,
    /// `aberration`, `under_reporting` or `emerging_pair`.
    pub kind: String,
    /// What it is about (e.g. `sbi_section`, `diagnosis_group`; `diagnosis`, `exposure`).
    pub subject: BTreeMap<String, String>,
    /// The month, year or window it is about.
    pub period: String,
    /// The numbers that raised it.
    pub numbers: BTreeMap<String, f64>,
    /// The method, e.g. `farrington_flexible`.
    pub method: String,
    /// One line for people who act on it.
    pub explanation: String,
    /// Review status.
    pub status: SignalStatus,
    /// The note of the latest review change, if any.
    pub note: Option<String>,
    /// When a sweep first raised it (Unix milliseconds).
    pub detected_at_ms: i64,
    /// When it last changed (Unix milliseconds).
    pub updated_at_ms: i64,
    /// Incremented by every review change (1 when raised).
    pub revision: u64,
}

/// One review change, kept forever.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// The signal.
    pub signal_id: String,
    /// When (Unix milliseconds).
    pub at_ms: i64,
    /// Who: the public id of the reviewer's token.
    pub actor: String,
    /// Status before.
    pub from_status: SignalStatus,
    /// Status after.
    pub to_status: SignalStatus,
    /// Why.
    pub note: String,
    /// The signal's revision this change created.
    pub revision: u64,
}

/// Why a review change is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewError {
    /// The transition is not allowed.
    #[error("a {} signal cannot become {}; allowed: {}", from.as_str(), to.as_str(), allowed(*from))]
    Transition {
        /// Current status.
        from: SignalStatus,
        /// Asked status.
        to: SignalStatus,
    },
    /// Someone changed the signal since the caller read it.
    #[error("the signal is at revision {current}, not {expected}: read it again")]
    Stale {
        /// The revision the caller read.
        expected: u64,
        /// The stored revision.
        current: u64,
    },
    /// Confirming or dismissing needs a reason.
    #[error("a note is required to confirm or dismiss a signal")]
    NoteRequired,
}

fn allowed(from: SignalStatus) -> String {
    let next: Vec<&str> = from.next().iter().map(|s| s.as_str()).collect();
    if next.is_empty() {
        "none (final)".to_string()
    } else {
        next.join(", ")
    }
}

/// Longest review note kept, in characters.
pub const MAX_NOTE_CHARS: usize = 2000;

/// Applies a review change to `current`: the new revision and its audit entry.
/// `expected_revision` (when given) must be the stored one.
pub fn review(
    current: &SignalRecord,
    to: SignalStatus,
    actor: &str,
    note: &str,
    expected_revision: Option<u64>,
    now_ms: i64,
) -> Result<(SignalRecord, AuditEntry), ReviewError> {
    if let Some(expected) = expected_revision {
        if expected != current.revision {
            return Err(ReviewError::Stale {
                expected,
                current: current.revision,
            });
        }
    }
    if !current.status.next().contains(&to) {
        return Err(ReviewError::Transition {
            from: current.status,
            to,
        });
    }
    let note: String = note.trim().chars().take(MAX_NOTE_CHARS).collect();
    if note.is_empty() && matches!(to, SignalStatus::Confirmed | SignalStatus::Dismissed) {
        return Err(ReviewError::NoteRequired);
    }
    let revision = current.revision + 1;
    let updated = SignalRecord {
        status: to,
        note: (!note.is_empty()).then(|| note.clone()),
        updated_at_ms: now_ms.max(current.updated_at_ms),
        revision,
        ..current.clone()
    };
    let entry = AuditEntry {
        signal_id: current.id.clone(),
        at_ms: updated.updated_at_ms,
        actor: actor.to_string(),
        from_status: current.status,
        to_status: to,
        note,
        revision,
    };
    Ok((updated, entry))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly by design

    use super::*;

    fn raised() -> SignalRecord {
        SignalRecord {
            id: "s1".into(),
            kind: "aberration".into(),
            subject: BTreeMap::from([("sbi_section".into(), "C".into())]),
            period: "2021-03".into(),
            numbers: BTreeMap::from([("observed".into(), 7.0)]),
            method: "farrington_flexible".into(),
            explanation: "7 notifications ...".into(),
            status: SignalStatus::New,
            note: None,
            detected_at_ms: 1000,
            updated_at_ms: 1000,
            revision: 1,
        }
    }

    #[test]
    fn new_then_under_review_then_confirmed_with_an_audit_entry_each() {
        let (reviewing, first) = review(
            &raised(),
            SignalStatus::UnderReview,
            "tok1",
            "",
            Some(1),
            2000,
        )
        .unwrap();
        assert_eq!(reviewing.status, SignalStatus::UnderReview);
        assert_eq!(reviewing.revision, 2);
        assert_eq!(reviewing.note, None);
        assert_eq!(first.from_status, SignalStatus::New);
        assert_eq!(first.actor, "tok1");
        let (done, second) = review(
            &reviewing,
            SignalStatus::Confirmed,
            "tok2",
            "  bakery visited  ",
            None,
            3000,
        )
        .unwrap();
        assert_eq!(done.status, SignalStatus::Confirmed);
        assert_eq!(done.note.as_deref(), Some("bakery visited"));
        assert_eq!(second.revision, 3);
        assert_eq!(second.at_ms, 3000);
        // the first numbers stay
        assert_eq!(done.numbers, raised().numbers);
    }

    #[test]
    fn refused_changes_say_why() {
        let e = review(&raised(), SignalStatus::Confirmed, "t", "x", None, 2).unwrap_err();
        assert_eq!(
            e.to_string(),
            "a new signal cannot become confirmed; allowed: under_review"
        );
        let (reviewing, _) =
            review(&raised(), SignalStatus::UnderReview, "t", "", None, 2).unwrap();
        assert_eq!(
            review(&reviewing, SignalStatus::Dismissed, "t", " ", None, 3).unwrap_err(),
            ReviewError::NoteRequired
        );
        assert_eq!(
            review(&reviewing, SignalStatus::Dismissed, "t", "x", Some(1), 3).unwrap_err(),
            ReviewError::Stale {
                expected: 1,
                current: 2
            }
        );
        let (dismissed, _) =
            review(&reviewing, SignalStatus::Dismissed, "t", "chance", None, 3).unwrap();
        let e = review(&dismissed, SignalStatus::UnderReview, "t", "x", None, 4).unwrap_err();
        assert!(e.to_string().ends_with("allowed: none (final)"), "{e}");
    }

    #[test]
    fn statuses_round_trip() {
        for s in SignalStatus::ALL {
            assert_eq!(SignalStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(SignalStatus::parse("open"), None);
    }
}
