//! The rows written to ClickHouse, one struct per table (RowBinary, field order = column order
//! of the insert).

use clickhouse::Row;
use serde::{Deserialize, Serialize};

/// A row type of one table.
pub trait TableRow: Row + Serialize + Send + Sync + 'static {
    /// Table name (without database).
    const TABLE: &'static str;
    /// Column names and ClickHouse types, in field order (checked against the schema by the
    /// SQL check: a RowBinary row must match its columns' types exactly).
    const TYPES: &'static [(&'static str, &'static str)];
    /// The row's keys, for error messages that name the row.
    fn describe(&self) -> String;
}

/// The latest processed version of a notification.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct NotificationRow {
    /// Id.
    pub notification_id: String,
    /// Version.
    pub version: u32,
    /// `validated`, `rejected`, `withdrawn`.
    pub status: String,
    /// Reporter pseudonym.
    pub reporter: String,
    /// JSON of `ods_processor::NotificationState`.
    pub state: String,
    /// Enriched record (Avro, hex) when validated, else empty.
    pub validated_avro_hex: String,
    /// Source partition.
    pub source_partition: i32,
    /// Source offset: the row's version.
    pub source_offset: i64,
    /// Write time (ms).
    pub updated_at_ms: i64,
}

impl TableRow for NotificationRow {
    const TABLE: &'static str = "notifications";
    const TYPES: &'static [(&'static str, &'static str)] = &[
        ("notification_id", "String"),
        ("version", "UInt32"),
        ("status", "String"),
        ("reporter", "String"),
        ("state", "String"),
        ("validated_avro_hex", "String"),
        ("source_partition", "Int32"),
        ("source_offset", "Int64"),
        ("updated_at_ms", "Int64"),
    ];
    fn describe(&self) -> String {
        format!(
            "notification {} version {} (partition {}, offset {})",
            self.notification_id, self.version, self.source_partition, self.source_offset
        )
    }
}

/// What a notification contributes to the aggregates after its latest version.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct ContributionRow {
    /// Id.
    pub notification_id: String,
    /// 1 when counted.
    pub counted: u8,
    /// Notification month.
    pub period: String,
    /// Year.
    pub year: i32,
    /// Quarter.
    pub quarter: u32,
    /// Sector code.
    pub sector_code: String,
    /// SBI section.
    pub sbi_section: String,
    /// Diagnosis code.
    pub diagnosis_code: String,
    /// Diagnosis group.
    pub diagnosis_group: String,
    /// Primary exposure.
    pub primary_exposure: String,
    /// Its group.
    pub primary_exposure_group: String,
    /// Sex.
    pub sex: String,
    /// Age band.
    pub age_band: String,
    /// Detection route.
    pub detection_route: String,
    /// Consequence.
    pub consequence: String,
    /// Every exposure code.
    pub exposure_codes: Vec<String>,
    /// Their groups (same order).
    pub exposure_groups: Vec<String>,
    /// Source partition.
    pub source_partition: i32,
    /// Source offset: the row's version.
    pub source_offset: i64,
}

impl TableRow for ContributionRow {
    const TABLE: &'static str = "contributions";
    const TYPES: &'static [(&'static str, &'static str)] = &[
        ("notification_id", "String"),
        ("counted", "UInt8"),
        ("period", "String"),
        ("year", "Int32"),
        ("quarter", "UInt32"),
        ("sector_code", "String"),
        ("sbi_section", "String"),
        ("diagnosis_code", "String"),
        ("diagnosis_group", "String"),
        ("primary_exposure", "String"),
        ("primary_exposure_group", "String"),
        ("sex", "String"),
        ("age_band", "String"),
        ("detection_route", "String"),
        ("consequence", "String"),
        ("exposure_codes", "Array(String)"),
        ("exposure_groups", "Array(String)"),
        ("source_partition", "Int32"),
        ("source_offset", "Int64"),
    ];
    fn describe(&self) -> String {
        format!(
            "contribution of notification {} (partition {}, offset {})",
            self.notification_id, self.source_partition, self.source_offset
        )
    }
}

/// Why a version was rejected.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct RejectionRow {
    /// Id.
    pub notification_id: String,
    /// Version.
    pub version: u32,
    /// Reporter pseudonym.
    pub reporter: String,
    /// JSON array of reasons (field, value, rule, message, message_nl).
    pub reasons: String,
    /// Source partition.
    pub source_partition: i32,
    /// Source offset.
    pub source_offset: i64,
    /// When (ms).
    pub rejected_at_ms: i64,
}

impl TableRow for RejectionRow {
    const TABLE: &'static str = "rejections";
    const TYPES: &'static [(&'static str, &'static str)] = &[
        ("notification_id", "String"),
        ("version", "UInt32"),
        ("reporter", "String"),
        ("reasons", "String"),
        ("source_partition", "Int32"),
        ("source_offset", "Int64"),
        ("rejected_at_ms", "Int64"),
    ];
    fn describe(&self) -> String {
        format!(
            "rejection of notification {} version {} (offset {})",
            self.notification_id, self.version, self.source_offset
        )
    }
}

