//! `POST /api/v1/notifications/batch`: many notifications from an occupational health service's
//! system in one upload, as NDJSON (one JSON notification per line) or CSV (a header row with the
//! contract's field names, one notification per line).
//!
//! The upload is read as a stream, line by line, so memory stays bounded whatever its size; the
//! answer is streamed too: one NDJSON result per input line, in input order, as
//! `{"line": n, "status": 202, "id": ...}` or `{"line": n, "status": 422, "violations": [...]}`
//! (or 503 when the log could not take that part). **Lines stand on their own**: a broken line
//! never affects the others, and every line answered 202 is durably accepted. To retry, resend
//! only the lines that did not get 202.
//!
//! CSV conventions: `exposures` lists codes separated by `|`, the primary one marked with a
//! trailing `*` (`ER003*|PS001`); `prevention_advice` is `|`-separated; `self_employed` is
//! `true`/`false`; `birth_year` is a number; empty cells are absent fields. A quoted cell may not
//! contain a line break (one record per line).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use chrono::Utc;
use futures_util::StreamExt;
use ods_model::{Event, ReporterPseudonym};
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use crate::service::{Intake, PublishError};

/// Longest accepted line.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Notifications published per log write.
const CHUNK: usize = 250;

/// The upload formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchFormat {
    /// `application/x-ndjson`.
    Ndjson,
    /// `text/csv`.
    Csv,
}

enum Pending {
    Accepted(Box<Event>),
    Answer(Value),
}

struct Run {
    intake: Arc<Intake>,
    reporter: ReporterPseudonym,
    out: mpsc::Sender<Bytes>,
    pending: Vec<(u64, Pending)>,
    header: Option<Vec<String>>,
    format: BatchFormat,
}

fn line_result(value: Value) -> Bytes {
    let mut text = value.to_string();
    text.push('\n');
    Bytes::from(text)
}

fn csv_to_json(header: &[String], line: &str) -> Result<Value, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line.as_bytes());
    let record = match reader.records().next() {
        Some(Ok(r)) => r,
        Some(Err(e)) => return Err(format!("unreadable CSV: {e}")),
        None => return Err("empty line".into()),
    };
    if record.len() != header.len() {
        return Err(format!(
            "{} cells, the header has {}",
            record.len(),
            header.len()
        ));
    }
    let mut body = Map::new();
    for (name, cell) in header.iter().zip(record.iter()) {
        let cell = cell.trim();
        if cell.is_empty() {
            continue;
        }
        let value = match name.as_str() {
            "birth_year" => cell
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| json!(cell)),
            "self_employed" => match cell {
                "true" => json!(true),
                "false" => json!(false),
                other => json!(other),
            },
            "exposures" => Value::Array(
                cell.split('|')
                    .map(|code| {
                        let code = code.trim();
                        match code.strip_suffix('*') {
                            Some(primary) => json!({"code": primary, "primary": true}),
                            None => json!({"code": code, "primary": false}),
                        }
                    })
                    .collect(),
            ),
            "prevention_advice" => Value::Array(cell.split('|').map(|a| json!(a.trim())).collect()),
            _ => json!(cell),
        };
        body.insert(name.clone(), value);
    }
    Ok(Value::Object(body))
}

impl Run {
    async fn line(&mut self, number: u64, raw: &[u8]) -> bool {
        let text = match std::str::from_utf8(raw) {
            Ok(t) => t.trim_end_matches('\r').trim(),
            Err(_) => return self.problem(number, "the line is not UTF-8").await,
        };
        if text.is_empty() {
            return true;
        }
        let body = match self.format {
            BatchFormat::Ndjson => match serde_json::from_str::<Value>(text) {
                Ok(v) => v,
                Err(e) => return self.problem(number, &format!("not valid JSON: {e}")).await,
            },
            BatchFormat::Csv => match &self.header {
                None => {
                    self.header = Some(text.split(',').map(|h| h.trim().to_string()).collect());
                    return true;
                }
                Some(header) => match csv_to_json(header, text) {
                    Ok(v) => v,
                    Err(e) => return self.problem(number, &e).await,
                },
            },
        };
        match self
            .intake
            .prepare_filing(&self.reporter, &body, Utc::now())
        {
            Ok(filed) => self
                .pending
                .push((number, Pending::Accepted(Box::new(Event::Filed(filed))))),
            Err(violations) => self.pending.push((
                number,
                Pending::Answer(json!({"line": number, "status": 422, "violations": violations})),
            )),
        }
        if self.pending.len() >= CHUNK {
            return self.flush().await;
        }
        true
    }

    async fn problem(&mut self, number: u64, detail: &str) -> bool {
        self.pending.push((
            number,
            Pending::Answer(json!({"line": number, "status": 400, "detail": detail})),
        ));
        true
    }

