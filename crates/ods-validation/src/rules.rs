//! The rules themselves.

use std::collections::HashSet;

use chrono::{Datelike, NaiveDate};
use ods_codelists::{CodeLists, DiagnosisKind};
use ods_model::{
    AbsenceBand, Affiliation, Consequence, DetectionRoute, ExposureRef, Notification, Period,
    PreventionAdvice, Sex, UnknownCode,
};
use serde_json::{Map, Value};

use crate::violation::{Rule, Violation};

/// Complaint codes that may be notified because registration guidelines cover them
/// (NCvB; `shared/domain.md` §2 rule 3).
pub const COMPLAINT_CODE_EXCEPTIONS: [&str; 9] = [
    "H102", "L101", "L102", "L103", "L104", "L105", "L112", "L122", "R102",
];

/// Tunable limits of the rules. Defaults follow the registry's practice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Youngest plausible age at diagnosis (diagnosis year minus birth year).
    pub min_age: i32,
    /// Oldest plausible age at diagnosis; latent diseases (mesothelioma) appear after retirement.
    pub max_age: i32,
    /// Longest accepted code or id text.
    pub max_text_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            min_age: 14,
            max_age: 90,
            max_text_len: 32,
        }
    }
}

/// The fields of the notification JSON contract, in documentation order.
pub const NOTIFICATION_FIELDS: [&str; 14] = [
    "service_id",
    "self_employed",
    "diagnosis_code",
    "exposures",
    "sector_code",
    "occupation_code",
    "sex",
    "birth_year",
    "diagnosis_date",
    "consequence",
    "absence_band",
    "detection_route",
    "prevention_advice",
    "guideline_code",
];

const MAX_EXPOSURES: usize = 5;

struct Checker<'a> {
    body: &'a Map<String, Value>,
    limits: &'a Limits,
    violations: Vec<Violation>,
}

impl<'a> Checker<'a> {
    fn push(
        &mut self,
        field: &str,
        value: &Value,
        rule: Rule,
        message: String,
        message_nl: String,
    ) {
        self.violations.push(Violation {
            field: field.to_string(),
            value: value.clone(),
            rule,
            message,
            message_nl,
        });
    }

    fn raw(&self, field: &str) -> &'a Value {
        self.body.get(field).unwrap_or(&Value::Null)
    }

    fn missing(&mut self, field: &str) {
        self.push(
            field,
            &Value::Null,
            Rule::FieldRequired,
            format!("{field} is required"),
            format!("{field} is verplicht"),
        );
    }

    fn wrong_type(&mut self, field: &str, value: &Value, expected: &str, expected_nl: &str) {
        self.push(
            field,
            value,
            Rule::FieldType,
            format!("{field} must be {expected}"),
            format!("{field} moet {expected_nl} zijn"),
        );
    }

    /// A bounded, non-empty string; `None` (with a violation when required) otherwise.
    fn text_at(&mut self, field: &str, value: &'a Value, required: bool) -> Option<&'a str> {
        match value {
            Value::Null => {
                if required {
                    self.missing(field);
                }
                None
            }
            Value::String(s) if s.trim().is_empty() => {
                if required {
                    self.missing(field);
                }
                None
            }
            Value::String(s) if s.chars().count() > self.limits.max_text_len => {
                let max = self.limits.max_text_len;
                self.push(
                    field,
                    value,
                    Rule::FieldTooLong,
                    format!("{field} is longer than {max} characters"),
                    format!("{field} is langer dan {max} tekens"),
                );
                None
            }
            Value::String(s) => Some(s.trim()),
            other => {
                self.wrong_type(field, other, "a string", "een tekst");
                None
            }
        }
    }

    fn text(&mut self, field: &str, required: bool) -> Option<&'a str> {
        let value = self.raw(field);
        self.text_at(field, value, required)
    }

    fn category<T>(
        &mut self,
        field: &str,
        rule: Rule,
        parse: impl Fn(&str) -> Result<T, UnknownCode>,
    ) -> Option<T> {
        let text = self.text(field, true)?;
        match parse(text) {
            Ok(v) => Some(v),
            Err(e) => {
                self.push(
                    field,
                    &Value::String(text.to_string()),
                    rule,
                    format!("{field} '{text}' is not allowed; use one of: {}", e.allowed),
                    format!(
                        "{field} '{text}' is niet toegestaan; kies uit: {}",
                        e.allowed
                    ),
                );
                None
            }
        }
    }
}

