//! Count-series methods: EARS, Farrington, farringtonFlexible, CUSUM.

use std::collections::BTreeMap;
use std::ops::Range;

use chrono::NaiveDate;
use ods_stats::aberration::{
    cusum, ears, farrington, farrington_flexible, AberrationPoint, CusumMean, Details,
};

use crate::error::{AnalyzeError, Result};
use crate::input::{self, Csv};
use crate::options::{Bound, Config, RangeSpec};
use crate::output::{Output, Value};
use crate::table::Layout;
use crate::Method;

/// Result columns of a series method (after the input columns).
pub(crate) fn result_columns(method: Method) -> &'static [&'static str] {
    match method {
        Method::Farrington => &[
            "upperbound",
            "alarm",
            "expected",
            "se_expected",
            "phi",
            "trend",
            "lower",
            "upper",
            "enough_cases",
        ],
        Method::FarringtonFlexible => &[
            "upperbound",
            "alarm",
            "expected",
            "score",
            "pvalue",
            "mu0",
            "phi",
            "trend",
            "trend_coefficient",
            "lower",
            "upper",
            "enough_cases",
        ],
        Method::Cusum => &["upperbound", "alarm", "expected", "cusum", "standardized"],
        _ => &["upperbound", "alarm", "expected", "sigma"],
    }
}

fn details(p: &AberrationPoint) -> Vec<Value> {
    let mut v = vec![
        Value::opt(p.upperbound),
        Value::opt_bool(p.alarm),
        Value::opt(p.expected),
    ];
    match &p.details {
        Details::Ears(d) => v.push(Value::Num(d.sigma)),
        Details::Farrington(d) => v.extend([
            Value::Num(d.se_mu0),
            Value::Num(d.phi),
            Value::Bool(d.trend),
            Value::Num(d.lower),
            Value::Num(d.upper),
            Value::Bool(d.enough_cases),
        ]),
        Details::Flexible(d) => v.extend([
            Value::opt(d.score),
            Value::opt(d.pvalue),
            Value::opt(d.mu0),
            Value::opt(d.phi),
            Value::opt_bool(d.trend),
            Value::opt(d.trend_coefficient),
            Value::opt(d.lower),
            Value::opt(d.upper),
            Value::Bool(d.enough_cases),
        ]),
        Details::Cusum(d) => v.extend([Value::Num(d.cusum), Value::Num(d.standardized)]),
        Details::PoissonCusum(d) => v.extend([Value::Num(d.cusum), Value::Null]),
    }
    v
}

/// Resolve the `range` option against the series: zero-based, end exclusive.
fn resolve_range(spec: &RangeSpec, dates: &[NaiveDate]) -> Result<Range<usize>> {
    let n = dates.len();
    let err = |rule: String| AnalyzeError::option("range", &spec.text, rule);
    let (first, last) = match (dates.first(), dates.last()) {
        (Some(f), Some(l)) => (*f, *l),
        _ => return Err(err("the series is empty".to_string())),
    };
    let pos = |b: Bound| -> Result<usize> {
        match b {
            Bound::Row(r) if r <= n => Ok(r - 1),
            Bound::Row(r) => Err(err(format!(
                "row {r} is past the last data row ({n}); rows are numbered from 1"
            ))),
            Bound::Date(d) => dates.binary_search(&d).map_err(|_| {
                err(format!(
                    "{d} is not a date of the series (which runs from {first} to {last})"
                ))
            }),
        }
    };
    let start = pos(spec.start)?;
    let end = match spec.end {
        None => n,
        Some(b) => pos(b)? + 1,
    };
    if end <= start {
        return Err(err("the end is before the start".to_string()));
    }
    Ok(start..end)
}

/// Run a series method on a `date,count` CSV.
pub(crate) fn run(method: Method, config: &Config, csv: &Csv) -> Result<Output> {
    let outputs = result_columns(method);
    let layout = Layout::new(csv, method);
    layout.check_header(outputs)?;
    let (Some(di), Some(ci)) = (csv.find(&["date"]), csv.find(&["count"])) else {
        let missing: Vec<&str> = [
            ("date", csv.find(&["date"])),
            ("count", csv.find(&["count"])),
        ]
        .iter()
        .filter(|(_, p)| p.is_none())
        .map(|(n, _)| *n)
        .collect();
        return Err(layout.header_error(format!("missing column(s) {}", missing.join(", "))));
    };
    let date_col = &csv.header[di];
    let count_col = &csv.header[ci];
    let mut dates = Vec::with_capacity(csv.rows.len());
    let mut counts = Vec::with_capacity(csv.rows.len());
    let mut rows = Vec::with_capacity(csv.rows.len());
    for r in &csv.rows {
        let d = input::date(r.line, date_col, &r.fields[di])?;
        let c = input::count(r.line, count_col, &r.fields[ci])?;
        dates.push((r.line, d));
        counts.push(c as f64);
        rows.push(layout.carried(r, &[(ci, Value::Int(c))]));
    }
    let spacing = input::check_spacing(date_col, &dates)?;
    let freq = spacing.frequency();
    let plain_dates: Vec<NaiveDate> = dates.iter().map(|(_, d)| *d).collect();
    let range = |spec: &Option<RangeSpec>| -> Result<Option<Range<usize>>> {
        spec.as_ref()
            .map(|s| resolve_range(s, &plain_dates))
            .transpose()
    };
    let points = match config {
        Config::Ears(c, r) => {
            let mut c = c.clone();
            c.range = range(r)?;
            ears(&counts, &c)
        }
        Config::Farrington(c, r) => {
            let mut c = c.clone();
            c.range = range(r)?;
            farrington(&counts, freq, &c)
        }
        Config::Flexible(c, r) => {
            let mut c = c.clone();
            c.range = range(r)?;
            farrington_flexible(&counts, freq, &c)
        }
        Config::Cusum(c, r) => {
            let mut c = c.clone();
            c.range = match (range(r)?, c.m) {
                (Some(rg), CusumMean::BeforeRange) if rg.start == 0 => {
                    return Err(AnalyzeError::option(
                        "range",
                        r.as_ref().map_or("", |s| s.text.as_str()),
                        "starts at the first row, but the in-control mean m is estimated from \
                         the rows before the range: start at row 2 or later, or give --m",
                    ))
                }
                (Some(rg), _) => Some(rg),
                (None, _) => Some(0..counts.len()),
            };
            cusum(&counts, &c)
        }
        _ => return Err(layout.header_error("not a series method".to_string())),
    }
    .map_err(|e| AnalyzeError::stats(method, e))?;
    let by_index: BTreeMap<usize, &AberrationPoint> = points.iter().map(|p| (p.index, p)).collect();
    let mut out = Output {
        columns: csv.header.clone(),
        rows: Vec::with_capacity(rows.len()),
    };
    out.columns.extend(outputs.iter().map(|s| s.to_string()));
    for (i, mut row) in rows.into_iter().enumerate() {
        match by_index.get(&i) {
            Some(p) => row.extend(details(p)),
            None => row.extend(std::iter::repeat_n(Value::Null, outputs.len())),
        }
        out.rows.push(row);
    }
    Ok(out)
}
