//! `GET /api/v1/stats/reporters` (analysts and admins only): who reports.
//!
//! Under-reporting is the registry's largest bias: few company doctors notify, and most
//! notifications come from a few of them. This answer shows, per month, quarter or year:
//!
//! * `reporters`: distinct doctors with at least one counted notification filed in the period;
//! * `zero_report_only`: distinct doctors who sent zero reports ("no cases this month") in the
//!   period and no counted notification (they respond, they are not silent);
//! * `notifications`: counted notifications filed in the period;
//! * `top_decile_reporters` and `top_decile_share`: the share of the period's notifications filed
//!   by its most active 10% of reporters (`ceil(reporters / 10)` doctors; ties do not change the
//!   share, which is the sum of the largest counts);
//! * `share_of_registered`: the share of the registered reporters (doctors with an unrevoked
//!   reporter account now) who filed a counted notification in the period;
//!
//! and the **services whose reporters went silent**: a reporter of a service is *silent* when it
//! filed a counted notification or a zero report through that service in the baseline window
//! (the `baseline_months` months before the recent window) and nothing in the recent window (the
//! last `silent_months` months up to `to`). Every service with at least one silent reporter is
//! listed, services whose reporters all went silent first.
//!
//! Disclosure: the answer holds counts of doctors and national notification totals per period,
//! never a reporter pseudonym, a reporter's own count, or case counts below the national level;
//! those counts describe reporting behaviour, not patients, and are not suppressed. Sector funds
//! never see reporter-level data: 403.
//!
//! Periods are filing periods (the month the notification was filed), as for the counts.

use std::collections::{BTreeSet, HashMap};

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ods_http::{Caller, Problem};
use ods_identity::Role;
use ods_model::Period;
use ods_store::{Dimension, ReporterActivity};
use serde::Serialize;

use crate::params::{self, BadParam};
use ods_sweep::participation::{service_participation, Windows};

use crate::trend::{period_label, periods, MAX_RANGE_MONTHS};
use crate::{csv_field, csv_response, store_problem, QueryState, StatsAccessErrors};

/// Default length of the recent window in which a silent reporter filed nothing.
pub const DEFAULT_SILENT_MONTHS: i32 = 12;
/// Default length of the baseline window before it, in which the reporter was active.
pub const DEFAULT_BASELINE_MONTHS: i32 = 24;
/// The largest window accepted for either.
pub const MAX_WINDOW_MONTHS: i32 = 120;

/// Reporting activity in one period.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ReporterPeriod {
    /// `YYYY-MM`, `YYYY-Qn` or `YYYY`.
    pub period: String,
    /// Distinct doctors with at least one counted notification filed in the period.
    pub reporters: i64,
    /// Distinct doctors with a zero report in the period and no counted notification.
    pub zero_report_only: i64,
    /// Counted notifications filed in the period.
    pub notifications: i64,
    /// The most active 10% of the period's reporters: `ceil(reporters / 10)`.
    pub top_decile_reporters: i64,
    /// Share (0 to 1) of the period's notifications filed by them; `null` without notifications.
    pub top_decile_share: Option<f64>,
    /// Share (0 to 1) of the registered reporters (doctors with a reporter account now) who
    /// filed a counted notification in the period; `null` when nobody is registered.
    pub share_of_registered: Option<f64>,
}

/// A service some of whose reporters went silent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SilentService {
    /// Service id, or `self_employed` (doctors without a service, together).
    pub service: String,
    /// Distinct doctors active through the service in the baseline window.
    pub reporters_before: i64,
    /// Of those, the doctors with nothing through the service in the recent window.
    pub silent_reporters: i64,
    /// Whether every reporter of the baseline window went silent.
    pub all_silent: bool,
    /// The last month, up to `to`, in which any doctor was active through the service.
    pub last_active: String,
}

/// Answer of `GET /api/v1/stats/reporters`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ReportersAnswer {
    /// `month`, `quarter` or `year`.
    pub interval: String,
    /// First month of the range (`null`: no data and no `from`).
    pub from: Option<String>,
    /// Last month of the range; also the end of the recent window.
    pub to: Option<String>,
    /// Doctors with an unrevoked reporter account (token) now.
    pub registered_reporters: i64,
    /// Every period of the range, in order.
    pub periods: Vec<ReporterPeriod>,
    /// The recent window: `silent_months` months ending at `to` (`YYYY-MM` to `YYYY-MM`).
    pub silent_window: Option<[String; 2]>,
    /// The baseline window: the `baseline_months` months before the recent window.
    pub baseline_window: Option<[String; 2]>,
    /// Services with at least one silent reporter: all silent first, then most silent.
    pub silent_services: Vec<SilentService>,
}

