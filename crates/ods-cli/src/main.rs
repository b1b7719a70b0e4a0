//! `ods`: occupational disease surveillance.
//!
//! One binary, one subcommand per job: `ods run` runs the whole pipeline in one process
//! (embedded mode); `ods intake` and `ods process` are the services of distributed mode (Kafka,
//! ClickHouse); `ods generate` writes demo data; `ods tokens` manages API tokens; `ods replay`
//! rebuilds the aggregates from the log; `ods analyze` runs a statistical method on a CSV file;
//! `ods migrate` creates the ClickHouse schema; `ods bench` measures.

mod bench;
mod bench_process;
mod bench_replay;
mod bench_signals;
mod bench_store;
mod config;
mod data_dir_lock;
mod demo;
mod distributed;
mod process;
mod runner;
mod serve;
mod server;
mod signals;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use ods_identity::{BigNumber, Principal, Pseudonymizer, Role, TokenStore};
use ods_model::Affiliation;

use crate::config::Config;

/// mimalloc instead of glibc's allocator: the intake and processor paths allocate many small,
/// short-lived strings and records, and glibc's free-list consolidation showed as 10-15% of
/// their CPU in profiles (`ods bench`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Occupational disease surveillance: notifications in, prevention signals out.
#[derive(Parser, Debug)]
#[command(name = "ods", version, about, long_about = None)]
struct Cli {
    /// Configuration file (TOML); values there are overridden by ODS_* environment variables and flags.
    #[arg(long, global = true, env = "ODS_CONFIG")]
    config: Option<PathBuf>,
    /// Directory for all durable state (log, store, tokens, pseudonym key).
    #[arg(long, global = true, env = "ODS_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run intake, processor, store and query API in one process (embedded mode).
    Run(RunArgs),
    /// Write deterministic, realistic demo data as NDJSON.
    Generate(GenerateArgs),
    /// Create, list and revoke API tokens (works while the server runs).
    Tokens {
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// Run only the intake API, publishing to Kafka (distributed mode).
    Intake(IntakeArgs),
    /// Run the stream processor: a consumer-group member applying the notifications topic to
    /// ClickHouse and writing the rejection and dead-letter topics (distributed mode).
    Process(ProcessArgs),
    /// Run the statistics API over ClickHouse (distributed mode); tokens from the data directory.
    Serve(ServeArgs),
    /// One signal sweep as of a month: aberrations (improved Farrington per SBI section x
    /// diagnosis group), under-reporting by section (observed vs workforce x PIM rate, funnel
    /// limit), newly disproportionate disease-exposure pairs and services whose doctors all went
    /// silent; over the embedded store, or ClickHouse with --clickhouse-url. Prints, records
    /// nothing.
    Signals(SignalsCommandArgs),
    /// Rebuild aggregates from the embedded log, with a progress bar. Without --from: empty the
    /// store and process the whole log (refused while `ods run` uses the data directory). With --from: re-process,
    /// in one transaction, every notification with a record at or after that point (may run
    /// while `ods run` serves).
    Replay(ReplayArgs),
    /// Create or upgrade the ClickHouse schema of distributed mode (idempotent).
    Migrate(MigrateArgs),
    /// List the validation rules with their stable ids.
    Rules,
    /// Run a statistical method on your own CSV data (count series, 2x2 tables, report-level
    /// rows); options follow R surveillance's `control` names in kebab case, with R's defaults.
    Analyze(AnalyzeArgs),
    /// Measure a stage against a baseline in the same run (loopback only).
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Address to serve the API on.
    #[arg(long, env = "ODS_LISTEN")]
    listen: Option<String>,
    /// On first start, generate and load demo data (2014-2023) and create demo tokens.
    #[arg(long, env = "ODS_DEMO")]
    demo: bool,
}

#[derive(Args, Debug)]
struct ReplayArgs {
    /// Where to start: a log offset (e.g. 120000), or a time, RFC 3339 (2024-03-01T08:00:00Z)
    /// or a date (2024-03-01, midnight UTC), meaning the first record appended at or after it.
    /// Records before it keep their effect, except those of notifications it re-processes.
    #[arg(long, value_parser = runner::parse_replay_point)]
    from: Option<runner::ReplayPoint>,
}

#[derive(Args, Debug)]
struct KafkaArgs {
    /// Kafka bootstrap brokers, host:port[,host:port...].
    #[arg(long, env = "ODS_KAFKA_BROKERS")]
    kafka_brokers: Option<String>,
    /// Further librdkafka properties (TLS, SASL), repeatable: --kafka-property security.protocol=SASL_SSL.
    #[arg(long = "kafka-property", value_name = "KEY=VALUE")]
    kafka_properties: Vec<String>,
}

impl KafkaArgs {
    /// Puts the flags over the configuration file and environment.
    fn apply(self, config: &mut Config) -> Result<()> {
        if let Some(brokers) = self.kafka_brokers {
            config.kafka.brokers = brokers;
        }
        for property in &self.kafka_properties {
            let (key, value) = property
                .split_once('=')
                .with_context(|| format!("--kafka-property '{property}' must be KEY=VALUE"))?;
            config
                .kafka
                .properties
                .insert(key.trim().to_string(), value.trim().to_string());
        }
        Ok(())
    }
}

#[derive(Args, Debug)]
struct IntakeArgs {
    /// Address to serve the intake API on.
    #[arg(long, env = "ODS_LISTEN")]
    listen: Option<String>,
    #[command(flatten)]
    kafka: KafkaArgs,
    /// Create the notifications topic (with this many partitions) if it does not exist.
    #[arg(long, value_name = "PARTITIONS")]
    create_topic: Option<i32>,
    /// ClickHouse of `ods process`, for the processing status in GET (or [clickhouse] url).
    #[arg(long, env = "ODS_CLICKHOUSE_URL")]
    clickhouse_url: Option<String>,
    /// ClickHouse database (or [clickhouse] database; default ods).
    #[arg(long, env = "ODS_CLICKHOUSE_DATABASE")]
    database: Option<String>,
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Address to serve the statistics API on.
    #[arg(long, env = "ODS_LISTEN")]
    listen: Option<String>,
    /// ClickHouse HTTP URL, e.g. http://127.0.0.1:8123 (or [clickhouse] url).
    #[arg(long, env = "ODS_CLICKHOUSE_URL")]
    clickhouse_url: Option<String>,
    /// ClickHouse database (or [clickhouse] database; default ods).
    #[arg(long, env = "ODS_CLICKHOUSE_DATABASE")]
    database: Option<String>,
}

#[derive(Args, Debug)]
struct SignalsCommandArgs {
    /// The last month considered, YYYY-MM (default: the month before the current one).
    #[arg(long)]
    as_of: Option<String>,
    /// Months at the end of each series evaluated for aberrations.
    #[arg(long, default_value_t = 1)]
    recent_months: usize,
    /// Months of the window in which disease-exposure pairs are compared (pairs that already
    /// signal over the months before it are not news).
    #[arg(long, default_value_t = 12)]
    pair_window_months: u32,
    /// Output: text (one line per signal) or json (every number).
    #[arg(long, value_enum, default_value_t = signals::SignalsFormat::Text)]
    format: signals::SignalsFormat,
    /// ClickHouse HTTP URL (default: the embedded store of the data directory).
    #[arg(long, env = "ODS_CLICKHOUSE_URL")]
    clickhouse_url: Option<String>,
    /// ClickHouse database (or [clickhouse] database; default ods).
    #[arg(long, env = "ODS_CLICKHOUSE_DATABASE")]
    database: Option<String>,
}

#[derive(Args, Debug)]
struct ProcessArgs {
    /// Address to serve /healthz, /readyz and /metrics on.
    #[arg(long, env = "ODS_LISTEN")]
    listen: Option<String>,
    #[command(flatten)]
    kafka: KafkaArgs,
    /// ClickHouse HTTP URL, e.g. http://127.0.0.1:8123 (or [clickhouse] url).
    #[arg(long, env = "ODS_CLICKHOUSE_URL")]
    clickhouse_url: Option<String>,
    /// ClickHouse database (or [clickhouse] database; default ods).
    #[arg(long, env = "ODS_CLICKHOUSE_DATABASE")]
    database: Option<String>,
    /// Consumer group (or [processor] group_id; default ods-processor).
    #[arg(long)]
    group_id: Option<String>,
    /// Create the notifications and output topics (with this many partitions) if missing.
    #[arg(long, value_name = "PARTITIONS")]
    create_topics: Option<i32>,
}

#[derive(Args, Debug)]
struct MigrateArgs {
    /// ClickHouse HTTP URL, e.g. http://127.0.0.1:8123.
    #[arg(long, env = "ODS_CLICKHOUSE_URL")]
    clickhouse_url: String,
    /// Database name.
    #[arg(long, default_value = ods_clickhouse::DEFAULT_DATABASE)]
    database: String,
}

#[derive(Args, Debug)]
#[command(after_long_help = ANALYZE_HELP)]
struct AnalyzeArgs {
    /// The method.
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(ods_analyze::Method::NAMES))]
    method: String,
    /// Input CSV file ('-' for standard input).
    #[arg(long)]
    input: PathBuf,
    /// Output format.
    #[arg(long, default_value = "csv", value_parser = ["csv", "json"])]
    format: String,
    /// Output file ('-' for standard output).
    #[arg(long, default_value = "-")]
    output: PathBuf,
}

