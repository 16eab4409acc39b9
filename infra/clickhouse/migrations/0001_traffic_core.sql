-- Core tables of the walking skeleton. All timestamps DateTime64(3, 'UTC').
-- Raw event tables: one row per event_id when queried with FINAL (ReplacingMergeTree keyed on
-- event_id); inserts also carry a dedup token so a re-sent batch is dropped at insert time.

CREATE TABLE IF NOT EXISTS {db}.traffic_flow
(
    event_id       String,
    occurred_at    DateTime64(3, 'UTC'),
    source         LowCardinality(String),
    area_code      LowCardinality(String),
    segment_id     LowCardinality(String),
    vehicle_count  Int32,
    avg_speed_kmh  Float64,
    occupancy      Nullable(Float64),
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

CREATE TABLE IF NOT EXISTS {db}.traffic_incident
(
    event_id       String,
    occurred_at    DateTime64(3, 'UTC'),
    source         LowCardinality(String),
    area_code      LowCardinality(String),
    segment_id     LowCardinality(String),
    incident_type  LowCardinality(String),
    severity       LowCardinality(String),
    description    String,
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

-- KPI values: one row per (kpi, window, area_code, entity, window_start) with FINAL; the row
-- with the latest computed_at wins.
CREATE TABLE IF NOT EXISTS {db}.kpi
(
    kpi           LowCardinality(String),
    `window`      LowCardinality(String),
    window_start  DateTime64(3, 'UTC'),
    window_end    DateTime64(3, 'UTC'),
    area_code     LowCardinality(String),
    entity        String,
    value         Float64,
    sample_count  UInt64,
    computed_at   DateTime64(3, 'UTC'),
    is_final      UInt8
)
ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMM(window_start)
ORDER BY (kpi, `window`, area_code, entity, window_start)
SETTINGS non_replicated_deduplication_window = 1000;

-- Alert states: one row per (alert_id, starts_at) episode with FINAL; latest updated_at wins.
CREATE TABLE IF NOT EXISTS {db}.alerts
(
    alert_id    String,
    rule        LowCardinality(String),
    severity    LowCardinality(String),
    status      LowCardinality(String),
    domain      LowCardinality(String),
    area_code   LowCardinality(String),
    entity      String,
    value       Float64,
    threshold   Float64,
    summary     String,
    starts_at   DateTime64(3, 'UTC'),
    ends_at     Nullable(DateTime64(3, 'UTC')),
    updated_at  DateTime64(3, 'UTC'),
    acked_by    String,
    acked_at    Nullable(DateTime64(3, 'UTC'))
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (alert_id, starts_at)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.dead_letters
(
    topic       LowCardinality(String),
    `partition` UInt32,
    `offset`    UInt64,
    `key`       Nullable(String),
    payload     String,
    error_type  LowCardinality(String),
    reason      String,
    stage       LowCardinality(String),
    failed_at   DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(failed_at)
ORDER BY (topic, `partition`, `offset`)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.ref_areas
(
    code         String,
    name_vi      String,
    level        LowCardinality(String),
    parent_code  String,
    population   UInt64,
    population_approx UInt8,
    valid_from   Date,
    loaded_at    DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY code;

CREATE TABLE IF NOT EXISTS {db}.ref_road_segments
(
    segment_id     String,
    name_vi        String,
    area_code      String,
    free_flow_kmh  Float64,
    road_class     LowCardinality(String),
    length_km      Float64,
    loaded_at      DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY segment_id;
