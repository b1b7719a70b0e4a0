//! Improved Farrington (Noufaily et al. 2013, *Stat Med* 32:1206), following R
//! `surveillance::farringtonFlexible` (1.20.x) with index-based epochs.
//!
//! Code path replicated: `farringtonFlexible`, `algo.farrington.data.glm`,
//! `algo.farrington.referencetimepoints`, `blocks`, `algo.farrington.glm`,
//! `algo.farrington.fitGLM.flexible`, `anscombe.residuals`,
//! `algo.farrington.assign.weights`, `algo.farrington.threshold.farrington` ("delta") and
//! `algo.farrington.threshold.noufaily` ("nbPlugin", "muan"). For time `k` (one-based):
//!
//! 1. Reference time points `k, k - freq, ..., k - b*freq` must all exist.
//! 2. `blocks`: the windows `ref ± w` (and `k - w .. k`) get level `noPeriods`; when
//!    `noPeriods > 1` the gap between consecutive windows (length `freq - 2w - 1`) is split
//!    into `noPeriods - 1` blocks of (nearly) equal length, levels `1 .. noPeriods - 1`
//!    (longer blocks first). Points `k - pastWeeksNotIncluded ..= k` are excluded.
//! 3. GLM `y ~ 1 + wtime [+ seasgroups]` (wtime = one-based index; seasgroups a factor with
//!    treatment contrasts, reference = lowest level present) fitted as R's `glm`. No convergence
//!    with trend: refit without trend; still no convergence: the point gets `NA` (here
//!    `upperbound = None`, `alarm = None`).
//! 4. `phi = max(dispersion, 1)`; reweighting with Anscombe residuals and threshold
//!    `weightsThreshold` (default 2.58, Noufaily's recommendation), refit with prior weights,
//!    `phi = max(dispersion, 1)`.
//! 5. Trend kept only if p-value < `pThresholdTrend` (0.05), `b >= 3`, and the predicted value
//!    at `k` does not exceed the largest response; otherwise refit without trend.
//! 6. Thresholds with `alpha` (0.05), one-sided:
//!    * `Delta`: as Farrington with `qnorm(1 - alpha)` (not `alpha/2`); `upper` from the power
//!      transformation, score `(y - mu0)/(upper - mu0)`.
//!    * `NbPlugin`: `mu0 = exp(eta0)`; if `phi > 1` the upper bound is
//!      `qnbinom(1 - alpha, size = mu0/(phi - 1), prob = 1/phi)` else `qpois(1 - alpha, mu0)`.
//!    * `Muan`: as NbPlugin with `mu0 = exp(qnorm(1 - alpha, eta0, se(eta0)))`.
//!
//!    For NbPlugin/Muan the package computes the score as `(y - eta0)/(upper - eta0)` with eta0
//!    on the **log** scale; replicated as is (the alarm is effectively `y > upper`).
//! 7. `limit54`: with fewer than 5 cases in the last 4 points: `upperbound = NA`, no alarm,
//!    `expected = NA`. Alarm = `score > 1` and `y != 0`.
//!
//! **R quirk replicated on purpose** (so results match the package): after reweighting,
//! `algo.farrington.fitGLM.flexible` overwrites `model$weights` (the IRLS working weights) with
//! the prior weights `omega`. `summary.glm` and `predict.glm(se.fit = TRUE)` then use the
//! dispersion `sum(omega * ((y - mu)/mu)^2) / df` for the trend test p-value and for the standard
//! error of the prediction (also the `dispersion = phi` argument is placed inside the `newdata`
//! data frame and therefore ignored). `phi` itself is computed before the overwrite and is the
//! proper quasi-Poisson dispersion. Without reweighting the ordinary dispersion is used.
//!
//! Defaults ([`FlexibleControl::default`]) are R's: `b = 5`, `w = 3`, `reweight = TRUE`,
//! `weightsThreshold = 2.58`, `alpha = 0.05`, `trend = TRUE`, `pThresholdTrend = 0.05`,
//! `limit54 = (5, 4)`, `powertrans = "2/3"`, `noPeriods = 1`, `pastWeeksNotIncluded = w`,
//! `thresholdMethod = "delta"`. [`FlexibleControl::noufaily`] gives the settings recommended by
//! Noufaily et al. (2013): `noPeriods = 10`, `pastWeeksNotIncluded = 26`,
//! `thresholdMethod = "nbPlugin"`. Population offsets are not implemented.