const ANALYZE_HELP: &str = "Inputs (CSV with a header row):
  ears-c1, ears-c2, ears-c3, farrington, farrington-flexible, cusum:
      date,count            one row per week, month or day, ISO dates, no gaps
  poisson-ci: observed[,population]     sir: observed,expected     chapman: n1,n2,m
  prr, ror, ic: a,b,c,d (extra leading columns are carried through), or
      report_id,exposure,diagnosis[,stratum] (one row per pair out)
  ebgm: report_id,exposure,diagnosis[,stratum] or N,E cells

Output: the input columns and the method's columns (series: at least upperbound,alarm);
a cell the method cannot fill is empty (CSV) or null (JSON).

Example:
  ods analyze farrington --input weekly.csv --b 3 --w 2 --alpha 0.01 --format json";

#[derive(Args, Debug)]
struct GenerateArgs {
    /// First year.
    #[arg(long, default_value_t = 2014)]
    from: i32,
    /// Last year.
    #[arg(long, default_value_t = 2023)]
    to: i32,
    /// Seed: the same seed gives byte-identical output.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Output file ('-' for standard output).
    #[arg(long, default_value = "-")]
    out: String,
    /// Scenario file (JSON) with planted signals.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Multiplies national volumes (0.1 = a tenth).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Number of company doctors.
    #[arg(long, default_value_t = 1750)]
    doctors: usize,
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Time, records/s and peak memory of `ods replay` over many generated events, next to a
    /// plain read of the same embedded log (release build).
    Replay {
        /// Generated events in the log.
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        /// Keep the generated log in this directory (re-used by the next run) instead of a
        /// temporary one.
        #[arg(long)]
        keep: Option<PathBuf>,
    },
    /// Events/s of the Kafka processor (decide, enrich, write to the store) next to a raw
    /// rdkafka consume-and-discard loop over the same topic on the same broker (release build).
    Process {
        /// Generated events to put on the benchmark topic.
        #[arg(long, default_value_t = 100_000)]
        events: usize,
        /// Partitions of the benchmark topic (raised for the mock broker, which keeps 5 MB per
        /// partition).
        #[arg(long, default_value_t = 6)]
        partitions: i32,
        /// A real broker (default: librdkafka's in-process mock cluster).
        #[arg(long)]
        kafka_brokers: Option<String>,
        /// ClickHouse as the store (default: the embedded store in a temporary directory).
        #[arg(long)]
        clickhouse_url: Option<String>,
        /// Rounds of both loops over the same topic, each in new consumer groups and a new
        /// store; the medians are reported, with the range of the per-round ratios.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=50))]
        rounds: u16,
        /// The processor's `[processor] batch_max_records` (default: its default, 10000).
        #[arg(long)]
        batch_max_records: Option<usize>,
    },
    /// The signal sweep over ten years of national generated data next to reading its inputs,
    /// and the improved Farrington method over many series next to R surveillance (when
    /// installed) on the same series (release build).
    Signals {
        /// Generated monthly series for the Farrington comparison.
        #[arg(long, default_value_t = 1000)]
        series: usize,
    },
    /// The ClickHouse store: loads generated events through it, then its writer's rows/s next
    /// to clickhouse-client inserting the same rows, and the p50/p95 latency of the common
    /// dashboard queries next to their bare count queries (release build).
    Store {
        /// ClickHouse HTTP URL.
        #[arg(long)]
        clickhouse_url: String,
        /// Native-protocol port of the same server, for clickhouse-client.
        #[arg(long, default_value_t = 9000)]
        native_port: u16,
        /// Database for the loaded events; reused when it already holds them.
        #[arg(long, default_value = "ods_bench_store")]
        database: String,
        /// Generated events to load.
        #[arg(long, default_value_t = 200_000)]
        events: usize,
        /// Rows per table written by both sinks.
        #[arg(long, default_value_t = 500_000)]
        sink_rows: usize,
        /// Runs per dashboard query.
        #[arg(long, default_value_t = 50)]
        runs: usize,
        /// ClickHouse max_bytes_before_external_group_by for the store's queries (0: the
        /// server's setting); about half the server's max_memory_usage for many millions of
        /// notifications.
        #[arg(long, default_value_t = 0)]
        group_by_spill_bytes: u64,
    },
    /// Accepted notifications/s, latency and CPU time per request of the durable intake path
    /// (validation, Avro, fsync'd log) next to a bare axum handler under the same load.
    Intake {
        /// Requests per target and load level.
        #[arg(long, default_value_t = 20_000)]
        requests: usize,
        /// Load levels: requests in flight at once, comma-separated; each level measures both
        /// targets.
        #[arg(long, value_delimiter = ',', default_values_t = [32, 128, 512])]
        concurrency: Vec<usize>,
        /// Rounds per load level; each round measures both targets, in alternating order, and
        /// the median of the rounds is reported (a shared machine's speed drifts).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
}

#[derive(Subcommand, Debug)]
enum TokensCommand {
    /// Create a token and print it (alone, on standard output).
    Create(CreateTokenArgs),
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id (or by the token itself).
    Revoke {
        /// Token id as shown by `ods tokens list`.
        id: String,
    },
}

#[derive(Args, Debug)]
struct CreateTokenArgs {
    /// reporter, analyst, sector_fund or admin.
    #[arg(long)]
    role: String,
    /// BIG number of the doctor (reporter tokens); only its pseudonym is stored.
    #[arg(long)]
    big: Option<String>,
    /// Occupational health service of the doctor (reporter tokens).
    #[arg(long)]
    service_id: Option<String>,
    /// The doctor is self-employed (reporter tokens, instead of --service-id).
    #[arg(long)]
    self_employed: bool,
    /// Comma-separated sector codes (sector_fund tokens), e.g. F or 1071,1072.
    #[arg(long, value_delimiter = ',')]
    sectors: Vec<String>,
    /// A label for administrators (no personal data).
    #[arg(long, default_value = "")]
    label: String,
}

/// The command line: the derived one, plus one `--NAME VALUE` flag per option of
/// `ods analyze` (named and documented by `ods-analyze`).
fn command_line() -> clap::Command {
    use clap::CommandFactory;
    Cli::command().mut_subcommand("analyze", |mut analyze| {
        for name in ods_analyze::all_option_names() {
            let mut users = Vec::new();
            let mut spec = None;
            for method in ods_analyze::Method::ALL {
                if let Some(s) = method.options().iter().find(|s| s.name == name) {
                    users.push(format!("{} (default {})", method.name(), s.default));
                    spec.get_or_insert(*s);
                }
            }
            let help = match spec {
                Some(s) => format!("{}; R: {}; {}", s.help, s.r_name, users.join(", ")),
                None => String::new(),
            };
            analyze = analyze.arg(
                clap::Arg::new(name)
                    .long(name)
                    .value_name("VALUE")
                    .help(help)
                    .help_heading("Method options"),
            );
        }
        analyze
    })
}

fn main() -> Result<()> {
    use clap::FromArgMatches;
    let matches = command_line().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let Command::Analyze(args) = &cli.command {
        let mut options = ods_analyze::Options::new();
        if let Some(sub) = matches.subcommand_matches("analyze") {
            for name in ods_analyze::all_option_names() {
                if let Some(value) = sub.get_one::<String>(name) {
                    options.set(name, value)?;
                }
            }
        }
        return analyze(args, &options);
    }
    let config = Config::load(cli.config.as_deref(), cli.data_dir.clone())?;
    match cli.command {
        Command::Run(args) => {
            let mut config = config;
            if let Some(listen) = args.listen {
                config.listen = listen;
            }
            config::init_tracing(&config);
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(server::run(config, args.demo))
        }
        Command::Intake(args) => {
            let mut config = config;
            if let Some(listen) = args.listen {
                config.listen = listen;
            }
            args.kafka.apply(&mut config)?;
            config.set_clickhouse(args.clickhouse_url, args.database);
            config::init_tracing(&config);
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(distributed::run_intake(config, args.create_topic))
        }
        Command::Process(args) => {
            let mut config = config;
            if let Some(listen) = args.listen {
                config.listen = listen;
            }
            args.kafka.apply(&mut config)?;
            config.set_clickhouse(args.clickhouse_url, args.database);
            if let Some(group) = args.group_id {
                config.processor.group_id = group;
            }
            config::init_tracing(&config);
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(process::run_process(config, args.create_topics))
        }
        Command::Signals(args) => {
            let mut config = config;
            config.set_clickhouse(args.clickhouse_url, args.database);
            config::init_tracing(&config);
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(signals::run(
                &config,
                signals::SignalsArgs {
                    as_of: args.as_of,
                    recent_months: args.recent_months,
                    pair_window_months: args.pair_window_months,
                    format: args.format,
                },
            ))
        }
        Command::Serve(args) => {
            let mut config = config;
            if let Some(listen) = args.listen {
                config.listen = listen;
            }
            config.set_clickhouse(args.clickhouse_url, args.database);
            config::init_tracing(&config);
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(serve::run_serve(config))
        }
        Command::Analyze(_) => unreachable!("handled before the configuration is loaded"),
        Command::Generate(args) => generate(args),
        Command::Tokens { command } => tokens(&config, command),
        Command::Bench {
            command:
                BenchCommand::Intake {
                    requests,
                    concurrency,
                    rounds,
                },
        } => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(bench::intake(requests, &concurrency, rounds))
        }
        Command::Bench {
            command: BenchCommand::Replay { events, keep },
        } => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(bench_replay::run(events, keep))
        }
        Command::Bench {
            command:
                BenchCommand::Process {
                    events,
                    partitions,
                    kafka_brokers,
                    clickhouse_url,
                    rounds,
                    batch_max_records,
                },
        } => {
            config::init_tracing(&config);
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(bench_process::run(bench_process::ProcessBench {
                events,
                partitions,
                brokers: kafka_brokers,
                clickhouse_url,
                rounds: usize::from(rounds),
                batch_max_records,
            }))
        }
        Command::Bench {
            command:
                BenchCommand::Store {
                    clickhouse_url,
                    native_port,
                    database,
                    events,
                    sink_rows,
                    runs,
                    group_by_spill_bytes,
                },
        } => {
            config::init_tracing(&config);
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(bench_store::run(bench_store::StoreBench {
                url: clickhouse_url,
                native_port,
                database,
                events,
                sink_rows,
                runs: runs.max(1),
                group_by_spill_bytes,
            }))
        }
        Command::Bench {
            command: BenchCommand::Signals { series },
        } => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(bench_signals::run(series.max(1)))
        }
        Command::Rules => {
            for rule in ods_validation::Rule::ALL {
                println!("{:<28} {}", rule.id(), rule.description());
            }
            Ok(())
        }
        Command::Migrate(args) => {
            config::init_tracing(&config);
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(migrate(args))
        }
        Command::Replay(args) => {
            config::init_tracing(&config);
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            match args.from {
                None => runtime.block_on(runner::replay(&config)),
                Some(point) => runtime.block_on(runner::replay_from(&config, point)),
            }
        }
    }
}