/// Validates a notification body against every rule and the code lists in force on its
/// diagnosis date. `today` is the intake date (no future diagnosis dates).
pub fn validate_notification(
    body: &Value,
    lists: &CodeLists,
    today: NaiveDate,
    limits: &Limits,
) -> Result<Notification, Vec<Violation>> {
    let Value::Object(map) = body else {
        return Err(vec![Violation {
            field: String::new(),
            value: Value::Null,
            rule: Rule::BodyNotObject,
            message: "the body must be a JSON object with the notification's fields".into(),
            message_nl: "de inhoud moet een JSON-object met de velden van de melding zijn".into(),
        }]);
    };
    let mut c = Checker {
        body: map,
        limits,
        violations: Vec::new(),
    };

    for (key, value) in map {
        if !NOTIFICATION_FIELDS.contains(&key.as_str()) {
            c.push(
                key,
                value,
                Rule::FieldUnknown,
                format!(
                    "unknown field '{key}': the notification takes only {}",
                    NOTIFICATION_FIELDS.join(", ")
                ),
                format!(
                    "onbekend veld '{key}': de melding kent alleen {}",
                    NOTIFICATION_FIELDS.join(", ")
                ),
            );
        }
    }

    // Dates first: code validity depends on the diagnosis date.
    let diagnosis_date = check_diagnosis_date(&mut c, today);
    let affiliation = check_affiliation(&mut c, lists, today);
    let diagnosis_code = check_diagnosis(&mut c, lists, diagnosis_date);
    let exposures = check_exposures(&mut c, lists, diagnosis_date);
    let sector_code = check_sector(&mut c, lists, diagnosis_date);
    let occupation_code = check_occupation(&mut c, lists);
    let sex = c.category("sex", Rule::SexInvalid, Sex::parse);
    let birth_year = check_birth_year(&mut c, diagnosis_date.unwrap_or(today).year());
    let consequence = c.category("consequence", Rule::ConsequenceInvalid, Consequence::parse);
    let absence_band = c.category("absence_band", Rule::AbsenceBandInvalid, AbsenceBand::parse);
    let detection_route = c.category(
        "detection_route",
        Rule::DetectionRouteInvalid,
        DetectionRoute::parse,
    );
    let prevention_advice = check_advice(&mut c);
    let guideline_code = check_guideline(&mut c, lists, diagnosis_code.as_deref(), diagnosis_date);

    match (
        affiliation,
        diagnosis_code,
        exposures,
        sector_code,
        occupation_code,
        sex,
        birth_year,
        diagnosis_date,
        consequence,
        absence_band,
        detection_route,
        prevention_advice,
        guideline_code,
    ) {
        (
            Some(affiliation),
            Some(diagnosis_code),
            Some(exposures),
            Some(sector_code),
            Some(occupation_code),
            Some(sex),
            Some(birth_year),
            Some(diagnosis_date),
            Some(consequence),
            Some(absence_band),
            Some(detection_route),
            Some(prevention_advice),
            Some(guideline_code),
        ) if c.violations.is_empty() => Ok(Notification {
            affiliation,
            diagnosis_code,
            exposures,
            sector_code,
            occupation_code,
            sex,
            birth_year,
            diagnosis_date,
            consequence,
            absence_band,
            detection_route,
            prevention_advice,
            guideline_code,
        }),
        _ => Err(c.violations),
    }
}

