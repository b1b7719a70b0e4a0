//! Disproportionality measures on 2x2 tables of (exposure, diagnosis) pairs.
//!
//! Table layout (pharmacovigilance convention, Evans et al. 2001):
//!
//! |                    | diagnosis D | other diagnoses |
//! |--------------------|-------------|-----------------|
//! | exposure X         | a           | b               |
//! | other exposures    | c           | d               |
//!
//! * PRR = [a/(a+b)] / [c/(c+d)], 95% CI `exp(ln PRR +- z sqrt(1/a - 1/(a+b) + 1/c - 1/(c+d)))`
//!   (Evans, Waller & Davis 2001, *Pharmacoepidemiol Drug Saf* 10:483; Rothman's delta-method
//!   standard error). No continuity correction: undefined (`None`) when `a = 0` or `c = 0`.
//! * Pearson chi-square with 1 df, uncorrected `N (ad - bc)^2 / (m1 m2 n1 n2)` and Yates-corrected.
//!   The Yates version follows R `chisq.test(correct = TRUE)`: the correction is
//!   `min(0.5, |O - E|)` per cell, i.e. `N (|ad - bc| - min(N/2, |ad - bc|))^2 / (m1 m2 n1 n2)`,
//!   which is 0 (not positive) when `|ad - bc| < N/2`. `None` when a margin is 0 (R gives NaN).
//! * Evans screening flag: PRR >= 2 **and Yates-corrected** chi-square >= 4 and a >= 3, as in
//!   Evans et al. (2001), who used the Yates-corrected statistic.
//! * ROR = ad / (bc) with Woolf's (1955) CI `exp(ln ROR +- z sqrt(1/a + 1/b + 1/c + 1/d))`;
//!   `None` when any cell is 0.
//! * BCPNN information component, shrinkage form of Noren, Hopstadius & Bate (2013,
//!   *Stat Methods Med Res* 22:57): `IC = log2((O + 0.5)/(E + 0.5))` with O = a and
//!   E = (a+b)(a+c)/N, and credibility limits from the Gamma(O + 0.5, rate E + 0.5) quantiles:
//!   `IC025 = log2(qgamma(0.025, O + 0.5, E + 0.5))`, `IC975 = log2(qgamma(0.975, ...))`.
//!
//! [`build_pair_cells`] turns report-level rows into one 2x2 table and (N, E) cell per observed
//! pair, counting unique reports like openEBGM `processRaw` (see its docs).

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{check_level, Result};
use crate::poisson::Estimate;
use crate::special::{gamma_quantile, normal_quantile};

/// A 2x2 table of report counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TwoByTwo {
    /// Reports with the exposure and the diagnosis.
    pub a: u64,
    /// Reports with the exposure and another diagnosis.
    pub b: u64,
    /// Reports with the diagnosis and another exposure.
    pub c: u64,
    /// All other reports.
    pub d: u64,
}

impl TwoByTwo {
    /// Construct a table.
    pub fn new(a: u64, b: u64, c: u64, d: u64) -> Self {
        Self { a, b, c, d }
    }

    /// Total N = a + b + c + d (as f64 to avoid overflow).
    pub fn total(&self) -> f64 {
        self.a as f64 + self.b as f64 + self.c as f64 + self.d as f64
    }

    /// Expected count of cell a under independence, `(a+b)(a+c)/N` (0 when N = 0).
    pub fn expected(&self) -> f64 {
        let n = self.total();
        if n == 0.0 {
            0.0
        } else {
            (self.a as f64 + self.b as f64) * (self.a as f64 + self.c as f64) / n
        }
    }
}

fn z_of(level: f64) -> Result<f64> {
    check_level(level)?;
    Ok(normal_quantile(1.0 - (1.0 - level) / 2.0))
}

/// Proportional reporting ratio with CI (Evans et al. 2001). `None` if `a = 0` or `c = 0`.
pub fn prr(t: &TwoByTwo, level: f64) -> Result<Option<Estimate>> {
    let z = z_of(level)?;
    if t.a == 0 || t.c == 0 {
        return Ok(None);
    }
    let (a, b, c, d) = (t.a as f64, t.b as f64, t.c as f64, t.d as f64);
    let est = (a / (a + b)) / (c / (c + d));
    let se = (1.0 / a - 1.0 / (a + b) + 1.0 / c - 1.0 / (c + d))
        .max(0.0)
        .sqrt();
    Ok(Some(Estimate {
        estimate: est,
        lower: (est.ln() - z * se).exp(),
        upper: (est.ln() + z * se).exp(),
    }))
}

