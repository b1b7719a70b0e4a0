//! Original Farrington algorithm, following R `surveillance::algo.farrington` (1.20.x) with
//! its default `fitFun = "algo.farrington.fitGLM.fast"`.
//!
//! Source: Farrington, Andrews, Beale & Catchpole (1996), *JRSS A* 159:547; code path of
//! `algo.farrington`, `algo.farrington.fitGLM.fast`, `anscombe.residuals`,
//! `algo.farrington.assign.weights` and `algo.farrington.threshold`. For each time `t`
//! (one-based `k = t + 1` below, as in R):
//!
//! 1. Reference values: for `i = b, ..., 1` the window `k - i*freq - w ..= k - i*freq + w`; indices
//!    below 1 are dropped (R warns and continues).
//! 2. Quasi-Poisson log-link GLM `y ~ 1 + wtime` (wtime = the one-based indices) fitted as R's
//!    `glm.fit` does (see `crate::glm`); if it does not converge with trend, refit without trend;
//!    `phi = max(dispersion, 1)`.
//! 3. Reweighting (default on): Anscombe residuals
//!    `s = 3/2 (y^(2/3) mu^(-1/6) - mu^(1/2)) / sqrt(phi (1 - h))`, weights `gamma * s^-2` for
//!    `s > 1` and `gamma` otherwise, `gamma` normalising the weights to sum n; refit with these
//!    prior weights; `phi = max(dispersion, 1)`.
//! 4. Trend is kept only if its t-test p-value < 0.05, `b >= 3` and the predicted value at `k` is
//!    not above the largest reference value; otherwise the model is refitted without trend
//!    (steps 2-3 again).
//! 5. Prediction `mu0` at `k` with `se = sqrt(phi x0'(X'WX)^-1 x0) * mu0` (R passes
//!    `dispersion = phi` to `predict.glm`), `tau = phi + se^2/mu0`; with power transform
//!    `2/3` (default): `sd = sqrt(4/9 mu0^(1/3) tau)` and
//!    `upper = (mu0^(2/3) + qnorm(1 - alpha/2) sd)^(3/2)`; `1/2`: `sd = sqrt(tau/4)`, exponent 2;
//!    `none`: `sd = sqrt(mu0 tau)`, exponent 1. The lower limit is clamped at 0; R does not
//!    clamp the upper one.
//! 6. `limit54 = (cases, period)`: if fewer than `cases` counts in the last `period` points
//!    (including `k`), `upperbound = 0` and no alarm; otherwise
//!    `alarm = (y_k - mu0)/(upper - mu0) > 1`.
//!
//! Defaults are R's: `b = 5`, `w = 3`, `reweight = TRUE`, `alpha = 0.05`, `trend = TRUE`,
//! `limit54 = (5, 4)`, `powertrans = "2/3"`. (Farrington et al. 1996 describe `b = 5` too;
//! older docs that mention `b = 3` describe a non-default setting.) Default range: one-based
//! `freq * b - w` to the end, i.e. zero-based start `freq * b - w - 1`. Population offsets
//! (`algo.farrington.fitGLM.populationOffset`) are not implemented.

use super::{check_series, resolve_range, AberrationPoint, Details};
use crate::error::{Result, StatsError};
use crate::glm::{glm_quasipoisson, GlmFit};
use crate::special::normal_quantile;

/// Power transformation for the Farrington threshold (R `powertrans`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PowerTransform {
    /// Exponent 2/3 (default; Farrington et al. 1996).
    #[default]
    TwoThirds,
    /// Exponent 1/2.
    Half,
    /// No transformation.
    None,
}

impl PowerTransform {
    pub(crate) fn exponent(self) -> f64 {
        match self {
            PowerTransform::TwoThirds => 2.0 / 3.0,
            PowerTransform::Half => 0.5,
            PowerTransform::None => 1.0,
        }
    }

    /// Standard deviation on the transformed scale (R `algo.farrington.threshold`).
    pub(crate) fn sd(self, mu0: f64, tau: f64) -> f64 {
        match self {
            PowerTransform::TwoThirds => (4.0 / 9.0 * mu0.powf(1.0 / 3.0) * tau).sqrt(),
            PowerTransform::Half => (0.25 * tau).sqrt(),
            PowerTransform::None => (mu0 * tau).sqrt(),
        }
    }
}

/// Control parameters (R `algo.farrington` `control`).
#[derive(Debug, Clone, PartialEq)]
pub struct FarringtonControl {
    /// Zero-based half-open range; `None` = R default (one-based `freq*b - w` to the end).
    pub range: Option<std::ops::Range<usize>>,
    /// Years back, default 5.
    pub b: usize,
    /// Window half-width, default 3.
    pub w: usize,
    /// Reweight outliers, default true.
    pub reweight: bool,
    /// Two-sided alpha of the prediction interval, default 0.05.
    pub alpha: f64,
    /// Fit a time trend, default true.
    pub trend: bool,
    /// `(cases, period)`: no alarm with fewer than `cases` in the last `period` points; (5, 4).
    pub limit54: (f64, usize),
    /// Power transform, default 2/3.
    pub powertrans: PowerTransform,
}

