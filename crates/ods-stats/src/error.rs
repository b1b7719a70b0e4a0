//! Error type of the crate.

/// Errors returned by `ods-stats`. Every message says what was wrong and what is needed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum StatsError {
    /// A scalar parameter is outside its valid range.
    #[error("invalid parameter `{name}` = {value}: {requirement}")]
    InvalidParameter {
        /// Parameter name as in the API.
        name: &'static str,
        /// The offending value.
        value: f64,
        /// What the value must satisfy.
        requirement: &'static str,
    },
    /// An element of an input vector is invalid (NaN, infinite, negative, ...).
    #[error("invalid value in `{name}` at index {index}: {value} ({requirement})")]
    InvalidInput {
        /// Input name as in the API.
        name: &'static str,
        /// Zero-based position of the bad element.
        index: usize,
        /// The offending value.
        value: f64,
        /// What the elements must satisfy.
        requirement: &'static str,
    },
    /// Two inputs that must have the same length do not.
    #[error("length mismatch: `{a}` has {len_a} elements but `{b}` has {len_b}")]
    LengthMismatch {
        /// First input name.
        a: &'static str,
        /// Its length.
        len_a: usize,
        /// Second input name.
        b: &'static str,
        /// Its length.
        len_b: usize,
    },
    /// A count series is too short for the requested method and parameters.
    #[error("series too short for {method}: need at least {needed} points, got {got}")]
    SeriesTooShort {
        /// Method and the parameters that drive the requirement, e.g.
        /// "Farrington with b=5 years, w=3 and frequency 52".
        method: String,
        /// Minimum number of points.
        needed: usize,
        /// Number of points supplied.
        got: usize,
    },
    /// A requested evaluation range lies outside the series or before the first evaluable point.
    #[error("range [{start}, {end}) invalid for {method}: {requirement}")]
    InvalidRange {
        /// Method name.
        method: &'static str,
        /// First zero-based index requested.
        start: usize,
        /// One past the last zero-based index requested.
        end: usize,
        /// What the range must satisfy.
        requirement: String,
    },
    /// An input collection is empty where at least one element is needed.
    #[error("empty input `{0}`: at least one element is required")]
    EmptyInput(&'static str),
    /// An iterative fit did not converge.
    #[error("{what} did not converge after {iterations} iterations; {hint}")]
    NoConvergence {
        /// What was being fitted.
        what: &'static str,
        /// Iterations used.
        iterations: usize,
        /// What the caller can try.
        hint: &'static str,
    },
}

/// Result alias.
pub type Result<T> = std::result::Result<T, StatsError>;

/// Check that `v` is finite and >= 0.
pub(crate) fn check_nonneg(name: &'static str, v: f64) -> Result<()> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(StatsError::InvalidParameter {
            name,
            value: v,
            requirement: "must be finite and >= 0",
        })
    }
}

/// Check that `v` is finite and > 0.
pub(crate) fn check_pos(name: &'static str, v: f64) -> Result<()> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(StatsError::InvalidParameter {
            name,
            value: v,
            requirement: "must be finite and > 0",
        })
    }
}

/// Check a two-sided confidence level in (0, 1).
pub(crate) fn check_level(level: f64) -> Result<()> {
    if level > 0.0 && level < 1.0 {
        Ok(())
    } else {
        Err(StatsError::InvalidParameter {
            name: "level",
            value: level,
            requirement: "confidence level must lie strictly between 0 and 1 (e.g. 0.95)",
        })
    }
}

/// Check that all elements are finite and >= 0 (counts may be non-integer only where allowed).
pub(crate) fn check_counts(name: &'static str, xs: &[f64]) -> Result<()> {
    for (index, &value) in xs.iter().enumerate() {
        if !(value.is_finite() && value >= 0.0) {
            return Err(StatsError::InvalidInput {
                name,
                index,
                value,
                requirement: "counts must be finite and >= 0",
            });
        }
    }
    Ok(())
}
