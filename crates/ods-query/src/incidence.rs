//! `GET /api/v1/stats/incidence`: counted notifications per 100,000 worker-years by SBI
//! section, with exact Poisson (Garwood) 95% confidence intervals.
//!
//! * Numerators: counted notifications in the period (`year=YYYY`, or `from` and `to`), with
//!   the same filters as `counts` (any dimension but the period ones and `sector`), through the
//!   same disclosure control; a suppressed numerator gives `rate_per_100k`, `ci_lower` and
//!   `ci_upper` null with `rate_status: suppressed`.
//! * Denominators: employed persons by SBI section from the workforce table of the reference
//!   data (CBS StatLine 85272NED, `data/reference/workforce_sbi_2022q3.csv`; how to update it is
//!   in `data/reference/README.md`), times the months of the period / 12: worker-years. The CBS
//!   table is by section only, so there are no rates by sector code; a sector fund whose scope
//!   names sector codes gets counts but `rate_status: no_denominator` for those sections.
//!   Denominators below 1,000 persons give no rate (`small_denominator`, `shared/domain.md` §6).
//! * Interval: `ods_stats::poisson::rate_per_100k` with the exact method (Garwood 1936; R
//!   `poisson.test`), count limits divided by the worker-years.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ods_codelists::reference::Workforce;
use ods_http::{Caller, Problem};
use ods_model::Period;
use ods_stats::poisson::{rate_per_100k, PoissonCiMethod};
use ods_store::{CountCell, CountQuery, Dimension, Policy};
use serde::Serialize;

use crate::params::{self, Accepts, BadParam};
use crate::{
    csv_field, csv_response, statistics_caller, store_problem, QueryState, StatsAccessErrors,
};

/// Confidence level of the intervals.
pub const CONFIDENCE_LEVEL: f64 = 0.95;

/// Rates need a denominator of at least this many persons.
pub const MIN_DENOMINATOR: f64 = 1_000.0;

/// Whether a row has a rate, and why not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RateStatus {
    /// Rate and interval published.
    Published,
    /// The numerator is suppressed by disclosure control.
    Suppressed,
    /// No workforce figure for these notifications (a sector code, a section the CBS table does
    /// not list, or a total over such).
    NoDenominator,
    /// The denominator is below 1,000 persons.
    SmallDenominator,
}

/// Where the denominators come from.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Denominator {
    /// The published table.
    pub source: String,
    /// The reference file it was read from.
    pub file: String,
    /// What is counted.
    pub unit: String,
}

/// One row: an SBI section, or the total.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct IncidenceRow {
    /// SBI section letter (`null` for the total).
    pub sbi_section: Option<String>,
    /// Section name (English; `total` for the total).
    pub name: Option<String>,
    /// Counted notifications; `null` when suppressed.
    pub notifications: Option<i64>,
    /// Whether the numerator is withheld.
    pub suppressed: bool,
    /// Employed persons (the denominator), when there is one.
    pub workforce: Option<f64>,
    /// Worker-years: employed persons x months / 12.
    pub person_years: Option<f64>,
    /// Notifications per 100,000 worker-years.
    pub rate_per_100k: Option<f64>,
    /// Lower limit of the exact Poisson interval.
    pub ci_lower: Option<f64>,
    /// Upper limit of the exact Poisson interval.
    pub ci_upper: Option<f64>,
    /// Whether the rate is published, and why not.
    pub rate_status: RateStatus,
}

/// Answer of `GET /api/v1/stats/incidence`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IncidenceAnswer {
    /// First month of the period.
    pub from: String,
    /// Last month of the period.
    pub to: String,
    /// Months in the period.
    pub months: i32,
    /// Level of the confidence intervals (0.95).
    pub confidence_level: f64,
    /// The workforce table used.
    pub denominator: Denominator,
    /// The filters applied, by dimension.
    pub filters: BTreeMap<String, Vec<String>>,
    /// Numerators below this are suppressed (5; sector funds 10).
    pub suppression_threshold: i64,
    /// A published numerator comes from at least this many distinct reporters (funds: 3).
    pub min_reporters: usize,
    /// The table by section is too detailed to protect: every section row is suppressed.
    pub withheld: bool,
    /// All sections together.
    pub total: IncidenceRow,
    /// One row per SBI section, in section order.
    pub sections: Vec<IncidenceRow>,
}

