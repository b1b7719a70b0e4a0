//! `GET /api/v1/stats/trend`: one series of counted notifications by month, quarter or year.
//!
//! The same filters as `counts` (any dimension but the period ones, which come from `from` and
//! `to`). Every period of the range is present: periods without notifications are 0, then
//! disclosure control applies, exactly as for `counts` grouped by the interval (a suppressed
//! period may be 0: complementary suppression also hides empty cells). Without `from`/`to` the
//! range runs from the first to the last month with data. When `from`/`to` do not fall on the
//! interval's boundaries, the first and last periods count only the months inside the range.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ods_http::{Caller, Problem};
use ods_model::Period;
use ods_store::{CountQuery, Dimension, Policy};
use serde::Serialize;

use crate::params::{self, Accepts, BadParam};
use crate::{
    csv_field, csv_response, statistics_caller, store_problem, QueryState, StatsAccessErrors,
};

/// At most this many months between `from` and `to`.
pub const MAX_RANGE_MONTHS: i32 = 1200;

/// One period of a series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TrendPoint {
    /// `YYYY-MM`, `YYYY-Qn` or `YYYY`.
    pub period: String,
    /// Counted notifications; `null` when suppressed.
    pub count: Option<i64>,
    /// Whether the count is withheld.
    pub suppressed: bool,
}

/// Answer of `GET /api/v1/stats/trend`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TrendAnswer {
    /// `month`, `quarter` or `year`.
    pub interval: String,
    /// First month of the range (`null`: no data and no `from`).
    pub from: Option<String>,
    /// Last month of the range.
    pub to: Option<String>,
    /// The filters applied, by dimension.
    pub filters: BTreeMap<String, Vec<String>>,
    /// Counts below this are suppressed (5; sector funds 10).
    pub suppression_threshold: i64,
    /// A published count comes from at least this many distinct reporters (sector funds: 3).
    pub min_reporters: usize,
    /// The series' table is too detailed to protect: every point is suppressed.
    pub withheld: bool,
    /// Every period of the range, in order.
    pub points: Vec<TrendPoint>,
}

/// The label of the period of `interval` (`YYYY-MM`, `YYYY-Qn` or `YYYY`) that contains month
/// `p`.
pub fn period_label(interval: Dimension, p: Period) -> String {
    match interval {
        Dimension::Year => p.year().to_string(),
        Dimension::Quarter => format!("{}-Q{}", p.year(), p.quarter()),
        _ => p.to_string(),
    }
}

/// The periods of `interval` from the one containing `from` to the one containing `to`.
pub fn periods(interval: Dimension, from: Period, to: Period) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut p = from;
    while p <= to {
        let label = period_label(interval, p);
        if out.last() != Some(&label) {
            out.push(label);
        }
        p = p.next();
    }
    out
}

fn parse(params: &HashMap<String, String>) -> Result<(CountQuery, Dimension, bool), BadParam> {
    let common = params::common(
        params,
        &Accepts {
            own: &["interval"],
            period_filters: false,
            refused: &[],
        },
    )?;
    let interval = match params.get("interval").map(String::as_str) {
        None | Some("month") => Dimension::Month,
        Some("quarter") => Dimension::Quarter,
        Some("year") => Dimension::Year,
        Some(other) => {
            return Err(BadParam::new(
                "interval",
                other,
                "month_quarter_or_year",
                "use month, quarter or year",
            ))
        }
    };
    if let (Some(from), Some(to)) = (common.from, common.to) {
        if to.index() - from.index() >= MAX_RANGE_MONTHS {
            return Err(BadParam::new(
                "to",
                &to.to_string(),
                "max_range",
                format!("at most {MAX_RANGE_MONTHS} months from 'from'"),
            ));
        }
    }
    let mut query = common.query;
    query.group_by = vec![interval];
    params::check_size(&query)?;
    Ok((query, interval, common.csv))
}

