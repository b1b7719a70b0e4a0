//! The doctors' HTTP API.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRef, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use ods_http::{Caller, Problem, RateLimiter};
use ods_identity::{Principal, Role, TokenStore};
use ods_model::{Event, Period, WithdrawalReason};
use serde_json::{json, Value};

#[allow(unused_imports)]
use crate::openapi::{errors, NotificationBody, WithdrawalBody, ZeroReportBody};
use crate::openapi::{
    CodeListHits, NotificationDetail, NotificationPage, NotificationSummary, ZeroReportAccepted,
};
use crate::registry::RegistryEntry;
use crate::service::{Accepted, Actor, Intake, IntakeError, PublishError};

/// Largest accepted request body for single notifications.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest accepted batch upload (read as a stream; memory stays bounded).
const MAX_BATCH_BYTES: usize = 256 * 1024 * 1024;

/// What the processor decided about a notification version (from the store in embedded mode).
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessingStatus {
    /// The version the decision is about.
    pub version: u32,
    /// `validated`, `rejected` or `withdrawn`.
    pub status: String,
    /// Rejection reasons (field, value, rule, message) when rejected.
    pub reasons: Option<Value>,
}

/// Where intake learns the processing status of a notification.
pub trait StatusSource: Send + Sync {
    /// The latest decision about notification `id`, if the processor has seen it.
    fn status(&self, id: &str) -> Option<ProcessingStatus>;
}

/// Shared state of the intake routes.
#[derive(Clone)]
pub struct IntakeState {
    /// The producer core.
    pub intake: Arc<Intake>,
    /// Token store for authentication.
    pub tokens: Arc<TokenStore>,
    /// Per-token request limit.
    pub limiter: Arc<RateLimiter>,
    /// Processing status, when a store is at hand (embedded mode).
    pub status: Option<Arc<dyn StatusSource>>,
}

impl FromRef<IntakeState> for Arc<RateLimiter> {
    fn from_ref(state: &IntakeState) -> Self {
        state.limiter.clone()
    }
}

impl FromRef<IntakeState> for Arc<TokenStore> {
    fn from_ref(state: &IntakeState) -> Self {
        state.tokens.clone()
    }
}

/// The intake routes: filing, amending, withdrawing and reading one's notifications, zero reports,
/// code list search.
pub fn router(state: IntakeState) -> Router {
    Router::new()
        .route(
            "/api/v1/notifications",
            post(file_notification).get(list_notifications),
        )
        .route(
            "/api/v1/notifications/{id}",
            get(get_notification)
                .put(amend_notification)
                .delete(withdraw_notification),
        )
        .route("/api/v1/notifications/batch", post(file_batch))
        .route("/api/v1/zero-reports", post(file_zero_report))
        .route("/api/v1/codelists/{list}", get(search_codelist))
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
        IntakeError::NotFound(id) => Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("you have no notification with id {id}"),
        ),
        IntakeError::VersionConflict { current, expected } => Problem::new(
            StatusCode::PRECONDITION_FAILED,
            "version-conflict",
            format!("If-Match names version {expected} but the notification is at version {current}; read it again (GET) and retry"),
        ),
        IntakeError::Withdrawn(id) => Problem::new(
            StatusCode::CONFLICT,
            "withdrawn",
            format!("notification {id} was withdrawn and cannot change; file a new notification instead"),
        ),
        IntakeError::IdempotencyMismatch => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
            "this Idempotency-Key was used for a different request; use a new key for a new notification",
        ),
        IntakeError::Forbidden(detail) => Problem::forbidden(detail),
        IntakeError::Registry(e) => {
            tracing::error!(error = %e, "intake registry failed");
            Problem::unavailable("intake could not record the request; retry shortly", 2)
        }
        IntakeError::Publish(PublishError::Backpressure) => {
            Problem::unavailable("intake is busy; nothing was stored, retry in a second", 1)
        }
        IntakeError::Publish(e) => {
            tracing::error!(error = %e, "publish failed");
            Problem::unavailable(
                "the event log is unavailable; the request was not accepted: retry later with the same Idempotency-Key",
                5,
            )
        }
    }
}

