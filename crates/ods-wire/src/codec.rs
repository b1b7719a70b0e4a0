//! Framing and the mapping between domain events and Avro records.

use apache_avro::{from_avro_datum_schemata, from_value, write_avro_datum_ref};
use chrono::{DateTime, NaiveDate, Utc};
use ods_model::{
    AbsenceBand, Affiliation, Consequence, DetectionRoute, Event, ExposureRef, Notification,
    NotificationAmended, NotificationFiled, NotificationId, NotificationWithdrawn, Period,
    PreventionAdvice, ReporterPseudonym, Sex, WithdrawalReason, ZeroReport,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use crate::catalog::{SchemaCatalog, SchemaId};
use crate::error::WireError;
use crate::records::{
    ExposureRefRecord, NotificationAmendedRecord, NotificationContentRecord,
    NotificationFiledRecord, NotificationWithdrawnRecord, ZeroReportRecord,
};

/// Largest single allocation the Avro decoder may make for one value (strings, arrays): far above
/// any legitimate message, far below what a hostile length prefix could ask for.
const MAX_DECODE_ALLOCATION: usize = 4 * 1024 * 1024;

/// A reader over a message that fails hard when asked for bytes past the end.
///
/// apache-avro 0.21 turns an `UnexpectedEof` while reading a union, string or boolean into a
/// `null` value instead of an error, so a truncated message could decode "successfully" with its
/// tail missing. Reporting exhaustion as a different error kind makes truncation an error.
struct StrictReader<'a>(&'a [u8]);

impl std::io::Read for StrictReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !buf.is_empty() && self.0.is_empty() {
            return Err(std::io::Error::other(
                "message ends before the datum is complete",
            ));
        }
        self.0.read(buf)
    }
}

/// A record with a fixed schema id in the catalog.
pub trait WireRecord: Serialize + DeserializeOwned {
    /// Its schema id.
    const SCHEMA_ID: SchemaId;
}

/// Initial capacity of an encoded message: above a typical notification (~250 bytes), so the
/// datum is usually written without reallocating.
const ENCODE_CAPACITY: usize = 512;

/// The Confluent header in a buffer with room for `capacity` more bytes.
fn header(id: SchemaId, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity + 5);
    out.push(0);
    out.extend_from_slice(&id.0.to_be_bytes());
    out
}

/// Prefixes an Avro datum with the Confluent header.
pub fn frame(id: SchemaId, datum: &[u8]) -> Vec<u8> {
    let mut out = header(id, datum.len());
    out.extend_from_slice(datum);
    out
}

/// Splits a framed message into schema id and Avro datum.
pub fn unframe(bytes: &[u8]) -> Result<(SchemaId, &[u8]), WireError> {
    if bytes.len() < 5 {
        return Err(WireError::TooShort(bytes.len()));
    }
    if bytes[0] != 0 {
        return Err(WireError::BadMagic(bytes[0]));
    }
    let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    Ok((SchemaId(id), &bytes[5..]))
}

fn avro(e: impl std::fmt::Display) -> WireError {
    WireError::Avro(e.to_string())
}

/// A way of turning a record into a framed message (the fast route in production; the old
/// `Value` route is kept in the tests as the byte-for-byte reference).
trait Encoder {
    /// Encodes `record` with the schema `id` and frames it.
    fn encode<T: Serialize>(id: SchemaId, record: &T) -> Result<Vec<u8>, WireError>;
}

/// Schema-aware serde serialization straight into the framed buffer: no `Value`, no schema
/// resolution. Enum fields are [`crate::records::AvroEnum`]s, which serialize as the schema's
/// symbol index.
struct SchemaAware;

impl Encoder for SchemaAware {
    fn encode<T: Serialize>(id: SchemaId, record: &T) -> Result<Vec<u8>, WireError> {
        let entry = SchemaCatalog::bundled()?.get(id)?;
        let mut out = header(id, ENCODE_CAPACITY);
        write_avro_datum_ref(&entry.schema, record, &mut out).map_err(avro)?;
        Ok(out)
    }
}

