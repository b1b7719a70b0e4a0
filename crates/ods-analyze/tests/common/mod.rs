//! Shared helpers: fixtures of ods-stats (R outputs) and parsing of our CSV output.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ods_analyze::{run, Format, Method, Options};

pub const REL: f64 = 1e-4;
pub const ABS_FLOOR: f64 = 1e-9;

/// The R fixtures committed for ods-stats.
pub fn oracle_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("ods-stats")
        .join("tests")
        .join("oracle")
}

/// A CSV table as strings, with named columns.
#[derive(Debug, Clone)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn parse(text: &str) -> Table {
        let mut r = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(text.as_bytes());
        let header = r.headers().unwrap().iter().map(str::to_string).collect();
        let rows = r
            .records()
            .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
            .collect();
        Table { header, rows }
    }

    pub fn read(name: &str) -> Table {
        let path = oracle_dir().join(name);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        Table::parse(&text)
    }

    pub fn col(&self, name: &str) -> usize {
        self.header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name} in {:?}", self.header))
    }

    pub fn get<'a>(&self, row: &'a [String], name: &str) -> &'a str {
        &row[self.col(name)]
    }

    /// A number; `None` for R's NA/NaN and for our empty cells.
    pub fn num(&self, row: &[String], name: &str) -> Option<f64> {
        let s = self.get(row, name);
        if s.is_empty() || s == "NA" || s == "NaN" {
            None
        } else {
            Some(
                s.parse()
                    .unwrap_or_else(|_| panic!("bad number {s:?} in {name}")),
            )
        }
    }

    /// A flag: R's TRUE/FALSE or our true/false; `None` for NA / empty.
    pub fn flag(&self, row: &[String], name: &str) -> Option<bool> {
        match self.get(row, name) {
            "TRUE" | "true" => Some(true),
            "FALSE" | "false" => Some(false),
            "NA" | "" => None,
            other => panic!("bad flag {other:?} in {name}"),
        }
    }

    pub fn group(&self, keys: &[&str]) -> BTreeMap<Vec<String>, Vec<Vec<String>>> {
        let mut m: BTreeMap<Vec<String>, Vec<Vec<String>>> = BTreeMap::new();
        for r in &self.rows {
            let k = keys.iter().map(|c| self.get(r, c).to_string()).collect();
            m.entry(k).or_default().push(r.clone());
        }
        m
    }
}

/// Relative 1e-4 (absolute 1e-9 only for reference values that are practically zero).
pub fn close(ours: f64, r: f64) -> bool {
    let d = (ours - r).abs();
    d <= REL * r.abs() || d <= ABS_FLOOR
}

#[track_caller]
pub fn assert_opt_close(what: &str, ours: Option<f64>, r: Option<f64>) {
    match (ours, r) {
        (None, None) => {}
        (Some(a), Some(b)) => assert!(close(a, b), "{what}: ours {a} vs R {b}"),
        _ => panic!("{what}: ours {ours:?} vs R {r:?}"),
    }
}

/// A fixture series (`index,count`) as our `date,count` CSV: weekly from Monday 2001-01-01,
/// monthly from 2010-01-01.
pub fn series_csv(name: &str) -> String {
    let t = Table::read(&format!("series/{name}.csv"));
    let monthly = name == "monthly";
    let start = chrono::NaiveDate::from_ymd_opt(if monthly { 2010 } else { 2001 }, 1, 1).unwrap();
    let mut s = String::from("date,count\n");
    for (i, r) in t.rows.iter().enumerate() {
        let d = if monthly {
            start
                .checked_add_months(chrono::Months::new(i as u32))
                .unwrap()
        } else {
            start + chrono::Duration::days(7 * i as i64)
        };
        s.push_str(&format!("{d},{}\n", t.get(r, "count")));
    }
    s
}

/// Run a method and return the output text, panicking on error.
pub fn run_text(method: Method, options: &Options, input: &str, format: Format) -> String {
    let mut out = Vec::new();
    run(method, options, input.as_bytes(), format, &mut out)
        .unwrap_or_else(|e| panic!("{method} failed: {e}"));
    String::from_utf8(out).unwrap()
}

/// Run a method with CSV output and parse it.
pub fn run_csv(method: Method, options: &[(&str, &str)], input: &str) -> Table {
    let o = Options::from_pairs(options.iter().copied()).unwrap();
    Table::parse(&run_text(method, &o, input, Format::Csv))
}

/// Run a method and return the error message.
pub fn run_err(method: Method, options: &[(&str, &str)], input: &str) -> String {
    let o = match Options::from_pairs(options.iter().copied()) {
        Ok(o) => o,
        Err(e) => return e.to_string(),
    };
    let mut out = Vec::new();
    match run(method, &o, input.as_bytes(), Format::Csv, &mut out) {
        Ok(()) => panic!(
            "{method} unexpectedly succeeded:\n{}",
            String::from_utf8_lossy(&out)
        ),
        Err(e) => {
            assert!(out.is_empty(), "output written despite the error");
            e.to_string()
        }
    }
}
