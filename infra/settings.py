"""Platform settings: one object, read from the environment in one place.

Environment names (all optional):

- ``IOC_DATA_DIR`` — where everything local lives (default ``./var``): the embedded ClickHouse
  (chDB) data, the local Kafka broker's log dirs and jars, run files.
- ``IOC_KAFKA_BOOTSTRAP`` — ``host:port[,host:port]`` of an existing Kafka cluster. When unset,
  the commands use the local broker that ``ioc kafka up`` runs (``127.0.0.1:$IOC_KAFKA_PORT``).
- ``IOC_KAFKA_PORT`` — client port of the local broker (default 19092; controller uses +1).
- ``IOC_CLICKHOUSE_URL`` — ``chdb://<dir>`` (embedded, default ``chdb://$IOC_DATA_DIR/clickhouse``)
  or ``http(s)://user[:password]@host:8123`` for a ClickHouse server.
- ``IOC_CLICKHOUSE_PASSWORD`` or ``IOC_CLICKHOUSE_PASSWORD_FILE`` — the server password when the
  URL names a user without one (keeps the password out of the URL and the process list).
- ``IOC_TOPIC_PARTITIONS`` — partitions for topics that ``ioc setup`` creates (default 3).
- ``IOC_TOPIC_REPLICATION_FACTOR`` — replicas of the topics that ``ioc setup`` and the Faust
  worker (its internal topics) create (default: the brokers' ``default.replication.factor``
  for ``ioc setup``, 1 for Faust's internal topics). Production: 3.
- ``IOC_METRICS_PORT`` — Prometheus metrics port of ``ioc run`` (default 9464; 0 disables).
- ``IOC_ALLOWED_LATENESS_S`` — how long after a window's end late events are still counted
  (default 120 s).
- ``IOC_TOPIC_PREFIX`` — prefix for every topic name; tests use it to keep runs apart (default "").
- ``IOC_CLICKHOUSE_DATABASE`` — database name (default ``ioc``).
- ``IOC_REFERENCE_DIR`` — folder with ``areas.csv`` and ``road_segments.csv`` (default: the
  files shipped in ``infra/reference``, Quảng Nam's 18 district-level units).
- ``IOC_STALL_TIMEOUT_S`` — the stream worker's watchdog restarts a worker whose event loop or
  backlog made no progress for this long (default 60 s; see ``ioc.infra.watchdog``).

Kafka security (see ``docs/operations.md``; every platform component — producers, the Faust
worker, the sink, admin commands — connects with these):

- ``IOC_KAFKA_SECURITY_PROTOCOL`` — ``PLAINTEXT`` (default, the local demo broker), ``SASL_SSL``
  (production: SCRAM over TLS), ``SSL`` or ``SASL_PLAINTEXT``.
- ``IOC_KAFKA_SASL_MECHANISM`` — ``SCRAM-SHA-512`` (default) or ``SCRAM-SHA-256``.
- ``IOC_KAFKA_USERNAME`` — the SASL user (the platform's principal, e.g. ``ioc-platform``).
- ``IOC_KAFKA_PASSWORD`` or ``IOC_KAFKA_PASSWORD_FILE`` — its password, or a file holding it
  (a mounted Kubernetes Secret). Held as a :class:`Secret`: never printed, logged or exported
  as a metric.
- ``IOC_KAFKA_CA_FILE`` — PEM file of the certificate authority that signed the brokers'
  certificates (default: the system's trust store).

Every place that shows the ClickHouse URL shows :attr:`Settings.clickhouse_display` (password
masked); ``repr(settings)`` shows neither password.

Components receive a ``Settings`` instance; they never read the environment themselves.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256")


class SettingsError(ValueError):
    """The environment describes an unusable configuration; the message says which variable."""


@dataclass(frozen=True)
class Secret:
    """A password or key: ``repr``/``str`` never show it; :meth:`get` does, on purpose."""

    _value: str = field(repr=False)

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("var")
    kafka_bootstrap: str | None = None
    kafka_port: int = 19092
    clickhouse_url: str | None = field(default=None, repr=False)  # may hold a password
    topic_partitions: int = 3
    topic_replication_factor: int | None = None
    metrics_port: int = 9464
    allowed_lateness_s: float = 120.0
    topic_prefix: str = ""
    database: str = "ioc"
    reference_dir: Path | None = None
    stall_timeout_s: float = 60.0
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    kafka_username: str | None = None
    kafka_password: Secret | None = None
    kafka_ca_file: Path | None = None
    clickhouse_password: Secret | None = None

    def __post_init__(self) -> None:
        protocol, mechanism = self.kafka_security_protocol, self.kafka_sasl_mechanism
        if protocol not in SECURITY_PROTOCOLS:
            raise SettingsError(f"IOC_KAFKA_SECURITY_PROTOCOL={protocol!r}: use one of "
                                + ", ".join(SECURITY_PROTOCOLS))
        if protocol.startswith("SASL_"):
            if mechanism not in SASL_MECHANISMS:
                raise SettingsError(f"IOC_KAFKA_SASL_MECHANISM={mechanism!r}: use one of "
                                    + ", ".join(SASL_MECHANISMS))
            if not self.kafka_username or self.kafka_password is None:
                raise SettingsError(f"IOC_KAFKA_SECURITY_PROTOCOL={protocol} needs "
                                    "IOC_KAFKA_USERNAME and IOC_KAFKA_PASSWORD (or "
                                    "IOC_KAFKA_PASSWORD_FILE)")
        if self.kafka_ca_file is not None and not self.kafka_ca_file.is_file():
            raise SettingsError(f"IOC_KAFKA_CA_FILE={self.kafka_ca_file}: no such file")

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
            topic_replication_factor=(int(env["IOC_TOPIC_REPLICATION_FACTOR"])
                                      if env.get("IOC_TOPIC_REPLICATION_FACTOR") else None),
            metrics_port=int(env.get("IOC_METRICS_PORT", d.metrics_port)),
            allowed_lateness_s=float(env.get("IOC_ALLOWED_LATENESS_S", d.allowed_lateness_s)),
            topic_prefix=env.get("IOC_TOPIC_PREFIX", d.topic_prefix),
            database=env.get("IOC_CLICKHOUSE_DATABASE", d.database),
            reference_dir=Path(env["IOC_REFERENCE_DIR"]) if env.get("IOC_REFERENCE_DIR") else None,
            stall_timeout_s=float(env.get("IOC_STALL_TIMEOUT_S", d.stall_timeout_s)),
            kafka_security_protocol=env.get("IOC_KAFKA_SECURITY_PROTOCOL",
                                            d.kafka_security_protocol).upper(),
            kafka_sasl_mechanism=env.get("IOC_KAFKA_SASL_MECHANISM",
                                         d.kafka_sasl_mechanism).upper(),
            kafka_username=env.get("IOC_KAFKA_USERNAME") or None,
            kafka_password=_secret(env, "IOC_KAFKA_PASSWORD"),
            kafka_ca_file=Path(env["IOC_KAFKA_CA_FILE"]) if env.get("IOC_KAFKA_CA_FILE") else None,
            clickhouse_password=_secret(env, "IOC_CLICKHOUSE_PASSWORD"),
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
        """The ClickHouse URL to connect to, with ``IOC_CLICKHOUSE_PASSWORD(_FILE)`` filled in
        when the URL names a user without a password. Never print it: see
        :attr:`clickhouse_display`."""
        url = self.clickhouse_url or f"chdb://{(self.data_dir / 'clickhouse').resolve()}"
        parts = urlsplit(url)
        if self.clickhouse_password is None or parts.password is not None or not parts.username:
            return url
        host = parts.netloc.rpartition("@")[2]
        auth = f"{parts.username}:{quote(self.clickhouse_password.get(), safe='')}"
        return urlunsplit((parts.scheme, f"{auth}@{host}", parts.path, parts.query,
                           parts.fragment))

    @property
    def clickhouse_display(self) -> str:
        """The ClickHouse URL for messages and logs: a password in it is masked."""
        return mask_url(self.clickhouse)

    @property
    def kafka_security(self) -> dict[str, str]:
        """librdkafka (confluent-kafka) properties for the configured security protocol; empty
        for PLAINTEXT. Merge them into every client's config (see :meth:`kafka_config`)."""
        protocol = self.kafka_security_protocol
        if protocol == "PLAINTEXT":
            return {}
        conf = {"security.protocol": protocol}
        if protocol.startswith("SASL_"):
            assert self.kafka_username is not None and self.kafka_password is not None
            conf.update({"sasl.mechanism": self.kafka_sasl_mechanism,
                         "sasl.username": self.kafka_username,
                         "sasl.password": self.kafka_password.get()})
        if protocol in ("SSL", "SASL_SSL") and self.kafka_ca_file is not None:
            conf["ssl.ca.location"] = str(self.kafka_ca_file)
        return conf

    def kafka_config(self, **extra: Any) -> dict[str, Any]:
        """A confluent-kafka client config: bootstrap servers, security, then ``extra``."""
        return {"bootstrap.servers": self.bootstrap, **self.kafka_security, **extra}

    def kafka_ssl_context(self) -> ssl.SSLContext | None:
        """TLS context for asyncio clients (aiokafka / Faust), or None without TLS. Verifies the
        broker's certificate and host name against ``IOC_KAFKA_CA_FILE`` (else system CAs)."""
        if self.kafka_security_protocol not in ("SSL", "SASL_SSL"):
            return None
        cafile = str(self.kafka_ca_file) if self.kafka_ca_file else None
        return ssl.create_default_context(cafile=cafile)

    @property
    def kafka_dir(self) -> Path:
        return self.data_dir / "kafka"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    def topic(self, name: str) -> str:
        """Physical topic name for a contract name such as ``ioc.traffic.flow.v1``."""
        return f"{self.topic_prefix}{name}"


def _secret(env: Mapping[str, str], name: str) -> Secret | None:
    """``NAME`` from the environment, or the content of the file ``NAME_FILE`` names."""
    if env.get(name):
        return Secret(env[name])
    path = env.get(f"{name}_FILE")
    if not path:
        return None
    try:
        return Secret(Path(path).read_text(encoding="utf-8").strip())
    except OSError as exc:
        raise SettingsError(f"{name}_FILE={path}: cannot read it ({exc.strerror})") from None


def mask_url(url: str) -> str:
    """``https://user:pw@host`` → ``https://user:***@host`` (other URLs unchanged)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = quote(parts.username or "", safe="")
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query,
                       parts.fragment))
