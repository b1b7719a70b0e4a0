//! Query-string parameters of the statistics routes, and the 400 answer naming the parameter,
//! its value and the rule it breaks.

use std::collections::HashMap;

use axum::http::StatusCode;
use ods_http::Problem;
use ods_model::Period;
use ods_store::disclosure::{table_count, MAX_TABLES};
use ods_store::{CountQuery, Dimension};

/// A parameter that breaks a rule: answered 400 `application/problem+json` with one violation
/// `{parameter, value, rule, message}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadParam {
    pub parameter: String,
    pub value: String,
    pub rule: &'static str,
    pub message: String,
}

impl BadParam {
    pub fn new(
        parameter: &str,
        value: &str,
        rule: &'static str,
        message: impl Into<String>,
    ) -> Self {
        BadParam {
            parameter: parameter.to_string(),
            value: value.to_string(),
            rule,
            message: message.into(),
        }
    }

    pub fn problem(self) -> Problem {
        let mut p = Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-query",
            format!(
                "parameter '{}' = '{}' ({}): {}",
                self.parameter, self.value, self.rule, self.message
            ),
        );
        p.violations = Some(Box::new(serde_json::json!([{
            "parameter": self.parameter,
            "value": self.value,
            "rule": self.rule,
            "message": self.message,
        }])));
        p
    }
}

fn dimension_names() -> String {
    Dimension::ALL
        .iter()
        .map(|d| d.name())
        .collect::<Vec<_>>()
        .join(", ")
}

fn is_period_dimension(d: Dimension) -> bool {
    matches!(d, Dimension::Year | Dimension::Quarter | Dimension::Month)
}

/// `group_by`: comma-separated dimension names, each at most once.
pub(crate) fn group_by(value: &str) -> Result<Vec<Dimension>, BadParam> {
    let mut out = Vec::new();
    for name in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let d = Dimension::parse(name).ok_or_else(|| {
            BadParam::new(
                "group_by",
                name,
                "known_dimension",
                format!("unknown dimension; use any of {}", dimension_names()),
            )
        })?;
        if out.contains(&d) {
            return Err(BadParam::new(
                "group_by",
                name,
                "unique_dimension",
                "the dimension is listed twice",
            ));
        }
        out.push(d);
    }
    Ok(out)
}

/// A month `YYYY-MM`.
pub(crate) fn period(parameter: &str, value: &str) -> Result<Period, BadParam> {
    Period::parse(value)
        .map_err(|e| BadParam::new(parameter, value, "period_format", e.to_string()))
}

/// `format`: `json` or `csv`; true for CSV.
pub(crate) fn csv(value: &str) -> Result<bool, BadParam> {
    match value {
        "json" => Ok(false),
        "csv" => Ok(true),
        other => Err(BadParam::new(
            "format",
            other,
            "json_or_csv",
            "use json or csv",
        )),
    }
}

/// A dimension filter `name=v1,v2` (empty values are ignored).
pub(crate) fn filter(name: &str, value: &str) -> Option<(Dimension, Vec<String>)> {
    let d = Dimension::parse(name)?;
    let values = value
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect();
    Some((d, values))
}

/// What a route accepts besides dimension filters.
pub(crate) struct Accepts {
    /// The route's own parameters (besides `from`, `to`, `format`).
    pub own: &'static [&'static str],
    /// Whether `year`, `quarter` and `month` may filter (else: use `from` and `to`).
    pub period_filters: bool,
    /// Dimensions that may not filter, with the reason.
    pub refused: &'static [(Dimension, &'static str)],
}

/// The parsed common part: filters, period range, format; the route's own parameters are left
/// in the map for the route.
pub(crate) struct Common {
    pub query: CountQuery,
    pub csv: bool,
    pub from: Option<Period>,
    pub to: Option<Period>,
}