#[utoipa::path(
    post, path = "/api/v1/notifications", tag = "intake",
    request_body(content = NotificationBody, content_type = "application/json"),
    params(("Idempotency-Key" = Option<String>, Header, description = "retrying with the same key returns the first answer and creates nothing new")),
    responses(
        (status = 202, description = "durably accepted; validation by the processor follows", body = Accepted),
        errors::MalformedRequest,
        errors::BodyErrors,
        errors::AccessErrors
    )
)]
pub(crate) async fn file_notification(
    State(state): State<IntakeState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Accepted>), Problem> {
    let (reporter, _) = reporter_of(&caller)?;
    let body = json_body(&headers, body)?;
    let key = idempotency_key(&headers)?;
    let accepted = state
        .intake
        .file(reporter, &body, Utc::now(), key.as_deref())
        .await
        .map_err(intake_problem)?;
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

#[utoipa::path(
    post, path = "/api/v1/notifications/batch", tag = "intake",
    request_body(
        description = "NDJSON (application/x-ndjson): one notification per line; or CSV (text/csv): a header row with the field names, exposures as `ER003*|PS001` (primary marked *), prevention_advice `a|b`",
        content((String = "application/x-ndjson"), (String = "text/csv"))
    ),
    responses(
        (status = 200, description = "one NDJSON result per input line, in order: {line, status: 202, id, version, warnings} (warnings as for a single filing, e.g. a probable duplicate of an earlier notification or of an earlier line) or {line, status: 422, violations} (400/413/503 per line likewise); accepted lines stand whatever happens to others", body = String, content_type = "application/x-ndjson"),
        errors::WrongBatchType,
        errors::AccessErrors
    )
)]
pub(crate) async fn file_batch(
    State(state): State<IntakeState>,
    caller: Caller,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, Problem> {
    let (reporter, _) = reporter_of(&caller)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let format = if content_type.starts_with("application/x-ndjson")
        || content_type.starts_with("application/ndjson")
    {
        crate::batch::BatchFormat::Ndjson
    } else if content_type.starts_with("text/csv") {
        crate::batch::BatchFormat::Csv
    } else {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "upload notifications as 'application/x-ndjson' (one JSON notification per line) or 'text/csv' (header row with the field names)",
        ));
    };
    let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(64);
    tokio::spawn(crate::batch::run(
        state.intake.clone(),
        reporter.clone(),
        format,
        body,
        MAX_BATCH_BYTES,
        sender,
    ));
    let stream = futures_util::stream::unfold(receiver, |mut r| async move {
        r.recv()
            .await
            .map(|line| (Ok::<Bytes, std::io::Error>(line), r))
    });
    let mut response = Response::new(axum::body::Body::from_stream(stream));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(response)
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or("").trim().trim_matches('"');
    if key.is_empty() || key.len() > 128 {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-idempotency-key",
            "Idempotency-Key must be 1 to 128 visible characters (a UUID is a good choice)",
        ));
    }
    Ok(Some(key.to_string()))
}

fn actor_of(caller: &Caller) -> Result<Actor<'_>, Problem> {
    match &caller.0 {
        Principal::Reporter { pseudonym, .. } => Ok(Actor::Reporter(pseudonym)),
        Principal::Admin => Ok(Actor::Admin),
        _ => Err(Problem::forbidden(
            "individual notifications are for their reporter (and administrators) only",
        )),
    }
}

/// Parses `If-Match: "3"` (also `W/"3"` or `3`); `*` or no header means no condition.
fn if_match(headers: &HeaderMap) -> Result<Option<u32>, Problem> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim();
    if text == "*" {
        return Ok(None);
    }
    let digits = text.trim_start_matches("W/").trim_matches('"');
    digits.parse::<u32>().map(Some).map_err(|_| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-if-match",
            format!(
                "If-Match '{text}' is not a version; send the ETag of your last GET, e.g. \"2\""
            ),
        )
    })
}

