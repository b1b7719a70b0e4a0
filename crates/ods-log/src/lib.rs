//! The embedded durable log.
//!
//! It plays Kafka's part in `ods run`: topics of records with dense offsets (0, 1, 2, ...),
//! appended by intake and read in order by the processor. Durability is SQLite's: WAL journal
//! with `synchronous=FULL`, so a transaction is on disk (fsync) when `COMMIT` returns, and
//! [`EmbeddedLog::append`] resolves only after that. A 202 sent after `append` returned can not be
//! lost by a crash of the process or the machine.
//!
//! Appends go through one writer thread that commits whatever is queued in one transaction
//! (group commit), so many concurrent requests share one fsync. The queue is bounded: when it is
//! full, [`EmbeddedLog::append`] fails at once with [`LogError::Backpressure`] and intake answers
//! 503 with `Retry-After`, keeping nothing half-accepted. [`EmbeddedLog::append_then`] also runs
//! work of the caller in the append's transaction (intake keeps its registry there), so state
//! derived from the records commits with them.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{params, Connection};
use tokio::sync::{mpsc, oneshot, watch};

/// One record of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Topic name.
    pub topic: String,
    /// Offset within the topic, dense from 0.
    pub offset: i64,
    /// Partitioning key.
    pub key: String,
    /// Framed Avro payload.
    pub payload: Vec<u8>,
    /// Append time, epoch milliseconds.
    pub appended_at_ms: i64,
}

/// Failures of the log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// SQLite failed.
    #[error("embedded log {path}: {source}")]
    Database {
        /// Database file.
        path: String,
        /// The error.
        source: rusqlite::Error,
    },
    /// The append queue is full: retry later.
    #[error("the log's append queue is full ({0} pending); retry shortly")]
    Backpressure(usize),
    /// The writer thread has stopped (shutdown or a fatal error).
    #[error("the log writer has stopped")]
    Closed,
}

/// A record to append.
#[derive(Debug, Clone)]
pub struct Append {
    /// Topic.
    pub topic: String,
    /// Key.
    pub key: String,
    /// Payload.
    pub payload: Vec<u8>,
    /// Append time to record, epoch milliseconds.
    pub appended_at_ms: i64,
}

