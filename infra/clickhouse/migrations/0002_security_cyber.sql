-- Public order (security) and online information / cyber security (cyber): raw event tables
-- and their reference tables. Same conventions as 0001: DateTime64(3, 'UTC'), one row per
-- event_id with FINAL (ReplacingMergeTree on _ingested_at), insert dedup window for re-sent
-- batches, the sink's position columns.

CREATE TABLE IF NOT EXISTS {db}.security_incident
(
    event_id       String,
    occurred_at    DateTime64(3, 'UTC'),
    source         LowCardinality(String),
    area_code      LowCardinality(String),
    incident_type  LowCardinality(String),
    severity       LowCardinality(String),
    description    String,
    casualties     Int32,
    address        String,
    lat            Nullable(Float64),
    lon            Nullable(Float64),
    _topic         LowCardinality(String),
    _partition     UInt32,
    _offset        UInt64,
    _ingested_at   DateTime64(3, 'UTC'),
    INDEX idx_time occurred_at TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(_ingested_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY event_id
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.cyber_mention
(
    event_id         String,
    occurred_at      DateTime64(3, 'UTC'),
    source           LowCardinality(String),
    area_code        LowCardinality(String),
    channel          LowCardinality(String),
    topic            LowCardinality(String),
    sentiment_score  Float64,
    reach            Int64,
    url              String,
    _topic           LowCardinality(String),
    _partition       UInt32,
    _offset          UInt64,
    _ingested_at     DateTime64(3, 'UTC'),
    INDEX idx_time occurred_at TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(_ingested_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY event_id
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.cyber_security_event
(
    event_id       String,
    occurred_at    DateTime64(3, 'UTC'),
    source         LowCardinality(String),
    area_code      LowCardinality(String),
    system         LowCardinality(String),
    event_type     LowCardinality(String),
    severity       LowCardinality(String),
    src_ip         String,
    description    String,
    _topic         LowCardinality(String),
    _partition     UInt32,
    _offset        UInt64,
    _ingested_at   DateTime64(3, 'UTC'),
    INDEX idx_time occurred_at TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(_ingested_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY event_id
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.ref_cyber_topics
(
    code       String,
    name_vi    String,
    loaded_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY code;

CREATE TABLE IF NOT EXISTS {db}.ref_gov_systems
(
    system_id     String,
    name_vi       String,
    owner_agency  String,
    loaded_at     DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY system_id;
