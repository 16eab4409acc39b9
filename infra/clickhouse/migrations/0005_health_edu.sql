-- Health (facility status, notifiable disease cases) and education (school attendance): raw
-- event tables and their reference tables. Same conventions as 0001/0002: DateTime64(3, 'UTC'),
-- one row per event_id with FINAL (ReplacingMergeTree on _ingested_at), insert dedup window for
-- re-sent batches, the sink's position columns. Avro dates (onset_date, school_day) are Date.

CREATE TABLE IF NOT EXISTS {db}.health_facility_status
(
    event_id           String,
    occurred_at        DateTime64(3, 'UTC'),
    source             LowCardinality(String),
    area_code          LowCardinality(String),
    facility_id        LowCardinality(String),
    beds_total         Int32,
    beds_occupied      Int32,
    emergency_waiting  Int32,
    icu_total          Nullable(Int32),
    icu_occupied       Nullable(Int32),
    _topic             LowCardinality(String),
    _partition         UInt32,
    _offset            UInt64,
    _ingested_at       DateTime64(3, 'UTC'),
    INDEX idx_time occurred_at TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(_ingested_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY event_id
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.health_disease_case
(
    event_id        String,
    occurred_at     DateTime64(3, 'UTC'),
    source          LowCardinality(String),
    area_code       LowCardinality(String),
    case_id         String,
    disease         LowCardinality(String),
    classification  LowCardinality(String),
    onset_date      Nullable(Date),
    age_group       LowCardinality(String),
    hospitalized    Bool,
    facility_id     LowCardinality(String),
    _topic          LowCardinality(String),
    _partition      UInt32,
    _offset         UInt64,
    _ingested_at    DateTime64(3, 'UTC'),
    INDEX idx_time occurred_at TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(_ingested_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY event_id
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.edu_attendance
(
    event_id     String,
    occurred_at  DateTime64(3, 'UTC'),
    source       LowCardinality(String),
    area_code    LowCardinality(String),
    school_id    LowCardinality(String),
    level        LowCardinality(String),
    school_day   Date,
    enrolled     Int32,
    present      Int32,
    _topic       LowCardinality(String),
    _partition   UInt32,
    _offset      UInt64,
    _ingested_at DateTime64(3, 'UTC'),
    INDEX idx_time occurred_at TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(_ingested_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY event_id
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.ref_health_facilities
(
    facility_id  String,
    name_vi      String,
    area_code    String,
    kind         LowCardinality(String),
    beds         UInt32,
    icu_beds     UInt32,
    loaded_at    DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY facility_id;

CREATE TABLE IF NOT EXISTS {db}.ref_schools
(
    school_id  String,
    name_vi    String,
    area_code  String,
    level      LowCardinality(String),
    enrolled   UInt32,
    loaded_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY school_id;
