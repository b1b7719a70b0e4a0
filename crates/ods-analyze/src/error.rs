//! The error type of the crate.

use crate::Method;

/// Everything that can go wrong in [`run`](crate::run). Every message says where (line,
/// column, option), what was found and which rule it breaks, so a user can fix the input.
///
/// Line numbers are those of the input file, counting the header as line 1.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnalyzeError {
    /// The method name is not one of [`Method::NAMES`].
    #[error("unknown method \"{name}\"; methods: {}", Method::NAMES.join(", "))]
    UnknownMethod {
        /// The name given.
        name: String,
    },
    /// The output format is not `csv` or `json`.
    #[error("unknown output format \"{name}\"; use csv or json")]
    UnknownFormat {
        /// The name given.
        name: String,
    },
    /// The option name is not an option of any method.
    #[error("unknown option `{name}`; known options: {known}")]
    UnknownOption {
        /// The name given.
        name: String,
        /// All option names, comma separated.
        known: String,
    },
    /// The option exists but not for this method.
    #[error("option `{option}` (given as \"{value}\") does not apply to {method}; options of {method}: {allowed}")]
    OptionNotApplicable {
        /// Canonical option name.
        option: String,
        /// The value given.
        value: String,
        /// The method.
        method: Method,
        /// The method's options, comma separated (or "none").
        allowed: String,
    },
    /// An option value does not parse or is out of range.
    #[error("option `{option}`: \"{value}\" is not valid: {rule}")]
    InvalidOption {
        /// Canonical option name.
        option: String,
        /// The value given.
        value: String,
        /// What the value must look like.
        rule: String,
    },
    /// A required option is missing (e.g. `range` for CUSUM, which R requires too).
    #[error("{method} needs option `{option}`: {reason}")]
    MissingOption {
        /// The method.
        method: Method,
        /// Canonical option name.
        option: String,
        /// Why and what to give.
        reason: String,
    },
    /// The input has no header line at all.
    #[error("input is empty: expected a CSV header line; {method} reads {expected}")]
    EmptyInput {
        /// The method.
        method: Method,
        /// The accepted headers.
        expected: String,
    },
    /// The header does not have the columns the method needs.
    #[error("line {line}: header \"{found}\" does not fit {method}: {reason}; {method} reads {expected}")]
    BadHeader {
        /// Line of the header (1 unless the header spans quoted line breaks).
        line: u64,
        /// The header as read, comma separated.
        found: String,
        /// The method.
        method: Method,
        /// What is wrong (missing column, duplicate column, clash with an output column).
        reason: String,
        /// The accepted headers.
        expected: String,
    },
    /// The input has a header but no data rows.
    #[error("input has a header but no data rows; {method} needs at least one row")]
    NoRows {
        /// The method.
        method: Method,
    },
    /// A line does not have as many fields as the header, or is not valid CSV / UTF-8.
    #[error("line {line}: {message}")]
    Malformed {
        /// Line number.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// A value in a data row is invalid.
    #[error("line {line}, column {column}: \"{value}\" {rule}")]
    InvalidValue {
        /// Line number.
        line: u64,
        /// Column name as in the header.
        column: String,
        /// The value as read (trimmed).
        value: String,
        /// The rule it breaks, phrased to follow the value, e.g. "is not a non-negative integer".
        rule: String,
    },
    /// The statistics engine rejected the data as a whole (e.g. a series too short for the
    /// chosen `b`, or a model that did not converge).
    #[error("{method}: {source}{hint}")]
    Stats {
        /// The method.
        method: Method,
        /// The error of `ods-stats`.
        #[source]
        source: ods_stats::StatsError,
        /// Extra advice (may be empty).
        hint: String,
    },
    /// Reading the input failed.
    #[error("cannot read input: {0}")]
    Read(#[source] std::io::Error),
    /// Writing the output failed.
    #[error("cannot write output: {0}")]
    Write(#[source] std::io::Error),
}

impl AnalyzeError {
    pub(crate) fn value(
        line: u64,
        column: &str,
        value: &str,
        rule: impl Into<String>,
    ) -> AnalyzeError {
        AnalyzeError::InvalidValue {
            line,
            column: column.to_string(),
            value: value.to_string(),
            rule: rule.into(),
        }
    }

    pub(crate) fn option(option: &str, value: &str, rule: impl Into<String>) -> AnalyzeError {
        AnalyzeError::InvalidOption {
            option: option.to_string(),
            value: value.to_string(),
            rule: rule.into(),
        }
    }

    pub(crate) fn stats(method: Method, source: ods_stats::StatsError) -> AnalyzeError {
        let hint = match &source {
            ods_stats::StatsError::InvalidRange { .. } => {
                " (the indices in this message are zero-based positions; the `range` option is \
                 one-based and inclusive, 1 = first data row, as R's control$range)"
                    .to_string()
            }
            ods_stats::StatsError::SeriesTooShort { .. } => {
                " (points = data rows; lower `b` or `baseline`, or supply a longer series)"
                    .to_string()
            }
            _ => String::new(),
        };
        AnalyzeError::Stats {
            method,
            source,
            hint,
        }
    }
}

/// Result alias of the crate.
pub type Result<T> = std::result::Result<T, AnalyzeError>;
