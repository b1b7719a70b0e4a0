-- Room for signals (issue 5): detected signals, latest review state wins (version = a
-- monotonically increasing revision), and an append-only audit trail of review decisions.
CREATE TABLE IF NOT EXISTS {db}.signals (
    signal_id String,
    revision UInt64,
    method {lc_string},
    diagnosis_code String,
    exposure_code String,
    sector_code String,
    period_from String,
    period_to String,
    observed Int64,
    expected Float64,
    statistic Float64,
    lower Float64,
    upper Float64,
    status {lc_string},
    detected_at_ms Int64,
    updated_at_ms Int64
) ENGINE = ReplacingMergeTree(revision)
ORDER BY signal_id;

CREATE TABLE IF NOT EXISTS {db}.signal_audit (
    signal_id String,
    at_ms Int64,
    actor String,
    from_status String,
    to_status String,
    note String
) ENGINE = MergeTree()
ORDER BY (signal_id, at_ms);
