"""A writable ClickHouse HTTP endpoint over an embedded chDB store, for fault tests.

There is no ClickHouse server on this machine, and the platform's own query server is
read-only. To let the sink write to ClickHouse *over the network* (``IOC_CLICKHOUSE_URL=
http://…``) — so that a test can take the store away at a real boundary (a TCP proxy it stops,
see :mod:`outage`) — this process owns a chDB store and answers ClickHouse's HTTP protocol as
far as clickhouse-connect uses it: ``/ping``; queries in the ``query`` parameter or the body,
results in the requested format (Native rewritten for the client's protocol revision); inserts
as ``INSERT INTO t (cols) FORMAT X`` in the ``query`` parameter or on the body's first line,
with the data in the body (decompressed per ``Content-Encoding``), which chDB, having no input
stream, reads back from a temporary file with ``file()``. Every other parameter is a ClickHouse
setting (``SET`` on the connection for that request), so ``insert_deduplication_token`` works
as on a server. Errors come back as ClickHouse sends them (``X-ClickHouse-Exception-Code``,
HTTP 500, the ``Code: N.`` text). Not for production: no users, no limits, one request at a
time.

Run: ``python chdb_http_server.py STORE_DIR PORT`` (stops on SIGTERM, closing the store).
"""

from __future__ import annotations

import os
import re
import signal
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ioc.connectors.native_format import native_for_revision
from ioc.connectors.query_server import _decompress  # the same request decoding as the server

_TRANSPORT = frozenset({
    "query", "database", "default_format", "user", "password", "query_id", "session_id",
    "session_timeout", "session_check", "close_session", "compress", "decompress",
    "buffer_size", "wait_end_of_query", "client_protocol_version", "quota_key",
    "enable_http_compression", "send_progress_in_http_headers",
    "http_headers_progress_interval_ms", "cancel_http_readonly_queries_on_client_close",
})
_INSERT_DATA = re.compile(r"^\s*INSERT\s+INTO\s+(.+?)\s+FORMAT\s+(\w+)\s*$",
                          re.IGNORECASE | re.DOTALL)
_INSERT_HEAD = re.compile(rb"\s*(INSERT\s+INTO\s+.+?\s+FORMAT\s+\w+)[ \t]*\r?\n",
                          re.IGNORECASE | re.DOTALL)
_TRAILING_FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
_CODE = re.compile(r"Code: (\d+)\.")


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class _Store:
    def __init__(self, path: str) -> None:
        import chdb

        self.path = path
        self._connect = chdb.connect
        self._lock = threading.Lock()  # one request at a time: plenty for one sink
        self.spool = Path(tempfile.mkdtemp(prefix="chdb-http-"))
        conn = chdb.connect(path)
        self.timezone = bytes(conn.query("SELECT timezone()", "TabSeparated").bytes()
                              ).decode().strip()
        self._conn = conn

    def run(self, sql: str, data: bytes | None, settings: dict[str, str],
            params: dict[str, str], database: str | None, fmt: str) -> bytes:
        with self._lock:
            conn = self._conn
            for name, value in settings.items():
                conn.query(f"SET {name} = {_quote(value)}", "TabSeparated")
            try:
                if database:
                    conn.query(f"USE `{database}`", "TabSeparated")
                if data is not None:
                    m = _INSERT_DATA.match(sql)
                    if m is None:
                        raise ValueError("Code: 62. DB::Exception: only INSERT … FORMAT X takes "
                                         "data in the body. (SYNTAX_ERROR)")
                    spool = self.spool / f"{threading.get_ident()}.{m.group(2)}"
                    spool.write_bytes(data)
                    sql = (f"INSERT INTO {m.group(1)} SELECT * FROM "
                           f"file('{spool}', '{m.group(2)}')")
                    conn.query(sql, "TabSeparated")
                    return b""
                return bytes(conn.query(sql, fmt, params=params).bytes() or b"")
            finally:
                for name in settings:  # the next request starts from the defaults
                    conn.query(f"SET {name} = DEFAULT", "TabSeparated")

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        body = self._read_body()
        if url.path == "/ping" or (self.command == "GET" and "query" not in params):
            self._send(200, b"Ok.\n", {})
            return
        try:
            body = _decompress(body, self.headers.get("Content-Encoding", ""))
            query = params.get("query", "")
            data: bytes | None = None
            head = _INSERT_HEAD.match(body) if not query else None
            if query and body:  # INSERT … FORMAT X in the parameter, data in the body
                data = body
            elif head is not None:  # the statement's line, then the data (clickhouse-connect)
                query, data = head.group(1).decode(), body[head.end():]
            elif body:
                query = body.decode()
            m = _TRAILING_FORMAT.search(query)
            fmt = m.group(1) if m else params.get("default_format") or "TabSeparated"
            settings = {k: v for k, v in params.items()
                        if k not in _TRANSPORT and not k.startswith("param_")}
            qparams = {k[6:]: v for k, v in params.items() if k.startswith("param_")}
            out = self.server.store.run(query, data, settings, qparams, params.get("database"),
                                        fmt)
            revision = int(params.get("client_protocol_version") or 0)
            if fmt == "Native" and revision and out:
                out = native_for_revision(out, revision)
        except Exception as exc:
            text = str(exc).strip()
            text = text[text.find("Code: "):] if "Code: " in text else f"Code: 1001. {text}"
            code = _CODE.match(text)
            self._send(500, (text + "\n").encode(),
                       {"X-ClickHouse-Exception-Code": code.group(1) if code else "1001"})
            return
        self._send(200, out, {"X-ClickHouse-Format": fmt,
                              "X-ClickHouse-Timezone": self.server.store.timezone})

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""
        chunks = []
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return b"".join(chunks)

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, store: _Store) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.store = store


def main() -> None:
    store_dir, port = sys.argv[1], int(sys.argv[2])
    devnull = os.open(os.devnull, os.O_WRONLY)  # chDB writes terminal codes to stdout
    os.dup2(devnull, 1)
    store = _Store(store_dir)
    server = _Server(port, store)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        store.close()


if __name__ == "__main__":
    main()
