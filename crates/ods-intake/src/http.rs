//! The doctors' HTTP API.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use ods_http::{Caller, Problem};
use ods_identity::{Principal, Role, TokenStore};
use ods_model::Event;
use serde_json::{json, Value};

use crate::service::{Accepted, Intake, IntakeError, PublishError};

/// Largest accepted request body for single notifications.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// Shared state of the intake routes.
#[derive(Clone)]
pub struct IntakeState {
    /// The producer core.
    pub intake: Arc<Intake>,
    /// Token store for authentication.
    pub tokens: Arc<TokenStore>,
}

impl FromRef<IntakeState> for Arc<TokenStore> {
    fn from_ref(state: &IntakeState) -> Self {
        state.tokens.clone()
    }
}

/// The intake routes: `POST /api/v1/notifications`, `POST /api/v1/zero-reports`.
pub fn router(state: IntakeState) -> Router {
    Router::new()
        .route("/api/v1/notifications", post(file_notification))
        .route("/api/v1/zero-reports", post(file_zero_report))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

fn reporter_of(
    caller: &Caller,
) -> Result<(&ods_model::ReporterPseudonym, &ods_model::Affiliation), Problem> {
    caller.require(&[Role::Reporter])?;
    match &caller.0 {
        Principal::Reporter {
            pseudonym,
            affiliation,
        } => Ok((pseudonym, affiliation)),
        _ => Err(Problem::forbidden("only a reporter token can file")),
    }
}

/// Parses a JSON body, with problem+json answers for every way it can be wrong.
fn json_body(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Value, Problem> {
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::new(
                status,
                "too-large",
                format!("the body is larger than {MAX_BODY_BYTES} bytes; use /api/v1/notifications/batch for many notifications"),
            )
        } else {
            Problem::new(status, "bad-body", rejection.body_text())
        }
    })?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "send the notification as 'Content-Type: application/json'",
        ));
    }
    serde_json::from_slice(&body).map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed-json",
            format!("the body is not valid JSON: {e}"),
        )
    })
}

fn intake_problem(error: IntakeError) -> Problem {
    match error {
        IntakeError::Invalid(violations) => {
            let mut p = Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                format!(
                    "the notification breaks {} rule(s); every violation is listed with field, value, rule and message",
                    violations.len()
                ),
            );
            p.violations = serde_json::to_value(&violations).ok().map(Box::new);
            p
        }
        IntakeError::Publish(PublishError::Backpressure) => {
            Problem::unavailable("intake is busy; nothing was stored, retry in a second", 1)
        }
        IntakeError::Publish(e) => {
            tracing::error!(error = %e, "publish failed");
            Problem::unavailable(
                "the event log is unavailable; nothing was stored, retry later",
                5,
            )
        }
    }
}

async fn file_notification(
    State(state): State<IntakeState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Accepted>), Problem> {
    let (reporter, _) = reporter_of(&caller)?;
    let body = json_body(&headers, body)?;
    let accepted = state
        .intake
        .file(reporter, &body, Utc::now())
        .await
        .map_err(intake_problem)?;
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

async fn file_zero_report(
    State(state): State<IntakeState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    let (reporter, affiliation) = reporter_of(&caller)?;
    let body = json_body(&headers, body)?;
    let Value::Object(map) = &body else {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "the body must be {\"period\": \"YYYY-MM\"}",
        ));
    };
    if let Some(extra) = map.keys().find(|k| *k != "period") {
        return Err(intake_problem(IntakeError::Invalid(vec![
            ods_validation::Violation {
                field: extra.clone(),
                value: map[extra].clone(),
                rule: ods_validation::Rule::FieldUnknown,
                message: format!("unknown field '{extra}': a zero report takes only period"),
                message_nl: format!("onbekend veld '{extra}': een nulmelding kent alleen period"),
            },
        ])));
    }
    let period = map.get("period").cloned().unwrap_or(Value::Null);
    let zero = state
        .intake
        .prepare_zero_report(reporter, affiliation, &period, Utc::now())
        .map_err(|v| intake_problem(IntakeError::Invalid(v)))?;
    let answer = json!({"period": zero.period.to_string(), "status": "accepted"});
    state
        .intake
        .publish(vec![Event::ZeroReport(zero)])
        .await
        .map_err(|e| intake_problem(IntakeError::Publish(e)))?;
    Ok((StatusCode::ACCEPTED, Json(answer)))
}
