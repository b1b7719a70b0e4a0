//! The ClickHouse implementation of [`AnalyticsStore`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use clickhouse::{Client, Row};
use ods_log::LogRecord;
use ods_processor::{Assessed, Contribution, Decision, NotificationState, Processor, StoredForms};
use ods_store::{
    AnalyticsStore, AuditEntry, BatchOutputs, BatchStats, CellKey, CountQuery, LookAhead,
    NotificationView, Outlet, ReporterActivity, SignalRecord, SignalStatus, StoreError, Totals,
};
use serde::Deserialize;
use tracing::Instrument;

use crate::error::ClickHouseError;
use crate::rows::{
    ContributionRow, DeadLetterRow, NotificationRow, PositionRow, RejectionRow, SignalReviewRow,
    SignalRevisionRow, TableRow, ZeroReportRow,
};
use crate::schema::{check_database_name, migrate, Capabilities, MigrationReport};
use crate::sql;
use crate::writer::{RetryPolicy, StoreMetrics, Writer};

/// Where the store connects to.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickHouseConfig {
    /// HTTP URL of the server, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    /// Database (created by [`ClickHouseStore::migrate`]).
    pub database: String,
    /// User, when not the default.
    pub user: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// Retries of inserts.
    pub retry: RetryPolicy,
    /// Rows per insert request.
    pub max_rows_per_insert: usize,
    /// Notification ids per state-loading query.
    pub max_ids_per_query: usize,
    /// ClickHouse's `max_bytes_before_external_group_by` for every query of the store (0: the
    /// server's setting). Reads aggregate the latest row of every notification, so beyond a
    /// few million notifications a query's `GROUP BY` outgrows `max_memory_usage`; set this to
    /// about half of it to let ClickHouse spill to disk instead of refusing the query.
    pub group_by_spill_bytes: u64,
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        ClickHouseConfig {
            url: "http://127.0.0.1:8123".into(),
            database: crate::DEFAULT_DATABASE.into(),
            user: None,
            password: None,
            retry: RetryPolicy::default(),
            max_rows_per_insert: 100_000,
            max_ids_per_query: 2000,
            group_by_spill_bytes: 0,
        }
    }
}

/// Where a fault-injection test stops [`ClickHouseStore::apply_batch_until`], as a crash would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// After the derived rows (contributions, rejections, zero reports, dead letters), before
    /// the notification states.
    BeforeStates,
    /// After all data, before the position.
    BeforePosition,
}

/// The analytics store on ClickHouse (distributed mode). See the crate docs for why it is
/// idempotent by construction.
#[derive(Clone)]
pub struct ClickHouseStore {
    client: Client,
    database: String,
    caps: Capabilities,
    writer: Writer,
    max_ids_per_query: usize,
    outlet: Option<Arc<dyn Outlet>>,
    /// What the latest rounds wrote, per partition, for the look-ahead (see [`RecentWrites`]).
    recent_writes: Arc<std::sync::Mutex<HashMap<i32, RecentWrites>>>,
}

/// The notifications of one partition whose states the latest rounds wrote. A look-ahead for
/// round n+1 is taken while round n is applied (after round n-1 was), so it may miss exactly
/// what round n wrote, in any of its attempts; those notifications are looked up again when
/// round n+1 is applied. Kept per partition: a partition has one owner at a time, and its
/// rounds are applied in order, while members sharing this store apply theirs independently.
#[derive(Debug, Default)]
struct RecentWrites {
    /// Written by the attempts of the last round that was applied.
    last_round: HashSet<String>,
    /// Written by attempts since then (a round that failed, or the one being applied).
    since: HashSet<String>,
}

impl RecentWrites {
    fn contains(&self, id: &str) -> bool {
        self.last_round.contains(id) || self.since.contains(id)
    }
}

#[derive(Row, Deserialize)]
struct CountRow {
    dims: Vec<String>,
    n: u64,
}

#[derive(Row, Deserialize)]
struct ReporterCountRow {
    dims: Vec<String>,
    reporter: String,
    n: u64,
}

#[derive(Row, Deserialize)]
struct StateRow {
    notification_id: String,
    state: String,
}

#[derive(Row, Deserialize)]
struct ViewRow {
    notification_id: String,
    version: u32,
    status: String,
    reporter: String,
}

