//! Every query text of the store, built in one place so the SQL check can run them all
//! ([`sql_catalog`]).
//!
//! Reads take the latest row per key with `argMax(column, source_offset)` and `GROUP BY key`
//! rather than `FINAL`: with `FINAL`, old servers could move a `WHERE` on a non-key column
//! before the replacing merge and count a superseded row. Aliases get a trailing `_` so they
//! never shadow the column inside the aggregate.

use clickhouse::query::Query;
use clickhouse::Client;
use ods_store::{CountQuery, Dimension};
use serde::Serialize;

use crate::rows::{
    ContributionRow, DeadLetterRow, NotificationRow, PositionRow, RejectionRow, SignalReviewRow,
    SignalRevisionRow, TableRow, ZeroReportRow,
};
use crate::schema::{schema_migrations_ddl, Capabilities, MIGRATIONS};

/// A bind value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string (escaped by the client).
    Str(String),
    /// An integer.
    Int(i64),
}

/// A query text with `?` placeholders and its values.
#[derive(Debug, Clone, PartialEq)]
pub struct Sql {
    /// The text.
    pub text: String,
    /// Values for the `?`s, in order.
    pub binds: Vec<Value>,
}

impl Sql {
    fn new(text: String) -> Sql {
        Sql {
            text,
            binds: Vec::new(),
        }
    }

    /// The client query with every value bound (`.bind()`, which every server version
    /// understands, unlike server-side `{name:Type}` parameters).
    pub fn query(&self, client: &Client) -> Query {
        let mut q = client.query(&self.text);
        for b in &self.binds {
            q = match b {
                Value::Str(s) => q.bind(s.as_str()),
                Value::Int(i) => q.bind(*i),
            };
        }
        q
    }

    /// The final text with values spliced in (what the server receives).
    pub fn render(&self, client: &Client) -> String {
        self.query(client).sql_display().to_string()
    }
}

/// The columns of the latest contribution per notification, aliased `<column>_`.
const CONTRIBUTION_COLUMNS: [&str; 14] = [
    "counted",
    "period",
    "year",
    "quarter",
    "sector_code",
    "sbi_section",
    "diagnosis_code",
    "diagnosis_group",
    "primary_exposure",
    "primary_exposure_group",
    "sex",
    "age_band",
    "detection_route",
    "consequence",
];

/// The latest contribution per notification, with the columns `query` reads (aliased
/// `<column>_`).
fn latest_contributions(db: &str, query: &CountQuery) -> String {
    let needed = needed_columns(query);
    let cols: Vec<String> = CONTRIBUTION_COLUMNS
        .iter()
        .filter(|c| needed.contains(c))
        .map(|c| format!("argMax({c}, source_offset) AS {c}_"))
        .collect();
    format!(
        "SELECT notification_id, {} FROM {db}.contributions GROUP BY notification_id",
        cols.join(", ")
    )
}

/// The contribution columns a count query reads: `counted` and those of its dimensions,
/// filters, sector scope and period range. Taking the latest
/// value of only these keeps the per-notification aggregation small: at 10 million
/// notifications the full row no longer fits a 4 GB query memory limit.
fn needed_columns(query: &CountQuery) -> Vec<&'static str> {
    let mut needed = vec!["counted"];
    let mut dims: Vec<Dimension> = query.group_by.clone();
    dims.extend(query.filters.iter().map(|(d, _)| *d));
    if query.sector_scope.is_some() {
        dims.extend([Dimension::SbiSection, Dimension::Sector]);
    }
    for d in dims {
        needed.extend(dimension_columns(d));
    }
    if query.from.is_some() || query.to.is_some() {
        needed.push("period");
    }
    needed
}

