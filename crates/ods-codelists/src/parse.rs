//! A strict reader for the project's CSV data files.

use std::collections::HashMap;

use chrono::NaiveDate;

use crate::error::CodeListError;

/// The header comments of a data file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileMeta {
    /// `# source:` line.
    pub source: String,
    /// `# version:` line.
    pub version: String,
}

/// One data row with its line number, fields addressed by header name.
pub struct Row<'a> {
    pub file: &'a str,
    pub line: u64,
    fields: Vec<String>,
    columns: &'a HashMap<String, usize>,
}

impl Row<'_> {
    pub fn err(&self, reason: impl Into<String>) -> CodeListError {
        CodeListError::new(self.file, self.line, reason)
    }

    /// A field that must be present and non-empty.
    pub fn required(&self, name: &str) -> Result<&str, CodeListError> {
        let value = self.optional(name);
        value.ok_or_else(|| self.err(format!("column '{name}' is empty")))
    }

    /// A field that may be empty.
    pub fn optional(&self, name: &str) -> Option<&str> {
        self.columns
            .get(name)
            .and_then(|&i| self.fields.get(i))
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }

    pub fn date(&self, name: &str) -> Result<NaiveDate, CodeListError> {
        let text = self.required(name)?;
        parse_date(text).ok_or_else(|| {
            self.err(format!(
                "column '{name}': '{text}' is not a date (use YYYY-MM-DD)"
            ))
        })
    }

    pub fn optional_date(&self, name: &str) -> Result<Option<NaiveDate>, CodeListError> {
        match self.optional(name) {
            None => Ok(None),
            Some(_) => self.date(name).map(Some),
        }
    }

    pub fn number(&self, name: &str) -> Result<f64, CodeListError> {
        let text = self.required(name)?;
        text.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| {
                self.err(format!(
                    "column '{name}': '{text}' is not a non-negative number"
                ))
            })
    }

    pub fn list(&self, name: &str, separator: char) -> Vec<String> {
        self.optional(name)
            .map(|s| {
                s.split(separator)
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn parse_date(text: &str) -> Option<NaiveDate> {
    if text.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// Reads a data file: leading `#` comment lines (with `# source:` and `# version:` required when
/// `require_meta`), then a header that must equal `expected_header`, then rows.
pub fn read_rows<T>(
    file: &str,
    text: &str,
    expected_header: &[&str],
    require_meta: bool,
    mut on_row: impl FnMut(&Row<'_>) -> Result<T, CodeListError>,
) -> Result<(FileMeta, Vec<T>), CodeListError> {
    let mut meta = FileMeta::default();
    let mut comment_lines = 0u64;
    for line in text.lines() {
        let Some(comment) = line.strip_prefix('#') else {
            break;
        };
        comment_lines += 1;
        let comment = comment.trim();
        if let Some(v) = comment.strip_prefix("source:") {
            meta.source = v.trim().to_string();
        } else if let Some(v) = comment.strip_prefix("version:") {
            meta.version = v.trim().to_string();
        }
    }
    if require_meta && (meta.source.is_empty() || meta.version.is_empty()) {
        return Err(CodeListError::new(
            file,
            1,
            "the file must start with '# source: ...' and '# version: ...' comment lines",
        ));
    }
    // byte offset after the comment lines (works for LF and CRLF files)
    let body_start: usize = text
        .split_inclusive('\n')
        .take(comment_lines as usize)
        .map(str::len)
        .sum();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(&text.as_bytes()[body_start.min(text.len())..]);
    let mut records = reader.records();
    let header_line = comment_lines + 1;
    let header = match records.next() {
        Some(Ok(h)) => h,
        Some(Err(e)) => return Err(CodeListError::new(file, header_line, e.to_string())),
        None => return Err(CodeListError::new(file, header_line, "no header row")),
    };
    let header: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
    if header != expected_header {
        return Err(CodeListError::new(
            file,
            header_line,
            format!(
                "header is '{}', expected '{}'",
                header.join(","),
                expected_header.join(",")
            ),
        ));
    }
    let columns: HashMap<String, usize> = header
        .iter()
        .enumerate()
        .map(|(i, h)| (h.clone(), i))
        .collect();
    let mut out = Vec::new();
    for record in records {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0) + comment_lines;
            CodeListError::new(file, line, format!("unreadable CSV: {e}"))
        })?;
        let line = record.position().map(|p| p.line()).unwrap_or(0) + comment_lines;
        if record.iter().all(|f| f.trim().is_empty()) {
            return Err(CodeListError::new(file, line, "empty line"));
        }
        if record.len() != expected_header.len() {
            return Err(CodeListError::new(
                file,
                line,
                format!(
                    "{} fields, expected {} ({})",
                    record.len(),
                    expected_header.len(),
                    expected_header.join(",")
                ),
            ));
        }
        let row = Row {
            file,
            line,
            fields: record.iter().map(str::to_string).collect(),
            columns: &columns,
        };
        out.push(on_row(&row)?);
    }
    Ok((meta, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<String>, CodeListError> {
        read_rows("t.csv", text, &["code", "name"], true, |r| {
            Ok(format!("{}={}", r.required("code")?, r.required("name")?))
        })
        .map(|(_, rows)| rows)
    }

    #[test]
    fn reads_rows_after_comments() {
        let rows = read("# source: x\n# version: 1\ncode,name\nA,\"a, b\"\nB,c\n").unwrap();
        assert_eq!(rows, vec!["A=a, b", "B=c"]);
    }

    #[test]
    fn errors_name_the_line() {
        let err = read("# source: x\n# version: 1\ncode,name\nA,a\nB,\n").unwrap_err();
        assert_eq!(err.to_string(), "t.csv:5: column 'name' is empty");
        let err = read("# source: x\n# version: 1\ncode,nom\n").unwrap_err();
        assert_eq!(err.line, 3);
        let err = read("# source: x\n# version: 1\ncode,name\nA,a,extra\n").unwrap_err();
        assert_eq!(err.line, 4);
        assert!(err.reason.contains("3 fields"), "{err}");
        let err = read("code,name\nA,a\n").unwrap_err();
        assert!(err.reason.contains("# source"), "{err}");
    }
}