#[derive(Row, Deserialize)]
struct ActivityRow {
    period: String,
    reporter: String,
    service: String,
    notifications: u64,
    zero_reports: u64,
}

#[derive(Row, Deserialize)]
struct StatusTotalsRow {
    rejected: u64,
    withdrawn: u64,
    reporters: u64,
}

/// The rows one batch writes, in write order.
#[derive(Default)]
struct BatchRows {
    contributions: Vec<ContributionRow>,
    rejections: Vec<RejectionRow>,
    zero_reports: Vec<ZeroReportRow>,
    dead_letters: Vec<DeadLetterRow>,
    notifications: Vec<NotificationRow>,
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl ClickHouseStore {
    /// Connects (probing the server's capabilities); does not migrate.
    pub async fn connect(config: &ClickHouseConfig) -> Result<ClickHouseStore, ClickHouseError> {
        check_database_name(&config.database)?;
        let mut client = Client::default().with_url(&config.url);
        if let Some(user) = &config.user {
            client = client.with_user(user);
        }
        if let Some(password) = &config.password {
            client = client.with_password(password);
        }
        if config.group_by_spill_bytes > 0 {
            client = client.with_option(
                "max_bytes_before_external_group_by",
                config.group_by_spill_bytes.to_string(),
            );
        }
        let caps = Capabilities::probe(&client).await?;
        tracing::info!(url = %config.url, database = %config.database, version = ?caps.version, "connected to clickhouse");
        let writer = Writer::new(
            client.clone(),
            &config.database,
            config.retry.clone(),
            config.max_rows_per_insert,
        );
        Ok(ClickHouseStore {
            client,
            database: config.database.clone(),
            caps,
            writer,
            max_ids_per_query: config.max_ids_per_query.max(1),
            outlet: None,
            recent_writes: Arc::default(),
        })
    }

    /// Records inserts in these metrics.
    pub fn with_metrics(mut self, metrics: StoreMetrics) -> ClickHouseStore {
        self.writer = self.writer.with_metrics(metrics);
        self
    }

    /// Emits every batch's rejections and dead letters (and validated versions, when the outlet
    /// wants them) through `outlet` before writing the batch (see [`Outlet`]).
    pub fn with_outlet(mut self, outlet: Arc<dyn Outlet>) -> ClickHouseStore {
        self.outlet = Some(outlet);
        self
    }

    /// Applies the pending migrations (idempotent).
    pub async fn migrate(&self) -> Result<MigrationReport, ClickHouseError> {
        migrate(&self.client, &self.database, &self.caps).await
    }

    /// What the server supports.
    pub fn capabilities(&self) -> Capabilities {
        self.caps
    }

    /// The database.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The writer of this store (inserts with retries), for tools and benchmarks that write
    /// rows of their own.
    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// Up to `limit` rows of `T`'s table as stored (every version, unmerged, in no particular
    /// order), for tools and benchmarks that need real rows.
    pub async fn stored_rows<T>(&self, limit: usize) -> Result<Vec<T>, ClickHouseError>
    where
        T: TableRow + for<'b> Deserialize<'b>,
    {
        let columns: Vec<&str> = T::TYPES.iter().map(|(name, _)| *name).collect();
        self.client
            .query(&format!(
                "SELECT {} FROM {}.{} LIMIT {limit}",
                columns.join(", "),
                self.database,
                T::TABLE
            ))
            .fetch_all::<T>()
            .await
            .map_err(|e| ClickHouseError::request(format!("reading {}", T::TABLE), e))
    }

    /// Drops the database (tests).
    pub async fn drop_database(&self) -> Result<(), ClickHouseError> {
        self.client
            .query(&format!("DROP DATABASE IF EXISTS {}", self.database))
            .execute()
            .await
            .map_err(|e| ClickHouseError::request("DROP DATABASE", e))
    }

    async fn fetch_all<T>(&self, what: &str, q: sql::Sql) -> Result<Vec<T>, ClickHouseError>
    where
        T: Row + for<'b> Deserialize<'b>,
    {
        q.query(&self.client)
            .fetch_all::<T>()
            .await
            .map_err(|e| ClickHouseError::request(what, e))
    }

    async fn scalar(&self, what: &str, q: sql::Sql) -> Result<i64, ClickHouseError> {
        let rows: Vec<u64> = self.fetch_all(what, q).await?;
        Ok(rows.into_iter().next().map(to_i64).unwrap_or(0))
    }

    /// Which of these notifications have a stored state (reading only the id column: most
    /// records of a round are filings of new notifications); one query per
    /// `max_ids_per_query` ids, all at the same time.
    async fn known_notifications(&self, ids: &[String]) -> Result<Vec<String>, ClickHouseError> {
        Ok(
            futures_util::future::try_join_all(ids.chunks(self.max_ids_per_query).map(|chunk| {
                self.fetch_all::<String>(
                    "finding stored notifications",
                    sql::known_notifications(&self.database, chunk),
                )
            }))
            .await?
            .concat(),
        )
    }

    /// The stored states of these notifications, which the look-ahead or the lookup before it
    /// found to have one; one query per `max_ids_per_query` ids, all at the same time.
    async fn load_states(
        &self,
        known: &[String],
    ) -> Result<HashMap<String, NotificationState>, ClickHouseError> {
        let mut states = HashMap::with_capacity(known.len());
        let chunks =
            futures_util::future::try_join_all(known.chunks(self.max_ids_per_query).map(|chunk| {
                self.fetch_all::<StateRow>(
                    "loading notification states",
                    sql::load_states(&self.database, chunk),
                )
            }))
            .await?;
        for rows in chunks {
            for row in rows {
                let state =
                    serde_json::from_str(&row.state).map_err(|e| ClickHouseError::Unexpected {
                        what: format!("state of notification {}", row.notification_id),
                        reason: e.to_string(),
                    })?;
                states.insert(row.notification_id, state);
            }
        }
        Ok(states)
    }

    /// [`AnalyticsStore::apply_batch`], stopping at `crash` when given (fault injection).
    pub async fn apply_batch_until(
        &self,
        source: &str,
        partition: i32,
        processor: &Processor,
        records: &[LogRecord],
        crash: Option<CrashPoint>,
    ) -> Result<BatchStats, ClickHouseError> {
        let assessed = ods_store::assess(processor, source, partition, records, Utc::now());
        let mut stats = self
            .apply_partitions_until(
                source,
                processor,
                &[(partition, assessed)],
                &LookAhead::default(),
                crash,
            )
            .await?;
        Ok(stats.pop().map(|(_, s)| s).unwrap_or_default())
    }

    /// [`AnalyticsStore::apply_assessed`]: the records of several partitions decided together
    /// and written with one insert per table, positions last; stopping at `crash` when given.
    pub async fn apply_partitions_until(
        &self,
        source: &str,
        processor: &Processor,
        batches: &[(i32, Vec<Assessed>)],
        look_ahead: &LookAhead,
        crash: Option<CrashPoint>,
    ) -> Result<Vec<(i32, BatchStats)>, ClickHouseError> {
        let span = tracing::info_span!(
            "clickhouse_batch",
            source,
            partitions = batches.len(),
            records = batches.iter().map(|(_, r)| r.len()).sum::<usize>(),
        );
        self.apply_inner(source, processor, batches, look_ahead, crash)
            .instrument(span)
            .await
    }

    async fn apply_inner(
        &self,
        source: &str,
        processor: &Processor,
        batches: &[(i32, Vec<Assessed>)],
        look_ahead: &LookAhead,
        crash: Option<CrashPoint>,
    ) -> Result<Vec<(i32, BatchStats)>, ClickHouseError> {
        let now_ms = Utc::now().timestamp_millis();
        // per partition: its stats (from the stored position) and the records not yet applied
        let partitions: Vec<i32> = batches.iter().map(|(partition, _)| *partition).collect();
        // The positions, and the stored states of every notification of the round (records
        // before a position, whose states are loaded needlessly, are rare redeliveries); then
        // the batch's own newer states as it goes (a notification's records are all in one
        // partition, so partitions never share a state). Of the notifications the look-ahead
        // checked, those it found stored or that a round of their partition may have written
        // since it looked need their states; the others have none.
        let mut known: Vec<String> = Vec::new();
        let mut unchecked: Vec<String> = Vec::new();
        {
            let recent = self
                .recent_writes
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for (partition, records) in batches {
                let written = recent.get(partition);
                let mut ids: Vec<String> =
                    records.iter().filter_map(|r| r.notification_id()).collect();
                ids.sort();
                ids.dedup();
                for id in ids {
                    if !look_ahead.checked.contains(&id) {
                        unchecked.push(id);
                    } else if look_ahead.stored.contains(&id)
                        || written.is_some_and(|w| w.contains(&id))
                    {
                        known.push(id);
                    }
                }
            }
        }
        let (starts, found) = tokio::try_join!(
            self.positions_of(source, &partitions),
            self.known_notifications(&unchecked)
        )?;
        known.extend(found);
        let mut states = self.load_states(&known).await?;
        let mut parts: Vec<(i32, BatchStats, Vec<&Assessed>)> = Vec::with_capacity(batches.len());
        for (partition, records) in batches {
            let partition = *partition;
            let start = starts.get(&partition).copied().unwrap_or(0);
            let todo: Vec<&Assessed> = records.iter().filter(|r| r.offset() >= start).collect();
            let stats = BatchStats {
                next_offset: start,
                ..BatchStats::default()
            };
            parts.push((partition, stats, todo));
        }
        if parts.iter().all(|(_, _, todo)| todo.is_empty()) {
            return Ok(parts.into_iter().map(|(p, s, _)| (p, s)).collect());
        }
        let mut rows = BatchRows::default();
        let mut outputs = BatchOutputs::default();
        let wants_validated = self.outlet.as_ref().is_some_and(|o| o.wants_validated());
        let mut positions: Vec<PositionRow> = Vec::with_capacity(parts.len());
        let mut applied: Vec<(i32, BatchStats)> = Vec::with_capacity(parts.len());
        for (partition, mut stats, todo) in parts {
            let has_records = !todo.is_empty();
            for record in todo {
                stats.records += 1;
                let offset = record.offset();
                let subject = record.subject();
                let previous = subject.as_ref().and_then(|(id, _)| states.get(id));
                let decision = processor.decide_assessed(previous, record);
                let new_state = rows.add(
                    source,
                    partition,
                    offset,
                    now_ms,
                    subject.as_ref(),
                    &decision,
                    &mut stats,
                )?;
                if let Some((id, state)) = new_state {
                    states.insert(id, state);
                }
                if self.outlet.is_some() {
                    match decision {
                        Decision::Count { validated, .. } if wants_validated => {
                            outputs.validated.push(Arc::unwrap_or_clone(validated))
                        }
                        Decision::Reject { rejection, .. } => {
                            outputs.rejections.push(Arc::unwrap_or_clone(rejection))
                        }
                        Decision::DeadLetter(dead) => outputs.dead_letters.push(*dead),
                        _ => {}
                    }
                }
                stats.next_offset = offset + 1;
            }
            if has_records {
                positions.push(PositionRow {
                    source: source.to_string(),
                    source_partition: partition,
                    next_offset: stats.next_offset,
                    updated_at_ms: now_ms,
                });
            }
            applied.push((partition, stats));
        }
        // the outlet first: a stored decision has always been emitted (see `Outlet`)
        if let Some(outlet) = &self.outlet {
            if !outputs.is_empty() {
                outlet
                    .emit(outputs)
                    .await
                    .map_err(ClickHouseError::Outlet)?;
            }
        }
        {
            let mut recent = self
                .recent_writes
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for row in &rows.notifications {
                recent
                    .entry(row.source_partition)
                    .or_default()
                    .since
                    .insert(row.notification_id.clone());
            }
        }
        // derived rows first (independent of each other, so sent together), states last,
        // positions after all data (see the crate docs)
        tokio::try_join!(
            self.writer.insert(&rows.contributions),
            self.writer.insert(&rows.rejections),
            self.writer.insert(&rows.zero_reports),
            self.writer.insert(&rows.dead_letters),
        )?;
        if crash != Some(CrashPoint::BeforeStates) {
            self.writer.insert(&rows.notifications).await?;
            if crash != Some(CrashPoint::BeforePosition) {
                self.writer.insert(&positions).await?;
            }
        }
        {
            let mut recent = self
                .recent_writes
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for (partition, _) in batches {
                let written = recent.entry(*partition).or_default();
                written.last_round = std::mem::take(&mut written.since);
            }
        }
        tracing::debug!(
            records = applied.iter().map(|(_, s)| s.records).sum::<usize>(),
            "clickhouse batch written"
        );
        Ok(applied)
    }

    /// The next offsets of `partitions` of `source` (absent: never processed), in one query.
    async fn positions_of(
        &self,
        source: &str,
        partitions: &[i32],
    ) -> Result<HashMap<i32, i64>, ClickHouseError> {
        let rows: Vec<(i32, i64)> = self
            .fetch_all(
                "reading the positions",
                sql::positions(&self.database, source, partitions),
            )
            .await?;
        Ok(rows.into_iter().collect())
    }

    async fn position_of(&self, source: &str, partition: i32) -> Result<i64, ClickHouseError> {
        let rows: Vec<i64> = self
            .fetch_all(
                "reading the position",
                sql::position(&self.database, source, partition),
            )
            .await?;
        Ok(rows.into_iter().next().unwrap_or(0))
    }
}

/// Lower-case hex of `bytes`, as `hex::encode` gives it, without its per-character iterator
/// (which cost the applier about 1% of the processor's CPU at 10,000 records a round).
fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

fn signal_row(s: &SignalRecord) -> SignalRevisionRow {
    SignalRevisionRow {
        signal_id: s.id.clone(),
        revision: s.revision,
        kind: s.kind.clone(),
        subject: serde_json::to_string(&s.subject).unwrap_or_default(),
        period: s.period.clone(),
        numbers: serde_json::to_string(&s.numbers).unwrap_or_default(),
        method: s.method.clone(),
        explanation: s.explanation.clone(),
        status: s.status.as_str().to_string(),
        note: s.note.clone().unwrap_or_default(),
        detected_at_ms: s.detected_at_ms,
        updated_at_ms: s.updated_at_ms,
    }
}

fn status_of(text: &str, what: &str) -> Result<SignalStatus, ClickHouseError> {
    SignalStatus::parse(text).ok_or_else(|| ClickHouseError::Unexpected {
        what: what.to_string(),
        reason: format!("unknown signal status {text:?}"),
    })
}

fn signal_record(row: SignalRevisionRow) -> Result<SignalRecord, ClickHouseError> {
    let what = format!("signal {}", row.signal_id);
    fn json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, ClickHouseError> {
        serde_json::from_str(text).map_err(|e| ClickHouseError::Unexpected {
            what: what.to_string(),
            reason: e.to_string(),
        })
    }
    Ok(SignalRecord {
        subject: json(&row.subject, &what)?,
        numbers: json(&row.numbers, &what)?,
        status: status_of(&row.status, &what)?,
        id: row.signal_id,
        kind: row.kind,
        period: row.period,
        method: row.method,
        explanation: row.explanation,
        note: (!row.note.is_empty()).then_some(row.note),
        detected_at_ms: row.detected_at_ms,
        updated_at_ms: row.updated_at_ms,
        revision: row.revision,
    })
}

fn audit_entry(row: SignalReviewRow) -> Result<AuditEntry, ClickHouseError> {
    let what = format!("review of signal {}", row.signal_id);
    Ok(AuditEntry {
        from_status: status_of(&row.from_status, &what)?,
        to_status: status_of(&row.to_status, &what)?,
        signal_id: row.signal_id,
        at_ms: row.at_ms,
        actor: row.actor,
        note: row.note,
        revision: row.revision,
    })
}

fn contribution_row(
    id: &str,
    c: Option<&Contribution>,
    partition: i32,
    offset: i64,
) -> ContributionRow {
    let (key, exposures) = match c {
        Some(c) => (Some(&c.key), c.exposures.as_slice()),
        None => (None, &[][..]),
    };
    let text = |f: fn(&ods_processor::CountKey) -> &String| key.map(f).cloned().unwrap_or_default();
    ContributionRow {
        notification_id: id.to_string(),
        counted: u8::from(c.is_some()),
        period: text(|k| &k.period),
        year: key.map(|k| k.year).unwrap_or(0),
        quarter: key.map(|k| k.quarter).unwrap_or(0),
        sector_code: text(|k| &k.sector_code),
        sbi_section: text(|k| &k.sbi_section),
        diagnosis_code: text(|k| &k.diagnosis_code),
        diagnosis_group: text(|k| &k.diagnosis_group),
        primary_exposure: text(|k| &k.primary_exposure),
        primary_exposure_group: text(|k| &k.primary_exposure_group),
        sex: text(|k| &k.sex),
        age_band: text(|k| &k.age_band),
        detection_route: text(|k| &k.detection_route),
        consequence: text(|k| &k.consequence),
        exposure_codes: exposures.iter().map(|(code, _)| code.clone()).collect(),
        exposure_groups: exposures.iter().map(|(_, group)| group.clone()).collect(),
        source_partition: partition,
        source_offset: offset,
    }
}

impl BatchRows {
    /// Turns a decision into rows; returns the notification's new state, if any.
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        source: &str,
        partition: i32,
        offset: i64,
        now_ms: i64,
        subject: Option<&(String, String)>,
        decision: &Decision,
        stats: &mut BatchStats,
    ) -> Result<Option<(String, NotificationState)>, ClickHouseError> {
        let state_row = |id: &str,
                         reporter: &str,
                         state: &NotificationState,
                         stored: &StoredForms,
                         validated: String|
         -> Result<NotificationRow, ClickHouseError> {
            Ok(NotificationRow {
                notification_id: id.to_string(),
                version: state.version,
                status: state.status.as_str().to_string(),
                reporter: reporter.to_string(),
                state: stored.state_json.clone(),
                validated_avro_hex: validated,
                source_partition: partition,
                source_offset: offset,
                updated_at_ms: now_ms,
            })
        };
        match decision {
            Decision::Count {
                state,
                add,
                validated,
                stored,
                ..
            } => {
                let id = &validated.notification_id;
                let bytes =
                    stored
                        .validated_avro
                        .as_deref()
                        .map_err(|e| ClickHouseError::Unexpected {
                            what: format!("validated record of {id}"),
                            reason: e.clone(),
                        })?;
                self.contributions
                    .push(contribution_row(id, Some(add), partition, offset));
                self.notifications.push(state_row(
                    id,
                    &validated.reporter_pseudonym,
                    state,
                    stored,
                    to_hex(bytes),
                )?);
                stats.validated += 1;
                Ok(Some((id.clone(), state.clone())))
            }
            Decision::Reject {
                state,
                rejection,
                stored,
                ..
            } => {
                let id = rejection.notification_id.clone().unwrap_or_default();
                self.contributions
                    .push(contribution_row(&id, None, partition, offset));
                self.notifications.push(state_row(
                    &id,
                    &rejection.reporter_pseudonym,
                    state,
                    stored,
                    String::new(),
                )?);
                self.rejections.push(RejectionRow {
                    notification_id: id.clone(),
                    version: u32::try_from(rejection.version).unwrap_or(0),
                    reporter: rejection.reporter_pseudonym.clone(),
                    reasons: ods_store::rejection_reasons_json(&rejection.reasons),
                    source_partition: partition,
                    source_offset: offset,
                    rejected_at_ms: rejection.rejected_at,
                });
                stats.count_rejection(rejection);
                Ok(Some((id, state.clone())))
            }
            Decision::Withdraw { state, stored, .. } => {
                stats.withdrawn += 1;
                match subject {
                    Some((id, reporter)) => {
                        self.contributions
                            .push(contribution_row(id, None, partition, offset));
                        self.notifications.push(state_row(
                            id,
                            reporter,
                            state,
                            stored,
                            String::new(),
                        )?);
                        Ok(Some((id.clone(), state.clone())))
                    }
                    None => Ok(None),
                }
            }
            Decision::ZeroReport {
                reporter,
                service,
                period,
            } => {
                self.zero_reports.push(ZeroReportRow {
                    reporter: reporter.clone(),
                    period: period.to_string(),
                    service: service.clone(),
                    source_partition: partition,
                    source_offset: offset,
                });
                stats.zero_reports += 1;
                Ok(None)
            }
            Decision::Skip { .. } => {
                stats.skipped += 1;
                Ok(None)
            }
            Decision::DeadLetter(dead) => {
                tracing::warn!(source, partition, offset, error = %dead.error, "undecodable record sent to dead letters");
                self.dead_letters.push(DeadLetterRow {
                    source: source.to_string(),
                    source_partition: partition,
                    source_offset: offset,
                    error: dead.error.clone(),
                    payload_hex: to_hex(&dead.payload),
                    failed_at_ms: dead.failed_at,
                });
                stats.dead_letters += 1;
                Ok(None)
            }
        }
    }
}