/// The contribution columns behind a dimension.
fn dimension_columns(d: Dimension) -> &'static [&'static str] {
    match d {
        Dimension::Year => &["year"],
        Dimension::Quarter => &["year", "quarter"],
        Dimension::Month => &["period"],
        Dimension::Sector => &["sector_code"],
        Dimension::SbiSection => &["sbi_section"],
        Dimension::DiagnosisGroup => &["diagnosis_group"],
        Dimension::Diagnosis => &["diagnosis_code"],
        Dimension::ExposureGroup => &["primary_exposure_group"],
        Dimension::Exposure => &["primary_exposure"],
        Dimension::Sex => &["sex"],
        Dimension::AgeBand => &["age_band"],
        Dimension::DetectionRoute => &["detection_route"],
        Dimension::Consequence => &["consequence"],
    }
}

/// The expression of a dimension over the latest contribution columns.
pub fn dimension_expr(d: Dimension) -> &'static str {
    match d {
        Dimension::Year => "toString(year_)",
        Dimension::Quarter => "concat(toString(year_), '-Q', toString(quarter_))",
        Dimension::Month => "CAST(period_ AS String)",
        Dimension::Sector => "CAST(sector_code_ AS String)",
        Dimension::SbiSection => "CAST(sbi_section_ AS String)",
        Dimension::DiagnosisGroup => "CAST(diagnosis_group_ AS String)",
        Dimension::Diagnosis => "CAST(diagnosis_code_ AS String)",
        Dimension::ExposureGroup => "CAST(primary_exposure_group_ AS String)",
        Dimension::Exposure => "CAST(primary_exposure_ AS String)",
        Dimension::Sex => "CAST(sex_ AS String)",
        Dimension::AgeBand => "CAST(age_band_ AS String)",
        Dimension::DetectionRoute => "CAST(detection_route_ AS String)",
        Dimension::Consequence => "CAST(consequence_ AS String)",
    }
}

/// Exact counts of currently counted notifications for the query's dimensions, filters and
/// period (the sector scope is disclosure control, applied later). Rows: `(dims Array(String),
/// n UInt64)`, dims in `group_by` order.
pub fn counts(db: &str, query: &CountQuery) -> Sql {
    let exprs: Vec<&str> = query.group_by.iter().map(|d| dimension_expr(*d)).collect();
    let dims = if exprs.is_empty() {
        "emptyArrayString()".to_string()
    } else {
        format!("[{}]", exprs.join(", "))
    };
    let mut sql = Sql::new(format!(
        "SELECT {dims} AS dims, count() AS n FROM ({}) WHERE counted_ = 1",
        latest_contributions(db, query)
    ));
    filter_clauses(&mut sql, query);
    if !exprs.is_empty() {
        sql.text
            .push_str(&format!(" GROUP BY {}", exprs.join(", ")));
    }
    sql
}

/// Exact counts per cell and reporter of currently counted notifications for the query's
/// dimensions, filters and period, and within the sector scope when one is set (see
/// `AnalyticsStore::exact_counts_by_reporter`). The reporter of a notification is the one of its
/// latest state row, which belongs to the same version as its latest contribution row. Rows:
/// `(dims Array(String), reporter String, n UInt64)`, dims in `group_by` order.
pub fn counts_by_reporter(db: &str, query: &CountQuery) -> Sql {
    let exprs: Vec<&str> = query.group_by.iter().map(|d| dimension_expr(*d)).collect();
    let dims = if exprs.is_empty() {
        "emptyArrayString()".to_string()
    } else {
        format!("[{}]", exprs.join(", "))
    };
    let mut sql = Sql::new(format!(
        "SELECT {dims} AS dims, reporter_ AS reporter, count() AS n FROM ({}) AS c \
         ANY LEFT JOIN (SELECT notification_id, argMax(reporter, source_offset) AS reporter_ \
         FROM {db}.notifications GROUP BY notification_id) AS r USING notification_id \
         WHERE counted_ = 1",
        latest_contributions(db, query)
    ));
    filter_clauses(&mut sql, query);
    match &query.sector_scope {
        Some(scope) if scope.is_empty() => sql.text.push_str(" AND 1 = 0"),
        Some(scope) => {
            let marks = vec!["?"; scope.len()].join(", ");
            sql.text.push_str(&format!(
                " AND ({} IN ({marks}) OR {} IN ({marks}))",
                dimension_expr(Dimension::SbiSection),
                dimension_expr(Dimension::Sector)
            ));
            sql.binds.extend(scope.iter().cloned().map(Value::Str));
            sql.binds.extend(scope.iter().cloned().map(Value::Str));
        }
        None => {}
    }
    let mut group: Vec<&str> = exprs.clone();
    group.push("reporter_");
    sql.text
        .push_str(&format!(" GROUP BY {}", group.join(", ")));
    sql
}