/// A zero report.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct ZeroReportRow {
    /// Reporter pseudonym.
    pub reporter: String,
    /// Month.
    pub period: String,
    /// Service label.
    pub service: String,
    /// Source partition.
    pub source_partition: i32,
    /// Source offset.
    pub source_offset: i64,
}

impl TableRow for ZeroReportRow {
    const TABLE: &'static str = "zero_reports";
    const TYPES: &'static [(&'static str, &'static str)] = &[
        ("reporter", "String"),
        ("period", "String"),
        ("service", "String"),
        ("source_partition", "Int32"),
        ("source_offset", "Int64"),
    ];
    fn describe(&self) -> String {
        format!(
            "zero report {} of {} (offset {})",
            self.period, self.reporter, self.source_offset
        )
    }
}

/// An undecodable record.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct DeadLetterRow {
    /// Source (topic/partition label).
    pub source: String,
    /// Partition.
    pub source_partition: i32,
    /// Offset.
    pub source_offset: i64,
    /// Why it could not be decoded.
    pub error: String,
    /// The bytes (hex).
    pub payload_hex: String,
    /// When (ms).
    pub failed_at_ms: i64,
}

impl TableRow for DeadLetterRow {
    const TABLE: &'static str = "dead_letters";
    const TYPES: &'static [(&'static str, &'static str)] = &[
        ("source", "String"),
        ("source_partition", "Int32"),
        ("source_offset", "Int64"),
        ("error", "String"),
        ("payload_hex", "String"),
        ("failed_at_ms", "Int64"),
    ];
    fn describe(&self) -> String {
        format!(
            "dead letter {} partition {} offset {}",
            self.source, self.source_partition, self.source_offset
        )
    }
}

/// The next offset of a (source, partition).
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct PositionRow {
    /// Source.
    pub source: String,
    /// Partition.
    pub source_partition: i32,
    /// Next offset to process.
    pub next_offset: i64,
    /// When (ms).
    pub updated_at_ms: i64,
}

impl TableRow for PositionRow {
    const TABLE: &'static str = "positions";
    const TYPES: &'static [(&'static str, &'static str)] = &[
        ("source", "String"),
        ("source_partition", "Int32"),
        ("next_offset", "Int64"),
        ("updated_at_ms", "Int64"),
    ];
    fn describe(&self) -> String {
        format!(
            "position of {} partition {} ({})",
            self.source, self.source_partition, self.next_offset
        )
    }
}

/// One revision of a signal (`signal_revisions`).
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct SignalRevisionRow {
    /// Signal id.
    pub signal_id: String,
    /// Revision (1 when raised).
    pub revision: u64,
    /// Kind.
    pub kind: String,
    /// Subject (JSON object).
    pub subject: String,
    /// Period.
    pub period: String,
    /// Numbers (JSON object).
    pub numbers: String,
    /// Method.
    pub method: String,
    /// Explanation.
    pub explanation: String,
    /// Review status.
    pub status: String,
    /// Note of the latest review change ('' for none).
    pub note: String,
    /// First raised (ms).
    pub detected_at_ms: i64,
    /// Last changed (ms).
    pub updated_at_ms: i64,
}

impl TableRow for SignalRevisionRow {
    const TABLE: &'static str = "signal_revisions";
    const TYPES: &'static [(&'static str, &'static str)] = &[
        ("signal_id", "String"),
        ("revision", "UInt64"),
        ("kind", "String"),
        ("subject", "String"),
        ("period", "String"),
        ("numbers", "String"),
        ("method", "String"),
        ("explanation", "String"),
        ("status", "String"),
        ("note", "String"),
        ("detected_at_ms", "Int64"),
        ("updated_at_ms", "Int64"),
    ];
    fn describe(&self) -> String {
        format!("signal {} revision {}", self.signal_id, self.revision)
    }
}

/// One review change (`signal_reviews`).
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct SignalReviewRow {
    /// Signal id.
    pub signal_id: String,
    /// The revision the change created.
    pub revision: u64,
    /// When (ms).
    pub at_ms: i64,
    /// Who (token id).
    pub actor: String,
    /// Status before.
    pub from_status: String,
    /// Status after.
    pub to_status: String,
    /// Why.
    pub note: String,
}

impl TableRow for SignalReviewRow {
    const TABLE: &'static str = "signal_reviews";
    const TYPES: &'static [(&'static str, &'static str)] = &[
        ("signal_id", "String"),
        ("revision", "UInt64"),
        ("at_ms", "Int64"),
        ("actor", "String"),
        ("from_status", "String"),
        ("to_status", "String"),
        ("note", "String"),
    ];
    fn describe(&self) -> String {
        format!(
            "review of signal {} revision {}",
            self.signal_id, self.revision
        )
    }
}