struct Request {
    query: CountQuery,
    from: Period,
    to: Period,
    csv: bool,
}

fn parse(params: &HashMap<String, String>) -> Result<Request, BadParam> {
    let common = params::common(
        params,
        &Accepts {
            own: &["year"],
            period_filters: false,
            refused: &[(
                Dimension::Sector,
                "no workforce denominators by sector code (CBS 85272NED is by SBI section); \
                 filter by sbi_section",
            )],
        },
    )?;
    let (from, to) = match (params.get("year"), common.from, common.to) {
        (Some(year), None, None) => {
            let bad = || {
                BadParam::new(
                    "year",
                    year,
                    "year_format",
                    "a calendar year YYYY, e.g. 2023",
                )
            };
            let y: i32 = year.parse().map_err(|_| bad())?;
            let first = Period::new(y, 1).map_err(|_| bad())?;
            let last = Period::new(y, 12).map_err(|_| bad())?;
            (first, last)
        }
        (Some(year), _, _) => {
            return Err(BadParam::new(
                "year",
                year,
                "year_or_range",
                "give either year or from and to, not both",
            ))
        }
        (None, Some(from), Some(to)) => (from, to),
        (None, from, to) => {
            let (name, value) = match (from, to) {
                (Some(f), None) => ("to", format!("(missing; from = {f})")),
                (None, Some(t)) => ("from", format!("(missing; to = {t})")),
                _ => ("year", "(missing)".to_string()),
            };
            return Err(BadParam::new(
                name,
                &value,
                "period_required",
                "incidence needs a closed period: year=YYYY, or from and to (YYYY-MM)",
            ));
        }
    };
    let mut query = common.query;
    query.from = Some(from.to_string());
    query.to = Some(to.to_string());
    query.group_by = vec![Dimension::SbiSection];
    params::check_size(&query)?;
    Ok(Request {
        query,
        from,
        to,
        csv: common.csv,
    })
}

/// A row from a published count and, when there is one, the denominator in persons.
pub fn row(
    section: Option<String>,
    name: Option<String>,
    cell: Option<&CountCell>,
    withheld: bool,
    persons: Option<f64>,
    months: i32,
) -> IncidenceRow {
    let (notifications, suppressed) = match (withheld, cell) {
        (true, _) => (None, true),
        (false, Some(c)) => (c.count, c.suppressed),
        (false, None) => (Some(0), false),
    };
    let person_years = persons.map(|p| p * f64::from(months) / 12.0);
    let mut out = IncidenceRow {
        sbi_section: section,
        name,
        notifications,
        suppressed,
        workforce: persons,
        person_years,
        rate_per_100k: None,
        ci_lower: None,
        ci_upper: None,
        rate_status: RateStatus::Suppressed,
    };
    let Some(n) = notifications else {
        return out;
    };
    let (Some(p), Some(py)) = (persons, person_years) else {
        out.rate_status = RateStatus::NoDenominator;
        return out;
    };
    if p < MIN_DENOMINATOR {
        out.rate_status = RateStatus::SmallDenominator;
        return out;
    }
    match rate_per_100k(
        u64::try_from(n).unwrap_or(0),
        py,
        CONFIDENCE_LEVEL,
        PoissonCiMethod::Exact,
    ) {
        Ok(e) => {
            out.rate_per_100k = Some(e.estimate);
            out.ci_lower = Some(e.lower);
            out.ci_upper = Some(e.upper);
            out.rate_status = RateStatus::Published;
        }
        Err(_) => out.rate_status = RateStatus::NoDenominator,
    }
    out
}

/// Employed persons of a section, when the caller's whole view of it is in the table: for a
/// sector fund only sections its scope names by letter (a scope of sector codes covers part
/// of a section, whose workforce is unknown).
fn persons(workforce: &Workforce, section: &str, scope: Option<&[String]>) -> Option<f64> {
    if scope.is_some_and(|s| !s.iter().any(|v| v == section)) {
        return None;
    }
    workforce.employed_x1000.get(section).map(|x| x * 1000.0)
}

