//! The store's aggregates equal the reference fold of the log, whatever the batching, duplicate
//! records in the log, redelivery from older positions, or dead letters.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use ods_codelists::CodeLists;
use ods_log::LogRecord;
use ods_model::{
    AbsenceBand, Affiliation, Consequence, DetectionRoute, Event, ExposureRef, Notification,
    NotificationAmended, NotificationFiled, NotificationId, NotificationWithdrawn,
    ReporterPseudonym, Sex, WithdrawalReason,
};
use ods_processor::Processor;
use ods_store::{CountQuery, Dimension, EmbeddedStore};
use ods_validation::Limits;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use uuid::Uuid;

const VARIANTS: [(&str, &str, &str); 4] = [
    ("L694", "ER003", "1071"),
    ("P612", "PS001", "8610"),
    ("H621", "PH001", "F"),
    ("L111", "ER003", "F"), // complaint code: rejected by the processor
];

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
        birth_year: 1975,
        diagnosis_date: NaiveDate::from_ymd_opt(2022, 12, 1).unwrap(),
        consequence: Consequence::Temporary,
        absence_band: AbsenceBand::OneToThreeMonths,
        detection_route: DetectionRoute::AbsenceGuidance,
        prevention_advice: vec![],
        guideline_code: None,
    }
}

#[derive(Debug, Clone)]
enum Op {
    Amend(usize, bool),
    Withdraw,
}

fn at(month: u32) -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(2023, month, 10)
        .unwrap()
        .and_hms_opt(9, 0, 0)
        .unwrap()
        .and_utc()
}

/// Two doctors take turns: a notification's versions alternate between them, so the reporter
/// counts must follow the reporter of the latest counted version.
fn reporter(turn: u128) -> ReporterPseudonym {
    let hex = if turn.is_multiple_of(2) { "ab" } else { "cd" };
    ReporterPseudonym::from_hex(&hex.repeat(16)).unwrap()
}

/// Builds the event stream of one notification.
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
        match op {
            Op::Amend(v, female) => out.push(Event::Amended(NotificationAmended {
                event_id: Uuid::new_v4(),
                notification_id: id,
                version,
                reporter: reporter(n + u128::from(version)),
                notified_at: at(month),
                amended_at: at(month),
                notification: notification(*v, sex(*female)),
            })),
            Op::Withdraw => out.push(Event::Withdrawn(NotificationWithdrawn {
                event_id: Uuid::new_v4(),
                notification_id: id,
                version,
                reporter: reporter(n + u128::from(version)),
                withdrawn_at: at(month),
                reason: WithdrawalReason::Duplicate,
            })),
        }
    }
    out
}

/// The reference fold, written from the specification: the latest version of each
/// notification counts when it is not a withdrawal (or after one) and is valid, for the
/// reporter of that version.
fn reference(streams: &[Vec<Event>]) -> BTreeMap<(String, String, String, String), i64> {
    let mut counts = BTreeMap::new();
    for stream in streams {
        let mut latest: Option<&Event> = None;
        for e in stream {
            if matches!(latest, Some(Event::Withdrawn(_))) {
                break;
            }
            latest = Some(e);
        }
        let content = match latest {
            Some(Event::Filed(f)) => Some((&f.notification, f.notified_at, &f.reporter)),
            Some(Event::Amended(a)) => Some((&a.notification, a.notified_at, &a.reporter)),
            _ => None,
        };
        if let Some((n, when, who)) = content {
            if n.diagnosis_code == "L111" {
                continue;
            }
            *counts
                .entry((
                    when.format("%Y-%m").to_string(),
                    n.diagnosis_code.clone(),
                    n.sex.code().to_string(),
                    who.to_string(),
                ))
                .or_insert(0) += 1;
        }
    }
    counts
}

fn stored_by_reporter(store: &EmbeddedStore) -> BTreeMap<(String, String, String, String), i64> {
    let query = CountQuery {
        group_by: vec![Dimension::Month, Dimension::Diagnosis, Dimension::Sex],
        ..CountQuery::default()
    };
    let mut out = BTreeMap::new();
    for (d, reporter, n) in store.exact_counts_by_reporter(&query).unwrap() {
        out.insert(
            (
                d["month"].clone(),
                d["diagnosis"].clone(),
                d["sex"].clone(),
                reporter,
            ),
            n,
        );
    }
    out
}