fn decode_with<T: DeserializeOwned>(id: SchemaId, datum: &[u8]) -> Result<T, WireError> {
    apache_avro::util::max_allocation_bytes(MAX_DECODE_ALLOCATION);
    let entry = SchemaCatalog::bundled()?.get(id)?;
    let mut reader = StrictReader(datum);
    // No writer schemata: the bundled schemas define every named type inline and never refer
    // to one by name (a test checks), so the per-message name resolution that
    // `from_avro_datum` does (a third of decoding time) is not needed. Truncation is an error
    // (`StrictReader`), and the decoder only builds values of the schema's shape, so the
    // decoded value is not validated again.
    let value =
        from_avro_datum_schemata(&entry.schema, Vec::new(), &mut reader, None).map_err(|e| {
            WireError::Avro(format!(
                "{} datum is corrupt or truncated: {e}",
                entry.record
            ))
        })?;
    let reader = reader.0;
    if !reader.is_empty() {
        return Err(WireError::Avro(format!(
            "{} trailing bytes after the {} datum",
            reader.len(),
            entry.record
        )));
    }
    from_value(&value).map_err(avro)
}

/// Encodes a processor record (validated, rejected, dead letter) in the wire format.
pub fn encode_record<T: WireRecord>(record: &T) -> Result<Vec<u8>, WireError> {
    SchemaAware::encode(T::SCHEMA_ID, record)
}

/// Decodes a framed record, checking that the schema id is `T`'s.
pub fn decode_record<T: WireRecord>(bytes: &[u8]) -> Result<T, WireError> {
    let (id, datum) = unframe(bytes)?;
    if id != T::SCHEMA_ID {
        let catalog = SchemaCatalog::bundled()?;
        return Err(WireError::UnexpectedSchema {
            found: id.0,
            record: catalog
                .get(id)
                .map(|e| e.record.clone())
                .unwrap_or_default(),
            expected: std::any::type_name::<T>(),
        });
    }
    decode_with(id, datum)
}

/// Encodes a domain event; returns its schema id and the framed bytes.
pub fn encode_event(event: &Event) -> Result<(SchemaId, Vec<u8>), WireError> {
    encode_event_using::<SchemaAware>(event)
}

/// Encodes a record with its own schema id; returns the id and the framed bytes.
fn encode_wire<E: Encoder, T: WireRecord>(record: &T) -> Result<(SchemaId, Vec<u8>), WireError> {
    Ok((T::SCHEMA_ID, E::encode(T::SCHEMA_ID, record)?))
}

fn encode_event_using<E: Encoder>(event: &Event) -> Result<(SchemaId, Vec<u8>), WireError> {
    match event {
        Event::Filed(e) => {
            let record = NotificationFiledRecord {
                event_id: e.event_id.to_string(),
                notification_id: e.notification_id.to_string(),
                reporter_pseudonym: e.reporter.to_string(),
                notified_at: e.notified_at.timestamp_millis(),
                content: content_record(&e.notification),
            };
            encode_wire::<E, _>(&record)
        }
        Event::Amended(e) => {
            let record = NotificationAmendedRecord {
                event_id: e.event_id.to_string(),
                notification_id: e.notification_id.to_string(),
                version: version_i32(e.version)?,
                reporter_pseudonym: e.reporter.to_string(),
                notified_at: e.notified_at.timestamp_millis(),
                amended_at: e.amended_at.timestamp_millis(),
                content: content_record(&e.notification),
            };
            encode_wire::<E, _>(&record)
        }
        Event::Withdrawn(e) => {
            let record = NotificationWithdrawnRecord {
                event_id: e.event_id.to_string(),
                notification_id: e.notification_id.to_string(),
                version: version_i32(e.version)?,
                reporter_pseudonym: e.reporter.to_string(),
                withdrawn_at: e.withdrawn_at.timestamp_millis(),
                reason: e.reason.code().into(),
            };
            encode_wire::<E, _>(&record)
        }
        Event::ZeroReport(e) => {
            let record = ZeroReportRecord {
                event_id: e.event_id.to_string(),
                reporter_pseudonym: e.reporter.to_string(),
                service_id: e.affiliation.service_id().map(str::to_string),
                self_employed: e.affiliation == Affiliation::SelfEmployed,
                period: e.period.to_string(),
                reported_at: e.reported_at.timestamp_millis(),
            };
            encode_wire::<E, _>(&record)
        }
    }
}

