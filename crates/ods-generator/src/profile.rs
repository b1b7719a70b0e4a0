//! The figures the demo data follows, each with its source.

use std::collections::BTreeMap;

use ods_codelists::reference::ReferenceData;
use ods_codelists::DiagnosisGroup;

/// Notifications in 2020: "~4,900 (39% COVID)" (NCvB, `shared/domain.md` §3); not in
/// `registry_totals.csv`, so added here as an anchor for interpolation.
const EXTRA_TOTALS: [(i32, f64); 1] = [(2020, 4900.0)];

/// Diagnosis group shares of registry notifications at anchor years (`shared/domain.md` §3-4):
/// 2008 (2000-2008 mix: MSK 42%, psych 24%, hearing 24%), 2016 (psych 42%, MSK 27%, hearing 22%),
/// 2018 (psych 58%, MSK 29%, hearing 7%), 2020 (39% COVID, the rest as in 2018), 2021 (COVID
/// waning, assumed 25%), 2023 (the PIM 2023 group incidence mix, used as an approximation of the
/// registry mix: psych 74, MSK 24, neuro 3, infectious 2, hearing 2, respiratory 2, skin 2).
/// Shares not given are split over the remaining groups.
pub const GROUP_ANCHORS: [(i32, [(DiagnosisGroup, f64); 3]); 6] = {
    use DiagnosisGroup::*;
    [
        (
            2008,
            [
                (Musculoskeletal, 0.42),
                (Psychological, 0.24),
                (Hearing, 0.24),
            ],
        ),
        (
            2016,
            [
                (Psychological, 0.42),
                (Musculoskeletal, 0.27),
                (Hearing, 0.22),
            ],
        ),
        (
            2018,
            [
                (Psychological, 0.58),
                (Musculoskeletal, 0.29),
                (Hearing, 0.07),
            ],
        ),
        (
            2020,
            [
                (Infectious, 0.39),
                (Psychological, 0.354),
                (Musculoskeletal, 0.177),
            ],
        ),
        (
            2021,
            [
                (Infectious, 0.25),
                (Psychological, 0.435),
                (Musculoskeletal, 0.218),
            ],
        ),
        (
            2023,
            [
                (Psychological, 0.679),
                (Musculoskeletal, 0.220),
                (Neurological, 0.028),
            ],
        ),
    ]
};

/// How the rest of a year's notifications is split over groups not given at an anchor.
const REST_SPLIT: [(DiagnosisGroup, f64); 8] = {
    use DiagnosisGroup::*;
    [
        (Skin, 0.22),
        (Respiratory, 0.20),
        (Neurological, 0.22),
        (Infectious, 0.14),
        (Cancer, 0.08),
        (Other, 0.06),
        (Hearing, 0.04),
        (Musculoskeletal, 0.04),
    ]
};

/// Relative notification rate per SBI section (PIM sentinel incidence per 100,000 by sector,
/// NCvB 2016 and 2022; `reference/pim_incidence.csv`), divided by the national rate; sections
/// without a published figure get 1. Mining and water/waste from van der Molen 2012 (2009).
pub fn sector_rate_ratio(section: &str, reference: &ReferenceData) -> f64 {
    let sector_name = match section {
        "F" => "construction",
        "H" => "transport",
        "K" => "finance",
        "C" => "industry",
        "Q" => "healthcare",
        "P" => "education",
        "G" => "trade",
        "B" => "mining",
        "E" => "water and waste",
        _ => return 1.0,
    };
    let rate = reference
        .pim_incidence
        .iter()
        .filter(|p| p.stratum_kind == "sector" && p.stratum == sector_name)
        .max_by_key(|p| p.year);
    let Some(rate) = rate else { return 1.0 };
    let total = reference
        .pim_incidence
        .iter()
        .find(|p| p.stratum_kind == "total" && p.year == rate.year);
    match total {
        Some(t) if t.incidence_per_100k > 0.0 => rate.incidence_per_100k / t.incidence_per_100k,
        _ => 1.0,
    }
}