/// Reporting odds ratio with Woolf CI. `None` if any cell is 0.
pub fn ror(t: &TwoByTwo, level: f64) -> Result<Option<Estimate>> {
    let z = z_of(level)?;
    if t.a == 0 || t.b == 0 || t.c == 0 || t.d == 0 {
        return Ok(None);
    }
    let (a, b, c, d) = (t.a as f64, t.b as f64, t.c as f64, t.d as f64);
    let est = (a * d) / (b * c);
    let se = (1.0 / a + 1.0 / b + 1.0 / c + 1.0 / d).sqrt();
    Ok(Some(Estimate {
        estimate: est,
        lower: (est.ln() - z * se).exp(),
        upper: (est.ln() + z * se).exp(),
    }))
}

/// Pearson chi-square (1 df) without and with Yates correction (R `chisq.test` conventions).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChiSquare {
    /// Uncorrected statistic.
    pub uncorrected: f64,
    /// Yates-corrected statistic (R's `min(0.5, |O - E|)` correction).
    pub yates: f64,
}

/// Chi-square statistics; `None` when a row or column total is 0.
pub fn chi_square(t: &TwoByTwo) -> Option<ChiSquare> {
    let (a, b, c, d) = (t.a as f64, t.b as f64, t.c as f64, t.d as f64);
    let n = a + b + c + d;
    let denom = (a + b) * (c + d) * (a + c) * (b + d);
    if denom == 0.0 {
        return None;
    }
    let diff = (a * d - b * c).abs();
    let uncorrected = n * diff * diff / denom;
    let corr = (n / 2.0).min(diff);
    let yates = n * (diff - corr).powi(2) / denom;
    Some(ChiSquare { uncorrected, yates })
}

/// BCPNN information component with credibility interval (Noren et al. 2013).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InformationComponent {
    /// Observed count O.
    pub observed: f64,
    /// Expected count E.
    pub expected: f64,
    /// IC = log2((O + 0.5)/(E + 0.5)).
    pub ic: f64,
    /// Lower limit (2.5% quantile for level 0.95).
    pub ic_lower: f64,
    /// Upper limit (97.5% quantile for level 0.95).
    pub ic_upper: f64,
}

/// IC from an observed and expected count; limits are the `(1-level)/2` and `1-(1-level)/2`
/// quantiles of Gamma(O + 0.5, rate E + 0.5) on the log2 scale (Noren et al. 2013).
pub fn information_component(
    observed: f64,
    expected: f64,
    level: f64,
) -> Result<InformationComponent> {
    check_level(level)?;
    crate::error::check_nonneg("observed", observed)?;
    crate::error::check_nonneg("expected", expected)?;
    let shape = observed + 0.5;
    let rate = expected + 0.5;
    let tail = (1.0 - level) / 2.0;
    Ok(InformationComponent {
        observed,
        expected,
        ic: (shape / rate).log2(),
        ic_lower: (gamma_quantile(shape, tail) / rate).log2(),
        ic_upper: (gamma_quantile(shape, 1.0 - tail) / rate).log2(),
    })
}

/// All frequentist / BCPNN measures for one table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Disproportionality {
    /// The table.
    pub table: TwoByTwo,
    /// Expected count of cell a, (a+b)(a+c)/N.
    pub expected: f64,
    /// PRR with CI.
    pub prr: Option<Estimate>,
    /// ROR with CI.
    pub ror: Option<Estimate>,
    /// Chi-square statistics.
    pub chi_square: Option<ChiSquare>,
    /// Evans et al. (2001) flag: PRR >= 2, Yates chi-square >= 4, a >= 3.
    pub evans_signal: bool,
    /// BCPNN IC (E = table expected count).
    pub ic: InformationComponent,
}

/// Compute all measures for a table at confidence `level` (0.95 for the usual limits).
pub fn analyse(t: &TwoByTwo, level: f64) -> Result<Disproportionality> {
    let p = prr(t, level)?;
    let chi = chi_square(t);
    let evans = match (p, chi) {
        (Some(p), Some(c)) => p.estimate >= 2.0 && c.yates >= 4.0 && t.a >= 3,
        _ => false,
    };
    let e = t.expected();
    Ok(Disproportionality {
        table: *t,
        expected: e,
        prr: p,
        ror: ror(t, level)?,
        chi_square: chi,
        evans_signal: evans,
        ic: information_component(t.a as f64, e, level)?,
    })
}

/// One report-level row: a report mentions an exposure together with a diagnosis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRow<I, X, Y, S = ()> {
    /// Report (notification) identifier.
    pub report_id: I,
    /// Exposure code.
    pub exposure: X,
    /// Diagnosis code.
    pub diagnosis: Y,
    /// Optional stratum (e.g. period or sector) for stratified expected counts.
    pub stratum: Option<S>,
}

