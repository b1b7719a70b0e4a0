//! Shared HTTP plumbing: [`Problem`] (RFC 9457 `application/problem+json`), the [`Caller`]
//! extractor (bearer token -> [`ods_identity::Principal`]) and [`HttpMetrics`].

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{FromRef, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ods_identity::{Principal, Role, TokenStore};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use serde::Serialize;

/// An error answer in `application/problem+json` (RFC 9457).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the problem type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What happened and what to do.
    pub detail: String,
    /// Every rule violation, for 422 answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub violations: Option<Box<serde_json::Value>>,
    /// Seconds to wait before retrying (also sent as `Retry-After`).
    #[serde(skip)]
    #[schema(ignore)]
    pub retry_after: Option<u64>,
}

impl Problem {
    /// A problem with a status, a type slug and a detail.
    pub fn new(status: StatusCode, slug: &str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("https://ods.invalid/problems/{slug}"),
            title: status.canonical_reason().unwrap_or("error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            violations: None,
            retry_after: None,
        }
    }

    /// 401: no or unknown token.
    pub fn unauthorized() -> Self {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send a valid token as 'Authorization: Bearer <token>' (create one with 'ods tokens create')",
        )
    }

    /// 403: the token's role may not do this.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 503 with `Retry-After`.
    pub fn unavailable(detail: impl Into<String>, retry_after: u64) -> Self {
        let mut p = Problem::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail);
        p.retry_after = Some(retry_after);
        p
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

/// The authenticated caller of a request: the principal and the public id of its token.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal, pub String);

/// A per-token request limit (token bucket): `per_minute` sustained, `burst` at once.
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: std::sync::Mutex<std::collections::HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// A limiter allowing `per_minute` requests per token on average and `burst` at once.
    pub fn new(per_minute: u32, burst: u32) -> Self {
        RateLimiter {
            per_second: f64::from(per_minute.max(1)) / 60.0,
            burst: f64::from(burst.max(1)),
            buckets: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// Takes one request from `key`'s bucket, or says how many seconds to wait.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        let mut buckets = match self.buckets.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        let now = Instant::now();
        let (tokens, last) = buckets.entry(key.to_string()).or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*last).as_secs_f64() * self.per_second).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.per_second).ceil().max(1.0) as u64)
        }
    }
}

impl Caller {
    /// Fails with 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<&Principal, Problem> {
        if roles.contains(&self.0.role()) {
            Ok(&self.0)
        } else {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            Err(Problem::forbidden(format!(
                "this needs a token with role {}; yours is {}",
                names.join(" or "),
                self.0.role().as_str()
            )))
        }
    }
}

impl<S> FromRequestParts<S> for Caller
where
    Arc<TokenStore>: FromRef<S>,
    Arc<RateLimiter>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_string())
            .ok_or_else(Problem::unauthorized)?;
        let store = Arc::<TokenStore>::from_ref(state);
        // a token resolved before, in an unchanged database, is answered here; a lookup waits
        // for SQLite, so it goes to a blocking thread
        let found = match store.authenticate_if_cached(&token) {
            Some(found) => Ok(Some(found)),
            None => tokio::task::spawn_blocking(move || store.authenticate_with_id(&token))
                .await
                .map_err(|_| Problem::unavailable("token check was interrupted", 1))?,
        };
        match found {
            Ok(Some((id, principal))) => {
                let limiter = Arc::<RateLimiter>::from_ref(state);
                limiter.check(&id).map_err(|wait| {
                    let mut p = Problem::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        "rate-limited",
                        format!("too many requests with this token; retry in {wait} s"),
                    );
                    p.retry_after = Some(wait);
                    p
                })?;
                Ok(Caller(principal, id))
            }
            Ok(None) => Err(Problem::unauthorized()),
            Err(e) => {
                tracing::error!(error = %e, "token store failed");
                Err(Problem::unavailable("the token store is unavailable", 2))
            }
        }
    }
}

/// Request counters and latency histograms, labelled by matched route and status.
#[derive(Clone)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl HttpMetrics {
    /// Registers `<prefix>_requests_total{route,status}` and
    /// `<prefix>_request_duration_seconds{route}` in `registry`.
    pub fn register(registry: &Registry, prefix: &str) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new(
                format!("{prefix}_requests_total"),
                "HTTP requests by route and status",
            ),
            &["route", "status"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                format!("{prefix}_request_duration_seconds"),
                "HTTP request duration by route",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["route"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(HttpMetrics { requests, duration })
    }

    /// Middleware recording every request (use with `axum::middleware::from_fn_with_state`).
    pub async fn track(
        State(metrics): State<HttpMetrics>,
        request: Request,
        next: Next,
    ) -> Response {
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "unmatched".to_string());
        let started = Instant::now();
        let response = next.run(request).await;
        metrics
            .requests
            .with_label_values(&[route.as_str(), response.status().as_str()])
            .inc();
        metrics
            .duration
            .with_label_values(&[route.as_str()])
            .observe(started.elapsed().as_secs_f64());
        response
    }
}

/// Renders a registry in the Prometheus text format.
pub fn render_metrics(registry: &Registry) -> Response {
    use prometheus::Encoder;
    let encoder = prometheus::TextEncoder::new();
    let mut buffer = Vec::new();
    if let Err(e) = encoder.encode(&registry.gather(), &mut buffer) {
        return Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "metrics", e.to_string())
            .into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        buffer,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_the_burst_then_asks_to_wait() {
        let limiter = RateLimiter::new(60, 3);
        for _ in 0..3 {
            assert_eq!(limiter.check("a"), Ok(()));
        }
        assert_eq!(limiter.check("a"), Err(1), "one request per second refills");
        assert_eq!(limiter.check("b"), Ok(()), "buckets are per token");
    }

    #[test]
    fn problems_are_problem_json_with_retry_after() {
        let response = Problem::unavailable("busy", 7).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
    }
}