fn with_etag(status: StatusCode, version: u32, body: Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{version}\"")) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

#[utoipa::path(
    put, path = "/api/v1/notifications/{id}", tag = "intake",
    request_body(content = NotificationBody, content_type = "application/json"),
    params(
        ("id" = String, Path, description = "notification id"),
        ("If-Match" = Option<String>, Header, description = "the version you amend, as its ETag, e.g. \"1\"")
    ),
    responses(
        (status = 202, description = "new version durably accepted (ETag: the new version)", body = Accepted),
        errors::MalformedRequest,
        errors::NotYours,
        errors::ChangeErrors,
        errors::BodyErrors,
        errors::AccessErrors
    )
)]
pub(crate) async fn amend_notification(
    State(state): State<IntakeState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let actor = actor_of(&caller)?;
    let condition = if_match(&headers)?;
    let body = json_body(&headers, body)?;
    let accepted = state
        .intake
        .amend(actor, &id, condition, &body, Utc::now())
        .await
        .map_err(intake_problem)?;
    let version = accepted.version;
    Ok(with_etag(
        StatusCode::ACCEPTED,
        version,
        serde_json::to_value(accepted).unwrap_or_default(),
    ))
}

#[utoipa::path(
    delete, path = "/api/v1/notifications/{id}", tag = "intake",
    request_body(content = WithdrawalBody, content_type = "application/json"),
    params(
        ("id" = String, Path, description = "notification id"),
        ("If-Match" = Option<String>, Header, description = "the version you withdraw, as its ETag")
    ),
    responses(
        (status = 202, description = "withdrawal durably accepted", body = Accepted),
        errors::MalformedRequest,
        errors::NotYours,
        errors::ChangeErrors,
        errors::BodyErrors,
        errors::AccessErrors
    )
)]
pub(crate) async fn withdraw_notification(
    State(state): State<IntakeState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let actor = actor_of(&caller)?;
    let condition = if_match(&headers)?;
    let body = json_body(&headers, body)?;
    let reason = match body.get("reason") {
        Some(Value::String(text)) => WithdrawalReason::parse(text).map_err(|e| {
            intake_problem(IntakeError::Invalid(vec![ods_validation::Violation {
                field: "reason".into(),
                value: json!(text),
                rule: ods_validation::Rule::FieldType,
                message: format!("reason '{text}' is not allowed; use one of: {}", e.allowed),
                message_nl: format!("reden '{text}' is niet toegestaan; kies uit: {}", e.allowed),
            }]))
        })?,
        _ => {
            return Err(intake_problem(IntakeError::Invalid(vec![
                ods_validation::Violation {
                    field: "reason".into(),
                    value: body.get("reason").cloned().unwrap_or(Value::Null),
                    rule: ods_validation::Rule::FieldRequired,
                    message: format!("reason is required: one of {}", WithdrawalReason::allowed()),
                    message_nl: format!(
                        "reden is verplicht: een van {}",
                        WithdrawalReason::allowed()
                    ),
                },
            ])))
        }
    };
    let accepted = state
        .intake
        .withdraw(actor, &id, condition, reason, Utc::now())
        .await
        .map_err(intake_problem)?;
    let version = accepted.version;
    Ok(with_etag(
        StatusCode::ACCEPTED,
        version,
        serde_json::to_value(accepted).unwrap_or_default(),
    ))
}

fn processing_status(state: &IntakeState, entry: &RegistryEntry) -> (String, Option<Value>) {
    if entry.withdrawn {
        return ("withdrawn".into(), None);
    }
    match state.status.as_ref().and_then(|s| s.status(&entry.id)) {
        Some(p) if p.version == entry.version => (p.status, p.reasons),
        _ => ("accepted".into(), None),
    }
}

