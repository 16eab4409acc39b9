"""The analysts' SQL door: a read-only ClickHouse HTTP interface served by the running platform.

Why: in the embedded default the sink process of ``ioc run`` owns the chDB store and no other
process can open it. This module runs inside that process (a thread next to the sink loop) and
speaks enough of ClickHouse's HTTP interface for clickhouse-connect, curl, Grafana's ClickHouse
data source in HTTP mode (clickhouse-go) and JDBC tools such as DBeaver.

Protocol (what a client may rely on):

- ``GET /ping`` and ``GET /`` → ``Ok.``; ``GET /?query=…`` and ``POST /`` with the query in the
  body, the ``query`` parameter, or both (parameter, newline, body); ``multipart/form-data``
  with a ``query`` field and ``param_*`` fields.
- Parameters: ``database`` (default: the platform's database, ``ioc``), ``default_format``
  (``TabSeparated`` unless the query has a ``FORMAT``), ``param_<name>`` for ``{name:Type}``
  placeholders, ``query_id``, ``client_protocol_version`` (Native is rewritten for it, see
  :mod:`ioc.connectors.native_format`), ``enable_http_compression``. Session, progress and
  buffering parameters are accepted and ignored: every request is its own session.
- Any other parameter is a ClickHouse setting. ``max_execution_time``, ``max_result_rows``,
  ``max_result_bytes`` and ``limit`` may lower the server's caps (never raise them); every other
  setting is applied *after* ``readonly = 1``, so ClickHouse itself refuses any change
  (code 164) — as a ClickHouse server does for a ``readonly = 1`` user.
- Users: HTTP basic auth, ``X-ClickHouse-User``/``X-ClickHouse-Key`` headers, or ``user``/
  ``password`` parameters. Missing credentials → 401 (code 194), wrong ones → 403 (code 516).
- Responses carry ``X-ClickHouse-Format``, ``-Timezone``, ``-Query-Id``, ``-Summary``,
  ``-Server-Display-Name``; errors carry ``X-ClickHouse-Exception-Code`` and the ClickHouse text
  ``Code: N. DB::Exception: … (NAME) (version …)`` with ClickHouse's HTTP status for the code.
- Response compression (gzip, deflate, zstd, br, lz4) follows ``Accept-Encoding`` unless
  ``enable_http_compression=0``; compressed request bodies (``Content-Encoding``) are read.
  ClickHouse's own block compression (``compress=1``/``decompress=1``) and external tables are
  not supported and answer with code 48.

Read-only, with ClickHouse enforcing it: each request gets its own chDB connection on which the
server sets the limits and then ``readonly = 1``; ClickHouse then refuses INSERT, ALTER, DROP,
CREATE, SYSTEM, table functions that touch files or the network, ``SET readonly = 0`` and any
``SETTINGS`` clause that changes something. Before running, the server has ClickHouse parse the
query (``formatQuerySingleLine``): several statements are refused (as ClickHouse's HTTP
interface does), and so are statements other than SELECT/WITH/SHOW/DESCRIBE/EXISTS/EXPLAIN/
SET/USE (``KILL QUERY`` passes ``readonly`` in chDB and could stop the sink's inserts),
``INTO OUTFILE`` (chDB would write the file, bypassing ``readonly``) and the ``file()``
function (chDB reads any file with it, readonly or not; a server limits it to its
user_files_path).

Sharing the engine with the sink — the trade-off: chDB documents that queries on separate
connections of one engine run concurrently and safely, and its calls release the GIL, so
analyst queries do not take a lock the sink needs: a 30-second analyst query does not hold up
an insert for 30 seconds (a global lock would). The price is CPU and memory: analyst queries
compete with the sink for cores, so each runs with ``max_threads`` (default half the cores),
``max_memory_usage`` and a time limit, and at most ``IOC_QUERY_MAX_CONCURRENT`` run at once
(others wait up to the time limit, then get code 202). Results are built in memory (bounded by
the result caps) and sent with a Content-Length; nothing streams.

``ioc sql`` finds the server through ``$IOC_DATA_DIR/run/query-server.json`` (mode 0600): port
and a per-run internal user ``ioc-cli`` whose password changes with every start. Passwords are
never logged, and the access log is off.

**One privileged operation** — deleting a person's data (``ioc privacy forget``, see
:mod:`ioc.infra.privacy_forget`) must work while the platform runs, and only this process can
write the store. It is not SQL: ``POST /ioc/admin/forget`` with ``{"pseudonyms": [...],
"dry_run": bool}`` runs that one function on a connection of its own (not readonly) and
answers with the rows deleted per table. Only the per-run user ``ioc-admin`` may call it; its
password is in the same run file (mode 0600), so only the platform's own OS user — the one who
could stop the platform and open the store anyway — can use it. Analysts' users get 403, and
the analysts' SQL path stays read-only.
"""