/// Work done in the transaction of an append, right after its records, given their offsets
/// (see [`EmbeddedLog::append_then`]).
type InTransaction = Box<
    dyn FnOnce(&rusqlite::Transaction<'_>, &[i64]) -> rusqlite::Result<Box<dyn Any + Send>> + Send,
>;

/// What the writer answers for one request: the offsets, and the result of its work in the
/// transaction, if it had any.
type Reply = Result<(Vec<i64>, Option<Result<Box<dyn Any + Send>, String>>), String>;

struct Request {
    records: Vec<Append>,
    then: Option<InTransaction>,
    reply: oneshot::Sender<Reply>,
}

/// The embedded log: a writer thread for appends, a read connection for consumers.
pub struct EmbeddedLog {
    path: PathBuf,
    queue: mpsc::Sender<Request>,
    capacity: usize,
    reader: Mutex<Connection>,
    appended: watch::Receiver<i64>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS records (
    topic TEXT NOT NULL,
    offset INTEGER NOT NULL,
    key TEXT NOT NULL,
    payload BLOB NOT NULL,
    appended_at INTEGER NOT NULL,
    PRIMARY KEY (topic, offset)
) WITHOUT ROWID;";

fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

impl EmbeddedLog {
    /// Opens (creating if needed) the log at `path` with an append queue of `capacity` requests.
    /// Must be called inside a tokio runtime (the writer reports completions through it).
    pub fn open(path: &Path, capacity: usize) -> Result<Arc<Self>, LogError> {
        let db = |source| LogError::Database {
            path: path.display().to_string(),
            source,
        };
        let writer = open_connection(path).map_err(db)?;
        let reader = open_connection(path).map_err(db)?;
        let total: i64 = writer
            .query_row("SELECT COUNT(*) FROM records", [], |r| r.get(0))
            .map_err(db)?;
        let (queue, receiver) = mpsc::channel(capacity.max(1));
        let (appended_tx, appended) = watch::channel(total);
        let name = path.display().to_string();
        std::thread::Builder::new()
            .name("ods-log-writer".into())
            .spawn(move || writer_loop(writer, receiver, appended_tx, name))
            .map_err(|e| LogError::Database {
                path: path.display().to_string(),
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            })?;
        Ok(Arc::new(EmbeddedLog {
            path: path.to_path_buf(),
            queue,
            capacity: capacity.max(1),
            reader: Mutex::new(reader),
            appended,
        }))
    }

    /// Appends records durably (all or none, in order) and returns their offsets.
    pub async fn append(&self, records: Vec<Append>) -> Result<Vec<i64>, LogError> {
        self.send(records, None).await.map(|(offsets, _)| offsets)
    }

    /// Appends records durably like [`EmbeddedLog::append`], and runs `then` in the same
    /// transaction right after them, with their offsets: state kept in the log's own database
    /// (the intake registry) commits with the records, in the same fsync. `then` runs inside a
    /// savepoint: when it fails, its own writes are rolled back and the records still commit
    /// (they are the record; the caller repairs what `then` derives from them), and its error
    /// comes back as the inner `Err`.
    pub async fn append_then<T: Send + 'static>(
        &self,
        records: Vec<Append>,
        then: impl FnOnce(&rusqlite::Transaction<'_>, &[i64]) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<(Vec<i64>, Result<T, String>), LogError> {
        let then: InTransaction = Box::new(move |tx, offsets| {
            then(tx, offsets).map(|value| Box::new(value) as Box<dyn Any + Send>)
        });
        let (offsets, outcome) = self.send(records, Some(then)).await?;
        let outcome = match outcome {
            Some(Ok(value)) => value
                .downcast::<T>()
                .map(|value| *value)
                .map_err(|_| "the work in the append's transaction answered another type".into()),
            Some(Err(message)) => Err(message),
            None => Err("the work in the append's transaction did not run".into()),
        };
        Ok((offsets, outcome))
    }

    async fn send(
        &self,
        records: Vec<Append>,
        then: Option<InTransaction>,
    ) -> Result<(Vec<i64>, Option<Result<Box<dyn Any + Send>, String>>), LogError> {
        let (reply, done) = oneshot::channel();
        self.queue
            .try_send(Request {
                records,
                then,
                reply,
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => LogError::Backpressure(self.capacity),
                mpsc::error::TrySendError::Closed(_) => LogError::Closed,
            })?;
        match done.await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(message)) => Err(LogError::Database {
                path: self.path.display().to_string(),
                source: rusqlite::Error::InvalidParameterName(message),
            }),
            Err(_) => Err(LogError::Closed),
        }
    }

    /// The database file of the log.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Requests waiting for the writer now (for the in-flight gauge and `/readyz`).
    pub fn pending(&self) -> usize {
        self.capacity - self.queue.capacity()
    }

    /// Whether the writer accepts appends.
    pub fn is_open(&self) -> bool {
        !self.queue.is_closed()
    }

    /// A receiver that changes whenever records were appended (value: total records).
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.appended.clone()
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, LogError> {
        let conn = match self.reader.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&conn).map_err(|source| LogError::Database {
            path: self.path.display().to_string(),
            source,
        })
    }

    /// Up to `limit` records of `topic` with offset >= `from`, in offset order. Blocking: call from
    /// a blocking context.
    pub fn read_from(
        &self,
        topic: &str,
        from: i64,
        limit: usize,
    ) -> Result<Vec<LogRecord>, LogError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT offset, key, payload, appended_at FROM records
                 WHERE topic = ?1 AND offset >= ?2 ORDER BY offset LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![topic, from, limit as i64], |r| {
                Ok(LogRecord {
                    topic: topic.to_string(),
                    offset: r.get(0)?,
                    key: r.get(1)?,
                    payload: r.get(2)?,
                    appended_at_ms: r.get(3)?,
                })
            })?;
            rows.collect()
        })
    }

    /// The keys of up to `limit` records of `topic` with `from <= offset < until`, in offset
    /// order, without their payloads. Blocking: call from a blocking context.
    pub fn read_keys(
        &self,
        topic: &str,
        from: i64,
        until: i64,
        limit: usize,
    ) -> Result<Vec<(i64, String)>, LogError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT offset, key FROM records
                 WHERE topic = ?1 AND offset >= ?2 AND offset < ?3 ORDER BY offset LIMIT ?4",
            )?;
            let rows = stmt.query_map(params![topic, from, until, limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            rows.collect()
        })
    }

    /// Scans up to `limit` records of `topic` with `from <= offset < until`, in offset order, and
    /// returns those whose key `keep` accepts (payloads are copied only for them) with the
    /// offset the scan stopped at (`until` when it reached the end of the range). Blocking.
    pub fn read_matching(
        &self,
        topic: &str,
        from: i64,
        until: i64,
        limit: usize,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<(Vec<LogRecord>, i64), LogError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT offset, key, payload, appended_at FROM records
                 WHERE topic = ?1 AND offset >= ?2 AND offset < ?3 ORDER BY offset LIMIT ?4",
            )?;
            let mut rows = stmt.query(params![topic, from, until, limit as i64])?;
            let (mut kept, mut scanned, mut last) = (Vec::new(), 0usize, None);
            while let Some(row) = rows.next()? {
                scanned += 1;
                let offset: i64 = row.get(0)?;
                last = Some(offset);
                let key = row.get_ref(1)?.as_str()?;
                if keep(key) {
                    kept.push(LogRecord {
                        topic: topic.to_string(),
                        offset,
                        key: key.to_string(),
                        payload: row.get(2)?,
                        appended_at_ms: row.get(3)?,
                    });
                }
            }
            let next = match last {
                Some(offset) if scanned == limit => offset + 1,
                _ => until,
            };
            Ok((kept, next))
        })
    }

    /// The offset of the first record of `topic` appended at or after `at_ms` (epoch
    /// milliseconds); the end offset when there is none. Blocking (scans the topic).
    pub fn offset_at(&self, topic: &str, at_ms: i64) -> Result<i64, LogError> {
        let first: Option<i64> = self.read(|c| {
            c.query_row(
                "SELECT MIN(offset) FROM records WHERE topic = ?1 AND appended_at >= ?2",
                params![topic, at_ms],
                |r| r.get(0),
            )
        })?;
        match first {
            Some(offset) => Ok(offset),
            None => self.end_offset(topic),
        }
    }

    /// The offset the next record of `topic` will get (= number of records).
    pub fn end_offset(&self, topic: &str) -> Result<i64, LogError> {
        self.read(|c| {
            c.query_row(
                "SELECT COALESCE(MAX(offset) + 1, 0) FROM records WHERE topic = ?1",
                params![topic],
                |r| r.get(0),
            )
        })
    }

    /// Every topic with its record count.
    pub fn topics(&self) -> Result<Vec<(String, i64)>, LogError> {
        self.read(|c| {
            let mut stmt =
                c.prepare("SELECT topic, COUNT(*) FROM records GROUP BY topic ORDER BY topic")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
    }
}

/// Largest number of queued requests committed in one transaction.
const MAX_GROUP: usize = 512;

fn writer_loop(
    mut conn: Connection,
    mut receiver: mpsc::Receiver<Request>,
    appended: watch::Sender<i64>,
    name: String,
) {
    while let Some(first) = receiver.blocking_recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match receiver.try_recv() {
                Ok(request) => group.push(request),
                Err(_) => break,
            }
        }
        match commit_group(&mut conn, &mut group) {
            Ok(answers) => {
                let count: usize = answers.iter().map(|(offsets, _)| offsets.len()).sum();
                for (request, answer) in group.into_iter().zip(answers) {
                    let _ = request.reply.send(Ok(answer));
                }
                appended.send_modify(|total| *total += count as i64);
            }
            Err(e) => {
                tracing::error!(log = %name, error = %e, "embedded log commit failed; the appends were not accepted");
                for request in group {
                    let _ = request.reply.send(Err(e.to_string()));
                }
            }
        }
    }
}