/// Appends the filters and the period range of `query` (`AND ...`, values bound).
fn filter_clauses(sql: &mut Sql, query: &CountQuery) {
    for (d, values) in &query.filters {
        if values.is_empty() {
            continue;
        }
        sql.text.push_str(&format!(
            " AND {} IN ({})",
            dimension_expr(*d),
            vec!["?"; values.len()].join(", ")
        ));
        sql.binds.extend(values.iter().cloned().map(Value::Str));
    }
    if let Some(from) = &query.from {
        sql.text.push_str(" AND period_ >= ?");
        sql.binds.push(Value::Str(from.clone()));
    }
    if let Some(to) = &query.to {
        sql.text.push_str(" AND period_ <= ?");
        sql.binds.push(Value::Str(to.clone()));
    }
}

/// Which of the given notifications have a state (reads only the id column, unlike
/// [`load_states`]). Rows: `notification_id`.
pub fn known_notifications(db: &str, ids: &[String]) -> Sql {
    let mut sql = Sql::new(format!(
        "SELECT DISTINCT notification_id FROM {db}.notifications WHERE notification_id IN ({})",
        vec!["?"; ids.len().max(1)].join(", ")
    ));
    if ids.is_empty() {
        sql.binds.push(Value::Str(String::new()));
    }
    sql.binds.extend(ids.iter().cloned().map(Value::Str));
    sql
}

/// Latest state of the given notifications. Rows: `(notification_id, state)`.
pub fn load_states(db: &str, ids: &[String]) -> Sql {
    let mut sql = Sql::new(format!(
        "SELECT notification_id, argMax(state, source_offset) AS state_ FROM {db}.notifications \
         WHERE notification_id IN ({}) GROUP BY notification_id",
        vec!["?"; ids.len().max(1)].join(", ")
    ));
    if ids.is_empty() {
        sql.binds.push(Value::Str(String::new()));
    }
    sql.binds.extend(ids.iter().cloned().map(Value::Str));
    sql
}

/// Next offset of a (source, partition). Rows: at most one `Int64`.
pub fn position(db: &str, source: &str, partition: i32) -> Sql {
    let mut sql = Sql::new(format!(
        "SELECT max(next_offset) AS next_offset_ FROM {db}.positions \
         WHERE source = ? AND source_partition = ? GROUP BY source, source_partition"
    ));
    sql.binds.push(Value::Str(source.to_string()));
    sql.binds.push(Value::Int(partition.into()));
    sql
}

/// Next offsets of several partitions of a source. Rows: (`Int32` partition, `Int64` next
/// offset), one per partition that has a position.
pub fn positions(db: &str, source: &str, partitions: &[i32]) -> Sql {
    let mut sql = Sql::new(format!(
        "SELECT source_partition, max(next_offset) AS next_offset_ FROM {db}.positions \
         WHERE source = ? AND source_partition IN ({}) GROUP BY source, source_partition",
        vec!["?"; partitions.len().max(1)].join(", ")
    ));
    sql.binds.push(Value::Str(source.to_string()));
    if partitions.is_empty() {
        sql.binds.push(Value::Int(-1));
    }
    sql.binds
        .extend(partitions.iter().map(|p| Value::Int(i64::from(*p))));
    sql
}

/// Number of counted notifications. Rows: one `UInt64`.
pub fn counted_total(db: &str) -> Sql {
    Sql::new(format!(
        "SELECT count() AS n FROM ({}) WHERE counted_ = 1",
        latest_contributions(db, &CountQuery::default())
    ))
}

