//! `ods-signals`: where signals are computed. Pure functions from counts to [`Signal`]s, each
//! carrying the numbers that raised it and a one-line explanation a non-statistician reads. The
//! statistics are `ods-stats`' (checked against R `surveillance`); this crate decides what is
//! a signal and says why. Reading the counts from a store, scheduling, the review workflow
//! (`new -> under_review -> confirmed | dismissed`) and the API are the signal service's job.
//!
//! * [`aberrations`]: a monthly count series (one per sector x diagnosis group) whose latest
//!   periods exceed the improved Farrington threshold (Noufaily et al. 2013, R
//!   `farringtonFlexible`), with the minimum of 5 cases in the evaluated period (`limit54`).
//! * [`under_reporting`]: sectors whose observed count lies below the 99.8% funnel limit of
//!   the count expected from reference incidence x workforce (indirect standardisation, SIR with
//!   exact Poisson interval; Spiegelhalter 2005).
//! * [`emerging_pairs`]: disease-exposure pairs that are disproportionately frequent in a period
//!   window: Evans' screening rule (PRR >= 2, Yates chi-square >= 4, a >= 3) **and** the BCPNN
//!   IC025 > 0, with a minimum count, and never carried by a single reporter. (When the
//!   diagnosis occurs with no other exposure, PRR is not finite and IC025 > 0 decides alone.)
//!
//! * [`silent_services`]: occupational health services whose doctors all reported (a
//!   notification or a zero report) in a baseline window and none of them since: "zero reports
//!   vs no response" (THOR), for the registry and the inspectorate only.
//!
//! Signal ids are deterministic (a hash of kind, subject and period; for emerging pairs kind and
//! subject, for silent services the service and its last activity, since their windows slide),
//! so a re-run, or next month's sweep, finds the same signal again instead of raising a new one.

use std::collections::BTreeMap;

use ods_stats::aberration::{farrington_flexible, Details, FlexibleControl};
use ods_stats::disproportionality::{analyse, TwoByTwo};
use ods_stats::standardisation::{funnel_limits, sir};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// What kind of signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalKind {
    /// More notifications than expected in a period (improved Farrington).
    Aberration,
    /// Fewer notifications than expected from the workforce (funnel limit).
    UnderReporting,
    /// A disease-exposure pair reported disproportionately often.
    EmergingPair,
    /// An occupational health service all of whose reporting doctors stopped reporting.
    SilentService,
}

impl SignalKind {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            SignalKind::Aberration => "aberration",
            SignalKind::UnderReporting => "under_reporting",
            SignalKind::EmergingPair => "emerging_pair",
            SignalKind::SilentService => "silent_service",
        }
    }
}

/// One signal: what, where, when, the numbers and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Signal {
    /// Deterministic id (kind, subject, period).
    pub id: String,
    /// Kind.
    pub kind: SignalKind,
    /// What it is about, e.g. `sector` and `diagnosis_group`, or `exposure` and `diagnosis`.
    pub subject: BTreeMap<String, String>,
    /// The period it is about (`YYYY-MM`, or `YYYY-MM..YYYY-MM` for a window).
    pub period: String,
    /// The numbers that raised it (observed, expected, thresholds, statistics).
    pub numbers: BTreeMap<String, f64>,
    /// The method, e.g. `farrington_flexible`.
    pub method: String,
    /// One line for people who act on it.
    pub explanation: String,
}

fn signal_id(kind: SignalKind, subject: &BTreeMap<String, String>, period: &str) -> String {
    let mut h = Sha256::new();
    h.update(kind.as_str());
    for (k, v) in subject {
        h.update([0]);
        h.update(k);
        h.update([1]);
        h.update(v);
    }
    h.update([2]);
    h.update(period);
    hex::encode(&h.finalize()[..12])
}