/// The offsets of one request, and the result of its work in the transaction.
type Answer = (Vec<i64>, Option<Result<Box<dyn Any + Send>, String>>);

fn commit_group(conn: &mut Connection, group: &mut [Request]) -> rusqlite::Result<Vec<Answer>> {
    let tx = conn.transaction()?;
    let mut all = Vec::with_capacity(group.len());
    {
        let mut next =
            tx.prepare_cached("SELECT COALESCE(MAX(offset) + 1, 0) FROM records WHERE topic = ?1")?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO records (topic, offset, key, payload, appended_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut ends: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
        for request in group.iter_mut() {
            let mut offsets = Vec::with_capacity(request.records.len());
            for record in &request.records {
                let offset = match ends.get(&record.topic) {
                    Some(o) => *o,
                    None => next.query_row(params![record.topic], |r| r.get(0))?,
                };
                insert.execute(params![
                    record.topic,
                    offset,
                    record.key,
                    record.payload,
                    record.appended_at_ms
                ])?;
                ends.insert(record.topic.clone(), offset + 1);
                offsets.push(offset);
            }
            let outcome = match request.then.take() {
                None => None,
                Some(then) => {
                    // prepared once per connection: `execute_batch` would parse them per append
                    tx.prepare_cached("SAVEPOINT append_then")?.execute([])?;
                    let outcome = then(&tx, &offsets);
                    if outcome.is_err() {
                        tx.prepare_cached("ROLLBACK TO append_then")?.execute([])?;
                    }
                    tx.prepare_cached("RELEASE append_then")?.execute([])?;
                    Some(outcome.map_err(|e| e.to_string()))
                }
            };
            all.push((offsets, outcome));
        }
    }
    tx.commit()?;
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(topic: &str, key: &str) -> Append {
        Append {
            topic: topic.into(),
            key: key.into(),
            payload: key.as_bytes().to_vec(),
            appended_at_ms: 1,
        }
    }

    /// Work in the append's transaction sees the offsets and commits with the records; work
    /// that fails is rolled back alone, and neither the records nor other appends of the same
    /// group suffer.
    #[tokio::test(flavor = "multi_thread")]
    async fn work_in_the_append_transaction_commits_with_the_records_or_alone_rolls_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sqlite");
        let log = EmbeddedLog::open(&path, 64).unwrap();
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE derived (offset INTEGER)")
            .unwrap();
        let mut appends = Vec::new();
        for i in 0..20 {
            let log = log.clone();
            appends.push(tokio::spawn(async move {
                log.append_then(vec![rec("t", "k"), rec("t", "k")], move |tx, offsets| {
                    for offset in offsets {
                        tx.execute("INSERT INTO derived (offset) VALUES (?1)", [offset])?;
                    }
                    if i % 5 == 0 {
                        // written, then failed: rolled back
                        return Err(rusqlite::Error::InvalidQuery);
                    }
                    Ok(offsets.len())
                })
                .await
                .unwrap()
            }));
        }
        let mut kept = Vec::new();
        for append in appends {
            let (offsets, outcome) = append.await.unwrap();
            assert_eq!(offsets.len(), 2);
            match outcome {
                Ok(n) => {
                    assert_eq!(n, 2);
                    kept.extend(offsets);
                }
                Err(message) => assert!(message.contains("Query"), "{message}"),
            }
        }
        assert_eq!(
            log.read_from("t", 0, 100).unwrap().len(),
            40,
            "every record committed"
        );
        let mut derived: Vec<i64> = Connection::open(&path)
            .unwrap()
            .prepare("SELECT offset FROM derived ORDER BY offset")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        kept.sort();
        derived.sort();
        assert_eq!(derived.len(), 32, "the four failed appends' work is gone");
        assert_eq!(derived, kept);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn offsets_are_dense_per_topic_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sqlite");
        {
            let log = EmbeddedLog::open(&path, 16).unwrap();
            let a = log
                .append(vec![rec("a", "1"), rec("a", "2")])
                .await
                .unwrap();
            let b = log.append(vec![rec("b", "x")]).await.unwrap();
            assert_eq!((a, b), (vec![0, 1], vec![0]));
            let mut handles = Vec::new();
            for i in 0..50 {
                let log = log.clone();
                handles.push(tokio::spawn(async move {
                    loop {
                        match log.append(vec![rec("a", &i.to_string())]).await {
                            Err(LogError::Backpressure(_)) => tokio::task::yield_now().await,
                            other => return other.unwrap()[0],
                        }
                    }
                }));
            }
            let mut offsets = Vec::new();
            for h in handles {
                offsets.push(h.await.unwrap());
            }
            offsets.sort();
            assert_eq!(offsets, (2..52).collect::<Vec<_>>());
        }
        let log = EmbeddedLog::open(&path, 16).unwrap();
        assert_eq!(log.end_offset("a").unwrap(), 52);
        assert_eq!(*log.subscribe().borrow(), 53);
        let read = log.read_from("a", 50, 10).unwrap();
        assert_eq!(
            read.iter().map(|r| r.offset).collect::<Vec<_>>(),
            vec![50, 51]
        );
        assert_eq!(log.append(vec![rec("a", "z")]).await.unwrap(), vec![52]);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn keys_matching_records_and_offsets_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(&dir.path().join("log.sqlite"), 16).unwrap();
        let records: Vec<Append> = (0..10)
            .map(|i| Append {
                appended_at_ms: 100 + 10 * i,
                ..rec("a", if i % 3 == 0 { "x" } else { "y" })
            })
            .collect();
        log.append(records).await.unwrap();
        log.append(vec![rec("b", "x")]).await.unwrap();
        let keys = log.read_keys("a", 2, 5, 100).unwrap();
        assert_eq!(
            keys,
            vec![(2, "y".into()), (3, "x".into()), (4, "y".into())]
        );
        // a scan stopped by its limit continues after the last scanned record
        let (kept, next) = log.read_matching("a", 0, 10, 4, &|k| k == "x").unwrap();
        assert_eq!(
            kept.iter().map(|r| r.offset).collect::<Vec<_>>(),
            vec![0, 3]
        );
        assert_eq!((next, kept[1].payload.clone()), (4, b"x".to_vec()));
        let (kept, next) = log.read_matching("a", 4, 8, 100, &|k| k == "x").unwrap();
        assert_eq!(kept.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![6]);
        assert_eq!(next, 8);
        assert_eq!(log.offset_at("a", 135).unwrap(), 4);
        assert_eq!(log.offset_at("a", 0).unwrap(), 0);
        assert_eq!(log.offset_at("a", 10_000).unwrap(), 10);
    }
}