/// One observed (exposure, diagnosis) pair with its counts.
#[derive(Debug, Clone, PartialEq)]
pub struct PairCell<X, Y> {
    /// Exposure.
    pub exposure: X,
    /// Diagnosis.
    pub diagnosis: Y,
    /// Unique reports with the pair (N, = a of the table).
    pub n: u64,
    /// Expected count: `n_x n_y / n_total` on unique report counts, or, when stratified, the
    /// sum over strata of `n_xs n_ys / n_s` (openEBGM `processRaw`).
    pub expected: f64,
    /// 2x2 table built from unique-report marginals (always unstratified).
    pub table: TwoByTwo,
}

/// Build one cell per observed (exposure, diagnosis) pair from report-level rows.
///
/// Counting follows openEBGM `processRaw` (Canida & Ihrie 2017, *R Journal* 9:499): N is the
/// number of **unique** report ids with the pair; marginals are unique report counts per
/// exposure (`n_x`), per diagnosis (`n_y`) and overall (`n_total`); `E = n_x n_y / n_total`.
/// With `stratify = true`, rows without a stratum form their own stratum and
/// `E = sum_s n_xs n_ys / n_s` over strata (a report may count in several strata if its rows
/// carry different strata, as in openEBGM). The 2x2 table is
/// `a = N, b = n_x - N, c = n_y - N, d = n_total - n_x - n_y + N` (PRR as in `processRaw`);
/// `d` is clamped at 0 for inconsistent multi-label data where a report has exposure x and
/// diagnosis y on different rows without the pair. Only pairs that occur are returned (no zero
/// cells), sorted by (exposure, diagnosis).
pub fn build_pair_cells<I, X, Y, S>(
    rows: &[ReportRow<I, X, Y, S>],
    stratify: bool,
) -> Vec<PairCell<X, Y>>
where
    I: Ord + Clone,
    X: Ord + Clone,
    Y: Ord + Clone,
    S: Ord + Clone,
{
    let mut pair_ids: BTreeMap<(&X, &Y), BTreeSet<&I>> = BTreeMap::new();
    let mut x_ids: BTreeMap<&X, BTreeSet<&I>> = BTreeMap::new();
    let mut y_ids: BTreeMap<&Y, BTreeSet<&I>> = BTreeMap::new();
    let mut all_ids: BTreeSet<&I> = BTreeSet::new();
    // stratified marginals
    let mut xs_ids: BTreeMap<(Option<&S>, &X), BTreeSet<&I>> = BTreeMap::new();
    let mut ys_ids: BTreeMap<(Option<&S>, &Y), BTreeSet<&I>> = BTreeMap::new();
    let mut s_ids: BTreeMap<Option<&S>, BTreeSet<&I>> = BTreeMap::new();
    for r in rows {
        pair_ids
            .entry((&r.exposure, &r.diagnosis))
            .or_default()
            .insert(&r.report_id);
        x_ids.entry(&r.exposure).or_default().insert(&r.report_id);
        y_ids.entry(&r.diagnosis).or_default().insert(&r.report_id);
        all_ids.insert(&r.report_id);
        if stratify {
            let s = r.stratum.as_ref();
            xs_ids
                .entry((s, &r.exposure))
                .or_default()
                .insert(&r.report_id);
            ys_ids
                .entry((s, &r.diagnosis))
                .or_default()
                .insert(&r.report_id);
            s_ids.entry(s).or_default().insert(&r.report_id);
        }
    }
    let n_total = all_ids.len() as u64;
    let mut out = Vec::with_capacity(pair_ids.len());
    for ((x, y), ids) in &pair_ids {
        let n = ids.len() as u64;
        let nx = x_ids.get(x).map_or(0, |s| s.len()) as u64;
        let ny = y_ids.get(y).map_or(0, |s| s.len()) as u64;
        let expected = if stratify {
            s_ids
                .iter()
                .map(|(s, sid)| {
                    let nxs = xs_ids.get(&(*s, *x)).map_or(0, |v| v.len()) as f64;
                    let nys = ys_ids.get(&(*s, *y)).map_or(0, |v| v.len()) as f64;
                    nxs * nys / sid.len() as f64
                })
                .sum()
        } else {
            nx as f64 * ny as f64 / n_total as f64
        };
        let d = (n_total + n).saturating_sub(nx + ny);
        out.push(PairCell {
            exposure: (*x).clone(),
            diagnosis: (*y).clone(),
            n,
            expected,
            table: TwoByTwo::new(n, nx.saturating_sub(n), ny.saturating_sub(n), d),
        });
    }
    out
}
