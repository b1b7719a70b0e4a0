//! A notification of an occupational disease, as accepted from a company doctor.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::categories::{AbsenceBand, Consequence, DetectionRoute, PreventionAdvice, Sex};

/// The registry-wide id of a notification (a UUIDv7, so ids sort by filing time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NotificationId(pub Uuid);

impl NotificationId {
    /// A new time-ordered id.
    pub fn new() -> Self {
        NotificationId(Uuid::now_v7())
    }

    /// Parses the hyphenated form.
    pub fn parse(text: &str) -> Result<Self, uuid::Error> {
        Uuid::parse_str(text).map(NotificationId)
    }
}

impl Default for NotificationId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for NotificationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// The pseudonym of a reporting doctor: a keyed HMAC of the BIG number, hex encoded
/// (see `ods-identity`). The BIG number itself never leaves intake.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReporterPseudonym(String);

impl ReporterPseudonym {
    /// Number of hex characters in a pseudonym (128 bits).
    pub const HEX_LEN: usize = 32;

    /// Accepts an already computed pseudonym: exactly [`Self::HEX_LEN`] lowercase hex characters.
    pub fn from_hex(hex: &str) -> Option<Self> {
        let ok = hex.len() == Self::HEX_LEN
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| ReporterPseudonym(hex.to_string()))
    }

    /// The hex text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ReporterPseudonym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where the reporting doctor works: an occupational health service, or self-employed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Affiliation {
    /// An occupational health service (arbodienst), by its id in the services code list.
    Service(String),
    /// A self-employed company doctor.
    SelfEmployed,
}

impl Affiliation {
    /// The service id, if any.
    pub fn service_id(&self) -> Option<&str> {
        match self {
            Affiliation::Service(id) => Some(id),
            Affiliation::SelfEmployed => None,
        }
    }

    /// The label used in aggregates: the service id, or `self_employed`.
    pub fn label(&self) -> &str {
        self.service_id().unwrap_or("self_employed")
    }
}

/// One causal exposure of a notification; exactly one of a notification's exposures is primary.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExposureRef {
    /// Code from the exposures code list, e.g. `PH001` (noise).
    pub code: String,
    /// Whether this is the primary (main) exposure.
    pub primary: bool,
}

/// A validated notification: every code exists and every rule of `ods-validation` holds.
///
/// Serialises to and from the JSON contract of the intake API (`service_id` or
/// `self_employed: true`, `diagnosis_code`, `exposures`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "NotificationJson", try_from = "NotificationJson")]
pub struct Notification {
    /// The doctor's occupational health service, or self-employed.
    pub affiliation: Affiliation,
    /// CAS diagnosis code, e.g. `L694`.
    pub diagnosis_code: String,
    /// 1 to 5 causal exposures, exactly one primary.
    pub exposures: Vec<ExposureRef>,
    /// Sector code from the sectors list (SBI-2008 based).
    pub sector_code: String,
    /// ISCO-08 occupation code.
    pub occupation_code: String,
    /// Sex of the worker.
    pub sex: Sex,
    /// Birth year of the worker (never a birth date).
    pub birth_year: i32,
    /// Date of diagnosis.
    pub diagnosis_date: NaiveDate,
    /// Most serious consequence.
    pub consequence: Consequence,
    /// Sickness absence band.
    pub absence_band: AbsenceBand,
    /// How the disease was detected.
    pub detection_route: DetectionRoute,
    /// Prevention advice given (empty: none).
    pub prevention_advice: Vec<PreventionAdvice>,
    /// Optional NCvB registration guideline code, e.g. `B001`.
    pub guideline_code: Option<String>,
}

impl Notification {
    /// The primary exposure's code. A validated notification always has one; for a
    /// notification built by hand without one, the first exposure stands in.
    pub fn primary_exposure(&self) -> Option<&str> {
        self.exposures
            .iter()
            .find(|e| e.primary)
            .or_else(|| self.exposures.first())
            .map(|e| e.code.as_str())
    }
}

