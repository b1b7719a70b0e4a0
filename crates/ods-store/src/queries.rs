//! Read-side queries of the embedded store.

use std::collections::BTreeMap;

use rusqlite::params_from_iter;
use serde::Serialize;

use crate::api::Totals;
use crate::disclosure::{self, ExactCell, Policy, Published};
use crate::store::{lock, EmbeddedStore, StoreError};

/// A dimension of the count aggregate that answers can be grouped and filtered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// Notification year.
    Year,
    /// Notification quarter `YYYY-Qn`.
    Quarter,
    /// Notification month `YYYY-MM`.
    Month,
    /// Sector code.
    Sector,
    /// SBI section.
    SbiSection,
    /// Diagnosis group.
    DiagnosisGroup,
    /// CAS diagnosis code.
    Diagnosis,
    /// Group of the primary exposure.
    ExposureGroup,
    /// Primary exposure code.
    Exposure,
    /// Sex.
    Sex,
    /// Age band.
    AgeBand,
    /// Detection route.
    DetectionRoute,
    /// Consequence.
    Consequence,
}

impl Dimension {
    /// Every dimension.
    pub const ALL: [Dimension; 13] = [
        Dimension::Year,
        Dimension::Quarter,
        Dimension::Month,
        Dimension::Sector,
        Dimension::SbiSection,
        Dimension::DiagnosisGroup,
        Dimension::Diagnosis,
        Dimension::ExposureGroup,
        Dimension::Exposure,
        Dimension::Sex,
        Dimension::AgeBand,
        Dimension::DetectionRoute,
        Dimension::Consequence,
    ];

    /// The API name.
    pub fn name(self) -> &'static str {
        match self {
            Dimension::Year => "year",
            Dimension::Quarter => "quarter",
            Dimension::Month => "month",
            Dimension::Sector => "sector",
            Dimension::SbiSection => "sbi_section",
            Dimension::DiagnosisGroup => "diagnosis_group",
            Dimension::Diagnosis => "diagnosis",
            Dimension::ExposureGroup => "exposure_group",
            Dimension::Exposure => "exposure",
            Dimension::Sex => "sex",
            Dimension::AgeBand => "age_band",
            Dimension::DetectionRoute => "detection_route",
            Dimension::Consequence => "consequence",
        }
    }

    /// Parses an API name.
    pub fn parse(name: &str) -> Option<Dimension> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }

    fn column(self) -> &'static str {
        match self {
            Dimension::Year => "CAST(year AS TEXT)",
            Dimension::Quarter => "(year || '-Q' || quarter)",
            Dimension::Month => "period",
            Dimension::Sector => "sector_code",
            Dimension::SbiSection => "sbi_section",
            Dimension::DiagnosisGroup => "diagnosis_group",
            Dimension::Diagnosis => "diagnosis_code",
            Dimension::ExposureGroup => "primary_exposure_group",
            Dimension::Exposure => "primary_exposure",
            Dimension::Sex => "sex",
            Dimension::AgeBand => "age_band",
            Dimension::DetectionRoute => "detection_route",
            Dimension::Consequence => "consequence",
        }
    }
}

/// The value of each grouped dimension of a cell.
pub type CellKey = BTreeMap<&'static str, String>;

/// A counts question.
#[derive(Debug, Clone, Default)]
pub struct CountQuery {
    /// Dimensions to group by (none: one national total).
    pub group_by: Vec<Dimension>,
    /// Keep only cells whose dimension has one of these values.
    pub filters: Vec<(Dimension, Vec<String>)>,
    /// First month `YYYY-MM`, inclusive.
    pub from: Option<String>,
    /// Last month `YYYY-MM`, inclusive.
    pub to: Option<String>,
    /// When set, only these sectors (SBI section letters or finer sector codes): the scope of a
    /// sector fund.
    pub sector_scope: Option<Vec<String>>,
}

