-- Alert notifications (connectors/notify): the notifier's history, acknowledgements and
-- silences, written by the generic sink from ioc.alert_event.v1, ioc.alert_ack.v1 and
-- ioc.silence.v1. Same conventions as 0001: DateTime64(3, 'UTC'), ReplacingMergeTree, insert
-- dedup window for re-sent batches; always query with FINAL.

-- Every state change the notifier saw, every notification it decided (written before sending),
-- every delivery attempt (channel, recipient, outcome), suppressions, acks and silence changes.
-- event_id is deterministic, so a record written twice is one row with FINAL.
CREATE TABLE IF NOT EXISTS {db}.alert_events
(
    event_id         String,
    occurred_at      DateTime64(3, 'UTC'),
    kind             LowCardinality(String),
    alert_id         String,
    starts_at        Nullable(DateTime64(3, 'UTC')),
    rule             LowCardinality(String),
    severity         LowCardinality(String),
    status           LowCardinality(String),
    domain           LowCardinality(String),
    area_code        LowCardinality(String),
    entity           String,
    summary          String,
    group_key        String,
    route            LowCardinality(String),
    receiver         LowCardinality(String),
    level            Int32,
    reason           LowCardinality(String),
    notification_id  String,
    channel          LowCardinality(String),
    recipient_id     String,
    recipient        String,
    attempt          Int32,
    outcome          LowCardinality(String),
    detail           String,
    actor            String,
    alert_keys       Array(String),
    payload          String,
    INDEX idx_time occurred_at TYPE minmax GRANULARITY 1,
    INDEX idx_alert alert_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree(occurred_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY event_id
SETTINGS non_replicated_deduplication_window = 1000;

-- Acknowledgements: with FINAL, the latest ack of each alert episode (who has it now, their
-- comment) and first_acked_at (time to acknowledge). Wall screens join it on
-- (alert_id, starts_at) to show who took an alert on.
CREATE TABLE IF NOT EXISTS {db}.alert_acks
(
    ack_id          String,
    alert_id        String,
    starts_at       DateTime64(3, 'UTC'),
    acked_by        String,
    comment         String,
    acked_at        DateTime64(3, 'UTC'),
    first_acked_at  DateTime64(3, 'UTC'),
    via             LowCardinality(String)
)
ENGINE = ReplacingMergeTree(acked_at)
ORDER BY (alert_id, starts_at)
SETTINGS non_replicated_deduplication_window = 1000;

-- Silences: with FINAL, the latest version of each (an expired silence has ends_at = expiry).
CREATE TABLE IF NOT EXISTS {db}.silences
(
    silence_id  String,
    matchers    Array(String),
    starts_at   DateTime64(3, 'UTC'),
    ends_at     DateTime64(3, 'UTC'),
    created_by  String,
    comment     String,
    created_at  DateTime64(3, 'UTC'),
    updated_at  DateTime64(3, 'UTC'),
    expired_by  String
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY silence_id
SETTINGS non_replicated_deduplication_window = 1000;
