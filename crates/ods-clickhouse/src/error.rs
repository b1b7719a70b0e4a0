//! Errors of the ClickHouse store and their classification: retry or give up.

use ods_store::StoreError;

/// Whether an error can go away by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Network trouble, server overload, 5xx, "too many parts": retry with backoff.
    Retryable,
    /// Bad data, unknown table or column, syntax, authentication: retrying cannot help.
    Permanent,
}

/// ClickHouse server error codes worth retrying (`ErrorCodes.cpp`).
const RETRYABLE_CODES: &[u32] = &[
    159, // TIMEOUT_EXCEEDED
    164, // READONLY (replica temporarily read-only)
    202, // TOO_MANY_SIMULTANEOUS_QUERIES
    203, // NO_FREE_CONNECTION
    209, // SOCKET_TIMEOUT
    210, // NETWORK_ERROR
    241, // MEMORY_LIMIT_EXCEEDED
    242, // TABLE_IS_READ_ONLY
    252, // TOO_MANY_PARTS
    285, // TOO_FEW_LIVE_REPLICAS
    319, // UNKNOWN_STATUS_OF_INSERT
    425, // SYSTEM_ERROR
    999, // KEEPER_EXCEPTION
];

/// Failures of the ClickHouse store.
#[derive(Debug, thiserror::Error)]
pub enum ClickHouseError {
    /// A request failed.
    #[error("clickhouse {what}: {source}")]
    Request {
        /// What was attempted (`insert into ods.notifications`, `count query`, ...).
        what: String,
        /// Retry or not.
        class: ErrorClass,
        /// The client's error.
        source: clickhouse::error::Error,
    },
    /// The server refused a row of an insert; the batch was not applied (its position was not
    /// written) and retrying cannot help until the data or the schema is fixed.
    #[error("clickhouse refused a row of {table}: {row}: {reason}")]
    RowRejected {
        /// Table.
        table: String,
        /// The row, described by its keys (notification id, source offset).
        row: String,
        /// The server's message.
        reason: String,
    },
    /// A retryable failure persisted through every attempt of the retry policy.
    #[error("clickhouse {what}: still failing after {attempts} attempts: {source}")]
    Exhausted {
        /// What was attempted.
        what: String,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        source: clickhouse::error::Error,
    },
    /// The configuration cannot work (bad database name, URL).
    #[error("clickhouse configuration: {0}")]
    Config(String),
    /// The server's answer makes no sense (a bug or an incompatible server).
    #[error("clickhouse: unexpected answer to {what}: {reason}")]
    Unexpected {
        /// The query.
        what: String,
        /// Why.
        reason: String,
    },
    /// The batch's outlet (the output topics) failed before anything was written.
    #[error("batch outlet: {0}")]
    Outlet(#[source] StoreError),
    /// A migration failed.
    #[error("clickhouse migration {version} ({name}): {source}")]
    Migration {
        /// Version number.
        version: u32,
        /// File name.
        name: String,
        /// The client's error.
        source: clickhouse::error::Error,
    },
}

impl ClickHouseError {
    /// Wraps a client error of `what`, classified.
    pub fn request(what: impl Into<String>, source: clickhouse::error::Error) -> Self {
        ClickHouseError::Request {
            what: what.into(),
            class: classify(&source),
            source,
        }
    }

    /// Whether the same call may succeed later.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClickHouseError::Request { class, .. } => *class == ErrorClass::Retryable,
            ClickHouseError::Exhausted { .. } => true,
            ClickHouseError::Outlet(e) => e.is_retryable(),
            ClickHouseError::Migration { source, .. } => classify(source) == ErrorClass::Retryable,
            ClickHouseError::RowRejected { .. }
            | ClickHouseError::Config(_)
            | ClickHouseError::Unexpected { .. } => false,
        }
    }
}

impl From<ClickHouseError> for StoreError {
    fn from(e: ClickHouseError) -> Self {
        StoreError::Backend {
            backend: "clickhouse",
            retryable: e.is_retryable(),
            source: Box::new(e),
        }
    }
}

