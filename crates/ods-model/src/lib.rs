//! The notification model of `ods`.
//!
//! A company doctor files a [`Notification`] of an occupational disease; later they may amend it
//! (a full replacement with a higher version), withdraw it (with a [`WithdrawalReason`]), or file a
//! [`ZeroReport`] ("no cases this month"). These are the facts the registry records
//! (NCvB, see `shared/domain.md` §2); no names, national ids, addresses, employer names or birth
//! dates of workers exist anywhere in this model, and the doctor is only ever present as a
//! [`ReporterPseudonym`].
//!
//! This crate has no I/O. Parsing and validating client input lives in `ods-validation`; the Avro
//! wire format lives in `ods-wire`.

mod categories;
mod event;
mod notification;
mod period;

pub use categories::{
    AbsenceBand, AgeBand, Consequence, DetectionRoute, PreventionAdvice, Sex, UnknownCode,
    WithdrawalReason,
};
pub use event::{
    Event, EventKind, NotificationAmended, NotificationFiled, NotificationWithdrawn, ZeroReport,
};
pub use notification::{Affiliation, ExposureRef, Notification, NotificationId, ReporterPseudonym};
pub use period::{Period, PeriodError};