fn check_diagnosis_date(c: &mut Checker<'_>, today: NaiveDate) -> Option<NaiveDate> {
    let text = c.text("diagnosis_date", true)?;
    let parsed = (text.len() == 10)
        .then(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
        .flatten();
    let value = Value::String(text.to_string());
    let Some(date) = parsed else {
        c.push(
            "diagnosis_date",
            &value,
            Rule::DiagnosisDateFormat,
            format!("diagnosis_date '{text}' is not a date; use YYYY-MM-DD, e.g. 2024-03-15"),
            format!("diagnosis_date '{text}' is geen datum; gebruik JJJJ-MM-DD, bv. 2024-03-15"),
        );
        return None;
    };
    if date > today {
        c.push(
            "diagnosis_date",
            &value,
            Rule::DiagnosisDateFuture,
            format!("diagnosis_date {date} is in the future (today is {today})"),
            format!("diagnosis_date {date} ligt in de toekomst (vandaag is {today})"),
        );
        return None;
    }
    Some(date)
}

fn check_affiliation(
    c: &mut Checker<'_>,
    lists: &CodeLists,
    today: NaiveDate,
) -> Option<Affiliation> {
    let service_id = c.text("service_id", false);
    let self_employed = match c.raw("self_employed") {
        Value::Null => false,
        Value::Bool(b) => *b,
        other => {
            c.wrong_type("self_employed", other, "true or false", "true of false");
            return None;
        }
    };
    match (service_id, self_employed) {
        (Some(id), true) => {
            c.push(
                "self_employed",
                &Value::Bool(true),
                Rule::ServiceConflict,
                format!("give either service_id ('{id}') or self_employed: true, not both"),
                format!("geef service_id ('{id}') of self_employed: true, niet allebei"),
            );
            None
        }
        (None, false) => {
            if c.violations.iter().any(|v| v.field == "service_id") {
                return None;
            }
            c.push(
                "service_id",
                &Value::Null,
                Rule::ServiceMissing,
                "service_id (your occupational health service) is required, or self_employed: true"
                    .into(),
                "service_id (uw arbodienst) is verplicht, of self_employed: true".into(),
            );
            None
        }
        (None, true) => Some(Affiliation::SelfEmployed),
        (Some(id), false) => {
            if lists.services.in_force(id, today).is_some() {
                Some(Affiliation::Service(id.to_string()))
            } else {
                c.push(
                    "service_id",
                    &Value::String(id.to_string()),
                    Rule::ServiceUnknown,
                    format!("service_id '{id}' is not a registered occupational health service; search /api/v1/codelists/services"),
                    format!("service_id '{id}' is geen geregistreerde arbodienst; zoek via /api/v1/codelists/services"),
                );
                None
            }
        }
    }
}

fn check_diagnosis(
    c: &mut Checker<'_>,
    lists: &CodeLists,
    on: Option<NaiveDate>,
) -> Option<String> {
    let code = c.text("diagnosis_code", true)?;
    let value = Value::String(code.to_string());
    let well_formed = code.len() == 4
        && code.as_bytes()[0].is_ascii_uppercase()
        && code.as_bytes()[1..].iter().all(u8::is_ascii_digit);
    if !well_formed {
        c.push(
            "diagnosis_code",
            &value,
            Rule::DiagnosisFormat,
            format!("diagnosis_code '{code}' is not a CAS code: one capital letter and three digits, e.g. L694"),
            format!("diagnosis_code '{code}' is geen CAS-code: een hoofdletter en drie cijfers, bv. L694"),
        );
        return None;
    }
    let Some(diagnosis) = lists.diagnoses.get(code) else {
        c.push(
            "diagnosis_code",
            &value,
            Rule::DiagnosisUnknown,
            format!("diagnosis_code '{code}' is not in the CAS code list; search /api/v1/codelists/diagnoses"),
            format!("diagnosis_code '{code}' staat niet in de CAS-codelijst; zoek via /api/v1/codelists/diagnoses"),
        );
        return None;
    };
    let mut ok = true;
    if diagnosis.kind == DiagnosisKind::Complaint && !COMPLAINT_CODE_EXCEPTIONS.contains(&code) {
        c.push(
            "diagnosis_code",
            &value,
            Rule::DiagnosisComplaintCode,
            format!("diagnosis_code '{code}' ({}) is a complaint code, not a diagnosis; notify the underlying disease", diagnosis.name_en),
            format!("diagnosis_code '{code}' ({}) is een klachtcode, geen diagnose; meld de onderliggende aandoening", diagnosis.name_nl),
        );
        ok = false;
    }
    if diagnosis.kind == DiagnosisKind::Accident {
        c.push(
            "diagnosis_code",
            &value,
            Rule::DiagnosisAccident,
            format!("diagnosis_code '{code}' ({}) is an acute injury from an accident, not an occupational disease; latent consequences such as PTSD may be notified", diagnosis.name_en),
            format!("diagnosis_code '{code}' ({}) is acuut letsel door een ongeval, geen beroepsziekte; late gevolgen zoals PTSS mogen wel gemeld worden", diagnosis.name_nl),
        );
        ok = false;
    }
    if let Some(date) = on {
        if !diagnosis.validity.contains(date) {
            let validity = describe_validity(diagnosis.validity);
            c.push(
                "diagnosis_code",
                &value,
                Rule::DiagnosisNotInForce,
                format!("diagnosis_code '{code}' is not valid on the diagnosis date {date} ({validity})"),
                format!("diagnosis_code '{code}' is niet geldig op de diagnosedatum {date} ({validity})"),
            );
            ok = false;
        }
    }
    ok.then(|| code.to_string())
}

fn describe_validity(v: ods_codelists::Validity) -> String {
    match v.to {
        Some(to) => format!("valid {} to {}", v.from, to),
        None => format!("valid from {}", v.from),
    }
}

fn check_exposures(
    c: &mut Checker<'_>,
    lists: &CodeLists,
    on: Option<NaiveDate>,
) -> Option<Vec<ExposureRef>> {
    let raw = c.raw("exposures");
    let items = match raw {
        Value::Null => {
            c.missing("exposures");
            return None;
        }
        Value::Array(items) => items,
        other => {
            c.wrong_type(
                "exposures",
                other,
                "a list of {code, primary}",
                "een lijst van {code, primary}",
            );
            return None;
        }
    };
    let before = c.violations.len();
    if items.is_empty() || items.len() > MAX_EXPOSURES {
        c.push(
            "exposures",
            &Value::from(items.len()),
            Rule::ExposuresCount,
            format!("give 1 to {MAX_EXPOSURES} exposures, not {}", items.len()),
            format!(
                "geef 1 tot {MAX_EXPOSURES} blootstellingen, niet {}",
                items.len()
            ),
        );
    }
    let mut exposures = Vec::new();
    for (i, item) in items.iter().enumerate().take(MAX_EXPOSURES * 2) {
        let path = format!("exposures[{i}]");
        let Value::Object(obj) = item else {
            c.wrong_type(
                &path,
                item,
                "an object {code, primary}",
                "een object {code, primary}",
            );
            continue;
        };
        for key in obj.keys().filter(|k| *k != "code" && *k != "primary") {
            c.push(
                &format!("{path}.{key}"),
                &obj[key],
                Rule::FieldUnknown,
                format!("unknown field '{key}' in an exposure: use only code and primary"),
                format!(
                    "onbekend veld '{key}' in een blootstelling: gebruik alleen code en primary"
                ),
            );
        }
        let code_path = format!("{path}.code");
        let code = c.text_at(&code_path, obj.get("code").unwrap_or(&Value::Null), true);
        let primary = match obj.get("primary") {
            None | Some(Value::Null) => {
                c.missing(&format!("{path}.primary"));
                None
            }
            Some(Value::Bool(b)) => Some(*b),
            Some(other) => {
                c.wrong_type(
                    &format!("{path}.primary"),
                    other,
                    "true or false",
                    "true of false",
                );
                None
            }
        };
        let Some(code) = code else { continue };
        let value = Value::String(code.to_string());
        match lists.exposures.get(code) {
            None => c.push(
                &code_path,
                &value,
                Rule::ExposureUnknown,
                format!("exposure '{code}' is not in the exposure list; search /api/v1/codelists/exposures"),
                format!("blootstelling '{code}' staat niet in de lijst; zoek via /api/v1/codelists/exposures"),
            ),
            Some(e) if on.is_some_and(|d| !e.validity.contains(d)) => c.push(
                &code_path,
                &value,
                Rule::ExposureNotInForce,
                format!("exposure '{code}' is not valid on the diagnosis date ({})", describe_validity(e.validity)),
                format!("blootstelling '{code}' is niet geldig op de diagnosedatum ({})", describe_validity(e.validity)),
            ),
            Some(_) => {
                if let Some(primary) = primary {
                    exposures.push(ExposureRef {
                        code: code.to_string(),
                        primary,
                    });
                }
            }
        }
    }
    if c.violations.len() > before {
        return None;
    }
    let primaries = exposures.iter().filter(|e| e.primary).count();
    if primaries != 1 {
        c.push(
            "exposures",
            &Value::from(primaries),
            Rule::ExposuresPrimary,
            format!("mark exactly one exposure as primary (now {primaries})"),
            format!("markeer precies een blootstelling als primair (nu {primaries})"),
        );
    }
    let mut seen = HashSet::new();
    for (i, e) in exposures.iter().enumerate() {
        if !seen.insert(e.code.as_str()) {
            c.push(
                &format!("exposures[{i}].code"),
                &Value::String(e.code.clone()),
                Rule::ExposuresDuplicate,
                format!("exposure '{}' is listed twice", e.code),
                format!("blootstelling '{}' staat er twee keer in", e.code),
            );
        }
    }
    (c.violations.len() == before).then_some(exposures)
}

fn check_sector(c: &mut Checker<'_>, lists: &CodeLists, on: Option<NaiveDate>) -> Option<String> {
    let code = c.text("sector_code", true)?;
    let value = Value::String(code.to_string());
    match lists.sectors.get(code) {
        None => {
            c.push(
                "sector_code",
                &value,
                Rule::SectorUnknown,
                format!("sector_code '{code}' is not in the sector list (SBI-2008 based); search /api/v1/codelists/sectors"),
                format!("sector_code '{code}' staat niet in de sectorlijst (SBI-2008); zoek via /api/v1/codelists/sectors"),
            );
            None
        }
        Some(s) if on.is_some_and(|d| !s.validity.contains(d)) => {
            c.push(
                "sector_code",
                &value,
                Rule::SectorNotInForce,
                format!(
                    "sector_code '{code}' is not valid on the diagnosis date ({})",
                    describe_validity(s.validity)
                ),
                format!(
                    "sector_code '{code}' is niet geldig op de diagnosedatum ({})",
                    describe_validity(s.validity)
                ),
            );
            None
        }
        Some(_) => Some(code.to_string()),
    }
}

fn check_occupation(c: &mut Checker<'_>, lists: &CodeLists) -> Option<String> {
    let code = c.text("occupation_code", true)?;
    let value = Value::String(code.to_string());
    if !(2..=4).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_digit()) {
        c.push(
            "occupation_code",
            &value,
            Rule::OccupationFormat,
            format!("occupation_code '{code}' must be an ISCO-08 code of 2 to 4 digits, e.g. 7512 (bakers) or 22 (health professionals)"),
            format!("occupation_code '{code}' moet een ISCO-08-code van 2 tot 4 cijfers zijn, bv. 7512 (bakkers) of 22 (gezondheidsprofessionals)"),
        );
        return None;
    }
    // ISCO-08 is strictly hierarchical: a code's first two digits are its sub-major group. Unit
    // groups not in our (abridged) list are accepted when their sub-major group exists.
    if lists.occupations.get(code).is_some() || lists.occupations.get(&code[..2]).is_some() {
        Some(code.to_string())
    } else {
        c.push(
            "occupation_code",
            &value,
            Rule::OccupationUnknown,
            format!("occupation_code '{code}' is not an ISCO-08 code; search /api/v1/codelists/occupations"),
            format!("occupation_code '{code}' is geen ISCO-08-code; zoek via /api/v1/codelists/occupations"),
        );
        None
    }
}

