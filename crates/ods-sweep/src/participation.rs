//! Who still reports, per occupational health service: the doctors active through a service
//! (a counted notification or a zero report) in a baseline window, and which of them have
//! sent nothing in the recent window after it. Shared by the reporters statistics
//! (`GET /api/v1/stats/reporters`) and the `silent_service` signals of the sweep.

use std::collections::{BTreeMap, BTreeSet};

use ods_model::Period;
use ods_signals::ServiceParticipation;
use ods_store::ReporterActivity;

use crate::shift;

/// The two windows of a participation comparison, each `[first, last]` month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    /// The baseline window: `baseline_months` months before the recent window.
    pub baseline: [Period; 2],
    /// The recent window: `silent_months` months ending at `to`.
    pub recent: [Period; 2],
}

impl Windows {
    /// The windows ending at `to`.
    pub fn ending(to: Period, silent_months: u32, baseline_months: u32) -> Windows {
        let silent = silent_months.max(1) as i32;
        let baseline = baseline_months.max(1) as i32;
        Windows {
            baseline: [shift(to, 1 - silent - baseline), shift(to, -silent)],
            recent: [shift(to, 1 - silent), to],
        }
    }

    /// `YYYY-MM..YYYY-MM` of a window.
    pub fn label(window: [Period; 2]) -> String {
        format!("{}..{}", window[0], window[1])
    }
}

/// Every service with activity up to the end of the recent window, with its doctors in both
/// windows (services without a label, from notifications stored before the service was kept,
/// are `unknown`). Ordered by service.
pub fn service_participation(
    rows: &[ReporterActivity],
    windows: &Windows,
) -> Vec<ServiceParticipation> {
    #[derive(Default)]
    struct Activity<'a> {
        before: BTreeSet<&'a str>,
        recent: BTreeSet<&'a str>,
        last_active: Option<Period>,
    }
    let to = windows.recent[1];
    let mut services: BTreeMap<&str, Activity> = BTreeMap::new();
    for r in rows {
        let Ok(p) = Period::parse(&r.period) else {
            continue;
        };
        if p > to || (r.notifications == 0 && r.zero_reports == 0) {
            continue;
        }
        let service = if r.service.is_empty() {
            "unknown"
        } else {
            r.service.as_str()
        };
        let s = services.entry(service).or_default();
        s.last_active = s.last_active.max(Some(p));
        if p >= windows.recent[0] {
            s.recent.insert(r.reporter.as_str());
        } else if p >= windows.baseline[0] {
            s.before.insert(r.reporter.as_str());
        }
    }
    services
        .into_iter()
        .map(|(service, s)| ServiceParticipation {
            service: service.to_string(),
            reporters_before: s.before.len() as u64,
            silent_reporters: s.before.difference(&s.recent).count() as u64,
            reporters_recent: s.recent.len() as u64,
            last_active: s.last_active.map(|p| p.to_string()).unwrap_or_default(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly by design

    use super::*;

    fn row(period: &str, reporter: &str, service: &str, n: i64, zero: i64) -> ReporterActivity {
        ReporterActivity {
            period: period.into(),
            reporter: reporter.into(),
            service: service.into(),
            notifications: n,
            zero_reports: zero,
        }
    }

    #[test]
    fn doctors_before_and_since_per_service() {
        let p = |s: &str| Period::parse(s).unwrap();
        let w = Windows::ending(p("2023-12"), 12, 12);
        assert_eq!(w.baseline, [p("2022-01"), p("2022-12")]);
        assert_eq!(w.recent, [p("2023-01"), p("2023-12")]);
        assert_eq!(Windows::label(w.recent), "2023-01..2023-12");
        let rows = vec![
            row("2022-03", "a", "S1", 1, 0),
            row("2022-04", "b", "S1", 1, 0),
            row("2023-09", "b", "S1", 1, 0),
            row("2022-05", "d", "S3", 1, 0),
            row("2023-05", "d", "S3", 0, 1),
            row("2024-02", "a", "S1", 1, 0),
            row("2020-01", "f", "S5", 1, 0),
            row("2022-06", "g", "", 1, 0),
        ];
        let found = service_participation(&rows, &w);
        let by: BTreeMap<&str, &ServiceParticipation> =
            found.iter().map(|s| (s.service.as_str(), s)).collect();
        assert_eq!(by["S1"].reporters_before, 2);
        assert_eq!(by["S1"].silent_reporters, 1);
        assert_eq!(by["S1"].reporters_recent, 1);
        assert_eq!(by["S1"].last_active, "2023-09");
        assert_eq!(by["S3"].silent_reporters, 0);
        assert_eq!(by["S5"].reporters_before, 0);
        assert_eq!(by["unknown"].silent_reporters, 1);
    }
}
