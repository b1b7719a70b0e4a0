#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;
use crate::queries::Dimension::{self, *};

fn key(pairs: &[(&'static str, &str)]) -> CellKey {
    pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

/// One notification of a synthetic universe.
#[derive(Debug, Clone)]
struct Rec {
    month: String,
    sector: String,
    diagnosis: String,
    sex: String,
    reporter: String,
}

fn value(r: &Rec, d: Dimension) -> String {
    match d {
        Year => r.month[..4].to_string(),
        Quarter => period_at(&r.month, 2),
        Month => r.month.clone(),
        Sector => r.sector.clone(),
        SbiSection => r.sector[..1].to_string(),
        Diagnosis => r.diagnosis.clone(),
        DiagnosisGroup => r.diagnosis[..1].to_string(),
        Sex => r.sex.clone(),
        _ => "x".to_string(),
    }
}

/// What a store answers for `table_query(query)`: exact cells, with reporters for sector funds
/// (the scope as a prefilter, as `exact_counts_by_reporter` does).
fn exact(recs: &[Rec], query: &CountQuery) -> Vec<ExactCell> {
    let table = table_query(query);
    let mut cells: BTreeMap<CellKey, (i64, BTreeSet<String>)> = BTreeMap::new();
    for r in recs {
        if let Some(scope) = &table.sector_scope {
            if !scope.iter().any(|s| *s == r.sector || *s == r.sector[..1]) {
                continue;
            }
        }
        let k: CellKey = table
            .group_by
            .iter()
            .map(|d| (d.name(), value(r, *d)))
            .collect();
        let cell = cells.entry(k).or_default();
        cell.0 += 1;
        cell.1.insert(r.reporter.clone());
    }
    let fund = Policy::of(query).min_reporters > 0;
    cells
        .into_iter()
        .map(|(key, (count, reporters))| ExactCell {
            key,
            count,
            reporters: if fund {
                reporters.into_iter().collect()
            } else {
                Vec::new()
            },
        })
        .collect()
}

fn answer(recs: &[Rec], query: &CountQuery) -> Vec<CountCell> {
    publish(query, exact(recs, query)).cells
}

fn recs(cells: &[(&str, &str, &str, &str, usize)]) -> Vec<Rec> {
    let mut out = Vec::new();
    for (month, sector, diagnosis, sex, n) in cells {
        for i in 0..*n {
            out.push(Rec {
                month: month.to_string(),
                sector: sector.to_string(),
                diagnosis: diagnosis.to_string(),
                sex: sex.to_string(),
                reporter: format!("r{}", i % 4),
            });
        }
    }
    out
}

fn q(group_by: &[Dimension]) -> CountQuery {
    CountQuery {
        group_by: group_by.to_vec(),
        ..CountQuery::default()
    }
}

#[test]
fn small_counts_are_suppressed_and_zero_total_shown() {
    let data = recs(&[("2020-01", "F4120", "A1", "F", 4)]);
    let cells = answer(&data, &q(&[]));
    assert_eq!(cells.len(), 1);
    assert_eq!((cells[0].count, cells[0].suppressed), (None, true));
    let cells = answer(&[], &q(&[]));
    assert_eq!((cells[0].count, cells[0].suppressed), (Some(0), false));
    let scoped = CountQuery {
        sector_scope: Some(Vec::new()),
        ..q(&[])
    };
    let cells = answer(&data, &scoped);
    assert_eq!((cells[0].count, cells[0].suppressed), (Some(0), false));
}

#[test]
fn a_lone_small_cell_in_a_line_takes_the_next_smallest_with_it() {
    let data = recs(&[
        ("2020-01", "F4120", "A1", "F", 98),
        ("2020-01", "F4120", "A1", "M", 6),
        ("2020-01", "F4120", "A1", "X", 2),
    ]);
    let cells = answer(&data, &q(&[Sex]));
    let by: BTreeMap<_, _> = cells
        .iter()
        .map(|c| (c.dimensions["sex"].as_str(), c.count))
        .collect();
    assert_eq!(by["F"], Some(98));
    assert_eq!(
        by["M"], None,
        "secondary suppression: 106 - 98 would give M + X"
    );
    assert_eq!(by["X"], None);
    assert_eq!(answer(&data, &q(&[]))[0].count, Some(106));
}

#[test]
fn all_ones_under_a_published_total_hide_an_empty_cell_too() {
    // six months with one notification each: the year total (6) would show each is exactly 1
    let months = [
        "2020-01", "2020-02", "2020-04", "2020-05", "2020-07", "2020-08",
    ];
    let mut cells: Vec<(&str, &str, &str, &str, usize)> =
        months.iter().map(|m| (*m, "F4120", "A1", "F", 1)).collect();
    // other data in March, so an empty March of A1 cannot be told apart
    cells.push(("2020-03", "F4120", "B1", "F", 30));
    cells.push(("2020-12", "F4120", "B1", "F", 30));
    let data = recs(&cells);
    let filter = vec![(Diagnosis, vec!["A1".to_string()])];
    let year = answer(
        &data,
        &CountQuery {
            filters: filter.clone(),
            ..q(&[Year])
        },
    );
    assert_eq!(year[0].count, Some(6));
    let monthly = answer(
        &data,
        &CountQuery {
            filters: filter,
            ..q(&[Month])
        },
    );
    assert!(monthly.iter().all(|c| c.suppressed));
    assert!(
        monthly.len() > months.len(),
        "an empty month is suppressed as well: {monthly:?}"
    );
}

#[test]
fn sector_funds_need_ten_notifications_from_three_reporters() {
    let mut data = recs(&[
        ("2020-01", "F4120", "A1", "F", 12),
        ("2021-01", "F4120", "A1", "F", 40),
        ("2022-01", "F4120", "A1", "F", 9),
        ("2023-01", "F4120", "A1", "F", 30),
        ("2020-01", "Q8610", "A1", "F", 50),
    ]);
    // 2021: 40 notifications, all from one doctor; 2022 from another one
    for r in data.iter_mut() {
        match r.month.as_str() {
            "2021-01" => r.reporter = "solo".into(),
            "2022-01" => r.reporter = "other".into(),
            _ => {}
        }
    }
    let fund = CountQuery {
        sector_scope: Some(vec!["F".into()]),
        ..q(&[Year])
    };
    let cells = answer(&data, &fund);
    let by: BTreeMap<_, _> = cells
        .iter()
        .map(|c| (c.dimensions["year"].as_str(), c.count))
        .collect();
    assert_eq!(by.len(), 4, "Q is out of scope: {cells:?}");
    assert_eq!(by["2021"], None, "one reporter");
    assert_eq!(by["2022"], None, "below 10");
    // the two suppressed cells hold 49 from 2 reporters: the total minus the rest would show
    // that two doctors filed them all, so one more cell has to go
    assert_eq!(by.values().filter(|v| v.is_none()).count(), 3, "{cells:?}");
    // analysts see every cell of 5 or more
    let analyst = answer(&data, &q(&[Year]));
    assert!(analyst.iter().all(|c| !c.suppressed), "{analyst:?}");
    assert_eq!(
        Policy::of(&fund),
        Policy {
            min_count: 10,
            min_reporters: 3
        }
    );
}

#[test]
fn scope_keeps_the_funds_sectors_by_section_or_code() {
    let data = recs(&[
        ("2020-01", "F4120", "A1", "F", 30),
        ("2020-01", "C1071", "A1", "F", 20),
        ("2020-01", "C2000", "A1", "F", 70),
    ]);
    let fund = CountQuery {
        sector_scope: Some(vec!["F".into(), "C1071".into()]),
        ..q(&[Year])
    };
    let cells = answer(&data, &fund);
    assert_eq!(cells.len(), 1);
    assert_eq!(cells[0].dimensions, key(&[("year", "2020")]));
    assert_eq!(cells[0].count, Some(50));
}

#[test]
fn cells_are_ordered_by_group_by_values_and_empty_ones_left_out() {
    let data = recs(&[
        ("2014-01", "F4120", "A1", "M", 7),
        ("2015-01", "F4120", "A1", "F", 7),
    ]);
    let cells = answer(&data, &q(&[Sex, Year]));
    let order: Vec<_> = cells
        .iter()
        .map(|c| (c.dimensions["sex"].clone(), c.dimensions["year"].clone()))
        .collect();
    assert_eq!(
        order,
        vec![("F".into(), "2015".into()), ("M".into(), "2014".into())]
    );
}

#[test]
fn period_ranges_select_atoms_of_their_alignment() {
    assert_eq!(period_alignment(None, None), 0);
    assert_eq!(period_alignment(Some("2020-01"), None), 1);
    assert_eq!(period_alignment(Some("2020-01"), Some("2021-12")), 1);
    assert_eq!(period_alignment(Some("2020-04"), Some("2021-12")), 2);
    assert_eq!(period_alignment(None, Some("2021-09")), 2);
    assert_eq!(period_alignment(Some("2020-02"), None), 3);
    assert_eq!(period_alignment(Some("garbage"), None), 3);
    let data = recs(&[
        ("2020-01", "F4120", "A1", "F", 20),
        ("2020-12", "F4120", "A1", "F", 2),
        ("2021-06", "F4120", "A1", "F", 20),
    ]);
    // the whole of 2020 is one atom (22)
    let whole = CountQuery {
        from: Some("2020-01".into()),
        to: Some("2020-12".into()),
        ..q(&[])
    };
    assert_eq!(answer(&data, &whole)[0].count, Some(22));
    // January to November is a month range: December (2) would be 22 - 20; the monthly table
    // protects it against the yearly one, so the January-November total is withheld
    let part = CountQuery {
        from: Some("2020-01".into()),
        to: Some("2020-11".into()),
        ..q(&[])
    };
    assert!(answer(&data, &part)[0].suppressed);
}

#[test]
fn answers_of_coarser_queries_come_from_the_same_tables() {
    let data = recs(&[
        ("2020-01", "F4120", "A1", "F", 3),
        ("2020-02", "F4120", "A2", "M", 30),
        ("2020-05", "C1071", "B1", "F", 8),
    ]);
    let fine = q(&[Month, Sex]);
    let d = Disclosed::new(&fine, exact(&data, &fine));
    assert_eq!(
        d.answer(&q(&[Year])).unwrap().cells,
        answer(&data, &q(&[Year]))
    );
    assert!(matches!(
        d.answer(&q(&[Diagnosis])),
        Err(DisclosureError::NotCovered(_))
    ));
    let scoped = CountQuery {
        sector_scope: Some(vec!["F".into()]),
        ..q(&[Year])
    };
    assert!(matches!(
        d.answer(&scoped),
        Err(DisclosureError::ScopeMismatch)
    ));
    assert_eq!(
        d.period_span(),
        Some(("2020-01".to_string(), "2020-05".to_string()))
    );
    assert_eq!(table_count(&q(&[Month, Sex])), 8);
    assert_eq!(
        table_query(&CountQuery {
            filters: vec![(Sex, vec!["F".into()])],
            from: Some("2020-04".into()),
            sector_scope: Some(vec!["F".into()]),
            ..q(&[DiagnosisGroup])
        })
        .group_by,
        vec![Year, Quarter, DiagnosisGroup, Sex, Sector, SbiSection]
    );
}

// ---- property tests: random universes, then the differencing attacks ----

const MONTHS: [&str; 8] = [
    "2020-01", "2020-02", "2020-05", "2020-11", "2021-01", "2021-03", "2021-04", "2021-12",
];
const SECTORS: [&str; 4] = ["C1071", "C2000", "F4120", "F4399"];
const DIAGNOSES: [&str; 5] = ["A1", "A2", "A3", "B1", "B2"];
const SEXES: [&str; 3] = ["F", "M", "X"];

fn arb_universe() -> impl Strategy<Value = Vec<Rec>> {
    // sparse cells, many of them small
    let cell = (
        0..MONTHS.len(),
        0..SECTORS.len(),
        0..DIAGNOSES.len(),
        0..SEXES.len(),
        prop_oneof![5 => 1usize..5, 3 => 5usize..15, 2 => 15usize..60],
        0usize..5,
    );
    prop::collection::vec(cell, 20..90).prop_map(|cells| {
        let mut out = Vec::new();
        for (m, s, d, x, n, spread) in cells {
            for i in 0..n {
                out.push(Rec {
                    month: MONTHS[m].into(),
                    sector: SECTORS[s].into(),
                    diagnosis: DIAGNOSES[d].into(),
                    sex: SEXES[x].into(),
                    reporter: format!("r{}", i % (spread + 1)),
                });
            }
        }
        out
    })
}

/// Every `group_by` that coarsens `fine` (each dimension dropped, kept, or raised a level).
fn coarser_group_bys(fine: &[Dimension]) -> Vec<Vec<Dimension>> {
    let options = |d: Dimension| -> Vec<Option<Dimension>> {
        match d {
            Month => vec![None, Some(Year), Some(Quarter), Some(Month)],
            Quarter => vec![None, Some(Year), Some(Quarter)],
            Diagnosis => vec![None, Some(DiagnosisGroup), Some(Diagnosis)],
            Sector => vec![None, Some(SbiSection), Some(Sector)],
            other => vec![None, Some(other)],
        }
    };
    let mut out: Vec<Vec<Dimension>> = vec![Vec::new()];
    for d in fine {
        let mut next = Vec::new();
        for prefix in &out {
            for o in options(*d) {
                let mut g = prefix.clone();
                g.extend(o);
                next.push(g);
            }
        }
        out = next;
    }
    out.retain(|g| g.as_slice() != fine);
    out
}

/// The value a fine answer cell has for a coarser dimension (the hierarchy is public).
fn coarse_value(fine: &CellKey, d: Dimension) -> String {
    if let Some(v) = fine.get(d.name()) {
        return v.clone();
    }
    match d {
        Year => fine
            .get("quarter")
            .or(fine.get("month"))
            .map(|p| p[..4].to_string())
            .unwrap_or_default(),
        Quarter => fine
            .get("month")
            .map(|m| period_at(m, 2))
            .unwrap_or_default(),
        DiagnosisGroup => fine
            .get("diagnosis")
            .map(|v| v[..1].to_string())
            .unwrap_or_default(),
        SbiSection => fine
            .get("sector")
            .map(|v| v[..1].to_string())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// Interval propagation over linear equations `sum(x_i for i in members) = total`, each
/// unknown starting at `[lower, inf)`. Returns the bounds, or `None` when the equations
/// contradict that start (a wrong assumption of the attacker).
fn propagate(n: usize, eqs: &[(Vec<usize>, i64)], lower: i64) -> Option<Vec<(i64, i64)>> {
    const INF: i64 = i64::MAX / 4;
    let mut b = vec![(lower, INF); n];
    for _ in 0..200 {
        let mut changed = false;
        for (members, total) in eqs {
            let lo_sum: i64 = members.iter().map(|i| b[*i].0).sum();
            let hi_sum: i64 = members
                .iter()
                .fold(0i64, |acc, i| acc.saturating_add(b[*i].1))
                .min(INF);
            for i in members {
                let (lo, hi) = b[*i];
                let new_lo = if hi_sum >= INF {
                    lo
                } else {
                    lo.max(total - (hi_sum - hi))
                };
                let new_hi = hi.min(total - (lo_sum - lo));
                if new_lo > new_hi {
                    return None;
                }
                if (new_lo, new_hi) != (lo, hi) {
                    b[*i] = (new_lo, new_hi);
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    Some(b)
}

/// The true count of the cells of `query`'s answer (with suppressed and empty-suppressed cells).
fn truth(recs: &[Rec], query: &CountQuery, cell: &CellKey) -> i64 {
    members(recs, query, cell).len() as i64
}

/// Whether a cell of `query`'s answer is secret: primary suppression withholds it.
fn secret(recs: &[Rec], query: &CountQuery, cell: &CellKey) -> bool {
    let inside = members(recs, query, cell);
    let reporters: BTreeSet<&str> = inside.iter().map(|r| r.reporter.as_str()).collect();
    let policy = Policy::of(query);
    !inside.is_empty()
        && ((inside.len() as i64) < policy.min_count || reporters.len() < policy.min_reporters)
}

fn members<'a>(recs: &'a [Rec], query: &CountQuery, cell: &CellKey) -> Vec<&'a Rec> {
    let scope = query.sector_scope.clone();
    recs.iter()
        .filter(|r| match &scope {
            Some(s) => s.iter().any(|v| *v == r.sector || *v == r.sector[..1]),
            None => true,
        })
        .filter(|r| {
            query
                .filters
                .iter()
                .all(|(d, vs)| vs.contains(&value(r, *d)))
        })
        .filter(|r| query.from.as_deref().is_none_or(|f| r.month.as_str() >= f))
        .filter(|r| query.to.as_deref().is_none_or(|t| r.month.as_str() <= t))
        .filter(|r| {
            cell.iter()
                .all(|(d, v)| value(r, Dimension::parse(d).unwrap()) == *v)
        })
        .collect()
}

/// Attacks (a) and (b): the fine answer against every coarser answer at once (totals and
/// margins), by interval propagation; checks that no secret (primary-suppressed) cell is pinned.
fn attack_margins(recs: &[Rec], fine: &CountQuery) -> Result<(), TestCaseError> {
    // a table that complementary suppression cannot protect is withheld: nothing to attack
    if publish(fine, exact(recs, fine)).withheld {
        return Ok(());
    }
    let cells = answer(recs, fine);
    let hidden: Vec<&CountCell> = cells.iter().filter(|c| c.suppressed).collect();
    let mut eqs: Vec<(Vec<usize>, i64)> = Vec::new();
    for gb in coarser_group_bys(&fine.group_by) {
        let coarse = CountQuery {
            group_by: gb.clone(),
            ..fine.clone()
        };
        for c in answer(recs, &coarse) {
            let Some(total) = c.count else { continue };
            let inside = |f: &CountCell| {
                gb.iter()
                    .all(|d| coarse_value(&f.dimensions, *d) == c.dimensions[d.name()])
            };
            let published: i64 = cells
                .iter()
                .filter(|f| inside(f))
                .filter_map(|f| f.count)
                .sum();
            let members: Vec<usize> = hidden
                .iter()
                .enumerate()
                .filter(|(_, f)| inside(f))
                .map(|(i, _)| i)
                .collect();
            let rest = total - published;
            if members.is_empty() {
                prop_assert_eq!(rest, 0, "published cells must add up: {:?}", c);
                continue;
            }
            eqs.push((members, rest));
        }
    }
    for lower in [0, 1] {
        let Some(bounds) = propagate(hidden.len(), &eqs, lower) else {
            continue;
        };
        for (i, cell) in hidden.iter().enumerate() {
            let t = truth(recs, fine, &cell.dimensions);
            let (lo, hi) = bounds[i];
            prop_assert!(
                !(lo == hi && lo == t && secret(recs, fine, &cell.dimensions)),
                "suppressed {:?} recovered as {} (cells >= {})",
                cell.dimensions,
                t,
                lower
            );
        }
    }
    Ok(())
}

/// Attack (c): answers that differ in filter values or range only. Every published cell must be
/// the sum of published atoms (the cells of the same query grouped by the filtered dimensions as
/// well), so any difference of two published numbers is a sum of published atoms.
fn attack_filters(recs: &[Rec], query: &CountQuery) -> Result<(), TestCaseError> {
    let mut atoms_by = query.group_by.clone();
    for (d, _) in &query.filters {
        if !atoms_by.contains(d) {
            atoms_by.push(*d);
        }
    }
    match period_alignment(query.from.as_deref(), query.to.as_deref()) {
        0 => {}
        1 => atoms_by.push(Year),
        2 => atoms_by.push(Quarter),
        _ => atoms_by.push(Month),
    }
    let atoms_query = CountQuery {
        group_by: atoms_by,
        ..query.clone()
    };
    let atoms = answer(recs, &atoms_query);
    for c in answer(recs, query) {
        let inside: Vec<&CountCell> = atoms
            .iter()
            .filter(|a| {
                query
                    .group_by
                    .iter()
                    .all(|d| a.dimensions[d.name()] == c.dimensions[d.name()])
            })
            .collect();
        if let Some(n) = c.count {
            prop_assert!(
                inside.iter().all(|a| !a.suppressed),
                "{:?} published over a suppressed atom",
                c
            );
            prop_assert_eq!(inside.iter().filter_map(|a| a.count).sum::<i64>(), n);
        }
    }
    Ok(())
}

fn arb_fine() -> impl Strategy<Value = Vec<Dimension>> {
    prop_oneof![
        Just(vec![Month, Sex]),
        Just(vec![Quarter, Diagnosis]),
        Just(vec![Year, Diagnosis, Sex]),
        Just(vec![Sector, DiagnosisGroup]),
        Just(vec![Month]),
        Just(vec![Diagnosis, Sex]),
    ]
}

fn arb_scope() -> impl Strategy<Value = Option<Vec<String>>> {
    prop_oneof![
        3 => Just(None),
        1 => Just(Some(vec!["F".to_string()])),
        1 => Just(Some(vec!["C".to_string(), "F4120".to_string()])),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn published_cells_are_exact_and_primary_cells_withheld(
        data in arb_universe(), fine in arb_fine(), scope in arb_scope()
    ) {
        let query = CountQuery { group_by: fine, sector_scope: scope, ..CountQuery::default() };
        let policy = Policy::of(&query);
        for c in answer(&data, &query) {
            let t = truth(&data, &query, &c.dimensions);
            match c.count {
                Some(n) => {
                    prop_assert_eq!(n, t);
                    prop_assert!(n == 0 || n >= policy.min_count);
                    let reporters: BTreeSet<&str> = data.iter()
                        .filter(|r| match &query.sector_scope {
                            Some(s) => s.iter().any(|v| *v == r.sector || *v == r.sector[..1]),
                            None => true,
                        })
                        .filter(|r| c.dimensions.iter().all(|(d, v)| value(r, Dimension::parse(d).unwrap()) == *v))
                        .map(|r| r.reporter.as_str())
                        .collect();
                    prop_assert!(n == 0 || reporters.len() >= policy.min_reporters);
                }
                None => prop_assert!(c.suppressed),
            }
        }
    }

    #[test]
    fn the_pattern_of_a_table_does_not_depend_on_the_query(
        data in arb_universe(), fine in arb_fine(), scope in arb_scope(), pick in 0usize..64
    ) {
        let query = CountQuery { group_by: fine.clone(), sector_scope: scope, ..CountQuery::default() };
        let built = Disclosed::new(&query, exact(&data, &query));
        let coarser = coarser_group_bys(&fine);
        let gb = coarser[pick % coarser.len()].clone();
        let coarse = CountQuery { group_by: gb, ..query.clone() };
        prop_assert_eq!(built.answer(&coarse).unwrap(), publish(&coarse, exact(&data, &coarse)));
    }

    #[test]
    fn no_suppressed_cell_is_recovered_from_totals_or_coarser_queries(
        data in arb_universe(), fine in arb_fine(), scope in arb_scope()
    ) {
        let query = CountQuery { group_by: fine, sector_scope: scope, ..CountQuery::default() };
        attack_margins(&data, &query)?;
    }

    #[test]
    fn no_suppressed_cell_is_recovered_from_overlapping_filters(
        data in arb_universe(),
        group_by in prop_oneof![Just(vec![]), Just(vec![Year]), Just(vec![DiagnosisGroup])],
        sexes in prop::sample::subsequence(SEXES.to_vec(), 1..=3),
        diagnoses in prop::sample::subsequence(DIAGNOSES.to_vec(), 1..=5),
        range in prop_oneof![
            Just((None, None)),
            Just((Some("2020-01"), Some("2020-12"))),
            Just((Some("2020-02"), None)),
            Just((Some("2020-04"), Some("2021-09"))),
        ],
        scope in arb_scope(),
    ) {
        let filters = vec![
            (Sex, sexes.iter().map(|s| s.to_string()).collect()),
            (Diagnosis, diagnoses.iter().map(|s| s.to_string()).collect()),
        ];
        let query = CountQuery {
            group_by: group_by.clone(),
            filters: filters.clone(),
            from: range.0.map(str::to_string),
            to: range.1.map(str::to_string),
            sector_scope: scope.clone(),
        };
        attack_filters(&data, &query)?;
        // the explicit attack: a wider filter minus a narrower one (one sex less) gives the
        // count of that sex; it must never be a suppressed one
        if sexes.len() >= 2 {
            let with_sexes = |list: &[&str]| CountQuery {
                filters: vec![
                    (Sex, list.iter().map(|s| s.to_string()).collect()),
                    filters[1].clone(),
                ],
                ..query.clone()
            };
            let wide = answer(&data, &query);
            let narrow = answer(&data, &with_sexes(&sexes[1..]));
            let isolated = answer(&data, &with_sexes(&sexes[..1]));
            for w in wide.iter().filter(|w| w.count.is_some()) {
                let narrow_published = narrow
                    .iter()
                    .find(|n| n.dimensions == w.dimensions)
                    .is_none_or(|n| n.count.is_some());
                if narrow_published {
                    let hidden = isolated.iter().find(|i| i.dimensions == w.dimensions && i.suppressed);
                    prop_assert!(hidden.is_none(), "{:?} minus the narrower filter recovers {:?}", w, hidden);
                }
            }
        }
    }
}

#[test]
#[ignore = "timing, run with --ignored --nocapture"]
fn speed_on_a_national_sized_table() {
    use std::time::Instant;
    let mut data = Vec::new();
    let mut seed = 7u64;
    let mut next = |m: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % m
    };
    for _ in 0..57_000 {
        let y = 2014 + next(10);
        let m = 1 + next(12);
        data.push(Rec {
            month: format!("{y}-{m:02}"),
            sector: format!(
                "{}{}",
                ["C", "F", "Q", "G", "H"][next(5) as usize],
                1000 + next(40)
            ),
            diagnosis: format!("{}{}", ["A", "B", "C", "D"][next(4) as usize], next(60)),
            sex: SEXES[next(3) as usize].to_string(),
            reporter: format!("r{}", next(1700)),
        });
    }
    for group_by in [
        vec![Year],
        vec![Month, DiagnosisGroup],
        vec![Month, Diagnosis],
        vec![Quarter, SbiSection, DiagnosisGroup, Sex],
        vec![Month, Sector, Diagnosis],
        vec![Month, Sector, Diagnosis, Sex],
    ] {
        let query = q(&group_by);
        let rows = exact(&data, &query);
        let started = Instant::now();
        let d = Disclosed::new(&query, rows);
        let cells = d.answer(&query).unwrap().cells;
        eprintln!(
            "{group_by:?}: {} tables, {} cells, {} suppressed, {} withheld tables, {:?}",
            table_count(&query),
            cells.len(),
            cells.iter().filter(|c| c.suppressed).count(),
            d.withheld_tables(),
            started.elapsed()
        );
    }
}