fn check_birth_year(c: &mut Checker<'_>, diagnosis_year: i32) -> Option<i32> {
    let raw = c.raw("birth_year");
    let year = match raw {
        Value::Null => {
            c.missing("birth_year");
            return None;
        }
        Value::Number(n) => match n.as_i64() {
            Some(y) => y,
            None => {
                c.wrong_type(
                    "birth_year",
                    raw,
                    "a whole year, e.g. 1975",
                    "een heel jaartal, bv. 1975",
                );
                return None;
            }
        },
        other => {
            c.wrong_type(
                "birth_year",
                other,
                "a whole year, e.g. 1975",
                "een heel jaartal, bv. 1975",
            );
            return None;
        }
    };
    let age = i64::from(diagnosis_year) - year;
    let (min, max) = (c.limits.min_age, c.limits.max_age);
    if age < i64::from(min) || age > i64::from(max) {
        c.push(
            "birth_year",
            raw,
            Rule::BirthYearImplausible,
            format!("birth_year {year} gives an age of {age} at diagnosis; expected {min} to {max}"),
            format!("birth_year {year} geeft een leeftijd van {age} bij diagnose; verwacht {min} tot {max}"),
        );
        return None;
    }
    i32::try_from(year).ok()
}

fn check_advice(c: &mut Checker<'_>) -> Option<Vec<PreventionAdvice>> {
    let items = match c.raw("prevention_advice") {
        Value::Null => return Some(Vec::new()),
        Value::Array(items) => items,
        other => {
            c.wrong_type(
                "prevention_advice",
                other,
                "a list of advice types",
                "een lijst van adviestypen",
            );
            return None;
        }
    };
    if items.len() > PreventionAdvice::ALL.len() {
        c.push(
            "prevention_advice",
            &Value::from(items.len()),
            Rule::FieldTooLong,
            format!(
                "prevention_advice has {} items; there are only {} advice types",
                items.len(),
                PreventionAdvice::ALL.len()
            ),
            format!(
                "prevention_advice heeft {} items; er zijn maar {} adviestypen",
                items.len(),
                PreventionAdvice::ALL.len()
            ),
        );
        return None;
    }
    let before = c.violations.len();
    let mut advice = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("prevention_advice[{i}]");
        let Some(text) = c.text_at(&path, item, true) else {
            continue;
        };
        match PreventionAdvice::parse(text) {
            Ok(a) if advice.contains(&a) => c.push(
                &path,
                item,
                Rule::PreventionAdviceDuplicate,
                format!("advice '{text}' is listed twice"),
                format!("advies '{text}' staat er twee keer in"),
            ),
            Ok(a) => advice.push(a),
            Err(e) => c.push(
                &path,
                item,
                Rule::PreventionAdviceInvalid,
                format!(
                    "advice '{text}' is not an advice type; use one of: {}",
                    e.allowed
                ),
                format!(
                    "advies '{text}' is geen adviestype; kies uit: {}",
                    e.allowed
                ),
            ),
        }
    }
    (c.violations.len() == before).then_some(advice)
}

