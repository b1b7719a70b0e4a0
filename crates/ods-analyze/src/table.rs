//! Row-wise methods (poisson-ci, sir, chapman, prr, ror, ic) and the pair-building methods on
//! report-level rows (prr, ror, ic, ebgm).

use ods_stats::capture_recapture::chapman;
use ods_stats::disproportionality::{analyse, build_pair_cells, ReportRow, TwoByTwo};
use ods_stats::mgps::{eb_score, fit_prior, neg_log_likelihood, Cell, MgpsFitOptions};
use ods_stats::poisson::{poisson_ci, rate_per};
use ods_stats::standardisation::sir;

use crate::error::{AnalyzeError, Result};
use crate::input::{self, Csv, Row};
use crate::options::Config;
use crate::output::{Output, Value};
use crate::Method;

/// Header checks and carrying input columns into the output.
pub(crate) struct Layout<'a> {
    csv: &'a Csv,
    method: Method,
}

impl<'a> Layout<'a> {
    pub fn new(csv: &'a Csv, method: Method) -> Self {
        Self { csv, method }
    }

    pub fn header_error(&self, reason: String) -> AnalyzeError {
        AnalyzeError::BadHeader {
            line: self.csv.header_line,
            found: self.csv.header.join(","),
            method: self.method,
            reason,
            expected: self.method.input_help().to_string(),
        }
    }

    /// No duplicate column names; no input column named like an output column.
    pub fn check_header(&self, outputs: &[&str]) -> Result<()> {
        let h = &self.csv.header;
        for (i, name) in h.iter().enumerate() {
            if h[..i].iter().any(|o| o.eq_ignore_ascii_case(name)) {
                return Err(self.header_error(format!("column \"{name}\" appears twice")));
            }
            if outputs.iter().any(|o| o.eq_ignore_ascii_case(name)) {
                return Err(self.header_error(format!(
                    "input column \"{name}\" has the name of an output column of {}; rename or \
                     drop it",
                    self.method
                )));
            }
        }
        Ok(())
    }

    /// The input row as output values: text, except the parsed columns given.
    pub fn carried(&self, row: &Row, parsed: &[(usize, Value)]) -> Vec<Value> {
        let mut v: Vec<Value> = row.fields.iter().map(|f| Value::Text(f.clone())).collect();
        for (i, val) in parsed {
            if let Some(slot) = v.get_mut(*i) {
                *slot = val.clone();
            }
        }
        v
    }

    /// Positions of required columns (each given by its accepted names), or a header error
    /// naming the missing ones.
    pub fn require(&self, cols: &[&[&str]]) -> Result<Vec<usize>> {
        let found: Vec<Option<usize>> = cols.iter().map(|names| self.csv.find(names)).collect();
        if found.iter().all(Option::is_some) {
            return Ok(found.into_iter().flatten().collect());
        }
        let missing: Vec<String> = cols
            .iter()
            .zip(&found)
            .filter(|(_, f)| f.is_none())
            .map(|(names, _)| names.join(" or "))
            .collect();
        Err(self.header_error(format!("missing column(s) {}", missing.join(", "))))
    }
}

const REPORT_ID: &[&str] = &["report_id", "id"];
const EXPOSURE: &[&str] = &["exposure", "var1"];
const DIAGNOSIS: &[&str] = &["diagnosis", "var2"];
const STRATUM: &[&str] = &["stratum", "strat"];

fn has_all(csv: &Csv, cols: &[&[&str]]) -> bool {
    cols.iter().all(|names| csv.find(names).is_some())
}

fn table_columns(method: Method) -> &'static [&'static str] {
    match method {
        Method::Prr => &[
            "prr",
            "prr_lower",
            "prr_upper",
            "chi2",
            "chi2_yates",
            "evans_signal",
        ],
        Method::Ror => &["ror", "ror_lower", "ror_upper"],
        _ => &["expected", "ic", "ic_lower", "ic_upper"],
    }
}

fn table_values(method: Method, t: &TwoByTwo, level: f64) -> Result<Vec<Value>> {
    let d = analyse(t, level).map_err(|e| AnalyzeError::stats(method, e))?;
    Ok(match method {
        Method::Prr => vec![
            Value::opt(d.prr.map(|p| p.estimate)),
            Value::opt(d.prr.map(|p| p.lower)),
            Value::opt(d.prr.map(|p| p.upper)),
            Value::opt(d.chi_square.map(|c| c.uncorrected)),
            Value::opt(d.chi_square.map(|c| c.yates)),
            Value::Bool(d.evans_signal),
        ],
        Method::Ror => vec![
            Value::opt(d.ror.map(|p| p.estimate)),
            Value::opt(d.ror.map(|p| p.lower)),
            Value::opt(d.ror.map(|p| p.upper)),
        ],
        _ => vec![
            Value::Num(d.ic.expected),
            Value::Num(d.ic.ic),
            Value::Num(d.ic.ic_lower),
            Value::Num(d.ic.ic_upper),
        ],
    })
}

