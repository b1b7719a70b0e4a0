//! Configuration: defaults, then a TOML file, then `ODS_*` environment variables and flags.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ods_codelists::CodeLists;
use ods_identity::PseudonymKey;
use serde::Deserialize;

/// The configuration of every `ods` component in embedded mode.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory for durable state.
    pub data_dir: PathBuf,
    /// HTTP listen address.
    pub listen: String,
    /// Directory with replacement code lists (default: the lists built into the binary).
    pub codelists_dir: Option<PathBuf>,
    /// File with the pseudonym key (64 hex characters); default `<data_dir>/secrets/pseudonym.key`,
    /// created on first use. `ODS_PSEUDONYM_KEY` (hex) takes precedence.
    pub pseudonym_key_file: Option<PathBuf>,
    /// Requests that may wait for the log writer before intake answers 503.
    pub log_queue_capacity: usize,
    /// Records the processor handles per transaction.
    pub processor_batch_size: usize,
    /// `pretty` or `json` logs.
    pub log_format: String,
    /// Requests per minute per token (sustained); more answer 429 with `Retry-After`.
    pub rate_limit_per_minute: u32,
    /// Requests per token allowed at once above the sustained rate.
    pub rate_limit_burst: u32,
    /// A workforce table replacing the built-in one (`workforce_sbi_*.csv` header): the
    /// denominators of incidence and of the under-reporting signal.
    pub workforce_file: Option<PathBuf>,
    /// A sentinel incidence table replacing the built-in one (`pim_incidence.csv` header): the
    /// reference rates of the under-reporting signal.
    pub incidence_file: Option<PathBuf>,
    /// Hours between scheduled signal sweeps of `ods run` and `ods serve` (as of the previous
    /// month, recorded for review); 0 turns the schedule off. The first sweep runs a minute
    /// after start.
    pub signal_sweep_interval_hours: u64,
    /// Kafka connection of the distributed services (`[kafka]` table).
    pub kafka: ods_kafka::KafkaConfig,
    /// The Kafka processor of distributed mode (`[processor]` table).
    pub processor: ods_runner::ProcessorConfig,
    /// The ClickHouse store of distributed mode (`[clickhouse]` table).
    pub clickhouse: ods_clickhouse::ClickHouseConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("ods-data"),
            listen: "127.0.0.1:8080".into(),
            codelists_dir: None,
            pseudonym_key_file: None,
            log_queue_capacity: 4096,
            processor_batch_size: 2000,
            log_format: "pretty".into(),
            rate_limit_per_minute: 1200,
            rate_limit_burst: 200,
            workforce_file: None,
            incidence_file: None,
            signal_sweep_interval_hours: 24,
            kafka: ods_kafka::KafkaConfig::default(),
            processor: ods_runner::ProcessorConfig::default(),
            // empty: not configured (`ods process` needs it; `ods intake` then shows statuses)
            clickhouse: ods_clickhouse::ClickHouseConfig {
                url: String::new(),
                ..ods_clickhouse::ClickHouseConfig::default()
            },
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Config {
    /// Loads defaults, the file (if any), then the environment; `data_dir` from the command line
    /// wins over both.
    pub fn load(file: Option<&Path>, data_dir: Option<PathBuf>) -> Result<Self> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("config file {}", path.display()))?
            }
            None => Config::default(),
        };
        if let Some(v) = env("ODS_LISTEN") {
            config.listen = v;
        }
        if let Some(v) = env("ODS_CODELISTS_DIR") {
            config.codelists_dir = Some(v.into());
        }
        if let Some(v) = env("ODS_PSEUDONYM_KEY_FILE") {
            config.pseudonym_key_file = Some(v.into());
        }
        if let Some(v) = env("ODS_LOG_FORMAT") {
            config.log_format = v;
        }
        if let Some(v) = env("ODS_LOG_QUEUE_CAPACITY") {
            config.log_queue_capacity = v
                .parse()
                .context("ODS_LOG_QUEUE_CAPACITY must be a whole number")?;
        }
        if let Some(v) = env("ODS_RATE_LIMIT_PER_MINUTE") {
            config.rate_limit_per_minute = v
                .parse()
                .context("ODS_RATE_LIMIT_PER_MINUTE must be a whole number")?;
        }
        if let Some(v) = env("ODS_RATE_LIMIT_BURST") {
            config.rate_limit_burst = v
                .parse()
                .context("ODS_RATE_LIMIT_BURST must be a whole number")?;
        }
        if let Some(v) = env("ODS_WORKFORCE_FILE") {
            config.workforce_file = Some(v.into());
        }
        if let Some(v) = env("ODS_INCIDENCE_FILE") {
            config.incidence_file = Some(v.into());
        }
        if let Some(v) = env("ODS_SIGNAL_SWEEP_INTERVAL_HOURS") {
            config.signal_sweep_interval_hours = v
                .parse()
                .context("ODS_SIGNAL_SWEEP_INTERVAL_HOURS must be a whole number")?;
        }
        if let Some(v) = env("ODS_KAFKA_BROKERS") {
            config.kafka.brokers = v;
        }
        if let Some(v) = env("ODS_CLICKHOUSE_URL") {
            config.clickhouse.url = v;
        }
        if let Some(v) = env("ODS_CLICKHOUSE_DATABASE") {
            config.clickhouse.database = v;
        }
        if let Some(dir) = data_dir {
            config.data_dir = dir;
        }
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        if self.log_queue_capacity == 0 {
            anyhow::bail!("log_queue_capacity must be at least 1");
        }
        if self.rate_limit_per_minute == 0 || self.rate_limit_burst == 0 {
            anyhow::bail!("rate_limit_per_minute and rate_limit_burst must be at least 1");
        }
        if self.signal_sweep_interval_hours > 24 * 366 {
            anyhow::bail!("signal_sweep_interval_hours must be 0 (off) to 8784 (a year)");
        }
        if self.processor_batch_size == 0 {
            anyhow::bail!("processor_batch_size must be at least 1");
        }
        if !["pretty", "json"].contains(&self.log_format.as_str()) {
            anyhow::bail!("log_format '{}' must be pretty or json", self.log_format);
        }
        Ok(())
    }

    /// The token database.
    pub fn tokens_path(&self) -> PathBuf {
        self.data_dir.join("tokens.sqlite")
    }

    /// The embedded log.
    pub fn log_path(&self) -> PathBuf {
        self.data_dir.join("log.sqlite")
    }

    /// The embedded store.
    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join("store.sqlite")
    }

    /// The code lists in use; a malformed file fails with file, line and reason.
    pub fn code_lists(&self) -> Result<CodeLists> {
        Ok(match &self.codelists_dir {
            Some(dir) => CodeLists::load_dir(dir)?,
            None => CodeLists::bundled()?,
        })
    }

    /// The pseudonym key: `ODS_PSEUDONYM_KEY`, else the key file (created when missing).
    pub fn pseudonym_key(&self) -> Result<PseudonymKey> {
        if let Some(hex) = env("ODS_PSEUDONYM_KEY") {
            return PseudonymKey::from_hex(&hex).context("ODS_PSEUDONYM_KEY");
        }
        let path = self
            .pseudonym_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("secrets").join("pseudonym.key"));
        Ok(PseudonymKey::load_or_create(&path)?)
    }
}