fn check_guideline(
    c: &mut Checker<'_>,
    lists: &CodeLists,
    diagnosis: Option<&str>,
    on: Option<NaiveDate>,
) -> Option<Option<String>> {
    if matches!(c.raw("guideline_code"), Value::Null) {
        return Some(None);
    }
    let code = c.text("guideline_code", false)?;
    let value = Value::String(code.to_string());
    let guideline = lists
        .guidelines
        .get(code)
        .filter(|g| on.is_none_or(|d| g.validity.contains(d)));
    let Some(guideline) = guideline else {
        c.push(
            "guideline_code",
            &value,
            Rule::GuidelineUnknown,
            format!("guideline_code '{code}' is not a registration guideline in force; leave it out if none applies"),
            format!("guideline_code '{code}' is geen geldende registratierichtlijn; laat het veld weg als er geen van toepassing is"),
        );
        return None;
    };
    if let Some(diagnosis) = diagnosis {
        if !guideline.diagnosis_codes.iter().any(|d| d == diagnosis) {
            c.push(
                "guideline_code",
                &value,
                Rule::GuidelineMismatch,
                format!(
                    "guideline {code} ({}) does not cover diagnosis {diagnosis}; it covers {}",
                    guideline.name_en,
                    guideline.diagnosis_codes.join(", ")
                ),
                format!(
                    "richtlijn {code} ({}) gaat niet over diagnose {diagnosis}; wel over {}",
                    guideline.name_nl,
                    guideline.diagnosis_codes.join(", ")
                ),
            );
            return None;
        }
    }
    Some(Some(code.to_string()))
}

