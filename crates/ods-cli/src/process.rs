//! `ods process` (distributed mode): the stream processor, a consumer-group member that applies
//! the notifications topic to the ClickHouse store and writes the output topics.

use std::sync::Arc;

use anyhow::{Context, Result};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use ods_clickhouse::{ClickHouseStore, StoreMetrics};
use ods_processor::Processor;
use ods_runner::{kafka_source, KafkaOutlet, KafkaRunner, ProcessorMetrics};
use ods_store::AnalyticsStore;
use ods_validation::Limits;
use prometheus::Registry;
use tower_http::trace::TraceLayer;

use crate::config::Config;

#[derive(Clone)]
struct ProcessOps {
    runner: Arc<KafkaRunner>,
    store: Arc<ClickHouseStore>,
    topic: String,
    metrics: ProcessorMetrics,
    registry: Registry,
}

/// Connects to ClickHouse (applying pending migrations, which are idempotent), optionally
/// creates the topics, joins the consumer group and serves `/healthz`, `/readyz` and `/metrics`
/// until SIGINT/SIGTERM; then the current batch finishes and the member leaves the group.
pub async fn run_process(config: Config, create_topics: Option<i32>) -> Result<()> {
    if config.kafka.brokers.is_empty() {
        anyhow::bail!("ods process needs Kafka brokers: --kafka-brokers host:port (or ODS_KAFKA_BROKERS, or [kafka] brokers in the config file)");
    }
    if config.clickhouse.url.is_empty() {
        anyhow::bail!("ods process needs ClickHouse: --clickhouse-url http://host:8123 (or ODS_CLICKHOUSE_URL, or [clickhouse] url in the config file)");
    }
    let lists = Arc::new(config.code_lists().context("loading code lists")?);
    let registry = Registry::new();
    let store = ClickHouseStore::connect(&config.clickhouse)
        .await
        .with_context(|| format!("connecting to ClickHouse at {}", config.clickhouse.url))?
        .with_metrics(StoreMetrics::register(&registry)?);
    let report = store
        .migrate()
        .await
        .context("migrating the ClickHouse schema")?;
    if !report.applied.is_empty() {
        tracing::info!(applied = ?report.applied, "clickhouse migrations applied");
    }
    if let Some(partitions) = create_topics {
        let mut topics = vec![(config.kafka.topic.as_str(), partitions)];
        topics.extend(
            config
                .processor
                .output_topics()
                .into_iter()
                .map(|t| (t, partitions)),
        );
        ods_kafka::ensure_topics(&config.kafka.brokers, &topics, &config.kafka.properties)
            .await
            .context("creating the topics")?;
    }
    let outlet = Arc::new(
        KafkaOutlet::new(&config.kafka, &config.processor)
            .context("creating the output producer")?,
    );
    let store = Arc::new(store.with_outlet(outlet));
    let metrics = ProcessorMetrics::register(&registry)?;
    let processor = Arc::new(Processor::new(lists, Limits::default()));
    let runner = Arc::new(
        KafkaRunner::start(
            &config.kafka,
            &config.processor,
            store.clone() as Arc<dyn AnalyticsStore>,
            processor,
            metrics.clone(),
        )
        .context("joining the consumer group")?,
    );
    let ops = ProcessOps {
        runner: runner.clone(),
        store,
        topic: config.kafka.topic.clone(),
        metrics,
        registry,
    };
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(ops)
        .layer(TraceLayer::new_for_http());
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let address = listener.local_addr()?;
    println!(
        "ods process is running at http://{address}  (health and metrics; {} in group {} -> ClickHouse {} database {})",
        config.kafka.topic, config.processor.group_id, config.clickhouse.url, config.clickhouse.database
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(crate::server::shutdown_signal())
        .await
        .context("serving HTTP")?;
    tracing::info!("shutting down: finishing the current batch");
    match Arc::try_unwrap(runner) {
        Ok(runner) => tokio::task::spawn_blocking(move || runner.stop())
            .await
            .context("stopping the processor")?,
        Err(_) => tracing::warn!("processor still referenced at shutdown; not joined"),
    }
    tracing::info!("stopped");
    Ok(())
}

/// Ready when the consumer thread runs, the member owns partitions (or has joined), and the
/// store answers.
async fn readyz(State(ops): State<ProcessOps>) -> Response {
    let running = ops.runner.is_running();
    let joined = ops.runner.has_joined();
    let partitions = ops.runner.assigned_partitions();
    let source = kafka_source(&ops.topic);
    let store_ok = match partitions.first() {
        Some(p) => ops.store.position(&source, *p).await.is_ok(),
        None => ops.store.position(&source, 0).await.is_ok(),
    };
    let ready = running && joined && store_ok;
    let body = serde_json::json!({
        "ready": ready,
        "consumer_running": running,
        "group_joined": joined,
        "partitions": partitions,
        "store": store_ok,
        "lag_records": ops.metrics.lag(),
        "since_last_poll_ms": ops.runner.since_last_poll_ms(),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics_text(State(ops): State<ProcessOps>) -> Response {
    ods_http::render_metrics(&ops.registry)
}