fn output(csv: &Csv, results: &[&str], rows: Vec<Vec<Value>>) -> Output {
    let mut columns = csv.header.clone();
    columns.extend(results.iter().map(|s| s.to_string()));
    Output { columns, rows }
}

/// prr, ror, ic: 2x2 tables `a,b,c,d`, or report-level rows.
pub(crate) fn disproportionality(method: Method, config: &Config, csv: &Csv) -> Result<Output> {
    let level = match config {
        Config::Level(l) => *l,
        _ => 0.95,
    };
    let layout = Layout::new(csv, method);
    let cells: [&[&str]; 4] = [&["a"], &["b"], &["c"], &["d"]];
    if !has_all(csv, &cells) && has_all(csv, &[REPORT_ID, EXPOSURE, DIAGNOSIS]) {
        let rows = report_rows(&layout, csv)?;
        let results = table_columns(method);
        let mut out = Output {
            columns: ["exposure", "diagnosis", "a", "b", "c", "d"]
                .iter()
                .chain(results)
                .map(|s| s.to_string())
                .collect(),
            rows: Vec::new(),
        };
        for c in build_pair_cells(&rows, false) {
            let t = c.table;
            let mut row = vec![
                Value::Text(c.exposure),
                Value::Text(c.diagnosis),
                Value::Int(t.a),
                Value::Int(t.b),
                Value::Int(t.c),
                Value::Int(t.d),
            ];
            row.extend(table_values(method, &t, level)?);
            out.rows.push(row);
        }
        return Ok(out);
    }
    let results = table_columns(method);
    layout.check_header(results)?;
    let idx = layout.require(&cells)?;
    let mut rows = Vec::with_capacity(csv.rows.len());
    for r in &csv.rows {
        let mut v = [0u64; 4];
        for (k, &i) in idx.iter().enumerate() {
            v[k] = input::count(r.line, &csv.header[i], &r.fields[i])?;
        }
        let t = TwoByTwo::new(v[0], v[1], v[2], v[3]);
        let parsed: Vec<(usize, Value)> = idx
            .iter()
            .zip(v)
            .map(|(&i, x)| (i, Value::Int(x)))
            .collect();
        let mut row = layout.carried(r, &parsed);
        row.extend(table_values(method, &t, level)?);
        rows.push(row);
    }
    Ok(output(csv, results, rows))
}

/// poisson-ci: `observed` (or `count`), optional `population`.
pub(crate) fn poisson(config: &Config, csv: &Csv) -> Result<Output> {
    let method = Method::PoissonCi;
    let (level, ci_method, per) = match config {
        Config::PoissonCi {
            level,
            ci_method,
            per,
        } => (*level, *ci_method, *per),
        _ => return Err(Layout::new(csv, method).header_error("internal".to_string())),
    };
    let layout = Layout::new(csv, method);
    let pop = csv.find(&["population"]);
    let results: &[&str] = if pop.is_some() {
        &["lower", "upper", "rate", "rate_lower", "rate_upper"]
    } else {
        &["lower", "upper"]
    };
    layout.check_header(results)?;
    let oi = match (csv.find(&["observed"]), csv.find(&["count"])) {
        (Some(_), Some(_)) => {
            return Err(layout
                .header_error("has both `observed` and `count`; keep one of them".to_string()))
        }
        (Some(i), None) | (None, Some(i)) => i,
        (None, None) => {
            return Err(layout.header_error("missing column observed (or count)".to_string()))
        }
    };
    let mut rows = Vec::with_capacity(csv.rows.len());
    for r in &csv.rows {
        let o = input::count(r.line, &csv.header[oi], &r.fields[oi])?;
        let mut parsed = vec![(oi, Value::Int(o))];
        let ci = poisson_ci(o, level, ci_method).map_err(|e| AnalyzeError::stats(method, e))?;
        let mut res = vec![Value::Num(ci.lower), Value::Num(ci.upper)];
        if let Some(pi) = pop {
            let p = input::nonneg_number(r.line, &csv.header[pi], &r.fields[pi])?;
            parsed.push((pi, Value::Num(p)));
            if p > 0.0 {
                let rate = rate_per(o, p, per, level, ci_method)
                    .map_err(|e| AnalyzeError::stats(method, e))?;
                res.extend([
                    Value::Num(rate.estimate),
                    Value::Num(rate.lower),
                    Value::Num(rate.upper),
                ]);
            } else {
                res.extend([Value::Null, Value::Null, Value::Null]);
            }
        }
        let mut row = layout.carried(r, &parsed);
        row.extend(res);
        rows.push(row);
    }
    Ok(output(csv, results, rows))
}

