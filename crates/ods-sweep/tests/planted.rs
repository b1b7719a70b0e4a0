//! Acceptance of the signal sweep on generated national data (2014-2023, the demo generator at
//! national volume) folded through the processor into the embedded store: the planted rise, the
//! planted reporting drop, the planted new pair and the planted silent service of
//! `deploy/scenarios/planted-signals.json` are each found, at the right place and time; on the same data without plants the false alarm
//! rate of the aberration rule stays near its nominal level (printed), and nothing is flagged
//! where nothing was planted.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::path::Path;
use std::sync::Arc;

use ods_codelists::reference::ReferenceData;
use ods_codelists::CodeLists;
use ods_generator::events::demo_events;
use ods_generator::GeneratorConfig;
use ods_generator::Scenario;
use ods_log::LogRecord;
use ods_model::Period;
use ods_processor::Processor;
use ods_signals::{aberrations, Signal, SignalKind};
use ods_store::EmbeddedStore;
use ods_sweep::{section_group_series, sweep, SweepConfig};
use ods_validation::Limits;
use tokio::sync::OnceCell;

struct Folded {
    _dir: tempfile::TempDir,
    store: EmbeddedStore,
}

/// National demo data, with or without the planted scenario, folded into an embedded store.
fn fold(planted: bool) -> Folded {
    let lists = CodeLists::bundled().unwrap();
    let reference = ReferenceData::bundled().unwrap();
    let scenario = if planted {
        Scenario::load(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../deploy/scenarios/planted-signals.json"),
        )
        .unwrap()
    } else {
        Scenario::default()
    };
    let config = GeneratorConfig {
        seed: 7,
        scenario,
        ..GeneratorConfig::default()
    };
    let demo = ods_generator::generate(&config, &lists, &reference).unwrap();
    let events = demo_events(&demo, &lists, None).events;
    let records: Vec<LogRecord> = events
        .iter()
        .enumerate()
        .map(|(offset, e)| LogRecord {
            topic: "t".into(),
            offset: offset as i64,
            key: e.key(),
            payload: ods_wire::encode_event(e).unwrap().1,
            appended_at_ms: 0,
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("store.sqlite")).unwrap();
    let processor = Processor::new(Arc::new(lists), Limits::default());
    for chunk in records.chunks(5000) {
        store.apply_batch("t", 0, &processor, chunk).unwrap();
    }
    Folded { _dir: dir, store }
}

async fn planted() -> &'static Folded {
    static CELL: OnceCell<Folded> = OnceCell::const_new();
    CELL.get_or_init(|| async { tokio::task::spawn_blocking(|| fold(true)).await.unwrap() })
        .await
}

async fn unplanted() -> &'static Folded {
    static CELL: OnceCell<Folded> = OnceCell::const_new();
    CELL.get_or_init(|| async { tokio::task::spawn_blocking(|| fold(false)).await.unwrap() })
        .await
}

fn p(s: &str) -> Period {
    Period::parse(s).unwrap()
}

async fn signals(store: &EmbeddedStore, config: &SweepConfig) -> Vec<Signal> {
    let reference = ReferenceData::bundled().unwrap();
    sweep(store, &reference, config).await.unwrap()
}