#[utoipa::path(
    get, path = "/api/v1/notifications/{id}", tag = "intake",
    params(("id" = String, Path, description = "notification id")),
    responses(
        (status = 200, description = "current version, history and processing status (ETag: the version)", body = NotificationDetail),
        errors::NotYours,
        errors::AccessErrors
    )
)]
pub(crate) async fn get_notification(
    State(state): State<IntakeState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let actor = actor_of(&caller)?;
    let entry = state
        .intake
        .lookup(actor, &id)
        .await
        .map_err(intake_problem)?;
    let (status, reasons) = {
        let (state, entry) = (state.clone(), entry.clone());
        tokio::task::spawn_blocking(move || processing_status(&state, &entry))
            .await
            .map_err(|_| Problem::unavailable("status lookup interrupted", 1))?
    };
    let version = entry.version;
    let detail = NotificationDetail {
        id: entry.id,
        version,
        status,
        reasons,
        notified_at: entry.notified_at,
        notification: entry.content,
        history: entry.history,
    };
    Ok(with_etag(
        StatusCode::OK,
        version,
        serde_json::to_value(detail).unwrap_or_default(),
    ))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListParams {
    from: Option<String>,
    to: Option<String>,
    status: Option<String>,
    limit: Option<usize>,
    before: Option<String>,
}

fn month_bound(field: &str, value: Option<&str>, end: bool) -> Result<i64, Problem> {
    let Some(text) = value else {
        return Ok(if end { i64::MAX } else { i64::MIN });
    };
    let period = Period::parse(text).map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-query",
            format!("{field}: {e}"),
        )
    })?;
    let day = if end {
        period.next().first_day()
    } else {
        period.first_day()
    };
    Ok(day
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_millis())
        .unwrap_or(0))
}

