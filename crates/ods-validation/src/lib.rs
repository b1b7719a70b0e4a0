//! Where a notification is validated.
//!
//! [`validate_notification`] turns the JSON body a doctor sent into a typed
//! [`ods_model::Notification`], or returns **every** [`Violation`] at once (a doctor fixes all
//! problems in one go). Each violation names the field, the value, a stable [`Rule`] id and a
//! message in English and Dutch. The rules implement the NCvB acceptance rules
//! (`shared/domain.md` §2):
//!
//! 1. service filled or self-employed flagged; core fields filled;
//! 2. codes valid in the code list version in force on the diagnosis date;
//! 3. complaint codes (first digit after the letter is 1) rejected except
//!    H102, L101-L105, L112, L122 and R102;
//! 4. acute injuries from accidents are not occupational diseases;
//! 5. no direct identifiers: the contract has no field that could hold one and unknown fields are
//!    rejected; string lengths are bounded.
//!
//! Rule 6 (probable duplicates) needs state and is a warning, computed by the processor.
//! Everything here is pure: no clock (the caller passes `today`), no I/O.

mod rules;
mod violation;

pub use rules::{
    validate_notification, validate_period, Limits, COMPLAINT_CODE_EXCEPTIONS, NOTIFICATION_FIELDS,
};
pub use violation::{Rule, Violation};