/// One answer cell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CountCell {
    /// The cell's value per grouped dimension.
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub dimensions: BTreeMap<&'static str, String>,
    /// Number of notifications; `None` when suppressed.
    pub count: Option<i64>,
    /// Whether the count is withheld (below the threshold).
    pub suppressed: bool,
}

/// Pipeline-wide totals for operators and analysts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Summary {
    /// Notifications currently counted (validated, not withdrawn).
    pub notifications_counted: i64,
    /// Notifications whose latest version was rejected by the processor.
    pub notifications_rejected: i64,
    /// Withdrawn notifications.
    pub notifications_withdrawn: i64,
    /// Zero reports (distinct reporter and month).
    pub zero_reports: i64,
    /// Distinct reporters with a counted notification.
    pub reporters: i64,
    /// Undecodable records set aside.
    pub dead_letters: i64,
    /// Counted notifications by notification year (suppressed below the threshold).
    pub by_year: Vec<CountCell>,
}

/// What the store knows of one notification (for its reporter).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotificationView {
    /// Id.
    pub notification_id: String,
    /// Latest processed version.
    pub version: i64,
    /// `validated`, `rejected` or `withdrawn`.
    pub status: String,
    /// Reporter pseudonym (for access checks; not shown to others).
    #[serde(skip)]
    pub reporter: String,
    /// Rejection reasons of the latest version, when rejected.
    pub reasons: Option<serde_json::Value>,
}

/// One reporter's activity in one month at one service: counted notifications (by the month
/// they were filed, the same period as the counts) and zero reports. Reporter-level, for
/// participation statistics computed inside the system; never published as it is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ReporterActivity {
    /// Month `YYYY-MM`.
    pub period: String,
    /// Reporter pseudonym.
    pub reporter: String,
    /// Service id, `self_employed`, or empty for notifications stored before the service was
    /// kept with them.
    pub service: String,
    /// Currently counted notifications (validated, not withdrawn) filed that month.
    pub notifications: i64,
    /// Zero reports for that month (0 or 1).
    pub zero_reports: i64,
}

impl Summary {
    /// A summary from the totals and the published counts per year.
    pub fn new(totals: Totals, by_year: Vec<CountCell>) -> Summary {
        Summary {
            notifications_counted: totals.notifications_counted,
            notifications_rejected: totals.notifications_rejected,
            notifications_withdrawn: totals.notifications_withdrawn,
            zero_reports: totals.zero_reports,
            reporters: totals.reporters,
            dead_letters: totals.dead_letters,
            by_year,
        }
    }
}

/// The SQL of an exact count over `table` (`agg_counts` or `agg_reporters`, which share the
/// cell columns), per reporter too when `by_reporter` (then the sector scope, if any, filters).
fn count_sql(query: &CountQuery, table: &str, by_reporter: bool) -> (String, Vec<String>) {
    let mut cols: Vec<&str> = query.group_by.iter().map(|d| d.column()).collect();
    if by_reporter {
        cols.push("reporter");
    }
    let mut sql = String::from("SELECT ");
    for c in &cols {
        sql.push_str(c);
        sql.push_str(", ");
    }
    sql.push_str(&format!("SUM(n) FROM {table} WHERE 1 = 1"));
    let mut args: Vec<String> = Vec::new();
    for (d, values) in &query.filters {
        if values.is_empty() {
            continue;
        }
        sql.push_str(&format!(
            " AND {} IN ({})",
            d.column(),
            vec!["?"; values.len()].join(", ")
        ));
        args.extend(values.iter().cloned());
    }
    if let Some(from) = &query.from {
        sql.push_str(" AND period >= ?");
        args.push(from.clone());
    }
    if let Some(to) = &query.to {
        sql.push_str(" AND period <= ?");
        args.push(to.clone());
    }
    if let (true, Some(scope)) = (by_reporter, &query.sector_scope) {
        if scope.is_empty() {
            sql.push_str(" AND 1 = 0");
        } else {
            let marks = vec!["?"; scope.len()].join(", ");
            sql.push_str(&format!(
                " AND (sbi_section IN ({marks}) OR sector_code IN ({marks}))"
            ));
            args.extend(scope.iter().cloned());
            args.extend(scope.iter().cloned());
        }
    }
    if !cols.is_empty() {
        sql.push_str(&format!(" GROUP BY {0} ORDER BY {0}", cols.join(", ")));
    }
    (sql, args)
}

