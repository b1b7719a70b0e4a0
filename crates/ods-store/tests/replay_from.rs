//! `replay_from`: re-processing every notification with a record from a point of the log on,
//! with the processor as it is now, gives what the specification says, wherever the point and
//! the stored position are; and with an unchanged processor it changes nothing.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use ods_codelists::CodeLists;
use ods_log::{Append, EmbeddedLog, LogRecord};
use ods_model::{
    AbsenceBand, Affiliation, Consequence, DetectionRoute, Event, ExposureRef, Notification,
    NotificationAmended, NotificationFiled, NotificationId, NotificationWithdrawn, Period,
    ReporterPseudonym, Sex, WithdrawalReason, ZeroReport,
};
use ods_processor::Processor;
use ods_store::{CountQuery, Dimension, EmbeddedStore, LogTopic, ReplayPhase, ReplayProgress};
use ods_validation::Limits;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use uuid::Uuid;

const SOURCE: &str = "ods.notifications.v1/0";

/// (diagnosis, exposure, sector); the last is a complaint code every processor rejects.
const VARIANTS: [(&str, &str, &str); 3] = [
    ("L694", "ER003", "1071"),
    ("P612", "PS001", "8610"),
    ("L111", "ER003", "F"),
];

/// Women in these notifications are 47 at diagnosis, men 32: the strict processor (oldest
/// plausible age 40) rejects the women's, the standard one accepts both.
fn notification(variant: usize, sex: Sex) -> Notification {
    let (diagnosis, exposure, sector) = VARIANTS[variant];
    Notification {
        affiliation: Affiliation::Service("AD0001".into()),
        diagnosis_code: diagnosis.into(),
        exposures: vec![ExposureRef {
            code: exposure.into(),
            primary: true,
        }],
        sector_code: sector.into(),
        occupation_code: "7512".into(),
        sex,
        birth_year: if sex == Sex::Female { 1975 } else { 1990 },
        diagnosis_date: NaiveDate::from_ymd_opt(2022, 12, 1).unwrap(),
        consequence: Consequence::Temporary,
        absence_band: AbsenceBand::OneToThreeMonths,
        detection_route: DetectionRoute::AbsenceGuidance,
        prevention_advice: vec![],
        guideline_code: None,
    }
}

fn standard() -> Processor {
    Processor::new(Arc::new(CodeLists::bundled().unwrap()), Limits::default())
}

fn strict() -> Processor {
    Processor::new(
        Arc::new(CodeLists::bundled().unwrap()),
        Limits {
            max_age: 40,
            ..Limits::default()
        },
    )
}

fn at(month: u32) -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(2023, month, 10)
        .unwrap()
        .and_hms_opt(9, 0, 0)
        .unwrap()
        .and_utc()
}

fn reporter(turn: u128) -> ReporterPseudonym {
    let hex = if turn.is_multiple_of(2) { "ab" } else { "cd" };
    ReporterPseudonym::from_hex(&hex.repeat(16)).unwrap()
}

#[derive(Debug, Clone)]
enum Op {
    Amend(usize, bool),
    Withdraw,
}

fn events_of(n: u128, first: (usize, bool), ops: &[Op]) -> Vec<Event> {
    let id = NotificationId(Uuid::from_u128(n + 1));
    let sex = |female: bool| if female { Sex::Female } else { Sex::Male };
    let month = (n % 12) as u32 + 1;
    let mut out = vec![Event::Filed(NotificationFiled {
        event_id: Uuid::from_u128(1000 + n),
        notification_id: id,
        reporter: reporter(n),
        notified_at: at(month),
        notification: notification(first.0, sex(first.1)),
    })];
    for (version, op) in (2..).zip(ops) {
        let who = reporter(n + u128::from(version));
        out.push(match op {
            Op::Amend(v, female) => Event::Amended(NotificationAmended {
                event_id: Uuid::from_u128(u128::from(version) << 64 | n),
                notification_id: id,
                version,
                reporter: who,
                notified_at: at(month),
                amended_at: at(month),
                notification: notification(*v, sex(*female)),
            }),
            Op::Withdraw => Event::Withdrawn(NotificationWithdrawn {
                event_id: Uuid::from_u128(u128::from(version) << 64 | n),
                notification_id: id,
                version,
                reporter: who,
                withdrawn_at: at(month),
                reason: WithdrawalReason::Duplicate,
            }),
        });
    }
    out
}

