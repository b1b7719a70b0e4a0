//! EARS C1, C2, C3, exactly as R `surveillance::earsC` (version 1.20.x).
//!
//! For a time point `t` with `baseline = n` (default 7, minimum 3):
//! * C1: reference values `y[t-n .. t-1]`; C2 and C3: `y[t-n-2 .. t-3]` (lag 2).
//! * `mean` and sample standard deviation `sd` (divisor n - 1) of the reference values,
//!   `sigma = max(sd, minSigma)` (`minSigma` default 0, the package's convention: with
//!   `minSigma = 0` a constant baseline gives `sigma = 0`).
//! * C1, C2: `upperbound = mean + z * sigma`, `z = qnorm(1 - alpha)`.
//! * C3 (as coded in the package, which differs from the textbook C3 sum): with the C2 statistics
//!   `C2(s) = (y[s] - mean(s)) / sigma(s)`,
//!   `upperbound = max(0, y[t] + sigma(t) * (z - (max(0, C2(t-2) - 1) + max(0, C2(t-1) - 1))))`.
//!   When a `sigma` is 0 the package produces `NaN`/`NA`; this crate returns `upperbound = NaN`
//!   and `alarm = None` in the same cases.
//! * `alarm = observed > upperbound`.
//! * Default `alpha` (R: when `control$alpha` is not given): 0.001 for C1 and C2, 0.025 for C3.
//! * Default range: from the first point with a full (lagged) baseline: zero-based `n` (C1),
//!   `n + 2` (C2), `n + 4` (C3), to the end.

use super::{check_series, resolve_range, AberrationPoint, Details};
use crate::error::{Result, StatsError};
use crate::special::normal_quantile;

/// Which EARS statistic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EarsMethod {
    /// C1: baseline immediately before t.
    #[default]
    C1,
    /// C2: baseline lagged by 2.
    C2,
    /// C3: C2 plus the two previous C2 exceedances (package formula).
    C3,
}

/// Control parameters (R `earsC` `control` list).
#[derive(Debug, Clone, PartialEq)]
pub struct EarsControl {
    /// Method, default C1.
    pub method: EarsMethod,
    /// Number of baseline points, default 7, must be >= 3.
    pub baseline: usize,
    /// Significance level; `None` = package default (0.001 for C1/C2, 0.025 for C3).
    pub alpha: Option<f64>,
    /// Minimum sigma, default 0.
    pub min_sigma: f64,
    /// Zero-based half-open range to evaluate; `None` = from the first evaluable point.
    pub range: Option<std::ops::Range<usize>>,
}

impl Default for EarsControl {
    fn default() -> Self {
        Self {
            method: EarsMethod::C1,
            baseline: 7,
            alpha: None,
            min_sigma: 0.0,
            range: None,
        }
    }
}

impl EarsControl {
    /// Defaults for a given method.
    pub fn with_method(method: EarsMethod) -> Self {
        Self {
            method,
            ..Self::default()
        }
    }
}

/// EARS extras per point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EarsDetails {
    /// Which statistic.
    pub method: EarsMethod,
    /// Baseline mean used for this point.
    pub baseline_mean: f64,
    /// `max(sd, minSigma)` of this point's baseline.
    pub sigma: f64,
    /// Alpha actually used.
    pub alpha: f64,
}

fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let ss: f64 = xs.iter().map(|x| (x - mean) * (x - mean)).sum();
    (mean, (ss / (n - 1.0)).sqrt())
}

/// R `pmax(a, b)` for scalars: NaN propagates.
fn rmax(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Run EARS C1/C2/C3 on `counts`. Source: R `surveillance::earsC` (Hutwagner et al. 2003,
/// *J Urban Health* 80:i89; Fricker et al. 2008 for C1-C3); see the module docs for the exact
/// formulas and conventions.
pub fn ears(counts: &[f64], control: &EarsControl) -> Result<Vec<AberrationPoint>> {
    check_series(counts)?;
    let n = control.baseline;
    if n < 3 {
        return Err(StatsError::InvalidParameter {
            name: "baseline",
            value: n as f64,
            requirement: "minimum baseline to use is 3",
        });
    }
    if !(control.min_sigma >= 0.0) || !control.min_sigma.is_finite() {
        return Err(StatsError::InvalidParameter {
            name: "min_sigma",
            value: control.min_sigma,
            requirement: "the minimum sigma must be finite and >= 0",
        });
    }
    let alpha = control.alpha.unwrap_or(match control.method {
        EarsMethod::C1 | EarsMethod::C2 => 0.001,
        EarsMethod::C3 => 0.025,
    });
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(StatsError::InvalidParameter {
            name: "alpha",
            value: alpha,
            requirement: "must lie strictly between 0 and 1",
        });
    }
    let z = normal_quantile(1.0 - alpha);
    if n > counts.len() {
        return Err(StatsError::SeriesTooShort {
            method: format!("EARS {:?} with baseline {n}", control.method),
            needed: n.saturating_add(1),
            got: counts.len(),
        });
    }
    let max_lag = match control.method {
        EarsMethod::C1 => n,
        EarsMethod::C2 => n + 2,
        EarsMethod::C3 => n + 4,
    };
    if counts.len() <= max_lag {
        return Err(StatsError::SeriesTooShort {
            method: format!("EARS {:?} with baseline {n}", control.method),
            needed: max_lag + 1,
            got: counts.len(),
        });
    }
    let range = resolve_range("EARS", &control.range, max_lag, max_lag, counts.len())?;
    let ms = control.min_sigma;
    // baseline statistics for time s with lag (0 for C1, 2 for C2/C3)
    let base = |s: usize, lag: usize| -> (f64, f64) {
        let hi = s - lag;
        let (m, sd) = mean_sd(&counts[hi - n..hi]);
        (m, rmax(sd, ms))
    };
    let mut out = Vec::with_capacity(range.len());
    for t in range {
        let y = counts[t];
        let (mean, sigma, ub) = match control.method {
            EarsMethod::C1 => {
                let (m, s) = base(t, 0);
                (m, s, m + z * s)
            }
            EarsMethod::C2 => {
                let (m, s) = base(t, 2);
                (m, s, m + z * s)
            }
            EarsMethod::C3 => {
                let c2 = |s: usize| {
                    let (m, sg) = base(s, 2);
                    (counts[s] - m) / sg
                };
                let (m, s) = base(t, 2);
                let part2 = rmax(0.0, c2(t - 2) - 1.0);
                let part1 = rmax(0.0, c2(t - 1) - 1.0);
                let ub = y + s * (z - (part2 + part1));
                (m, s, rmax(0.0, ub))
            }
        };
        let alarm = if ub.is_nan() { None } else { Some(y > ub) };
        out.push(AberrationPoint {
            index: t,
            observed: y,
            upperbound: Some(ub),
            alarm,
            expected: Some(mean),
            details: Details::Ears(EarsDetails {
                method: control.method,
                baseline_mean: mean,
                sigma,
                alpha,
            }),
        });
    }
    Ok(out)
}