fn of_kind(signals: &[Signal], kind: SignalKind) -> Vec<&Signal> {
    signals.iter().filter(|s| s.kind == kind).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_planted_rise_is_an_aberration_in_its_section_and_group_from_its_first_months() {
    let f = planted().await;
    // R612 with CH012 in sector 1071 (bakeries, section C), +6 a month from 2021-03
    let lists = CodeLists::bundled().unwrap();
    let group = lists
        .diagnoses
        .get("R612")
        .unwrap()
        .group
        .code()
        .to_string();
    let config = SweepConfig {
        recent_months: 4,
        ..SweepConfig::as_of(p("2021-06"))
    };
    let found = signals(&f.store, &config).await;
    let is_planted_series = |s: &&Signal| {
        s.kind == SignalKind::Aberration
            && s.subject["sbi_section"] == "C"
            && s.subject["diagnosis_group"] == group
    };
    let rises: Vec<&Signal> = found.iter().filter(is_planted_series).collect();
    // the plant's first four months: alarms, the first one in the plant's first month
    assert!(
        rises.len() >= 2,
        "C x {group} in 2021-03..2021-06: {rises:#?}"
    );
    assert!(rises.iter().any(|s| s.period == "2021-03"), "{rises:#?}");
    for s in &rises {
        assert!(("2021-03".."2021-07").contains(&s.period.as_str()), "{s:?}");
        assert!(s.numbers["observed"] > s.numbers["upperbound"], "{s:?}");
        assert!(s.explanation.contains("more than"), "{}", s.explanation);
    }
    // the twelve months before the plant: at most a chance alarm
    let before = SweepConfig {
        recent_months: 12,
        ..SweepConfig::as_of(p("2021-02"))
    };
    let quiet = signals(&f.store, &before).await;
    let chance: Vec<&Signal> = quiet.iter().filter(is_planted_series).collect();
    assert!(chance.len() <= 1, "{chance:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_planted_reporting_drop_is_under_reporting_of_construction_only() {
    let f = planted().await;
    // section F reports 30% of its cases from 2020 on
    for year in ["2020", "2022"] {
        let found = signals(&f.store, &SweepConfig::as_of(p(&format!("{year}-12")))).await;
        let under = of_kind(&found, SignalKind::UnderReporting);
        let sections: Vec<&str> = under
            .iter()
            .map(|s| s.subject["sbi_section"].as_str())
            .collect();
        assert_eq!(sections, ["F"], "{year}: {under:#?}");
        let s = under[0];
        assert_eq!(s.period, year);
        assert!(s.numbers["sir"] < 0.6, "{s:?}");
        assert!(s.explanation.contains("probable under-reporting"));
    }
    // before the drop, construction reports as expected
    let found = signals(&f.store, &SweepConfig::as_of(p("2019-12"))).await;
    assert!(
        of_kind(&found, SignalKind::UnderReporting).is_empty(),
        "{found:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_planted_new_pair_emerges_once_it_has_several_reporters() {
    let f = planted().await;
    // R612 with CH018 (sector 9602), 3 a month from 2022-06
    let found = signals(&f.store, &SweepConfig::as_of(p("2023-05"))).await;
    let pairs = of_kind(&found, SignalKind::EmergingPair);
    let new_pair = pairs
        .iter()
        .find(|s| s.subject["diagnosis"] == "R612" && s.subject["exposure"] == "CH018");
    let s = new_pair.unwrap_or_else(|| panic!("R612 x CH018 not found: {pairs:#?}"));
    assert_eq!(s.period, "2022-06..2023-05");
    assert!(s.numbers["reporters"] >= 2.0, "{s:?}");
    // it stands out: the most notifications and the strongest lower IC bound of all pairs
    // that emerged, which are otherwise chance pairs of a few notifications
    for other in &pairs {
        assert!(other.numbers["a"] <= s.numbers["a"], "{other:?}");
        assert!(other.numbers["ic025"] <= s.numbers["ic025"], "{other:?}");
    }
    // established associations (noise and hearing loss, ...) do not emerge again: at most one
    // in twenty of the window's pairs is news (printed)
    let analysed = ods_sweep::pair_counts(&f.store, Some(p("2022-06")), p("2023-05"))
        .await
        .unwrap()
        .len();
    println!(
        "{} emerging pairs of {analysed} pairs in the window",
        pairs.len()
    );
    assert!(
        pairs.len() * 20 <= analysed,
        "{} of {analysed}",
        pairs.len()
    );
    // a year earlier the pair did not exist
    let before = signals(&f.store, &SweepConfig::as_of(p("2022-05"))).await;
    assert!(!before.iter().any(|s| {
        s.subject.get("exposure").map(String::as_str) == Some("CH018")
            && s.subject.get("diagnosis").map(String::as_str) == Some("R612")
    }));
}

#[tokio::test(flavor = "multi_thread")]
async fn without_plants_the_false_alarm_rate_stays_near_nominal() {
    let f = unplanted().await;
    let config = SweepConfig::as_of(p("2023-12"));
    // every month of the last three years of every section x group series
    let series = section_group_series(&f.store, config.as_of).await.unwrap();
    let evaluated_months = 36;
    let alarms = aberrations(&series, &config.control, evaluated_months).unwrap();
    let evaluated: usize = series
        .iter()
        .filter(|s| s.counts.len() > config.control.b * 12 + config.control.w)
        .count()
        * evaluated_months;
    let rate = alarms.len() as f64 / evaluated as f64;
    println!(
        "false alarm rate without plants: {} alarms in {evaluated} series-months = {:.4} (nominal alpha {})",
        alarms.len(),
        rate,
        config.control.alpha
    );
    assert!(evaluated > 1000, "{evaluated}");
    assert!(rate <= 2.0 * config.control.alpha, "{rate}");
    // no pair emerges where none was planted, beyond one in twenty by chance
    let found = signals(&f.store, &SweepConfig::as_of(p("2023-05"))).await;
    let analysed = ods_sweep::pair_counts(&f.store, Some(p("2022-06")), p("2023-05"))
        .await
        .unwrap()
        .len();
    let emerged = of_kind(&found, SignalKind::EmergingPair).len();
    println!("without plants: {emerged} emerging pairs of {analysed} pairs in the window");
    assert!(emerged * 20 <= analysed, "{found:#?}");
    // no service falls silent where none was planted
    let found = signals(&f.store, &SweepConfig::as_of(p("2023-12"))).await;
    assert!(
        of_kind(&found, SignalKind::SilentService).is_empty(),
        "{found:#?}"
    );
    // and a full sweep raises no under-reporting where no drop was planted
    for year in ["2019", "2021", "2023"] {
        let found = signals(&f.store, &SweepConfig::as_of(p(&format!("{year}-12")))).await;
        assert!(
            of_kind(&found, SignalKind::UnderReporting).is_empty(),
            "{year}: {found:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_services_are_those_whose_doctors_all_stopped_reporting() {
    let f = planted().await;
    let found = signals(&f.store, &SweepConfig::as_of(p("2023-12"))).await;
    let silent = of_kind(&found, SignalKind::SilentService);
    println!("{} silent services as of 2023-12", silent.len());
    // the planted one: AD0007's doctors file nothing from 2023-01
    assert!(
        silent.iter().any(|s| s.subject["service"] == "AD0007"),
        "{silent:#?}"
    );
    // a sweep after the data ends (nobody reported in its recent window) blames no service
    let after = signals(&f.store, &SweepConfig::as_of(p("2025-06"))).await;
    assert!(
        of_kind(&after, SignalKind::SilentService).is_empty(),
        "{after:#?}"
    );
    // next month's sweep finds the same silence: the same id
    let next = signals(&f.store, &SweepConfig::as_of(p("2024-01"))).await;
    let ids = |found: &[Signal]| -> Vec<String> {
        of_kind(found, SignalKind::SilentService)
            .iter()
            .map(|s| s.id.clone())
            .collect()
    };
    assert!(!ids(&next).is_empty());
    assert!(
        ids(&next).iter().all(|id| ids(&found).contains(id)),
        "{next:#?}"
    );
    // and a year earlier it was not silent
    let before = signals(&f.store, &SweepConfig::as_of(p("2022-12"))).await;
    assert!(!of_kind(&before, SignalKind::SilentService)
        .iter()
        .any(|s| s.subject["service"] == "AD0007"));
    let activity = f.store.reporter_activity().unwrap();
    for s in silent {
        assert_eq!(s.period, "2023-01..2023-12");
        let service = &s.subject["service"];
        assert_ne!(service, "self_employed");
        let doctors = |from: &str, to: &str| {
            activity
                .iter()
                .filter(|a| {
                    &a.service == service
                        && (from..=to).contains(&a.period.as_str())
                        && a.notifications + a.zero_reports > 0
                })
                .map(|a| a.reporter.as_str())
                .collect::<std::collections::BTreeSet<_>>()
        };
        let before = doctors("2021-01", "2022-12");
        assert!(before.len() >= 2, "{s:?}");
        assert_eq!(s.numbers["reporters_before"], before.len() as f64);
        assert!(doctors("2023-01", "2023-12").is_empty(), "{s:?}");
        assert!(s.explanation.contains(service.as_str()));
    }
}