/// The log: the notifications' events interleaved (each in its own order), some written twice
/// (producer retries), a zero report and a poison record; keyed as intake keys them.
fn build_log(streams: &[Vec<Event>], seed: u64, duplicate_every: usize) -> Vec<LogRecord> {
    let mut cursors = vec![0usize; streams.len()];
    let mut rng = seed;
    let mut log: Vec<(String, Vec<u8>)> = Vec::new();
    loop {
        let open: Vec<usize> = (0..streams.len())
            .filter(|&i| cursors[i] < streams[i].len())
            .collect();
        if open.is_empty() {
            break;
        }
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let pick = open[(rng >> 33) as usize % open.len()];
        let event = &streams[pick][cursors[pick]];
        let (_, bytes) = ods_wire::encode_event(event).unwrap();
        log.push((event.key(), bytes.clone()));
        if log.len().is_multiple_of(duplicate_every) {
            log.push((event.key(), bytes));
        }
        cursors[pick] += 1;
    }
    let zero = Event::ZeroReport(ZeroReport {
        event_id: Uuid::from_u128(7),
        reporter: reporter(0),
        affiliation: Affiliation::Service("AD0001".into()),
        period: Period::new(2023, 2).unwrap(),
        reported_at: at(3),
    });
    let (_, bytes) = ods_wire::encode_event(&zero).unwrap();
    log.insert(log.len() / 3, (zero.key(), bytes));
    log.insert(
        log.len() / 2,
        ("poison".into(), vec![0, 0, 0, 0, 1, 255, 255]),
    );
    log.into_iter()
        .enumerate()
        .map(|(i, (key, payload))| LogRecord {
            topic: "ods.notifications.v1".into(),
            offset: i as i64,
            key,
            payload,
            appended_at_ms: i as i64,
        })
        .collect()
}

type Cell = (String, String, String, String);

/// Which processor applies records first, and which replays and goes on.
#[derive(Debug, Clone, Copy)]
struct Rules {
    first_strict: bool,
    then_strict: bool,
}

/// What the specification says about records `[0, seen)`. With `replay: Some((from, until))`:
/// the first processor applied records `[0, until)`, then `replay_from(from)` used the second,
/// which then applied `[until, seen)`; with `None` the first processor did all. A
/// notification's count follows its latest version (withdrawal final), judged by the processor
/// that applied it last: the second when it had a record in `[from, until)` (all of its records
/// were applied again) or when that version was applied after the replay.
fn expected(
    records: &[LogRecord],
    rules: Rules,
    replay: Option<(i64, i64)>,
    seen: i64,
) -> (BTreeMap<Cell, i64>, BTreeMap<String, &'static str>) {
    let mut counts = BTreeMap::new();
    let mut statuses = BTreeMap::new();
    let mut ids: Vec<String> = Vec::new();
    for r in records {
        if !ids.contains(&r.key) {
            ids.push(r.key.clone());
        }
    }
    for id in ids {
        let mine: Vec<(i64, Event)> = records
            .iter()
            .filter(|r| r.key == id && r.offset < seen)
            .filter_map(|r| Some((r.offset, ods_wire::decode_event(&r.payload).ok()?)))
            .filter(|(_, e)| e.notification_id().is_some())
            .collect();
        let mut latest: Option<(i64, &Event)> = None;
        for (offset, event) in &mine {
            match latest {
                Some((_, Event::Withdrawn(_))) => break,
                Some((_, e)) if e.version() >= event.version() => continue,
                _ => latest = Some((*offset, event)),
            }
        }
        let Some((offset, event)) = latest else {
            continue;
        };
        let by_second = replay.is_some_and(|(from, until)| {
            offset >= until || mine.iter().any(|(o, _)| *o >= from && *o < until)
        });
        let strict = if by_second {
            rules.then_strict
        } else {
            rules.first_strict
        };
        let content = match event {
            Event::Filed(f) => Some((&f.notification, f.notified_at, &f.reporter)),
            Event::Amended(a) => Some((&a.notification, a.notified_at, &a.reporter)),
            _ => None,
        };
        let status = match content {
            None => "withdrawn",
            Some((n, _, _)) if n.diagnosis_code == "L111" => "rejected",
            Some((n, _, _)) if strict && n.sex == Sex::Female => "rejected",
            Some((n, when, who)) => {
                *counts
                    .entry((
                        when.format("%Y-%m").to_string(),
                        n.diagnosis_code.clone(),
                        n.sex.code().to_string(),
                        who.to_string(),
                    ))
                    .or_insert(0) += 1;
                "validated"
            }
        };
        statuses.insert(id, status);
    }
    (counts, statuses)
}

