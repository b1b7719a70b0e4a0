-- Signals as the signal sweep raises them and experts review them (ods_store::review). Replaces
-- the placeholder tables of 0002, which nothing wrote to.
DROP TABLE IF EXISTS {db}.signals;

DROP TABLE IF EXISTS {db}.signal_audit;

-- The revisions of every signal: revision 1 when a sweep first raises it, one more per review
-- change. Readers take the latest (argMax by revision, then updated_at_ms), merges keep the
-- latest. subject and numbers are JSON objects, note is '' when there is none.
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

-- The review changes, kept forever: one per signal revision after the first, and one per
-- reviewer when two changed the same revision at once (a retried insert of the same change
-- collapses into one row).
CREATE TABLE IF NOT EXISTS {db}.signal_reviews (
    signal_id String,
    revision UInt64,
    at_ms Int64,
    actor String,
    from_status String,
    to_status String,
    note String
) ENGINE = ReplacingMergeTree()
ORDER BY (signal_id, revision, actor, at_ms);
