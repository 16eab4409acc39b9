"""Platform settings: one object, read from the environment in one place.

Environment names (all optional):

- ``IOC_DATA_DIR`` — where everything local lives (default ``./var``): the embedded ClickHouse
  (chDB) data, the local Kafka broker's log dirs and jars, run files.
- ``IOC_KAFKA_BOOTSTRAP`` — ``host:port[,host:port]`` of an existing Kafka cluster. When unset,
  the commands use the local broker that ``ioc kafka up`` runs (``127.0.0.1:$IOC_KAFKA_PORT``).
- ``IOC_KAFKA_PORT`` — client port of the local broker (default 19092; controller uses +1).
- ``IOC_CLICKHOUSE_URL`` — ``chdb://<dir>`` (embedded, default ``chdb://$IOC_DATA_DIR/clickhouse``)
  or ``http(s)://user:password@host:8123`` for a ClickHouse server.
- ``IOC_TOPIC_PARTITIONS`` — partitions for topics that ``ioc setup`` creates (default 3).
- ``IOC_METRICS_PORT`` — Prometheus metrics port of ``ioc run`` (default 9464; 0 disables).
- ``IOC_QUERY_*`` — the analysts' query server (a read-only ClickHouse HTTP interface that
  ``ioc run`` serves from the process owning the embedded store, see
  :mod:`ioc.connectors.query_server`):
  - ``IOC_QUERY_PORT`` — its port (default 8124; ``0`` turns it off).
  - ``IOC_QUERY_HOST`` — the address it listens on (default ``127.0.0.1``; ``0.0.0.0`` for the LAN).
  - ``IOC_QUERY_USERS`` — ``name:password,name2:password2``, or ``@/path/to/file`` with one
    ``name:password`` per line. Unset: an ``analyst`` user with a generated password kept in
    ``$IOC_DATA_DIR/query-users`` (mode 0600). Never logged.
  - ``IOC_QUERY_MAX_EXECUTION_S`` — time limit of one query (default 30).
  - ``IOC_QUERY_MAX_RESULT_ROWS`` / ``IOC_QUERY_MAX_RESULT_BYTES`` — result caps (default
    1 000 000 rows, 100 MiB).
  - ``IOC_QUERY_MAX_MEMORY_BYTES`` — memory of one query (default 2 GiB).
  - ``IOC_QUERY_MAX_THREADS`` — threads of one query (default 0: half the cores, at least 1).
  - ``IOC_QUERY_MAX_CONCURRENT`` — queries running at once (default 4; more wait, then fail).
- ``IOC_ALLOWED_LATENESS_S`` — how long after a window's end late events are still counted
  (default 120 s).
- ``IOC_TOPIC_PREFIX`` — prefix for every topic name; tests use it to keep runs apart (default "").
- ``IOC_CLICKHOUSE_DATABASE`` — database name (default ``ioc``).
- ``IOC_REFERENCE_DIR`` — folder with ``areas.csv`` and ``road_segments.csv`` (default: the
  files shipped in ``infra/reference``, Quảng Nam's 18 district-level units).

Components receive a ``Settings`` instance; they never read the environment themselves.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("var")
    kafka_bootstrap: str | None = None
    kafka_port: int = 19092
    clickhouse_url: str | None = None
    topic_partitions: int = 3
    metrics_port: int = 9464
    query_port: int = 8124
    query_host: str = "127.0.0.1"
    query_users: str | None = field(default=None, repr=False)  # secrets: never in a repr
    query_max_execution_s: float = 30.0
    query_max_result_rows: int = 1_000_000
    query_max_result_bytes: int = 100 * 1024 * 1024
    query_max_memory_bytes: int = 2 * 1024 * 1024 * 1024
    query_max_threads: int = 0
    query_max_concurrent: int = 4
    allowed_lateness_s: float = 120.0
    topic_prefix: str = ""
    database: str = "ioc"
    reference_dir: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        d = cls()
        return cls(
            data_dir=Path(env.get("IOC_DATA_DIR", str(d.data_dir))),
            kafka_bootstrap=env.get("IOC_KAFKA_BOOTSTRAP") or None,
            kafka_port=int(env.get("IOC_KAFKA_PORT", d.kafka_port)),
            clickhouse_url=env.get("IOC_CLICKHOUSE_URL") or None,
            topic_partitions=int(env.get("IOC_TOPIC_PARTITIONS", d.topic_partitions)),
            metrics_port=int(env.get("IOC_METRICS_PORT", d.metrics_port)),
            query_port=int(env.get("IOC_QUERY_PORT", d.query_port)),
            query_host=env.get("IOC_QUERY_HOST", d.query_host),
            query_users=env.get("IOC_QUERY_USERS") or None,
            query_max_execution_s=float(env.get("IOC_QUERY_MAX_EXECUTION_S",
                                                d.query_max_execution_s)),
            query_max_result_rows=int(env.get("IOC_QUERY_MAX_RESULT_ROWS",
                                              d.query_max_result_rows)),
            query_max_result_bytes=int(env.get("IOC_QUERY_MAX_RESULT_BYTES",
                                               d.query_max_result_bytes)),
            query_max_memory_bytes=int(env.get("IOC_QUERY_MAX_MEMORY_BYTES",
                                               d.query_max_memory_bytes)),
            query_max_threads=int(env.get("IOC_QUERY_MAX_THREADS", d.query_max_threads)),
            query_max_concurrent=int(env.get("IOC_QUERY_MAX_CONCURRENT",
                                             d.query_max_concurrent)),
            allowed_lateness_s=float(env.get("IOC_ALLOWED_LATENESS_S", d.allowed_lateness_s)),
            topic_prefix=env.get("IOC_TOPIC_PREFIX", d.topic_prefix),
            database=env.get("IOC_CLICKHOUSE_DATABASE", d.database),
            reference_dir=Path(env["IOC_REFERENCE_DIR"]) if env.get("IOC_REFERENCE_DIR") else None,
        )

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def bootstrap(self) -> str:
        """Kafka bootstrap servers: the configured cluster or the local broker."""
        return self.kafka_bootstrap or f"127.0.0.1:{self.kafka_port}"

    @property
    def uses_local_kafka(self) -> bool:
        return self.kafka_bootstrap is None

    @property
    def clickhouse(self) -> str:
        return self.clickhouse_url or f"chdb://{(self.data_dir / 'clickhouse').resolve()}"

    @property
    def kafka_dir(self) -> Path:
        return self.data_dir / "kafka"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def chdb_path(self) -> str | None:
        """The embedded store's directory as chDB compares it (real path), or None for a server."""
        url = self.clickhouse
        if not url.startswith("chdb://"):
            return None
        return os.path.realpath(url[len("chdb://"):])

    def topic(self, name: str) -> str:
        """Physical topic name for a contract name such as ``ioc.traffic.flow.v1``."""
        return f"{self.topic_prefix}{name}"