fn stored(store: &EmbeddedStore) -> BTreeMap<(String, String, String), i64> {
    let query = CountQuery {
        group_by: vec![Dimension::Month, Dimension::Diagnosis, Dimension::Sex],
        ..CountQuery::default()
    };
    let mut out = BTreeMap::new();
    for (d, n) in store.counts_unsuppressed(&query).unwrap() {
        out.insert(
            (d["month"].clone(), d["diagnosis"].clone(), d["sex"].clone()),
            n,
        );
    }
    out
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
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn aggregates_equal_the_reference_fold(
        firsts in prop::collection::vec((0..VARIANTS.len(), any::<bool>()), 1..40),
        ops in prop::collection::vec(arb_ops(), 40),
        interleave_seed in any::<u64>(),
        duplicate_every in 2usize..7,
        batch_sizes in prop::collection::vec(1usize..12, 1..20),
        rewinds in prop::collection::vec(0i64..6, 1..20),
    ) {
        check(&firsts, &ops, interleave_seed, duplicate_every, &batch_sizes, &rewinds)?;
    }
}

/// A case proptest once shrank to (kept as a plain regression test).
#[test]
fn thirteen_filings_with_duplicates_and_rewinds() {
    let firsts = vec![(0, false); 13];
    let ops = vec![Vec::new(); 40];
    check(
        &firsts,
        &ops,
        0,
        2,
        &[8, 6, 10],
        &[3, 5, 4, 2, 4, 4, 5, 1, 1, 4, 1, 0, 1, 2, 5],
    )
    .unwrap();
}

/// Builds the log, applies it in batches with rewinds, and compares with the reference fold.
fn check(
    firsts: &[(usize, bool)],
    ops: &[Vec<Op>],
    interleave_seed: u64,
    duplicate_every: usize,
    batch_sizes: &[usize],
    rewinds: &[i64],
) -> Result<(), TestCaseError> {
    let streams: Vec<Vec<Event>> = firsts
        .iter()
        .enumerate()
        .map(|(i, first)| events_of(i as u128, *first, &ops[i]))
        .collect();
    // interleave the streams, keeping each notification's order
    let mut cursors = vec![0usize; streams.len()];
    let mut rng = interleave_seed;
    let mut log: Vec<Vec<u8>> = Vec::new();
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
        let (_, bytes) = ods_wire::encode_event(&streams[pick][cursors[pick]]).unwrap();
        log.push(bytes.clone());
        if log.len().is_multiple_of(duplicate_every) {
            log.push(bytes); // a producer retry wrote it twice
        }
        cursors[pick] += 1;
    }
    log.insert(log.len() / 2, vec![0, 0, 0, 0, 1, 255, 255]); // a poison record
    let records: Vec<LogRecord> = log
        .into_iter()
        .enumerate()
        .map(|(i, payload)| LogRecord {
            topic: "t".into(),
            offset: i as i64,
            key: String::new(),
            payload,
            appended_at_ms: 0,
        })
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("store.sqlite")).unwrap();
    let processor = Processor::new(Arc::new(CodeLists::bundled().unwrap()), Limits::default());
    let mut position = 0i64;
    let mut step = 0usize;
    while position < records.len() as i64 {
        // redeliver from an older position now and then (consumer restarted before commit)
        let rewind = rewinds[step % rewinds.len()];
        let from = (position - rewind).max(0) as usize;
        let size = batch_sizes[step % batch_sizes.len()];
        // every batch reaches at least one record past the stored position
        let to = (from + size).max(position as usize + 1).min(records.len());
        let stats = store
            .apply_batch("t-0", 0, &processor, &records[from..to])
            .unwrap();
        position = stats.next_offset.max(position);
        step += 1;
    }
    prop_assert_eq!(store.checkpoint("t-0").unwrap(), records.len() as i64);
    let by_reporter = reference(&streams);
    prop_assert_eq!(stored_by_reporter(&store), by_reporter.clone());
    let mut expected: BTreeMap<(String, String, String), i64> = BTreeMap::new();
    for ((month, diagnosis, sex, _), n) in by_reporter {
        *expected.entry((month, diagnosis, sex)).or_insert(0) += n;
    }
    let actual: BTreeMap<_, _> = stored(&store);
    prop_assert_eq!(actual, expected.clone());
    let total: i64 = expected.values().sum();
    prop_assert_eq!(store.summary().unwrap().notifications_counted, total);
    prop_assert_eq!(store.summary().unwrap().dead_letters, 1);

    // the same log split over three partitions by notification (as Kafka keys it), applied in
    // rounds of one `apply_batches` call over all partitions (the Kafka runner's way)
    let mut partitions: Vec<Vec<LogRecord>> = vec![Vec::new(); 3];
    for record in &records {
        let p = ods_wire::decode_event(&record.payload)
            .ok()
            .and_then(|e| e.notification_id())
            .map(|id| (id.0.as_u128() % 3) as usize)
            .unwrap_or(0);
        let offset = partitions[p].len() as i64;
        partitions[p].push(LogRecord {
            offset,
            ..record.clone()
        });
    }
    let split = EmbeddedStore::open(&dir.path().join("split.sqlite")).unwrap();
    let mut next = [0usize; 3];
    let mut round = 0usize;
    while (0..3).any(|p| next[p] < partitions[p].len()) {
        let mut batches = Vec::new();
        for p in 0..3 {
            let size = batch_sizes[(round + p) % batch_sizes.len()];
            let to = (next[p] + size).min(partitions[p].len());
            if to > next[p] {
                batches.push((p as i32, partitions[p][next[p]..to].to_vec()));
                next[p] = to;
            }
        }
        let applied = split.apply_batches("t", &processor, &batches).unwrap();
        prop_assert_eq!(applied.len(), batches.len());
        round += 1;
    }
    for (p, records) in partitions.iter().enumerate() {
        prop_assert_eq!(split.position("t", p as i32).unwrap(), records.len() as i64);
    }
    prop_assert_eq!(stored(&split), expected);

    // a data directory from before the reporter counts: rebuilt from the stored states
    let before = stored_by_reporter(&store);
    drop(store);
    let path = dir.path().join("store.sqlite");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("DROP TABLE agg_reporters")
        .unwrap();
    let reopened = EmbeddedStore::open(&path).unwrap();
    prop_assert_eq!(stored_by_reporter(&reopened), before);
    Ok(())
}