/// Incidence per 100,000 worker-years by SBI section.
#[utoipa::path(
    get, path = "/api/v1/stats/incidence", tag = "statistics",
    params(
        ("year" = Option<String>, Query, pattern = r"^[0-9]{4}$", description = "the period as a calendar year YYYY (or give from and to)"),
        ("from" = Option<String>, Query, pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])$", description = "first month, YYYY-MM (with to)"),
        ("to" = Option<String>, Query, pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])$", description = "last month, YYYY-MM (with from)"),
        ("format" = Option<String>, Query, pattern = r"^(json|csv)$", description = "json (default) or csv"),
        ("diagnosis_group" = Option<String>, Query, description = "filter: comma-separated values; every dimension but year, quarter, month and sector can filter the same way (sbi_section too)")
    ),
    responses(
        (status = 200, description = "rates with exact Poisson 95% intervals per SBI section and in total; suppressed numerators give null rates", content(
            (IncidenceAnswer = "application/json"),
            (String = "text/csv")
        )),
        (status = 400, description = "no or malformed period, unknown parameter, a period or sector filter: names the parameter, value and rule", body = Problem, content_type = "application/problem+json"),
        StatsAccessErrors
    )
)]
pub(crate) async fn incidence(
    State(state): State<QueryState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let scope = match statistics_caller(&caller) {
        Ok(scope) => scope,
        Err(p) => return p.into_response(),
    };
    let Request {
        mut query,
        from,
        to,
        csv,
    } = match parse(&params) {
        Ok(r) => r,
        Err(e) => return e.problem().into_response(),
    };
    query.sector_scope = scope.clone();
    let policy = Policy::of(&query);
    let total_query = CountQuery {
        group_by: Vec::new(),
        ..query.clone()
    };
    let disclosed = match state.store.disclosed(&query).await {
        Ok(d) => d,
        Err(e) => return store_problem(e).into_response(),
    };
    let (by_section, total) = match (disclosed.answer(&query), disclosed.answer(&total_query)) {
        (Ok(a), Ok(t)) => (a, t),
        (Err(e), _) | (_, Err(e)) => return store_problem(e.into()).into_response(),
    };
    let workforce = &state.reference.workforce;
    let months = to.index() - from.index() + 1;
    let section_filter: Option<&Vec<String>> = query
        .filters
        .iter()
        .find(|(d, v)| *d == Dimension::SbiSection && !v.is_empty())
        .map(|(_, v)| v);
    // the sections the caller's view can contain
    let mut sections: BTreeSet<String> = by_section
        .cells
        .iter()
        .filter_map(|c| c.dimensions.get("sbi_section").cloned())
        .collect();
    match (&scope, section_filter) {
        (_, Some(filter)) => sections.extend(filter.iter().cloned()),
        (Some(scope), None) => sections.extend(
            scope
                .iter()
                .filter(|s| workforce.employed_x1000.contains_key(*s))
                .cloned(),
        ),
        (None, None) => sections.extend(workforce.employed_x1000.keys().cloned()),
    }
    if let Some(filter) = section_filter {
        sections.retain(|s| filter.contains(s));
    }
    if let Some(scope) = &scope {
        // sections the fund sees only through sector codes appear when they have data
        let cells: BTreeSet<&String> = by_section
            .cells
            .iter()
            .filter_map(|c| c.dimensions.get("sbi_section"))
            .collect();
        sections.retain(|s| scope.contains(s) || cells.contains(s));
    }
    let scope_ref = scope.as_deref();
    let rows: Vec<IncidenceRow> = sections
        .iter()
        .map(|s| {
            let cell = by_section
                .cells
                .iter()
                .find(|c| c.dimensions.get("sbi_section") == Some(s));
            row(
                Some(s.clone()),
                workforce.names_en.get(s).cloned(),
                cell,
                by_section.withheld,
                persons(workforce, s, scope_ref),
                months,
            )
        })
        .collect();
    // the total's denominator: every section it can contain must have one
    let total_persons: Option<f64> = match (section_filter, &scope) {
        (None, None) => Some(workforce.total_x1000() * 1000.0),
        (Some(list), _) | (None, Some(list)) if !list.is_empty() => list
            .iter()
            .map(|s| persons(workforce, s, scope_ref))
            .sum::<Option<f64>>(),
        _ => None,
    };
    let total_row = row(
        None,
        Some("total".to_string()),
        total.cells.first(),
        total.withheld,
        total_persons,
        months,
    );
    if csv {
        let mut out = String::from(
            "sbi_section,name,notifications,suppressed,workforce,person_years,rate_per_100k,ci_lower,ci_upper,rate_status\n",
        );
        let num = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
        for r in rows.iter().chain(std::iter::once(&total_row)) {
            let status = serde_json::to_value(r.rate_status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{}\n",
                csv_field(r.sbi_section.as_deref().unwrap_or("")),
                csv_field(r.name.as_deref().unwrap_or("")),
                r.notifications.map(|n| n.to_string()).unwrap_or_default(),
                r.suppressed,
                num(r.workforce),
                num(r.person_years),
                num(r.rate_per_100k),
                num(r.ci_lower),
                num(r.ci_upper),
                status
            ));
        }
        return csv_response(out, by_section.withheld);
    }
    Json(IncidenceAnswer {
        from: from.to_string(),
        to: to.to_string(),
        months,
        confidence_level: CONFIDENCE_LEVEL,
        denominator: Denominator {
            source: "CBS StatLine 85272NED, employed labour force by SBI-2008 section".into(),
            file: workforce.file.clone(),
            unit: "employed persons".into(),
        },
        filters: query
            .filters
            .iter()
            .map(|(d, v)| (d.name().to_string(), v.clone()))
            .collect(),
        suppression_threshold: policy.min_count,
        min_reporters: policy.min_reporters,
        withheld: by_section.withheld,
        total: total_row,
        sections: rows,
    })
    .into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly by design

    use super::*;

    #[test]
    fn rates_with_exact_intervals_and_their_gaps() {
        let cell = |n: Option<i64>| CountCell {
            dimensions: BTreeMap::new(),
            count: n,
            suppressed: n.is_none(),
        };
        // 20 notifications among 100,000 persons in a year: 20 per 100,000, poisson.test(20)
        // gives 12.21652 .. 30.88838
        let r = row(
            None,
            None,
            Some(&cell(Some(20))),
            false,
            Some(100_000.0),
            12,
        );
        assert_eq!(r.rate_status, RateStatus::Published);
        assert!((r.rate_per_100k.unwrap() - 20.0).abs() < 1e-9);
        assert!((r.ci_lower.unwrap() - 12.21652).abs() < 1e-4, "{r:?}");
        assert!((r.ci_upper.unwrap() - 30.88838).abs() < 1e-4, "{r:?}");
        // six months: half the worker-years, twice the rate
        let half = row(None, None, Some(&cell(Some(20))), false, Some(100_000.0), 6);
        assert!((half.rate_per_100k.unwrap() - 40.0).abs() < 1e-9);
        // suppressed numerator: no rate
        let s = row(None, None, Some(&cell(None)), false, Some(100_000.0), 12);
        assert_eq!(
            (s.rate_status, s.rate_per_100k),
            (RateStatus::Suppressed, None)
        );
        // withheld table: every row suppressed
        let w = row(None, None, Some(&cell(Some(20))), true, Some(100_000.0), 12);
        assert_eq!(
            (w.notifications, w.rate_status),
            (None, RateStatus::Suppressed)
        );
        // no data: zero with an interval 0 .. 3.689 per 100,000
        let z = row(None, None, None, false, Some(100_000.0), 12);
        assert_eq!(z.notifications, Some(0));
        assert!((z.ci_upper.unwrap() - 3.688879).abs() < 1e-4, "{z:?}");
        assert_eq!(
            row(None, None, None, false, None, 12).rate_status,
            RateStatus::NoDenominator
        );
        assert_eq!(
            row(None, None, None, false, Some(999.0), 12).rate_status,
            RateStatus::SmallDenominator
        );
    }
}
