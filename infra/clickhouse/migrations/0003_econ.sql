-- Socio-economic indicators (econ): the raw report table and the reference tables of the
-- indicator catalogue, annual targets and past actual figures. Same conventions as 0001/0002:
-- DateTime64(3, 'UTC'), one row per event_id with FINAL (ReplacingMergeTree on _ingested_at),
-- insert dedup window for re-sent batches, the sink's position columns. Every revision of a
-- report is its own row; the figure in force is the highest revision (then the latest
-- occurred_at) per (indicator_code, area_code, period) — the KPIs in ioc.kpi already apply it.

CREATE TABLE IF NOT EXISTS {db}.econ_indicator_report
(
    event_id          String,
    occurred_at       DateTime64(3, 'UTC'),
    source            LowCardinality(String),
    area_code         LowCardinality(String),
    indicator_code    LowCardinality(String),
    period            LowCardinality(String),
    value             Float64,
    unit              LowCardinality(String),
    reporting_agency  String,
    revision          Int32,
    _topic            LowCardinality(String),
    _partition        UInt32,
    _offset           UInt64,
    _ingested_at      DateTime64(3, 'UTC'),
    INDEX idx_time occurred_at TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(_ingested_at)
PARTITION BY toYear(occurred_at)
ORDER BY event_id
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.ref_econ_indicators
(
    code              String,
    name_vi           String,
    unit              String,
    aggregation       LowCardinality(String),
    frequency         LowCardinality(String),
    agency            String,
    monthly_required  UInt8,
    behind_plan       UInt8,
    direction         LowCardinality(String),
    loaded_at         DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY code;

CREATE TABLE IF NOT EXISTS {db}.ref_econ_targets
(
    indicator_code  String,
    area_code       String,
    year            UInt16,
    target          Float64,
    approximate     UInt8,
    loaded_at       DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY (indicator_code, area_code, year);

CREATE TABLE IF NOT EXISTS {db}.ref_econ_actuals
(
    indicator_code  String,
    area_code       String,
    period          String,
    value           Float64,
    approximate     UInt8,
    loaded_at       DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY (indicator_code, area_code, period);