impl Default for FarringtonControl {
    fn default() -> Self {
        Self {
            range: None,
            b: 5,
            w: 3,
            reweight: true,
            alpha: 0.05,
            trend: true,
            limit54: (5.0, 4),
            powertrans: PowerTransform::TwoThirds,
        }
    }
}

/// Extras of [`farrington`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FarringtonDetails {
    /// Predicted mean mu0 at this time point.
    pub mu0: f64,
    /// Standard error of mu0 (response scale, `dispersion = phi`).
    pub se_mu0: f64,
    /// Dispersion phi = max(estimated dispersion, 1).
    pub phi: f64,
    /// Whether the final model includes the time trend.
    pub trend: bool,
    /// Lower limit of the prediction interval (clamped at 0).
    pub lower: f64,
    /// Upper limit of the prediction interval (the threshold, before `limit54`).
    pub upper: f64,
    /// Whether `limit54` allowed an alarm.
    pub enough_cases: bool,
    /// R `pd[,1]`: `pnorm(y^e, mu0^e, sd)`.
    pub prob: f64,
}

/// One fitted model with the Farrington reweighting step (R `algo.farrington.fitGLM.fast`).
pub(crate) struct FarrFit {
    pub fit: GlmFit,
    pub phi: f64,
    pub has_trend: bool,
}

/// Anscombe residuals (R `anscombe.residuals`).
pub(crate) fn anscombe_residuals(fit: &GlmFit, phi: f64) -> Vec<f64> {
    fit.y
        .iter()
        .zip(&fit.fitted)
        .zip(&fit.hat)
        .map(|((&y, &mu), &h)| {
            1.5 * (y.powf(2.0 / 3.0) * mu.powf(-1.0 / 6.0) - mu.sqrt()) / (phi * (1.0 - h)).sqrt()
        })
        .collect()
}

/// Reweighting (R `algo.farrington.assign.weights`).
pub(crate) fn assign_weights(s: &[f64], threshold: f64) -> Vec<f64> {
    let denom: f64 = s
        .iter()
        .map(|&v| if v > threshold { v.powi(-2) } else { 1.0 })
        .sum();
    let gamma = s.len() as f64 / denom;
    s.iter()
        .map(|&v| {
            if v > threshold {
                gamma * v.powi(-2)
            } else {
                gamma
            }
        })
        .collect()
}

/// R's `max(x, 1)` where x may be NaN: `max(NaN, 1)` is NaN in R.
pub(crate) fn rmax1(x: f64) -> f64 {
    if x.is_nan() {
        f64::NAN
    } else {
        x.max(1.0)
    }
}

fn design(wtime: &[f64], trend: bool) -> Vec<Vec<f64>> {
    wtime
        .iter()
        .map(|&t| if trend { vec![1.0, t] } else { vec![1.0] })
        .collect()
}

/// R `algo.farrington.fitGLM.fast`.
fn fit_glm_fast(
    response: &[f64],
    wtime: &[f64],
    time_trend: bool,
    reweight: bool,
) -> Option<FarrFit> {
    let ones = vec![1.0; response.len()];
    let mut trend = time_trend;
    let mut x = design(wtime, trend);
    let mut fit = glm_quasipoisson(&x, response, &ones)?;
    if !fit.converged && trend {
        trend = false;
        x = design(wtime, false);
        fit = glm_quasipoisson(&x, response, &ones)?;
    }
    // R's fast variant continues even if the no-trend fit did not converge.
    let mut phi = rmax1(fit.dispersion());
    if reweight {
        let s = anscombe_residuals(&fit, phi);
        let omega = assign_weights(&s, 1.0);
        fit = glm_quasipoisson(&x, response, &omega)?;
        phi = rmax1(fit.dispersion());
    }
    Some(FarrFit {
        fit,
        phi,
        has_trend: trend,
    })
}

