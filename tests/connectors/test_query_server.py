"""The analysts' read-only ClickHouse HTTP interface, spoken to by real clients.

The server runs in this process on the session's chDB engine (as it runs in the sink process
on the platform's), against its own database; clickhouse-connect's HTTP client (unmodified)
and plain HTTP requests talk to it.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import os
import re
import stat
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import clickhouse_connect
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError
from helpers import find_free_port_pair

from ioc.connectors.native_format import BLOCK_INFO
from ioc.connectors.query_server import (
    QueryServer,
    QueryUsersError,
    discover,
    load_users,
    run_file,
)
from ioc.infra.migrations import migrate
from ioc.infra.runtime import load_reference_tables
from ioc.infra.settings import Settings

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def server(chdb_client: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[QueryServer]:
    db = f"qs_{uuid.uuid4().hex[:10]}"
    migrate(chdb_client, db)
    load_reference_tables(chdb_client, db)
    chdb_client.insert(f"{db}.kpi", [
        ["traffic.vehicle_count", "1m", T0 + timedelta(minutes=i),
         T0 + timedelta(minutes=i + 1), "502", f"seg-{i % 3}", float(i), 1, T0, 1]
        for i in range(30)],
        column_names=["kpi", "window", "window_start", "window_end", "area_code", "entity",
                      "value", "sample_count", "computed_at", "is_final"])
    path = tmp_path_factory.getbasetemp() / "chdb"
    settings = Settings(data_dir=tmp_path_factory.mktemp("qs"), clickhouse_url=f"chdb://{path}",
                        database=db, query_port=find_free_port_pair(),
                        query_users="analyst:s3cret,viewer:other", query_max_execution_s=1.5,
                        query_max_result_rows=5000)
    srv = QueryServer(settings)
    srv.start()
    yield srv
    srv.stop()
    chdb_client.command(f"DROP DATABASE IF EXISTS {db} SYNC")


PASSWORD = "s3cret"  # noqa: S105 (a test user)


def client(server: QueryServer, password: str = PASSWORD, **kw: Any) -> Any:
    return clickhouse_connect.get_client(host="127.0.0.1", port=server.port, username="analyst",
                                         password=password, **kw)


def request(server: QueryServer, method: str = "GET", params: dict[str, str] | None = None,
            body: bytes | None = None, headers: dict[str, str] | None = None,
            path: str = "/", auth: tuple[str, str] | None = ("analyst", "s3cret"),
            ) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    hdrs = dict(headers or {})
    if auth:
        hdrs["Authorization"] = "Basic " + base64.b64encode(":".join(auth).encode()).decode()
    url = path + ("?" + urlencode(params) if params else "")
    conn.request(method, url, body=body, headers=hdrs)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


def code_of(exc: pytest.ExceptionInfo[DatabaseError]) -> int:
    return int(exc.value.code or 0)


def test_clickhouse_connect_queries_views_with_its_native_protocol(server: QueryServer) -> None:
    c = client(server)
    assert c.protocol_version == 54405  # its probe got the block info it asked for
    rows = c.query("SELECT entity, count() AS n, sum(value) AS total FROM v_kpi_history "
                   "GROUP BY entity ORDER BY entity").result_rows
    assert rows == [("seg-0", 10, 135.0), ("seg-1", 10, 145.0), ("seg-2", 10, 155.0)]
    latest = c.query("SELECT area_name, value FROM v_kpi_latest WHERE entity = 'seg-2'")
    assert latest.result_rows == [("Thành phố Tam Kỳ", 29.0)]
    assert latest.summary["query_id"]
    # parameters bound by the server ({name:Type}) and a database other than the default
    n = c.query("SELECT count() FROM system.one WHERE {x:UInt8} = 7", parameters={"x": 7},
                settings=None).result_rows
    assert n == [(1,)]
    assert c.command("SELECT name_vi FROM ref_areas FINAL WHERE code = '503'") == "Thành phố Hội An"


def test_writes_are_refused_as_readonly(server: QueryServer) -> None:
    c = client(server)
    db = server.settings.database
    with pytest.raises(DatabaseError) as err:  # its body: the INSERT, then binary data
        c.insert(f"{db}.kpi", [["x", "1m", T0, T0, "", "", 0.5, 1, T0, 1]],
                 column_names=["kpi", "window", "window_start", "window_end", "area_code",
                               "entity", "value", "sample_count", "computed_at", "is_final"])
    assert code_of(err) == 164 and "readonly" in str(err.value)
    for sql in (f"INSERT INTO {db}.ref_areas (code) VALUES ('x')", f"DROP TABLE {db}.kpi",
                f"ALTER TABLE {db}.kpi DELETE WHERE 1", f"CREATE TABLE {db}.x (a UInt8) "
                "ENGINE = Memory", "SYSTEM DROP MARK CACHE", "KILL QUERY WHERE 1",
                f"TRUNCATE TABLE {db}.kpi", f"OPTIMIZE TABLE {db}.kpi FINAL"):
        with pytest.raises(DatabaseError) as err:
            c.command(sql)
        assert code_of(err) == 164, sql
    # ClickHouse's own readonly = 1: changing it, by SET, SETTINGS or URL parameter, is refused
    for sql in ("SET readonly = 0", "SELECT 1 SETTINGS readonly = 0",
                "SELECT 1 SETTINGS max_result_rows = 1000000000",
                "SELECT * FROM url('http://127.0.0.1:9/x', 'LineAsString')"):
        with pytest.raises(DatabaseError) as err:
            c.command(sql)
        assert code_of(err) == 164, sql
    status, headers, body = request(server, params={"query": "SELECT 1", "readonly": "0"})
    assert (status, headers["x-clickhouse-exception-code"]) == (403, "164")
    assert b"Cannot modify 'readonly' setting in readonly mode" in body
    status, _, _ = request(server, params={"query": "SELECT 1", "readonly": "1"})
    assert status == 200  # the value it has already is accepted
    count = c.query(f"SELECT count() FROM {db}.ref_areas FINAL WHERE code = 'x'").result_rows
    assert count == [(0,)]


def test_the_engine_session_itself_is_readonly(server: QueryServer) -> None:
    """Below the statement filter: the per-request chDB session refuses writes on its own."""
    engine = server.engine
    conn = engine._open()
    try:
        engine._session(conn, {})
        with pytest.raises(Exception, match="READONLY"):
            conn.query(f"INSERT INTO {server.settings.database}.ref_areas (code) VALUES ('z')")
        with pytest.raises(Exception, match="READONLY"):
            conn.query(f"DROP TABLE {server.settings.database}.kpi")
    finally:
        engine._close(conn)


def test_multi_statements_outfile_and_file_reads_are_refused(server: QueryServer,
                                                       tmp_path: Path) -> None:
    c = client(server)
    target = tmp_path / "out.tsv"
    with pytest.raises(DatabaseError) as err:
        c.command(f"SELECT 1; DROP TABLE {server.settings.database}.kpi")
    assert code_of(err) == 62 and "Multi-statements are not allowed" in str(err.value)
    with pytest.raises(DatabaseError) as err:
        c.command(f"SELECT 1 INTO OUTFILE '{target}'")
    assert code_of(err) == 358
    with pytest.raises(DatabaseError) as err:
        c.command(f"/* x */ SELECT 'a;b' AS s INTO OUTFILE '{target}' FORMAT CSV -- ;")
    assert code_of(err) == 358
    assert not target.exists()
    assert c.command("SELECT 'a;b' -- trailing comment;") == "a;b"
    # chDB's file() function reads any file, readonly or not: refused
    secret = tmp_path / "secret.txt"
    secret.write_text("analyst:pw\n")
    for sql in (f"SELECT file('{secret}')", f"SELECT `file` ('{secret}') AS x",
                f"SELECT length(file('{secret}'))"):
        with pytest.raises(DatabaseError) as err:
            c.command(sql)
        assert code_of(err) == 497, sql
    assert c.command("SELECT 'file(x)' AS file") == "file(x)"


def test_time_limit_and_result_caps(server: QueryServer) -> None:
    c = client(server)
    started = time.monotonic()
    with pytest.raises(DatabaseError) as err:
        c.query("SELECT count() FROM system.numbers")
    assert code_of(err) == 159 and time.monotonic() - started < 6
    with pytest.raises(DatabaseError) as err:
        c.query("SELECT number FROM numbers(6000)")
    assert code_of(err) == 396
    # a request may lower a cap, never raise it
    status, headers, _ = request(server, params={"query": "SELECT number FROM numbers(20)",
                                                 "max_result_rows": "10"})
    assert (status, headers["x-clickhouse-exception-code"]) == (500, "396")
    status, headers, _ = request(server, params={"query": "SELECT number FROM numbers(6000)",
                                                 "max_result_rows": "1000000000"})
    assert headers["x-clickhouse-exception-code"] == "396"
    status, _, body = request(server, params={"query": "SELECT number FROM numbers(100)",
                                              "limit": "3"})
    assert (status, body) == (200, b"0\n1\n2\n")


def test_users_and_passwords(server: QueryServer) -> None:
    with pytest.raises(DatabaseError) as err:
        client(server, password="wrong")  # noqa: S106
    assert code_of(err) == 516
    status, headers, body = request(server, params={"query": "SELECT 1"}, auth=None)
    assert status == 401 and headers["x-clickhouse-exception-code"] == "194"
    assert "basic" in headers["www-authenticate"].lower()
    status, headers, body = request(server, params={"query": "SELECT 1"},
                                    auth=("nobody", "s3cret"))
    assert status == 403 and headers["x-clickhouse-exception-code"] == "516"
    assert b"s3cret" not in body
    status, _, body = request(server, params={"query": "SELECT currentDatabase()"}, auth=None,
                              headers={"X-ClickHouse-User": "viewer",
                                       "X-ClickHouse-Key": "other"})
    assert (status, body) == (200, f"{server.settings.database}\n".encode())
    status, _, body = request(server, auth=None, params={
        "query": "SELECT 2", "user": "viewer", "password": "other"})
    assert (status, body) == (200, b"2\n")


def test_plain_http_like_curl(server: QueryServer) -> None:
    assert request(server, path="/ping", auth=None)[2] == b"Ok.\n"
    assert request(server, auth=None)[2] == b"Ok.\n"
    status, headers, body = request(server, params={
        "query": "SELECT entity, value FROM v_kpi_history ORDER BY value LIMIT 2 "
                 "FORMAT JSONEachRow"})
    assert status == 200
    assert [json.loads(line) for line in body.splitlines()] == [
        {"entity": "seg-0", "value": 0}, {"entity": "seg-1", "value": 1}]
    assert headers["x-clickhouse-format"] == "JSONEachRow"
    assert headers["content-type"].startswith("application/x-ndjson")
    assert headers["x-clickhouse-timezone"] and headers["x-clickhouse-server-display-name"]
    assert {"read_rows", "elapsed_ns"} <= set(json.loads(headers["x-clickhouse-summary"]))
    status, headers, body = request(server, method="POST", body=b"SELECT {n:UInt8} + 1 AS v",
                                    params={"param_n": "41", "default_format": "JSONCompact",
                                            "query_id": "my-query"})
    assert json.loads(body)["data"] == [[42]]
    assert headers["x-clickhouse-query-id"] == "my-query"
    # HTTP compression both ways, as the client asks
    query = gzip.compress("SELECT 'nén'".encode())
    status, headers, body = request(server, method="POST", body=query, headers={
        "Content-Encoding": "gzip", "Accept-Encoding": "gzip"})
    assert headers["content-encoding"] == "gzip"
    assert gzip.decompress(body) == "nén\n".encode()
    status, headers, body = request(server, params={"query": "SELECT 1",
                                                    "enable_http_compression": "0"},
                                    headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in headers and body == b"1\n"
    # Native for a client that sends its protocol revision (as Grafana's plugin does)
    status, headers, body = request(server, params={
        "query": "SELECT 1 AS a", "default_format": "Native",
        "client_protocol_version": "54460"})
    assert body == BLOCK_INFO + b"\x01\x01\x01a\x05UInt8\x00\x01"
    # errors the ClickHouse way
    status, headers, body = request(server, params={"query": "SELECT * FROM nowhere"})
    assert (status, headers["x-clickhouse-exception-code"]) == (404, "60")
    assert body.startswith(b"Code: 60. DB::Exception:") and b"(UNKNOWN_TABLE)" in body
    status, headers, body = request(server, params={"query": "SELEC 1"})
    assert (status, headers["x-clickhouse-exception-code"]) == (400, "62")
    assert b"formatQuery" not in body
    status, headers, _ = request(server, method="POST", body=b"SELECT '\xff'")
    assert (status, headers["x-clickhouse-exception-code"]) == (400, "6")
    status, headers, _ = request(server, params={"query": "SELECT 1", "compress": "1"})
    assert headers["x-clickhouse-exception-code"] == "48"


def test_multipart_form_query(server: QueryServer) -> None:
    boundary = "ioc-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"query\"\r\n\r\n"
            "SELECT {v:String} AS v\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"param_v\"\r\n\r\n"
            f"Quảng Nam\r\n--{boundary}--\r\n").encode()
    status, _, data = request(server, method="POST", body=body, headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert (status, data) == (200, "Quảng Nam\n".encode())


def test_run_file_lets_ioc_sql_find_the_server(server: QueryServer) -> None:
    info = discover(server.settings)
    assert info is not None and info.port == server.port and info.pid == os.getpid()
    assert stat.S_IMODE(run_file(server.settings).stat().st_mode) == 0o600
    c = clickhouse_connect.get_client(host=info.host, port=info.port, username=info.user,
                                      password=info.password)
    assert c.command("SELECT 1") == 1
    assert "password" not in repr(info)


def test_users_from_settings_and_the_generated_default(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    users, origin = load_users(s)
    assert list(users) == ["analyst"] and len(users["analyst"]) >= 20
    path = Path(origin)
    assert path == tmp_path / "query-users"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_users(s)[0] == users  # kept, not regenerated
    assert load_users(s.with_(query_users="a:x:y,b:z"))[0] == {"a": "x:y", "b": "z"}
    f = tmp_path / "users.txt"
    f.write_text("# comment\ngrafana:pw1\n\nanalyst:pw2\n")
    assert load_users(s.with_(query_users=f"@{f}")) == ({"grafana": "pw1", "analyst": "pw2"},
                                                        str(f))
    with pytest.raises(QueryUsersError, match="name:password") as err:
        load_users(s.with_(query_users="nopassword"))
    assert "nopassword" not in str(err.value)
    assert "query_users" not in repr(s.with_(query_users="a:secret"))


def test_the_documented_example_queries_run(server: QueryServer) -> None:
    text = (Path(__file__).parents[2] / "docs" / "analysts.md").read_text(encoding="utf-8")
    examples = re.findall(r"```sql\n(.*?)```", text, re.DOTALL)
    assert len(examples) >= 8
    c = client(server)
    for sql in examples:
        c.query(sql.strip().rstrip(";"))  # raises if a documented query does not run


def test_only_the_per_run_admin_may_forget_a_person_and_sql_stays_read_only(
        server: QueryServer) -> None:
    from ioc.connectors.query_server import ADMIN_FORGET, ADMIN_USER, discover

    info = discover(server.settings)
    assert info is not None and info.admin_password and info.admin_password != info.password
    body = json.dumps({"pseudonyms": ["0123456789abcdef"], "dry_run": True}).encode()
    for auth in (("analyst", "s3cret"), (info.user, info.password), (ADMIN_USER, "guess"),
                 None):
        status, headers, _ = request(server, "POST", path=ADMIN_FORGET, body=body, auth=auth)
        assert (status, headers["x-clickhouse-exception-code"]) == (403, "516"), auth
    admin = (ADMIN_USER, info.admin_password)
    status, _, data = request(server, "POST", path=ADMIN_FORGET, body=body, auth=admin)
    assert status == 200 and json.loads(data)["deleted"] == {}
    status, _, data = request(server, "POST", path=ADMIN_FORGET, auth=admin,
                              body=json.dumps({"pseudonyms": ["0905123456"]}).encode())
    assert status == 400 and b"16 lowercase hex" in data
    # the admin credential is not an SQL user: the query path does not know it
    status, _, _ = request(server, params={"query": "SELECT 1"}, auth=admin)
    assert status == 403
