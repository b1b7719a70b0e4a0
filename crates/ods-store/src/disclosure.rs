//! Disclosure control: the one pure function between exact counts and published answers.
//!
//! Every store (embedded SQLite, ClickHouse) answers only *exact* counts for a query's
//! `group_by`, filters and period ([`store_query`] says which query that is). Sector scope
//! (what a sector fund may see) and suppression (counts below [`SUPPRESSION_THRESHOLD`]) are
//! applied here, to those exact cells, so both stores publish identical answers by
//! construction.

use std::collections::BTreeMap;

use crate::queries::{CellKey, CountCell, CountQuery, Dimension};
use crate::SUPPRESSION_THRESHOLD;

/// The query a store must answer exactly for `query`: the same dimensions, filters and period,
/// without the sector scope; when a scope is set, grouped by sector and SBI section as well so
/// [`apply_scope`] can select the cells of the scope.
pub fn store_query(query: &CountQuery) -> CountQuery {
    let mut inner = query.clone();
    inner.sector_scope = None;
    if query.sector_scope.is_some() {
        for d in [Dimension::Sector, Dimension::SbiSection] {
            if !inner.group_by.contains(&d) {
                inner.group_by.push(d);
            }
        }
    }
    inner
}

/// Keeps the exact cells (of [`store_query`]) inside the query's sector scope (cells whose SBI
/// section or sector code is in the scope; an empty scope keeps nothing), folds them back to the
/// query's own dimensions, drops empty cells, and orders them by the grouped values in
/// `group_by` order. Without dimensions the answer is always one cell: the total (possibly 0).
pub fn apply_scope(query: &CountQuery, cells: Vec<(CellKey, i64)>) -> Vec<(CellKey, i64)> {
    let mut folded: BTreeMap<Vec<String>, i64> = BTreeMap::new();
    for (key, n) in cells {
        if let Some(scope) = &query.sector_scope {
            let in_scope = |d: Dimension| {
                key.get(d.name())
                    .is_some_and(|v| scope.iter().any(|s| s == v))
            };
            if !(in_scope(Dimension::SbiSection) || in_scope(Dimension::Sector)) {
                continue;
            }
        }
        let values: Vec<String> = query
            .group_by
            .iter()
            .map(|d| key.get(d.name()).cloned().unwrap_or_default())
            .collect();
        *folded.entry(values).or_insert(0) += n;
    }
    if query.group_by.is_empty() {
        let total = folded.values().sum();
        return vec![(CellKey::new(), total)];
    }
    folded
        .into_iter()
        .filter(|(_, n)| *n != 0)
        .map(|(values, n)| {
            let key = query
                .group_by
                .iter()
                .map(|d| d.name())
                .zip(values)
                .collect::<CellKey>();
            (key, n)
        })
        .collect()
}

/// Withholds every count below [`SUPPRESSION_THRESHOLD`] (`count: None, suppressed: true`);
/// zero stays visible (it discloses no one).
pub fn suppress(cells: Vec<(CellKey, i64)>) -> Vec<CountCell> {
    cells
        .into_iter()
        .map(|(dimensions, n)| {
            let suppressed = n > 0 && n < SUPPRESSION_THRESHOLD;
            CountCell {
                dimensions,
                count: (!suppressed).then_some(n),
                suppressed,
            }
        })
        .collect()
}

/// The published answer to `query` from the exact cells of [`store_query`]`(query)`: scope, then
/// suppression.
pub fn publish(query: &CountQuery, exact: Vec<(CellKey, i64)>) -> Vec<CountCell> {
    suppress(apply_scope(query, exact))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(pairs: &[(&'static str, &str)]) -> CellKey {
        pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
    }

    #[test]
    fn scope_filters_folds_and_suppresses() {
        let query = CountQuery {
            group_by: vec![Dimension::Year],
            sector_scope: Some(vec!["F".into(), "1071".into()]),
            ..CountQuery::default()
        };
        let inner = store_query(&query);
        assert_eq!(
            inner.group_by,
            vec![Dimension::Year, Dimension::Sector, Dimension::SbiSection]
        );
        assert!(inner.sector_scope.is_none());
        let exact = vec![
            (
                key(&[("year", "2020"), ("sector", "4120"), ("sbi_section", "F")]),
                3,
            ),
            (
                key(&[("year", "2020"), ("sector", "4399"), ("sbi_section", "F")]),
                4,
            ),
            (
                key(&[("year", "2020"), ("sector", "1071"), ("sbi_section", "C")]),
                2,
            ),
            (
                key(&[("year", "2020"), ("sector", "8610"), ("sbi_section", "Q")]),
                50,
            ),
            (
                key(&[("year", "2019"), ("sector", "1072"), ("sbi_section", "C")]),
                9,
            ),
        ];
        let cells = publish(&query, exact);
        assert_eq!(cells.len(), 1);
        assert_eq!(cells[0].dimensions, key(&[("year", "2020")]));
        assert_eq!(cells[0].count, Some(9));
        assert!(!cells[0].suppressed);
    }

    #[test]
    fn small_counts_are_suppressed_and_zero_total_shown() {
        let query = CountQuery::default();
        let cells = publish(&query, vec![(CellKey::new(), 4)]);
        assert_eq!(cells[0].count, None);
        assert!(cells[0].suppressed);
        let cells = publish(&query, Vec::new());
        assert_eq!(cells[0].count, Some(0));
        assert!(!cells[0].suppressed);
        let scoped = CountQuery {
            sector_scope: Some(Vec::new()),
            ..CountQuery::default()
        };
        let cells = publish(
            &scoped,
            vec![(key(&[("sector", "1071"), ("sbi_section", "C")]), 12)],
        );
        assert_eq!(cells[0].count, Some(0));
    }

    #[test]
    fn cells_are_ordered_by_group_by_values() {
        let query = CountQuery {
            group_by: vec![Dimension::Sex, Dimension::Year],
            ..CountQuery::default()
        };
        let exact = vec![
            (key(&[("sex", "M"), ("year", "2014")]), 7),
            (key(&[("sex", "F"), ("year", "2015")]), 7),
            (key(&[("sex", "F"), ("year", "2014")]), 0),
        ];
        let cells = publish(&query, exact);
        let order: Vec<_> = cells
            .iter()
            .map(|c| (c.dimensions["sex"].clone(), c.dimensions["year"].clone()))
            .collect();
        assert_eq!(
            order,
            vec![("F".into(), "2015".into()), ("M".into(), "2014".into())]
        );
    }
}