fn stored(
    store: &EmbeddedStore,
    records: &[LogRecord],
) -> (BTreeMap<Cell, i64>, BTreeMap<String, &'static str>) {
    let query = CountQuery {
        group_by: vec![Dimension::Month, Dimension::Diagnosis, Dimension::Sex],
        ..CountQuery::default()
    };
    let mut counts = BTreeMap::new();
    for (d, reporter, n) in store.exact_counts_by_reporter(&query).unwrap() {
        counts.insert(
            (
                d["month"].clone(),
                d["diagnosis"].clone(),
                d["sex"].clone(),
                reporter,
            ),
            n,
        );
    }
    // the count and exposure tables agree with the reporter table
    let mut by_cell: BTreeMap<(String, String, String), i64> = BTreeMap::new();
    for ((month, diagnosis, sex, _), n) in &counts {
        *by_cell
            .entry((month.clone(), diagnosis.clone(), sex.clone()))
            .or_insert(0) += n;
    }
    let mut cells = BTreeMap::new();
    for (d, n) in store.counts_unsuppressed(&query).unwrap() {
        cells.insert(
            (d["month"].clone(), d["diagnosis"].clone(), d["sex"].clone()),
            n,
        );
    }
    assert_eq!(cells, by_cell, "agg_counts differs from agg_reporters");
    let exposures = CountQuery {
        group_by: vec![Dimension::Month, Dimension::Diagnosis, Dimension::Exposure],
        ..CountQuery::default()
    };
    let mut by_exposure: BTreeMap<(String, String), i64> = BTreeMap::new();
    for (d, n) in store.counts_unsuppressed(&exposures).unwrap() {
        assert!(n > 0, "an empty exposure cell is kept: {d:?}");
        *by_exposure
            .entry((d["month"].clone(), d["diagnosis"].clone()))
            .or_insert(0) += n;
    }
    let mut by_month: BTreeMap<(String, String), i64> = BTreeMap::new();
    for ((month, diagnosis, _), n) in &by_cell {
        *by_month
            .entry((month.clone(), diagnosis.clone()))
            .or_insert(0) += n;
    }
    assert_eq!(
        by_exposure, by_month,
        "agg_exposures differs (one exposure each)"
    );
    let mut statuses = BTreeMap::new();
    let ids: HashSet<&str> = records.iter().map(|r| r.key.as_str()).collect();
    for id in ids {
        if let Some(view) = store.notification(id).unwrap() {
            let status = match view.status.as_str() {
                "validated" => "validated",
                "rejected" => "rejected",
                "withdrawn" => "withdrawn",
                other => panic!("unknown status {other}"),
            };
            if status == "rejected" {
                assert!(view.reasons.is_some(), "rejected {id} without reasons");
            }
            statuses.insert(id.to_string(), status);
        }
    }
    (counts, statuses)
}

fn arb_ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            4 => (0..VARIANTS.len(), any::<bool>()).prop_map(|(v, f)| Op::Amend(v, f)),
            1 => Just(Op::Withdraw),
        ],
        0..4,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn replay_from_gives_the_new_verdict_on_every_touched_notification(
        firsts in prop::collection::vec((0..VARIANTS.len(), any::<bool>()), 1..30),
        ops in prop::collection::vec(arb_ops(), 30),
        seed in any::<u64>(),
        duplicate_every in 2usize..7,
        from_fraction in 0.0f64..1.2,
        until_fraction in 0.0f64..1.0,
        first_strict in any::<bool>(),
        then_strict in any::<bool>(),
        page in 1usize..5,
        via_log in any::<bool>(),
    ) {
        let rules = Rules { first_strict, then_strict };
        let shape = Shape { seed, duplicate_every, from_fraction, until_fraction, page, via_log };
        check(&firsts, &ops, rules, shape)?;
    }
}