/// `ods analyze`: reads the input, runs the method, writes the table; nothing is written when
/// the input or an option is wrong.
fn analyze(args: &AnalyzeArgs, options: &ods_analyze::Options) -> Result<()> {
    use std::io::{Read, Write};
    let method: ods_analyze::Method = args
        .method
        .parse()
        .map_err(|e: ods_analyze::AnalyzeError| anyhow::anyhow!("{e}"))?;
    let format: ods_analyze::Format = args
        .format
        .parse()
        .map_err(|e: ods_analyze::AnalyzeError| anyhow::anyhow!("{e}"))?;
    let mut input = Vec::new();
    if args.input.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut input)?;
    } else {
        input = std::fs::read(&args.input)
            .with_context(|| format!("reading {}", args.input.display()))?;
    }
    let table = ods_analyze::analyze(method, options, input.as_slice())
        .with_context(|| format!("{} on {}", method, args.input.display()))?;
    let mut out = Vec::new();
    table.write(format, &mut out)?;
    if args.output.as_os_str() == "-" {
        std::io::stdout().write_all(&out)?;
    } else {
        std::fs::write(&args.output, out)
            .with_context(|| format!("writing {}", args.output.display()))?;
    }
    Ok(())
}

async fn migrate(args: MigrateArgs) -> Result<()> {
    let config = ods_clickhouse::ClickHouseConfig {
        url: args.clickhouse_url.clone(),
        database: args.database.clone(),
        ..ods_clickhouse::ClickHouseConfig::default()
    };
    let store = ods_clickhouse::ClickHouseStore::connect(&config)
        .await
        .with_context(|| format!("connecting to ClickHouse at {}", args.clickhouse_url))?;
    let report = store.migrate().await.context("migrating")?;
    println!(
        "database {}: applied {:?}, already applied {:?} (server {}.{})",
        args.database,
        report.applied,
        report.already,
        store.capabilities().version.major,
        store.capabilities().version.minor
    );
    Ok(())
}