/// Rejected and withdrawn notifications and distinct reporters of validated ones. Rows: one
/// `(UInt64, UInt64, UInt64)`.
pub fn status_totals(db: &str) -> Sql {
    Sql::new(format!(
        "SELECT countIf(status_ = 'rejected') AS rejected, countIf(status_ = 'withdrawn') AS withdrawn, \
         uniqExactIf(reporter_, status_ = 'validated') AS reporters FROM (\
         SELECT notification_id, argMax(status, source_offset) AS status_, \
         argMax(reporter, source_offset) AS reporter_ FROM {db}.notifications GROUP BY notification_id)"
    ))
}

/// Distinct zero reports (reporter, month). Rows: one `UInt64`.
pub fn zero_report_total(db: &str) -> Sql {
    Sql::new(format!(
        "SELECT count() AS n FROM (SELECT reporter, period FROM {db}.zero_reports GROUP BY reporter, period)"
    ))
}

/// Every reporter's activity per month and service (see
/// `AnalyticsStore::reporter_activity`): counted notifications by filing month, from each
/// notification's latest state (status, reporter, and the period and service kept in its
/// processor state), and zero reports (the service of the first one per reporter and month).
/// Rows: `(period, reporter, service, notifications UInt64, zero_reports UInt64)`, ordered.
pub fn reporter_activity(db: &str) -> Sql {
    Sql::new(format!(
        "SELECT period, reporter, service, sum(notifications) AS notifications, \
         sum(zero_reports) AS zero_reports FROM (\
         SELECT visitParamExtractString(state_, 'period') AS period, reporter_ AS reporter, \
         visitParamExtractString(state_, 'service') AS service, toUInt64(1) AS notifications, \
         toUInt64(0) AS zero_reports FROM (\
         SELECT notification_id, CAST(argMax(status, source_offset) AS String) AS status_, \
         argMax(reporter, source_offset) AS reporter_, argMax(state, source_offset) AS state_ \
         FROM {db}.notifications GROUP BY notification_id) WHERE status_ = 'validated' \
         UNION ALL \
         SELECT period, reporter, argMin(service, source_offset) AS service, toUInt64(0) AS notifications, \
         toUInt64(1) AS zero_reports FROM {db}.zero_reports GROUP BY reporter, period) \
         GROUP BY period, reporter, service ORDER BY period, reporter, service"
    ))
}

/// Distinct dead letters. Rows: one `UInt64`.
pub fn dead_letter_total(db: &str) -> Sql {
    Sql::new(format!(
        "SELECT count() AS n FROM (SELECT source, source_partition, source_offset \
         FROM {db}.dead_letters GROUP BY source, source_partition, source_offset)"
    ))
}

/// The latest state of one notification. Rows: at most one `(id, version UInt32, status,
/// reporter)`.
pub fn notification(db: &str, id: &str) -> Sql {
    let mut sql = Sql::new(format!(
        "SELECT notification_id, argMax(version, source_offset) AS version_, \
         CAST(argMax(status, source_offset) AS String) AS status_, argMax(reporter, source_offset) AS reporter_ \
         FROM {db}.notifications WHERE notification_id = ? GROUP BY notification_id"
    ));
    sql.binds.push(Value::Str(id.to_string()));
    sql
}

/// The rejection reasons of one notification version. Rows: at most one `String`.
pub fn rejection_reasons(db: &str, id: &str, version: u32) -> Sql {
    let mut sql = Sql::new(format!(
        "SELECT argMax(reasons, source_offset) AS reasons_ FROM {db}.rejections \
         WHERE notification_id = ? AND version = ? GROUP BY notification_id, version"
    ));
    sql.binds.push(Value::Str(id.to_string()));
    sql.binds.push(Value::Int(version.into()));
    sql
}