use super::farrington::{anscombe_residuals, assign_weights, rmax1, PowerTransform};
use super::{check_series, resolve_range, AberrationPoint, Details};
use crate::error::{Result, StatsError};
use crate::glm::{glm_quasipoisson, GlmFit};
use crate::special::{
    nbinom_quantile, nbinom_sf, normal_quantile, normal_sf, poisson_quantile, poisson_sf,
};

/// Threshold method (R `thresholdMethod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ThresholdMethod {
    /// Farrington's delta method on the power-transformed scale (R default "delta").
    #[default]
    Delta,
    /// Negative binomial quantile with plug-in mean (Noufaily et al. 2013).
    NbPlugin,
    /// Negative binomial quantile with the upper quantile of the mean ("muan").
    Muan,
}

/// Control parameters (R `farringtonFlexible` `control`).
#[derive(Debug, Clone, PartialEq)]
pub struct FlexibleControl {
    /// Zero-based half-open range; `None` = R default (one-based `freq*b + w + 1` to the end).
    pub range: Option<std::ops::Range<usize>>,
    /// Years back (5).
    pub b: usize,
    /// Window half-width (3).
    pub w: usize,
    /// Reweighting (true).
    pub reweight: bool,
    /// Anscombe residual threshold for down-weighting (2.58).
    pub weights_threshold: f64,
    /// One-sided alpha (0.05).
    pub alpha: f64,
    /// Fit a trend (true).
    pub trend: bool,
    /// p-value threshold for keeping the trend (0.05).
    pub p_threshold_trend: f64,
    /// `(cases, period)` (5, 4).
    pub limit54: (f64, usize),
    /// Power transform for `Delta` ("2/3").
    pub powertrans: PowerTransform,
    /// Number of seasonal factor levels (1 = no factor).
    pub no_periods: usize,
    /// Most recent points excluded from the fit; `None` = `w`.
    pub past_weeks_not_included: Option<usize>,
    /// Threshold method (Delta).
    pub threshold_method: ThresholdMethod,
}

impl Default for FlexibleControl {
    fn default() -> Self {
        Self {
            range: None,
            b: 5,
            w: 3,
            reweight: true,
            weights_threshold: 2.58,
            alpha: 0.05,
            trend: true,
            p_threshold_trend: 0.05,
            limit54: (5.0, 4),
            powertrans: PowerTransform::TwoThirds,
            no_periods: 1,
            past_weeks_not_included: None,
            threshold_method: ThresholdMethod::Delta,
        }
    }
}

impl FlexibleControl {
    /// Noufaily et al. (2013) recommended settings: `noPeriods = 10`,
    /// `pastWeeksNotIncluded = 26`, `thresholdMethod = NbPlugin`, other values R's defaults.
    pub fn noufaily() -> Self {
        Self {
            no_periods: 10,
            past_weeks_not_included: Some(26),
            threshold_method: ThresholdMethod::NbPlugin,
            ..Self::default()
        }
    }
}

/// Extras of [`farrington_flexible`] (R `control$score`, `pvalue`, `mu0Vector`, ...).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlexibleDetails {
    /// Score `(y - fit)/(upper - fit)` (fit on the prediction scale of the method).
    pub score: Option<f64>,
    /// Upper-tail probability of the observation (R `pvalue`).
    pub pvalue: Option<f64>,
    /// R `mu0Vector`: `exp(eta0)` for NbPlugin, else `exp(qnorm(1 - alpha, eta0, se))`.
    pub mu0: Option<f64>,
    /// Dispersion phi = max(dispersion, 1).
    pub phi: Option<f64>,
    /// Whether the final model has a trend (`None` when no model converged).
    pub trend: Option<bool>,
    /// Trend coefficient when the trend was kept.
    pub trend_coefficient: Option<f64>,
    /// Lower threshold.
    pub lower: Option<f64>,
    /// Upper threshold before the `limit54` rule.
    pub upper: Option<f64>,
    /// Whether the `limit54` rule allowed an alarm.
    pub enough_cases: bool,
}

/// R `seq(a, b)` for integers (descending when b < a).
fn r_seq(a: i64, b: i64) -> Vec<i64> {
    if b >= a {
        (a..=b).collect()
    } else {
        (b..=a).rev().collect()
    }
}

