//! The result table and its CSV / JSON writers.

use std::io::Write;

use serde::ser::{SerializeMap, Serializer};

use crate::error::{AnalyzeError, Result};
use crate::Format;

/// One cell of the result table.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// No value: the method gives none for this row (empty CSV cell, JSON `null`).
    Null,
    /// Text (input columns other than numbers, e.g. dates and labels).
    Text(String),
    /// A whole number (counts, table cells).
    Int(u64),
    /// A real number. Non-finite values are written as empty / `null`.
    Num(f64),
    /// A flag (`true` / `false`).
    Bool(bool),
}

impl Value {
    /// `Num`, or `Null` for `None`.
    pub(crate) fn opt(v: Option<f64>) -> Value {
        v.map_or(Value::Null, Value::Num)
    }

    /// `Bool`, or `Null` for `None`.
    pub(crate) fn opt_bool(v: Option<bool>) -> Value {
        v.map_or(Value::Null, Value::Bool)
    }

    /// The number in the cell, if any (`Int` and finite `Num`).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Num(x) if x.is_finite() => Some(*x),
            _ => None,
        }
    }

    /// The cell as CSV text.
    pub fn to_csv_text(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Text(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::Num(x) => format_number(*x),
            Value::Bool(b) => b.to_string(),
        }
    }
}

/// Shortest text that reads back to the same `f64` (`5` for 5.0, `1e-7`, `0.25`); empty for
/// NaN and infinities.
fn format_number(x: f64) -> String {
    if !x.is_finite() {
        return String::new();
    }
    let s = format!("{x:?}");
    match s.strip_suffix(".0") {
        Some(t) => t.to_string(),
        None => s,
    }
}

impl serde::Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_none(),
            Value::Text(t) => s.serialize_str(t),
            Value::Int(i) => s.serialize_u64(*i),
            Value::Num(x) if x.is_finite() => s.serialize_f64(*x),
            Value::Num(_) => s.serialize_none(),
            Value::Bool(b) => s.serialize_bool(*b),
        }
    }
}

/// The result of a method: named columns (input columns first, then results) and one row of
/// values per output row.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Output {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, each with one value per column.
    pub rows: Vec<Vec<Value>>,
}

struct JsonRow<'a> {
    columns: &'a [String],
    values: &'a [Value],
}

impl serde::Serialize for JsonRow<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.columns.len()))?;
        for (k, v) in self.columns.iter().zip(self.values) {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

fn csv_write_error(e: csv::Error) -> AnalyzeError {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => AnalyzeError::Write(io),
        other => AnalyzeError::Write(std::io::Error::other(format!("{other:?}"))),
    }
}

impl Output {
    /// Position of a column.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// Write in the given format.
    pub fn write(&self, format: Format, out: impl Write) -> Result<()> {
        match format {
            Format::Csv => self.write_csv(out),
            Format::Json => self.write_json(out),
        }
    }

    /// CSV: a header line, then one line per row; empty cells for missing values, `true` /
    /// `false` for flags, numbers in their shortest exact form. Fields are quoted when needed.
    pub fn write_csv(&self, out: impl Write) -> Result<()> {
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(out);
        w.write_record(&self.columns).map_err(csv_write_error)?;
        for row in &self.rows {
            w.write_record(row.iter().map(Value::to_csv_text))
                .map_err(csv_write_error)?;
        }
        w.flush().map_err(AnalyzeError::Write)
    }

    /// JSON: an array of objects, one per row, keys in column order, `null` for missing values.
    /// One object per line.
    pub fn write_json(&self, out: impl Write) -> Result<()> {
        let mut w = std::io::BufWriter::new(out);
        let io = |e: serde_json::Error| AnalyzeError::Write(std::io::Error::from(e));
        w.write_all(b"[").map_err(AnalyzeError::Write)?;
        for (i, row) in self.rows.iter().enumerate() {
            w.write_all(if i == 0 { b"\n" } else { b",\n" })
                .map_err(AnalyzeError::Write)?;
            serde_json::to_writer(
                &mut w,
                &JsonRow {
                    columns: &self.columns,
                    values: row,
                },
            )
            .map_err(io)?;
        }
        w.write_all(b"\n]\n").map_err(AnalyzeError::Write)?;
        w.flush().map_err(AnalyzeError::Write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(format_number(5.0), "5");
        assert_eq!(format_number(0.25), "0.25");
        assert_eq!(format_number(1e-7), "1e-7");
        assert_eq!(format_number(f64::NAN), "");
        assert_eq!(
            format_number("6.0101400690008457".parse().unwrap_or(0.0)),
            "6.010140069000846"
        );
    }
}