/// One large batch (a replay's) gives exactly what the same records applied one at a time (a
/// quiet server's) give.
#[test]
fn a_large_batch_equals_records_applied_one_by_one() {
    let ops = [
        Op::Amend(1, true),
        Op::Amend(3, false),
        Op::Amend(0, true),
        Op::Withdraw,
    ];
    let mut records: Vec<LogRecord> = Vec::new();
    for n in 0..120u128 {
        let first = ((n % 4) as usize, n % 3 == 0);
        for event in events_of(n, first, &ops[..(n % 5) as usize]) {
            let (_, payload) = ods_wire::encode_event(&event).unwrap();
            records.push(LogRecord {
                topic: "t".into(),
                offset: records.len() as i64,
                key: event.key(),
                payload,
                appended_at_ms: 0,
            });
        }
    }
    records.push(LogRecord {
        topic: "t".into(),
        offset: records.len() as i64,
        key: "poison".into(),
        payload: vec![0, 0, 0, 0, 1, 255],
        appended_at_ms: 0,
    });
    assert!(records.len() > 300);
    let dir = tempfile::tempdir().unwrap();
    let processor = Processor::new(Arc::new(CodeLists::bundled().unwrap()), Limits::default());
    let whole = EmbeddedStore::open(&dir.path().join("whole.sqlite")).unwrap();
    let stats = whole.apply_batch("t-0", 0, &processor, &records).unwrap();
    assert_eq!(stats.records, records.len());
    let single = EmbeddedStore::open(&dir.path().join("single.sqlite")).unwrap();
    for record in &records {
        single
            .apply_batch("t-0", 0, &processor, std::slice::from_ref(record))
            .unwrap();
    }
    assert_eq!(stored(&whole), stored(&single));
    assert_eq!(stored_by_reporter(&whole), stored_by_reporter(&single));
    assert_eq!(whole.totals().unwrap(), single.totals().unwrap());
    assert_eq!(whole.totals().unwrap().dead_letters, 1);
    assert!(whole.totals().unwrap().notifications_rejected > 0);
}