    /// Publishes the accepted lines of the window and sends every answer in line order. False
    /// when the client went away.
    async fn flush(&mut self) -> bool {
        let pending = std::mem::take(&mut self.pending);
        let events: Vec<Event> = pending
            .iter()
            .filter_map(|(_, p)| match p {
                Pending::Accepted(e) => Some(e.as_ref().clone()),
                Pending::Answer(_) => None,
            })
            .collect();
        let outcome = if events.is_empty() {
            Ok(Vec::new())
        } else {
            let mut result = self.intake.publish_with_warnings(events.clone()).await;
            // a busy log is retried a few times before the lines are answered 503
            for _ in 0..20 {
                if !matches!(result, Err(PublishError::Backpressure)) {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                result = self.intake.publish_with_warnings(events.clone()).await;
            }
            result
        };
        // the warnings of the accepted lines, in their order (none when the registry failed)
        let mut warnings = match &outcome {
            Ok(warnings) => warnings.clone(),
            Err(_) => Vec::new(),
        }
        .into_iter();
        for (number, p) in pending {
            let answer = match (p, &outcome) {
                (Pending::Answer(v), _) => v,
                (Pending::Accepted(e), Ok(_)) => json!({
                    "line": number, "status": 202,
                    "id": e.notification_id().map(|id| id.to_string()), "version": 1,
                    "warnings": warnings.next().unwrap_or_default()
                }),
                (Pending::Accepted(_), Err(e)) => json!({
                    "line": number, "status": 503,
                    "detail": format!("not stored: {e}; resend this line")
                }),
            };
            if self.out.send(line_result(answer)).await.is_err() {
                return false;
            }
        }
        true
    }
}

/// Processes an upload of at most `max_bytes`, sending one result line per input line into `out`.
pub async fn run(
    intake: Arc<Intake>,
    reporter: ReporterPseudonym,
    format: BatchFormat,
    body: Body,
    max_bytes: usize,
    out: mpsc::Sender<Bytes>,
) {
    let mut run = Run {
        intake,
        reporter,
        out,
        pending: Vec::new(),
        header: None,
        format,
    };
    let mut stream = body.into_data_stream();
    let mut buffer: Vec<u8> = Vec::new();
    let mut number = 0u64;
    let mut skipping_long_line = false;
    let mut total = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                let _ = run.flush().await;
                let _ = run
                    .out
                    .send(line_result(json!({"line": number + 1, "status": 400, "detail": format!("upload interrupted: {e}; lines after {number} were not read")})))
                    .await;
                return;
            }
        };
        total += chunk.len();
        if total > max_bytes {
            let _ = run.flush().await;
            let _ = run
                .out
                .send(line_result(json!({"line": number + 1, "status": 413, "detail": format!("the upload is larger than {max_bytes} bytes; lines after {number} were not read; upload them separately")})))
                .await;
            return;
        }
        let mut rest: &[u8] = &chunk;
        while let Some(end) = rest.iter().position(|b| *b == b'\n') {
            number += 1;
            if skipping_long_line {
                skipping_long_line = false;
                buffer.clear();
            } else {
                buffer.extend_from_slice(&rest[..end]);
                let line = std::mem::take(&mut buffer);
                if !run.line(number, &line).await {
                    return;
                }
            }
            rest = &rest[end + 1..];
        }
        if !skipping_long_line {
            buffer.extend_from_slice(rest);
            if buffer.len() > MAX_LINE_BYTES {
                buffer.clear();
                skipping_long_line = true;
                run.problem(
                    number + 1,
                    &format!("line longer than {MAX_LINE_BYTES} bytes"),
                )
                .await;
            }
        }
    }
    if !buffer.is_empty() && !skipping_long_line {
        number += 1;
        let line = std::mem::take(&mut buffer);
        if !run.line(number, &line).await {
            return;
        }
    }
    run.flush().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_become_the_json_contract() {
        let header: Vec<String> = [
            "service_id",
            "diagnosis_code",
            "exposures",
            "birth_year",
            "prevention_advice",
            "guideline_code",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let body =
            csv_to_json(&header, "AD0001,L694,ER003*|PS001,1980,organisational|ppe,").unwrap();
        assert_eq!(
            body,
            json!({
                "service_id": "AD0001", "diagnosis_code": "L694",
                "exposures": [{"code": "ER003", "primary": true}, {"code": "PS001", "primary": false}],
                "birth_year": 1980, "prevention_advice": ["organisational", "ppe"]
            })
        );
        assert!(csv_to_json(&header, "AD0001,L694")
            .unwrap_err()
            .contains("2 cells"));
    }
}
