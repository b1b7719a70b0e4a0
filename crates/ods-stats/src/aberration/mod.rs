//! Aberration detection on count series (R package `surveillance` as reference implementation).
//!
//! All methods take a slice of counts (one value per period, oldest first; non-negative and
//! finite, non-integer values allowed where R allows them) and return one
//! [`AberrationPoint`] per evaluated time point. Indices are **zero-based** positions in the
//! input slice (R uses one-based indices; `index + 1` is R's time index).
//!
//! Reference-period selection is index based, as in R with `epochAsDate = FALSE`: the value "one
//! year back" of index `t` is `t - frequency` (52 for weekly, 12 for monthly data). R's
//! date-based selection (`epochAsDate = TRUE`, which realigns reference weeks by weekday across
//! 53-week years) is not implemented; callers with ISO weeks should be aware that a 53-week year
//! shifts the reference windows by one week, exactly as R does with index-based `sts` objects.
//!
//! Methods:
//! * [`ears`]: EARS C1, C2, C3 (R `earsC`),
//! * [`farrington`]: original Farrington (R `algo.farrington`),
//! * [`farrington_flexible`]: improved Farrington / Noufaily et al. 2013 (R `farringtonFlexible`),
//! * [`cusum`]: R `algo.cusum`, and [`poisson_cusum`]: Lucas (1985) Poisson CUSUM.

mod cusum;
mod ears;
mod farrington;
mod flexible;

pub use cusum::{
    cusum, lucas_reference_value, poisson_cusum, CusumControl, CusumDetails, CusumMean,
    CusumTransform, PoissonCusumControl, PoissonCusumConvention, PoissonCusumDetails, Shift,
};
pub use ears::{ears, EarsControl, EarsDetails, EarsMethod};
pub use farrington::{farrington, FarringtonControl, FarringtonDetails, PowerTransform};
pub use flexible::{farrington_flexible, FlexibleControl, FlexibleDetails, ThresholdMethod};

use crate::error::{Result, StatsError};

/// Result for one evaluated time point.
#[derive(Debug, Clone, PartialEq)]
pub struct AberrationPoint {
    /// Zero-based index into the input series.
    pub index: usize,
    /// Observed count at this index.
    pub observed: f64,
    /// Upper threshold as defined by the method (R `upperbound`); `None` where R gives `NA`.
    pub upperbound: Option<f64>,
    /// Alarm (R `alarm`); `None` where R gives `NA`.
    pub alarm: Option<bool>,
    /// Expected count where the method defines one (baseline mean for EARS, predicted mean for
    /// Farrington, in-control mean for CUSUM).
    pub expected: Option<f64>,
    /// Method-specific extras.
    pub details: Details,
}

/// Method-specific extras of an [`AberrationPoint`].
#[derive(Debug, Clone, PartialEq)]
pub enum Details {
    /// EARS C1/C2/C3.
    Ears(EarsDetails),
    /// Original Farrington.
    Farrington(FarringtonDetails),
    /// Improved Farrington (farringtonFlexible).
    Flexible(FlexibleDetails),
    /// R `algo.cusum`.
    Cusum(CusumDetails),
    /// Lucas Poisson CUSUM.
    PoissonCusum(PoissonCusumDetails),
}

/// Any method with its control parameters, for [`detect`].
#[derive(Debug, Clone, PartialEq)]
pub enum MethodControl {
    /// EARS C1/C2/C3.
    Ears(EarsControl),
    /// Original Farrington.
    Farrington(FarringtonControl),
    /// Improved Farrington.
    Flexible(FlexibleControl),
    /// R `algo.cusum`.
    Cusum(CusumControl),
    /// Lucas Poisson CUSUM.
    PoissonCusum(PoissonCusumControl),
}

/// Run any method on `counts` with the given sampling `frequency` (52 weekly, 12 monthly; only
/// Farrington methods use it).
pub fn detect(
    counts: &[f64],
    frequency: usize,
    control: &MethodControl,
) -> Result<Vec<AberrationPoint>> {
    match control {
        MethodControl::Ears(c) => ears(counts, c),
        MethodControl::Farrington(c) => farrington(counts, frequency, c),
        MethodControl::Flexible(c) => farrington_flexible(counts, frequency, c),
        MethodControl::Cusum(c) => cusum(counts, c),
        MethodControl::PoissonCusum(c) => poisson_cusum(counts, c),
    }
}

/// Validate a count series.
pub(crate) fn check_series(counts: &[f64]) -> Result<()> {
    if counts.is_empty() {
        return Err(StatsError::EmptyInput("counts"));
    }
    crate::error::check_counts("counts", counts)
}

/// Resolve an optional range against a default start, validating bounds.
pub(crate) fn resolve_range(
    method: &'static str,
    range: &Option<std::ops::Range<usize>>,
    default_start: usize,
    min_start: usize,
    len: usize,
) -> Result<std::ops::Range<usize>> {
    let r = match range {
        Some(r) => r.clone(),
        None => default_start..len,
    };
    if r.start >= r.end || r.end > len || r.start < min_start {
        return Err(StatsError::InvalidRange {
            method,
            start: r.start,
            end: r.end,
            requirement: format!(
                "need {min_start} <= start < end <= series length {len} (zero-based, end exclusive)"
            ),
        });
    }
    Ok(r)
}