/// sir: `observed,expected`.
pub(crate) fn standardised_ratio(config: &Config, csv: &Csv) -> Result<Output> {
    let method = Method::Sir;
    let level = match config {
        Config::Level(l) => *l,
        _ => 0.95,
    };
    let layout = Layout::new(csv, method);
    let results = ["sir", "sir_lower", "sir_upper"];
    layout.check_header(&results)?;
    let idx = layout.require(&[&["observed"], &["expected"]])?;
    let (oi, ei) = (idx[0], idx[1]);
    let mut rows = Vec::with_capacity(csv.rows.len());
    for r in &csv.rows {
        let o = input::count(r.line, &csv.header[oi], &r.fields[oi])?;
        let e = input::nonneg_number(r.line, &csv.header[ei], &r.fields[ei])?;
        let mut row = layout.carried(r, &[(oi, Value::Int(o)), (ei, Value::Num(e))]);
        if e > 0.0 {
            let s = sir(o, e, level).map_err(|err| AnalyzeError::stats(method, err))?;
            row.extend([
                Value::Num(s.ratio),
                Value::Num(s.lower),
                Value::Num(s.upper),
            ]);
        } else {
            row.extend([Value::Null, Value::Null, Value::Null]);
        }
        rows.push(row);
    }
    Ok(output(csv, &results, rows))
}

/// chapman: `n1,n2,m`.
pub(crate) fn capture_recapture(config: &Config, csv: &Csv) -> Result<Output> {
    let method = Method::Chapman;
    let level = match config {
        Config::Level(l) => *l,
        _ => 0.95,
    };
    let layout = Layout::new(csv, method);
    let results = [
        "n_hat",
        "variance",
        "wald_lower",
        "wald_upper",
        "log_lower",
        "log_upper",
        "observed_distinct",
        "completeness1",
        "completeness2",
        "completeness_combined",
    ];
    layout.check_header(&results)?;
    let idx = layout.require(&[&["n1"], &["n2"], &["m"]])?;
    let mut rows = Vec::with_capacity(csv.rows.len());
    for r in &csv.rows {
        let mut v = [0u64; 3];
        for (k, &i) in idx.iter().enumerate() {
            v[k] = input::count(r.line, &csv.header[i], &r.fields[i])?;
        }
        let [n1, n2, m] = v;
        if m > n1 || m > n2 {
            let (src, n) = if m > n1 { ("n1", n1) } else { ("n2", n2) };
            return Err(AnalyzeError::value(
                r.line,
                &csv.header[idx[2]],
                &r.fields[idx[2]],
                format!(
                    "is larger than {src} = {n} on this line; the overlap m cannot exceed either \
                     source count"
                ),
            ));
        }
        let c = chapman(n1, n2, m, level).map_err(|e| AnalyzeError::stats(method, e))?;
        let parsed: Vec<(usize, Value)> = idx
            .iter()
            .zip(v)
            .map(|(&i, x)| (i, Value::Int(x)))
            .collect();
        let mut row = layout.carried(r, &parsed);
        row.extend([
            Value::Num(c.n_hat),
            Value::Num(c.variance),
            Value::Num(c.wald_lower),
            Value::Num(c.wald_upper),
            Value::Num(c.log_lower),
            Value::Num(c.log_upper),
            Value::Int(c.observed_distinct),
            Value::Num(c.completeness_source1),
            Value::Num(c.completeness_source2),
            Value::Num(c.completeness_combined),
        ]);
        rows.push(row);
    }
    Ok(output(csv, &results, rows))
}

type Report = ReportRow<String, String, String, String>;

fn report_rows(layout: &Layout<'_>, csv: &Csv) -> Result<Vec<Report>> {
    layout.check_header(&[])?;
    let idx = layout.require(&[REPORT_ID, EXPOSURE, DIAGNOSIS])?;
    let si = csv.find(STRATUM);
    let mut out = Vec::with_capacity(csv.rows.len());
    for r in &csv.rows {
        let f = |k: usize, what: &str| {
            let i = idx[k];
            input::text(r.line, &csv.header[i], &r.fields[i], what)
        };
        out.push(ReportRow {
            report_id: f(0, "a report id")?,
            exposure: f(1, "an exposure")?,
            diagnosis: f(2, "a diagnosis")?,
            stratum: si.map(|i| r.fields[i].clone()).filter(|s| !s.is_empty()),
        });
    }
    Ok(out)
}

