//! The read-only statistics API.
//!
//! * `GET /api/v1/stats/summary` (analyst, admin): pipeline totals and counts per year.
//! * `GET /api/v1/stats/counts` (analyst, admin, sector fund): counts grouped by any of the
//!   dimensions of [`ods_store::Dimension`], filtered by the same dimensions and a period range,
//!   as JSON or CSV (`format=csv`).
//! * `GET /api/v1/stats/trend` (analyst, admin, sector fund): one series by month, quarter or
//!   year with the same filters, every period of the range present ([`trend`]).
//! * `GET /api/v1/stats/incidence` (analyst, admin, sector fund): notifications per 100,000
//!   worker-years by SBI section with exact Poisson (Garwood) 95% intervals, on the CBS
//!   workforce of the reference data ([`incidence`]).
//! * `GET /api/v1/stats/reporters` (analyst, admin): distinct reporters per period, the share
//!   of notifications from the most active 10% of reporters, and services whose reporters went
//!   silent ([`reporters`]).
//! * `GET /api/v1/signals`, `GET|PATCH /api/v1/signals/{id}`, `POST /api/v1/signals/sweep`
//!   (analyst, admin): the signals of the sweeps and their expert review ([`signals`]).
//!
//! Sector funds get only their own sectors: their answers are filtered to them (other sectors
//! are never shown, not refused), and they never see reporter-level data.
//!
//! Every answer goes through disclosure control ([`ods_store::disclosure`]): cells below 5
//! (sector funds: below 10 or from fewer than 3 reporting doctors) are `count: null,
//! suppressed: true`, with complementary suppression so no withheld cell can be derived from
//! totals, coarser queries or overlapping filters; a table that cannot be protected is
//! `withheld`. Bad parameters are answered 400 `application/problem+json` naming the parameter,
//! its value and the rule.

pub mod incidence;
mod params;
pub mod reporters;
pub mod signals;
pub mod trend;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRef, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ods_codelists::reference::ReferenceData;
use ods_http::{Caller, Problem, RateLimiter};
use ods_identity::{Principal, Role, TokenStore};
use ods_store::{AnalyticsStore, CountCell, CountQuery, Dimension, Policy, Summary};
use serde::Serialize;
use utoipa::OpenApi;

use crate::params::{Accepts, BadParam};

/// Answer of `GET /api/v1/stats/counts`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CountsAnswer {
    /// The grouped dimensions.
    pub group_by: Vec<String>,
    /// Counts below this are suppressed (5; sector funds 10).
    pub suppression_threshold: i64,
    /// A published cell comes from at least this many distinct reporters (sector funds: 3;
    /// otherwise 0, no such rule).
    pub min_reporters: usize,
    /// The table is too detailed to protect: no cell is listed (group by fewer or coarser
    /// dimensions).
    pub withheld: bool,
    /// The cells, ordered by their `group_by` values. Cells that are 0 are left out; a
    /// suppressed cell may be 0 (complementary suppression also hides empty cells).
    pub cells: Vec<CountCell>,
}

/// The statistics API.
#[derive(OpenApi)]
#[openapi(
    paths(
        summary,
        counts,
        trend::trend,
        incidence::incidence,
        reporters::reporters,
        signals::list,
        signals::detail,
        signals::change,
        signals::run_sweep
    ),
    components(schemas(
        CountsAnswer,
        CountCell,
        Summary,
        Problem,
        trend::TrendAnswer,
        trend::TrendPoint,
        incidence::IncidenceAnswer,
        incidence::IncidenceRow,
        incidence::RateStatus,
        incidence::Denominator,
        reporters::ReportersAnswer,
        reporters::ReporterPeriod,
        reporters::SilentService,
        signals::SignalList,
        signals::SignalDetail,
        signals::ReviewChange,
        signals::SweepAnswer,
        ods_store::SignalRecord,
        ods_store::AuditEntry,
        ods_store::SignalStatus
    )),
    security(("bearer" = [])),
    tags(
        (name = "statistics", description = "Analysts and sector funds ask"),
        (name = "signals", description = "Signals of the sweeps and their expert review (analysts, admins)")
    )
)]
pub struct QueryApi;

/// 401, 403, 429 and 503: what every statistics and signal route may answer
/// besides its own 200 and 400.
#[derive(utoipa::IntoResponses)]
pub enum StatsAccessErrors {
    /// 401.
    #[response(
        status = 401,
        description = "no or unknown token",
        content_type = "application/problem+json"
    )]
    Unauthenticated(Problem),
    /// 403.
    #[response(
        status = 403,
        description = "the token's role may not ask this (counts, trend, incidence: analyst, admin or sector fund; reporters, signals: analyst or admin)",
        content_type = "application/problem+json"
    )]
    Forbidden(Problem),
    /// 429.
    #[response(
        status = 429,
        description = "rate limit; see Retry-After",
        content_type = "application/problem+json"
    )]
    RateLimited(Problem),
    /// 503.
    #[response(
        status = 503,
        description = "store unavailable; retry after Retry-After",
        content_type = "application/problem+json"
    )]
    Unavailable(Problem),
}

/// Shared state of the query routes.
#[derive(Clone)]
pub struct QueryState {
    /// The store (embedded or ClickHouse).
    pub store: Arc<dyn AnalyticsStore>,
    /// Token store.
    pub tokens: Arc<TokenStore>,
    /// Per-token request limit.
    pub limiter: Arc<RateLimiter>,
    /// Reference data: the workforce denominators of `incidence`.
    pub reference: Arc<ReferenceData>,
}

impl FromRef<QueryState> for Arc<RateLimiter> {
    fn from_ref(state: &QueryState) -> Self {
        state.limiter.clone()
    }
}

