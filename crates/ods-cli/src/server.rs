//! `ods run`: every stage in one process.

use std::sync::Arc;

use anyhow::{Context, Result};
use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use ods_http::HttpMetrics;
use ods_identity::TokenStore;
use ods_intake::{
    EmbeddedSink, Intake, IntakeMetrics, IntakeRegistry, IntakeState, ProcessingStatus,
    StatusSource,
};
use ods_log::EmbeddedLog;
use ods_processor::Processor;
use ods_query::QueryState;
use ods_runner::{embedded, ProcessorMetrics};
use ods_store::EmbeddedStore;
use ods_validation::Limits;
use prometheus::Registry;
use tokio::sync::watch;
use tower_http::trace::TraceLayer;

use crate::config::Config;

#[derive(Clone)]
struct OpsState {
    log: Arc<EmbeddedLog>,
    store: Arc<EmbeddedStore>,
    registry: Registry,
    processor: ProcessorMetrics,
    codelists: Vec<(String, String)>,
}

/// Runs until SIGINT/SIGTERM, then drains: the server stops taking requests, in-flight requests
/// finish, the processor finishes its batch, every task is joined.
pub async fn run(config: Config, demo: bool) -> Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let _lock =
        crate::data_dir_lock::DataDirLock::acquire(&config.data_dir)?.map_err(|holder| {
            anyhow::anyhow!(
                "another `ods run` uses the data directory {}: {holder}",
                config.data_dir.display()
            )
        })?;
    let lists = Arc::new(config.code_lists().context("loading code lists")?);
    let reference = Arc::new(config.reference_data()?);
    let key = config
        .pseudonym_key()
        .context("loading the pseudonym key")?;
    let tokens = Arc::new(TokenStore::open(&config.tokens_path())?);
    let log = EmbeddedLog::open(&config.log_path(), config.log_queue_capacity)?;
    let store = Arc::new(EmbeddedStore::open(&config.store_path())?);
    // the registry lives in the log's database and is updated in each append's transaction
    // (data directories from before kept it in intake.sqlite: its idempotency keys move over,
    // the rest is rebuilt from the log by the catch-up below)
    let registry = Arc::new(IntakeRegistry::open_in_log(
        &log,
        Some(&config.data_dir.join("intake.sqlite")),
    )?);
    {
        let (registry, log) = (registry.clone(), log.clone());
        let caught_up = tokio::task::spawn_blocking(move || registry.catch_up(&log))
            .await
            .context("registry catch-up task")??;
        tracing::info!(
            records = caught_up,
            "intake registry caught up with the log"
        );
    }

    let metrics_registry = Registry::new();
    let intake_http = HttpMetrics::register(&metrics_registry, "ods_intake")?;
    let query_http = HttpMetrics::register(&metrics_registry, "ods_query")?;
    let intake = Arc::new(Intake::new(
        lists.clone(),
        Limits::default(),
        Arc::new(EmbeddedSink::new(log.clone())),
        registry,
        IntakeMetrics::register(&metrics_registry)?,
    ));
    let processor = Arc::new(Processor::new(lists.clone(), Limits::default()));
    let processor_metrics = ProcessorMetrics::register(&metrics_registry)?;

    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| {
            format!(
                "binding {} (is another ods running? use --listen)",
                config.listen
            )
        })?;
    let address = listener.local_addr()?;

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let processor_task = tokio::spawn(embedded::run(
        log.clone(),
        store.clone(),
        processor,
        config.processor_batch_size,
        processor_metrics.clone(),
        shutdown_rx.clone(),
    ));

    let limiter = Arc::new(ods_http::RateLimiter::new(
        config.rate_limit_per_minute,
        config.rate_limit_burst,
    ));
    let ops = OpsState {
        log: log.clone(),
        store: store.clone(),
        registry: metrics_registry.clone(),
        processor: processor_metrics,
        codelists: lists
            .versions()
            .into_iter()
            .map(|(f, v)| (f.to_string(), v.to_string()))
            .collect(),
    };
    let app = Router::new()
        .merge(
            ods_intake::router(IntakeState {
                intake: intake.clone(),
                tokens: tokens.clone(),
                limiter: limiter.clone(),
                status: Some(Arc::new(StoreStatus(store.clone()))),
            })
            .route_layer(from_fn_with_state(intake_http, HttpMetrics::track)),
        )
        .merge(
            ods_query::router(QueryState {
                store: store.clone(),
                tokens: tokens.clone(),
                limiter,
                reference: reference.clone(),
            })
            .route_layer(from_fn_with_state(query_http, HttpMetrics::track)),
        )
        .merge(
            Router::new()
                .route("/", get(index))
                .route("/healthz", get(healthz))
                .route("/readyz", get(readyz))
                .route("/metrics", get(metrics))
                .route("/api/v1/openapi.json", get(openapi))
                .with_state(ops),
        )
        .layer(TraceLayer::new_for_http());

    tracing::info!(%address, data_dir = %config.data_dir.display(), "ods is serving");
    println!(
        "ods is running at http://{address}  (GET /healthz, /readyz, /metrics; API under /api/v1)"
    );
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await
    });

    if demo {
        crate::demo::prepare(&config.data_dir, &intake, &tokens, &key, &log).await?;
    }

    let sweeps = crate::config::schedule_signal_sweeps(&config, store.clone(), reference);

    let served = server.await.context("server task")?;
    if let Some(sweeps) = sweeps {
        sweeps.abort();
    }
    tracing::info!("shutting down: draining the processor");
    let _ = shutdown_tx.send(true);
    processor_task.await.context("processor task")?;
    served.context("serving HTTP")?;
    tracing::info!("stopped");
    Ok(())
}