fn subject_text(subject: &BTreeMap<String, String>) -> String {
    subject
        .iter()
        .map(|(k, v)| format!("{} {v}", k.replace('_', " ")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why signals could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    /// A series is malformed (its message names it).
    #[error("series {subject}: {reason}")]
    Series {
        /// The series' subject.
        subject: String,
        /// What is wrong.
        reason: String,
    },
}

/// A monthly count series: one value per month, oldest first, no gaps.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// What it counts, e.g. `sector` and `diagnosis_group`.
    pub subject: BTreeMap<String, String>,
    /// The months (`YYYY-MM`), oldest first.
    pub periods: Vec<String>,
    /// Notifications per month.
    pub counts: Vec<u64>,
}

/// Aberrations in the last `recent` months of every series (monthly, frequency 12), with the
/// improved Farrington method and `control` (default: [`FlexibleControl::noufaily`] with
/// `b = 3` years, as the registry's series are short). Series too short for the method give no
/// signal.
pub fn aberrations(
    series: &[Series],
    control: &FlexibleControl,
    recent: usize,
) -> Result<Vec<Signal>, SignalError> {
    let mut out = Vec::new();
    for s in series {
        if s.periods.len() != s.counts.len() {
            return Err(SignalError::Series {
                subject: subject_text(&s.subject),
                reason: format!("{} periods but {} counts", s.periods.len(), s.counts.len()),
            });
        }
        let n = s.counts.len();
        // the method needs b years of history plus the window around each reference month
        if n <= control.b * 12 + control.w {
            continue;
        }
        let control = FlexibleControl {
            range: Some(n.saturating_sub(recent.max(1))..n),
            ..control.clone()
        };
        let counts: Vec<f64> = s.counts.iter().map(|&c| c as f64).collect();
        let points =
            farrington_flexible(&counts, 12, &control).map_err(|e| SignalError::Series {
                subject: subject_text(&s.subject),
                reason: e.to_string(),
            })?;
        for point in points {
            if point.alarm != Some(true) {
                continue;
            }
            let period = s.periods.get(point.index).cloned().unwrap_or_default();
            let mut numbers = BTreeMap::new();
            numbers.insert("observed".to_string(), point.observed);
            if let Some(u) = point.upperbound {
                numbers.insert("upperbound".to_string(), u);
            }
            if let Some(e) = point.expected {
                numbers.insert("expected".to_string(), e);
            }
            if let Details::Flexible(d) = &point.details {
                if let Some(p) = d.pvalue {
                    numbers.insert("pvalue".to_string(), p);
                }
            }
            numbers.insert("alpha".to_string(), control.alpha);
            let explanation = format!(
                "{} notifications for {} in {period}, more than the {:.1} that {} years of history allow (expected {:.1}; improved Farrington, alpha {}).",
                point.observed,
                subject_text(&s.subject),
                point.upperbound.unwrap_or(f64::NAN),
                control.b,
                point.expected.unwrap_or(f64::NAN),
                control.alpha
            );
            out.push(Signal {
                id: signal_id(SignalKind::Aberration, &s.subject, &period),
                kind: SignalKind::Aberration,
                subject: s.subject.clone(),
                period,
                numbers,
                method: "farrington_flexible".into(),
                explanation,
            });
        }
    }
    Ok(out)
}

/// Observed and expected notifications of one sector in one period.
#[derive(Debug, Clone, PartialEq)]
pub struct SectorExpectation {
    /// Sector (SBI section or code) and its label.
    pub subject: BTreeMap<String, String>,
    /// Notifications counted.
    pub observed: u64,
    /// Expected from reference incidence x workforce.
    pub expected: f64,
}

/// Scales reference-based expectations (reference incidence x workforce) so that they add up to
/// the observed total: a sector is then flagged for reporting less than the other sectors, not
/// for the registry's known overall under-count (it sees about 1 in 7 of the cases sentinel
/// doctors find, `shared/domain.md` §4). Without observations or expectations the input is
/// returned unchanged.
pub fn calibrated(sectors: &[SectorExpectation]) -> Vec<SectorExpectation> {
    let observed: f64 = sectors.iter().map(|s| s.observed as f64).sum();
    let expected: f64 = sectors
        .iter()
        .map(|s| s.expected)
        .filter(|e| e.is_finite())
        .sum();
    if observed <= 0.0 || expected <= 0.0 {
        return sectors.to_vec();
    }
    let factor = observed / expected;
    sectors
        .iter()
        .map(|s| SectorExpectation {
            expected: s.expected * factor,
            ..s.clone()
        })
        .collect()
}

/// Sectors whose observed count is below the 99.8% funnel limit of their expected count: the
/// registry sees far fewer notifications than the workforce and reference incidence predict.
pub fn under_reporting(period: &str, sectors: &[SectorExpectation]) -> Vec<Signal> {
    let mut out = Vec::new();
    for s in sectors {
        if !s.expected.is_finite() || s.expected <= 0.0 {
            continue;
        }
        let (Ok(ratio), Ok(limits)) =
            (sir(s.observed, s.expected, 0.95), funnel_limits(s.expected))
        else {
            continue;
        };
        if (s.observed as f64) >= limits.l998.lower_count {
            continue;
        }
        let mut numbers = BTreeMap::new();
        numbers.insert("observed".to_string(), s.observed as f64);
        numbers.insert("expected".to_string(), s.expected);
        numbers.insert("sir".to_string(), ratio.ratio);
        numbers.insert("sir_lower".to_string(), ratio.lower);
        numbers.insert("sir_upper".to_string(), ratio.upper);
        numbers.insert("funnel_998_lower".to_string(), limits.l998.lower_count);
        numbers.insert("funnel_95_lower".to_string(), limits.l95.lower_count);
        let explanation = format!(
            "{} notifications for {} in {period} where about {:.0} were expected from its workforce: {:.0}% of expected (95% CI {:.0}-{:.0}%), below the 99.8% funnel limit of {:.0}; probable under-reporting.",
            s.observed,
            subject_text(&s.subject),
            s.expected,
            100.0 * ratio.ratio,
            100.0 * ratio.lower,
            100.0 * ratio.upper,
            limits.l998.lower_count
        );
        out.push(Signal {
            id: signal_id(SignalKind::UnderReporting, &s.subject, period),
            kind: SignalKind::UnderReporting,
            subject: s.subject.clone(),
            period: period.to_string(),
            numbers,
            method: "sir_funnel".into(),
            explanation,
        });
    }
    out
}

/// Notifications of one disease-exposure pair in a window, with how many doctors reported them.
#[derive(Debug, Clone, PartialEq)]
pub struct PairCount {
    /// Exposure code.
    pub exposure: String,
    /// Diagnosis code.
    pub diagnosis: String,
    /// Notifications with both.
    pub count: u64,
    /// Distinct reporters of those notifications.
    pub reporters: u64,
}

/// Thresholds of [`emerging_pairs`].
#[derive(Debug, Clone, PartialEq)]
pub struct PairRules {
    /// Fewest notifications of the pair (default 3, Evans).
    pub min_count: u64,
    /// Fewest distinct reporters (default 2: no signal carried by one doctor).
    pub min_reporters: u64,
}

impl Default for PairRules {
    fn default() -> Self {
        PairRules {
            min_count: 3,
            min_reporters: 2,
        }
    }
}

/// Pairs disproportionately frequent in the window `period`, from the pair counts of that
/// window: each pair's 2x2 table is (pair, exposure without the diagnosis, diagnosis without the
/// exposure, the rest), over all pair-notifications of the window. A signal needs Evans' rule,
/// IC025 > 0, `min_count` and `min_reporters`.
pub fn emerging_pairs(period: &str, pairs: &[PairCount], rules: &PairRules) -> Vec<Signal> {
    let total: u64 = pairs.iter().map(|p| p.count).sum();
    let mut by_exposure: BTreeMap<&str, u64> = BTreeMap::new();
    let mut by_diagnosis: BTreeMap<&str, u64> = BTreeMap::new();
    for p in pairs {
        *by_exposure.entry(p.exposure.as_str()).or_default() += p.count;
        *by_diagnosis.entry(p.diagnosis.as_str()).or_default() += p.count;
    }
    let mut out = Vec::new();
    for p in pairs {
        if p.count < rules.min_count.max(3) || p.reporters < rules.min_reporters {
            continue;
        }
        let a = p.count;
        let b = by_exposure.get(p.exposure.as_str()).copied().unwrap_or(a) - a;
        let c = by_diagnosis.get(p.diagnosis.as_str()).copied().unwrap_or(a) - a;
        let d = total.saturating_sub(a + b + c);
        let Ok(result) = analyse(&TwoByTwo { a, b, c, d }, 0.95) else {
            continue;
        };
        // A pair whose diagnosis is reported with no other exposure (c = 0) has no finite PRR;
        // then the IC (which shrinks towards 0 for small counts) decides alone.
        let disproportionate = match result.prr {
            Some(_) => result.evans_signal,
            None => true,
        };
        if !disproportionate || result.ic.ic_lower.is_nan() || result.ic.ic_lower <= 0.0 {
            continue;
        }
        let mut subject = BTreeMap::new();
        subject.insert("exposure".to_string(), p.exposure.clone());
        subject.insert("diagnosis".to_string(), p.diagnosis.clone());
        let mut numbers = BTreeMap::new();
        for (k, v) in [
            ("a", a as f64),
            ("b", b as f64),
            ("c", c as f64),
            ("d", d as f64),
            ("expected", result.expected),
            ("reporters", p.reporters as f64),
            ("ic", result.ic.ic),
            ("ic025", result.ic.ic_lower),
        ] {
            numbers.insert(k.to_string(), v);
        }
        if let Some(prr) = &result.prr {
            numbers.insert("prr".to_string(), prr.estimate);
            numbers.insert("prr_lower".to_string(), prr.lower);
            numbers.insert("prr_upper".to_string(), prr.upper);
        }
        if let Some(chi) = &result.chi_square {
            numbers.insert("chi2_yates".to_string(), chi.yates);
        }
        let how_often = match &result.prr {
            Some(prr) => format!(
                "{:.1} times as often as the diagnosis is reported with other exposures (PRR)",
                prr.estimate
            ),
            None => "and the diagnosis is reported with no other exposure".to_string(),
        };
        let explanation = format!(
            "{a} notifications of diagnosis {} with exposure {} in {period} from {} doctors, {how_often}; about {:.1} expected if unrelated.",
            p.diagnosis, p.exposure, p.reporters, result.expected
        );
        out.push(Signal {
            // a pair emerges once: the id leaves out the sliding window, so the same pair in
            // next month's window is the same signal (with its review state), not a new one
            id: signal_id(SignalKind::EmergingPair, &subject, ""),
            kind: SignalKind::EmergingPair,
            subject,
            period: period.to_string(),
            numbers,
            method: "prr_evans_ic".into(),
            explanation,
        });
    }
    out
}

/// The reporting doctors of one service in a baseline window and in the recent window after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceParticipation {
    /// Service id, or `self_employed`.
    pub service: String,
    /// Distinct doctors active through the service in the baseline window.
    pub reporters_before: u64,
    /// Of those, the doctors with nothing through the service in the recent window.
    pub silent_reporters: u64,
    /// Distinct doctors active through the service in the recent window (new ones too).
    pub reporters_recent: u64,
    /// The last month with any activity through the service.
    pub last_active: String,
}