/// Decodes a framed event of `ods.notifications.v1`.
pub fn decode_event(bytes: &[u8]) -> Result<Event, WireError> {
    let (id, datum) = unframe(bytes)?;
    match id {
        SchemaId::NOTIFICATION_FILED => {
            let r: NotificationFiledRecord = decode_with(id, datum)?;
            Ok(Event::Filed(NotificationFiled {
                event_id: uuid("event_id", &r.event_id)?,
                notification_id: NotificationId(uuid("notification_id", &r.notification_id)?),
                reporter: pseudonym(&r.reporter_pseudonym)?,
                notified_at: millis("notified_at", r.notified_at)?,
                notification: notification(r.content)?,
            }))
        }
        SchemaId::NOTIFICATION_AMENDED => {
            let r: NotificationAmendedRecord = decode_with(id, datum)?;
            Ok(Event::Amended(NotificationAmended {
                event_id: uuid("event_id", &r.event_id)?,
                notification_id: NotificationId(uuid("notification_id", &r.notification_id)?),
                version: version_u32(r.version, 2)?,
                reporter: pseudonym(&r.reporter_pseudonym)?,
                notified_at: millis("notified_at", r.notified_at)?,
                amended_at: millis("amended_at", r.amended_at)?,
                notification: notification(r.content)?,
            }))
        }
        SchemaId::NOTIFICATION_WITHDRAWN => {
            let r: NotificationWithdrawnRecord = decode_with(id, datum)?;
            Ok(Event::Withdrawn(NotificationWithdrawn {
                event_id: uuid("event_id", &r.event_id)?,
                notification_id: NotificationId(uuid("notification_id", &r.notification_id)?),
                version: version_u32(r.version, 2)?,
                reporter: pseudonym(&r.reporter_pseudonym)?,
                withdrawn_at: millis("withdrawn_at", r.withdrawn_at)?,
                reason: category("reason", WithdrawalReason::parse(&r.reason))?,
            }))
        }
        SchemaId::ZERO_REPORT => {
            let r: ZeroReportRecord = decode_with(id, datum)?;
            Ok(Event::ZeroReport(ZeroReport {
                event_id: uuid("event_id", &r.event_id)?,
                reporter: pseudonym(&r.reporter_pseudonym)?,
                affiliation: affiliation(r.service_id, r.self_employed)?,
                period: Period::parse(&r.period).map_err(|e| WireError::Invalid {
                    field: "period",
                    reason: e.to_string(),
                })?,
                reported_at: millis("reported_at", r.reported_at)?,
            }))
        }
        other => {
            let catalog = SchemaCatalog::bundled()?;
            let record = catalog.get(other)?.record.clone();
            Err(WireError::UnexpectedSchema {
                found: other.0,
                record,
                expected: "a notification event (schema ids 1-4)",
            })
        }
    }
}

/// The Avro record of a notification's content.
pub(crate) fn content_record(n: &Notification) -> NotificationContentRecord {
    NotificationContentRecord {
        service_id: n.affiliation.service_id().map(str::to_string),
        self_employed: n.affiliation == Affiliation::SelfEmployed,
        diagnosis_code: n.diagnosis_code.clone(),
        exposures: n
            .exposures
            .iter()
            .map(|e| ExposureRefRecord {
                code: e.code.clone(),
                primary: e.primary,
            })
            .collect(),
        sector_code: n.sector_code.clone(),
        occupation_code: n.occupation_code.clone(),
        sex: n.sex.code().into(),
        birth_year: n.birth_year,
        diagnosis_date: days_since_epoch(n.diagnosis_date),
        consequence: n.consequence.code().into(),
        absence_band: n.absence_band.avro_symbol().into(),
        detection_route: n.detection_route.code().into(),
        prevention_advice: n
            .prevention_advice
            .iter()
            .map(|a| a.code().into())
            .collect(),
        guideline_code: n.guideline_code.clone(),
    }
}

impl NotificationContentRecord {
    /// Builds the record of a notification's content.
    pub fn from_notification(n: &Notification) -> Self {
        content_record(n)
    }

    /// Converts back to the domain notification, checking every categorical value.
    pub fn to_notification(&self) -> Result<Notification, WireError> {
        notification(self.clone())
    }
}

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN)
}

fn days_since_epoch(date: NaiveDate) -> i32 {
    i32::try_from((date - epoch()).num_days()).unwrap_or(i32::MAX)
}

fn notification(r: NotificationContentRecord) -> Result<Notification, WireError> {
    Ok(Notification {
        affiliation: affiliation(r.service_id, r.self_employed)?,
        diagnosis_code: r.diagnosis_code,
        exposures: r
            .exposures
            .into_iter()
            .map(|e| ExposureRef {
                code: e.code,
                primary: e.primary,
            })
            .collect(),
        sector_code: r.sector_code,
        occupation_code: r.occupation_code,
        sex: category("sex", Sex::parse(&r.sex))?,
        birth_year: r.birth_year,
        diagnosis_date: epoch()
            .checked_add_signed(chrono::Duration::days(i64::from(r.diagnosis_date)))
            .ok_or(WireError::Invalid {
                field: "diagnosis_date",
                reason: format!("{} days is out of range", r.diagnosis_date),
            })?,
        consequence: category("consequence", Consequence::parse(&r.consequence))?,
        absence_band: category(
            "absence_band",
            AbsenceBand::from_avro_symbol(&r.absence_band),
        )?,
        detection_route: category("detection_route", DetectionRoute::parse(&r.detection_route))?,
        prevention_advice: r
            .prevention_advice
            .iter()
            .map(|a| category("prevention_advice", PreventionAdvice::parse(a)))
            .collect::<Result<_, _>>()?,
        guideline_code: r.guideline_code,
    })
}