/// The parsed parameters.
#[derive(Debug, Clone, PartialEq)]
struct ReportersQuery {
    interval: Dimension,
    from: Option<Period>,
    to: Option<Period>,
    silent_months: i32,
    baseline_months: i32,
    csv: Option<CsvTable>,
}

/// Which table a CSV answer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CsvTable {
    Periods,
    SilentServices,
}

const ACCEPTED: &[&str] = &[
    "interval",
    "from",
    "to",
    "silent_months",
    "baseline_months",
    "format",
    "table",
];

fn months(parameter: &str, value: &str) -> Result<i32, BadParam> {
    match value.parse::<i32>() {
        Ok(n) if (1..=MAX_WINDOW_MONTHS).contains(&n) => Ok(n),
        _ => Err(BadParam::new(
            parameter,
            value,
            "window_months",
            format!("a whole number of months from 1 to {MAX_WINDOW_MONTHS}"),
        )),
    }
}

fn parse(params: &HashMap<String, String>) -> Result<ReportersQuery, BadParam> {
    let mut names: Vec<&String> = params.keys().collect();
    names.sort();
    if let Some(unknown) = names.into_iter().find(|k| !ACCEPTED.contains(&k.as_str())) {
        return Err(BadParam::new(
            unknown,
            &params[unknown],
            "known_parameter",
            format!("unknown parameter; use any of {}", ACCEPTED.join(", ")),
        ));
    }
    let interval = match params.get("interval").map(String::as_str) {
        None | Some("year") => Dimension::Year,
        Some("quarter") => Dimension::Quarter,
        Some("month") => Dimension::Month,
        Some(other) => {
            return Err(BadParam::new(
                "interval",
                other,
                "month_quarter_or_year",
                "use month, quarter or year",
            ))
        }
    };
    let from = params
        .get("from")
        .map(|v| params::period("from", v))
        .transpose()?;
    let to = params
        .get("to")
        .map(|v| params::period("to", v))
        .transpose()?;
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(BadParam::new(
                "to",
                &t.to_string(),
                "from_not_after_to",
                format!("'to' is before 'from' ({f})"),
            ));
        }
        if t.index() - f.index() >= MAX_RANGE_MONTHS {
            return Err(BadParam::new(
                "to",
                &t.to_string(),
                "max_range",
                format!("at most {MAX_RANGE_MONTHS} months from 'from'"),
            ));
        }
    }
    let silent_months = params
        .get("silent_months")
        .map(|v| months("silent_months", v))
        .transpose()?
        .unwrap_or(DEFAULT_SILENT_MONTHS);
    let baseline_months = params
        .get("baseline_months")
        .map(|v| months("baseline_months", v))
        .transpose()?
        .unwrap_or(DEFAULT_BASELINE_MONTHS);
    let csv = params
        .get("format")
        .map(|v| params::csv(v))
        .transpose()?
        .unwrap_or(false);
    let table = match params.get("table").map(String::as_str) {
        None | Some("periods") => CsvTable::Periods,
        Some("silent_services") => CsvTable::SilentServices,
        Some(other) => {
            return Err(BadParam::new(
                "table",
                other,
                "periods_or_silent_services",
                "use periods or silent_services (the table of a CSV answer)",
            ))
        }
    };
    Ok(ReportersQuery {
        interval,
        from,
        to,
        silent_months,
        baseline_months,
        csv: csv.then_some(table),
    })
}

