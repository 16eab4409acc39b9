-- Views for analysts (docs/analysts.md): one clean view per subsystem table, KPI history, alert
-- history. They read the tables with FINAL (one row per event / KPI key / alert episode), leave
-- out the sink's bookkeeping columns, add local time (Asia/Ho_Chi_Minh) and Vietnamese names
-- from the reference tables. CREATE OR REPLACE: a later migration may redefine a view.
-- New subsystems add their views in their own migrations, named v_<domain>_<entity>.

CREATE OR REPLACE VIEW {db}.v_traffic_flow AS
SELECT
    f.event_id AS event_id,
    f.occurred_at AS occurred_at,
    toTimeZone(f.occurred_at, 'Asia/Ho_Chi_Minh') AS occurred_at_local,
    f.source AS source,
    f.area_code AS area_code,
    a.name_vi AS area_name,
    f.segment_id AS segment_id,
    s.name_vi AS segment_name,
    f.vehicle_count AS vehicle_count,
    f.avg_speed_kmh AS avg_speed_kmh,
    f.occupancy AS occupancy,
    s.free_flow_kmh AS free_flow_kmh,
    if(s.free_flow_kmh > 0, greatest(0, 1 - f.avg_speed_kmh / s.free_flow_kmh), NULL)
        AS congestion_index,
    f._ingested_at AS ingested_at
FROM {db}.traffic_flow AS f FINAL
LEFT JOIN (SELECT code, name_vi FROM {db}.ref_areas FINAL) AS a ON a.code = f.area_code
LEFT JOIN (SELECT segment_id, name_vi, free_flow_kmh FROM {db}.ref_road_segments FINAL) AS s
    ON s.segment_id = f.segment_id;

CREATE OR REPLACE VIEW {db}.v_traffic_incidents AS
SELECT
    i.event_id AS event_id,
    i.occurred_at AS occurred_at,
    toTimeZone(i.occurred_at, 'Asia/Ho_Chi_Minh') AS occurred_at_local,
    i.source AS source,
    i.area_code AS area_code,
    a.name_vi AS area_name,
    i.segment_id AS segment_id,
    s.name_vi AS segment_name,
    i.incident_type AS incident_type,
    i.severity AS severity,
    i.description AS description,
    i.lat AS lat,
    i.lon AS lon,
    i._ingested_at AS ingested_at
FROM {db}.traffic_incident AS i FINAL
LEFT JOIN (SELECT code, name_vi FROM {db}.ref_areas FINAL) AS a ON a.code = i.area_code
LEFT JOIN (SELECT segment_id, name_vi FROM {db}.ref_road_segments FINAL) AS s
    ON s.segment_id = i.segment_id;

CREATE OR REPLACE VIEW {db}.v_security_incidents AS
SELECT
    i.event_id AS event_id,
    i.occurred_at AS occurred_at,
    toTimeZone(i.occurred_at, 'Asia/Ho_Chi_Minh') AS occurred_at_local,
    i.source AS source,
    i.area_code AS area_code,
    a.name_vi AS area_name,
    i.incident_type AS incident_type,
    i.severity AS severity,
    i.description AS description,
    i.casualties AS casualties,
    i.address AS address,
    i.lat AS lat,
    i.lon AS lon,
    i._ingested_at AS ingested_at
FROM {db}.security_incident AS i FINAL
LEFT JOIN (SELECT code, name_vi FROM {db}.ref_areas FINAL) AS a ON a.code = i.area_code;

CREATE OR REPLACE VIEW {db}.v_cyber_mentions AS
SELECT
    m.event_id AS event_id,
    m.occurred_at AS occurred_at,
    toTimeZone(m.occurred_at, 'Asia/Ho_Chi_Minh') AS occurred_at_local,
    m.source AS source,
    m.area_code AS area_code,
    a.name_vi AS area_name,
    m.channel AS channel,
    m.topic AS topic,
    t.name_vi AS topic_name,
    m.sentiment_score AS sentiment_score,
    m.sentiment_score < -0.2 AS is_negative,
    m.reach AS reach,
    m.url AS url,
    m._ingested_at AS ingested_at
