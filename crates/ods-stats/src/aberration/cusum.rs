//! CUSUM charts for counts.
//!
//! Two flavours:
//!
//! * [`cusum`] reproduces R `surveillance::algo.cusum` (Rossi et al. 1999 standardisation
//!   options): standardised observations `s_t` (transform below) with in-control mean `m`
//!   (default: mean of all observations before the range), `C_t = max(0, C_{t-1} + s_t - k)`,
//!   `C_0 = 0`, alarm when `C_t >= h` (no reset after an alarm), defaults `k = 1.04`,
//!   `h = 2.26`. `upperbound` is the package's: for `Standard` the smallest count that signals,
//!   `ceiling(sqrt(m) (h + k - C_{t-1}) + m)`; `Anscombe`, `Anscombe2nd`, `Rossi`,
//!   `PearsonNegBin` the corresponding back-transformed thresholds; for `None` R returns
//!   `h - C_t`. NaN and negative bounds are set to 0 as in R. Not implemented: `m = "glm"` and
//!   `trans = "anscombeNegBin"`.
//! * [`poisson_cusum`]: the Poisson CUSUM of Lucas (1985, *Technometrics* 27:129) on the raw
//!   counts, `S_t = max(0, S_{t-1} + y_t - k)` with reference value
//!   `k = (mu1 - mu0) / (ln mu1 - ln mu0)` for detecting a shift from `mu0` to `mu1`, and
//!   decision interval `h`. Two conventions, both from R:
//!   [`PoissonCusumConvention::AlgoCusum`] (alarm when `S_t >= h`, no reset; identical to
//!   `algo.cusum(trans = "none", k, h)`) and [`PoissonCusumConvention::CategoricalCusum`]
//!   (alarm when `S_t > h`, then restart from `S = 0`; identical to R `categoricalCUSUM` with a
//!   Poisson likelihood ratio, whose statistic is `ln(mu1/mu0)` times `S_t`).
//!   `upperbound` here is the count threshold at t, `h + k - S_{t-1}` (the chart signals iff
//!   `y_t >= upperbound` under AlgoCusum, `y_t > upperbound` under CategoricalCusum).

use super::{check_series, resolve_range, AberrationPoint, Details};
use crate::error::{Result, StatsError};

/// Standardisation of `algo.cusum` (R `control$trans`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum CusumTransform {
    /// `(y - m) / sqrt(m)` (R default "standard").
    #[default]
    Standard,
    /// Rossi et al. (1999): `(y - 3m + 2 sqrt(y m)) / (2 sqrt(m))`.
    Rossi,
    /// Anscombe: `3/2 (y^(2/3) - m^(2/3)) / m^(1/6)`.
    Anscombe,
    /// Second-order Anscombe: `(y^(2/3) - (m^(2/3) - m^(-1/3)/9)) / (2/3 m^(1/6))`.
    Anscombe2nd,
    /// Negative binomial Pearson residual `(y - m)/sqrt(m + alpha m^2)` with the given alpha
    /// (R default 0.1).
    PearsonNegBin(f64),
    /// No transformation (raw counts).
    None,
}

/// In-control mean for `algo.cusum`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum CusumMean {
    /// Mean of all observations before the range start (R default `m = NULL`).
    #[default]
    BeforeRange,
    /// A fixed value.
    Fixed(f64),
}

/// Control for [`cusum`] (R `algo.cusum`).
#[derive(Debug, Clone, PartialEq)]
pub struct CusumControl {
    /// Zero-based half-open range to evaluate. R has no default; here `None` means "from
    /// index 1 to the end" with `m` = the first observation, which is rarely what you want:
    /// set it.
    pub range: Option<std::ops::Range<usize>>,
    /// Reference value k, default 1.04.
    pub k: f64,
    /// Decision interval h, default 2.26.
    pub h: f64,
    /// In-control mean.
    pub m: CusumMean,
    /// Transformation.
    pub trans: CusumTransform,
}

impl Default for CusumControl {
    fn default() -> Self {
        Self {
            range: None,
            k: 1.04,
            h: 2.26,
            m: CusumMean::BeforeRange,
            trans: CusumTransform::Standard,
        }
    }
}

/// Extras of [`cusum`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CusumDetails {
    /// CUSUM value C_t.
    pub cusum: f64,
    /// Standardised observation s_t.
    pub standardized: f64,
    /// In-control mean m.
    pub m: f64,
}