from __future__ import annotations

import base64
import contextlib
import email.parser
import email.policy
import gzip
import hmac
import json
import logging
import os
import re
import secrets
import socket
import threading
import time
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ioc.connectors.native_format import UnsupportedNative, native_for_revision
from ioc.infra.settings import Settings

log = logging.getLogger(__name__)

RUN_FILE = "query-server.json"
USERS_FILE = "query-users"
CLI_USER = "ioc-cli"
ADMIN_USER = "ioc-admin"
ADMIN_FORGET = "/ioc/admin/forget"
MAX_BODY_BYTES = 16 * 1024 * 1024

# Parameters the HTTP layer consumes itself (ClickHouse's HTTP handler does the same).
_TRANSPORT = frozenset({
    "query", "database", "default_format", "user", "password", "query_id", "session_id",
    "session_timeout", "session_check", "close_session", "compress", "decompress",
    "buffer_size", "wait_end_of_query", "client_protocol_version", "quota_key", "role",
    "enable_http_compression", "http_zlib_compression_level", "send_progress_in_http_headers",
    "http_headers_progress_interval_ms", "cancel_http_readonly_queries_on_client_close",
    "stacktrace", "add_http_cors_header", "http_response_buffer_size", "http_wait_end_of_query",
    "http_native_compression_disable_checksumming_on_decompress",
})
# Settings a request may only lower: the server's cap applies when absent, 0 or higher.
_CAPPED = ("max_execution_time", "max_result_rows", "max_result_bytes")
_ALLOWED_STATEMENTS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS",
                                 "EXPLAIN", "SET", "USE"})
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_USER_NAME = re.compile(r"^[A-Za-z0-9_.@-]+$")
_STRINGS = re.compile(r"'(?:[^'\\]|\\.)*'|`(?:[^`\\]|\\.)*`|\"(?:[^\"\\]|\\.)*\"", re.DOTALL)
_TRAILING_FORMAT = re.compile(r"\bFORMAT\s+([A-Za-z0-9_]+)\s*$")
_INTO_OUTFILE = re.compile(r"\bINTO\s+OUTFILE\b", re.IGNORECASE)
_QUOTED_STRING = re.compile(r"'(?:[^'\\]|\\.)*'", re.DOTALL)
# Functions that read the server's files and that readonly does not stop in chDB (a ClickHouse
# server confines them to user_files_path): ``file('/any/path')`` would hand out, among others,
# the query users' passwords.
_FILE_FUNCTIONS = re.compile(r"\bfile\s*\(")
_CODE = re.compile(r"Code: (\d+)\.")
_NAME = re.compile(r"\(([A-Z][A-Z0-9_]+)\)\s*$")
_FORMAT_QUERY_SCOPE = re.compile(r":? In scope SELECT formatQuerySingleLine\(.*\)\. \((\w+)\)$",
                                 re.DOTALL)

# HTTP status per ClickHouse error code, as ClickHouse's HTTP handler maps them.
_STATUS = {194: 401, 192: 403, 193: 403, 516: 403, 164: 403, 497: 403,
           6: 400, 27: 400, 36: 400, 62: 400, 117: 400, 53: 400, 456: 400, 408: 400,
           46: 404, 47: 404, 50: 404, 60: 404, 63: 404, 73: 404, 81: 404, 115: 404,
           229: 413, 48: 501, 202: 503}
