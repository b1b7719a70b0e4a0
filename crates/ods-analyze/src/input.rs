//! Reading the CSV input and checking values.

use std::io::Read;

use chrono::{Datelike, NaiveDate};

use crate::error::{AnalyzeError, Result};
use crate::options::parse_iso_date;
use crate::Method;

/// One data line: its line number and trimmed fields.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub line: u64,
    pub fields: Vec<String>,
}

/// The whole CSV: header and data rows.
#[derive(Debug, Clone)]
pub(crate) struct Csv {
    pub header: Vec<String>,
    pub header_line: u64,
    pub rows: Vec<Row>,
}

fn csv_error(e: csv::Error) -> AnalyzeError {
    let line = e.position().map(|p| p.line());
    match e.into_kind() {
        csv::ErrorKind::Io(io) => AnalyzeError::Read(io),
        csv::ErrorKind::Utf8 { pos, err } => AnalyzeError::Malformed {
            line: pos.map(|p| p.line()).or(line).unwrap_or(0),
            message: format!(
                "field {} is not valid UTF-8 text; save the file as UTF-8",
                err.field() + 1
            ),
        },
        other => AnalyzeError::Malformed {
            line: line.unwrap_or(0),
            message: format!("{other:?}"),
        },
    }
}

/// Read a CSV with a header line. Fields are trimmed; blank lines are skipped; every row must
/// have as many fields as the header.
pub(crate) fn read_csv(input: impl Read, method: Method, expected: &str) -> Result<Csv> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let header_rec = rdr.headers().map_err(csv_error)?.clone();
    let header: Vec<String> = header_rec.iter().map(str::to_string).collect();
    if header.iter().all(String::is_empty) {
        return Err(AnalyzeError::EmptyInput {
            method,
            expected: expected.to_string(),
        });
    }
    let header_line = header_rec.position().map_or(1, |p| p.line());
    let mut rows = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(csv_error)?;
        let line = rec.position().map_or(0, |p| p.line());
        // A line with only separators and blanks carries no data.
        if rec.iter().all(str::is_empty) {
            continue;
        }
        if rec.len() != header.len() {
            return Err(AnalyzeError::Malformed {
                line,
                message: format!(
                    "has {} field(s) but the header (line {header_line}) has {}: {}",
                    rec.len(),
                    header.len(),
                    header.join(",")
                ),
            });
        }
        rows.push(Row {
            line,
            fields: rec.iter().map(str::to_string).collect(),
        });
    }
    if rows.is_empty() {
        return Err(AnalyzeError::NoRows { method });
    }
    Ok(Csv {
        header,
        header_line,
        rows,
    })
}

impl Csv {
    /// Position of a column by any of its accepted names (ASCII case-insensitive).
    pub fn find(&self, names: &[&str]) -> Option<usize> {
        self.header
            .iter()
            .position(|h| names.iter().any(|n| h.eq_ignore_ascii_case(n)))
    }
}

// ------------------------------------------------------------------ values

/// A non-negative whole number (`5`, also `5.0` as some tools write integers).
pub(crate) fn count(line: u64, column: &str, s: &str) -> Result<u64> {
    if s.is_empty() {
        return Err(AnalyzeError::value(
            line,
            column,
            s,
            "is empty; a non-negative integer is required (write 0 where there were no cases)",
        ));
    }
    if let Ok(v) = s.parse::<u64>() {
        return Ok(v);
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < 9.007_199_254_740_992e15 => {
            Ok(v as u64)
        }
        _ => Err(AnalyzeError::value(
            line,
            column,
            s,
            "is not a non-negative integer",
        )),
    }
}

/// A finite number >= 0.
pub(crate) fn nonneg_number(line: u64, column: &str, s: &str) -> Result<f64> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(AnalyzeError::value(
            line,
            column,
            s,
            "is not a finite number >= 0",
        )),
    }
}

/// A finite number > 0.
pub(crate) fn positive_number(line: u64, column: &str, s: &str) -> Result<f64> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(AnalyzeError::value(
            line,
            column,
            s,
            "is not a finite number > 0",
        )),
    }
}

/// A non-empty text field.
pub(crate) fn text(line: u64, column: &str, s: &str, what: &str) -> Result<String> {
    if s.is_empty() {
        Err(AnalyzeError::value(
            line,
            column,
            s,
            format!("is empty; every row needs {what}"),
        ))
    } else {
        Ok(s.to_string())
    }
}

// ------------------------------------------------------------------ dates

/// Spacing of a count series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spacing {
    /// 1 day apart (frequency 365, as R `sts` for daily data).
    Daily,
    /// 7 days apart (frequency 52).
    Weekly,
    /// Same day each month (frequency 12).
    Monthly,
    /// Last day of each month (frequency 12).
    MonthEnd,
}

impl Spacing {
    /// Periods per year (R `sts` `frequency`).
    pub fn frequency(self) -> usize {
        match self {
            Spacing::Daily => 365,
            Spacing::Weekly => 52,
            Spacing::Monthly | Spacing::MonthEnd => 12,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Spacing::Daily => "daily (1 day apart)",
            Spacing::Weekly => "weekly (7 days apart)",
            Spacing::Monthly => "monthly (same day each month)",
            Spacing::MonthEnd => "monthly (last day of each month)",
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Spacing::Daily => "days",
            Spacing::Weekly => "weeks",
            Spacing::Monthly | Spacing::MonthEnd => "months",
        }
    }

