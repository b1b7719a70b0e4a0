//! `ods replay`: rebuilds the embedded store from the embedded log, in full (with the embedded
//! runner) or from a point (`--from`, [`EmbeddedStore::replay_from`]), with a progress bar.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, Utc};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ods_log::EmbeddedLog;
use ods_processor::Processor;
use ods_runner::embedded::{self, EMBEDDED_SOURCE, NOTIFICATIONS_TOPIC};
use ods_store::{EmbeddedStore, LogTopic, ReplayPhase};

use crate::config::Config;

/// Where `ods replay --from` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayPoint {
    /// A log offset.
    Offset(i64),
    /// The first record appended at or after this time.
    Time(DateTime<Utc>),
}

/// Parses `--from`: an offset (digits), an RFC 3339 time, or a date (midnight UTC).
pub fn parse_replay_point(text: &str) -> Result<ReplayPoint, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<i64>()
            .map(ReplayPoint::Offset)
            .map_err(|_| format!("offset {text} is too large (at most {})", i64::MAX));
    }
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(ReplayPoint::Time(time.with_timezone(&Utc)));
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        if let Some(midnight) = date.and_hms_opt(0, 0, 0) {
            return Ok(ReplayPoint::Time(midnight.and_utc()));
        }
    }
    Err(format!(
        "`{text}` is neither a log offset (digits, e.g. 120000), an RFC 3339 time \
         (2024-03-01T08:00:00Z) nor a date (2024-03-01)"
    ))
}

/// A progress bar on stderr (drawn only on a terminal); `visible: false` starts it hidden.
fn bar(total: i64, message: &'static str, visible: bool) -> ProgressBar {
    let target = if visible {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(u64::try_from(total).unwrap_or(0)), target);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:<26} [{bar:32}] {percent:>3}%  {human_pos}/{human_len} records  eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(message);
    bar
}

/// Refuses a data directory without an embedded log (a mistyped `--data-dir` would otherwise
/// get a new, empty log and store).
fn require_log(config: &Config) -> Result<()> {
    let path = config.log_path();
    if !path.is_file() {
        anyhow::bail!(
            "no embedded log at {}: is --data-dir (or ODS_DATA_DIR) the directory `ods run` uses?",
            path.display()
        );
    }
    Ok(())
}

/// `ods replay`: clears the store and rebuilds every aggregate from the log.
pub async fn replay(config: &Config) -> Result<()> {
    require_log(config)?;
    // emptying the store under a running server would show it half rebuilt
    let _lock =
        crate::data_dir_lock::DataDirLock::acquire(&config.data_dir)?.map_err(|holder| {
            anyhow::anyhow!(
            "`ods run` is running on {} ({holder}): stop it first, or use `ods replay --from 0`, \
             which re-processes every notification in one transaction while it runs",
            config.data_dir.display()
        )
        })?;
    let lists = Arc::new(config.code_lists()?);
    let log = EmbeddedLog::open(&config.log_path(), 16)?;
    let store = Arc::new(EmbeddedStore::open(&config.store_path())?);
    let processor = Arc::new(Processor::new(lists, ods_validation::Limits::default()));
    let total = log.end_offset(NOTIFICATIONS_TOPIC)?;
    store.reset()?;
    let started = Instant::now();
    let progress = bar(total, "replaying", true);
    let mut done = 0usize;
    let mut pipeline = embedded::Pipeline::new(
        log.clone(),
        store,
        processor,
        config.processor_batch_size,
        None,
    );
    loop {
        let stats = pipeline.step().await?;
        if stats.records == 0 {
            break;
        }
        done += stats.records;
        progress.set_position(done as u64);
    }
    progress.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let peak = peak_memory_mb()
        .map(|mb| format!(", peak memory {mb:.0} MB"))
        .unwrap_or_default();
    eprintln!(
        "replayed {done}/{total} records in {seconds:.1}s ({:.0} records/s{peak})",
        done as f64 / seconds.max(1e-9)
    );
    Ok(())
}

