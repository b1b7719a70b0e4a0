//! The services of the distributed mode, one per process. `ods intake`: the doctors' API
//! publishing to Kafka.

use std::sync::Arc;

use anyhow::{Context, Result};
use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use ods_http::{HttpMetrics, RateLimiter};
use ods_identity::TokenStore;
use ods_intake::{EventSink, Intake, IntakeMetrics, IntakeRegistry, IntakeState};
use ods_kafka::{KafkaSink, RegistryFollower};
use ods_validation::Limits;
use prometheus::Registry;
use tower_http::trace::TraceLayer;

use crate::config::Config;

#[derive(Clone)]
struct IntakeOps {
    sink: Arc<KafkaSink>,
    follower: Arc<RegistryFollower>,
    registry: Registry,
}

/// `ods intake`: validates, pseudonymises (via the token) and publishes to Kafka; answers 202 only
/// after the broker confirmed the write (acks=all, idempotent producer).
///
/// The intake registry (owners, versions, history, idempotency keys) is a local SQLite file in
/// the data directory (one per instance), derived from the topic by a [`RegistryFollower`]: a
/// new or restored instance rebuilds it from the topic, and instances behind one load balancer
/// see each other's notifications. Until the follower has read the topic up to where it ended
/// at start, the notification API answers 503 with `Retry-After` and `/readyz` is not ready.
/// Idempotency keys are per instance: a client retry must reach the same instance (sticky by
/// token) to be recognised. With `[clickhouse] url` (or `--clickhouse-url`) set, `GET` shows
/// what `ods process` decided (validated, or rejected with reasons) from the ClickHouse store;
/// without it, or while ClickHouse is unreachable, it shows `accepted`.
pub async fn run_intake(config: Config, create_topic: Option<i32>) -> Result<()> {
    if config.kafka.brokers.is_empty() {
        anyhow::bail!("ods intake needs Kafka brokers: --kafka-brokers host:port (or ODS_KAFKA_BROKERS, or [kafka] brokers in the config file)");
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let lists = Arc::new(config.code_lists().context("loading code lists")?);
    let tokens = Arc::new(TokenStore::open(&config.tokens_path())?);
    let registry = Arc::new(IntakeRegistry::open(
        &config.data_dir.join("intake.sqlite"),
    )?);
    if let Some(partitions) = create_topic {
        ods_kafka::ensure_topics(
            &config.kafka.brokers,
            &[(config.kafka.topic.as_str(), partitions)],
            &config.kafka.properties,
        )
        .await
        .context("creating the notifications topic")?;
    }
    let sink = Arc::new(KafkaSink::new(&config.kafka).context("connecting to Kafka")?);
    let follower = Arc::new(
        RegistryFollower::start(&config.kafka, registry.clone())
            .context("starting the registry follower")?,
    );
    let metrics = Registry::new();
    let http = HttpMetrics::register(&metrics, "ods_intake")?;
    let intake = Arc::new(Intake::new(
        lists,
        Limits::default(),
        sink.clone(),
        registry,
        IntakeMetrics::register(&metrics)?,
    ));
    let limiter = Arc::new(RateLimiter::new(
        config.rate_limit_per_minute,
        config.rate_limit_burst,
    ));
    let app = Router::new()
        .merge(
            ods_intake::router(IntakeState {
                intake,
                tokens,
                limiter,
                status: if config.clickhouse.url.is_empty() {
                    None
                } else {
                    Some(Arc::new(ClickHouseStatus::connect(
                        config.clickhouse.clone(),
                    )))
                },
            })
            .route_layer(from_fn_with_state(follower.clone(), until_caught_up))
            .route_layer(from_fn_with_state(http, HttpMetrics::track)),
        )
        .merge(
            Router::new()
                .route("/healthz", get(|| async { "ok\n" }))
                .route("/readyz", get(readyz))
                .route("/metrics", get(metrics_text))
                .route("/api/v1/openapi.json", get(openapi))
                .with_state(IntakeOps {
                    sink,
                    follower: follower.clone(),
                    registry: metrics,
                }),
        )
        .layer(TraceLayer::new_for_http());
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, brokers = %config.kafka.brokers, topic = %config.kafka.topic, "ods intake is serving");
    println!(
        "ods intake is running at http://{address}  (publishing to {} on {})",
        config.kafka.topic, config.kafka.brokers
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(crate::server::shutdown_signal())
        .await
        .context("serving HTTP")?;
    // the router (and its handles) is gone: stop the follower after its current batch
    match Arc::try_unwrap(follower) {
        Ok(follower) => follower.stop(),
        Err(_) => tracing::warn!("registry follower still referenced at shutdown; not joined"),
    }
    tracing::info!("stopped");
    Ok(())
}

/// The processing status of notifications from the ClickHouse store of `ods process`. It
/// connects in the background (with retries), so intake starts and takes notifications while
/// ClickHouse is down; until then, and when a lookup fails or takes longer than
/// [`STATUS_TIMEOUT`], the status is unknown and `GET` shows `accepted`.
struct ClickHouseStatus {
    store: Arc<std::sync::OnceLock<ods_clickhouse::ClickHouseStore>>,
    runtime: tokio::runtime::Handle,
}

/// The longest a status lookup may take before `GET` answers without it.
const STATUS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

impl ClickHouseStatus {
    fn connect(config: ods_clickhouse::ClickHouseConfig) -> ClickHouseStatus {
        let store = Arc::new(std::sync::OnceLock::new());
        let slot = store.clone();
        tokio::spawn(async move {
            let mut wait = std::time::Duration::from_millis(500);
            loop {
                match ods_clickhouse::ClickHouseStore::connect(&config).await {
                    Ok(connected) => {
                        let _ = slot.set(connected);
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(url = %config.url, error = %e, "processing statuses unavailable: cannot reach ClickHouse; retrying");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(std::time::Duration::from_secs(30));
                    }
                }
            }
        });
        ClickHouseStatus {
            store,
            runtime: tokio::runtime::Handle::current(),
        }
    }
}

impl ods_intake::StatusSource for ClickHouseStatus {
    /// Called on a blocking thread (intake looks statuses up with `spawn_blocking`).
    fn status(&self, id: &str) -> Option<ods_intake::ProcessingStatus> {
        use ods_store::AnalyticsStore;
        let store = self.store.get()?;
        let lookup = self
            .runtime
            .block_on(tokio::time::timeout(STATUS_TIMEOUT, store.notification(id)));
        match lookup {
            Ok(Ok(Some(view))) => Some(ods_intake::ProcessingStatus {
                version: u32::try_from(view.version).unwrap_or(0),
                status: view.status,
                reasons: view.reasons,
            }),
            Ok(Ok(None)) => None,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "status lookup failed");
                None
            }
            Err(_) => {
                tracing::warn!("status lookup timed out");
                None
            }
        }
    }
}

/// Answers 503 + `Retry-After` while the registry is still reading the topic, so no doctor gets a
/// 404 for a notification the registry has not read yet.
async fn until_caught_up(
    State(follower): State<Arc<RegistryFollower>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if follower.is_caught_up() {
        return next.run(request).await;
    }
    let behind = follower.records_behind();
    let detail = if behind < 0 {
        "intake is starting: the notifications topic cannot be read yet".to_string()
    } else {
        format!("intake is starting: {behind} record(s) of the notifications topic still to read")
    };
    ods_http::Problem::unavailable(detail, 2).into_response()
}

async fn readyz(State(ops): State<IntakeOps>) -> Response {
    let broker = ops.sink.is_ready();
    let registry = ops.follower.is_caught_up();
    let ready = broker && registry;
    let body = serde_json::json!({
        "ready": ready,
        "broker": broker,
        "registry_caught_up": registry,
        "registry_records_behind": ops.follower.records_behind(),
        "topic": ops.sink.topic(),
        "in_flight": ops.sink.in_flight(),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics_text(State(ops): State<IntakeOps>) -> Response {
    ods_http::render_metrics(&ops.registry)
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    use utoipa::OpenApi;
    Json(ods_intake::openapi::IntakeApi::openapi())
}
