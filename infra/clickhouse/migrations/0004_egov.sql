-- E-government (egov): public-service dossier events, portal health checks, and the reference
-- tables of agencies, portal systems and procedures. Same conventions as 0001/0002:
-- DateTime64(3, 'UTC'), one row per event_id with FINAL (ReplacingMergeTree on _ingested_at),
-- insert dedup window for re-sent batches, the sink's position columns.

CREATE TABLE IF NOT EXISTS {db}.egov_dossier
(
    event_id        String,
    occurred_at     DateTime64(3, 'UTC'),
    source          LowCardinality(String),
    area_code       LowCardinality(String),
    dossier_id      String,
    status          LowCardinality(String),
    channel         LowCardinality(String),
    procedure_code  LowCardinality(String),
    agency          LowCardinality(String),
    received_at     DateTime64(3, 'UTC'),
    due_at          DateTime64(3, 'UTC'),
    resolved_at     Nullable(DateTime64(3, 'UTC')),
    fee_required    Bool,
    paid_online     Bool,
    online_level    LowCardinality(String),
    _topic          LowCardinality(String),
    _partition      UInt32,
    _offset         UInt64,
    _ingested_at    DateTime64(3, 'UTC'),
    INDEX idx_time occurred_at TYPE minmax GRANULARITY 1,
    INDEX idx_dossier dossier_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree(_ingested_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY event_id
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.egov_portal_check
(
    event_id        String,
    occurred_at     DateTime64(3, 'UTC'),
    source          LowCardinality(String),
    area_code       LowCardinality(String),
    system_id       LowCardinality(String),
    up              Bool,
    response_ms     Nullable(Int32),
    http_status     Nullable(Int32),
    check_location  LowCardinality(String),
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

CREATE TABLE IF NOT EXISTS {db}.ref_egov_agencies
(
    code       String,
    name_vi    String,
    level      LowCardinality(String),
    area_code  String,
    loaded_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY code;

CREATE TABLE IF NOT EXISTS {db}.ref_egov_systems
(
    system_id     String,
    name_vi       String,
    url           String,
    owner_agency  String,
    loaded_at     DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY system_id;

CREATE TABLE IF NOT EXISTS {db}.ref_egov_procedures
(
    procedure_code  String,
    name_vi         String,
    level           LowCardinality(String),
    agency          String,
    due_days        UInt16,
    online_level    LowCardinality(String),
    fee_required    UInt8,
    loaded_at       DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY procedure_code;