_CODE_NAMES = {6: "CANNOT_PARSE_TEXT", 48: "NOT_IMPLEMENTED", 62: "SYNTAX_ERROR",
               73: "UNKNOWN_FORMAT", 89: "UNKNOWN_COMPRESSION_METHOD", 164: "READONLY",
               194: "REQUIRED_PASSWORD", 202: "TOO_MANY_SIMULTANEOUS_QUERIES",
               229: "QUERY_IS_TOO_LARGE", 271: "CANNOT_DECOMPRESS",
               358: "INTO_OUTFILE_NOT_ALLOWED", 408: "BAD_REQUEST_PARAMETER",
               497: "ACCESS_DENIED",
               516: "AUTHENTICATION_FAILED", 1001: "STD_EXCEPTION"}


class QueryServerError(Exception):
    """A ClickHouse-style error: ``code`` and the full ``Code: N. DB::Exception: …`` text."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text

    @classmethod
    def of(cls, code: int, message: str) -> QueryServerError:
        name = _CODE_NAMES.get(code, "UNKNOWN_EXCEPTION")
        return cls(code, f"Code: {code}. DB::Exception: {message}. ({name})")

    @classmethod
    def from_engine(cls, exc: BaseException, user: str) -> QueryServerError:
        text = str(exc).strip()
        idx = text.find("Code: ")
        text = text[idx:] if idx > 0 else text
        m = _CODE.match(text)
        code = int(m.group(1)) if m else 1001
        # chDB runs everything as its internal user ``default``; name the analyst instead.
        text = text.replace("DB::Exception: default: ", f"DB::Exception: {user}: ", 1)
        return cls(code, text)


# -- users ------------------------------------------------------------------------------------

class QueryUsersError(ValueError):
    pass


def _parse_users(lines: list[str], origin: str) -> dict[str, str]:
    users: dict[str, str] = {}
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, password = line.partition(":")
        name = name.strip()
        if not sep or not _USER_NAME.match(name) or not password:
            raise QueryUsersError(f"{origin}: entry {number} is not name:password "
                                  "(names: letters, digits, . _ - @)")
        users[name] = password
    if not users:
        raise QueryUsersError(f"{origin}: no users")
    return users


def users_file(settings: Settings) -> Path:
    return settings.data_dir / USERS_FILE


def load_users(settings: Settings, create: bool = True) -> tuple[dict[str, str], str]:
    """The analysts' users and where they come from (for messages; never the passwords).

    ``IOC_QUERY_USERS`` inline (``a:pw,b:pw``) or as ``@file``; unset, the file
    ``$IOC_DATA_DIR/query-users``, created with one ``analyst`` user and a random password
    (mode 0600) when ``create`` and it does not exist yet.
    """
    spec = settings.query_users
    if spec and spec.startswith("@"):
        path = Path(spec[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise QueryUsersError(f"IOC_QUERY_USERS file {path}: {exc.strerror}") from None
        return _parse_users(text.splitlines(), str(path)), str(path)
    if spec:
        return _parse_users(spec.split(","), "IOC_QUERY_USERS"), "IOC_QUERY_USERS"
    path = users_file(settings)
    if not path.exists():
        if not create:
            return {}, str(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        body = ("# Users of the IOC query server (ClickHouse HTTP, read-only): name:password\n"
                f"analyst:{secrets.token_urlsafe(18)}\n")
        _write_private(path, body)
    return _parse_users(path.read_text(encoding="utf-8").splitlines(), str(path)), str(path)


def describe(settings: Settings) -> str | None:
    """Where analysts connect while the platform runs (creates the default user's password
    file on first use); None when the query server is off or not needed (a ClickHouse server).
    Raises :class:`QueryUsersError` for unusable user settings."""
    if not settings.query_port or settings.chdb_path is None:
        return None
    users, origin = load_users(settings, create=True)
    return (f"SQL for analysts at http://{settings.query_host}:{settings.query_port} "
            f"(ClickHouse HTTP, read-only); users {', '.join(sorted(users))}, passwords in "
            f"{origin}")


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by the owner only, atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


# -- discovery (for ``ioc sql``) --------------------------------------------------------------

@dataclass(frozen=True)
class ServerInfo:
    host: str
    port: int
    pid: int
    user: str
    password: str = field(repr=False)
    admin_password: str = field(default="", repr=False)


def run_file(settings: Settings) -> Path:
    return settings.run_dir / RUN_FILE


def discover(settings: Settings) -> ServerInfo | None:
    """The query server of a platform running on this data dir, if its process is alive."""
    try:
        data = json.loads(run_file(settings).read_text(encoding="utf-8"))
        info = ServerInfo(str(data["host"]), int(data["port"]), int(data["pid"]),
                          str(data["user"]), str(data["password"]),
                          str(data.get("admin_password") or ""))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(info.pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return info


# -- the engine side --------------------------------------------------------------------------

@dataclass(frozen=True)
class Limits:
    max_execution_s: float
    max_result_rows: int
    max_result_bytes: int
    max_memory_bytes: int
    max_threads: int
    max_concurrent: int

    @classmethod
    def from_settings(cls, s: Settings) -> Limits:
        threads = s.query_max_threads or max(1, (os.cpu_count() or 2) // 2)
        return cls(s.query_max_execution_s, s.query_max_result_rows, s.query_max_result_bytes,
                   s.query_max_memory_bytes, threads, max(1, s.query_max_concurrent))


@dataclass
class Answer:
    body: bytes
    fmt: str
    read_rows: int = 0
    read_bytes: int = 0
    elapsed_s: float = 0.0


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _number(name: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise QueryServerError.of(6, f"Cannot parse setting {name} = {value!r}") from None


class QueryEngine:
    """Runs one request's query on its own chDB connection under ``readonly = 1``."""

    def __init__(self, path: str, limits: Limits, database: str) -> None:
        import chdb

        self._connect = chdb.connect
        self.path = path
        self.limits = limits
        self.database = database
        self._slots = threading.BoundedSemaphore(limits.max_concurrent)
        self._open_lock = threading.Lock()
        conn = self._open()
        try:
            out = conn.query("SELECT version(), timezone()", "TabSeparated").bytes()
            self.version, self.timezone = bytes(out).decode().strip().split("\t")
        finally:
            self._close(conn)

    def _open(self) -> Any:
        with self._open_lock:
            return self._connect(self.path)

    def _close(self, conn: Any) -> None:
        with self._open_lock:
            conn.close()

    def _session(self, conn: Any, settings: Mapping[str, str]) -> None:
        lim = self.limits
        caps: dict[str, float] = {"max_execution_time": lim.max_execution_s,
                                  "max_result_rows": lim.max_result_rows,
                                  "max_result_bytes": lim.max_result_bytes}
        statements = []
        for name, cap in caps.items():
            value = cap
            if name in settings:
                asked = _number(name, settings[name])
                value = cap if asked <= 0 else min(asked, cap)
            statements.append(f"SET {name} = {value:g}" if name == "max_execution_time"
                              else f"SET {name} = {int(value)}")
        if "limit" in settings:
            statements.append(f"SET limit = {int(_number('limit', settings['limit']))}")
        statements += [f"SET max_memory_usage = {lim.max_memory_bytes}",
                       f"SET max_threads = {lim.max_threads}",
                       "SET result_overflow_mode = 'throw'",
                       "SET timeout_overflow_mode = 'throw'",
                       "SET readonly = 1"]
        for stmt in statements:
            conn.query(stmt, "TabSeparated")

    def run(self, sql: str, user: str, database: str | None, default_format: str,
            settings: Mapping[str, str], params: Mapping[str, str], utf8: bool = True
            ) -> Answer:
        if not self._slots.acquire(timeout=self.limits.max_execution_s):
            raise QueryServerError.of(202, f"Too many simultaneous queries (at most "
                                      f"{self.limits.max_concurrent} at once)")
        try:
            conn = self._open()
            try:
                return self._run(conn, sql, user, database, default_format, settings, params,
                                 utf8)
            finally:
                self._close(conn)
        finally:
            self._slots.release()

    def _run(self, conn: Any, sql: str, user: str, database: str | None, default_format: str,
             settings: Mapping[str, str], params: Mapping[str, str], utf8: bool) -> Answer:
        try:
            self._session(conn, settings)
            # Everything else goes to ClickHouse after readonly = 1: it accepts a value equal to
            # the current one and refuses any change (code 164).
            for name, value in settings.items():
                if name in _CAPPED or name == "limit":
                    continue
                if not _IDENT.match(name):
                    raise QueryServerError.of(408, f"Bad setting name {name!r}")
                conn.query(f"SET {name} = {_quote(value)}", "TabSeparated")
            conn.query(f"USE `{(database or self.database).replace('`', '')}`", "TabSeparated")
        except QueryServerError:
            raise
        except Exception as exc:
            raise QueryServerError.from_engine(exc, user) from None
        fmt = self._check(conn, sql, user) or default_format
        if not utf8:
            raise QueryServerError.of(6, "The query is not valid UTF-8")
        try:
            result = conn.query(sql, default_format, params=dict(params))
        except Exception as exc:
            raise QueryServerError.from_engine(exc, user) from None
        body = bytes(result.bytes() or b"")
        try:
            return Answer(body, fmt, int(result.rows_read()), int(result.bytes_read()),
                          float(result.elapsed()))
        except Exception:
            return Answer(body, fmt)

    def _check(self, conn: Any, sql: str, user: str) -> str | None:
        """Let ClickHouse parse the query; refuse what readonly does not stop. Returns the
        query's own FORMAT, if any."""
        try:
            canonical = bytes(conn.query(f"SELECT formatQuerySingleLine({_quote(sql)})",
                                         "TabSeparatedRaw").bytes()).decode()
        except Exception as exc:
            err = QueryServerError.from_engine(exc, user)
            text = _FORMAT_QUERY_SCOPE.sub(r". (\1)", err.text)
            raise QueryServerError(err.code, text) from None
        code = _STRINGS.sub(" ", canonical).strip()
        first = code.lstrip("( ").split(None, 1)[0].upper() if code.lstrip("( ") else ""
        if first not in _ALLOWED_STATEMENTS:
            raise QueryServerError.of(164, f"{user}: Cannot execute query in readonly mode: "
                                      "the IOC query server runs SELECT, WITH, SHOW, DESCRIBE, "
                                      "EXISTS, EXPLAIN, SET and USE only")
        if _INTO_OUTFILE.search(code):
            raise QueryServerError.of(358, "INTO OUTFILE is not allowed")
        names = _QUOTED_STRING.sub("''", canonical).replace("`", " ").replace('"', " ")
        if _FILE_FUNCTIONS.search(names):
            raise QueryServerError.of(497, f"{user}: Not enough privileges: the IOC query "
                                      "server does not read the server's files (file())")
        m = _TRAILING_FORMAT.search(code)
        return m.group(1) if m else None