/// A series with disclosure control.
#[utoipa::path(
    get, path = "/api/v1/stats/trend", tag = "statistics",
    params(
        ("interval" = Option<String>, Query, pattern = r"^(month|quarter|year)$", description = "month (default), quarter or year"),
        ("from" = Option<String>, Query, pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])$", description = "first month, YYYY-MM (default: the first month with data)"),
        ("to" = Option<String>, Query, pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])$", description = "last month, YYYY-MM (default: the last month with data)"),
        ("format" = Option<String>, Query, pattern = r"^(json|csv)$", description = "json (default) or csv"),
        ("diagnosis_group" = Option<String>, Query, description = "filter: comma-separated values; every dimension but year, quarter and month can filter the same way")
    ),
    responses(
        (status = 200, description = "every period of the range; counts below the threshold are null with suppressed: true (CSV: `X-Ods-Withheld: true` when the table is withheld)", content(
            (TrendAnswer = "application/json"),
            (String = "text/csv")
        )),
        (status = 400, description = "unknown parameter or interval, malformed period, a period filter, a range over 1200 months: names the parameter, value and rule", body = Problem, content_type = "application/problem+json"),
        StatsAccessErrors
    )
)]
pub(crate) async fn trend(
    State(state): State<QueryState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let scope = match statistics_caller(&caller) {
        Ok(scope) => scope,
        Err(p) => return p.into_response(),
    };
    let (mut query, interval, csv) = match parse(&params) {
        Ok(q) => q,
        Err(e) => return e.problem().into_response(),
    };
    query.sector_scope = scope;
    let policy = Policy::of(&query);
    let disclosed = match state.store.disclosed(&query).await {
        Ok(d) => d,
        Err(e) => return store_problem(e).into_response(),
    };
    let answer = match disclosed.answer(&query) {
        Ok(a) => a,
        Err(e) => return store_problem(e.into()).into_response(),
    };
    let span = disclosed.period_span();
    let parse_month = |p: &str| Period::parse(p).ok();
    let from = query
        .from
        .as_deref()
        .and_then(parse_month)
        .or_else(|| span.as_ref().and_then(|(f, _)| parse_month(f)));
    let to = query
        .to
        .as_deref()
        .and_then(parse_month)
        .or_else(|| span.as_ref().and_then(|(_, t)| parse_month(t)));
    let mut points = Vec::new();
    if let (Some(f), Some(t)) = (from, to.filter(|t| from.is_some_and(|f| f <= *t))) {
        let by_period: HashMap<&str, &ods_store::CountCell> = answer
            .cells
            .iter()
            .filter_map(|c| c.dimensions.get(interval.name()).map(|p| (p.as_str(), c)))
            .collect();
        for period in periods(interval, f, t) {
            let point = match (answer.withheld, by_period.get(period.as_str())) {
                (true, _) => TrendPoint {
                    period,
                    count: None,
                    suppressed: true,
                },
                (false, Some(c)) => TrendPoint {
                    period,
                    count: c.count,
                    suppressed: c.suppressed,
                },
                (false, None) => TrendPoint {
                    period,
                    count: Some(0),
                    suppressed: false,
                },
            };
            points.push(point);
        }
    }
    if csv {
        let mut out = String::from("period,count,suppressed\n");
        for p in &points {
            out.push_str(&format!(
                "{},{},{}\n",
                csv_field(&p.period),
                p.count.map(|n| n.to_string()).unwrap_or_default(),
                p.suppressed
            ));
        }
        return csv_response(out, answer.withheld);
    }
    Json(TrendAnswer {
        interval: interval.name().to_string(),
        from: from.map(|p| p.to_string()),
        to: to.map(|p| p.to_string()),
        filters: query
            .filters
            .iter()
            .map(|(d, v)| (d.name().to_string(), v.clone()))
            .collect(),
        suppression_threshold: policy.min_count,
        min_reporters: policy.min_reporters,
        withheld: answer.withheld,
        points,
    })
    .into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly by design

    use super::*;

    #[test]
    fn every_period_of_the_range() {
        let p = |s: &str| Period::parse(s).unwrap();
        assert_eq!(
            periods(Dimension::Month, p("2020-11"), p("2021-02")),
            vec!["2020-11", "2020-12", "2021-01", "2021-02"]
        );
        assert_eq!(
            periods(Dimension::Quarter, p("2020-02"), p("2020-12")),
            vec!["2020-Q1", "2020-Q2", "2020-Q3", "2020-Q4"]
        );
        assert_eq!(
            periods(Dimension::Year, p("2019-12"), p("2021-01")),
            vec!["2019", "2020", "2021"]
        );
    }
}
