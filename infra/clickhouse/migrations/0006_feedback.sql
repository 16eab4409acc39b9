-- Citizen feedback and field reports (feedback): the raw lifecycle events and the reference
-- tables of categories and handling agencies. Same conventions as 0001/0002: DateTime64(3,
-- 'UTC'), one row per event_id with FINAL (ReplacingMergeTree on _ingested_at), insert dedup
-- window for re-sent batches, the sink's position columns. No column holds a reporter's name
-- or phone number: only the keyed pseudonym reaches the platform.

CREATE TABLE IF NOT EXISTS {db}.feedback_report
(
    event_id            String,
    occurred_at         DateTime64(3, 'UTC'),
    source              LowCardinality(String),
    area_code           LowCardinality(String),
    report_id           String,
    status              LowCardinality(String),
    channel             LowCardinality(String),
    category            LowCardinality(String),
    description         String,
    address             String,
    lat                 Nullable(Float64),
    lon                 Nullable(Float64),
    assigned_agency     LowCardinality(String),
    due_at              Nullable(DateTime64(3, 'UTC')),
    rating              Nullable(Int32),
    reporter_pseudonym  String,
    _topic              LowCardinality(String),
    _partition          UInt32,
    _offset             UInt64,
    _ingested_at        DateTime64(3, 'UTC'),
    INDEX idx_time occurred_at TYPE minmax GRANULARITY 1,
    INDEX idx_report report_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree(_ingested_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY event_id
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.ref_feedback_categories
(
    code        String,
    name_vi     String,
    due_days    UInt16,
    agency      String,
    loaded_at   DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY code;

CREATE TABLE IF NOT EXISTS {db}.ref_feedback_agencies
(
    agency      String,
    name_vi     String,
    loaded_at   DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY agency;