/// Services whose doctors all went silent: at least `min_reporters` doctors reported through
/// the service in the baseline window and nobody has since, in the recent window `period`
/// (`YYYY-MM..YYYY-MM`). Doctors who send zero reports are not silent. `self_employed` is not
/// a service and never signals, nor does `unknown` (notifications stored before the service was
/// kept with them). The id is the service and its last activity, so the same silence found by
/// later sweeps is the same signal.
pub fn silent_services(
    period: &str,
    baseline: &str,
    services: &[ServiceParticipation],
    min_reporters: u64,
) -> Vec<Signal> {
    let mut out = Vec::new();
    for s in services {
        if s.service == "self_employed"
            || s.service == "unknown"
            || s.reporters_recent > 0
            || s.reporters_before < min_reporters.max(1)
            || s.silent_reporters < s.reporters_before
        {
            continue;
        }
        let subject = BTreeMap::from([("service".to_string(), s.service.clone())]);
        let numbers = BTreeMap::from([
            ("reporters_before".to_string(), s.reporters_before as f64),
            ("silent_reporters".to_string(), s.silent_reporters as f64),
        ]);
        let explanation = format!(
            "All {} doctors who reported through service {} in {baseline} have sent nothing since (no notification, no zero report) in {period}; last activity {}.",
            s.reporters_before, s.service, s.last_active
        );
        out.push(Signal {
            // one silence, one signal: the id is the service and its last activity, not the
            // sliding window, so next month's sweep finds the same signal
            id: signal_id(
                SignalKind::SilentService,
                &subject,
                &format!("silent after {}", s.last_active),
            ),
            kind: SignalKind::SilentService,
            subject,
            period: period.to_string(),
            numbers,
            method: "silent_reporters".into(),
            explanation,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly by design
    use super::*;

    fn subject(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Five years of monthly counts around `level` with a seasonal wiggle, deterministic.
    fn series(level: f64, last: Option<u64>) -> Series {
        let mut counts: Vec<u64> = (0..60)
            .map(|i| {
                let season = 1.0 + 0.2 * ((i % 12) as f64 / 12.0 * std::f64::consts::TAU).sin();
                let noise = [0.0, 1.0, -1.0, 2.0, -2.0, 0.0, 1.0][i % 7];
                (level * season + noise).max(0.0).round() as u64
            })
            .collect();
        if let Some(last) = last {
            *counts.last_mut().unwrap() = last;
        }
        let periods = (0..60)
            .map(|i| format!("{}-{:02}", 2019 + i / 12, i % 12 + 1))
            .collect();
        Series {
            subject: subject(&[("sector", "1071"), ("diagnosis_group", "respiratory")]),
            periods,
            counts,
        }
    }

    #[test]
    fn a_rise_in_the_last_month_is_an_aberration_and_an_ordinary_month_is_not() {
        let control = FlexibleControl {
            b: 3,
            ..FlexibleControl::noufaily()
        };
        let quiet = aberrations(&[series(20.0, None)], &control, 1).unwrap();
        assert!(quiet.is_empty(), "{quiet:?}");
        let risen = aberrations(&[series(20.0, Some(60))], &control, 1).unwrap();
        assert_eq!(risen.len(), 1, "{risen:?}");
        let s = &risen[0];
        assert_eq!(s.kind, SignalKind::Aberration);
        assert_eq!(s.period, "2023-12");
        assert_eq!(s.numbers["observed"], 60.0);
        assert!(s.numbers["upperbound"] < 60.0);
        assert!(s.explanation.contains("60 notifications") && s.explanation.contains("2023-12"));
        // the same signal on a re-run has the same id
        let again = aberrations(&[series(20.0, Some(60))], &control, 1).unwrap();
        assert_eq!(again[0].id, s.id);
    }

    #[test]
    fn a_short_series_gives_no_signal_and_a_malformed_one_an_error() {
        let control = FlexibleControl::noufaily();
        let mut short = series(20.0, Some(90));
        short.periods.truncate(24);
        short.counts.truncate(24);
        assert!(aberrations(&[short], &control, 1).unwrap().is_empty());
        let mut broken = series(20.0, None);
        broken.counts.pop();
        let err = aberrations(&[broken], &control, 1).unwrap_err().to_string();
        assert!(err.contains("60 periods but 59 counts"), "{err}");
    }

    #[test]
    fn calibration_keeps_the_total_and_flags_the_sector_that_reports_less_than_the_others() {
        // every sector reports a seventh of its true incidence, construction a twentieth
        let sector = |code: &str, truth: f64, share: f64| SectorExpectation {
            subject: subject(&[("sbi_section", code)]),
            observed: (truth * share).round() as u64,
            expected: truth,
        };
        let sectors = vec![
            sector("C", 7000.0, 1.0 / 7.0),
            sector("F", 7000.0, 1.0 / 20.0),
            sector("Q", 14000.0, 1.0 / 7.0),
        ];
        // against the reference itself every sector is under-reported
        assert_eq!(under_reporting("2023", &sectors).len(), 3);
        let scaled = calibrated(&sectors);
        let total_o: f64 = scaled.iter().map(|s| s.observed as f64).sum();
        let total_e: f64 = scaled.iter().map(|s| s.expected).sum();
        assert!((total_o - total_e).abs() < 1e-9);
        let signals = under_reporting("2023", &scaled);
        assert_eq!(signals.len(), 1, "{signals:?}");
        assert_eq!(signals[0].subject["sbi_section"], "F");
    }

    #[test]
    fn a_sector_far_below_its_expected_count_is_probable_under_reporting() {
        let sectors = [
            SectorExpectation {
                subject: subject(&[("sbi_section", "F")]),
                observed: 40,
                expected: 100.0,
            },
            SectorExpectation {
                subject: subject(&[("sbi_section", "Q")]),
                observed: 95,
                expected: 100.0,
            },
            SectorExpectation {
                subject: subject(&[("sbi_section", "A")]),
                observed: 0,
                expected: 0.0,
            },
        ];
        let signals = under_reporting("2023", &sectors);
        assert_eq!(signals.len(), 1, "{signals:?}");
        let s = &signals[0];
        assert_eq!(s.subject["sbi_section"], "F");
        assert!((s.numbers["sir"] - 0.4).abs() < 1e-12);
        assert!(s.numbers["funnel_998_lower"] > 40.0);
        assert!(s.numbers["sir_upper"] < 1.0);
        assert!(
            s.explanation.contains("40% of expected"),
            "{}",
            s.explanation
        );
    }

    /// A background where exposure and diagnosis are independent (counts proportional to the
    /// product of their weights), plus a new pair: acrylates (CH004) with asthma (J450).
    fn pairs(reporters: u64) -> Vec<PairCount> {
        let exposures = [("ER003", 4), ("ER001", 3), ("PS001", 2), ("BI001", 1)];
        let diagnoses = [("L694", 4), ("H833", 3), ("F432", 2), ("L230", 1)];
        let mut out = Vec::new();
        for (e, we) in exposures {
            for (d, wd) in diagnoses {
                let count = 5 * we * wd;
                out.push(PairCount {
                    exposure: e.into(),
                    diagnosis: d.into(),
                    count,
                    reporters: count / 2 + 1,
                });
            }
        }
        out.push(PairCount {
            exposure: "CH004".into(),
            diagnosis: "J450".into(),
            count: 12,
            reporters,
        });
        // asthma also comes from biological agents now and then
        out.push(PairCount {
            exposure: "BI001".into(),
            diagnosis: "J450".into(),
            count: 2,
            reporters: 2,
        });
        out
    }

    #[test]
    fn a_disproportionate_pair_from_several_doctors_is_a_signal_but_not_from_one() {
        let signals = emerging_pairs("2023-01..2023-12", &pairs(4), &PairRules::default());
        assert_eq!(signals.len(), 1, "{signals:?}");
        let s = &signals[0];
        assert_eq!(s.subject["exposure"], "CH004");
        assert_eq!(s.subject["diagnosis"], "J450");
        assert!(s.numbers["prr"] >= 2.0 && s.numbers["ic025"] > 0.0);
        assert_eq!(s.numbers["a"], 12.0);
        assert!(
            s.explanation.contains("from 4 doctors"),
            "{}",
            s.explanation
        );
        // one doctor alone never carries a signal
        let single = emerging_pairs("2023-01..2023-12", &pairs(1), &PairRules::default());
        assert!(single.is_empty(), "{single:?}");
        // a diagnosis seen with no other exposure (no finite PRR): the IC decides
        let only: Vec<PairCount> = pairs(4)
            .into_iter()
            .filter(|p| !(p.exposure == "BI001" && p.diagnosis == "J450"))
            .collect();
        let signals = emerging_pairs("2023-01..2023-12", &only, &PairRules::default());
        assert_eq!(signals.len(), 1, "{signals:?}");
        assert!(!signals[0].numbers.contains_key("prr"));
        assert!(signals[0].explanation.contains("no other exposure"));
    }

    #[test]
    fn a_service_whose_doctors_all_stopped_is_silent_but_not_one_with_zero_reports_or_new_doctors()
    {
        let service = |name: &str, before: u64, silent: u64, recent: u64| ServiceParticipation {
            service: name.into(),
            reporters_before: before,
            silent_reporters: silent,
            reporters_recent: recent,
            last_active: "2022-08".into(),
        };
        let found = silent_services(
            "2023-01..2023-12",
            "2021-01..2022-12",
            &[
                service("AD0001", 3, 3, 0),
                service("AD0002", 3, 2, 1),
                service("AD0003", 3, 3, 1),
                service("AD0004", 1, 1, 0),
                service("self_employed", 40, 40, 0),
            ],
            2,
        );
        assert_eq!(found.len(), 1, "{found:?}");
        let s = &found[0];
        assert_eq!(s.kind, SignalKind::SilentService);
        assert_eq!(s.subject["service"], "AD0001");
        assert_eq!(s.numbers["reporters_before"], 3.0);
        assert!(
            s.explanation.starts_with("All 3 doctors"),
            "{}",
            s.explanation
        );
        assert!(s.explanation.contains("last activity 2022-08"));
    }

    #[test]
    fn sliding_windows_keep_the_ids_of_pairs_and_silent_services() {
        let a = emerging_pairs("2022-06..2023-05", &pairs(3), &PairRules::default());
        let b = emerging_pairs("2022-07..2023-06", &pairs(3), &PairRules::default());
        assert!(!a.is_empty());
        assert_eq!(a[0].id, b[0].id);
        assert_ne!(a[0].period, b[0].period);
        let service = ServiceParticipation {
            service: "AD0001".into(),
            reporters_before: 2,
            silent_reporters: 2,
            reporters_recent: 0,
            last_active: "2022-08".into(),
        };
        let one = silent_services(
            "2023-01..2023-12",
            "2021-01..2022-12",
            std::slice::from_ref(&service),
            2,
        );
        let two = silent_services(
            "2023-02..2024-01",
            "2021-02..2023-01",
            std::slice::from_ref(&service),
            2,
        );
        assert_eq!(one[0].id, two[0].id);
        let again_later = ServiceParticipation {
            last_active: "2024-05".into(),
            ..service
        };
        let three = silent_services("2025-01..2025-12", "2023-01..2024-12", &[again_later], 2);
        assert_ne!(one[0].id, three[0].id);
        let unknown = ServiceParticipation {
            service: "unknown".into(),
            reporters_before: 5,
            silent_reporters: 5,
            reporters_recent: 0,
            last_active: "2022-08".into(),
        };
        assert!(silent_services("p", "b", &[unknown], 2).is_empty());
    }
}
