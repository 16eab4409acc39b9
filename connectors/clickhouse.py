"""One way to reach ClickHouse: clickhouse-connect, embedded (chDB) or a server, by one URL.

``chdb://<dir>`` opens the embedded engine (one engine per process: a second process cannot
open the same directory while the first has it); ``http(s)://user:pass@host:8123`` a server.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import clickhouse_connect


class ClickHouseUnavailable(RuntimeError):
    pass


def connect(url: str, **settings: Any) -> Any:
    parsed = urlparse(url)
    if parsed.scheme == "chdb":
        path = url[len("chdb://"):]
        try:
            return clickhouse_connect.get_client(dsn=f"chdb://{path}", settings=settings or None)
        except Exception as exc:
            raise ClickHouseUnavailable(
                f"cannot open the embedded ClickHouse at {path}: {exc}. Only one process can "
                "use an embedded store at a time: while `ioc run`/`ioc demo` runs, query it "
                "through its query server (IOC_QUERY_PORT, on unless set to 0), stop it first, "
                "or point IOC_CLICKHOUSE_URL at a ClickHouse server.") from None
    if parsed.scheme in ("http", "https"):
        try:
            return clickhouse_connect.get_client(dsn=url, settings=settings or None)
        except Exception as exc:
            safe = url.replace(parsed.password or "\0", "***") if parsed.password else url
            raise ClickHouseUnavailable(f"cannot reach ClickHouse at {safe}: {exc}") from None
    raise ClickHouseUnavailable(f"IOC_CLICKHOUSE_URL must start with chdb://, http:// or "
                                f"https://, got {url!r}")
