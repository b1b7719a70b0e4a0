//! The demo data is deterministic and follows the reference figures (within 10%).

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::collections::{BTreeMap, BTreeSet};

use chrono::Datelike;
use ods_codelists::reference::ReferenceData;
use ods_codelists::{CodeLists, DiagnosisGroup};
use ods_generator::{generate, DemoRecord, GeneratorConfig, Plant, Scenario, INVALID_RULES};
use ods_model::Period;
use ods_validation::{validate_notification, Limits};

fn data(cfg: &GeneratorConfig) -> Vec<DemoRecord> {
    generate(
        cfg,
        &CodeLists::bundled().unwrap(),
        &ReferenceData::bundled().unwrap(),
    )
    .unwrap()
}

fn ndjson(records: &[DemoRecord]) -> String {
    records
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect()
}

#[test]
fn same_seed_gives_identical_bytes() {
    let cfg = GeneratorConfig {
        from: 2022,
        to: 2023,
        scale: 0.2,
        ..GeneratorConfig::default()
    };
    let a = ndjson(&data(&cfg));
    let b = ndjson(&data(&cfg));
    assert_eq!(a, b);
    let c = ndjson(&data(&GeneratorConfig { seed: 8, ..cfg }));
    assert_ne!(a, c);
}

fn within(actual: f64, expected: f64, tolerance: f64) -> bool {
    (actual - expected).abs() <= tolerance * expected
}

#[test]
fn ten_years_follow_the_reference_figures() {
    let cfg = GeneratorConfig::default();
    let records = data(&cfg);
    let lists = CodeLists::bundled().unwrap();
    let reference = ReferenceData::bundled().unwrap();

    let mut per_year: BTreeMap<i32, f64> = BTreeMap::new();
    let mut groups: BTreeMap<(i32, DiagnosisGroup), f64> = BTreeMap::new();
    let mut doctors_per_year: BTreeMap<i32, BTreeSet<String>> = BTreeMap::new();
    let mut all_doctors_with_cases = BTreeSet::new();
    let (mut amendments, mut withdrawals, mut invalid, mut valid, mut zero) = (0, 0, 0, 0, 0);
    let mut rules_seen = BTreeSet::new();
    for r in &records {
        match r {
            DemoRecord::Notification {
                at,
                body,
                expect_rule,
                doctor,
                ..
            } => {
                let verdict =
                    validate_notification(body, &lists, at.date_naive(), &Limits::default());
                match expect_rule {
                    Some(rule) => {
                        invalid += 1;
                        let violations = verdict.expect_err("an invalid record was accepted");
                        assert!(
                            violations.iter().any(|v| v.rule.id() == rule),
                            "{rule} not among {violations:?}"
                        );
                        rules_seen.insert(rule.clone());
                    }
                    None => {
                        valid += 1;
                        let n = verdict
                            .unwrap_or_else(|v| panic!("valid record rejected: {v:?} {body}"));
                        *per_year.entry(at.year()).or_default() += 1.0;
                        let group = lists.diagnoses.get(&n.diagnosis_code).unwrap().group;
                        *groups.entry((at.year(), group)).or_default() += 1.0;
                        doctors_per_year
                            .entry(at.year())
                            .or_default()
                            .insert(doctor.clone());
                        all_doctors_with_cases.insert(doctor.clone());
                    }
                }
            }
            DemoRecord::Amendment { .. } => amendments += 1,
            DemoRecord::Withdrawal { .. } => withdrawals += 1,
            DemoRecord::ZeroReport { period, .. } => {
                assert!(Period::parse(period).is_ok());
                zero += 1;
            }
        }
    }
    // yearly totals: within 10% of the registry
    for year in [2014, 2016, 2017, 2018, 2022, 2023] {
        let expected = f64::from(reference.registry_year(year).unwrap().notifications);
        assert!(
            within(per_year[&year], expected, 0.10),
            "{year}: {} vs {expected}",
            per_year[&year]
        );
    }
    // group mix at anchor years
    for (year, group, share) in [
        (2016, DiagnosisGroup::Psychological, 0.42),
        (2016, DiagnosisGroup::Musculoskeletal, 0.27),
        (2016, DiagnosisGroup::Hearing, 0.22),
        (2018, DiagnosisGroup::Psychological, 0.58),
        (2018, DiagnosisGroup::Musculoskeletal, 0.29),
        (2020, DiagnosisGroup::Infectious, 0.39),
    ] {
        let actual = groups.get(&(year, group)).copied().unwrap_or(0.0) / per_year[&year];
        assert!(
            within(actual, share, 0.10),
            "{year} {group:?}: {actual:.3} vs {share}"
        );
    }
    // doctors: 46% never notify; ~30% every year; reporting doctors per year near the registry's
    let never = 1.0 - all_doctors_with_cases.len() as f64 / cfg.doctors as f64;
    assert!(within(never, 0.46, 0.10), "never: {never}");
    let every_year = all_doctors_with_cases
        .iter()
        .filter(|d| doctors_per_year.values().all(|set| set.contains(*d)))
        .count() as f64
        / cfg.doctors as f64;
    assert!(within(every_year, 0.30, 0.10), "every year: {every_year}");
    let reporting_2022 = doctors_per_year[&2022].len() as f64;
    assert!(
        within(reporting_2022, 683.0, 0.10),
        "reporting doctors 2022: {reporting_2022}"
    );
    // amendments ~1.5%, withdrawals ~0.5%, invalid ~3% of every rule kind, zero reports present
    let share = |k: usize| k as f64 / valid as f64;
    assert!(
        within(share(amendments), 0.015, 0.25),
        "{}",
        share(amendments)
    );
    assert!(
        within(share(withdrawals), 0.005, 0.35),
        "{}",
        share(withdrawals)
    );
    assert!(within(share(invalid), 0.03, 0.10), "{}", share(invalid));
    assert_eq!(rules_seen.len(), INVALID_RULES.len());
    assert!(zero > 1000, "{zero}");
}

