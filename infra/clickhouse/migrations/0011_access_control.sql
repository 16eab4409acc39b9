-- ioc: server-only
-- Access control on a ClickHouse server: department roles and row policies. The embedded
-- chDB has no access control (it refuses these statements), so the migration runner skips
-- every file marked `server-only` there (infra/migrations.py).
--
-- Users and their passwords are not created here (a migration must not hold secrets): the
-- platform's users (ioc_writer for the sink, ioc_grafana, ioc_analyst — all read-only except
-- the writer) are in infra/clickhouse/server/users.xml with passwords from the server's
-- environment. A department's people get a user with its role, created by the DBA:
--   CREATE USER traffic_duty IDENTIFIED BY '…' DEFAULT ROLE ioc_dept_traffic
--     SETTINGS PROFILE 'ioc_readonly';
--
-- Departments see their own raw tables, the reference tables, and only their own rows of the
-- shared kpi and alerts tables (by the code prefix: traffic., security., cyber.). Everyone
-- else (the platform's users, admins) sees every row: ClickHouse shows no rows of a table with
-- row policies to a user no policy names, hence the `ioc_all_rows` policies.

CREATE ROLE IF NOT EXISTS ioc_dept_traffic;

CREATE ROLE IF NOT EXISTS ioc_dept_security;

CREATE ROLE IF NOT EXISTS ioc_dept_cyber;

GRANT SELECT ON {db}.ref_areas TO ioc_dept_traffic, ioc_dept_security, ioc_dept_cyber;

GRANT SELECT ON {db}.kpi TO ioc_dept_traffic, ioc_dept_security, ioc_dept_cyber;

GRANT SELECT ON {db}.alerts TO ioc_dept_traffic, ioc_dept_security, ioc_dept_cyber;

GRANT SELECT ON {db}.traffic_flow TO ioc_dept_traffic;

GRANT SELECT ON {db}.traffic_incident TO ioc_dept_traffic;

GRANT SELECT ON {db}.ref_road_segments TO ioc_dept_traffic;

GRANT SELECT ON {db}.security_incident TO ioc_dept_security;

GRANT SELECT ON {db}.cyber_mention TO ioc_dept_cyber;

GRANT SELECT ON {db}.cyber_security_event TO ioc_dept_cyber;

GRANT SELECT ON {db}.ref_cyber_topics TO ioc_dept_cyber;

GRANT SELECT ON {db}.ref_gov_systems TO ioc_dept_cyber;

CREATE ROW POLICY IF NOT EXISTS ioc_dept_traffic ON {db}.kpi
    FOR SELECT USING startsWith(kpi, 'traffic.') TO ioc_dept_traffic;

CREATE ROW POLICY IF NOT EXISTS ioc_dept_security ON {db}.kpi
    FOR SELECT USING startsWith(kpi, 'security.') TO ioc_dept_security;

CREATE ROW POLICY IF NOT EXISTS ioc_dept_cyber ON {db}.kpi
    FOR SELECT USING startsWith(kpi, 'cyber.') TO ioc_dept_cyber;

CREATE ROW POLICY IF NOT EXISTS ioc_all_rows ON {db}.kpi
    FOR SELECT USING 1 TO ALL EXCEPT ioc_dept_traffic, ioc_dept_security, ioc_dept_cyber;

CREATE ROW POLICY IF NOT EXISTS ioc_dept_traffic ON {db}.alerts
    FOR SELECT USING startsWith(rule, 'traffic.') TO ioc_dept_traffic;

CREATE ROW POLICY IF NOT EXISTS ioc_dept_security ON {db}.alerts
    FOR SELECT USING startsWith(rule, 'security.') TO ioc_dept_security;

CREATE ROW POLICY IF NOT EXISTS ioc_dept_cyber ON {db}.alerts
    FOR SELECT USING startsWith(rule, 'cyber.') TO ioc_dept_cyber;

CREATE ROW POLICY IF NOT EXISTS ioc_all_rows ON {db}.alerts
    FOR SELECT USING 1 TO ALL EXCEPT ioc_dept_traffic, ioc_dept_security, ioc_dept_cyber;