/// Computes the answer from the store's reporter activity (pure; rows with a malformed
/// period are ignored).
pub fn reporters_answer(
    rows: &[ReporterActivity],
    registered: &BTreeSet<String>,
    interval: Dimension,
    from: Option<Period>,
    to: Option<Period>,
    silent_months: i32,
    baseline_months: i32,
) -> ReportersAnswer {
    let parsed: Vec<(Period, &ReporterActivity)> = rows
        .iter()
        .filter_map(|r| Period::parse(&r.period).ok().map(|p| (p, r)))
        .collect();
    let first = parsed.iter().map(|(p, _)| *p).min();
    let last = parsed.iter().map(|(p, _)| *p).max();
    let from = from.or(first);
    let to = to.or(last);
    let mut answer = ReportersAnswer {
        interval: interval.name().to_string(),
        from: from.map(|p| p.to_string()),
        to: to.map(|p| p.to_string()),
        registered_reporters: registered.len() as i64,
        periods: Vec::new(),
        silent_window: None,
        baseline_window: None,
        silent_services: Vec::new(),
    };
    let (Some(from), Some(to)) = (from, to) else {
        return answer;
    };
    // per period label: notifications per reporter, and reporters with a zero report
    let mut by_period: HashMap<String, (HashMap<&str, i64>, BTreeSet<&str>)> = HashMap::new();
    for (p, r) in &parsed {
        if *p < from || *p > to {
            continue;
        }
        let entry = by_period.entry(period_label(interval, *p)).or_default();
        if r.notifications > 0 {
            *entry.0.entry(r.reporter.as_str()).or_default() += r.notifications;
        }
        if r.zero_reports > 0 {
            entry.1.insert(r.reporter.as_str());
        }
    }
    if from <= to {
        for period in periods(interval, from, to) {
            let (per_reporter, zero) = by_period.remove(&period).unwrap_or_default();
            let mut counts: Vec<i64> = per_reporter.values().copied().collect();
            counts.sort_unstable_by(|a, b| b.cmp(a));
            let reporters = counts.len() as i64;
            let notifications: i64 = counts.iter().sum();
            let top = (reporters + 9) / 10;
            let top_sum: i64 = counts.iter().take(top as usize).sum();
            answer.periods.push(ReporterPeriod {
                period,
                reporters,
                zero_report_only: zero
                    .iter()
                    .filter(|r| !per_reporter.contains_key(**r))
                    .count() as i64,
                notifications,
                top_decile_reporters: top,
                top_decile_share: (notifications > 0)
                    .then(|| top_sum as f64 / notifications as f64),
                share_of_registered: (!registered.is_empty()).then(|| {
                    let reporting = registered
                        .iter()
                        .filter(|r| per_reporter.contains_key(r.as_str()))
                        .count();
                    reporting as f64 / registered.len() as f64
                }),
            });
        }
    }
    // silent reporters per service: active in the baseline window, not in the recent one
    let windows = Windows::ending(
        to,
        u32::try_from(silent_months).unwrap_or(1),
        u32::try_from(baseline_months).unwrap_or(1),
    );
    answer.silent_window = Some(windows.recent.map(|p| p.to_string()));
    answer.baseline_window = Some(windows.baseline.map(|p| p.to_string()));
    for s in service_participation(rows, &windows) {
        if s.silent_reporters == 0 {
            continue;
        }
        answer.silent_services.push(SilentService {
            all_silent: s.silent_reporters == s.reporters_before && s.reporters_recent == 0,
            service: s.service,
            reporters_before: s.reporters_before as i64,
            silent_reporters: s.silent_reporters as i64,
            last_active: s.last_active,
        });
    }
    answer.silent_services.sort_by(|a, b| {
        b.all_silent
            .cmp(&a.all_silent)
            .then(b.silent_reporters.cmp(&a.silent_reporters))
            .then(a.service.cmp(&b.service))
    });
    answer
}

fn to_csv(answer: &ReportersAnswer, table: CsvTable) -> String {
    match table {
        CsvTable::Periods => {
            let mut out = String::from(
                "period,reporters,zero_report_only,notifications,top_decile_reporters,top_decile_share,share_of_registered\n",
            );
            for p in &answer.periods {
                out.push_str(&format!(
                    "{},{},{},{},{},{},{}\n",
                    csv_field(&p.period),
                    p.reporters,
                    p.zero_report_only,
                    p.notifications,
                    p.top_decile_reporters,
                    p.top_decile_share
                        .map(|s| format!("{s:.4}"))
                        .unwrap_or_default(),
                    p.share_of_registered
                        .map(|s| format!("{s:.4}"))
                        .unwrap_or_default()
                ));
            }
            out
        }
        CsvTable::SilentServices => {
            let mut out =
                String::from("service,reporters_before,silent_reporters,all_silent,last_active\n");
            for s in &answer.silent_services {
                out.push_str(&format!(
                    "{},{},{},{},{}\n",
                    csv_field(&s.service),
                    s.reporters_before,
                    s.silent_reporters,
                    s.all_silent,
                    csv_field(&s.last_active)
                ));
            }
            out
        }
    }
}

