-- Signals as the signal sweep raises them and experts review them (ods_store::review). Replaces
-- the placeholder tables of 0002, which nothing wrote to.
DROP TABLE IF EXISTS {db}.signals;

DROP TABLE IF EXISTS {db}.signal_audit;

-- Every revision of every signal: revision 1 when a sweep first raises it, one more per review
-- change; readers take the latest (argMax by revision). subject and numbers are JSON objects,
-- note is '' when there is none.
CREATE TABLE IF NOT EXISTS {db}.signal_revisions (
    signal_id String,
    revision UInt64,
    kind String,
    subject String,
    period String,
    numbers String,
    method String,
    explanation String,
    status String,
    note String,
    detected_at_ms Int64,
    updated_at_ms Int64
) ENGINE = ReplacingMergeTree(revision)
ORDER BY signal_id;

-- The review changes, one per signal revision after the first, kept forever.
CREATE TABLE IF NOT EXISTS {db}.signal_reviews (
    signal_id String,
    revision UInt64,
    at_ms Int64,
    actor String,
    from_status String,
    to_status String,
    note String
) ENGINE = ReplacingMergeTree()
ORDER BY (signal_id, revision);
