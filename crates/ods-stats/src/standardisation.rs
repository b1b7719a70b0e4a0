//! Observed versus expected: indirect standardisation (SIR) and funnel-plot control limits.
//!
//! * Expected count `E = sum_s rate_s * population_s` (indirect standardisation: reference
//!   stratum rates applied to the study population; Breslow & Day 1987 vol. II ch. 2; PHE
//!   *Technical Guide: Indirectly standardised ratios*).
//! * SIR = O / E with the exact (Garwood) Poisson interval of O divided by E (E treated as
//!   fixed, as in Breslow & Day and PHE).
//! * Funnel-plot limits for a ratio with target 1 at expected count `E` (Spiegelhalter 2005,
//!   *Stat Med* 24:1185, appendix A.1.1): the exact Poisson `p`-quantile `r_p` of Poisson(E),
//!   interpolated as `r_p - a` with `a = (F(r_p) - p) / (F(r_p) - F(r_p - 1))`, and divided by E.
//!   Limits are computed for p = 0.025/0.975 (95%) and 0.001/0.999 (99.8%). The same
//!   interpolation is used by the Manktelow & Seaton (2012) "method 1" comparison; the
//!   non-interpolated integer count limits are also returned.

use crate::error::{check_level, check_nonneg, check_pos, Result, StatsError};
use crate::poisson::poisson_exact_ci;
use crate::special::{poisson_cdf, poisson_quantile};

/// Result of an indirect standardisation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StandardisedRatio {
    /// Observed count O.
    pub observed: u64,
    /// Expected count E.
    pub expected: f64,
    /// O / E.
    pub ratio: f64,
    /// Exact lower limit (Garwood lower limit of O, divided by E).
    pub lower: f64,
    /// Exact upper limit.
    pub upper: f64,
}

/// Expected count `sum(rate_s * population_s)` from reference stratum rates (events per unit
/// of population, e.g. per worker-year) and the study population per stratum.
///
/// Errors on length mismatch, empty input or negative / non-finite values.
pub fn expected_count(reference_rates: &[f64], populations: &[f64]) -> Result<f64> {
    if reference_rates.len() != populations.len() {
        return Err(StatsError::LengthMismatch {
            a: "reference_rates",
            len_a: reference_rates.len(),
            b: "populations",
            len_b: populations.len(),
        });
    }
    if reference_rates.is_empty() {
        return Err(StatsError::EmptyInput("reference_rates"));
    }
    crate::error::check_counts("reference_rates", reference_rates)?;
    crate::error::check_counts("populations", populations)?;
    Ok(reference_rates
        .iter()
        .zip(populations)
        .map(|(r, p)| r * p)
        .sum())
}

/// SIR = O / E with an exact Poisson interval (O's Garwood limits divided by E).
///
/// Source: Breslow & Day (1987) vol. II section 2.3; PHE Technical Guide. `expected` must be > 0.
pub fn sir(observed: u64, expected: f64, level: f64) -> Result<StandardisedRatio> {
    check_pos("expected", expected)?;
    let ci = poisson_exact_ci(observed, level)?;
    Ok(StandardisedRatio {
        observed,
        expected,
        ratio: observed as f64 / expected,
        lower: ci.lower / expected,
        upper: ci.upper / expected,
    })
}

/// Indirect standardisation: `E = sum(rate_s * population_s)`, then [`sir`].
pub fn indirect_standardisation(
    observed: u64,
    reference_rates: &[f64],
    populations: &[f64],
    level: f64,
) -> Result<StandardisedRatio> {
    let e = expected_count(reference_rates, populations)?;
    sir(observed, e, level)
}

/// One pair of funnel limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FunnelLimit {
    /// Two-sided coverage, e.g. 0.95 or 0.998.
    pub level: f64,
    /// Lower limit on the ratio (O/E) scale, interpolated (Spiegelhalter 2005).
    pub lower_ratio: f64,
    /// Upper limit on the ratio scale, interpolated.
    pub upper_ratio: f64,
    /// Lower limit on the count scale, interpolated (`lower_ratio * E`).
    pub lower_count: f64,
    /// Upper limit on the count scale, interpolated.
    pub upper_count: f64,
    /// Non-interpolated Poisson quantile `qpois((1-level)/2, E)`.
    pub lower_quantile: f64,
    /// Non-interpolated Poisson quantile `qpois(1-(1-level)/2, E)`.
    pub upper_quantile: f64,
}

/// Funnel limits at 95% and 99.8% for a unit with expected count `expected`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FunnelLimits {
    /// The expected count the limits are for.
    pub expected: f64,
    /// 95% limits ("warning").
    pub l95: FunnelLimit,
    /// 99.8% limits ("alarm").
    pub l998: FunnelLimit,
}

/// Interpolated Poisson quantile `r_p - a` (Spiegelhalter 2005, appendix A.1.1).
fn interpolated_poisson_quantile(p: f64, mean: f64) -> (f64, f64) {
    let r = poisson_quantile(p, mean);
    let f_r = poisson_cdf(r, mean);
    let f_rm1 = poisson_cdf(r - 1.0, mean);
    let denom = f_r - f_rm1;
    let a = if denom > 0.0 { (f_r - p) / denom } else { 0.0 };
    ((r - a).max(0.0), r)
}

/// Funnel limit for one coverage level at expected count `expected` (target ratio 1).
///
/// Source: Spiegelhalter (2005) appendix A.1.1 (exact Poisson with interpolation). Errors if
/// `expected` is not > 0 or `level` not in (0, 1).
pub fn funnel_limit(expected: f64, level: f64) -> Result<FunnelLimit> {
    check_pos("expected", expected)?;
    check_level(level)?;
    let p_lo = (1.0 - level) / 2.0;
    let p_hi = 1.0 - p_lo;
    let (lo, rlo) = interpolated_poisson_quantile(p_lo, expected);
    let (hi, rhi) = interpolated_poisson_quantile(p_hi, expected);
    Ok(FunnelLimit {
        level,
        lower_ratio: lo / expected,
        upper_ratio: hi / expected,
        lower_count: lo,
        upper_count: hi,
        lower_quantile: rlo,
        upper_quantile: rhi,
    })
}

/// 95% and 99.8% funnel limits at expected count `expected`; see [`funnel_limit`].
pub fn funnel_limits(expected: f64) -> Result<FunnelLimits> {
    check_nonneg("expected", expected)?;
    Ok(FunnelLimits {
        expected,
        l95: funnel_limit(expected, 0.95)?,
        l998: funnel_limit(expected, 0.998)?,
    })
}
