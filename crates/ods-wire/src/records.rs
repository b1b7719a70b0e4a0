//! Rust mirrors of the Avro records in `schemas/` (field for field).
//!
//! Categorical values are [`AvroEnum`]s here: strings holding the Avro enum symbols, serialized as
//! the schema's enum (symbol index); conversion to the domain types in [`crate::codec`] checks them.

use serde::{Deserialize, Serialize};

use crate::catalog::SchemaId;
use crate::codec::WireRecord;

pub use crate::avro_enum::{
    AbsenceBandSymbols, AvroEnum, ConsequenceSymbols, DetectionRouteSymbols,
    PreventionAdviceSymbols, SexSymbols, Symbols, WithdrawalReasonSymbols,
};

/// `ExposureRef`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExposureRefRecord {
    /// Exposure code.
    pub code: String,
    /// Primary exposure.
    pub primary: bool,
}

/// `NotificationContent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationContentRecord {
    /// Service id or null.
    pub service_id: Option<String>,
    /// Self-employed doctor.
    pub self_employed: bool,
    /// CAS code.
    pub diagnosis_code: String,
    /// Exposures.
    pub exposures: Vec<ExposureRefRecord>,
    /// Sector code.
    pub sector_code: String,
    /// ISCO-08 code.
    pub occupation_code: String,
    /// `M`, `F` or `X`.
    pub sex: AvroEnum<SexSymbols>,
    /// Birth year.
    pub birth_year: i32,
    /// Days since 1970-01-01.
    pub diagnosis_date: i32,
    /// Consequence symbol.
    pub consequence: AvroEnum<ConsequenceSymbols>,
    /// Absence band Avro symbol.
    pub absence_band: AvroEnum<AbsenceBandSymbols>,
    /// Detection route symbol.
    pub detection_route: AvroEnum<DetectionRouteSymbols>,
    /// Advice symbols.
    pub prevention_advice: Vec<AvroEnum<PreventionAdviceSymbols>>,
    /// Guideline code or null.
    pub guideline_code: Option<String>,
}

/// `NotificationFiled` (schema id 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationFiledRecord {
    /// Event UUID.
    pub event_id: String,
    /// Notification UUID.
    pub notification_id: String,
    /// Reporter pseudonym.
    pub reporter_pseudonym: String,
    /// Epoch milliseconds.
    pub notified_at: i64,
    /// Content.
    pub content: NotificationContentRecord,
}

/// `NotificationAmended` (schema id 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationAmendedRecord {
    /// Event UUID.
    pub event_id: String,
    /// Notification UUID.
    pub notification_id: String,
    /// New version.
    pub version: i32,
    /// Reporter pseudonym.
    pub reporter_pseudonym: String,
    /// First filing, epoch milliseconds.
    pub notified_at: i64,
    /// Amendment time, epoch milliseconds.
    pub amended_at: i64,
    /// Content.
    pub content: NotificationContentRecord,
}

/// `NotificationWithdrawn` (schema id 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationWithdrawnRecord {
    /// Event UUID.
    pub event_id: String,
    /// Notification UUID.
    pub notification_id: String,
    /// Version created by the withdrawal.
    pub version: i32,
    /// Reporter pseudonym.
    pub reporter_pseudonym: String,
    /// Epoch milliseconds.
    pub withdrawn_at: i64,
    /// Reason symbol.
    pub reason: AvroEnum<WithdrawalReasonSymbols>,
}

/// `ZeroReport` (schema id 4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZeroReportRecord {
    /// Event UUID.
    pub event_id: String,
    /// Reporter pseudonym.
    pub reporter_pseudonym: String,
    /// Service id or null.
    pub service_id: Option<String>,
    /// Self-employed doctor.
    pub self_employed: bool,
    /// `YYYY-MM`.
    pub period: String,
    /// Epoch milliseconds.
    pub reported_at: i64,
}

/// `NotificationValidated` (schema id 5): a version accepted by the processor, enriched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationValidated {
    /// Notification UUID.
    pub notification_id: String,
    /// Version.
    pub version: i32,
    /// Reporter pseudonym.
    pub reporter_pseudonym: String,
    /// First filing, epoch milliseconds.
    pub notified_at: i64,
    /// Content.
    pub content: NotificationContentRecord,
    /// Diagnosis group.
    pub diagnosis_group: String,
    /// Primary exposure code.
    pub primary_exposure: String,
    /// Group of the primary exposure.
    pub primary_exposure_group: String,
    /// Groups of all exposures (distinct, sorted).
    pub exposure_groups: Vec<String>,
    /// SBI section letter.
    pub sbi_section: String,
    /// Age band code.
    pub age_band: String,
    /// Notification month `YYYY-MM`.
    pub period: String,
    /// `YYYY-Qn`.
    pub quarter: String,
    /// Notification year.
    pub year: i32,
    /// ISO week of the diagnosis date `YYYY-Www`.
    pub iso_week: String,
    /// Source partition.
    pub source_partition: i32,
    /// Source offset.
    pub source_offset: i64,
}

/// One reason of a rejection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectionReason {
    /// Field path.
    pub field: String,
    /// The value as JSON text.
    pub value: String,
    /// Rule id.
    pub rule: String,
    /// English message.
    pub message: String,
    /// Dutch message.
    pub message_nl: String,
}

/// `NotificationRejected` (schema id 6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationRejected {
    /// Notification UUID, null for zero reports.
    pub notification_id: Option<String>,
    /// Version.
    pub version: i32,
    /// Reporter pseudonym.
    pub reporter_pseudonym: String,
    /// Every reason.
    pub reasons: Vec<RejectionReason>,
    /// Schema id of the original message.
    pub original_schema_id: i32,
    /// The original framed message.
    #[serde(with = "apache_avro::serde_avro_bytes")]
    pub original_payload: Vec<u8>,
    /// Source partition.
    pub source_partition: i32,
    /// Source offset.
    pub source_offset: i64,
    /// Epoch milliseconds.
    pub rejected_at: i64,
}

/// `DeadLetter` (schema id 7): a message that could not be decoded or processed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The error.
    pub error: String,
    /// The original bytes.
    #[serde(with = "apache_avro::serde_avro_bytes")]
    pub payload: Vec<u8>,
    /// Source topic.
    pub source_topic: String,
    /// Source partition.
    pub source_partition: i32,
    /// Source offset.
    pub source_offset: i64,
    /// Epoch milliseconds.
    pub failed_at: i64,
}

impl WireRecord for NotificationFiledRecord {
    const SCHEMA_ID: SchemaId = SchemaId::NOTIFICATION_FILED;
}
impl WireRecord for NotificationAmendedRecord {
    const SCHEMA_ID: SchemaId = SchemaId::NOTIFICATION_AMENDED;
}
impl WireRecord for NotificationWithdrawnRecord {
    const SCHEMA_ID: SchemaId = SchemaId::NOTIFICATION_WITHDRAWN;
}
impl WireRecord for ZeroReportRecord {
    const SCHEMA_ID: SchemaId = SchemaId::ZERO_REPORT;
}
impl WireRecord for NotificationValidated {
    const SCHEMA_ID: SchemaId = SchemaId::NOTIFICATION_VALIDATED;
}
impl WireRecord for NotificationRejected {
    const SCHEMA_ID: SchemaId = SchemaId::NOTIFICATION_REJECTED;
}
impl WireRecord for DeadLetter {
    const SCHEMA_ID: SchemaId = SchemaId::DEAD_LETTER;
}
