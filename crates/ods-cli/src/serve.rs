//! `ods serve` (distributed mode): the read-only statistics API over the ClickHouse store.

use std::sync::Arc;

use anyhow::{Context, Result};
use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use ods_clickhouse::ClickHouseStore;
use ods_http::{HttpMetrics, RateLimiter};
use ods_identity::TokenStore;
use ods_query::QueryState;
use ods_store::AnalyticsStore;
use prometheus::Registry;
use tower_http::trace::TraceLayer;

use crate::config::Config;

#[derive(Clone)]
struct ServeOps {
    store: Arc<ClickHouseStore>,
    registry: Registry,
}

/// Serves `/api/v1/stats/*` from ClickHouse with the tokens of the data directory, plus
/// `/healthz`, `/readyz` (ClickHouse answers), `/metrics` and the OpenAPI document, until
/// SIGINT/SIGTERM (in-flight requests finish). Any number of instances can run side by side.
pub async fn run_serve(config: Config) -> Result<()> {
    if config.clickhouse.url.is_empty() {
        anyhow::bail!("ods serve needs ClickHouse: --clickhouse-url http://host:8123 (or ODS_CLICKHOUSE_URL, or [clickhouse] url in the config file)");
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let tokens = Arc::new(TokenStore::open(&config.tokens_path())?);
    let store = Arc::new(
        ClickHouseStore::connect(&config.clickhouse)
            .await
            .with_context(|| format!("connecting to ClickHouse at {}", config.clickhouse.url))?,
    );
    let reference = Arc::new(config.reference_data()?);
    let registry = Registry::new();
    let http = HttpMetrics::register(&registry, "ods_query")?;
    let limiter = Arc::new(RateLimiter::new(
        config.rate_limit_per_minute,
        config.rate_limit_burst,
    ));
    let app = Router::new()
        .merge(
            ods_query::router(QueryState {
                store: store.clone() as Arc<dyn AnalyticsStore>,
                tokens,
                limiter,
                reference: reference.clone(),
            })
            .route_layer(from_fn_with_state(http, HttpMetrics::track)),
        )
        .merge(
            Router::new()
                .route("/healthz", get(|| async { "ok\n" }))
                .route("/readyz", get(readyz))
                .route("/metrics", get(metrics_text))
                .route("/api/v1/openapi.json", get(openapi))
                .with_state(ServeOps {
                    store: store.clone(),
                    registry,
                }),
        )
        .layer(TraceLayer::new_for_http());
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let address = listener.local_addr()?;
    println!(
        "ods serve is running at http://{address}  (statistics from ClickHouse {} database {})",
        config.clickhouse.url, config.clickhouse.database
    );
    let sweeps = crate::config::schedule_signal_sweeps(
        &config,
        store.clone() as Arc<dyn AnalyticsStore>,
        reference,
    );
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(crate::server::shutdown_signal())
        .await;
    if let Some(sweeps) = sweeps {
        sweeps.abort();
    }
    served.context("serving HTTP")?;
    tracing::info!("stopped");
    Ok(())
}

async fn readyz(State(ops): State<ServeOps>) -> Response {
    let store = ops.store.totals().await.is_ok();
    let body = serde_json::json!({ "ready": store, "store": store });
    let status = if store {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics_text(State(ops): State<ServeOps>) -> Response {
    ods_http::render_metrics(&ops.registry)
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    use utoipa::OpenApi;
    Json(ods_query::QueryApi::openapi())
}