impl EmbeddedStore {
    /// Published counts per cell of the requested dimensions: sector scope, primary and
    /// complementary suppression ([`crate::disclosure`]).
    pub fn counts(&self, query: &CountQuery) -> Result<Published, StoreError> {
        let table = disclosure::table_query(query);
        let rows = if Policy::of(query).min_reporters > 0 {
            ExactCell::from_reporter_counts(self.exact_counts_by_reporter(&table)?)
        } else {
            ExactCell::from_counts(self.exact_counts(&table)?)
        };
        Ok(disclosure::Disclosed::new(query, rows).answer(query)?)
    }

    /// Exact counts within the sector scope, without suppression: for internal computations
    /// (signals, checks) only, never to be published as they are.
    pub fn counts_unsuppressed(
        &self,
        query: &CountQuery,
    ) -> Result<Vec<(CellKey, i64)>, StoreError> {
        let exact = self.exact_counts(&disclosure::store_query(query))?;
        Ok(disclosure::apply_scope(query, exact))
    }

    /// Exact counts for the query's dimensions, filters and period; the sector scope is
    /// ignored (disclosure control applies it, see [`crate::disclosure`]).
    pub fn exact_counts(&self, query: &CountQuery) -> Result<Vec<(CellKey, i64)>, StoreError> {
        let (sql, args) = count_sql(query, "agg_counts", false);
        let conn = lock(&self.inner.reader);
        let mut stmt = conn.prepare(&sql).map_err(|e| self.db_error(e))?;
        let width = query.group_by.len();
        let rows = stmt
            .query_map(params_from_iter(args.iter()), |r| {
                let mut dims = BTreeMap::new();
                for (i, d) in query.group_by.iter().enumerate() {
                    dims.insert(d.name(), r.get::<_, String>(i)?);
                }
                Ok((dims, r.get::<_, Option<i64>>(width)?.unwrap_or(0)))
            })
            .map_err(|e| self.db_error(e))?;
        let mut cells = Vec::new();
        for row in rows {
            let (dimensions, n) = row.map_err(|e| self.db_error(e))?;
            if n == 0 && width > 0 {
                continue;
            }
            cells.push((dimensions, n));
        }
        Ok(cells)
    }

    /// Exact counts per cell and reporter for the query's dimensions, filters and period,
    /// within the sector scope when one is set (see
    /// [`crate::AnalyticsStore::exact_counts_by_reporter`]).
    pub fn exact_counts_by_reporter(
        &self,
        query: &CountQuery,
    ) -> Result<Vec<(CellKey, String, i64)>, StoreError> {
        let (sql, args) = count_sql(query, "agg_reporters", true);
        let conn = lock(&self.inner.reader);
        let mut stmt = conn.prepare(&sql).map_err(|e| self.db_error(e))?;
        let width = query.group_by.len();
        let rows = stmt
            .query_map(params_from_iter(args.iter()), |r| {
                let mut dims = BTreeMap::new();
                for (i, d) in query.group_by.iter().enumerate() {
                    dims.insert(d.name(), r.get::<_, String>(i)?);
                }
                Ok((
                    dims,
                    r.get::<_, String>(width)?,
                    r.get::<_, Option<i64>>(width + 1)?.unwrap_or(0),
                ))
            })
            .map_err(|e| self.db_error(e))?;
        let mut cells = Vec::new();
        for row in rows {
            let (dimensions, reporter, n) = row.map_err(|e| self.db_error(e))?;
            if n != 0 {
                cells.push((dimensions, reporter, n));
            }
        }
        Ok(cells)
    }