fn affiliation(service_id: Option<String>, self_employed: bool) -> Result<Affiliation, WireError> {
    match (service_id, self_employed) {
        (Some(id), false) => Ok(Affiliation::Service(id)),
        (None, true) => Ok(Affiliation::SelfEmployed),
        _ => Err(WireError::Invalid {
            field: "service_id",
            reason: "exactly one of service_id and self_employed must be set".into(),
        }),
    }
}

fn category<T>(
    field: &'static str,
    parsed: Result<T, ods_model::UnknownCode>,
) -> Result<T, WireError> {
    parsed.map_err(|e| WireError::Invalid {
        field,
        reason: e.to_string(),
    })
}

fn uuid(field: &'static str, text: &str) -> Result<Uuid, WireError> {
    Uuid::parse_str(text).map_err(|e| WireError::Invalid {
        field,
        reason: e.to_string(),
    })
}

fn pseudonym(text: &str) -> Result<ReporterPseudonym, WireError> {
    ReporterPseudonym::from_hex(text).ok_or(WireError::Invalid {
        field: "reporter_pseudonym",
        reason: "not 32 lowercase hex characters".into(),
    })
}

fn millis(field: &'static str, ms: i64) -> Result<DateTime<Utc>, WireError> {
    DateTime::from_timestamp_millis(ms).ok_or(WireError::Invalid {
        field,
        reason: format!("{ms} ms is out of range"),
    })
}

fn version_i32(version: u32) -> Result<i32, WireError> {
    i32::try_from(version).map_err(|_| WireError::Invalid {
        field: "version",
        reason: format!("{version} is too large"),
    })
}

