//! Poisson confidence intervals for counts and rates.
//!
//! * Exact (Garwood 1936) interval: `lower = qgamma(alpha/2, O)`, `upper = qgamma(1 - alpha/2, O + 1)`
//!   (equivalently `qchisq(alpha/2, 2O)/2` and `qchisq(1 - alpha/2, 2O + 2)/2`); lower = 0 when
//!   O = 0. This is exactly the interval of R `poisson.test(O)$conf.int` (which uses `qgamma`),
//!   and the "chi-square exact method" of the PHE *Technical Guide: Confidence Intervals*
//!   (Public Health England, 2018, appendix 2).
//! * Byar's approximation (Breslow & Day 1987, vol. II, p. 69; PHE Technical Guide appendix 1):
//!   `lower = O (1 - 1/(9O) - z/(3 sqrt(O)))^3`, `upper = (O+1) (1 - 1/(9(O+1)) + z/(3 sqrt(O+1)))^3`
//!   with `z = qnorm(1 - alpha/2)`. For O = 0 the lower limit is 0 (the formula is undefined there;
//!   PHE likewise reports 0). Convention: the lower limit is clamped at 0, because the cube can
//!   go slightly negative for O = 1 at high confidence (e.g. 99.8%), where a count limit below 0
//!   is meaningless (PHE recommends the exact method for small counts anyway).

use crate::error::{check_level, check_pos, Result};
use crate::special::{gamma_quantile, normal_quantile};

/// A two-sided interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// Lower limit.
    pub lower: f64,
    /// Upper limit.
    pub upper: f64,
}

/// A point estimate with a two-sided interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Point estimate.
    pub estimate: f64,
    /// Lower limit.
    pub lower: f64,
    /// Upper limit.
    pub upper: f64,
}

/// Method for a Poisson confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PoissonCiMethod {
    /// Exact (Garwood) interval from gamma / chi-square quantiles (R `poisson.test`).
    #[default]
    Exact,
    /// Byar's approximation (Breslow & Day 1987; PHE Technical Guide appendix 1).
    Byar,
}

/// Exact (Garwood) two-sided interval for the mean of a Poisson count `observed`.
///
/// Source: Garwood (1936), *Biometrika* 28:437; identical to R `poisson.test(observed,
/// conf.level = level)$conf.int`. Errors if `level` is not in (0, 1).
pub fn poisson_exact_ci(observed: u64, level: f64) -> Result<Interval> {
    check_level(level)?;
    let alpha = 1.0 - level;
    let o = observed as f64;
    let lower = if observed == 0 {
        0.0
    } else {
        gamma_quantile(o, alpha / 2.0)
    };
    let upper = gamma_quantile(o + 1.0, 1.0 - alpha / 2.0);
    Ok(Interval { lower, upper })
}

/// Byar's approximate two-sided interval for the mean of a Poisson count.
///
/// Source: Breslow & Day (1987) *Statistical Methods in Cancer Research* vol. II p. 69; PHE
/// *Technical Guide: Confidence Intervals* (2018) appendix 1. Lower limit 0 when `observed = 0`.
pub fn poisson_byar_ci(observed: u64, level: f64) -> Result<Interval> {
    check_level(level)?;
    let z = normal_quantile(1.0 - (1.0 - level) / 2.0);
    let o = observed as f64;
    let lower = if observed == 0 {
        0.0
    } else {
        (o * (1.0 - 1.0 / (9.0 * o) - z / (3.0 * o.sqrt())).powi(3)).max(0.0)
    };
    let o1 = o + 1.0;
    let upper = o1 * (1.0 - 1.0 / (9.0 * o1) + z / (3.0 * o1.sqrt())).powi(3);
    Ok(Interval { lower, upper })
}

/// Poisson interval for a count by the chosen method.
pub fn poisson_ci(observed: u64, level: f64, method: PoissonCiMethod) -> Result<Interval> {
    match method {
        PoissonCiMethod::Exact => poisson_exact_ci(observed, level),
        PoissonCiMethod::Byar => poisson_byar_ci(observed, level),
    }
}

/// Crude rate per `per` person-years (e.g. `per = 100_000.0`) with a Poisson interval:
/// `rate = observed / population * per`, limits = count limits / population * per.
///
/// Source: PHE *Technical Guide: Confidence Intervals* (2018), "crude rates" (count limits
/// divided by the denominator). `population` must be > 0 and `per` > 0.
pub fn rate_per(
    observed: u64,
    population: f64,
    per: f64,
    level: f64,
    method: PoissonCiMethod,
) -> Result<Estimate> {
    check_pos("population", population)?;
    check_pos("per", per)?;
    let ci = poisson_ci(observed, level, method)?;
    let f = per / population;
    Ok(Estimate {
        estimate: observed as f64 * f,
        lower: ci.lower * f,
        upper: ci.upper * f,
    })
}

/// Crude rate per 100,000 (workers, person-years, ...) with a Poisson interval; see [`rate_per`].
pub fn rate_per_100k(
    observed: u64,
    population: f64,
    level: f64,
    method: PoissonCiMethod,
) -> Result<Estimate> {
    rate_per(observed, population, 100_000.0, level, method)
}