/// The latest revision of every signal, or of the ones in `ids` (when given). Rows:
/// [`SignalRevisionRow`], newest detection first.
pub fn signals(db: &str, ids: Option<&[String]>) -> Sql {
    // ties of two reviewers writing the same revision: every column from the same, later row
    let latest = |column: &str| format!("argMax({column}, (revision, updated_at_ms))");
    let mut sql = Sql::new(format!(
        "SELECT signal_id, max(revision) AS revision_, {} AS kind_, {} AS subject_, \
         {} AS period_, {} AS numbers_, {} AS method_, {} AS explanation_, {} AS status_, \
         {} AS note_, min(detected_at_ms) AS detected_, max(updated_at_ms) AS updated_ \
         FROM {db}.{}{} GROUP BY signal_id ORDER BY detected_ DESC, signal_id",
        latest("kind"),
        latest("subject"),
        latest("period"),
        latest("numbers"),
        latest("method"),
        latest("explanation"),
        latest("status"),
        latest("note"),
        SignalRevisionRow::TABLE,
        match ids {
            Some(ids) => format!(
                " WHERE signal_id IN ({})",
                vec!["?"; ids.len().max(1)].join(", ")
            ),
            None => String::new(),
        }
    ));
    if let Some(ids) = ids {
        if ids.is_empty() {
            sql.binds.push(Value::Str(String::new()));
        }
        sql.binds.extend(ids.iter().cloned().map(Value::Str));
    }
    sql
}

/// The review changes of one signal, oldest first. Rows: [`SignalReviewRow`].
pub fn signal_reviews(db: &str, id: &str) -> Sql {
    let mut sql = Sql::new(format!(
        "SELECT signal_id, revision, at_ms, actor, any(from_status) AS from_, \
         any(to_status) AS to_, any(note) AS note_ FROM {db}.{} WHERE signal_id = ? \
         GROUP BY signal_id, revision, actor, at_ms ORDER BY revision, at_ms, actor",
        SignalReviewRow::TABLE
    ));
    sql.binds.push(Value::Str(id.to_string()));
    sql
}

/// The tables [`reset`] empties (derived data and positions; signals and their audit trail hold
/// human review work and stay).
pub const DERIVED_TABLES: [&str; 6] = [
    ContributionRow::TABLE,
    RejectionRow::TABLE,
    ZeroReportRow::TABLE,
    DeadLetterRow::TABLE,
    NotificationRow::TABLE,
    PositionRow::TABLE,
];

/// Statements that delete all derived data and positions.
pub fn reset(db: &str) -> Vec<Sql> {
    DERIVED_TABLES
        .iter()
        .map(|t| Sql::new(format!("TRUNCATE TABLE {db}.{t}")))
        .collect()
}

/// Every SQL text of the store for one database and server, for checks against other engines.
#[derive(Debug, Clone, Serialize)]
pub struct SqlCatalog {
    /// Database.
    pub database: String,
    /// DDL in order: database, `schema_migrations`, then every migration's statements.
    pub ddl: Vec<String>,
    /// Named queries with example values bound.
    pub queries: Vec<(String, String)>,
    /// Per table, the columns and types the row structs write (RowBinary must match exactly).
    pub columns: Vec<(String, String, String)>,
}

fn columns_of<T: TableRow>(out: &mut Vec<(String, String, String)>) {
    for (name, ty) in T::TYPES {
        out.push((T::TABLE.to_string(), name.to_string(), ty.to_string()));
    }
}