fn check_finite(name: &'static str, v: f64) -> Result<()> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(StatsError::InvalidParameter {
            name,
            value: v,
            requirement: "must be finite",
        })
    }
}

/// R `algo.cusum`. See the module docs.
pub fn cusum(counts: &[f64], control: &CusumControl) -> Result<Vec<AberrationPoint>> {
    check_series(counts)?;
    check_finite("k", control.k)?;
    check_finite("h", control.h)?;
    let min_start = match control.m {
        CusumMean::BeforeRange => 1,
        CusumMean::Fixed(_) => 0,
    };
    let range = resolve_range("CUSUM", &control.range, 1, min_start, counts.len())?;
    let m = match control.m {
        CusumMean::BeforeRange => counts[..range.start].iter().sum::<f64>() / range.start as f64,
        CusumMean::Fixed(v) => {
            if !(v.is_finite() && v >= 0.0) {
                return Err(StatsError::InvalidParameter {
                    name: "m",
                    value: v,
                    requirement: "in-control mean must be finite and >= 0",
                });
            }
            v
        }
    };
    let (k, h) = (control.k, control.h);
    let mut c_prev: f64 = 0.0;
    let mut out = Vec::with_capacity(range.len());
    for t in range {
        let x = counts[t];
        let s = match control.trans {
            CusumTransform::Standard => (x - m) / m.sqrt(),
            CusumTransform::Rossi => (x - 3.0 * m + 2.0 * (x * m).sqrt()) / (2.0 * m.sqrt()),
            CusumTransform::Anscombe => {
                1.5 * (x.powf(2.0 / 3.0) - m.powf(2.0 / 3.0)) / m.powf(1.0 / 6.0)
            }
            CusumTransform::Anscombe2nd => {
                (x.powf(2.0 / 3.0) - (m.powf(2.0 / 3.0) - m.powf(-1.0 / 3.0) / 9.0))
                    / (2.0 / 3.0 * m.powf(1.0 / 6.0))
            }
            CusumTransform::PearsonNegBin(a) => (x - m) / (m + a * m * m).sqrt(),
            CusumTransform::None => x,
        };
        // R: max(0, NaN) -> NA (propagates); keep NaN so it is visible.
        let c = if s.is_nan() || c_prev.is_nan() {
            f64::NAN
        } else {
            (c_prev + (s - k)).max(0.0)
        };
        let alarm = if c.is_nan() { None } else { Some(c >= h) };
        let hk = h + k - c_prev;
        let mut ub = match control.trans {
            CusumTransform::Rossi => {
                let sm = m.sqrt();
                2.0 * h * sm + 2.0 * k * sm - 2.0 * c_prev * sm + 5.0 * m
                    - 2.0
                        * (4.0 * m * m + 2.0 * m.powf(1.5) * h + 2.0 * m.powf(1.5) * k
                            - 2.0 * m.powf(1.5) * c_prev)
                            .sqrt()
            }
            CusumTransform::Standard => (m.sqrt() * hk + m).ceil(),
            CusumTransform::Anscombe => {
                let b = 2.0 / 3.0 * m.powf(1.0 / 6.0) * hk + m.powf(2.0 / 3.0);
                if b < 0.0 {
                    0.0
                } else {
                    b.powf(1.5)
                }
            }
            CusumTransform::Anscombe2nd => {
                let b = 2.0 / 3.0 * m.powf(1.0 / 6.0) * hk
                    + (m.powf(2.0 / 3.0) - m.powf(1.0 / 3.0) / 9.0);
                if b < 0.0 {
                    0.0
                } else {
                    b.powf(1.5)
                }
            }
            CusumTransform::PearsonNegBin(a) => (m + a * m * m).sqrt() * hk + m,
            CusumTransform::None => h - c,
        };
        if ub.is_nan() || ub < 0.0 {
            ub = 0.0;
        }
        out.push(AberrationPoint {
            index: t,
            observed: x,
            upperbound: Some(ub),
            alarm,
            expected: Some(m),
            details: Details::Cusum(CusumDetails {
                cusum: c,
                standardized: s,
                m,
            }),
        });
        c_prev = c;
    }
    Ok(out)
}

/// Out-of-control mean specification for [`poisson_cusum`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shift {
    /// mu1 given directly.
    Mean(f64),
    /// mu1 = ratio * mu0 (e.g. 2.0 for a doubling).
    Ratio(f64),
    /// mu1 = mu0 + d * sqrt(mu0) (a shift of d in-control standard deviations).
    Sd(f64),
}

