//! The signals and their expert review (analysts and admins only):
//!
//! * `GET /api/v1/signals?kind=&status=&sector=`: the recorded signals, newest first, each with
//!   the numbers that raised it and a one-line explanation;
//! * `GET /api/v1/signals/{id}`: one signal with its audit trail;
//! * `PATCH /api/v1/signals/{id}` `{"status", "note", "revision"}`: a review change (`new ->
//!   under_review -> confirmed | dismissed`; confirming or dismissing needs a note), kept in the
//!   audit trail with the reviewer's token id;
//! * `POST /api/v1/signals/sweep?as_of=YYYY-MM`: a sweep on demand (default: the previous
//!   month); signals already recorded keep their review state.
//!
//! Signals carry unsuppressed counts (the numbers that raised them) for expert review, so sector
//! funds do not see them (403); they see their sectors' published statistics instead.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ods_http::{Caller, Problem};
use ods_identity::Role;
use ods_model::Period;
use ods_store::review::{review, ReviewError};
use ods_store::{AuditEntry, SignalRecord, SignalStatus};
use ods_sweep::{SweepConfig, SweepOutcome};
use serde::{Deserialize, Serialize};

use crate::params::BadParam;
use crate::{store_problem, QueryState, StatsAccessErrors};

/// The kinds of signal.
pub const KINDS: [&str; 4] = [
    "aberration",
    "under_reporting",
    "emerging_pair",
    "silent_service",
];

/// Answer of `GET /api/v1/signals`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignalList {
    /// How many signals match.
    pub count: usize,
    /// The signals, newest detection first.
    pub signals: Vec<SignalRecord>,
}

/// Answer of `GET /api/v1/signals/{id}` and `PATCH`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignalDetail {
    /// The signal at its latest revision.
    pub signal: SignalRecord,
    /// Every review change, oldest first.
    pub audit: Vec<AuditEntry>,
}

/// Body of `PATCH /api/v1/signals/{id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewChange {
    /// The new status: `under_review` (from `new`), `confirmed` or `dismissed` (from
    /// `under_review`).
    pub status: String,
    /// Why (required to confirm or dismiss; at most 2000 characters are kept).
    #[serde(default)]
    pub note: String,
    /// The revision you read: when given and the signal changed since, the answer is 412.
    #[serde(default)]
    pub revision: Option<u64>,
}

/// Answer of `POST /api/v1/signals/sweep`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SweepAnswer {
    /// The as-of month.
    pub as_of: String,
    /// Ids of every signal the sweep raised.
    pub raised: Vec<String>,
    /// How many of them were new.
    pub new: usize,
}

impl From<SweepOutcome> for SweepAnswer {
    fn from(o: SweepOutcome) -> Self {
        SweepAnswer {
            as_of: o.as_of,
            raised: o.raised,
            new: o.new,
        }
    }
}

fn reviewer(caller: &Caller) -> Result<(), Problem> {
    caller.require(&[Role::Analyst, Role::Admin]).map(|_| ())
}

fn one_of(
    parameter: &str,
    value: &str,
    allowed: &[&str],
    rule: &'static str,
) -> Result<(), BadParam> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(BadParam::new(
            parameter,
            value,
            rule,
            format!("use one of {}", allowed.join(", ")),
        ))
    }
}

fn parse_list(params: &HashMap<String, String>) -> Result<(), BadParam> {
    let mut names: Vec<&String> = params.keys().collect();
    names.sort();
    for name in names {
        let value = &params[name];
        match name.as_str() {
            "kind" => one_of("kind", value, &KINDS, "known_kind")?,
            "status" => {
                let statuses: Vec<&str> = SignalStatus::ALL.iter().map(|s| s.as_str()).collect();
                one_of("status", value, &statuses, "known_status")?
            }
            "sector" => {}
            _ => {
                return Err(BadParam::new(
                    name,
                    value,
                    "known_parameter",
                    "unknown parameter; use kind, status or sector",
                ))
            }
        }
    }
    Ok(())
}