/// R `blocks()` for index-based epochs. Returns factor levels (NaN = NA) for indices 1..=n
/// (position 0 unused).
fn blocks(n: usize, k: i64, freq: i64, b: usize, w: i64, p: usize) -> Result<Vec<f64>> {
    let mut v = vec![f64::NAN; n + 1];
    let mut set = |i: i64, val: f64| {
        if i >= 1 && (i as usize) <= n {
            v[i as usize] = val;
        }
    };
    for i in r_seq(k - w, k) {
        set(i, p as f64);
    }
    // referenceWeeks (descending): k, k - freq, ..., k - b*freq
    let refs: Vec<i64> = (0..=b as i64).map(|i| k - i * freq).collect();
    for i in 1..=b {
        let ref_week = refs[i];
        for j in r_seq(ref_week - w, ref_week + w) {
            set(j, p as f64);
        }
        if p != 1 {
            let period = refs[i - 1] - 2 * w - 1 - ref_week;
            let pm1 = (p - 1) as i64;
            if period < (p as i64 - (2 * w + 1)) {
                return Err(StatsError::InvalidParameter {
                    name: "no_periods",
                    value: p as f64,
                    requirement: "number of factors too big for the gap between reference windows",
                });
            }
            let len = period.div_euclid(pm1);
            let rest = period.rem_euclid(pm1);
            let mut lens = vec![0i64];
            for j in 0..pm1 {
                lens.push(len + if j < rest { 1 } else { 0 });
            }
            let mut cum = Vec::with_capacity(lens.len());
            let mut acc = 0;
            for l in &lens {
                acc += l;
                cum.push(acc);
            }
            for j in 1..=pm1 as usize {
                let a = ref_week + w + 1 + cum[j - 1];
                let e = ref_week + w + 1 + cum[j] - 1;
                for idx in r_seq(a, e) {
                    set(idx, j as f64);
                }
            }
        }
    }
    Ok(v)
}

struct FlexModel {
    fit: GlmFit,
    phi: f64,
    /// Weights R ends up storing in `model$weights` (omega after reweighting).
    reported_weights: Vec<f64>,
    has_trend: bool,
}

impl FlexModel {
    /// Dispersion as `summary.glm` / `predict.glm` see it (with the quirk).
    fn reported_dispersion(&self) -> f64 {
        self.fit.dispersion_with(&self.reported_weights)
    }
}

struct Data {
    response: Vec<f64>,
    wtime: Vec<f64>,
    groups: Vec<f64>,
    levels: Vec<f64>,
}

fn design_row(wtime: f64, group: f64, trend: bool, levels: &[f64], factors: bool) -> Vec<f64> {
    let mut r = vec![1.0];
    if trend {
        r.push(wtime);
    }
    if factors {
        for l in levels.iter().skip(1) {
            r.push(if group == *l { 1.0 } else { 0.0 });
        }
    }
    r
}

/// R `algo.farrington.fitGLM.flexible`.
fn fit_flexible(
    d: &Data,
    time_trend: bool,
    factors: bool,
    reweight: bool,
    weights_threshold: f64,
) -> Option<FlexModel> {
    let ones = vec![1.0; d.response.len()];
    let mk = |trend: bool| -> Vec<Vec<f64>> {
        d.wtime
            .iter()
            .zip(&d.groups)
            .map(|(&t, &g)| design_row(t, g, trend, &d.levels, factors))
            .collect()
    };
    let mut trend = time_trend;
    let mut x = mk(trend);
    let mut fit = glm_quasipoisson(&x, &d.response, &ones)?;
    if !fit.converged {
        if trend {
            trend = false;
            x = mk(false);
            fit = glm_quasipoisson(&x, &d.response, &ones)?;
        }
        if !fit.converged {
            return None;
        }
    }
    let mut phi = rmax1(fit.dispersion());
    let mut reported = fit.working_weights.clone();
    if reweight {
        let s = anscombe_residuals(&fit, phi);
        let omega = assign_weights(&s, weights_threshold);
        fit = glm_quasipoisson(&x, &d.response, &omega)?;
        phi = rmax1(fit.dispersion());
        reported = omega;
    }
    Some(FlexModel {
        reported_weights: reported,
        fit,
        phi,
        has_trend: trend,
    })
}