/// The catalog of every DDL statement and query text, with example values.
pub fn sql_catalog(db: &str, caps: &Capabilities) -> SqlCatalog {
    let client = Client::default();
    let mut ddl = vec![
        format!("CREATE DATABASE IF NOT EXISTS {db}"),
        schema_migrations_ddl(db),
    ];
    for m in MIGRATIONS {
        ddl.extend(m.statements(db, caps));
    }
    let mut queries: Vec<(String, Sql)> = Vec::new();
    let every = CountQuery {
        group_by: ods_store::Dimension::ALL.to_vec(),
        filters: ods_store::Dimension::ALL
            .iter()
            .map(|d| (*d, vec!["x".to_string(), "it's".to_string()]))
            .collect(),
        from: Some("2014-01".into()),
        to: Some("2023-12".into()),
        sector_scope: None,
    };
    queries.push(("counts_total".into(), counts(db, &CountQuery::default())));
    queries.push(("counts_every_dimension".into(), counts(db, &every)));
    queries.push((
        "counts_by_reporter_total".into(),
        counts_by_reporter(db, &CountQuery::default()),
    ));
    queries.push((
        "counts_by_reporter_every_dimension".into(),
        counts_by_reporter(db, &every),
    ));
    queries.push((
        "counts_by_reporter_scoped".into(),
        counts_by_reporter(
            db,
            &CountQuery {
                group_by: vec![Dimension::Year, Dimension::Sector, Dimension::SbiSection],
                sector_scope: Some(vec!["F".into(), "1071".into(), "it's".into()]),
                ..CountQuery::default()
            },
        ),
    ));
    queries.push((
        "counts_by_reporter_empty_scope".into(),
        counts_by_reporter(
            db,
            &CountQuery {
                group_by: vec![Dimension::Sex],
                sector_scope: Some(Vec::new()),
                ..CountQuery::default()
            },
        ),
    ));
    for d in ods_store::Dimension::ALL {
        queries.push((
            format!("counts_by_{}", d.name()),
            counts(
                db,
                &CountQuery {
                    group_by: vec![d],
                    ..CountQuery::default()
                },
            ),
        ));
    }
    queries.push((
        "load_states".into(),
        load_states(db, &["a".to_string(), "b'c".to_string()]),
    ));
    queries.push(("load_states_empty".into(), load_states(db, &[])));
    queries.push((
        "known_notifications".into(),
        known_notifications(db, &["a".to_string(), "b'c".to_string()]),
    ));
    queries.push((
        "known_notifications_empty".into(),
        known_notifications(db, &[]),
    ));
    queries.push((
        "positions".into(),
        positions(db, "ods.notifications.v1", &[0, 3]),
    ));
    queries.push((
        "positions_empty".into(),
        positions(db, "ods.notifications.v1", &[]),
    ));
    queries.push(("position".into(), position(db, "ods.notifications.v1", 3)));
    queries.push(("counted_total".into(), counted_total(db)));
    queries.push(("status_totals".into(), status_totals(db)));
    queries.push(("zero_report_total".into(), zero_report_total(db)));
    queries.push(("reporter_activity".into(), reporter_activity(db)));
    queries.push(("signals".into(), signals(db, None)));
    queries.push((
        "signals_by_id".into(),
        signals(db, Some(&["a".to_string(), "b'c".to_string()])),
    ));
    queries.push(("signal_reviews".into(), signal_reviews(db, "a")));
    queries.push(("dead_letter_total".into(), dead_letter_total(db)));
    queries.push(("notification".into(), notification(db, "0190-x")));
    queries.push((
        "rejection_reasons".into(),
        rejection_reasons(db, "0190-x", 2),
    ));
    for (i, s) in reset(db).into_iter().enumerate() {
        queries.push((format!("reset_{i}"), s));
    }
    let mut columns = Vec::new();
    columns_of::<NotificationRow>(&mut columns);
    columns_of::<ContributionRow>(&mut columns);
    columns_of::<RejectionRow>(&mut columns);
    columns_of::<ZeroReportRow>(&mut columns);
    columns_of::<DeadLetterRow>(&mut columns);
    columns_of::<PositionRow>(&mut columns);
    columns_of::<SignalRevisionRow>(&mut columns);
    columns_of::<SignalReviewRow>(&mut columns);
    SqlCatalog {
        database: db.to_string(),
        ddl,
        queries: queries
            .into_iter()
            .map(|(name, sql)| (name, sql.render(&client)))
            .collect(),
        columns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_and_bound_in_order() {
        let q = CountQuery {
            group_by: vec![Dimension::Year],
            filters: vec![(Dimension::Sex, vec!["F".into(), "x' OR 1=1 --".into()])],
            from: Some("2020-01".into()),
            ..CountQuery::default()
        };
        let text = counts("ods", &q).render(&Client::default());
        assert!(text.contains("IN ('F', 'x\\' OR 1=1 --')"), "{text}");
        assert!(text.contains("period_ >= '2020-01'"), "{text}");
        assert!(text.ends_with("GROUP BY toString(year_)"), "{text}");
    }
}
