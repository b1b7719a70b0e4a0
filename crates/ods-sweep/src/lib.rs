//! A signal sweep over any [`AnalyticsStore`]: reads what the rules of `ods-signals` need and
//! runs them **as of a month** (the last complete month), so a sweep is reproducible: the same
//! store and the same month give the same signals with the same ids.
//!
//! * **Aberrations**: one monthly series per SBI section x diagnosis group, from the first month
//!   with data to the as-of month (months without notifications are 0); the improved Farrington
//!   method (Noufaily et al. 2013, R `farringtonFlexible`) evaluates the last
//!   [`SweepConfig::recent_months`] of each. The control is Noufaily's scaled to monthly data
//!   ([`monthly_control`]).
//! * **Under-reporting**: per SBI section, the notifications of the last complete calendar year
//!   up to the as-of month against the expected count: workforce (CBS 85272NED) x the section's
//!   relative PIM sentinel incidence ([`ReferenceData::section_rate_ratio`]), calibrated to the
//!   observed total (a section is flagged for reporting less than the others, not for the
//!   registry's known overall under-count), below the 99.8% funnel limit.
//! * **Emerging pairs**: (diagnosis, primary exposure) pairs in the window of the last
//!   [`SweepConfig::pair_window_months`] months: Evans' rule with IC025 > 0, at least
//!   [`PairRules::min_count`] notifications from at least [`PairRules::min_reporters`] doctors,
//!   and not already signalling over all the months before the window
//!   ([`newly_disproportionate`]): stratified by period, so established associations do not
//!   signal again every time.
//!
//! * **Silent services**: occupational health services whose doctors (at least
//!   [`SweepConfig::silent_min_reporters`]) all reported in the [`SweepConfig::baseline_months`]
//!   before the recent [`SweepConfig::silent_months`] and none of them since, zero reports
//!   counting as reports ([`participation`]).
//!
//! Counts are read unsuppressed (`counts_unsuppressed`, `exact_counts_by_reporter`): the sweep is
//! an internal computation; what it raises goes to expert review, and the signals carry counts
//! only as the numbers that raised them.

pub mod participation;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ods_codelists::reference::ReferenceData;
use ods_model::Period;
use ods_signals::{
    aberrations, calibrated, emerging_pairs, silent_services, under_reporting, PairCount,
    PairRules, SectorExpectation, Series, Signal, SignalError,
};
use ods_stats::aberration::{FlexibleControl, ThresholdMethod};
use ods_store::{AnalyticsStore, CountQuery, Dimension, SignalRecord, SignalStatus, StoreError};

/// What a sweep looks at.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepConfig {
    /// The last month the sweep considers (default: the month before the current one).
    pub as_of: Period,
    /// Months at the end of each series evaluated for aberrations (default 1: the as-of month).
    pub recent_months: usize,
    /// Months of the window of the emerging-pair analysis, ending at the as-of month (default 12).
    pub pair_window_months: u32,
    /// Thresholds of the emerging-pair rule.
    pub pair_rules: PairRules,
    /// The improved Farrington control for the monthly series.
    pub control: FlexibleControl,
    /// Months of the recent window in which a silent service's doctors sent nothing (default
    /// 12).
    pub silent_months: u32,
    /// Months of the baseline window before it, in which they reported (default 24).
    pub baseline_months: u32,
    /// Fewest doctors a service had in the baseline window to signal when all went silent
    /// (default 2: one doctor leaving is no pattern).
    pub silent_min_reporters: u64,
}

impl SweepConfig {
    /// The default sweep as of `as_of`.
    pub fn as_of(as_of: Period) -> SweepConfig {
        SweepConfig {
            as_of,
            recent_months: 1,
            pair_window_months: 12,
            pair_rules: PairRules::default(),
            control: monthly_control(),
            silent_months: 12,
            baseline_months: 24,
            silent_min_reporters: 2,
        }
    }
}

/// Noufaily et al.'s recommended settings (negative binomial plug-in threshold, a seasonal
/// factor over all past data, reweighting, trend test), scaled from weekly to monthly data:
/// `b = 3` years of history (the registry's series have structural breaks: the end of
/// construction's collective notification around 2017, COVID-19 in 2020-2022), a window of
/// `w = 2` months around each reference month, `noPeriods = 4` and the last 3 months left out of
/// the fit (Noufaily's 26 weeks would drop two of the three reference years of monthly data).
/// One-sided alpha 0.05 and at least 5 cases in the last 4 months (R's `limit54`).
pub fn monthly_control() -> FlexibleControl {
    FlexibleControl {
        b: 3,
        w: 2,
        no_periods: 4,
        past_weeks_not_included: Some(3),
        threshold_method: ThresholdMethod::NbPlugin,
        ..FlexibleControl::default()
    }
}