# -- HTTP -------------------------------------------------------------------------------------

def _content_type(fmt: str) -> str:
    f = fmt.lower()
    if f.startswith(("tabseparated", "tsv")):
        return "text/tab-separated-values; charset=UTF-8"
    if f.startswith("csv"):
        header = "present" if "withnames" in f else "absent"
        return f"text/csv; charset=UTF-8; header={header}"
    if "eachrow" in f or f in ("jsonlines", "ndjson"):
        return "application/x-ndjson; charset=UTF-8"
    if f.startswith("json"):
        return "application/json; charset=UTF-8"
    if f == "xml":
        return "application/xml; charset=UTF-8"
    if f.startswith(("native", "rowbinary", "parquet", "arrow", "orc", "avro", "msgpack",
                     "protobuf", "capnproto")):
        return "application/octet-stream"
    return "text/plain; charset=UTF-8"


def _decompress(data: bytes, encoding: str) -> bytes:
    enc = encoding.strip().lower()
    try:
        if enc in ("", "identity"):
            return data
        if enc == "gzip":
            return gzip.decompress(data)
        if enc == "deflate":
            return zlib.decompress(data)
        import cramjam

        if enc == "zstd":
            return bytes(cramjam.zstd.decompress(data))
        if enc == "br":
            return bytes(cramjam.brotli.decompress(data))
        if enc == "lz4":
            return bytes(cramjam.lz4.decompress(data))
    except Exception:
        raise QueryServerError.of(271, f"Cannot decompress the request body ({enc})") from None
    raise QueryServerError.of(89, f"Unknown Content-Encoding {encoding!r}")


