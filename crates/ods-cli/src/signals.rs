//! `ods signals`: one signal sweep (aberrations, under-reporting, emerging pairs) as of a month,
//! over the embedded store of the data directory or over ClickHouse, printed for the analyst.

use std::sync::Arc;

use anyhow::{Context, Result};
use ods_clickhouse::ClickHouseStore;
use ods_model::Period;
use ods_store::{AnalyticsStore, EmbeddedStore};
use ods_sweep::{sweep, SweepConfig};

use crate::config::Config;

/// How `ods signals` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SignalsFormat {
    /// One line per signal: kind, period, subject and the explanation.
    Text,
    /// A JSON array of signals with every number.
    Json,
}

/// What to sweep.
pub struct SignalsArgs {
    /// The last month considered (default: the month before the current one).
    pub as_of: Option<String>,
    /// Months at the end of each series evaluated for aberrations.
    pub recent_months: usize,
    /// Months of the emerging-pair window.
    pub pair_window_months: u32,
    /// Output format.
    pub format: SignalsFormat,
}

/// Runs one sweep and prints the signals on standard output.
pub async fn run(config: &Config, args: SignalsArgs) -> Result<()> {
    let as_of = match &args.as_of {
        Some(text) => ods_sweep::check_as_of(
            Period::parse(text)
                .map_err(|e| anyhow::anyhow!("--as-of {text:?}: {e} (use YYYY-MM)"))?,
            ods_sweep::now_ms(),
        )
        .map_err(|e| anyhow::anyhow!("--as-of {text:?}: {e}"))?,
        None => ods_sweep::previous_month(ods_sweep::now_ms()),
    };
    let store: Arc<dyn AnalyticsStore> = if config.clickhouse.url.is_empty() {
        let path = config.store_path();
        anyhow::ensure!(
            path.exists(),
            "no store at {} (run `ods run` first, or give --clickhouse-url)",
            path.display()
        );
        Arc::new(EmbeddedStore::open(&path)?)
    } else {
        Arc::new(
            ClickHouseStore::connect(&config.clickhouse)
                .await
                .with_context(|| {
                    format!("connecting to ClickHouse at {}", config.clickhouse.url)
                })?,
        )
    };
    let reference = config.reference_data()?;
    let sweep_config = SweepConfig {
        recent_months: args.recent_months.max(1),
        pair_window_months: args.pair_window_months.max(1),
        ..SweepConfig::as_of(as_of)
    };
    let signals = sweep(store.as_ref(), &reference, &sweep_config).await?;
    match args.format {
        SignalsFormat::Json => println!("{}", serde_json::to_string_pretty(&signals)?),
        SignalsFormat::Text => {
            for s in &signals {
                let subject: Vec<String> =
                    s.subject.iter().map(|(k, v)| format!("{k}={v}")).collect();
                println!(
                    "{:<16} {:<17} {:<40} {}",
                    s.kind.as_str(),
                    s.period,
                    subject.join(" "),
                    s.explanation
                );
            }
            eprintln!(
                "{} signals as of {as_of} (year {} for under-reporting)",
                signals.len(),
                ods_sweep::last_complete_year(as_of)
            );
        }
    }
    Ok(())
}
