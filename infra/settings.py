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
- ``IOC_ALLOWED_LATENESS_S`` — how long after a window's end late events are still counted
  (default 120 s).
- ``IOC_TOPIC_PREFIX`` — prefix for every topic name; tests use it to keep runs apart (default "").
- ``IOC_CLICKHOUSE_DATABASE`` — database name (default ``ioc``).
- ``IOC_REFERENCE_DIR`` — folder with ``areas.csv`` and ``road_segments.csv`` (default: the
  files shipped in ``infra/reference``, Quảng Nam's 18 district-level units).
- ``IOC_SCHEMA_REGISTRY_URL`` — a Confluent-compatible schema registry (``http://host:8081``).
  When set, producers write Confluent framing (``00`` + schema id) with the ids registered by
  ``ioc schemas register``, and readers resolve ids there; unset, single-object encoding.

Components receive a ``Settings`` instance; they never read the environment themselves.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("var")
    kafka_bootstrap: str | None = None
    kafka_port: int = 19092
    clickhouse_url: str | None = None
    topic_partitions: int = 3
    metrics_port: int = 9464
    allowed_lateness_s: float = 120.0
    topic_prefix: str = ""
    database: str = "ioc"
    reference_dir: Path | None = None
    schema_registry_url: str | None = None

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
            allowed_lateness_s=float(env.get("IOC_ALLOWED_LATENESS_S", d.allowed_lateness_s)),
            topic_prefix=env.get("IOC_TOPIC_PREFIX", d.topic_prefix),
            database=env.get("IOC_CLICKHOUSE_DATABASE", d.database),
            reference_dir=Path(env["IOC_REFERENCE_DIR"]) if env.get("IOC_REFERENCE_DIR") else None,
            schema_registry_url=env.get("IOC_SCHEMA_REGISTRY_URL") or None,
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

    def topic(self, name: str) -> str:
        """Physical topic name for a contract name such as ``ioc.traffic.flow.v1``."""
        return f"{self.topic_prefix}{name}"