/// Why a sweep failed.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The store could not answer.
    #[error("reading the store: {0}")]
    Store(#[from] StoreError),
    /// A series could not be analysed.
    #[error(transparent)]
    Signal(#[from] SignalError),
}

/// `p` moved by `delta` months.
pub(crate) fn shift(p: Period, delta: i32) -> Period {
    let index = p.index() + delta;
    Period::new(
        index.div_euclid(12),
        u32::try_from(index.rem_euclid(12) + 1).unwrap_or(1),
    )
    .unwrap_or(p)
}

fn exact(group_by: Vec<Dimension>, from: Option<Period>, to: Period) -> CountQuery {
    CountQuery {
        group_by,
        from: from.map(|p| p.to_string()),
        to: Some(to.to_string()),
        ..CountQuery::default()
    }
}

/// The monthly series per SBI section x diagnosis group, from the first month with data to
/// `as_of`.
pub async fn section_group_series(
    store: &dyn AnalyticsStore,
    as_of: Period,
) -> Result<Vec<Series>, StoreError> {
    let cells = store
        .counts_unsuppressed(&exact(
            vec![
                Dimension::Month,
                Dimension::SbiSection,
                Dimension::DiagnosisGroup,
            ],
            None,
            as_of,
        ))
        .await?;
    let mut first: Option<Period> = None;
    let mut by_subject: BTreeMap<(String, String), HashMap<Period, u64>> = BTreeMap::new();
    for (key, n) in cells {
        let (Some(month), Some(section), Some(group)) = (
            key.get("month").and_then(|m| Period::parse(m).ok()),
            key.get("sbi_section"),
            key.get("diagnosis_group"),
        ) else {
            continue;
        };
        first = first.min(Some(month)).or(Some(month));
        by_subject
            .entry((section.clone(), group.clone()))
            .or_default()
            .insert(month, u64::try_from(n).unwrap_or(0));
    }
    let Some(first) = first else {
        return Ok(Vec::new());
    };
    let mut months = Vec::new();
    let mut p = first;
    while p <= as_of {
        months.push(p);
        p = p.next();
    }
    Ok(by_subject
        .into_iter()
        .map(|((section, group), counts)| Series {
            subject: BTreeMap::from([
                ("sbi_section".to_string(), section),
                ("diagnosis_group".to_string(), group),
            ]),
            periods: months.iter().map(|m| m.to_string()).collect(),
            counts: months
                .iter()
                .map(|m| counts.get(m).copied().unwrap_or(0))
                .collect(),
        })
        .collect())
}

/// The last complete calendar year up to `as_of`.
pub fn last_complete_year(as_of: Period) -> i32 {
    if as_of.month() == 12 {
        as_of.year()
    } else {
        as_of.year() - 1
    }
}

/// Observed and (uncalibrated) expected notifications per SBI section in `year`: expected =
/// workforce x the section's relative PIM incidence, scaled later by [`calibrated`].
pub async fn section_expectations(
    store: &dyn AnalyticsStore,
    reference: &ReferenceData,
    year: i32,
) -> Result<Vec<SectorExpectation>, StoreError> {
    let (Ok(from), Ok(to)) = (Period::new(year, 1), Period::new(year, 12)) else {
        return Ok(Vec::new());
    };
    let cells = store
        .counts_unsuppressed(&exact(vec![Dimension::SbiSection], Some(from), to))
        .await?;
    let observed: HashMap<&str, i64> = cells
        .iter()
        .filter_map(|(k, n)| Some((k.get("sbi_section")?.as_str(), *n)))
        .collect();
    Ok(reference
        .workforce
        .employed_x1000
        .iter()
        .map(|(section, employed)| SectorExpectation {
            subject: BTreeMap::from([("sbi_section".to_string(), section.clone())]),
            observed: u64::try_from(observed.get(section.as_str()).copied().unwrap_or(0))
                .unwrap_or(0),
            expected: employed * reference.section_rate_ratio(section),
        })
        .collect())
}

/// Notifications and distinct reporters per (diagnosis, primary exposure) from `from` (or the
/// first month with data) to `to`.
pub async fn pair_counts(
    store: &dyn AnalyticsStore,
    from: Option<Period>,
    to: Period,
) -> Result<Vec<PairCount>, StoreError> {
    let rows = store
        .exact_counts_by_reporter(&exact(
            vec![Dimension::Diagnosis, Dimension::Exposure],
            from,
            to,
        ))
        .await?;
    let mut pairs: BTreeMap<(String, String), (u64, BTreeSet<String>)> = BTreeMap::new();
    for (key, reporter, n) in rows {
        let (Some(diagnosis), Some(exposure)) = (key.get("diagnosis"), key.get("exposure")) else {
            continue;
        };
        let entry = pairs
            .entry((diagnosis.clone(), exposure.clone()))
            .or_default();
        entry.0 += u64::try_from(n).unwrap_or(0);
        entry.1.insert(reporter);
    }
    Ok(pairs
        .into_iter()
        .map(|((diagnosis, exposure), (count, reporters))| PairCount {
            exposure,
            diagnosis,
            count,
            reporters: reporters.len() as u64,
        })
        .collect())
}

/// The pair signals of the current window whose pair did not already signal over the history
/// before it: an established association (noise and hearing loss, flour dust and asthma) is
/// disproportionate over the history and is no news; a pair that is new, or that has only now
/// become disproportionate, is.
pub fn newly_disproportionate(current: Vec<Signal>, before: &[Signal]) -> Vec<Signal> {
    let known: BTreeSet<&BTreeMap<String, String>> = before.iter().map(|s| &s.subject).collect();
    current
        .into_iter()
        .filter(|s| !known.contains(&s.subject))
        .collect()
}

/// Runs every rule as of `config.as_of`; signals ordered by kind, then id.
pub async fn sweep(
    store: &dyn AnalyticsStore,
    reference: &ReferenceData,
    config: &SweepConfig,
) -> Result<Vec<Signal>, SweepError> {
    let as_of = config.as_of;
    let mut signals = Vec::new();

    let series = section_group_series(store, as_of).await?;
    signals.extend(aberrations(&series, &config.control, config.recent_months)?);

    let year = last_complete_year(as_of);
    let sections = section_expectations(store, reference, year).await?;
    // a year without notifications says nothing about who reports less than the others
    if sections.iter().any(|s| s.observed > 0) {
        signals.extend(under_reporting(&year.to_string(), &calibrated(&sections)));
    }

    let window = config.pair_window_months.max(1) as i32;
    let from = shift(as_of, 1 - window);
    let pairs = pair_counts(store, Some(from), as_of).await?;
    let before_to = shift(from, -1);
    let history = pair_counts(store, None, before_to).await?;
    signals.extend(newly_disproportionate(
        emerging_pairs(&format!("{from}..{as_of}"), &pairs, &config.pair_rules),
        &emerging_pairs(&format!("..{before_to}"), &history, &config.pair_rules),
    ));

    let windows =
        participation::Windows::ending(as_of, config.silent_months, config.baseline_months);
    let activity = store.reporter_activity().await?;
    // nobody at all reported in the recent window (data not loaded yet, an outage, a month in
    // the future): that says nothing about any one service
    let recent = [windows.recent[0].to_string(), windows.recent[1].to_string()];
    let anyone_recent = activity.iter().any(|a| {
        (recent[0].as_str()..=recent[1].as_str()).contains(&a.period.as_str())
            && a.notifications + a.zero_reports > 0
    });
    if anyone_recent {
        signals.extend(silent_services(
            &participation::Windows::label(windows.recent),
            &participation::Windows::label(windows.baseline),
            &participation::service_participation(&activity, &windows),
            config.silent_min_reporters,
        ));
    }

    signals.sort_by(|a, b| a.kind.cmp(&b.kind).then_with(|| a.id.cmp(&b.id)));
    tracing::info!(
        as_of = %as_of,
        series = series.len(),
        sections = sections.len(),
        pairs = pairs.len(),
        signals = signals.len(),
        "signal sweep done"
    );
    Ok(signals)
}

/// The month before the one of `now_ms` (UTC): the default as-of month of a sweep (the last
/// complete month).
pub fn previous_month(now_ms: i64) -> Period {
    let today = chrono::DateTime::from_timestamp_millis(now_ms)
        .unwrap_or_default()
        .date_naive();
    shift(Period::of(today), -1)
}

/// Why a sweep month is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{as_of} is not complete yet: sweep as of {latest} or earlier")]
pub struct FutureMonth {
    /// The month asked.
    pub as_of: Period,
    /// The latest month a sweep may consider (the previous month).
    pub latest: Period,
}

/// `as_of` when it is complete at `now_ms` (not after the previous month).
pub fn check_as_of(as_of: Period, now_ms: i64) -> Result<Period, FutureMonth> {
    let latest = previous_month(now_ms);
    if as_of > latest {
        Err(FutureMonth { as_of, latest })
    } else {
        Ok(as_of)
    }
}

/// A signal as the store records it when first raised (status `new`, revision 1).
pub fn to_record(signal: &Signal, now_ms: i64) -> SignalRecord {
    SignalRecord {
        id: signal.id.clone(),
        kind: signal.kind.as_str().to_string(),
        subject: signal.subject.clone(),
        period: signal.period.clone(),
        numbers: signal.numbers.clone(),
        method: signal.method.clone(),
        explanation: signal.explanation.clone(),
        status: SignalStatus::New,
        note: None,
        detected_at_ms: now_ms,
        updated_at_ms: now_ms,
        revision: 1,
    }
}

/// What one recorded sweep did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SweepOutcome {
    /// The as-of month.
    pub as_of: String,
    /// Ids of every signal the sweep raised (known ones too).
    pub raised: Vec<String>,
    /// How many of them were new to the store.
    pub new: usize,
}

