use serde::Serialize;

macro_rules! rules {
    ($( $(#[$m:meta])* $variant:ident = $id:literal : $doc:literal ),+ $(,)?) => {
        /// A validation rule, with a stable id used in API responses, metrics and rejections.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Rule { $( #[doc = $doc] $variant ),+ }

        impl Rule {
            /// Every rule.
            pub const ALL: &'static [Rule] = &[ $( Rule::$variant ),+ ];

            /// The stable id, e.g. `diagnosis.complaint_code`.
            pub fn id(self) -> &'static str {
                match self { $( Rule::$variant => $id ),+ }
            }

            /// What the rule demands, in one English sentence (for docs and `--help`).
            pub fn description(self) -> &'static str {
                match self { $( Rule::$variant => $doc ),+ }
            }

            /// The rule with this id.
            pub fn from_id(id: &str) -> Option<Rule> {
                match id { $( $id => Some(Rule::$variant), )+ _ => None }
            }
        }
    };
}

rules! {
    BodyNotObject = "body.not_object": "The request body is a JSON object.",
    FieldUnknown = "field.unknown": "Only the fields of the contract are allowed (no names, ids or free text).",
    FieldRequired = "field.required": "Core fields are filled: diagnosis, exposures, sector, occupation, sex, birth year, diagnosis date, consequence, absence band, detection route.",
    FieldType = "field.type": "Each field has the JSON type of the contract.",
    FieldTooLong = "field.too_long": "Text fields and lists stay within their maximum length.",
    ServiceMissing = "service.missing": "Either service_id or self_employed: true is given.",
    ServiceConflict = "service.conflict": "Not both service_id and self_employed: true.",
    ServiceUnknown = "service.unknown": "service_id is in the services list.",
    DiagnosisFormat = "diagnosis.format": "diagnosis_code is a CAS code: one letter and three digits.",
    DiagnosisUnknown = "diagnosis.unknown": "diagnosis_code is in the CAS code list.",
    DiagnosisNotInForce = "diagnosis.not_in_force": "diagnosis_code is valid on the diagnosis date.",
    DiagnosisComplaintCode = "diagnosis.complaint_code": "Complaint codes (first digit 1) are not accepted, except H102, L101-L105, L112, L122, R102.",
    DiagnosisAccident = "diagnosis.accident": "Acute injuries from accidents are not occupational diseases.",
    ExposuresCount = "exposures.count": "1 to 5 exposures are given.",
    ExposuresPrimary = "exposures.primary": "Exactly one exposure is primary.",
    ExposuresDuplicate = "exposures.duplicate": "No exposure is listed twice.",
    ExposureUnknown = "exposure.unknown": "Each exposure code is in the exposure list.",
    ExposureNotInForce = "exposure.not_in_force": "Each exposure code is valid on the diagnosis date.",
    SectorUnknown = "sector.unknown": "sector_code is in the sector list.",
    SectorNotInForce = "sector.not_in_force": "sector_code is valid on the diagnosis date.",
    OccupationFormat = "occupation.format": "occupation_code is an ISCO-08 code of 2 to 4 digits (at least the sub-major group).",
    OccupationUnknown = "occupation.unknown": "occupation_code (or its sub-major group) is in the ISCO-08 list.",
    SexInvalid = "sex.invalid": "sex is M, F or X.",
    BirthYearImplausible = "birth_year.implausible": "The worker's age at diagnosis (diagnosis year minus birth year) is within the working-age limits.",
    DiagnosisDateFormat = "diagnosis_date.format": "diagnosis_date is an ISO date YYYY-MM-DD.",
    DiagnosisDateFuture = "diagnosis_date.future": "diagnosis_date is not in the future.",
    ConsequenceInvalid = "consequence.invalid": "consequence is none, temporary, permanent or death.",
    AbsenceBandInvalid = "absence_band.invalid": "absence_band is lt1m, 1to3m, 3to6m, gt6m or unknown.",
    DetectionRouteInvalid = "detection_route.invalid": "detection_route is absence_guidance, consultation or pmo_pago.",
    PreventionAdviceInvalid = "prevention_advice.invalid": "Each prevention advice is one of the advice types.",
    PreventionAdviceDuplicate = "prevention_advice.duplicate": "No prevention advice type is listed twice.",
    GuidelineUnknown = "guideline.unknown": "guideline_code is in the registration guideline list.",
    GuidelineMismatch = "guideline.mismatch": "The registration guideline covers the diagnosis.",
    PeriodFormat = "period.format": "A period is a month YYYY-MM.",
    PeriodFuture = "period.future": "A zero report is for the current or a past month.",
}

/// One broken rule: which field, which value, which rule, and what to do about it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Violation {
    /// JSON path of the field, e.g. `exposures[1].code`; empty for the whole body.
    pub field: String,
    /// The offending value as received (`null` when missing).
    #[schema(value_type = Object, nullable = true)]
    pub value: serde_json::Value,
    /// Stable rule id, e.g. `diagnosis.complaint_code` (`ods rules` lists them).
    #[serde(serialize_with = "serialize_rule")]
    #[schema(value_type = String, example = "diagnosis.complaint_code")]
    pub rule: Rule,
    /// What is wrong and how to fix it, in English.
    pub message: String,
    /// The same in Dutch.
    pub message_nl: String,
}

fn serialize_rule<S: serde::Serializer>(rule: &Rule, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(rule.id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_are_unique_and_round_trip() {
        let mut ids: Vec<&str> = Rule::ALL.iter().map(|r| r.id()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), Rule::ALL.len());
        for rule in Rule::ALL {
            assert_eq!(Rule::from_id(rule.id()), Some(*rule));
        }
    }
}