#[async_trait]
impl AnalyticsStore for ClickHouseStore {
    fn backend(&self) -> &'static str {
        "clickhouse"
    }

    async fn apply_assessed(
        &self,
        source: &str,
        processor: &Processor,
        batches: ods_store::AssessedBatches,
        look_ahead: &LookAhead,
    ) -> Result<Vec<(i32, BatchStats)>, StoreError> {
        Ok(self
            .apply_partitions_until(source, processor, &batches, look_ahead, None)
            .await?)
    }

    async fn look_ahead(
        &self,
        _source: &str,
        batches: &ods_store::AssessedBatches,
    ) -> Result<LookAhead, StoreError> {
        let mut ids: Vec<String> = batches
            .iter()
            .flat_map(|(_, records)| records.iter().filter_map(|r| r.notification_id()))
            .collect();
        ids.sort();
        ids.dedup();
        let stored = self.known_notifications(&ids).await?;
        Ok(LookAhead {
            checked: ids.into_iter().collect(),
            stored: stored.into_iter().collect(),
        })
    }

    async fn position(&self, source: &str, partition: i32) -> Result<i64, StoreError> {
        Ok(self.position_of(source, partition).await?)
    }

    async fn exact_counts(&self, query: &CountQuery) -> Result<Vec<(CellKey, i64)>, StoreError> {
        let rows: Vec<CountRow> = self
            .fetch_all("count query", sql::counts(&self.database, query))
            .await?;
        let mut cells = Vec::with_capacity(rows.len());
        for row in rows {
            if row.dims.len() != query.group_by.len() {
                return Err(ClickHouseError::Unexpected {
                    what: "count query".into(),
                    reason: format!(
                        "{} dimension values for {} dimensions",
                        row.dims.len(),
                        query.group_by.len()
                    ),
                }
                .into());
            }
            let key: BTreeMap<&'static str, String> = query
                .group_by
                .iter()
                .map(|d| d.name())
                .zip(row.dims)
                .collect();
            cells.push((key, to_i64(row.n)));
        }
        Ok(cells)
    }

    async fn exact_counts_by_reporter(
        &self,
        query: &CountQuery,
    ) -> Result<Vec<(CellKey, String, i64)>, StoreError> {
        let rows: Vec<ReporterCountRow> = self
            .fetch_all(
                "count query by reporter",
                sql::counts_by_reporter(&self.database, query),
            )
            .await?;
        let mut cells = Vec::with_capacity(rows.len());
        for row in rows {
            if row.dims.len() != query.group_by.len() {
                return Err(ClickHouseError::Unexpected {
                    what: "count query by reporter".into(),
                    reason: format!(
                        "{} dimension values for {} dimensions",
                        row.dims.len(),
                        query.group_by.len()
                    ),
                }
                .into());
            }
            let key: CellKey = query
                .group_by
                .iter()
                .map(|d| d.name())
                .zip(row.dims)
                .collect();
            cells.push((key, row.reporter, to_i64(row.n)));
        }
        Ok(cells)
    }

    async fn reporter_activity(&self) -> Result<Vec<ReporterActivity>, StoreError> {
        let rows: Vec<ActivityRow> = self
            .fetch_all("reporter activity", sql::reporter_activity(&self.database))
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| ReporterActivity {
                period: r.period,
                reporter: r.reporter,
                service: r.service,
                notifications: to_i64(r.notifications),
                zero_reports: to_i64(r.zero_reports),
            })
            .collect())
    }

    async fn totals(&self) -> Result<Totals, StoreError> {
        let db = &self.database;
        let counted = self.scalar("counted total", sql::counted_total(db)).await?;
        let status: Vec<StatusTotalsRow> = self
            .fetch_all("status totals", sql::status_totals(db))
            .await?;
        let status = status.into_iter().next();
        Ok(Totals {
            notifications_counted: counted,
            notifications_rejected: status.as_ref().map(|s| to_i64(s.rejected)).unwrap_or(0),
            notifications_withdrawn: status.as_ref().map(|s| to_i64(s.withdrawn)).unwrap_or(0),
            zero_reports: self
                .scalar("zero report total", sql::zero_report_total(db))
                .await?,
            reporters: status.as_ref().map(|s| to_i64(s.reporters)).unwrap_or(0),
            dead_letters: self
                .scalar("dead letter total", sql::dead_letter_total(db))
                .await?,
        })
    }

    async fn notification(&self, id: &str) -> Result<Option<NotificationView>, StoreError> {
        let rows: Vec<ViewRow> = self
            .fetch_all("notification view", sql::notification(&self.database, id))
            .await?;
        let Some(row) = rows.into_iter().next() else {
            return Ok(None);
        };
        let reasons: Vec<String> = self
            .fetch_all(
                "rejection reasons",
                sql::rejection_reasons(&self.database, id, row.version),
            )
            .await?;
        Ok(Some(NotificationView {
            notification_id: row.notification_id,
            version: i64::from(row.version),
            status: row.status,
            reporter: row.reporter,
            reasons: reasons
                .into_iter()
                .next()
                .and_then(|t| serde_json::from_str(&t).ok()),
        }))
    }

    async fn record_signals(&self, signals: &[SignalRecord]) -> Result<usize, StoreError> {
        let mut known = std::collections::HashSet::new();
        for chunk in signals.chunks(self.max_ids_per_query) {
            let ids: Vec<String> = chunk.iter().map(|s| s.id.clone()).collect();
            let rows: Vec<SignalRevisionRow> = self
                .fetch_all("known signals", sql::signals(&self.database, Some(&ids)))
                .await?;
            known.extend(rows.into_iter().map(|r| r.signal_id));
        }
        let new: Vec<SignalRevisionRow> = signals
            .iter()
            .filter(|s| !known.contains(&s.id))
            .map(signal_row)
            .collect();
        self.writer.insert(&new).await?;
        Ok(new.len())
    }

    async fn signals(&self) -> Result<Vec<SignalRecord>, StoreError> {
        let rows: Vec<SignalRevisionRow> = self
            .fetch_all("signals", sql::signals(&self.database, None))
            .await?;
        Ok(rows
            .into_iter()
            .map(signal_record)
            .collect::<Result<_, _>>()?)
    }

    async fn signal(
        &self,
        id: &str,
    ) -> Result<Option<(SignalRecord, Vec<AuditEntry>)>, StoreError> {
        let rows: Vec<SignalRevisionRow> = self
            .fetch_all(
                "signal",
                sql::signals(&self.database, Some(&[id.to_string()])),
            )
            .await?;
        let Some(row) = rows.into_iter().next() else {
            return Ok(None);
        };
        let reviews: Vec<SignalReviewRow> = self
            .fetch_all("signal reviews", sql::signal_reviews(&self.database, id))
            .await?;
        let audit = reviews
            .into_iter()
            .map(audit_entry)
            .collect::<Result<_, _>>()?;
        Ok(Some((signal_record(row)?, audit)))
    }

    async fn save_review(
        &self,
        record: &SignalRecord,
        entry: &AuditEntry,
    ) -> Result<bool, StoreError> {
        // no transactions: check the revision just before writing; two reviewers racing on one
        // signal within that moment both get their audit entry (rows differ by actor and time),
        // and the state is the later of the two (by revision, then time). The audit entry is
        // written first: a change is never in effect without its entry.
        let current = self
            .fetch_all::<SignalRevisionRow>(
                "signal",
                sql::signals(&self.database, Some(std::slice::from_ref(&record.id))),
            )
            .await?;
        if current.first().map(|r| r.revision) != Some(record.revision.saturating_sub(1)) {
            return Ok(false);
        }
        self.writer
            .insert(&[SignalReviewRow {
                signal_id: entry.signal_id.clone(),
                revision: entry.revision,
                at_ms: entry.at_ms,
                actor: entry.actor.clone(),
                from_status: entry.from_status.as_str().to_string(),
                to_status: entry.to_status.as_str().to_string(),
                note: entry.note.clone(),
            }])
            .await?;
        self.writer.insert(&[signal_row(record)]).await?;
        Ok(true)
    }

    async fn reset(&self) -> Result<(), StoreError> {
        for statement in sql::reset(&self.database) {
            statement
                .query(&self.client)
                .execute()
                .await
                .map_err(|e| ClickHouseError::request("reset", e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::to_hex;

    #[test]
    fn hex_is_what_the_hex_crate_gives() {
        let every_byte: Vec<u8> = (0..=255).collect();
        assert_eq!(to_hex(&every_byte), hex::encode(&every_byte));
        assert_eq!(to_hex(&[]), "");
        assert_eq!(to_hex(&[0x0f, 0xa0]), "0fa0");
    }
}