/// `ods replay --from`: re-processes every notification with a record at or after `point`.
pub async fn replay_from(config: &Config, point: ReplayPoint) -> Result<()> {
    require_log(config)?;
    let lists = Arc::new(config.code_lists()?);
    let log = EmbeddedLog::open(&config.log_path(), 16)?;
    let store = EmbeddedStore::open(&config.store_path())?;
    let processor = Processor::new(lists, ods_validation::Limits::default());
    let started = Instant::now();
    let stats = tokio::task::spawn_blocking(move || -> Result<_> {
        let from = match point {
            ReplayPoint::Offset(offset) => offset,
            ReplayPoint::Time(time) => {
                let offset = log.offset_at(NOTIFICATIONS_TOPIC, time.timestamp_millis())?;
                eprintln!("the first record appended at or after {time} is offset {offset}");
                offset
            }
        };
        let end = log.end_offset(NOTIFICATIONS_TOPIC)?;
        if from > end {
            anyhow::bail!("--from {from} is past the end of the log (offset {end})");
        }
        // drawn from their first report on (nothing is drawn when there is nothing to do)
        let finding = bar(0, "finding notifications", false);
        let reapplying = bar(0, "re-applying their records", false);
        let source = LogTopic {
            log: &log,
            topic: NOTIFICATIONS_TOPIC,
        };
        let stats = store
            .replay_from(EMBEDDED_SOURCE, 0, &processor, from, &source, &mut |p| {
                let bar = match p.phase {
                    ReplayPhase::Finding => {
                        if finding.position() == 0 {
                            finding.set_draw_target(ProgressDrawTarget::stderr());
                        }
                        &finding
                    }
                    ReplayPhase::Reapplying => {
                        if !finding.is_finished() {
                            finding.finish_and_clear();
                            reapplying.set_draw_target(ProgressDrawTarget::stderr());
                        }
                        &reapplying
                    }
                };
                bar.set_length(u64::try_from(p.total).unwrap_or(0));
                bar.set_position(u64::try_from(p.done).unwrap_or(0));
            })
            .context("re-processing from the replay point")?;
        finding.finish_and_clear();
        reapplying.finish_and_clear();
        Ok(stats)
    })
    .await
    .context("the replay task failed")??;
    let seconds = started.elapsed().as_secs_f64();
    if stats.from >= stats.until {
        eprintln!(
            "nothing to replay: the processor has processed up to offset {} and --from is {}",
            stats.until, stats.from
        );
        return Ok(());
    }
    let a = &stats.applied;
    eprintln!(
        "re-processed {} notifications with records in offsets {}..{} ({} records applied: {} \
         validated, {} rejected, {} withdrawn, {} skipped, {} zero reports, {} dead letters) \
         in {seconds:.1}s; records from offset {} on are left to the processor",
        stats.notifications,
        stats.from,
        stats.until,
        a.records,
        a.validated,
        a.rejected,
        a.withdrawn,
        a.skipped,
        a.zero_reports,
        a.dead_letters,
        stats.until
    );
    tracing::info!(
        from = stats.from,
        until = stats.until,
        notifications = stats.notifications,
        records = a.records,
        "replay from a point committed"
    );
    Ok(())
}

/// The process's peak resident memory (Linux `VmHWM`), in MB.
pub fn peak_memory_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_points_parse_with_clear_errors() {
        assert_eq!(
            parse_replay_point("120000"),
            Ok(ReplayPoint::Offset(120_000))
        );
        let march = NaiveDate::from_ymd_opt(2024, 3, 1).unwrap();
        assert_eq!(
            parse_replay_point("2024-03-01"),
            Ok(ReplayPoint::Time(
                march.and_hms_opt(0, 0, 0).unwrap().and_utc()
            ))
        );
        assert_eq!(
            parse_replay_point("2024-03-01T09:00:00+01:00"),
            Ok(ReplayPoint::Time(
                march.and_hms_opt(8, 0, 0).unwrap().and_utc()
            ))
        );
        let error = parse_replay_point("yesterday").unwrap_err();
        assert!(
            error.contains("`yesterday`") && error.contains("RFC 3339"),
            "{error}"
        );
        assert!(parse_replay_point("2024-02-30").is_err());
        assert!(parse_replay_point("-5").is_err());
        assert!(parse_replay_point("99999999999999999999")
            .unwrap_err()
            .contains("too large"));
    }
}