/// Parses `from`, `to`, `format` and the dimension filters; rejects unknown parameters.
pub(crate) fn common(
    params: &HashMap<String, String>,
    accepts: &Accepts,
) -> Result<Common, BadParam> {
    let mut out = Common {
        query: CountQuery::default(),
        csv: false,
        from: None,
        to: None,
    };
    // a stable order, so the first bad parameter named is always the same
    let mut keys: Vec<&String> = params.keys().collect();
    keys.sort();
    for key in keys {
        let value = &params[key];
        match key.as_str() {
            "from" => out.from = Some(period("from", value)?),
            "to" => out.to = Some(period("to", value)?),
            "format" => out.csv = csv(value)?,
            k if accepts.own.contains(&k) => {}
            other => {
                let Some((d, values)) = filter(other, value) else {
                    let mut names: Vec<&str> = accepts.own.to_vec();
                    names.extend(["from", "to", "format"]);
                    return Err(BadParam::new(
                        other,
                        value,
                        "known_parameter",
                        format!(
                            "unknown parameter; use {} or a dimension filter ({})",
                            names.join(", "),
                            dimension_names()
                        ),
                    ));
                };
                if is_period_dimension(d) && !accepts.period_filters {
                    return Err(BadParam::new(
                        other,
                        value,
                        "no_period_filter",
                        "this route takes its period from 'from' and 'to' (YYYY-MM)",
                    ));
                }
                if let Some((_, why)) = accepts.refused.iter().find(|(r, _)| *r == d) {
                    return Err(BadParam::new(other, value, "filter_not_allowed", *why));
                }
                out.query.filters.push((d, values));
            }
        }
    }
    if let (Some(from), Some(to)) = (out.from, out.to) {
        if from > to {
            return Err(BadParam::new(
                "to",
                &to.to_string(),
                "from_not_after_to",
                format!("'to' must not be before 'from' ({from})"),
            ));
        }
    }
    out.query.filters.sort();
    out.query.from = out.from.map(|p| p.to_string());
    out.query.to = out.to.map(|p| p.to_string());
    Ok(out)
}

/// Refuses queries whose disclosure control would need more than [`MAX_TABLES`] tables.
pub(crate) fn check_size(query: &CountQuery) -> Result<(), BadParam> {
    let tables = table_count(query);
    if tables > MAX_TABLES {
        let dims: Vec<&str> = query
            .group_by
            .iter()
            .chain(query.filters.iter().map(|(d, _)| d))
            .map(|d| d.name())
            .collect();
        return Err(BadParam::new(
            "group_by",
            &dims.join(","),
            "max_tables",
            format!(
                "grouping and filters together span too much detail for disclosure control \
                 ({tables} tables, at most {MAX_TABLES}); group or filter by fewer dimensions, \
                 or coarser ones (year, diagnosis_group, sbi_section, exposure_group)"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly by design

    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const ALL: Accepts = Accepts {
        own: &["group_by"],
        period_filters: true,
        refused: &[],
    };

    #[test]
    fn names_parameter_value_and_rule() {
        let e = common(&map(&[("from", "2020-13")]), &ALL).err().unwrap();
        assert_eq!(
            (e.parameter.as_str(), e.value.as_str(), e.rule),
            ("from", "2020-13", "period_format")
        );
        let e = common(&map(&[("colour", "red")]), &ALL).err().unwrap();
        assert_eq!(e.rule, "known_parameter");
        let e = common(&map(&[("from", "2021-01"), ("to", "2020-12")]), &ALL)
            .err()
            .unwrap();
        assert_eq!(e.rule, "from_not_after_to");
        let e = group_by("year,sex,year").err().unwrap();
        assert_eq!((e.value.as_str(), e.rule), ("year", "unique_dimension"));
        let trend = Accepts {
            own: &["interval"],
            period_filters: false,
            refused: &[(Dimension::Sector, "no")],
        };
        let e = common(&map(&[("year", "2020")]), &trend).err().unwrap();
        assert_eq!(e.rule, "no_period_filter");
        let e = common(&map(&[("sector", "1071")]), &trend).err().unwrap();
        assert_eq!(e.rule, "filter_not_allowed");
        let p = BadParam::new("format", "xml", "json_or_csv", "use json or csv").problem();
        assert_eq!(p.status, 400);
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["violations"][0]["parameter"], "format");
        assert_eq!(v["violations"][0]["rule"], "json_or_csv");
    }

    #[test]
    fn filters_and_range_become_the_query() {
        let c = common(
            &map(&[
                ("sex", "F, M"),
                ("from", "2020-01"),
                ("format", "csv"),
                ("group_by", "x"),
            ]),
            &ALL,
        )
        .unwrap();
        assert!(c.csv);
        assert_eq!(
            c.query.filters,
            vec![(Dimension::Sex, vec!["F".into(), "M".into()])]
        );
        assert_eq!(c.query.from.as_deref(), Some("2020-01"));
        let big = CountQuery {
            group_by: vec![
                Dimension::Month,
                Dimension::Sector,
                Dimension::Diagnosis,
                Dimension::Sex,
            ],
            ..CountQuery::default()
        };
        assert_eq!(check_size(&big).err().unwrap().rule, "max_tables");
    }
}