#[test]
fn planted_signals_appear() {
    let base = GeneratorConfig {
        from: 2020,
        to: 2023,
        ..GeneratorConfig::default()
    };
    let scenario = Scenario {
        plants: vec![
            Plant::Rise {
                diagnosis: "R612".into(),
                exposure: "CH012".into(),
                sector: "1071".into(),
                from: Period::parse("2022-01").unwrap(),
                extra_per_month: 6.0,
            },
            Plant::ReportingDrop {
                sbi_section: "F".into(),
                from: Period::parse("2022-01").unwrap(),
                factor: 0.2,
            },
            Plant::NewPair {
                diagnosis: "R612".into(),
                exposure: "CH018".into(),
                sector: "9602".into(),
                from: Period::parse("2023-01").unwrap(),
                per_month: 3.0,
            },
        ],
    };
    let planted = data(&GeneratorConfig {
        scenario,
        ..base.clone()
    });
    let plain = data(&base);
    let count = |records: &[DemoRecord], f: &dyn Fn(&serde_json::Value, i32) -> bool| {
        records.iter().filter(|r| matches!(r, DemoRecord::Notification { body, at, expect_rule: None, .. } if f(body, at.year()))).count()
    };
    let bakery_asthma = |b: &serde_json::Value, y: i32| {
        y >= 2022 && b["diagnosis_code"] == "R612" && b["sector_code"] == "1071"
    };
    assert!(count(&planted, &bakery_asthma) >= count(&plain, &bakery_asthma) + 100);
    let lists = CodeLists::bundled().unwrap();
    let construction = |b: &serde_json::Value, y: i32| {
        y >= 2022 && lists.sbi_section(b["sector_code"].as_str().unwrap()) == Some("F")
    };
    assert!((count(&planted, &construction) as f64) < 0.4 * count(&plain, &construction) as f64);
    let new_pair = |b: &serde_json::Value, _: i32| {
        b["diagnosis_code"] == "R612" && b["exposures"][0]["code"] == "CH018"
    };
    assert_eq!(count(&plain, &new_pair), 0);
    assert!(count(&planted, &new_pair) >= 20);
}