/// Alarm / restart convention of [`poisson_cusum`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PoissonCusumConvention {
    /// R `algo.cusum`: alarm when `S_t >= h`, the chart continues (no reset).
    #[default]
    AlgoCusum,
    /// R `categoricalCUSUM`: alarm when `S_t > h`, then restart from 0.
    CategoricalCusum,
}

/// Control for the Lucas Poisson CUSUM.
#[derive(Debug, Clone, PartialEq)]
pub struct PoissonCusumControl {
    /// Zero-based half-open range to monitor; `None` = from the first point after the
    /// training period (requires `mu0`) or from index 1 when mu0 is estimated.
    pub range: Option<std::ops::Range<usize>>,
    /// In-control mean; `None` = mean of the observations before the range (as `algo.cusum`).
    pub mu0: Option<f64>,
    /// Out-of-control mean to detect.
    pub shift: Shift,
    /// Decision interval h (in counts).
    pub h: f64,
    /// Alarm convention.
    pub convention: PoissonCusumConvention,
}

impl PoissonCusumControl {
    /// Control with the given shift and decision interval and otherwise defaults.
    pub fn new(shift: Shift, h: f64) -> Self {
        Self {
            range: None,
            mu0: None,
            shift,
            h,
            convention: PoissonCusumConvention::AlgoCusum,
        }
    }
}

/// Extras of [`poisson_cusum`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoissonCusumDetails {
    /// CUSUM value S_t (before any restart).
    pub cusum: f64,
    /// Reference value k.
    pub k: f64,
    /// In-control mean mu0.
    pub mu0: f64,
    /// Out-of-control mean mu1.
    pub mu1: f64,
}

/// Lucas (1985) reference value `k = (mu1 - mu0) / (ln mu1 - ln mu0)` for `0 < mu0 != mu1`.
pub fn lucas_reference_value(mu0: f64, mu1: f64) -> Result<f64> {
    if !(mu0 > 0.0 && mu0.is_finite()) {
        return Err(StatsError::InvalidParameter {
            name: "mu0",
            value: mu0,
            requirement: "in-control mean must be finite and > 0",
        });
    }
    if !(mu1 > 0.0 && mu1.is_finite()) || mu1 == mu0 {
        return Err(StatsError::InvalidParameter {
            name: "mu1",
            value: mu1,
            requirement: "out-of-control mean must be finite, > 0 and differ from mu0",
        });
    }
    Ok((mu1 - mu0) / (mu1.ln() - mu0.ln()))
}

/// Lucas (1985) Poisson CUSUM for an upward shift; see the module docs.
pub fn poisson_cusum(
    counts: &[f64],
    control: &PoissonCusumControl,
) -> Result<Vec<AberrationPoint>> {
    check_series(counts)?;
    check_finite("h", control.h)?;
    let min_start = if control.mu0.is_some() { 0 } else { 1 };
    let range = resolve_range(
        "Poisson CUSUM",
        &control.range,
        min_start,
        min_start,
        counts.len(),
    )?;
    let mu0 = match control.mu0 {
        Some(v) => v,
        None => counts[..range.start].iter().sum::<f64>() / range.start as f64,
    };
    let mu1 = match control.shift {
        Shift::Mean(v) => v,
        Shift::Ratio(r) => r * mu0,
        Shift::Sd(d) => mu0 + d * mu0.sqrt(),
    };
    let k = lucas_reference_value(mu0, mu1)?;
    let h = control.h;
    let mut s_prev = 0.0;
    let mut out = Vec::with_capacity(range.len());
    for t in range {
        let y = counts[t];
        let s = (s_prev + y - k).max(0.0);
        let ub = h + k - s_prev;
        let alarm = match control.convention {
            PoissonCusumConvention::AlgoCusum => s >= h,
            PoissonCusumConvention::CategoricalCusum => s > h,
        };
        out.push(AberrationPoint {
            index: t,
            observed: y,
            upperbound: Some(ub),
            alarm: Some(alarm),
            expected: Some(mu0),
            details: Details::PoissonCusum(PoissonCusumDetails {
                cusum: s,
                k,
                mu0,
                mu1,
            }),
        });
        s_prev = if alarm && control.convention == PoissonCusumConvention::CategoricalCusum {
            0.0
        } else {
            s
        };
    }
    Ok(out)
}