/// Validates the `period` of a zero report: a month `YYYY-MM`, not after the current month.
pub fn validate_period(value: &Value, today: NaiveDate) -> Result<Period, Vec<Violation>> {
    let text = match value {
        Value::String(s) => s.as_str(),
        Value::Null => {
            return Err(vec![Violation {
                field: "period".into(),
                value: Value::Null,
                rule: Rule::FieldRequired,
                message: "period is required (YYYY-MM)".into(),
                message_nl: "period is verplicht (JJJJ-MM)".into(),
            }])
        }
        other => {
            return Err(vec![Violation {
                field: "period".into(),
                value: other.clone(),
                rule: Rule::FieldType,
                message: "period must be a string YYYY-MM".into(),
                message_nl: "period moet een tekst JJJJ-MM zijn".into(),
            }])
        }
    };
    let period = Period::parse(text).map_err(|e| {
        vec![Violation {
            field: "period".into(),
            value: value.clone(),
            rule: Rule::PeriodFormat,
            message: e.to_string(),
            message_nl: format!("'{text}' is geen maand: gebruik JJJJ-MM, bv. 2024-03"),
        }]
    })?;
    if period > Period::of(today) {
        return Err(vec![Violation {
            field: "period".into(),
            value: value.clone(),
            rule: Rule::PeriodFuture,
            message: format!("period {period} is in the future; report a month that has begun"),
            message_nl: format!(
                "periode {period} ligt in de toekomst; meld een maand die begonnen is"
            ),
        }]);
    }
    Ok(period)
}