/// Whether a signal matches the list filters.
fn matches(s: &SignalRecord, params: &HashMap<String, String>) -> bool {
    params.get("kind").is_none_or(|k| s.kind == *k)
        && params
            .get("status")
            .is_none_or(|st| s.status.as_str() == st)
        && params.get("sector").is_none_or(|sector| {
            ["sbi_section", "sector"]
                .iter()
                .any(|k| s.subject.get(*k) == Some(sector))
        })
}

/// The recorded signals.
#[utoipa::path(
    get, path = "/api/v1/signals", tag = "signals",
    params(
        ("kind" = Option<String>, Query, pattern = r"^(aberration|under_reporting|emerging_pair|silent_service)$", description = "only this kind"),
        ("status" = Option<String>, Query, pattern = r"^(new|under_review|confirmed|dismissed)$", description = "only this review status"),
        ("sector" = Option<String>, Query, description = "only signals about this SBI section (or sector code)")
    ),
    responses(
        (status = 200, description = "the signals, newest detection first", body = SignalList),
        (status = 400, description = "unknown parameter, kind or status: names the parameter, value and rule", body = Problem, content_type = "application/problem+json"),
        StatsAccessErrors
    )
)]
pub(crate) async fn list(
    State(state): State<QueryState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Err(p) = reviewer(&caller) {
        return p.into_response();
    }
    if let Err(e) = parse_list(&params) {
        return e.problem().into_response();
    }
    match state.store.signals().await {
        Ok(all) => {
            let signals: Vec<SignalRecord> =
                all.into_iter().filter(|s| matches(s, &params)).collect();
            Json(SignalList {
                count: signals.len(),
                signals,
            })
            .into_response()
        }
        Err(e) => store_problem(e).into_response(),
    }
}

fn not_found(id: &str) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not-found",
        format!("no signal {id:?}"),
    )
}

/// The stored signal and its audit trail as an answer (404 when unknown).
async fn detail_response(state: &QueryState, id: &str) -> Response {
    match state.store.signal(id).await {
        Ok(Some((signal, audit))) => Json(SignalDetail { signal, audit }).into_response(),
        Ok(None) => not_found(id).into_response(),
        Err(e) => store_problem(e).into_response(),
    }
}

