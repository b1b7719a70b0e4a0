//! Every rule has a rejecting case and an accepting case (a near miss that must pass).

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::collections::BTreeSet;
use std::path::Path;

use chrono::NaiveDate;
use ods_codelists::CodeLists;
use ods_validation::{validate_notification, validate_period, Limits, Rule};
use serde_json::{json, Value};

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 6, 30).unwrap()
}

fn base() -> Value {
    json!({
        "service_id": "AD0001",
        "diagnosis_code": "L694",
        "exposures": [{"code": "ER003", "primary": true}, {"code": "PS001", "primary": false}],
        "sector_code": "1071",
        "occupation_code": "7512",
        "sex": "F",
        "birth_year": 1980,
        "diagnosis_date": "2024-03-01",
        "consequence": "temporary",
        "absence_band": "1to3m",
        "detection_route": "absence_guidance",
        "prevention_advice": ["organisational", "workplace_survey"],
        "guideline_code": "D001"
    })
}

fn with(changes: Value) -> Value {
    let mut body = base();
    for (k, v) in changes.as_object().unwrap() {
        if v == &json!("__remove__") {
            body.as_object_mut().unwrap().remove(k);
        } else {
            body[k] = v.clone();
        }
    }
    body
}

fn rules_of(lists: &CodeLists, body: &Value) -> BTreeSet<&'static str> {
    match validate_notification(body, lists, today(), &Limits::default()) {
        Ok(_) => BTreeSet::new(),
        Err(violations) => violations.iter().map(|v| v.rule.id()).collect(),
    }
}

/// (rule, rejecting change, accepting change)
fn cases() -> Vec<(Rule, Value, Value)> {
    vec![
        (
            Rule::FieldUnknown,
            json!({"worker_name": "J. Jansen"}),
            json!({}),
        ),
        (
            Rule::FieldRequired,
            json!({"sector_code": "__remove__"}),
            json!({"prevention_advice": "__remove__"}),
        ),
        (
            Rule::FieldType,
            json!({"birth_year": "1980"}),
            json!({"birth_year": 1980}),
        ),
        (
            Rule::FieldTooLong,
            json!({"service_id": "A".repeat(33)}),
            json!({"service_id": "AD0002"}),
        ),
        (
            Rule::ServiceMissing,
            json!({"service_id": "__remove__"}),
            json!({"service_id": "__remove__", "self_employed": true}),
        ),
        (
            Rule::ServiceConflict,
            json!({"self_employed": true}),
            json!({"self_employed": false}),
        ),
        (
            Rule::ServiceUnknown,
            json!({"service_id": "AD9999"}),
            json!({"service_id": "AD0040"}),
        ),
        (
            Rule::DiagnosisFormat,
            json!({"diagnosis_code": "M77.1"}),
            json!({"diagnosis_code": "L695", "guideline_code": "__remove__"}),
        ),
        (
            Rule::DiagnosisUnknown,
            json!({"diagnosis_code": "Z999"}),
            json!({"diagnosis_code": "P612", "guideline_code": "E002"}),
        ),
        (
            Rule::DiagnosisNotInForce,
            json!({"diagnosis_code": "L691", "guideline_code": "__remove__"}),
            json!({"diagnosis_code": "L691", "guideline_code": "__remove__", "diagnosis_date": "2012-12-31", "birth_year": 1970}),
        ),
        (
            Rule::DiagnosisComplaintCode,
            json!({"diagnosis_code": "L111", "guideline_code": "__remove__"}),
            json!({"diagnosis_code": "L112", "guideline_code": "__remove__"}),
        ),
        (
            Rule::DiagnosisAccident,
            json!({"diagnosis_code": "L510", "guideline_code": "__remove__"}),
            json!({"diagnosis_code": "P620", "guideline_code": "__remove__"}),
        ),
        (
            Rule::ExposuresCount,
            json!({"exposures": []}),
            json!({"exposures": [{"code": "ER003", "primary": true}]}),
        ),
        (
            Rule::ExposuresPrimary,
            json!({"exposures": [{"code": "ER003", "primary": true}, {"code": "PS001", "primary": true}]}),
            json!({"exposures": [{"code": "ER003", "primary": false}, {"code": "PS001", "primary": true}]}),
        ),
        (
            Rule::ExposuresDuplicate,
            json!({"exposures": [{"code": "ER003", "primary": true}, {"code": "ER003", "primary": false}]}),
            json!({"exposures": [{"code": "ER003", "primary": true}, {"code": "ER001", "primary": false}]}),
        ),
        (
            Rule::ExposureUnknown,
            json!({"exposures": [{"code": "ER999", "primary": true}]}),
            json!({"exposures": [{"code": "ER004", "primary": true}]}),
        ),
        (
            Rule::ExposureNotInForce,
            json!({"exposures": [{"code": "PH099", "primary": true}]}),
            json!({"exposures": [{"code": "PH099", "primary": true}], "diagnosis_date": "2016-12-31"}),
        ),
        (
            Rule::SectorUnknown,
            json!({"sector_code": "9999"}),
            json!({"sector_code": "F"}),
        ),
        (
            Rule::OccupationFormat,
            json!({"occupation_code": "7"}),
            json!({"occupation_code": "75"}),
        ),
        (
            Rule::OccupationUnknown,
            json!({"occupation_code": "1099"}),
            json!({"occupation_code": "7513"}),
        ),
        (Rule::SexInvalid, json!({"sex": "V"}), json!({"sex": "X"})),
        (
            Rule::BirthYearImplausible,
            json!({"birth_year": 2015}),
            json!({"birth_year": 2010}),
        ),
        (
            Rule::DiagnosisDateFormat,
            json!({"diagnosis_date": "01-03-2024"}),
            json!({"diagnosis_date": "2024-01-03"}),
        ),
        (
            Rule::DiagnosisDateFuture,
            json!({"diagnosis_date": "2024-07-01"}),
            json!({"diagnosis_date": "2024-06-30"}),
        ),
        (
            Rule::ConsequenceInvalid,
            json!({"consequence": "severe"}),
            json!({"consequence": "death"}),
        ),
        (
            Rule::AbsenceBandInvalid,
            json!({"absence_band": "2m"}),
            json!({"absence_band": "gt6m"}),
        ),
        (
            Rule::DetectionRouteInvalid,
            json!({"detection_route": "pmo"}),
            json!({"detection_route": "pmo_pago"}),
        ),
        (
            Rule::PreventionAdviceInvalid,
            json!({"prevention_advice": ["yoga"]}),
            json!({"prevention_advice": ["ppe"]}),
        ),
        (
            Rule::PreventionAdviceDuplicate,
            json!({"prevention_advice": ["ppe", "ppe"]}),
            json!({"prevention_advice": []}),
        ),
        (
            Rule::GuidelineUnknown,
            json!({"guideline_code": "Z001"}),
            json!({"guideline_code": "__remove__"}),
        ),
        (
            Rule::GuidelineMismatch,
            json!({"guideline_code": "E002"}),
            json!({"guideline_code": "D001"}),
        ),
    ]
}

