//! The read-only statistics API.
//!
//! * `GET /api/v1/stats/summary` (analyst, admin): pipeline totals and counts per year.
//! * `GET /api/v1/stats/counts` (analyst, admin, sector fund): counts grouped by any of the
//!   dimensions of [`ods_store::Dimension`], filtered by the same dimensions and a period range,
//!   as JSON or CSV (`format=csv`). Sector funds get only their own sectors: their answers are
//!   filtered to them (other sectors are never shown, not refused).
//!
//! Every published count below 5 is suppressed (`count: null, suppressed: true`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRef, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use ods_http::{Caller, Problem, RateLimiter};
use ods_identity::{Principal, Role, TokenStore};
use ods_model::Period;
use ods_store::{AnalyticsStore, CountCell, CountQuery, Dimension, Summary};
use serde::Serialize;
use utoipa::OpenApi;

/// Answer of `GET /api/v1/stats/counts`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CountsAnswer {
    /// The grouped dimensions.
    pub group_by: Vec<String>,
    /// Counts below this are suppressed.
    pub suppression_threshold: i64,
    /// The cells.
    pub cells: Vec<CountCell>,
}

/// The statistics API.
#[derive(OpenApi)]
#[openapi(
    paths(summary, counts),
    components(schemas(CountsAnswer, CountCell, Summary, Problem)),
    security(("bearer" = [])),
    tags((name = "statistics", description = "Analysts and sector funds ask"))
)]
pub struct QueryApi;

/// Shared state of the query routes.
#[derive(Clone)]
pub struct QueryState {
    /// The store (embedded or ClickHouse).
    pub store: Arc<dyn AnalyticsStore>,
    /// Token store.
    pub tokens: Arc<TokenStore>,
    /// Per-token request limit.
    pub limiter: Arc<RateLimiter>,
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
        .with_state(state)
}

fn store_problem(e: ods_store::StoreError) -> Problem {
    tracing::error!(error = %e, "store query failed");
    Problem::unavailable("the store could not answer; retry shortly", 2)
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

fn bad_request(detail: String) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, "bad-query", detail)
}

fn parse_counts_query(params: &HashMap<String, String>) -> Result<(CountQuery, bool), Problem> {
    let mut query = CountQuery::default();
    let mut csv = false;
    let names: Vec<&str> = Dimension::ALL.iter().map(|d| d.name()).collect();
    for (key, value) in params {
        match key.as_str() {
            "group_by" => {
                for name in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let d = Dimension::parse(name).ok_or_else(|| {
                        bad_request(format!(
                            "group_by: unknown dimension '{name}'; use any of {}",
                            names.join(", ")
                        ))
                    })?;
                    if query.group_by.contains(&d) {
                        return Err(bad_request(format!("group_by lists '{name}' twice")));
                    }
                    query.group_by.push(d);
                }
            }
            "from" | "to" => {
                let p = Period::parse(value).map_err(|e| bad_request(format!("{key}: {e}")))?;
                if key == "from" {
                    query.from = Some(p.to_string());
                } else {
                    query.to = Some(p.to_string());
                }
            }
            "format" => match value.as_str() {
                "json" => csv = false,
                "csv" => csv = true,
                other => return Err(bad_request(format!("format '{other}': use json or csv"))),
            },
            other => {
                let d = Dimension::parse(other).ok_or_else(|| {
                    bad_request(format!(
                        "unknown parameter '{other}'; use group_by, from, to, format or a dimension filter ({})",
                        names.join(", ")
                    ))
                })?;
                let values = value
                    .split(',')
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
                    .collect();
                query.filters.push((d, values));
            }
        }
    }
    query.filters.sort();
    Ok((query, csv))
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
            if v.contains([',', '"', '\n']) {
                out.push_str(&format!("\"{}\"", v.replace('"', "\"\"")));
            } else {
                out.push_str(&v);
            }
            out.push(',');
        }
        out.push_str(&c.count.map(|n| n.to_string()).unwrap_or_default());
        out.push_str(if c.suppressed { ",true\n" } else { ",false\n" });
    }
    out
}

/// Counts with disclosure control.
#[utoipa::path(
    get, path = "/api/v1/stats/counts", tag = "statistics",
    params(
        ("group_by" = Option<String>, Query, description = "comma-separated: year, quarter, month, sector, sbi_section, diagnosis_group, diagnosis, exposure_group, exposure, sex, age_band, detection_route, consequence"),
        ("from" = Option<String>, Query, description = "first month, YYYY-MM"),
        ("to" = Option<String>, Query, description = "last month, YYYY-MM"),
        ("format" = Option<String>, Query, description = "json (default) or csv"),
        ("sbi_section" = Option<String>, Query, description = "filter: comma-separated values; every group_by dimension can filter the same way")
    ),
    responses(
        (status = 200, description = "cells; counts below 5 are null with suppressed: true", body = CountsAnswer),
        (status = 400, description = "unknown dimension or parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "analyst, admin or sector fund only", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "rate limit", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "store unavailable", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn counts(
    State(state): State<QueryState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let principal = match caller.require(&[Role::Analyst, Role::Admin, Role::SectorFund]) {
        Ok(p) => p.clone(),
        Err(p) => return p.into_response(),
    };
    let (mut query, csv) = match parse_counts_query(&params) {
        Ok(q) => q,
        Err(p) => return p.into_response(),
    };
    if let Principal::SectorFund { sectors } = principal {
        query.sector_scope = Some(sectors);
    }
    let group_by = query.group_by.clone();
    match state.store.counts(&query).await {
        Ok(cells) if csv => (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            to_csv(&group_by, &cells),
        )
            .into_response(),
        Ok(cells) => Json(CountsAnswer {
            group_by: group_by.iter().map(|d| d.name().to_string()).collect(),
            suppression_threshold: ods_store::SUPPRESSION_THRESHOLD,
            cells,
        })
        .into_response(),
        Err(e) => store_problem(e).into_response(),
    }
}