fn generate(args: GenerateArgs) -> Result<()> {
    let lists = ods_codelists::CodeLists::bundled().context("loading the code lists")?;
    let reference =
        ods_codelists::reference::ReferenceData::bundled().context("loading reference data")?;
    let scenario = match &args.scenario {
        Some(path) => {
            let s = ods_generator::Scenario::load(path)?;
            s.check(&lists, &path.display().to_string())?;
            s
        }
        None => ods_generator::Scenario::default(),
    };
    let cfg = ods_generator::GeneratorConfig {
        from: args.from,
        to: args.to,
        seed: args.seed,
        doctors: args.doctors,
        scale: args.scale,
        scenario,
        ..ods_generator::GeneratorConfig::default()
    };
    let records = ods_generator::generate(&cfg, &lists, &reference)?;
    let mut out = String::new();
    for r in &records {
        out.push_str(&serde_json::to_string(r)?);
        out.push('\n');
    }
    if args.out == "-" {
        use std::io::Write;
        std::io::stdout().write_all(out.as_bytes())?;
    } else {
        std::fs::write(&args.out, out).with_context(|| format!("writing {}", args.out))?;
        eprintln!("wrote {} records to {}", records.len(), args.out);
    }
    Ok(())
}

fn tokens(config: &Config, command: TokensCommand) -> Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let store = TokenStore::open(&config.tokens_path())?;
    match command {
        TokensCommand::Create(args) => {
            let role = Role::parse(&args.role).with_context(|| {
                format!(
                    "unknown role '{}': use reporter, analyst, sector_fund or admin",
                    args.role
                )
            })?;
            let principal = match role {
                Role::Reporter => {
                    let big = args
                        .big
                        .as_deref()
                        .context("a reporter token needs --big <BIG number>")?;
                    let big = BigNumber::parse(big)?;
                    let affiliation = match (&args.service_id, args.self_employed) {
                        (Some(id), false) => {
                            let lists = config.code_lists()?;
                            if lists.services.get(id).is_none() {
                                anyhow::bail!(
                                    "--service-id '{id}' is not in the services code list"
                                );
                            }
                            Affiliation::Service(id.clone())
                        }
                        (None, true) => Affiliation::SelfEmployed,
                        _ => anyhow::bail!(
                            "a reporter token needs either --service-id <ID> or --self-employed"
                        ),
                    };
                    let key = config.pseudonym_key()?;
                    Principal::Reporter {
                        pseudonym: Pseudonymizer::new(key).pseudonym(&big),
                        affiliation,
                    }
                }
                Role::Analyst => Principal::Analyst,
                Role::Admin => Principal::Admin,
                Role::SectorFund => Principal::SectorFund {
                    sectors: args.sectors.clone(),
                },
            };
            let token = store.create(&principal, &args.label)?;
            println!("{token}");
        }
        TokensCommand::List => {
            for t in store.list()? {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    t.id,
                    t.role.as_str(),
                    t.service.as_deref().unwrap_or("-"),
                    if t.sectors.is_empty() {
                        "-".to_string()
                    } else {
                        t.sectors.join(",")
                    },
                    t.revoked_at
                        .map(|r| format!("revoked {}", r.to_rfc3339()))
                        .unwrap_or_else(|| "active".into()),
                    t.label
                );
            }
        }
        TokensCommand::Revoke { id } => {
            store.revoke(&id)?;
            eprintln!("revoked {id}");
        }
    }
    Ok(())
}