    /// The date one period after `d`.
    fn next(self, d: NaiveDate) -> Option<NaiveDate> {
        match self {
            Spacing::Daily => d.checked_add_days(chrono::Days::new(1)),
            Spacing::Weekly => d.checked_add_days(chrono::Days::new(7)),
            Spacing::Monthly => d.checked_add_months(chrono::Months::new(1)),
            Spacing::MonthEnd => month_end(d.checked_add_months(chrono::Months::new(1))?),
        }
    }
}

fn month_end(d: NaiveDate) -> Option<NaiveDate> {
    let first_next = if d.month() == 12 {
        NaiveDate::from_ymd_opt(d.year().checked_add(1)?, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(d.year(), d.month() + 1, 1)?
    };
    first_next.pred_opt()
}

fn is_month_end(d: NaiveDate) -> bool {
    month_end(d) == Some(d)
}

/// Parse one date cell.
pub(crate) fn date(line: u64, column: &str, s: &str) -> Result<NaiveDate> {
    parse_iso_date(s)
        .ok_or_else(|| AnalyzeError::value(line, column, s, "is not a valid ISO date (YYYY-MM-DD)"))
}

/// Check that `dates` (with their line numbers) are ascending and evenly spaced by a day, a
/// week or a calendar month, and return the spacing (weekly for a single row).
pub(crate) fn check_spacing(column: &str, dates: &[(u64, NaiveDate)]) -> Result<Spacing> {
    let Some(&(l0, d0)) = dates.first() else {
        return Ok(Spacing::Weekly);
    };
    let Some(&(l1, d1)) = dates.get(1) else {
        return Ok(Spacing::Weekly);
    };
    let not_after = |line: u64, d: NaiveDate, pl: u64, pd: NaiveDate| {
        AnalyzeError::value(
            line,
            column,
            &d.to_string(),
            format!(
                "is not after the previous date {pd} (line {pl}); dates must be in ascending \
                 order without duplicates"
            ),
        )
    };
    if d1 <= d0 {
        return Err(not_after(l1, d1, l0, d0));
    }
    let spacing = if Spacing::Daily.next(d0) == Some(d1) {
        Spacing::Daily
    } else if Spacing::Weekly.next(d0) == Some(d1) {
        Spacing::Weekly
    } else if is_month_end(d0) && Spacing::MonthEnd.next(d0) == Some(d1) {
        Spacing::MonthEnd
    } else if Spacing::Monthly.next(d0) == Some(d1) && d0.day() == d1.day() {
        Spacing::Monthly
    } else {
        let days = (d1 - d0).num_days();
        return Err(AnalyzeError::value(
            l1,
            column,
            &d1.to_string(),
            format!(
                "is {days} days after the first date {d0} (line {l0}); consecutive dates must \
                 be 1 day (daily), 7 days (weekly) or one calendar month (monthly, same day of \
                 the month) apart"
            ),
        ));
    };
    for w in dates.windows(2) {
        let [(pl, pd), (l, d)] = [w[0], w[1]];
        if d <= pd {
            return Err(not_after(l, d, pl, pd));
        }
        let want = spacing.next(pd);
        if want != Some(d) {
            let days = (d - pd).num_days();
            let expected = want.map_or_else(|| "?".to_string(), |x| x.to_string());
            return Err(AnalyzeError::value(
                l,
                column,
                &d.to_string(),
                format!(
                    "is {days} days after the previous date {pd} (line {pl}), but the series is \
                     {} as set by lines {l0}-{l1}, so {expected} was expected; every period needs \
                     a row (write count 0 for {} without cases)",
                    spacing.describe(),
                    spacing.unit()
                ),
            ));
        }
    }
    Ok(spacing)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn d(s: &str) -> NaiveDate {
        parse_iso_date(s).unwrap()
    }

    fn dates(v: &[&str]) -> Vec<(u64, NaiveDate)> {
        v.iter()
            .enumerate()
            .map(|(i, s)| (i as u64 + 2, d(s)))
            .collect()
    }

    #[test]
    fn spacings() {
        let f = |v: &[&str]| check_spacing("date", &dates(v));
        assert_eq!(
            f(&["2020-01-06", "2020-01-13", "2020-01-20"]).unwrap(),
            Spacing::Weekly
        );
        assert_eq!(
            f(&["2020-01-15", "2020-02-15", "2020-03-15"]).unwrap(),
            Spacing::Monthly
        );
        assert_eq!(
            f(&["2020-01-31", "2020-02-29", "2020-03-31", "2020-04-30"]).unwrap(),
            Spacing::MonthEnd
        );
        assert_eq!(
            f(&["2020-02-28", "2020-02-29", "2020-03-01"]).unwrap(),
            Spacing::Daily
        );
        // 2020-01-30 + 1 month is clamped to 2020-02-29 by chrono; not the same day: rejected
        assert!(f(&["2020-01-30", "2020-02-29"]).is_err());
        assert!(f(&["2020-01-06", "2020-01-20"]).is_err());
        assert!(f(&["2020-01-06", "2020-01-13", "2020-01-27"]).is_err());
    }

    #[test]
    fn counts() {
        assert_eq!(count(2, "count", "5").unwrap(), 5);
        assert_eq!(count(2, "count", "5.0").unwrap(), 5);
        assert!(count(2, "count", "5.5").is_err());
        assert!(count(2, "count", "-1").is_err());
        assert!(count(2, "count", "NaN").is_err());
        assert!(count(2, "count", "inf").is_err());
        assert!(count(2, "count", "").is_err());
    }
}