    /// Pipeline totals before disclosure control.
    pub fn totals(&self) -> Result<Totals, StoreError> {
        let scalar = |sql: &str| -> Result<i64, StoreError> {
            let conn = lock(&self.inner.reader);
            conn.query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
                .map(|v| v.unwrap_or(0))
                .map_err(|e| self.db_error(e))
        };
        Ok(Totals {
            notifications_counted: scalar("SELECT SUM(n) FROM agg_counts")?,
            notifications_rejected: scalar(
                "SELECT COUNT(*) FROM notifications WHERE status = 'rejected'",
            )?,
            notifications_withdrawn: scalar(
                "SELECT COUNT(*) FROM notifications WHERE status = 'withdrawn'",
            )?,
            zero_reports: scalar("SELECT COUNT(*) FROM zero_reports")?,
            reporters: scalar(
                "SELECT COUNT(DISTINCT reporter) FROM notifications WHERE status = 'validated'",
            )?,
            dead_letters: scalar("SELECT COUNT(*) FROM dead_letters")?,
        })
    }

    /// Totals of the whole pipeline, with published counts per year.
    pub fn summary(&self) -> Result<Summary, StoreError> {
        let by_year = self.counts(&CountQuery {
            group_by: vec![Dimension::Year],
            ..CountQuery::default()
        })?;
        Ok(Summary::new(self.totals()?, by_year.cells))
    }

    /// Every reporter's activity per month and service, ordered by (period, reporter,
    /// service) (see [`crate::AnalyticsStore::reporter_activity`]).
    pub fn reporter_activity(&self) -> Result<Vec<ReporterActivity>, StoreError> {
        let conn = lock(&self.inner.reader);
        let mut stmt = conn
            .prepare(
                "SELECT period, reporter, service, SUM(notifications), SUM(zero_reports) FROM (
                   SELECT json_extract(state, '$.counted.key.period') AS period, reporter,
                          COALESCE(json_extract(state, '$.counted.service'), '') AS service,
                          1 AS notifications, 0 AS zero_reports
                     FROM notifications
                    WHERE status = 'validated' AND json_extract(state, '$.counted.key.period') IS NOT NULL
                   UNION ALL
                   SELECT period, reporter, service, 0, 1 FROM zero_reports)
                 GROUP BY period, reporter, service ORDER BY period, reporter, service",
            )
            .map_err(|e| self.db_error(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(ReporterActivity {
                    period: r.get(0)?,
                    reporter: r.get(1)?,
                    service: r.get(2)?,
                    notifications: r.get(3)?,
                    zero_reports: r.get(4)?,
                })
            })
            .map_err(|e| self.db_error(e))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.db_error(e))
    }

    /// The processing status of one notification.
    pub fn notification(&self, id: &str) -> Result<Option<NotificationView>, StoreError> {
        let conn = lock(&self.inner.reader);
        let row = conn.query_row(
            "SELECT n.notification_id, n.version, n.status, n.reporter, r.reasons
                 FROM notifications n LEFT JOIN rejections r
                   ON r.notification_id = n.notification_id AND r.version = n.version
                 WHERE n.notification_id = ?1",
            [id],
            |r| {
                Ok(NotificationView {
                    notification_id: r.get(0)?,
                    version: r.get(1)?,
                    status: r.get(2)?,
                    reporter: r.get(3)?,
                    reasons: r
                        .get::<_, Option<String>>(4)?
                        .and_then(|t| serde_json::from_str(&t).ok()),
                })
            },
        );
        match row {
            Ok(view) => Ok(Some(view)),
            Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
            Err(e) => Err(self.db_error(e)),
        }
    }
}