/// The processing status of notifications, read from the embedded store.
struct StoreStatus(Arc<EmbeddedStore>);

impl StatusSource for StoreStatus {
    fn status(&self, id: &str) -> Option<ProcessingStatus> {
        match self.0.notification(id) {
            Ok(Some(view)) => Some(ProcessingStatus {
                version: u32::try_from(view.version).unwrap_or(0),
                status: view.status,
                reasons: view.reasons,
            }),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "status lookup failed");
                None
            }
        }
    }
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

/// Readiness: the log writer takes appends and the store answers.
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()), responses(
    (status = 200, description = "ready", body = Object),
    (status = 503, description = "not ready", body = Object)
))]
async fn readyz(State(ops): State<OpsState>) -> Response {
    let log_writer = ops.log.is_open();
    let store = ops.store.clone();
    let store_ok =
        tokio::task::spawn_blocking(move || store.checkpoint(embedded::EMBEDDED_SOURCE).is_ok())
            .await
            .unwrap_or(false);
    let ready = log_writer && store_ok;
    let body = serde_json::json!({
        "ready": ready,
        "log_writer": log_writer,
        "store": store_ok,
        "processor_lag_records": ops.processor.lag(),
        "codelists": ops.codelists,
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// Health and operations endpoints.
#[derive(utoipa::OpenApi)]
#[openapi(paths(healthz, readyz, metrics), tags((name = "operations", description = "Health and metrics")))]
struct OpsApi;

/// The OpenAPI description of everything `ods run` serves, generated from the handlers.
pub fn openapi_spec() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    let mut spec = ods_intake::openapi::IntakeApi::openapi();
    spec.merge(ods_query::QueryApi::openapi());
    spec.merge(OpsApi::openapi());
    spec.info.title = "ods — occupational disease surveillance".into();
    spec.info.version = env!("CARGO_PKG_VERSION").into();
    spec.info.description = Some("Notifications in, prevention signals out. Every endpoint but health, metrics and this document needs 'Authorization: Bearer <token>'.".into());
    spec
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi_spec())
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()), responses((status = 200, description = "the process is up", body = String, content_type = "text/plain")))]
async fn healthz() -> &'static str {
    "ok\n"
}

/// Metrics in the Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(()), responses((status = 200, description = "Prometheus metrics", body = String, content_type = "text/plain")))]
async fn metrics(State(ops): State<OpsState>) -> Response {
    ods_http::render_metrics(&ops.registry)
}

async fn index() -> Html<&'static str> {
    Html(include_str!("index.html"))
}