def _compress(data: bytes, accept: str) -> tuple[bytes, str | None]:
    """ClickHouse's choice: the first of gzip, deflate, zstd, br, lz4 the client accepts."""
    methods = {m.split(";")[0].strip().lower() for m in accept.split(",")}
    if "gzip" in methods:
        return gzip.compress(data, compresslevel=3), "gzip"
    if "deflate" in methods:
        return zlib.compress(data, 3), "deflate"
    import cramjam

    if "zstd" in methods:
        return bytes(cramjam.zstd.compress(data)), "zstd"
    if "br" in methods:
        return bytes(cramjam.brotli.compress(data)), "br"
    if "lz4" in methods:
        return bytes(cramjam.lz4.compress(data)), "lz4"
    return data, None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ioc-query-server"
    sys_version = ""
    timeout = 120  # idle keep-alive connections are closed after this
    server: _Server

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        return  # no access log: URLs may carry passwords

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def _handle(self) -> None:
        query_id = str(uuid.uuid4())
        try:
            url = urlsplit(self.path)
            params = dict(parse_qsl(url.query, keep_blank_values=True))
            query_id = params.get("query_id") or query_id
            body = self._read_body()
            if url.path in ("/ping", "/replicas_status"):
                self._send(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
                return
            if url.path == ADMIN_FORGET and self.command == "POST":
                self._admin_forget(body, query_id)
                return
            if url.path != "/":
                raise QueryServerError.of(48, f"There is no handle {url.path}: use / for "
                                          "queries and /ping for health checks")
            if self.command == "GET" and "query" not in params:
                self._send(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
                return
            body = _decompress(body, self.headers.get("Content-Encoding", ""))
            ctype = self.headers.get("Content-Type", "")
            if ctype.lower().startswith("multipart/form-data"):
                body = self._form(ctype, body, params)
            user = self._authenticate(params)
            self._query(user, params, body, query_id)
        except QueryServerError as exc:
            self._error(exc, query_id)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as exc:  # a bug here must not kill the thread silently
            log.exception("query server: unexpected error")
            self._error(QueryServerError.of(1001, f"{type(exc).__name__}"), query_id)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks, total = [], 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > MAX_BODY_BYTES:
                    self.close_connection = True
                    raise QueryServerError.of(229, "Request body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            raise QueryServerError.of(229, f"Request body too large (at most {MAX_BODY_BYTES} "
                                      "bytes)")
        return self.rfile.read(length) if length > 0 else b""

    def _form(self, ctype: str, body: bytes, params: dict[str, str]) -> bytes:
        """multipart/form-data: the ``query`` and ``param_*`` fields (external tables: no)."""
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {ctype}\r\n\r\n".encode() + body)
        query = b""
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            raw = part.get_payload(decode=True)
            payload = raw if isinstance(raw, bytes) else b""
            if part.get_filename() is not None:
                raise QueryServerError.of(48, "External tables are not supported by the IOC "
                                          "query server")
            if name == "query":
                query = payload
            elif isinstance(name, str):
                params[name] = payload.decode("utf-8", "replace")
        return query

    def _authenticate(self, params: dict[str, str]) -> str:
        user = self.headers.get("X-ClickHouse-User")
        password = self.headers.get("X-ClickHouse-Key")
        auth = self.headers.get("Authorization", "")
        if user is None and auth.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(auth[6:].strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                user = ""
        if user is None and "user" in params:
            user, password = params["user"], params.get("password", "")
        if not user:
            raise QueryServerError.of(194, "Authentication required: send a user and password "
                                      "(HTTP basic auth or X-ClickHouse-User/X-ClickHouse-Key)")
        expected = self.server.users.get(user)
        ok = hmac.compare_digest((password or "").encode(), (expected or "\0").encode())
        if expected is None or not ok:
            time.sleep(0.05)  # a little friction for password guessing
            raise QueryServerError.of(516, f"{user}: Authentication failed: password is "
                                      "incorrect, or there is no user with such name")
        return user

    def _admin_forget(self, body: bytes, query_id: str) -> None:
        """``ioc privacy forget`` on the running platform (see the module doc)."""
        from ioc.infra.privacy_forget import ChdbSql, forget

        user, password = "", ""
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(auth[6:].strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                user = ""
        expected = self.server.admin_password
        if user != ADMIN_USER or not expected or not hmac.compare_digest(
                password.encode(), expected.encode()):
            time.sleep(0.05)
            raise QueryServerError.of(516, f"{user or 'anonymous'}: only {ADMIN_USER} (the "
                                      "platform's per-run admin credential) may do this")
        try:
            request = json.loads(body or b"{}")
            pseudonyms = [str(p) for p in request["pseudonyms"]]
            dry_run = bool(request.get("dry_run", False))
        except (ValueError, KeyError, TypeError):
            raise QueryServerError.of(408, 'expected JSON {"pseudonyms": [...], '
                                      '"dry_run": false}') from None
        engine = self.server.engine
        conn = engine._open()
        try:
            result = forget(ChdbSql(conn), engine.database, pseudonyms, dry_run)
        except ValueError as exc:
            raise QueryServerError.of(408, str(exc)) from None
        except Exception as exc:
            raise QueryServerError.from_engine(exc, ADMIN_USER) from None
        finally:
            engine._close(conn)
        log.warning("privacy: %s rows of %d pseudonym(s) (%s)",
                    "counted" if dry_run else "deleted", len(pseudonyms),
                    ", ".join(f"{t} {n}" for t, n in result.deleted.items()) or "none")
        self._send(200, json.dumps(result.as_dict()).encode(),
                   {"Content-Type": "application/json; charset=UTF-8",
                    "X-ClickHouse-Query-Id": query_id})

    def _query(self, user: str, params: dict[str, str], body: bytes, query_id: str) -> None:
        if params.get("compress", "0") not in ("0", "false") or \
                params.get("decompress", "0") not in ("0", "false"):
            raise QueryServerError.of(48, "ClickHouse block compression (compress=1 / "
                                      "decompress=1) is not supported by the IOC query server; "
                                      "use HTTP compression (enable_http_compression=1) or none")
        # An INSERT carries binary data after its query: decode leniently so that ClickHouse's
        # parser still sees (and the server refuses) the statement; a SELECT must be UTF-8.
        raw = params.get("query", "").encode() + (b"\n" + body if params.get("query") and body
                                                   else body)
        try:
            text, utf8 = raw.decode(), True
        except UnicodeDecodeError:
            text, utf8 = raw.decode("utf-8", "replace"), False
        if not text.strip():
            raise QueryServerError.of(62, "Empty query")
        default_format = params.get("default_format") or "TabSeparated"
        if not _IDENT.match(default_format):
            raise QueryServerError.of(73, f"Unknown format {default_format!r}")
        try:
            revision = int(params.get("client_protocol_version") or 0)
        except ValueError:
            raise QueryServerError.of(408, "client_protocol_version must be a number") from None
        settings = {k: v for k, v in params.items()
                    if k not in _TRANSPORT and not k.startswith("param_")}
        query_params = {k[6:]: v for k, v in params.items() if k.startswith("param_")}
        engine = self.server.engine
        answer = engine.run(text, user, params.get("database"), default_format, settings,
                            query_params, utf8)
        data = answer.body
        if answer.fmt == "Native" and revision:
            try:
                data = native_for_revision(data, revision)
            except UnsupportedNative as exc:
                raise QueryServerError.of(48, str(exc)) from None
        summary = {"read_rows": str(answer.read_rows), "read_bytes": str(answer.read_bytes),
                   "written_rows": "0", "written_bytes": "0",
                   "total_rows_to_read": str(answer.read_rows), "result_bytes": str(len(data)),
                   "elapsed_ns": str(int(answer.elapsed_s * 1e9))}
        headers = {"Content-Type": _content_type(answer.fmt),
                   "X-ClickHouse-Format": answer.fmt,
                   "X-ClickHouse-Timezone": engine.timezone,
                   "X-ClickHouse-Query-Id": query_id,
                   "X-ClickHouse-Summary": json.dumps(summary, separators=(",", ":")),
                   "X-ClickHouse-Server-Display-Name": self.server.display_name}
        if params.get("enable_http_compression", "1") not in ("0", "false"):
            data, encoding = _compress(data, self.headers.get("Accept-Encoding", ""))
            if encoding:
                headers["Content-Encoding"] = encoding
        self._send(200, data, headers)

    def _error(self, exc: QueryServerError, query_id: str) -> None:
        version = getattr(self.server.engine, "version", "")
        text = exc.text if "(version " in exc.text else f"{exc.text} (version {version})"
        headers = {"Content-Type": "text/plain; charset=UTF-8",
                   "X-ClickHouse-Exception-Code": str(exc.code),
                   "X-ClickHouse-Query-Id": query_id,
                   "X-ClickHouse-Server-Display-Name": self.server.display_name}
        status = _STATUS.get(exc.code, 500)
        if exc.code == 194:
            headers["WWW-Authenticate"] = 'Basic realm="IOC query server"'
        with contextlib.suppress(OSError):
            self._send(status, (text + "\n").encode(), headers)

    def _send(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], engine: QueryEngine,
                 users: dict[str, str], admin_password: str = "") -> None:
        super().__init__(address, _Handler)
        self.engine = engine
        self.users = users
        self.admin_password = admin_password
        self.display_name = socket.gethostname()


class QueryServer:
    """The HTTP server thread; ``start`` binds and publishes the run file, ``stop`` undoes."""

    def __init__(self, settings: Settings, users: dict[str, str] | None = None) -> None:
        path = settings.chdb_path
        if path is None:
            raise ValueError("the query server serves the embedded store (chdb://) only")
        self.settings = settings
        self.users = dict(users if users is not None else load_users(settings)[0])
        self._cli_password = secrets.token_urlsafe(24)
        self.users[CLI_USER] = self._cli_password
        self.users.pop(ADMIN_USER, None)  # never an analyst's name
        self._admin_password = secrets.token_urlsafe(24)
        self.engine = QueryEngine(path, Limits.from_settings(settings), settings.database)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def start(self, publish: bool = True) -> None:
        s = self.settings
        self._server = _Server((s.query_host, s.query_port), self.engine, self.users,
                               self._admin_password if publish else "")
        self._thread = threading.Thread(target=self._server.serve_forever, name="ioc-query",
                                        kwargs={"poll_interval": 0.5}, daemon=True)
        self._thread.start()
        if publish:
            host = "127.0.0.1" if s.query_host in ("0.0.0.0", "", "::") else s.query_host  # noqa: S104
            s.run_dir.mkdir(parents=True, exist_ok=True)
            _write_private(run_file(s), json.dumps({
                "host": host, "port": self.port, "pid": os.getpid(), "user": CLI_USER,
                "password": self._cli_password, "admin_password": self._admin_password}))

    def stop(self) -> None:
        if self._server is None:
            return
        with contextlib.suppress(OSError):
            info = discover(self.settings)
            if info is not None and info.pid == os.getpid():
                run_file(self.settings).unlink()
        self._server.shutdown()
        self._server.server_close()
        self._server = None