/// Sets up `tracing` (`RUST_LOG` filter, default `info`).
pub fn init_tracing(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.log_format == "json" {
        let _ = builder.json().try_init();
    } else {
        let _ = builder.try_init();
    }
}

impl Config {
    /// The ClickHouse URL and database given on the command line, over the file and environment.
    pub fn set_clickhouse(&mut self, url: Option<String>, database: Option<String>) {
        if let Some(url) = url {
            self.clickhouse.url = url;
        }
        if let Some(database) = database {
            self.clickhouse.database = database;
        }
    }

    /// The reference data: built in, with the configured workforce and incidence tables in
    /// their place; a malformed file names file and line.
    pub fn reference_data(&self) -> Result<ods_codelists::reference::ReferenceData> {
        let mut reference =
            ods_codelists::reference::ReferenceData::bundled().context("loading reference data")?;
        if let Some(path) = &self.workforce_file {
            reference = reference
                .with_workforce_file(path)
                .with_context(|| format!("workforce_file {}", path.display()))?;
        }
        if let Some(path) = &self.incidence_file {
            reference = reference
                .with_incidence_file(path)
                .with_context(|| format!("incidence_file {}", path.display()))?;
        }
        Ok(reference)
    }
}

/// Starts the scheduled signal sweeps of `config` over `store`, if they are on.
pub fn schedule_signal_sweeps(
    config: &Config,
    store: std::sync::Arc<dyn ods_store::AnalyticsStore>,
    reference: std::sync::Arc<ods_codelists::reference::ReferenceData>,
) -> Option<tokio::task::JoinHandle<()>> {
    (config.signal_sweep_interval_hours > 0).then(|| {
        ods_sweep::schedule(
            store,
            reference,
            std::time::Duration::from_secs(60),
            std::time::Duration::from_secs(config.signal_sweep_interval_hours * 3600),
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly by design
    use super::*;

    const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/ods.example.toml");

    #[test]
    fn reference_tables_are_replaced_from_files_and_bad_ones_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let workforce = dir.path().join("workforce_sbi_2024q2.csv");
        std::fs::write(
            &workforce,
            "sbi_section,name_nl,name_en,employed_x1000\nF,Bouw,Construction,500\nQ,Zorg,Health,1700\n",
        )
        .unwrap();
        let config = Config {
            workforce_file: Some(workforce),
            ..Config::default()
        };
        let reference = config.reference_data().unwrap();
        assert_eq!(reference.workforce.employed_x1000["F"], 500.0);
        assert_eq!(reference.workforce.employed_x1000.len(), 2);
        let incidence = dir.path().join("pim.csv");
        std::fs::write(
            &incidence,
            "year,stratum_kind,stratum,incidence_per_100k,source_note\n2024,total,all,100,x\n2024,sector,construction,abc,x\n",
        )
        .unwrap();
        let config = Config {
            incidence_file: Some(incidence),
            ..Config::default()
        };
        let error = format!("{:#}", config.reference_data().unwrap_err());
        assert!(error.contains("pim.csv") && error.contains(":3"), "{error}");
    }

    #[test]
    fn the_example_configuration_loads_as_shipped_and_with_its_kafka_section_enabled() {
        let config = Config::load(Some(Path::new(EXAMPLE)), None).unwrap();
        assert_eq!(config.listen, "127.0.0.1:8080");
        assert!(config.kafka.brokers.is_empty());

        let enabled: String = std::fs::read_to_string(EXAMPLE)
            .unwrap()
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(rest)
                    if rest.starts_with('[')
                        || rest.starts_with('"')
                        || (rest.contains(" = ")
                            && !rest.starts_with("codelists")
                            && !rest.starts_with("pseudonym")) =>
                {
                    rest
                }
                _ => line,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ods.toml");
        std::fs::write(&path, enabled).unwrap();
        let config = Config::load(Some(&path), None).unwrap();
        assert_eq!(
            config.kafka.brokers,
            "kafka-1.example.nl:9093,kafka-2.example.nl:9093"
        );
        assert_eq!(config.kafka.properties["security.protocol"], "SASL_SSL");
        assert_eq!(
            config.processor.validated_topic.as_deref(),
            Some("ods.validated.v1")
        );
        config.processor.validate().unwrap();
        assert_eq!(config.clickhouse.database, "ods");
        assert_eq!(config.clickhouse.user.as_deref(), Some("ods"));
        config.kafka.validate().unwrap();
        // the CA file of the example does not exist here; let librdkafka use the system's
        let mut kafka = config.kafka.clone();
        kafka
            .properties
            .insert("ssl.ca.location".into(), "probe".into());
        // librdkafka is built with OpenSSL and SASL/SCRAM: the settings are accepted by the
        // producer and the follower (no connection is made here)
        ods_kafka::producer_config(&kafka)
            .create::<rdkafka::producer::BaseProducer>()
            .unwrap();
        ods_kafka::follower_config(&kafka)
            .create::<rdkafka::consumer::BaseConsumer>()
            .unwrap();
    }
}