const EBGM_RESULTS: [&str; 13] = [
    "rr",
    "eb_log2",
    "ebgm",
    "eb05",
    "eb95",
    "qn",
    "alpha1",
    "beta1",
    "alpha2",
    "beta2",
    "p",
    "neg_log_lik",
    "converged",
];

/// ebgm: report-level rows (pairs built as openEBGM `processRaw`) or pre-built `N,E` cells.
pub(crate) fn ebgm(config: &Config, csv: &Csv) -> Result<Output> {
    let method = Method::Ebgm;
    let (n_star, stratify, prior) = match config {
        Config::Ebgm {
            n_star,
            stratify,
            prior,
        } => (*n_star, *stratify, *prior),
        _ => return Err(Layout::new(csv, method).header_error("internal".to_string())),
    };
    let layout = Layout::new(csv, method);
    let stats = |e| AnalyzeError::stats(method, e);
    // (leading values per output row, cell)
    let mut lead: Vec<Vec<Value>> = Vec::new();
    let mut cells: Vec<Cell> = Vec::new();
    let mut columns: Vec<String>;
    if has_all(csv, &[REPORT_ID, EXPOSURE, DIAGNOSIS]) {
        if stratify && csv.find(STRATUM).is_none() {
            return Err(AnalyzeError::option(
                "stratify",
                "true",
                "needs a `stratum` (or openEBGM `strat`) column in the input",
            ));
        }
        let rows = report_rows(&layout, csv)?;
        columns = ["exposure", "diagnosis", "N", "E"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for c in build_pair_cells(&rows, stratify) {
            lead.push(vec![
                Value::Text(c.exposure),
                Value::Text(c.diagnosis),
                Value::Int(c.n),
                Value::Num(c.expected),
            ]);
            cells.push(Cell {
                n: c.n as f64,
                e: c.expected,
            });
        }
    } else if has_all(csv, &[&["n"], &["e"]]) {
        if stratify {
            return Err(AnalyzeError::option(
                "stratify",
                "true",
                "applies to report-level rows only; with N,E cells the expected counts are given",
            ));
        }
        layout.check_header(&EBGM_RESULTS)?;
        let idx = layout.require(&[&["n"], &["e"]])?;
        let (ni, ei) = (idx[0], idx[1]);
        for r in &csv.rows {
            let n = input::count(r.line, &csv.header[ni], &r.fields[ni])?;
            let e = input::positive_number(r.line, &csv.header[ei], &r.fields[ei])?;
            lead.push(layout.carried(r, &[(ni, Value::Int(n)), (ei, Value::Num(e))]));
            cells.push(Cell { n: n as f64, e });
        }
        columns = csv.header.clone();
    } else {
        return Err(layout.header_error(
            "has neither the report-level columns report_id,exposure,diagnosis (or id,var1,var2) \
             nor the cell columns N,E"
                .to_string(),
        ));
    }
    let (prior, nll, converged) = match prior {
        Some(p) => (p, neg_log_likelihood(&p, &cells, n_star), None),
        None => {
            let fit = fit_prior(
                &cells,
                &MgpsFitOptions {
                    n_star,
                    ..MgpsFitOptions::default()
                },
            )
            .map_err(stats)?;
            (fit.prior, fit.neg_log_likelihood, Some(fit.converged))
        }
    };
    columns.extend(EBGM_RESULTS.iter().map(|s| s.to_string()));
    let mut rows = Vec::with_capacity(cells.len());
    for (mut row, c) in lead.into_iter().zip(&cells) {
        let s = eb_score(&prior, c.n, c.e).map_err(stats)?;
        row.extend([
            Value::Num(s.rr),
            Value::Num(s.eb_log2),
            Value::Num(s.ebgm),
            Value::Num(s.eb05),
            Value::Num(s.eb95),
            Value::Num(s.qn),
            Value::Num(prior.alpha1),
            Value::Num(prior.beta1),
            Value::Num(prior.alpha2),
            Value::Num(prior.beta2),
            Value::Num(prior.p),
            Value::Num(nll),
            Value::opt_bool(converged),
        ]);
        rows.push(row);
    }
    Ok(Output { columns, rows })
}