#[test]
fn the_base_notification_is_accepted() {
    let lists = CodeLists::bundled().unwrap();
    assert_eq!(rules_of(&lists, &base()), BTreeSet::new());
}

#[test]
fn every_rule_rejects_its_case_and_accepts_the_near_miss() {
    let lists = CodeLists::bundled().unwrap();
    for (rule, reject, accept) in cases() {
        let rejected = rules_of(&lists, &with(reject.clone()));
        assert_eq!(
            rejected,
            BTreeSet::from([rule.id()]),
            "{} should reject {reject}",
            rule.id()
        );
        let accepted = rules_of(&lists, &with(accept.clone()));
        assert!(
            accepted.is_empty(),
            "{} should accept {accept}, got {accepted:?}",
            rule.id()
        );
    }
}

#[test]
fn all_complaint_code_exceptions_are_accepted_and_other_complaints_rejected() {
    let lists = CodeLists::bundled().unwrap();
    for code in ods_validation::COMPLAINT_CODE_EXCEPTIONS {
        let body = with(json!({"diagnosis_code": code, "guideline_code": "__remove__"}));
        assert!(rules_of(&lists, &body).is_empty(), "{code} is an exception");
    }
    for d in lists
        .diagnoses
        .iter()
        .filter(|d| d.code.as_bytes()[1] == b'1')
    {
        if ods_validation::COMPLAINT_CODE_EXCEPTIONS.contains(&d.code.as_str()) {
            continue;
        }
        let body = with(json!({"diagnosis_code": d.code, "guideline_code": "__remove__"}));
        assert!(
            rules_of(&lists, &body).contains("diagnosis.complaint_code"),
            "{}",
            d.code
        );
    }
}

#[test]
fn code_validity_follows_the_diagnosis_date() {
    let lists = CodeLists::bundled().unwrap();
    // COVID-19 exists only from 2020-03-01
    let covid = json!({"diagnosis_code": "R605", "guideline_code": "__remove__", "exposures": [{"code": "BI001", "primary": true}]});
    let mut early = with(covid.clone());
    early["diagnosis_date"] = json!("2019-12-01");
    // SARS-CoV-2 (BI001) is equally only valid from 2020-03-01
    assert_eq!(
        rules_of(&lists, &early),
        BTreeSet::from(["diagnosis.not_in_force", "exposure.not_in_force"])
    );
    let mut later = with(covid);
    later["diagnosis_date"] = json!("2020-04-01");
    assert_eq!(rules_of(&lists, &later), BTreeSet::new());
}

