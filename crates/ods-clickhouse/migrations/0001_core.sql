-- Core tables of the analytics store. Every table keeps per-notification (or per-record) state
-- rows versioned by the source offset (ReplacingMergeTree(source_offset)); readers take the
-- latest row per key with argMax, so re-inserting a batch changes no answer. Aggregates are
-- computed at query time from the latest contributions; nothing is incremented.
-- {db} is the database, {lc_string} LowCardinality(String) where the server supports it.

-- The latest processed version of each notification: status, the processor's state (JSON of
-- ods_processor::NotificationState), and the enriched record (Avro, hex) when validated.
CREATE TABLE IF NOT EXISTS {db}.notifications (
    notification_id String,
    version UInt32,
    status {lc_string},
    reporter String,
    state String,
    validated_avro_hex String,
    source_partition Int32,
    source_offset Int64,
    updated_at_ms Int64
) ENGINE = ReplacingMergeTree(source_offset)
ORDER BY notification_id;

-- What each notification contributes to the aggregates after its latest version: counted = 1
-- with the count key and all its exposures, or counted = 0 (rejected, withdrawn).
CREATE TABLE IF NOT EXISTS {db}.contributions (
    notification_id String,
    counted UInt8,
    period String,
    year Int32,
    quarter UInt32,
    sector_code {lc_string},
    sbi_section {lc_string},
    diagnosis_code {lc_string},
    diagnosis_group {lc_string},
    primary_exposure {lc_string},
    primary_exposure_group {lc_string},
    sex {lc_string},
    age_band {lc_string},
    detection_route {lc_string},
    consequence {lc_string},
    exposure_codes Array(String),
    exposure_groups Array(String),
    source_partition Int32,
    source_offset Int64
) ENGINE = ReplacingMergeTree(source_offset)
ORDER BY notification_id;

-- Why a version was rejected (one row per notification version).
CREATE TABLE IF NOT EXISTS {db}.rejections (
    notification_id String,
    version UInt32,
    reporter String,
    reasons String,
    source_partition Int32,
    source_offset Int64,
    rejected_at_ms Int64
) ENGINE = ReplacingMergeTree(source_offset)
ORDER BY (notification_id, version);

-- "No cases this month", one per reporter and month.
CREATE TABLE IF NOT EXISTS {db}.zero_reports (
    reporter String,
    period String,
    service String,
    source_partition Int32,
    source_offset Int64
) ENGINE = ReplacingMergeTree(source_offset)
ORDER BY (reporter, period);

-- Undecodable records, kept with the reason and the payload (hex).
CREATE TABLE IF NOT EXISTS {db}.dead_letters (
    source String,
    source_partition Int32,
    source_offset Int64,
    error String,
    payload_hex String,
    failed_at_ms Int64
) ENGINE = ReplacingMergeTree(source_offset)
ORDER BY (source, source_partition, source_offset);

-- The next offset to process per (source, partition), written after the batch's data.
CREATE TABLE IF NOT EXISTS {db}.positions (
    source String,
    source_partition Int32,
    next_offset Int64,
    updated_at_ms Int64
) ENGINE = ReplacingMergeTree(next_offset)
ORDER BY (source, source_partition);
