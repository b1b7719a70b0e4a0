//! A standard Avro library (Python `fastavro`) decodes our payloads with the schema files.
//!
//! Needs `python3` with `fastavro` (the test script installs it). Without it the test is skipped
//! with a notice, unless `ODS_THIRD_PARTY_TESTS=1` (set by `tests/run.sh` and CI), where a
//! missing tool is a failure.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::path::Path;
use std::process::Command;

use chrono::{NaiveDate, TimeZone, Utc};
use ods_model::{
    AbsenceBand, Affiliation, Consequence, DetectionRoute, Event, ExposureRef, Notification,
    NotificationAmended, NotificationFiled, NotificationId, NotificationWithdrawn, Period,
    PreventionAdvice, ReporterPseudonym, Sex, WithdrawalReason, ZeroReport,
};
use ods_wire::records::{DeadLetter, NotificationRejected, RejectionReason};
use serde_json::{json, Value};
use uuid::Uuid;

fn fastavro_available() -> bool {
    Command::new("python3")
        .args(["-c", "import fastavro"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn notification() -> Notification {
    Notification {
        affiliation: Affiliation::Service("AD0001".into()),
        diagnosis_code: "R612".into(),
        exposures: vec![
            ExposureRef {
                code: "CH012".into(),
                primary: true,
            },
            ExposureRef {
                code: "CH013".into(),
                primary: false,
            },
        ],
        sector_code: "1071".into(),
        occupation_code: "7512".into(),
        sex: Sex::Female,
        birth_year: 1979,
        diagnosis_date: NaiveDate::from_ymd_opt(2024, 2, 29).unwrap(),
        consequence: Consequence::Temporary,
        absence_band: AbsenceBand::OneToThreeMonths,
        detection_route: DetectionRoute::PmoPago,
        prevention_advice: vec![
            PreventionAdvice::PersonalProtectiveEquipment,
            PreventionAdvice::Technical,
        ],
        guideline_code: Some("G001".into()),
    }
}

#[test]
fn fastavro_decodes_every_message_kind() {
    if !fastavro_available() {
        assert!(
            std::env::var("ODS_THIRD_PARTY_TESTS").as_deref() != Ok("1"),
            "python3 with fastavro is required (pip install fastavro)"
        );
        eprintln!("SKIPPED: python3 with fastavro not found; run tests/run.sh to install it");
        return;
    }
    let reporter = ReporterPseudonym::from_hex(&"5e".repeat(16)).unwrap();
    let at = Utc.with_ymd_and_hms(2024, 3, 4, 10, 30, 0).unwrap();
    let id = NotificationId(Uuid::from_u128(42));
    let events = [
        Event::Filed(NotificationFiled {
            event_id: Uuid::from_u128(1),
            notification_id: id,
            reporter: reporter.clone(),
            notified_at: at,
            notification: notification(),
        }),
        Event::Amended(NotificationAmended {
            event_id: Uuid::from_u128(2),
            notification_id: id,
            version: 2,
            reporter: reporter.clone(),
            notified_at: at,
            amended_at: at,
            notification: Notification {
                affiliation: Affiliation::SelfEmployed,
                guideline_code: None,
                ..notification()
            },
        }),
        Event::Withdrawn(NotificationWithdrawn {
            event_id: Uuid::from_u128(3),
            notification_id: id,
            version: 3,
            reporter: reporter.clone(),
            withdrawn_at: at,
            reason: WithdrawalReason::NotOccupational,
        }),
        Event::ZeroReport(ZeroReport {
            event_id: Uuid::from_u128(4),
            reporter: reporter.clone(),
            affiliation: Affiliation::Service("AD0002".into()),
            period: Period::parse("2024-02").unwrap(),
            reported_at: at,
        }),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let (_, bytes) = ods_wire::encode_event(event).unwrap();
        let path = dir.path().join(format!("{i}.bin"));
        std::fs::write(&path, bytes).unwrap();
        files.push(path);
    }
    let rejected = NotificationRejected {
        notification_id: Some(id.to_string()),
        version: 1,
        reporter_pseudonym: reporter.to_string(),
        reasons: vec![RejectionReason {
            field: "diagnosis_code".into(),
            value: "\"L111\"".into(),
            rule: "diagnosis.complaint_code".into(),
            message: "m".into(),
            message_nl: "n".into(),
        }],
        original_schema_id: 1,
        original_payload: vec![0, 0, 0, 0, 1, 9],
        source_partition: 0,
        source_offset: 12,
        rejected_at: at.timestamp_millis(),
    };
    let dead = DeadLetter {
        error: "bad magic".into(),
        payload: vec![7, 7],
        source_topic: "ods.notifications.v1".into(),
        source_partition: 2,
        source_offset: 99,
        failed_at: at.timestamp_millis(),
    };
    for (i, bytes) in [
        ods_wire::encode_record(&rejected).unwrap(),
        ods_wire::encode_record(&dead).unwrap(),
    ]
    .into_iter()
    .enumerate()
    {
        let path = dir.path().join(format!("r{i}.bin"));
        std::fs::write(&path, bytes).unwrap();
        files.push(path);
    }

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new("python3")
        .arg(root.join("tests/avro/decode_with_fastavro.py"))
        .arg(root.join("schemas"))
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "fastavro failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decoded: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(decoded.len(), 6);
    let ids: Vec<i64> = decoded
        .iter()
        .map(|d| d["schema_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![1, 2, 3, 4, 6, 7]);

    let filed = &decoded[0]["record"];
    assert_eq!(filed["notification_id"], json!(id.to_string()));
    assert_eq!(filed["reporter_pseudonym"], json!(reporter.to_string()));
    assert_eq!(filed["notified_at"], json!(at.timestamp_millis()));
    let content = &filed["content"];
    assert_eq!(content["diagnosis_date"], json!("2024-02-29"));
    assert_eq!(content["absence_band"], json!("m1to3"));
    assert_eq!(content["sex"], json!("F"));
    assert_eq!(content["detection_route"], json!("pmo_pago"));
    assert_eq!(content["prevention_advice"], json!(["ppe", "technical"]));
    assert_eq!(
        content["exposures"],
        json!([{"code": "CH012", "primary": true}, {"code": "CH013", "primary": false}])
    );
    assert_eq!(content["service_id"], json!("AD0001"));
    assert_eq!(content["guideline_code"], json!("G001"));
    assert_eq!(
        decoded[1]["record"]["content"]["self_employed"],
        json!(true)
    );
    assert_eq!(decoded[1]["record"]["content"]["service_id"], Value::Null);
    assert_eq!(decoded[1]["record"]["version"], json!(2));
    assert_eq!(decoded[2]["record"]["reason"], json!("not_occupational"));
    assert_eq!(decoded[3]["record"]["period"], json!("2024-02"));
    assert_eq!(
        decoded[4]["record"]["reasons"][0]["rule"],
        json!("diagnosis.complaint_code")
    );
    assert_eq!(
        decoded[4]["record"]["original_payload"]["base64"],
        json!("AAAAAAEJ")
    );
    assert_eq!(decoded[5]["record"]["source_offset"], json!(99));
}