/// The server's error code in a message such as `Code: 252, e.displayText() = DB::Exception:
/// Too many parts ...` (18.16) or `Code: 60. DB::Exception: Table ... doesn't exist` (23+).
pub fn server_code(message: &str) -> Option<u32> {
    let rest = &message[message.find("Code: ")? + "Code: ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Classifies a client error: network failures, timeouts, 5xx without a server code and the
/// server's transient codes (too many parts, memory, overload) are retryable; everything else
/// (bad data, unknown table or column, syntax, authentication, client-side serialisation) is
/// permanent.
pub fn classify(error: &clickhouse::error::Error) -> ErrorClass {
    use clickhouse::error::Error as E;
    match error {
        E::Network(_) | E::TimedOut | E::Other(_) => ErrorClass::Retryable,
        E::BadResponse(message) => classify_message(message),
        _ => ErrorClass::Permanent,
    }
}

/// Classifies a server's error message (the body of a failed HTTP answer).
pub fn classify_message(message: &str) -> ErrorClass {
    if let Some(code) = server_code(message) {
        return if RETRYABLE_CODES.contains(&code) {
            ErrorClass::Retryable
        } else {
            ErrorClass::Permanent
        };
    }
    // No server code. An empty body is what proxies and load balancers send with 502/503 (the
    // client then reports no status); ClickHouse itself always explains its errors.
    if message.trim().is_empty() {
        return ErrorClass::Retryable;
    }
    // The crate reports "<status> <reason>" when the body was unreadable.
    let status = message
        .trim_start()
        .get(..3)
        .and_then(|s| s.parse::<u16>().ok());
    match status {
        Some(500..=599) => ErrorClass::Retryable,
        _ if message.to_ascii_lowercase().contains("too many parts") => ErrorClass::Retryable,
        _ => ErrorClass::Permanent,
    }
}

/// The row number a server names in an insert error (`(at row 3)`), 1-based as the server
/// counts.
pub fn failing_row(message: &str) -> Option<usize> {
    let rest = &message[message.find("at row ")? + "at row ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clickhouse::error::Error as E;

    fn bad(message: &str) -> E {
        E::BadResponse(message.to_string())
    }

    #[test]
    fn transient_server_errors_are_retried() {
        for m in [
            "Code: 252, e.displayText() = DB::Exception: Too many parts (300). Merges are processing significantly slower than inserts., e.what() = DB::Exception",
            "Code: 241. DB::Exception: Memory limit (total) exceeded: would use 9.32 GiB. (MEMORY_LIMIT_EXCEEDED) (version 23.8.1.1)",
            "Code: 202, e.displayText() = DB::Exception: Too many simultaneous queries. Maximum: 100",
            "Code: 209. DB::NetException: Timeout exceeded while reading from socket",
            "503 Service Unavailable",
            "502 Bad Gateway",
            "",
        ] {
            assert_eq!(classify(&bad(m)), ErrorClass::Retryable, "{m}");
        }
        assert_eq!(classify(&E::TimedOut), ErrorClass::Retryable);
        assert_eq!(
            classify(&E::Network("connection refused".into())),
            ErrorClass::Retryable
        );
    }

    #[test]
    fn bad_data_and_schema_errors_are_permanent() {
        for m in [
            "Code: 60, e.displayText() = DB::Exception: Table ods.nope doesn't exist., e.what() = DB::Exception",
            "Code: 16. DB::Exception: No such column foo in table ods.notifications. (NO_SUCH_COLUMN_IN_TABLE)",
            "Code: 62, e.displayText() = DB::Exception: Syntax error: failed at position 1",
            "Code: 33, e.displayText() = DB::Exception: Cannot read all data. Bytes read: 3. Bytes expected: 8.: (at row 2)",
            "Code: 516. DB::Exception: default: Authentication failed. (AUTHENTICATION_FAILED)",
            "400 Bad Request",
        ] {
            assert_eq!(classify(&bad(m)), ErrorClass::Permanent, "{m}");
        }
        assert_eq!(
            classify(&E::Custom("serialize".into())),
            ErrorClass::Permanent
        );
        assert_eq!(
            classify(&E::InvalidParams("bad url".into())),
            ErrorClass::Permanent
        );
    }

    #[test]
    fn codes_and_rows_are_parsed() {
        assert_eq!(server_code("Code: 252, e.displayText() = x"), Some(252));
        assert_eq!(server_code("Code: 60. DB::Exception"), Some(60));
        assert_eq!(server_code("no code here"), None);
        assert_eq!(failing_row("Cannot parse input: (at row 17)\n"), Some(17));
        assert_eq!(failing_row("nothing"), None);
    }

    #[test]
    fn store_errors_keep_the_class() {
        let permanent: StoreError = ClickHouseError::RowRejected {
            table: "ods.notifications".into(),
            row: "notification x at offset 3".into(),
            reason: "bad".into(),
        }
        .into();
        assert!(!permanent.is_retryable());
        assert!(permanent.to_string().contains("notification x at offset 3"));
        let transient: StoreError = ClickHouseError::request("insert", E::TimedOut).into();
        assert!(transient.is_retryable());
    }
}