/// Improved Farrington (R `farringtonFlexible`); see the module docs.
pub fn farrington_flexible(
    counts: &[f64],
    frequency: usize,
    control: &FlexibleControl,
) -> Result<Vec<AberrationPoint>> {
    check_series(counts)?;
    let (b, w, freq) = (control.b, control.w, frequency);
    if freq == 0 || b == 0 {
        return Err(StatsError::InvalidParameter {
            name: if freq == 0 { "frequency" } else { "b" },
            value: 0.0,
            requirement: "frequency and b must be >= 1",
        });
    }
    if !(control.alpha > 0.0 && control.alpha < 1.0) {
        return Err(StatsError::InvalidParameter {
            name: "alpha",
            value: control.alpha,
            requirement: "must lie strictly between 0 and 1",
        });
    }
    if !(control.limit54.0 >= 0.0) || control.limit54.1 == 0 {
        return Err(StatsError::InvalidParameter {
            name: "limit54",
            value: control.limit54.0,
            requirement: "limit54 needs cases >= 0 and period > 0",
        });
    }
    if control.no_periods == 0 {
        return Err(StatsError::InvalidParameter {
            name: "no_periods",
            value: 0.0,
            requirement: "must be >= 1",
        });
    }
    if !control.weights_threshold.is_finite() || !control.p_threshold_trend.is_finite() {
        return Err(StatsError::InvalidParameter {
            name: "weights_threshold/p_threshold_trend",
            value: f64::NAN,
            requirement: "must be finite",
        });
    }
    let pwni = control.past_weeks_not_included.unwrap_or(w);
    // First evaluable one-based k: k - b*freq - w >= 1.
    let Some(first_one_based) = freq
        .checked_mul(b)
        .and_then(|v| v.checked_add(w))
        .and_then(|v| v.checked_add(1))
        .filter(|v| *v <= isize::MAX as usize / 4)
    else {
        return Err(StatsError::InvalidParameter {
            name: "b",
            value: b as f64,
            requirement: "b * frequency + w is far larger than any series",
        });
    };
    if w > counts.len() || pwni > isize::MAX as usize / 4 {
        return Err(StatsError::InvalidParameter {
            name: "w",
            value: w as f64,
            requirement:
                "window half-width and pastWeeksNotIncluded must be smaller than the series",
        });
    }
    let min_start = (first_one_based - 1).max(control.limit54.1 - 1);
    if counts.len() <= min_start {
        return Err(StatsError::SeriesTooShort {
            method: format!("improved Farrington with b={b} years, w={w} and frequency {freq}"),
            needed: min_start + 1,
            got: counts.len(),
        });
    }
    let range = resolve_range(
        "farringtonFlexible",
        &control.range,
        min_start,
        min_start,
        counts.len(),
    )?;
    let factors = control.no_periods != 1;
    let n = counts.len();
    let mut out = Vec::with_capacity(range.len());
    for t in range {
        let k = (t + 1) as i64;
        let mut bl = blocks(n, k, freq as i64, b, w as i64, control.no_periods)?;
        for i in (k - pwni as i64).max(1)..=k {
            bl[i as usize] = f64::NAN;
        }
        let mut d = Data {
            response: Vec::new(),
            wtime: Vec::new(),
            groups: Vec::new(),
            levels: Vec::new(),
        };
        for (i, g) in bl.iter().enumerate().skip(1) {
            if !g.is_nan() {
                d.response.push(counts[i - 1]);
                d.wtime.push(i as f64);
                d.groups.push(*g);
            }
        }
        let mut levels = d.groups.clone();
        levels.sort_by(f64::total_cmp);
        levels.dedup();
        d.levels = levels;
        let y = counts[t];
        let win_start = t + 1 - control.limit54.1;
        let enough = counts[win_start..=t].iter().sum::<f64>() >= control.limit54.0;

        let na_point = |enough: bool| AberrationPoint {
            index: t,
            observed: y,
            upperbound: None,
            alarm: None,
            expected: None,
            details: Details::Flexible(FlexibleDetails {
                score: None,
                pvalue: None,
                mu0: None,
                phi: None,
                trend: None,
                trend_coefficient: None,
                lower: None,
                upper: None,
                enough_cases: enough,
            }),
        };
        if d.response.len() < 2 {
            out.push(na_point(enough));
            continue;
        }
        let kf = k as f64;
        let x0 = |m: &FlexModel| {
            design_row(
                kf,
                control.no_periods as f64,
                m.has_trend,
                &d.levels,
                factors,
            )
        };
        let Some(mut model) = fit_flexible(
            &d,
            control.trend,
            factors,
            control.reweight,
            control.weights_threshold,
        ) else {
            out.push(na_point(enough));
            continue;
        };
        let mut do_trend = false;
        if model.has_trend {
            let xr = x0(&model);
            let fit_resp = model.fit.eta_at(&xr).exp().max(f64::EPSILON);
            let p = model.fit.coef_p_value(1, model.reported_dispersion());
            let significant = p < control.p_threshold_trend;
            let max_resp = d.response.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let no_extrapolation = fit_resp <= max_resp;
            do_trend = b >= 3 && significant && no_extrapolation;
            if !do_trend {
                match fit_flexible(
                    &d,
                    false,
                    factors,
                    control.reweight,
                    control.weights_threshold,
                ) {
                    Some(m) => model = m,
                    None => {
                        out.push(na_point(enough));
                        continue;
                    }
                }
            }
        }
        let xr = x0(&model);
        let eta0 = model.fit.eta_at(&xr);
        let disp = model.reported_dispersion();
        let se_eta = disp.sqrt() * model.fit.se_eta_unscaled(&xr);
        let phi = model.phi;
        let alpha = control.alpha;
        let trend_coefficient = if do_trend {
            Some(model.fit.coefficients[1])
        } else {
            None
        };

        let (pred_fit, lower, upper, prob) = match control.threshold_method {
            ThresholdMethod::Delta => {
                let mu0 = eta0.exp().max(f64::EPSILON);
                let se = se_eta * mu0;
                let tau = phi + se * se / mu0;
                let e = control.powertrans.exponent();
                let sd = control.powertrans.sd(mu0, tau);
                let zq = normal_quantile(1.0 - alpha);
                let l1 = (mu0.powf(e) - zq * sd).powf(1.0 / e);
                let l2 = (mu0.powf(e) + zq * sd).powf(1.0 / e);
                let (lo, up) = if l1.is_nan() {
                    (l1, l2)
                } else if l2.is_nan() {
                    (l2, l1)
                } else if l1 <= l2 {
                    (l1, l2)
                } else {
                    (l2, l1)
                };
                let lo = if lo.is_nan() { 0.0 } else { lo.max(0.0) };
                let q = normal_sf((y.powf(e) - mu0.powf(e)) / sd);
                (
                    mu0,
                    Some(lo),
                    if up.is_nan() { None } else { Some(up) },
                    Some(q),
                )
            }
            ThresholdMethod::NbPlugin | ThresholdMethod::Muan => {
                let mu_q = if control.threshold_method == ThresholdMethod::NbPlugin {
                    eta0.exp()
                } else {
                    (eta0 + se_eta * normal_quantile(1.0 - alpha)).exp()
                };
                if !mu_q.is_finite() || mu_q.is_nan() {
                    (eta0, None, None, None)
                } else {
                    let (lo, up) = if phi > 1.0 {
                        let size = mu_q / (phi - 1.0);
                        let prob = 1.0 / phi;
                        (
                            nbinom_quantile(alpha, size, prob),
                            nbinom_quantile(1.0 - alpha, size, prob),
                        )
                    } else {
                        (
                            poisson_quantile(alpha, mu_q),
                            poisson_quantile(1.0 - alpha, mu_q),
                        )
                    };
                    let q = if phi != 1.0 {
                        nbinom_sf(y - 1.0, mu_q / (phi - 1.0), 1.0 / phi)
                    } else {
                        poisson_sf(y - 1.0, mu_q)
                    };
                    let lo = if lo.is_nan() { lo } else { lo.max(0.0) };
                    (
                        eta0,
                        Some(lo),
                        if up.is_nan() { None } else { Some(up) },
                        Some(q),
                    )
                }
            }
        };
        let score = upper.map(|u| (y - pred_fit) / (u - pred_fit));
        let x = if enough { score } else { None };
        let alarm = Some(matches!(x, Some(s) if s > 1.0) && y != 0.0);
        let upperbound = if enough { upper } else { None };
        let expected = if upper.is_some() && enough {
            Some(match control.threshold_method {
                ThresholdMethod::Delta => pred_fit,
                _ => pred_fit.exp(),
            })
        } else {
            None
        };
        // R `mu0Vector`: exp(eta0) for nbPlugin, else exp(qnorm(1 - alpha, pred$fit, pred$se.fit)),
        // where for "delta" pred is on the response scale (R quirk, replicated).
        let mu0v = match control.threshold_method {
            ThresholdMethod::NbPlugin => eta0.exp(),
            ThresholdMethod::Muan => (eta0 + se_eta * normal_quantile(1.0 - alpha)).exp(),
            ThresholdMethod::Delta => {
                let mu0 = eta0.exp().max(f64::EPSILON);
                (mu0 + se_eta * mu0 * normal_quantile(1.0 - alpha)).exp()
            }
        };
        out.push(AberrationPoint {
            index: t,
            observed: y,
            upperbound,
            alarm,
            expected,
            details: Details::Flexible(FlexibleDetails {
                score,
                pvalue: prob,
                mu0: Some(mu0v),
                phi: Some(phi),
                trend: Some(do_trend),
                trend_coefficient,
                lower,
                upper,
                enough_cases: enough,
            }),
        });
    }
    Ok(out)
}