/// Original Farrington algorithm (R `algo.farrington`); see the module docs.
///
/// `frequency` is the number of periods per year (52 weekly, 12 monthly).
pub fn farrington(
    counts: &[f64],
    frequency: usize,
    control: &FarringtonControl,
) -> Result<Vec<AberrationPoint>> {
    check_series(counts)?;
    let (b, w, freq) = (control.b, control.w, frequency);
    if freq == 0 {
        return Err(StatsError::InvalidParameter {
            name: "frequency",
            value: 0.0,
            requirement: "periods per year must be >= 1 (52 weekly, 12 monthly)",
        });
    }
    if b == 0 {
        return Err(StatsError::InvalidParameter {
            name: "b",
            value: 0.0,
            requirement: "number of years back must be >= 1",
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
    // R's default first point (one-based) is freq*b - w; it must be >= 1 and the limit54
    // window must fit.
    let Some(fb) = freq
        .checked_mul(b)
        .filter(|v| *v <= isize::MAX as usize / 4)
    else {
        return Err(StatsError::InvalidParameter {
            name: "b",
            value: b as f64,
            requirement: "b * frequency is far larger than any series",
        });
    };
    let first_one_based = fb.saturating_sub(w).max(1);
    let min_start = control.limit54.1.saturating_sub(1);
    let default_start = (first_one_based - 1).max(min_start);
    if counts.len() <= default_start && control.range.is_none() {
        return Err(StatsError::SeriesTooShort {
            method: format!("Farrington with b={b} years, w={w} and frequency {freq}"),
            needed: default_start + 1,
            got: counts.len(),
        });
    }
    let range = resolve_range(
        "Farrington",
        &control.range,
        default_start,
        min_start,
        counts.len(),
    )?;
    let z = normal_quantile(1.0 - control.alpha / 2.0);
    let e = control.powertrans.exponent();
    let mut out = Vec::with_capacity(range.len());
    for t in range {
        let k = (t + 1) as i64; // one-based
        let mut idx: Vec<usize> = Vec::new();
        for i in (1..=b as i64).rev() {
            let centre = k - freq as i64 * i;
            let wi = w.min(counts.len()) as i64;
            for j in (centre - wi).max(1)..=(centre + wi).min(counts.len() as i64) {
                idx.push(j as usize);
            }
        }
        if idx.len() < 2 {
            return Err(StatsError::SeriesTooShort {
                method: format!(
                    "Farrington at index {t} with b={b} years, w={w} and frequency {freq} (too few reference values)"
                ),
                needed: fb + w + 1,
                got: counts.len(),
            });
        }
        let response: Vec<f64> = idx.iter().map(|&j| counts[j - 1]).collect();
        let wtime: Vec<f64> = idx.iter().map(|&j| j as f64).collect();
        let no_conv = || StatsError::NoConvergence {
            what: "Farrington quasi-Poisson GLM",
            iterations: 25,
            hint: "the reference values are degenerate; check the series",
        };
        let mut model =
            fit_glm_fast(&response, &wtime, control.trend, control.reweight).ok_or_else(no_conv)?;
        let kf = k as f64;
        let mut do_trend = control.trend;
        if model.has_trend {
            let p = model.fit.coef_p_value(1, model.fit.dispersion());
            let significant = p < 0.05;
            let mu0_hat = model.fit.eta_at(&[1.0, kf]).exp().max(f64::EPSILON);
            let max_resp = response.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let no_extrapolation = mu0_hat <= max_resp;
            if !(b >= 3 && significant && no_extrapolation) {
                do_trend = false;
                model =
                    fit_glm_fast(&response, &wtime, false, control.reweight).ok_or_else(no_conv)?;
            }
        } else {
            do_trend = false;
        }
        let x0: Vec<f64> = if model.has_trend {
            vec![1.0, kf]
        } else {
            vec![1.0]
        };
        let phi = model.phi;
        let eta0 = model.fit.eta_at(&x0);
        let mu0 = eta0.exp().max(f64::EPSILON);
        let se = (phi).sqrt() * model.fit.se_eta_unscaled(&x0) * mu0;
        let tau = phi + se * se / mu0;
        let sd = control.powertrans.sd(mu0, tau);
        let a = mu0.powf(e) - z * sd;
        let bnd = mu0.powf(e) + z * sd;
        let l1 = a.powf(1.0 / e);
        let l2 = bnd.powf(1.0 / e);
        // sort(c(l1, l2), na.last = FALSE); lower clamped at 0 (na.rm)
        let (lo_raw, up) = if l1.is_nan() {
            (l1, l2)
        } else if l2.is_nan() {
            (l2, l1)
        } else if l1 <= l2 {
            (l1, l2)
        } else {
            (l2, l1)
        };
        let lower = if lo_raw.is_nan() {
            0.0
        } else {
            lo_raw.max(0.0)
        };
        let y = counts[t];
        let win_start = t + 1 - control.limit54.1;
        let recent: f64 = counts[win_start..=t].iter().sum();
        let enough = recent >= control.limit54.0;
        let x = if enough { (y - mu0) / (up - mu0) } else { 0.0 };
        let alarm = if x.is_nan() { None } else { Some(x > 1.0) };
        let ub = if enough { up } else { 0.0 };
        let prob = crate::special::normal_cdf((y.powf(e) - mu0.powf(e)) / sd);
        out.push(AberrationPoint {
            index: t,
            observed: y,
            upperbound: Some(ub),
            alarm,
            expected: Some(mu0),
            details: Details::Farrington(FarringtonDetails {
                mu0,
                se_mu0: se,
                phi,
                trend: do_trend,
                lower,
                upper: up,
                enough_cases: enough,
                prob,
            }),
        });
    }
    Ok(out)
}