impl FromRef<QueryState> for Arc<TokenStore> {
    fn from_ref(state: &QueryState) -> Self {
        state.tokens.clone()
    }
}

/// The query routes.
pub fn router(state: QueryState) -> Router {
    Router::new()
        .route("/api/v1/stats/summary", get(summary))
        .route("/api/v1/stats/counts", get(counts))
        .route("/api/v1/stats/trend", get(trend::trend))
        .route("/api/v1/stats/incidence", get(incidence::incidence))
        .route("/api/v1/stats/reporters", get(reporters::reporters))
        .route("/api/v1/signals", get(signals::list))
        .route("/api/v1/signals/sweep", post(signals::run_sweep))
        .route(
            "/api/v1/signals/{id}",
            get(signals::detail).patch(signals::change),
        )
        .with_state(state)
}

pub(crate) fn store_problem(e: ods_store::StoreError) -> Problem {
    tracing::error!(error = %e, "store query failed");
    Problem::unavailable("the store could not answer; retry shortly", 2)
}

/// The roles that may ask for statistics, and the sector scope of a sector fund.
pub(crate) fn statistics_caller(caller: &Caller) -> Result<Option<Vec<String>>, Problem> {
    match caller.require(&[Role::Analyst, Role::Admin, Role::SectorFund])? {
        Principal::SectorFund { sectors } => Ok(Some(sectors.clone())),
        _ => Ok(None),
    }
}

/// Pipeline totals.
#[utoipa::path(
    get, path = "/api/v1/stats/summary", tag = "statistics",
    responses(
        (status = 200, description = "totals and counts per year (suppressed below 5)", body = Summary),
        (status = 401, description = "no or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "analyst or admin only", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "rate limit", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "store unavailable", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn summary(State(state): State<QueryState>, caller: Caller) -> Response {
    if let Err(p) = caller.require(&[Role::Analyst, Role::Admin]) {
        return p.into_response();
    }
    match state.store.summary().await {
        Ok(summary) => Json(summary).into_response(),
        Err(e) => store_problem(e).into_response(),
    }
}

fn parse_counts_query(params: &HashMap<String, String>) -> Result<(CountQuery, bool), BadParam> {
    let common = params::common(
        params,
        &Accepts {
            own: &["group_by"],
            period_filters: true,
            refused: &[],
        },
    )?;
    let mut query = common.query;
    if let Some(value) = params.get("group_by") {
        query.group_by = params::group_by(value)?;
    }
    params::check_size(&query)?;
    Ok((query, common.csv))
}

/// A CSV field, quoted when needed.
pub(crate) fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

fn to_csv(group_by: &[Dimension], cells: &[CountCell]) -> String {
    let mut out = String::new();
    for d in group_by {
        out.push_str(d.name());
        out.push(',');
    }
    out.push_str("count,suppressed\n");
    for c in cells {
        for d in group_by {
            let v = c.dimensions.get(d.name()).cloned().unwrap_or_default();
            out.push_str(&csv_field(&v));
            out.push(',');
        }
        out.push_str(&c.count.map(|n| n.to_string()).unwrap_or_default());
        out.push_str(if c.suppressed { ",true\n" } else { ",false\n" });
    }
    out
}

/// A CSV answer, with `X-Ods-Withheld: true` when the table is withheld.
pub(crate) fn csv_response(body: String, withheld: bool) -> Response {
    let mut response = ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response();
    if withheld {
        response.headers_mut().insert(
            "x-ods-withheld",
            axum::http::HeaderValue::from_static("true"),
        );
    }
    response
}

/// Counts with disclosure control.
#[utoipa::path(
    get, path = "/api/v1/stats/counts", tag = "statistics",
    params(
        ("group_by" = Option<String>, Query, description = "comma-separated: year, quarter, month, sector, sbi_section, diagnosis_group, diagnosis, exposure_group, exposure, sex, age_band, detection_route, consequence"),
        ("from" = Option<String>, Query, pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])$", description = "first month, YYYY-MM"),
        ("to" = Option<String>, Query, pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])$", description = "last month, YYYY-MM"),
        ("format" = Option<String>, Query, pattern = r"^(json|csv)$", description = "json (default) or csv"),
        ("sbi_section" = Option<String>, Query, description = "filter: comma-separated values; every group_by dimension can filter the same way")
    ),
    responses(
        (status = 200, description = "cells; counts below the threshold are null with suppressed: true, and complementary suppression hides what could be derived (CSV: `X-Ods-Withheld: true` when the table is withheld)", content(
            (CountsAnswer = "application/json"),
            (String = "text/csv")
        )),
        (status = 400, description = "unknown dimension or parameter, malformed period, too much detail: names the parameter, value and rule", body = Problem, content_type = "application/problem+json"),
        StatsAccessErrors
    )
)]
pub(crate) async fn counts(
    State(state): State<QueryState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let scope = match statistics_caller(&caller) {
        Ok(scope) => scope,
        Err(p) => return p.into_response(),
    };
    let (mut query, csv) = match parse_counts_query(&params) {
        Ok(q) => q,
        Err(e) => return e.problem().into_response(),
    };
    query.sector_scope = scope;
    let policy = Policy::of(&query);
    let group_by = query.group_by.clone();
    match state.store.counts(&query).await {
        Ok(answer) if csv => csv_response(to_csv(&group_by, &answer.cells), answer.withheld),
        Ok(answer) => Json(CountsAnswer {
            group_by: group_by.iter().map(|d| d.name().to_string()).collect(),
            suppression_threshold: policy.min_count,
            min_reporters: policy.min_reporters,
            withheld: answer.withheld,
            cells: answer.cells,
        })
        .into_response(),
        Err(e) => store_problem(e).into_response(),
    }
}