#[test]
fn sector_validity_is_checked_on_the_diagnosis_date() {
    // The bundled sector list has no retired sector; add one to a copy of the lists.
    let dir = tempfile_dir();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/codelists");
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "csv") {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    let sectors = dir.join("sectors.csv");
    let mut text = std::fs::read_to_string(&sectors).unwrap();
    text.push_str("1072,107,C,class,Rusks and biscuits (retired test row),Beschuit en biscuit,2008-01-01,2019-12-31,\n");
    std::fs::write(&sectors, text).unwrap();
    let lists = CodeLists::load_dir(&dir).unwrap();
    let body = with(json!({"sector_code": "1072"}));
    assert_eq!(
        rules_of(&lists, &body),
        BTreeSet::from(["sector.not_in_force"])
    );
    let mut old = body.clone();
    old["diagnosis_date"] = json!("2019-12-31");
    assert_eq!(rules_of(&lists, &old), BTreeSet::new());
    std::fs::remove_dir_all(&dir).unwrap();
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ods-validation-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn every_violation_is_reported_at_once_with_field_value_and_messages() {
    let lists = CodeLists::bundled().unwrap();
    let body = with(
        json!({"diagnosis_code": "L111", "sex": "V", "birth_year": 2020, "bsn": "123456782", "guideline_code": "__remove__"}),
    );
    let violations = validate_notification(&body, &lists, today(), &Limits::default()).unwrap_err();
    let fields: BTreeSet<&str> = violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(
        fields,
        BTreeSet::from(["bsn", "birth_year", "diagnosis_code", "sex"])
    );
    let sex = violations.iter().find(|v| v.field == "sex").unwrap();
    assert_eq!(sex.value, json!("V"));
    assert_eq!(sex.rule, Rule::SexInvalid);
    assert!(sex.message.contains("M, F, X") && sex.message_nl.contains("M, F, X"));
    let json = serde_json::to_value(&violations[0]).unwrap();
    for key in ["field", "value", "rule", "message", "message_nl"] {
        assert!(json.get(key).is_some(), "{key} missing in {json}");
    }
}

#[test]
fn non_object_bodies_are_rejected_not_panicked_on() {
    let lists = CodeLists::bundled().unwrap();
    for body in [json!(null), json!([]), json!("x"), json!(3)] {
        assert_eq!(rules_of(&lists, &body), BTreeSet::from(["body.not_object"]));
    }
    let deep = json!({"exposures": [1, "x", null, {"code": 5, "primary": "yes", "extra": 1}]});
    let rules = rules_of(&lists, &deep);
    assert!(
        rules.contains("field.type") && rules.contains("field.unknown"),
        "{rules:?}"
    );
}

#[test]
fn zero_report_periods() {
    assert!(validate_period(&json!("2024-06"), today()).is_ok());
    let rule = |v: Value| validate_period(&v, today()).unwrap_err()[0].rule;
    assert_eq!(rule(json!("2024-07")), Rule::PeriodFuture);
    assert_eq!(rule(json!("2024-6")), Rule::PeriodFormat);
    assert_eq!(rule(json!(202406)), Rule::FieldType);
    assert_eq!(rule(Value::Null), Rule::FieldRequired);
}

#[test]
fn every_rule_has_a_case() {
    let mut covered: BTreeSet<Rule> = cases().into_iter().map(|(rule, _, _)| rule).collect();
    covered.extend([
        Rule::BodyNotObject,
        Rule::SectorNotInForce,
        Rule::PeriodFormat,
        Rule::PeriodFuture,
    ]);
    let missing: Vec<&str> = Rule::ALL
        .iter()
        .filter(|r| !covered.contains(r))
        .map(|r| r.id())
        .collect();
    assert!(missing.is_empty(), "rules without a test case: {missing:?}");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Arbitrary JSON never panics the validator, and acceptance implies the typed result
        /// re-validates (the JSON contract round-trips).
        #[test]
        fn arbitrary_json_never_panics(key in "[a-z_]{1,16}", value in any::<i64>(), text in ".{0,40}") {
            let lists = CodeLists::bundled().unwrap();
            let mut body = base();
            body[key.clone()] = json!(value);
            let _ = validate_notification(&body, &lists, today(), &Limits::default());
            body[key] = json!(text);
            if let Ok(n) = validate_notification(&body, &lists, today(), &Limits::default()) {
                let again = serde_json::to_value(&n).unwrap();
                prop_assert!(validate_notification(&again, &lists, today(), &Limits::default()).is_ok());
            }
        }
    }
}