/// The whole log processed, then replayed from offset 0 with the same processor: nothing
/// changes, and the progress reports cover both phases to the end.
#[test]
fn replay_from_the_start_with_the_same_rules_changes_nothing() {
    let streams: Vec<Vec<Event>> = (0..12)
        .map(|n| events_of(n, ((n % 3) as usize, n % 2 == 0), &[Op::Amend(0, false)]))
        .collect();
    let records = build_log(&streams, 3, 4);
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("store.sqlite")).unwrap();
    store.apply_batch(SOURCE, 0, &standard(), &records).unwrap();
    let before = stored(&store, &records);
    let totals = store.totals().unwrap();
    let mut reports: Vec<ReplayProgress> = Vec::new();
    let stats = store
        .replay_from(SOURCE, 0, &standard(), 0, &records, &mut |p| {
            reports.push(p)
        })
        .unwrap();
    assert_eq!(stored(&store, &records), before);
    assert_eq!(store.totals().unwrap(), totals);
    assert_eq!(stats.until, records.len() as i64);
    // 12 notifications, the zero report's reporter and the poison record's key
    assert_eq!(
        (stats.keys, stats.notifications, stats.forgotten),
        (14, 12, 12)
    );
    assert_eq!(stats.applied.records, records.len());
    assert_eq!(stats.applied.dead_letters, 1);
    let last = |phase| reports.iter().rev().find(|p| p.phase == phase).copied();
    let end = records.len() as i64;
    assert_eq!(
        last(ReplayPhase::Finding).map(|p| (p.done, p.total)),
        Some((end, end))
    );
    assert_eq!(
        last(ReplayPhase::Reapplying).map(|p| (p.done, p.total)),
        Some((end, end))
    );
    // a replay point at or after the position does nothing
    let nothing = store
        .replay_from(SOURCE, 0, &strict(), end, &records, &mut |_| {})
        .unwrap();
    assert_eq!((nothing.notifications, nothing.applied.records), (0, 0));
    assert_eq!(stored(&store, &records), before);
}

/// How the log is cut and read.
#[derive(Debug, Clone, Copy)]
struct Shape {
    seed: u64,
    duplicate_every: usize,
    from_fraction: f64,
    until_fraction: f64,
    /// Records per log read of the replay.
    page: usize,
    /// Read through the embedded log (`LogTopic`) instead of memory.
    via_log: bool,
}

fn processor(strict_rules: bool) -> Processor {
    if strict_rules {
        strict()
    } else {
        standard()
    }
}

fn check(
    firsts: &[(usize, bool)],
    ops: &[Vec<Op>],
    rules: Rules,
    shape: Shape,
) -> Result<(), TestCaseError> {
    let streams: Vec<Vec<Event>> = firsts
        .iter()
        .enumerate()
        .map(|(i, first)| events_of(i as u128, *first, &ops[i]))
        .collect();
    let records = build_log(&streams, shape.seed, shape.duplicate_every);
    let end = records.len() as i64;
    let until = ((end as f64) * shape.until_fraction) as i64;
    let from = ((end as f64) * shape.from_fraction) as i64;

    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("store.sqlite")).unwrap();
    let (first, then) = (processor(rules.first_strict), processor(rules.then_strict));
    store
        .apply_batch(SOURCE, 0, &first, &records[..until as usize])
        .unwrap();
    let before = stored(&store, &records);
    let stats = if shape.via_log {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let log = EmbeddedLog::open(&dir.path().join("log.sqlite"), 4).unwrap();
        let appends: Vec<Append> = records
            .iter()
            .map(|r| Append {
                topic: r.topic.clone(),
                key: r.key.clone(),
                payload: r.payload.clone(),
                appended_at_ms: r.appended_at_ms,
            })
            .collect();
        runtime.block_on(log.append(appends)).unwrap();
        let source = LogTopic {
            log: &log,
            topic: "ods.notifications.v1",
        };
        store.replay_from_paged(SOURCE, 0, &then, from, &source, shape.page, &mut |_| {})
    } else {
        store.replay_from_paged(SOURCE, 0, &then, from, &records, shape.page, &mut |_| {})
    }
    .unwrap();
    prop_assert_eq!(
        store.checkpoint(SOURCE).unwrap(),
        until,
        "the position moved"
    );
    prop_assert_eq!(stats.until, until);
    let now = stored(&store, &records);
    let same_rules = rules.first_strict == rules.then_strict;
    if same_rules {
        prop_assert_eq!(&now, &before, "an unchanged processor changed the store");
    }
    prop_assert_eq!(now, expected(&records, rules, Some((from, until)), until));
    let dead = store.totals().unwrap().dead_letters;
    let poison_seen = records
        .iter()
        .any(|r| r.key == "poison" && r.offset < until);
    prop_assert_eq!(dead, i64::from(poison_seen));

    // the processor goes on from the (unmoved) position with the replay's rules
    store
        .apply_batch(SOURCE, 0, &then, &records[until as usize..])
        .unwrap();
    let after = stored(&store, &records);
    prop_assert_eq!(after, expected(&records, rules, Some((from, until)), end));
    prop_assert_eq!(store.totals().unwrap().zero_reports, 1);
    prop_assert_eq!(store.totals().unwrap().dead_letters, 1);
    Ok(())
}