#[utoipa::path(
    get, path = "/api/v1/notifications", tag = "intake",
    params(
        ("from" = Option<String>, Query, description = "first month filed, YYYY-MM"),
        ("to" = Option<String>, Query, description = "last month filed, YYYY-MM"),
        ("status" = Option<String>, Query, description = "accepted, validated, rejected or withdrawn"),
        ("limit" = Option<usize>, Query, description = "page size, 1-200, default 50"),
        ("before" = Option<String>, Query, description = "next_before of the previous page")
    ),
    responses(
        (status = 200, description = "your notifications, newest first", body = NotificationPage),
        errors::MalformedRequest,
        errors::AccessErrors
    )
)]
pub(crate) async fn list_notifications(
    State(state): State<IntakeState>,
    caller: Caller,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<NotificationPage>, Problem> {
    let (reporter, _) = reporter_of(&caller)?;
    let Query(params) = params.map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-query",
            format!("{e}; use from, to (YYYY-MM), status, limit, before"),
        )
    })?;
    let from = month_bound("from", params.from.as_deref(), false)?;
    let to = month_bound("to", params.to.as_deref(), true)?;
    let limit = params.limit.unwrap_or(50).clamp(1, 200);
    let wanted = params.status.clone();
    if let Some(s) = &wanted {
        if !["accepted", "validated", "rejected", "withdrawn"].contains(&s.as_str()) {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "bad-query",
                format!("status '{s}': use accepted, validated, rejected or withdrawn"),
            ));
        }
    }
    let mut items = Vec::new();
    let mut cursor = params.before.clone();
    let mut exhausted = false;
    while items.len() < limit && !exhausted {
        let page = state
            .intake
            .list(reporter, from, to, cursor.clone(), limit)
            .await
            .map_err(intake_problem)?;
        exhausted = page.len() < limit;
        let statuses = {
            let (state, page) = (state.clone(), page.clone());
            tokio::task::spawn_blocking(move || {
                page.iter()
                    .map(|e| processing_status(&state, e))
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(|_| Problem::unavailable("status lookup interrupted", 1))?
        };
        for (entry, (status, _)) in page.iter().zip(statuses) {
            cursor = Some(entry.id.clone());
            if wanted.as_ref().is_some_and(|w| *w != status) {
                continue;
            }
            items.push(NotificationSummary {
                id: entry.id.clone(),
                version: entry.version,
                status,
                notified_at: entry.notified_at,
                diagnosis_code: entry
                    .content
                    .as_ref()
                    .and_then(|c| c.get("diagnosis_code"))
                    .and_then(|d| d.as_str())
                    .map(str::to_string),
            });
            if items.len() == limit {
                break;
            }
        }
    }
    let next = if exhausted && items.len() < limit {
        None
    } else {
        cursor
    };
    Ok(Json(NotificationPage {
        items,
        next_before: next,
    }))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchParams {
    q: Option<String>,
    on: Option<String>,
    limit: Option<usize>,
}

#[utoipa::path(
    get, path = "/api/v1/codelists/{list}", tag = "intake",
    params(
        ("list" = String, Path, description = "diagnoses, exposures, sectors, occupations, services or guidelines"),
        ("q" = Option<String>, Query, description = "code prefix or words (English or Dutch)"),
        ("on" = Option<String>, Query, description = "only codes valid on this date, YYYY-MM-DD"),
        ("limit" = Option<usize>, Query, description = "1-200, default 20")
    ),
    responses(
        (status = 200, description = "hits, best first", body = CodeListHits),
        errors::MalformedRequest,
        errors::NoSuchList,
        errors::AccessErrors
    )
)]
pub(crate) async fn search_codelist(
    State(state): State<IntakeState>,
    _caller: Caller,
    Path(list): Path<String>,
    params: Result<Query<SearchParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<CodeListHits>, Problem> {
    let Query(params) = params.map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-query",
            format!("{e}; use q, on (YYYY-MM-DD), limit"),
        )
    })?;
    let on = match params.on.as_deref() {
        None => None,
        Some(text) => Some(
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    "bad-query",
                    format!("on '{text}' is not a date YYYY-MM-DD"),
                )
            })?,
        ),
    };
    let q = params.q.unwrap_or_default();
    let limit = params.limit.unwrap_or(20).clamp(1, 200);
    let lists = state.intake.lists();
    let hits = |v: serde_json::Result<Value>| v.unwrap_or(Value::Null);
    let (version, items) = match list.as_str() {
        "diagnoses" => (&lists.diagnoses.version, hits(serde_json::to_value(lists.diagnoses.search(&q, on, limit)))),
        "exposures" => (&lists.exposures.version, hits(serde_json::to_value(lists.exposures.search(&q, on, limit)))),
        "sectors" => (&lists.sectors.version, hits(serde_json::to_value(lists.sectors.search(&q, on, limit)))),
        "occupations" => (&lists.occupations.version, hits(serde_json::to_value(lists.occupations.search(&q, on, limit)))),
        "services" => (&lists.services.version, hits(serde_json::to_value(lists.services.search(&q, on, limit)))),
        "guidelines" => (&lists.guidelines.version, hits(serde_json::to_value(lists.guidelines.search(&q, on, limit)))),
        other => {
            return Err(Problem::new(
                StatusCode::NOT_FOUND,
                "no-such-list",
                format!("no code list '{other}'; use diagnoses, exposures, sectors, occupations, services or guidelines"),
            ))
        }
    };
    Ok(Json(CodeListHits {
        list,
        version: version.clone(),
        items,
    }))
}

#[utoipa::path(
    post, path = "/api/v1/zero-reports", tag = "intake",
    request_body(content = ZeroReportBody, content_type = "application/json"),
    responses(
        (status = 202, description = "durably accepted", body = ZeroReportAccepted),
        errors::MalformedRequest,
        errors::BodyErrors,
        errors::AccessErrors
    )
)]
pub(crate) async fn file_zero_report(
    State(state): State<IntakeState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<ZeroReportAccepted>), Problem> {
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
    let answer = ZeroReportAccepted {
        period: zero.period.to_string(),
        status: "accepted".into(),
    };
    state
        .intake
        .publish(vec![Event::ZeroReport(zero)])
        .await
        .map_err(|e| intake_problem(IntakeError::Publish(e)))?;
    Ok((StatusCode::ACCEPTED, Json(answer)))
}