FROM {db}.cyber_mention AS m FINAL
LEFT JOIN (SELECT code, name_vi FROM {db}.ref_areas FINAL) AS a ON a.code = m.area_code
LEFT JOIN (SELECT code, name_vi FROM {db}.ref_cyber_topics FINAL) AS t ON t.code = m.topic;

CREATE OR REPLACE VIEW {db}.v_cyber_security_events AS
SELECT
    e.event_id AS event_id,
    e.occurred_at AS occurred_at,
    toTimeZone(e.occurred_at, 'Asia/Ho_Chi_Minh') AS occurred_at_local,
    e.source AS source,
    e.area_code AS area_code,
    e.system AS system,
    g.name_vi AS system_name,
    g.owner_agency AS owner_agency,
    e.event_type AS event_type,
    e.severity AS severity,
    e.src_ip AS src_ip,
    e.description AS description,
    e._ingested_at AS ingested_at
FROM {db}.cyber_security_event AS e FINAL
LEFT JOIN (SELECT system_id, name_vi, owner_agency FROM {db}.ref_gov_systems FINAL) AS g
    ON g.system_id = e.system;

-- Every KPI value ever computed, one row per (kpi, window, area, entity, window_start): the
-- latest computation of each window (is_final = 0 while the window is still open).
CREATE OR REPLACE VIEW {db}.v_kpi_history AS
SELECT
    k.kpi AS kpi,
    splitByChar('.', k.kpi)[1] AS domain,
    k.`window` AS `window`,
    k.window_start AS window_start,
    k.window_end AS window_end,
    toTimeZone(k.window_start, 'Asia/Ho_Chi_Minh') AS window_start_local,
    toTimeZone(k.window_end, 'Asia/Ho_Chi_Minh') AS window_end_local,
    k.area_code AS area_code,
    a.name_vi AS area_name,
    k.entity AS entity,
    k.value AS value,
    k.sample_count AS sample_count,
    k.is_final AS is_final,
    k.computed_at AS computed_at
FROM {db}.kpi AS k FINAL
LEFT JOIN (SELECT code, name_vi FROM {db}.ref_areas FINAL) AS a ON a.code = k.area_code;

-- The current value of every KPI series (kpi, window, area, entity): its newest window.
CREATE OR REPLACE VIEW {db}.v_kpi_latest AS
SELECT
    kpi,
    latest.1 AS domain,
    `window`,
    area_code,
    latest.2 AS area_name,
    entity,
    latest.3 AS window_start,
    latest.4 AS window_end,
    latest.5 AS window_start_local,
    latest.6 AS window_end_local,
    latest.7 AS value,
    latest.8 AS sample_count,
    latest.9 AS is_final,
    latest.10 AS computed_at
FROM
(
    SELECT kpi, `window`, area_code, entity,
           argMax((domain, area_name, window_start, window_end, window_start_local,
                   window_end_local, value, sample_count, is_final, computed_at), window_start)
               AS latest
    FROM {db}.v_kpi_history
    GROUP BY kpi, `window`, area_code, entity
);

-- Every alert episode (alert_id + starts_at) in its latest state, with its duration.
CREATE OR REPLACE VIEW {db}.v_alert_history AS
SELECT
    al.alert_id AS alert_id,
    al.rule AS rule,
    al.domain AS domain,
    al.severity AS severity,
    al.status AS status,
    al.area_code AS area_code,
    a.name_vi AS area_name,
    al.entity AS entity,
    al.value AS value,
    al.threshold AS threshold,
    al.summary AS summary,
    al.starts_at AS starts_at,
    al.ends_at AS ends_at,
    toTimeZone(al.starts_at, 'Asia/Ho_Chi_Minh') AS starts_at_local,
    toTimeZone(al.ends_at, 'Asia/Ho_Chi_Minh') AS ends_at_local,
    if(al.ends_at IS NULL, NULL,
       dateDiff('second', al.starts_at, assumeNotNull(al.ends_at)) / 60.0) AS duration_minutes,
    al.acked_by AS acked_by,
    al.acked_at AS acked_at,
    al.updated_at AS updated_at
FROM {db}.alerts AS al FINAL
LEFT JOIN (SELECT code, name_vi FROM {db}.ref_areas FINAL) AS a ON a.code = al.area_code;