/// One signal with its audit trail.
#[utoipa::path(
    get, path = "/api/v1/signals/{id}", tag = "signals",
    params(("id" = String, Path, description = "signal id")),
    responses(
        (status = 200, description = "the signal and every review change", body = SignalDetail),
        (status = 404, description = "no such signal", body = Problem, content_type = "application/problem+json"),
        StatsAccessErrors
    )
)]
pub(crate) async fn detail(
    State(state): State<QueryState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Response {
    if let Err(p) = reviewer(&caller) {
        return p.into_response();
    }
    detail_response(&state, &id).await
}

fn review_problem(e: &ReviewError) -> Problem {
    let (status, rule) = match e {
        ReviewError::Stale { .. } => (StatusCode::PRECONDITION_FAILED, "current_revision"),
        ReviewError::Transition { .. } => (StatusCode::CONFLICT, "allowed_transition"),
        ReviewError::NoteRequired => (StatusCode::UNPROCESSABLE_ENTITY, "note_required"),
    };
    let mut p = Problem::new(status, "review", e.to_string());
    p.violations = Some(Box::new(serde_json::json!([{
        "field": match e { ReviewError::NoteRequired => "note", ReviewError::Stale { .. } => "revision", ReviewError::Transition { .. } => "status" },
        "rule": rule,
        "message": e.to_string(),
    }])));
    p
}

/// A review change.
#[utoipa::path(
    patch, path = "/api/v1/signals/{id}", tag = "signals",
    params(("id" = String, Path, description = "signal id")),
    request_body = ReviewChange,
    responses(
        (status = 200, description = "the signal after the change, with its audit trail", body = SignalDetail),
        (status = 400, description = "malformed body or unknown status", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such signal", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "the transition is not allowed from the current status", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "the signal changed since the given revision: read it again", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "confirming or dismissing without a note", body = Problem, content_type = "application/problem+json"),
        StatsAccessErrors
    )
)]
pub(crate) async fn change(
    State(state): State<QueryState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(p) = reviewer(&caller) {
        return p.into_response();
    }
    let change: ReviewChange = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            return Problem::new(
                StatusCode::BAD_REQUEST,
                "bad-body",
                format!("the body must be {{\"status\", \"note\", \"revision\"}}: {e}"),
            )
            .into_response()
        }
    };
    let Some(to) = SignalStatus::parse(&change.status) else {
        let statuses: Vec<&str> = SignalStatus::ALL.iter().map(|s| s.as_str()).collect();
        return BadParam::new(
            "status",
            &change.status,
            "known_status",
            format!("use one of {}", statuses.join(", ")),
        )
        .problem()
        .into_response();
    };
    let current = match state.store.signal(&id).await {
        Ok(Some((signal, _))) => signal,
        Ok(None) => return not_found(&id).into_response(),
        Err(e) => return store_problem(e).into_response(),
    };
    let (updated, entry) = match review(
        &current,
        to,
        &caller.1,
        &change.note,
        change.revision,
        ods_sweep::now_ms(),
    ) {
        Ok(r) => r,
        Err(e) => return review_problem(&e).into_response(),
    };
    match state.store.save_review(&updated, &entry).await {
        Ok(true) => {}
        Ok(false) => {
            let mut p = Problem::new(
                StatusCode::PRECONDITION_FAILED,
                "review",
                format!(
                    "the signal changed since revision {} while you changed it: read it again",
                    current.revision
                ),
            );
            p.violations = Some(Box::new(serde_json::json!([{
                "field": "revision", "rule": "current_revision", "message": p.detail.clone(),
            }])));
            return p.into_response();
        }
        Err(e) => return store_problem(e).into_response(),
    }
    tracing::info!(signal = %id, from = current.status.as_str(), to = to.as_str(), actor = %caller.1, "signal reviewed");
    detail_response(&state, &id).await
}

/// A sweep on demand.
#[utoipa::path(
    post, path = "/api/v1/signals/sweep", tag = "signals",
    params(("as_of" = Option<String>, Query, pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])$", description = "the last month considered, YYYY-MM (default: the previous month)")),
    responses(
        (status = 200, description = "what the sweep raised and how many signals were new", body = SweepAnswer),
        (status = 400, description = "unknown parameter, malformed month, or a month not complete yet", body = Problem, content_type = "application/problem+json"),
        StatsAccessErrors
    )
)]
pub(crate) async fn run_sweep(
    State(state): State<QueryState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Err(p) = reviewer(&caller) {
        return p.into_response();
    }
    if let Some(name) = params.keys().find(|k| k.as_str() != "as_of") {
        return BadParam::new(
            name,
            &params[name],
            "known_parameter",
            "unknown parameter; use as_of",
        )
        .problem()
        .into_response();
    }
    let now = ods_sweep::now_ms();
    let as_of = match params.get("as_of") {
        Some(v) => match Period::parse(v) {
            Ok(p) => match ods_sweep::check_as_of(p, now) {
                Ok(p) => p,
                Err(e) => {
                    return BadParam::new("as_of", v, "complete_month", e.to_string())
                        .problem()
                        .into_response()
                }
            },
            Err(e) => {
                return BadParam::new("as_of", v, "period_format", e.to_string())
                    .problem()
                    .into_response()
            }
        },
        None => ods_sweep::previous_month(now),
    };
    let config = SweepConfig::as_of(as_of);
    match ods_sweep::sweep_and_record(state.store.as_ref(), &state.reference, &config, now).await {
        Ok(outcome) => {
            tracing::info!(as_of = %outcome.as_of, raised = outcome.raised.len(), new = outcome.new, actor = %caller.1, "signal sweep on demand");
            Json(SweepAnswer::from(outcome)).into_response()
        }
        Err(ods_sweep::SweepError::Store(e)) => store_problem(e).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "signal sweep failed");
            Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "sweep", e.to_string()).into_response()
        }
    }
}