/// How strongly each diagnosis group leans to each section (1 = as the workforce).
pub fn group_section_affinity(group: DiagnosisGroup, section: &str) -> f64 {
    use DiagnosisGroup::*;
    match (group, section) {
        (Hearing, "F" | "C" | "B") => 6.0,
        (Hearing, "H" | "A" | "O") => 2.0,
        (Hearing, "Q" | "P" | "K" | "J" | "M") => 0.2,
        (Musculoskeletal, "F" | "C" | "Q" | "H" | "A") => 2.0,
        (Psychological, "Q" | "P" | "O" | "K" | "J" | "N") => 1.8,
        (Psychological, "F" | "A" | "B") => 0.5,
        (Skin, "Q" | "S" | "C" | "I" | "F") => 3.0,
        (Respiratory, "C" | "F" | "A" | "B" | "E") => 3.0,
        (Infectious, "Q") => 8.0,
        (Infectious, "A" | "P") => 2.0,
        (Cancer, "F" | "C" | "B" | "E") => 5.0,
        (Neurological, "C" | "F" | "G" | "Q") => 1.5,
        _ => 1.0,
    }
}

/// Yearly notification totals: registry figures, linearly interpolated between published years,
/// held constant outside them.
pub fn yearly_totals(reference: &ReferenceData, from: i32, to: i32) -> BTreeMap<i32, f64> {
    let mut anchors: Vec<(i32, f64)> = reference
        .registry_totals
        .iter()
        .map(|r| (r.year, f64::from(r.notifications)))
        .collect();
    for extra in EXTRA_TOTALS {
        if !anchors.iter().any(|(y, _)| *y == extra.0) {
            anchors.push(extra);
        }
    }
    anchors.sort_by_key(|(y, _)| *y);
    (from..=to).map(|y| (y, interpolate(&anchors, y))).collect()
}

fn interpolate(anchors: &[(i32, f64)], year: i32) -> f64 {
    let Some(first) = anchors.first() else {
        return 0.0;
    };
    let Some(last) = anchors.last() else {
        return 0.0;
    };
    if year <= first.0 {
        return first.1;
    }
    if year >= last.0 {
        return last.1;
    }
    for pair in anchors.windows(2) {
        let ((y0, v0), (y1, v1)) = (pair[0], pair[1]);
        if (y0..=y1).contains(&year) {
            let t = f64::from(year - y0) / f64::from(y1 - y0);
            return v0 + t * (v1 - v0);
        }
    }
    last.1
}

/// The full group mix of one anchor.
fn anchor_mix(given: &[(DiagnosisGroup, f64); 3]) -> BTreeMap<DiagnosisGroup, f64> {
    let mut mix: BTreeMap<DiagnosisGroup, f64> =
        DiagnosisGroup::ALL.iter().map(|g| (*g, 0.0)).collect();
    let given_total: f64 = given.iter().map(|(_, s)| s).sum();
    for (g, s) in given {
        mix.insert(*g, *s);
    }
    let rest = (1.0 - given_total).max(0.0);
    let free: Vec<(DiagnosisGroup, f64)> = REST_SPLIT
        .iter()
        .copied()
        .filter(|(g, _)| !given.iter().any(|(h, _)| h == g))
        .collect();
    let free_total: f64 = free.iter().map(|(_, w)| w).sum();
    for (g, w) in free {
        *mix.entry(g).or_insert(0.0) += rest * w / free_total;
    }
    mix
}

/// The diagnosis group mix of a year, interpolated between anchors.
pub fn group_mix(year: i32) -> BTreeMap<DiagnosisGroup, f64> {
    let mixes: Vec<(i32, BTreeMap<DiagnosisGroup, f64>)> = GROUP_ANCHORS
        .iter()
        .map(|(y, given)| (*y, anchor_mix(given)))
        .collect();
    DiagnosisGroup::ALL
        .iter()
        .map(|g| {
            let anchors: Vec<(i32, f64)> = mixes.iter().map(|(y, m)| (*y, m[g])).collect();
            (*g, interpolate(&anchors, year))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_sum_to_one_and_hit_the_anchors() {
        for year in 2005..2030 {
            let total: f64 = group_mix(year).values().sum();
            assert!((total - 1.0).abs() < 1e-9, "{year}: {total}");
        }
        assert!((group_mix(2016)[&DiagnosisGroup::Psychological] - 0.42).abs() < 1e-9);
        assert!((group_mix(2020)[&DiagnosisGroup::Infectious] - 0.39).abs() < 1e-9);
    }

    #[test]
    fn totals_follow_the_registry() {
        let reference = ReferenceData::bundled().unwrap();
        let totals = yearly_totals(&reference, 2012, 2023);
        assert_eq!(totals[&2014], 8513.0);
        assert_eq!(totals[&2020], 4900.0);
        assert!((totals[&2013] - (6451.0 + 8513.0) / 2.0).abs() < 1e-9);
        assert!(
            sector_rate_ratio("F", &reference) > 1.5,
            "construction is above the national rate"
        );
        assert_eq!(sector_rate_ratio("R", &reference), 1.0);
    }
}
