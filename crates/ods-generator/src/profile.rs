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
pub const GROUP_ANCHORS: [(i32, [(DiagnosisGroup, f64); 3]); 7] = {
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
        // no mix published for 2019; as 2018, so COVID-19 starts in 2020 and not by
        // interpolation in 2019
        (
            2019,
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

/// Per-group section weights for one year, raked by iterative proportional fitting so that the
/// year's notifications follow the group mix `mix` **and** spread over the sections in
/// proportion to `section_base` (workforce x relative PIM rate, what the under-reporting signal
/// expects), while `seed[group][section]` (workforce x rate x [`group_section_affinity`])
/// decides which groups each section notifies. Without raking the affinities would move whole
/// sections away from their reference rate, and every year with an unusual mix (COVID-19 in
/// healthcare) would make the other sections look under-reporting. Same section order in
/// `seed` and `section_base`.
pub fn raked_section_weights(
    mix: &BTreeMap<DiagnosisGroup, f64>,
    seed: &BTreeMap<DiagnosisGroup, Vec<f64>>,
    section_base: &[f64],
) -> BTreeMap<DiagnosisGroup, Vec<f64>> {
    let base_total: f64 = section_base.iter().sum();
    let mut joint: BTreeMap<DiagnosisGroup, Vec<f64>> = seed
        .iter()
        .map(|(g, weights)| {
            let row: f64 = weights.iter().sum();
            let share = mix.get(g).copied().unwrap_or(0.0);
            let scaled = weights
                .iter()
                .map(|w| if row > 0.0 { w / row * share } else { 0.0 })
                .collect();
            (*g, scaled)
        })
        .collect();
    if base_total <= 0.0 {
        return joint;
    }
    for _ in 0..200 {
        // columns to the section shares of the year's total
        let total: f64 = joint.values().flatten().sum();
        for (s, base) in section_base.iter().enumerate() {
            let column: f64 = joint.values().map(|row| row[s]).sum();
            if column > 0.0 {
                let factor = base / base_total * total / column;
                joint.values_mut().for_each(|row| row[s] *= factor);
            }
        }
        // rows back to the group mix
        let mut worst: f64 = 0.0;
        for (g, row) in joint.iter_mut() {
            let sum: f64 = row.iter().sum();
            let share = mix.get(g).copied().unwrap_or(0.0);
            if sum > 0.0 {
                worst = worst.max((sum - share).abs());
                row.iter_mut().for_each(|w| *w *= share / sum);
            }
        }
        if worst < 1e-12 {
            break;
        }
    }
    joint
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
    fn raked_weights_keep_the_group_mix_and_the_section_shares() {
        let reference = ReferenceData::bundled().unwrap();
        let sections: Vec<String> = reference.workforce.employed_x1000.keys().cloned().collect();
        let base: Vec<f64> = sections
            .iter()
            .map(|s| reference.workforce.employed_x1000[s] * reference.section_rate_ratio(s))
            .collect();
        let seed: BTreeMap<DiagnosisGroup, Vec<f64>> = DiagnosisGroup::ALL
            .iter()
            .map(|g| {
                let w = sections
                    .iter()
                    .zip(&base)
                    .map(|(s, b)| b * group_section_affinity(*g, s))
                    .collect();
                (*g, w)
            })
            .collect();
        let base_total: f64 = base.iter().sum();
        for year in [2016, 2020] {
            let mix = group_mix(year);
            let raked = raked_section_weights(&mix, &seed, &base);
            for (g, row) in &raked {
                assert!(
                    (row.iter().sum::<f64>() - mix[g]).abs() < 1e-9,
                    "{year} {g:?}"
                );
            }
            for (s, b) in base.iter().enumerate() {
                let column: f64 = raked.values().map(|row| row[s]).sum();
                assert!(
                    (column - b / base_total).abs() < 1e-6,
                    "{year} {}",
                    sections[s]
                );
            }
            // affinities still shape the groups within sections: healthcare leads infections
            let q = sections.iter().position(|s| s == "Q").unwrap();
            let infectious = &raked[&DiagnosisGroup::Infectious];
            let share_q = infectious[q] / infectious.iter().sum::<f64>();
            assert!(share_q > base[q] / base_total, "{year}: {share_q}");
        }
    }

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
            reference.section_rate_ratio("F") > 1.5,
            "construction is above the national rate"
        );
        assert_eq!(reference.section_rate_ratio("R"), 1.0);
    }
}