/// Who reports: distinct reporters, concentration, services gone silent.
#[utoipa::path(
    get, path = "/api/v1/stats/reporters", tag = "statistics",
    params(
        ("interval" = Option<String>, Query, pattern = r"^(month|quarter|year)$", description = "year (default), quarter or month"),
        ("from" = Option<String>, Query, pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])$", description = "first month, YYYY-MM (default: the first month with activity)"),
        ("to" = Option<String>, Query, pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])$", description = "last month, YYYY-MM (default: the last month with activity); the recent window ends here"),
        ("silent_months" = Option<i32>, Query, minimum = 1, maximum = 120, description = "length of the recent window in which a silent reporter filed nothing (default 12)"),
        ("baseline_months" = Option<i32>, Query, minimum = 1, maximum = 120, description = "length of the baseline window before it, in which the reporter was active (default 24)"),
        ("format" = Option<String>, Query, pattern = r"^(json|csv)$", description = "json (default) or csv"),
        ("table" = Option<String>, Query, pattern = r"^(periods|silent_services)$", description = "with format=csv: periods (default) or silent_services")
    ),
    responses(
        (status = 200, description = "reporting activity per period and services whose reporters went silent", content(
            (ReportersAnswer = "application/json"),
            (String = "text/csv")
        )),
        (status = 400, description = "unknown parameter, malformed period or window, from after to: names the parameter, value and rule", body = Problem, content_type = "application/problem+json"),
        StatsAccessErrors
    )
)]
pub(crate) async fn reporters(
    State(state): State<QueryState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Err(p) = caller.require(&[Role::Analyst, Role::Admin]) {
        return p.into_response();
    }
    let query = match parse(&params) {
        Ok(q) => q,
        Err(e) => return e.problem().into_response(),
    };
    let rows = match state.store.reporter_activity().await {
        Ok(rows) => rows,
        Err(e) => return store_problem(e).into_response(),
    };
    let tokens = state.tokens.clone();
    let registered = match tokio::task::spawn_blocking(move || tokens.registered_reporters())
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()))
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "reading the registered reporters failed");
            return Problem::unavailable("the token store could not answer; retry shortly", 2)
                .into_response();
        }
    };
    let answer = reporters_answer(
        &rows,
        &registered,
        query.interval,
        query.from,
        query.to,
        query.silent_months,
        query.baseline_months,
    );
    match query.csv {
        Some(table) => csv_response(to_csv(&answer, table), false),
        None => Json(answer).into_response(),
    }
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

    fn p(s: &str) -> Period {
        Period::parse(s).unwrap()
    }

    #[test]
    fn periods_count_reporters_zero_reporters_and_the_top_decile() {
        let mut rows = Vec::new();
        // 2023: eleven reporters, r00 files 20, the others 1 each; r99 only zero reports
        rows.push(row("2023-03", "r00", "S1", 20, 0));
        for i in 1..11 {
            rows.push(row("2023-05", &format!("r{i:02}"), "S1", 1, 0));
        }
        rows.push(row("2023-06", "r99", "S2", 0, 1));
        rows.push(row("2023-07", "r99", "S2", 0, 1));
        // a reporter with a zero report and a notification in the same year is a reporter
        rows.push(row("2023-08", "r01", "S1", 0, 1));
        let a = reporters_answer(&rows, &BTreeSet::new(), Dimension::Year, None, None, 12, 24);
        assert_eq!(a.from.as_deref(), Some("2023-03"));
        assert_eq!(a.to.as_deref(), Some("2023-08"));
        assert_eq!(a.periods.len(), 1);
        let y = &a.periods[0];
        assert_eq!(y.reporters, 11);
        assert_eq!(y.notifications, 30);
        assert_eq!(y.zero_report_only, 1);
        // ceil(11 / 10) = 2 reporters: 20 + 1 of 30
        assert_eq!(y.top_decile_reporters, 2);
        assert!((y.top_decile_share.unwrap() - 21.0 / 30.0).abs() < 1e-12);
    }

    #[test]
    fn every_period_of_the_range_is_present() {
        let rows = vec![
            row("2021-02", "a", "S", 2, 0),
            row("2021-11", "b", "S", 1, 0),
        ];
        let registered: BTreeSet<String> = ["a", "c"].iter().map(|s| s.to_string()).collect();
        let a = reporters_answer(
            &rows,
            &registered,
            Dimension::Quarter,
            Some(p("2021-01")),
            Some(p("2021-12")),
            3,
            6,
        );
        let labels: Vec<_> = a.periods.iter().map(|x| x.period.as_str()).collect();
        assert_eq!(labels, ["2021-Q1", "2021-Q2", "2021-Q3", "2021-Q4"]);
        assert_eq!(a.periods[1].reporters, 0);
        assert_eq!(a.periods[1].top_decile_reporters, 0);
        assert_eq!(a.periods[1].top_decile_share, None);
        assert_eq!(a.periods[3].notifications, 1);
        assert_eq!(a.periods[3].top_decile_share, Some(1.0));
        // a of the registered a and c reported in Q1; b (not registered) in Q4
        assert_eq!(a.registered_reporters, 2);
        assert_eq!(a.periods[0].share_of_registered, Some(0.5));
        assert_eq!(a.periods[3].share_of_registered, Some(0.0));
    }

    #[test]
    fn silent_services_need_activity_before_and_none_in_the_recent_window() {
        let rows = vec![
            // S1: both reporters active before, only b still active: one silent of two
            row("2022-03", "a", "S1", 1, 0),
            row("2022-04", "b", "S1", 1, 0),
            row("2023-09", "b", "S1", 1, 0),
            // S2: its only reporter stopped: all silent, last active 2022-12
            row("2022-12", "c", "S2", 2, 0),
            // S3: zero reports keep a reporter from being silent
            row("2022-05", "d", "S3", 1, 0),
            row("2023-05", "d", "S3", 0, 1),
            // S4: new in the recent window: nothing before, nobody silent
            row("2023-02", "e", "S4", 1, 0),
            // activity after `to` does not count
            row("2024-02", "a", "S1", 1, 0),
            // older than the baseline window: not a reporter of the baseline
            row("2020-01", "f", "S5", 1, 0),
        ];
        let a = reporters_answer(
            &rows,
            &BTreeSet::new(),
            Dimension::Year,
            Some(p("2022-01")),
            Some(p("2023-12")),
            12,
            12,
        );
        assert_eq!(
            a.silent_window,
            Some(["2023-01".to_string(), "2023-12".to_string()])
        );
        assert_eq!(
            a.baseline_window,
            Some(["2022-01".to_string(), "2022-12".to_string()])
        );
        assert_eq!(
            a.silent_services,
            vec![
                SilentService {
                    service: "S2".into(),
                    reporters_before: 1,
                    silent_reporters: 1,
                    all_silent: true,
                    last_active: "2022-12".into(),
                },
                SilentService {
                    service: "S1".into(),
                    reporters_before: 2,
                    silent_reporters: 1,
                    all_silent: false,
                    last_active: "2023-09".into(),
                },
            ]
        );
        // the range does not limit the windows' look-back, `to` ends them
        let narrow = reporters_answer(
            &rows,
            &BTreeSet::new(),
            Dimension::Year,
            Some(p("2023-06")),
            Some(p("2023-12")),
            12,
            12,
        );
        assert_eq!(narrow.silent_services, a.silent_services);
    }

    #[test]
    fn no_data_gives_an_empty_answer() {
        let a = reporters_answer(&[], &BTreeSet::new(), Dimension::Year, None, None, 12, 24);
        assert!(a.periods.is_empty() && a.silent_services.is_empty());
        assert_eq!(a.from, None);
    }

    #[test]
    fn parameters_are_checked() {
        let q = |pairs: &[(&str, &str)]| {
            parse(
                &pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        assert_eq!(q(&[]).unwrap().interval, Dimension::Year);
        assert_eq!(
            q(&[("interval", "week")]).unwrap_err().rule,
            "month_quarter_or_year"
        );
        assert_eq!(
            q(&[("silent_months", "0")]).unwrap_err().rule,
            "window_months"
        );
        assert_eq!(
            q(&[("baseline_months", "x")]).unwrap_err().rule,
            "window_months"
        );
        assert_eq!(q(&[("sector", "F")]).unwrap_err().rule, "known_parameter");
        assert_eq!(
            q(&[("from", "2023-05"), ("to", "2023-01")])
                .unwrap_err()
                .rule,
            "from_not_after_to"
        );
        assert_eq!(q(&[("from", "2023-13")]).unwrap_err().rule, "period_format");
        assert_eq!(
            q(&[("table", "x")]).unwrap_err().rule,
            "periods_or_silent_services"
        );
        assert_eq!(
            q(&[("format", "csv"), ("table", "silent_services")])
                .unwrap()
                .csv,
            Some(CsvTable::SilentServices)
        );
    }
}