/// The JSON shape of a notification (the intake API contract).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NotificationJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    service_id: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    self_employed: bool,
    diagnosis_code: String,
    exposures: Vec<ExposureRef>,
    sector_code: String,
    occupation_code: String,
    sex: Sex,
    birth_year: i32,
    diagnosis_date: NaiveDate,
    consequence: Consequence,
    absence_band: AbsenceBand,
    detection_route: DetectionRoute,
    #[serde(default)]
    prevention_advice: Vec<PreventionAdvice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    guideline_code: Option<String>,
}

impl From<Notification> for NotificationJson {
    fn from(n: Notification) -> Self {
        let (service_id, self_employed) = match n.affiliation {
            Affiliation::Service(id) => (Some(id), false),
            Affiliation::SelfEmployed => (None, true),
        };
        NotificationJson {
            service_id,
            self_employed,
            diagnosis_code: n.diagnosis_code,
            exposures: n.exposures,
            sector_code: n.sector_code,
            occupation_code: n.occupation_code,
            sex: n.sex,
            birth_year: n.birth_year,
            diagnosis_date: n.diagnosis_date,
            consequence: n.consequence,
            absence_band: n.absence_band,
            detection_route: n.detection_route,
            prevention_advice: n.prevention_advice,
            guideline_code: n.guideline_code,
        }
    }
}

impl TryFrom<NotificationJson> for Notification {
    type Error = String;

    fn try_from(j: NotificationJson) -> Result<Self, Self::Error> {
        let affiliation = match (j.service_id, j.self_employed) {
            (Some(id), false) => Affiliation::Service(id),
            (None, true) => Affiliation::SelfEmployed,
            (Some(_), true) => {
                return Err("give either service_id or self_employed: true, not both".into())
            }
            (None, false) => return Err("service_id or self_employed: true is required".into()),
        };
        Ok(Notification {
            affiliation,
            diagnosis_code: j.diagnosis_code,
            exposures: j.exposures,
            sector_code: j.sector_code,
            occupation_code: j.occupation_code,
            sex: j.sex,
            birth_year: j.birth_year,
            diagnosis_date: j.diagnosis_date,
            consequence: j.consequence,
            absence_band: j.absence_band,
            detection_route: j.detection_route,
            prevention_advice: j.prevention_advice,
            guideline_code: j.guideline_code,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_contract_round_trips() {
        let text = r#"{"service_id":"AD0001","diagnosis_code":"L694","exposures":[{"code":"ER003","primary":true}],"sector_code":"1071","occupation_code":"7512","sex":"F","birth_year":1980,"diagnosis_date":"2024-03-01","consequence":"temporary","absence_band":"1to3m","detection_route":"absence_guidance","prevention_advice":["organisational"]}"#;
        let n: Notification = serde_json::from_str(text).unwrap();
        assert_eq!(n.affiliation, Affiliation::Service("AD0001".into()));
        assert_eq!(n.primary_exposure(), Some("ER003"));
        assert_eq!(serde_json::to_string(&n).unwrap(), text);
    }

    #[test]
    fn self_employed_is_explicit() {
        let text = r#"{"self_employed":true,"diagnosis_code":"L694","exposures":[],"sector_code":"F","occupation_code":"71","sex":"M","birth_year":1970,"diagnosis_date":"2024-03-01","consequence":"none","absence_band":"unknown","detection_route":"consultation"}"#;
        let n: Notification = serde_json::from_str(text).unwrap();
        assert_eq!(n.affiliation, Affiliation::SelfEmployed);
        assert!(serde_json::from_str::<Notification>(&text.replace("true", "false")).is_err());
    }

    #[test]
    fn pseudonyms_are_fixed_length_lowercase_hex() {
        assert!(ReporterPseudonym::from_hex(&"a1".repeat(16)).is_some());
        assert!(ReporterPseudonym::from_hex(&"A1".repeat(16)).is_none());
        assert!(ReporterPseudonym::from_hex("12345678901").is_none());
    }
}