/// Runs a sweep and records its signals in the store (known ids keep their review state).
pub async fn sweep_and_record(
    store: &dyn AnalyticsStore,
    reference: &ReferenceData,
    config: &SweepConfig,
    now_ms: i64,
) -> Result<SweepOutcome, SweepError> {
    let signals = sweep(store, reference, config).await?;
    let records: Vec<SignalRecord> = signals.iter().map(|s| to_record(s, now_ms)).collect();
    let new = store.record_signals(&records).await?;
    Ok(SweepOutcome {
        as_of: config.as_of.to_string(),
        raised: signals.into_iter().map(|s| s.id).collect(),
        new,
    })
}

/// Sweeps as of the previous month every `every`, the first time after `first_after` (so a
/// starting service has processed its backlog), and records the signals, until the task is aborted (on shutdown). A failed sweep is logged and tried again at
/// the next tick.
pub fn schedule(
    store: std::sync::Arc<dyn AnalyticsStore>,
    reference: std::sync::Arc<ReferenceData>,
    first_after: std::time::Duration,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + first_after, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let now_ms = now_ms();
            let config = SweepConfig::as_of(previous_month(now_ms));
            match sweep_and_record(store.as_ref(), &reference, &config, now_ms).await {
                Ok(outcome) => tracing::info!(
                    as_of = %outcome.as_of,
                    raised = outcome.raised.len(),
                    new = outcome.new,
                    "scheduled signal sweep recorded"
                ),
                Err(e) => tracing::error!(error = %e, "scheduled signal sweep failed"),
            }
        }
    })
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly by design

    use super::*;

    #[test]
    fn months_shift_across_years_and_the_last_complete_year() {
        let p = |s: &str| Period::parse(s).unwrap();
        assert_eq!(shift(p("2023-03"), -11), p("2022-04"));
        assert_eq!(shift(p("2023-12"), 1), p("2024-01"));
        assert_eq!(last_complete_year(p("2023-12")), 2023);
        assert_eq!(last_complete_year(p("2023-11")), 2022);
    }

    #[test]
    fn the_monthly_control_is_the_one_checked_against_r() {
        // ods-stats' oracle case `sweep_monthly` (tests/oracle/make_fixtures.R) runs R
        // surveillance's farringtonFlexible with exactly these settings
        let c = monthly_control();
        assert_eq!((c.b, c.w, c.no_periods), (3, 2, 4));
        assert_eq!(c.past_weeks_not_included, Some(3));
        assert_eq!(c.threshold_method, ThresholdMethod::NbPlugin);
        assert_eq!(
            c,
            FlexibleControl {
                b: 3,
                w: 2,
                no_periods: 4,
                past_weeks_not_included: Some(3),
                threshold_method: ThresholdMethod::NbPlugin,
                ..FlexibleControl::default()
            }
        );
    }

    #[test]
    fn the_previous_month_of_a_moment() {
        let p = |s: &str| Period::parse(s).unwrap();
        // 2026-12-01T00:00:00Z and a moment before it
        assert_eq!(previous_month(1_796_083_200_000), p("2026-11"));
        assert_eq!(previous_month(1_796_083_199_999), p("2026-10"));
        // 2024-03-01 (after a leap day) and 1970-01-01
        assert_eq!(previous_month(1_709_251_200_000), p("2024-02"));
        assert_eq!(previous_month(0), p("1969-12"));
    }
}