fn version_u32(version: i32, min: u32) -> Result<u32, WireError> {
    u32::try_from(version)
        .ok()
        .filter(|v| *v >= min)
        .ok_or(WireError::Invalid {
            field: "version",
            reason: format!("{version} is below {min}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{
        DeadLetter, NotificationRejected, NotificationValidated, RejectionReason,
    };
    use proptest::prelude::*;

    fn arb_notification() -> impl Strategy<Value = Notification> {
        (
            prop_oneof![Just(None), "[A-Z]{2}[0-9]{4}".prop_map(Some)],
            "[A-Z][0-9]{3}",
            prop::collection::vec(("[A-Z]{2}[0-9]{3}", any::<bool>()), 1..5),
            "[A-U]|[0-9]{2,4}",
            "[0-9]{2,4}",
            (prop::sample::select(Sex::ALL.to_vec()), 1930i32..2010),
            0i64..30_000,
            prop::sample::select(Consequence::ALL.to_vec()),
            prop::sample::select(AbsenceBand::ALL.to_vec()),
            prop::sample::select(DetectionRoute::ALL.to_vec()),
            prop::sample::subsequence(PreventionAdvice::ALL.to_vec(), 0..4),
            prop::option::of("[A-H][0-9]{3}"),
        )
            .prop_map(
                |(
                    service,
                    diagnosis,
                    exposures,
                    sector,
                    occupation,
                    (sex, birth_year),
                    days,
                    consequence,
                    absence,
                    route,
                    advice,
                    guideline,
                )| Notification {
                    affiliation: service
                        .map(Affiliation::Service)
                        .unwrap_or(Affiliation::SelfEmployed),
                    diagnosis_code: diagnosis,
                    exposures: exposures
                        .into_iter()
                        .map(|(code, primary)| ExposureRef { code, primary })
                        .collect(),
                    sector_code: sector,
                    occupation_code: occupation,
                    sex,
                    birth_year,
                    diagnosis_date: epoch() + chrono::Duration::days(days),
                    consequence,
                    absence_band: absence,
                    detection_route: route,
                    prevention_advice: advice,
                    guideline_code: guideline,
                },
            )
    }

    fn arb_time() -> impl Strategy<Value = DateTime<Utc>> {
        (0i64..4_000_000_000_000).prop_map(|ms| DateTime::from_timestamp_millis(ms).unwrap())
    }

    fn arb_pseudonym() -> impl Strategy<Value = ReporterPseudonym> {
        "[0-9a-f]{32}".prop_map(|s| ReporterPseudonym::from_hex(&s).unwrap())
    }

    fn arb_event() -> impl Strategy<Value = Event> {
        let id = any::<u128>().prop_map(Uuid::from_u128);
        prop_oneof![
            (
                id.clone(),
                id.clone(),
                arb_pseudonym(),
                arb_time(),
                arb_notification()
            )
                .prop_map(|(e, n, reporter, at, notification)| Event::Filed(
                    NotificationFiled {
                        event_id: e,
                        notification_id: NotificationId(n),
                        reporter,
                        notified_at: at,
                        notification
                    }
                )),
            (
                id.clone(),
                id.clone(),
                2u32..1000,
                arb_pseudonym(),
                arb_time(),
                arb_time(),
                arb_notification()
            )
                .prop_map(|(e, n, version, reporter, at, amended_at, notification)| {
                    Event::Amended(NotificationAmended {
                        event_id: e,
                        notification_id: NotificationId(n),
                        version,
                        reporter,
                        notified_at: at,
                        amended_at,
                        notification,
                    })
                }),
            (
                id.clone(),
                id.clone(),
                2u32..1000,
                arb_pseudonym(),
                arb_time(),
                prop::sample::select(WithdrawalReason::ALL.to_vec())
            )
                .prop_map(|(e, n, version, reporter, at, reason)| Event::Withdrawn(
                    NotificationWithdrawn {
                        event_id: e,
                        notification_id: NotificationId(n),
                        version,
                        reporter,
                        withdrawn_at: at,
                        reason
                    }
                )),
            (
                id,
                arb_pseudonym(),
                prop::option::of("[A-Z]{2}[0-9]{4}"),
                2000i32..2100,
                1u32..=12,
                arb_time()
            )
                .prop_map(|(e, reporter, service, year, month, at)| Event::ZeroReport(
                    ZeroReport {
                        event_id: e,
                        reporter,
                        affiliation: service
                            .map(Affiliation::Service)
                            .unwrap_or(Affiliation::SelfEmployed),
                        period: Period::new(year, month).unwrap(),
                        reported_at: at
                    }
                )),
        ]
    }

    /// The encoding used before the fast route, kept as the byte-for-byte reference:
    /// `to_value`, resolution against the schema, `to_avro_datum`, then framing.
    struct ValueRoute;

    impl Encoder for ValueRoute {
        fn encode<T: Serialize>(id: SchemaId, record: &T) -> Result<Vec<u8>, WireError> {
            let entry = SchemaCatalog::bundled()?.get(id)?;
            let value = apache_avro::to_value(record)
                .map_err(avro)?
                .resolve(&entry.schema)
                .map_err(avro)?;
            let datum = apache_avro::to_avro_datum(&entry.schema, value).map_err(avro)?;
            Ok(frame(id, &datum))
        }
    }

    fn arb_text() -> impl Strategy<Value = String> {
        prop_oneof!["[a-zA-Z0-9_.-]{0,12}", any::<String>()]
    }

    fn arb_validated() -> impl Strategy<Value = NotificationValidated> {
        (
            (any::<u128>(), 1i32..1000, "[0-9a-f]{32}", any::<i64>()),
            arb_notification(),
            (arb_text(), arb_text(), arb_text()),
            prop::collection::vec(arb_text(), 0..4),
            (arb_text(), arb_text(), arb_text(), arb_text()),
            (any::<i32>(), arb_text(), any::<i32>(), any::<i64>()),
        )
            .prop_map(
                |(
                    (id, version, reporter, notified_at),
                    n,
                    (diagnosis_group, primary_exposure, primary_exposure_group),
                    exposure_groups,
                    (sbi_section, age_band, period, quarter),
                    (year, iso_week, source_partition, source_offset),
                )| NotificationValidated {
                    notification_id: Uuid::from_u128(id).to_string(),
                    version,
                    reporter_pseudonym: reporter,
                    notified_at,
                    content: content_record(&n),
                    diagnosis_group,
                    primary_exposure,
                    primary_exposure_group,
                    exposure_groups,
                    sbi_section,
                    age_band,
                    period,
                    quarter,
                    year,
                    iso_week,
                    source_partition,
                    source_offset,
                },
            )
    }

    fn arb_rejected() -> impl Strategy<Value = NotificationRejected> {
        (
            prop::option::of(any::<u128>().prop_map(|id| Uuid::from_u128(id).to_string())),
            (any::<i32>(), arb_text()),
            prop::collection::vec(
                (arb_text(), arb_text(), arb_text(), arb_text(), arb_text()),
                0..4,
            ),
            (any::<i32>(), prop::collection::vec(any::<u8>(), 0..64)),
            (any::<i32>(), any::<i64>(), any::<i64>()),
        )
            .prop_map(
                |(
                    notification_id,
                    (version, reporter_pseudonym),
                    reasons,
                    (original_schema_id, original_payload),
                    (source_partition, source_offset, rejected_at),
                )| NotificationRejected {
                    notification_id,
                    version,
                    reporter_pseudonym,
                    reasons: reasons
                        .into_iter()
                        .map(
                            |(field, value, rule, message, message_nl)| RejectionReason {
                                field,
                                value,
                                rule,
                                message,
                                message_nl,
                            },
                        )
                        .collect(),
                    original_schema_id,
                    original_payload,
                    source_partition,
                    source_offset,
                    rejected_at,
                },
            )
    }

    fn arb_dead_letter() -> impl Strategy<Value = DeadLetter> {
        (
            arb_text(),
            prop::collection::vec(any::<u8>(), 0..64),
            arb_text(),
            any::<i32>(),
            any::<i64>(),
            any::<i64>(),
        )
            .prop_map(
                |(error, payload, source_topic, source_partition, source_offset, failed_at)| {
                    DeadLetter {
                        error,
                        payload,
                        source_topic,
                        source_partition,
                        source_offset,
                        failed_at,
                    }
                },
            )
    }

    /// The fast route's bytes, checked against the reference route and decoded back.
    fn assert_same_bytes<T: WireRecord + PartialEq + std::fmt::Debug>(record: &T) {
        let fast = encode_record(record).unwrap();
        let reference = ValueRoute::encode(T::SCHEMA_ID, record).unwrap();
        assert_eq!(fast, reference);
        assert_eq!(&decode_record::<T>(&fast).unwrap(), record);
    }

    proptest! {
        #[test]
        fn fast_route_bytes_equal_the_value_route_for_every_event(event in arb_event()) {
            let (id, fast) = encode_event(&event).unwrap();
            let (reference_id, reference) = encode_event_using::<ValueRoute>(&event).unwrap();
            prop_assert_eq!(id, reference_id);
            prop_assert_eq!(fast, reference);
        }

        #[test]
        fn fast_route_bytes_equal_the_value_route_for_processor_records(
            validated in arb_validated(),
            rejected in arb_rejected(),
            dead in arb_dead_letter(),
        ) {
            assert_same_bytes(&validated);
            assert_same_bytes(&rejected);
            assert_same_bytes(&dead);
        }

        #[test]
        fn every_event_round_trips(event in arb_event()) {
            let (id, bytes) = encode_event(&event).unwrap();
            prop_assert_eq!(unframe(&bytes).unwrap().0, id);
            prop_assert_eq!(decode_event(&bytes).unwrap(), event);
        }

        #[test]
        fn arbitrary_bytes_never_panic(id in 0u32..9, tail in prop::collection::vec(any::<u8>(), 0..300)) {
            let bytes = frame(SchemaId(id), &tail);
            let _ = decode_event(&bytes);
            let _ = decode_record::<NotificationRejected>(&bytes);
            let _ = decode_record::<DeadLetter>(&bytes);
        }

        #[test]
        fn truncated_messages_are_errors(event in arb_event(), cut in 1usize..40) {
            let (_, bytes) = encode_event(&event).unwrap();
            let cut = cut.min(bytes.len());
            prop_assert!(decode_event(&bytes[..bytes.len() - cut]).is_err());
        }
    }

    /// `decode_with` decodes without writer schemata: that is only right while no bundled
    /// schema refers to a named type by name.
    #[test]
    fn no_bundled_schema_refers_to_a_named_type() {
        use apache_avro::Schema;
        fn refs(schema: &Schema, path: &str, found: &mut Vec<String>) {
            match schema {
                Schema::Ref { name } => found.push(format!("{path} -> {}", name.fullname(None))),
                Schema::Record(record) => {
                    for field in &record.fields {
                        refs(&field.schema, &format!("{path}.{}", field.name), found);
                    }
                }
                Schema::Array(array) => refs(&array.items, &format!("{path}[]"), found),
                Schema::Map(map) => refs(&map.types, &format!("{path}{{}}"), found),
                Schema::Union(union) => {
                    for variant in union.variants() {
                        refs(variant, path, found);
                    }
                }
                _ => {}
            }
        }
        let catalog = SchemaCatalog::bundled().unwrap();
        let mut found = Vec::new();
        for entry in catalog.iter() {
            refs(&entry.schema, &entry.record, &mut found);
        }
        assert!(found.is_empty(), "named references: {found:?}");
        assert!(catalog.iter().count() >= 7);
    }

    #[test]
    fn framing_errors_are_specific() {
        assert_eq!(decode_event(&[0, 0, 0]), Err(WireError::TooShort(3)));
        assert_eq!(
            decode_event(&[1, 0, 0, 0, 1, 2]),
            Err(WireError::BadMagic(1))
        );
        assert_eq!(
            decode_event(&[0, 0, 0, 0, 99]),
            Err(WireError::UnknownSchema(99))
        );
        let dead = DeadLetter {
            error: "x".into(),
            payload: vec![1, 2, 3],
            source_topic: "t".into(),
            source_partition: 0,
            source_offset: 5,
            failed_at: 0,
        };
        let bytes = encode_record(&dead).unwrap();
        assert!(matches!(
            decode_event(&bytes),
            Err(WireError::UnexpectedSchema { found: 7, .. })
        ));
        assert_eq!(decode_record::<DeadLetter>(&bytes).unwrap(), dead);
    }

    #[test]
    fn rejection_records_round_trip_with_bytes() {
        let rejected = NotificationRejected {
            notification_id: Some(Uuid::nil().to_string()),
            version: 1,
            reporter_pseudonym: "0".repeat(32),
            reasons: vec![RejectionReason {
                field: "diagnosis_code".into(),
                value: "\"L110\"".into(),
                rule: "diagnosis.complaint_code".into(),
                message: "m".into(),
                message_nl: "n".into(),
            }],
            original_schema_id: 1,
            original_payload: vec![0, 0, 0, 0, 1, 42],
            source_partition: 0,
            source_offset: 17,
            rejected_at: 1_700_000_000_000,
        };
        let bytes = encode_record(&rejected).unwrap();
        assert_eq!(
            decode_record::<NotificationRejected>(&bytes).unwrap(),
            rejected
        );
    }

    /// Schema evolution: a v1 payload read with a v2 reader schema that adds a defaulted field.
    #[test]
    fn v1_payload_reads_with_a_v2_reader_schema() {
        use apache_avro::types::Value;
        use apache_avro::Schema;
        let catalog = SchemaCatalog::bundled().unwrap();
        let v1 = catalog.get(SchemaId::ZERO_REPORT).unwrap();
        let mut v2_json: serde_json::Value = serde_json::from_str(v1.text).unwrap();
        v2_json["fields"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "name": "channel", "type": "string", "default": "web",
                "doc": "added in v2: how the report was filed"
            }));
        let v2 = Schema::parse_str(&v2_json.to_string()).unwrap();
        let event = Event::ZeroReport(ZeroReport {
            event_id: Uuid::from_u128(7),
            reporter: ReporterPseudonym::from_hex(&"ab".repeat(16)).unwrap(),
            affiliation: Affiliation::SelfEmployed,
            period: Period::new(2024, 3).unwrap(),
            reported_at: DateTime::from_timestamp_millis(1_711_000_000_000).unwrap(),
        });
        let (_, bytes) = encode_event(&event).unwrap();
        let (_, mut datum) = unframe(&bytes).unwrap();
        let value = apache_avro::from_avro_datum(&v1.schema, &mut datum, Some(&v2)).unwrap();
        let Value::Record(fields) = value else {
            panic!("not a record")
        };
        assert_eq!(
            fields.last().unwrap(),
            &("channel".to_string(), Value::String("web".into()))
        );
        assert_eq!(
            fields[4],
            ("period".to_string(), Value::String("2024-03".into()))
        );
    }

    #[test]
    fn every_symbol_of_every_enum_encodes_like_the_value_route() {
        use crate::avro_enum::ALL_SYMBOLS;
        let notification = Notification {
            affiliation: Affiliation::SelfEmployed,
            diagnosis_code: "A123".into(),
            exposures: vec![ExposureRef {
                code: "AB123".into(),
                primary: true,
            }],
            sector_code: "A".into(),
            occupation_code: "2211".into(),
            sex: Sex::ALL[0],
            birth_year: 1970,
            diagnosis_date: epoch(),
            consequence: Consequence::ALL[0],
            absence_band: AbsenceBand::ALL[0],
            detection_route: DetectionRoute::ALL[0],
            prevention_advice: PreventionAdvice::ALL.to_vec(),
            guideline_code: None,
        };
        let base = NotificationFiledRecord {
            event_id: Uuid::from_u128(1).to_string(),
            notification_id: Uuid::from_u128(2).to_string(),
            reporter_pseudonym: "ab".repeat(16),
            notified_at: 0,
            content: content_record(&notification),
        };
        let mut checked = 0;
        for (name, symbols) in ALL_SYMBOLS {
            for symbol in *symbols {
                let mut record = base.clone();
                let content = &mut record.content;
                match *name {
                    "Sex" => content.sex = (*symbol).into(),
                    "Consequence" => content.consequence = (*symbol).into(),
                    "AbsenceBand" => content.absence_band = (*symbol).into(),
                    "DetectionRoute" => content.detection_route = (*symbol).into(),
                    "PreventionAdvice" => content.prevention_advice = vec![(*symbol).into()],
                    "WithdrawalReason" => {
                        let withdrawn = NotificationWithdrawnRecord {
                            event_id: base.event_id.clone(),
                            notification_id: base.notification_id.clone(),
                            version: 2,
                            reporter_pseudonym: base.reporter_pseudonym.clone(),
                            withdrawn_at: 0,
                            reason: (*symbol).into(),
                        };
                        assert_same_bytes(&withdrawn);
                        checked += 1;
                        continue;
                    }
                    other => panic!("no test for enum {other}"),
                }
                assert_same_bytes(&record);
                checked += 1;
            }
        }
        assert_eq!(
            checked,
            ALL_SYMBOLS.iter().map(|(_, s)| s.len()).sum::<usize>()
        );
    }

    #[test]
    fn an_unknown_symbol_is_an_error_not_a_wrong_index() {
        let Ok((_, bytes)) = encode_event(&Event::Withdrawn(NotificationWithdrawn {
            event_id: Uuid::from_u128(1),
            notification_id: NotificationId(Uuid::from_u128(2)),
            version: 2,
            reporter: ReporterPseudonym::from_hex(&"ab".repeat(16)).unwrap(),
            withdrawn_at: DateTime::from_timestamp_millis(0).unwrap(),
            reason: WithdrawalReason::ALL[0],
        })) else {
            panic!("encoding failed")
        };
        let mut record: NotificationWithdrawnRecord = decode_record(&bytes).unwrap();
        record.reason = "withdrawn_by_mistake".into();
        let fast = encode_record(&record);
        assert!(
            matches!(&fast, Err(WireError::Avro(m)) if m.contains("withdrawn_by_mistake")),
            "{fast:?}"
        );
        assert!(ValueRoute::encode(SchemaId::NOTIFICATION_WITHDRAWN, &record).is_err());
        record.reason = "".into();
        assert!(encode_record(&record).is_err());
    }

    /// Old (`Value`) route vs the schema-aware route, ns per encode. Run with
    /// `cargo test --release -p ods-wire -- --ignored --nocapture encode_speed`.
    #[test]
    #[ignore = "micro-benchmark; run explicitly in release mode"]
    fn encode_speed() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
        use std::hint::black_box;
        use std::time::Instant;

        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
        let mut runner = TestRunner::new_with_rng(Config::default(), rng);
        let strategy = arb_event();
        let events: Vec<Event> = (0..256)
            .map(|_| strategy.new_tree(&mut runner).unwrap().current())
            .collect();
        let filed: Vec<&Event> = events
            .iter()
            .filter(|e| matches!(e, Event::Filed(_)))
            .collect();

        fn time<F: FnMut()>(rounds: usize, per_round: usize, mut f: F) -> f64 {
            for _ in 0..rounds / 10 {
                f();
            }
            let start = Instant::now();
            for _ in 0..rounds {
                f();
            }
            start.elapsed().as_nanos() as f64 / (rounds * per_round) as f64
        }
        let rounds = 400;
        for (label, set) in [
            ("all kinds", events.iter().collect::<Vec<_>>()),
            ("filed", filed),
        ] {
            let mut best_old = f64::MAX;
            let mut best_new = f64::MAX;
            for _ in 0..5 {
                best_old = best_old.min(time(rounds, set.len(), || {
                    for e in &set {
                        black_box(encode_event_using::<ValueRoute>(black_box(e)).unwrap());
                    }
                }));
                best_new = best_new.min(time(rounds, set.len(), || {
                    for e in &set {
                        black_box(encode_event(black_box(e)).unwrap());
                    }
                }));
            }
            println!(
                "encode_event ({label}, {} events): value route {best_old:.0} ns, schema-aware {best_new:.0} ns, speedup {:.2}x",
                set.len(),
                best_old / best_new
            );
        }
    }
}
