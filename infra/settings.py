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
- ``IOC_CLICKHOUSE_CLUSTER`` — the name of a ClickHouse cluster (as in the servers'
  ``remote_servers``) that ``IOC_CLICKHOUSE_URL`` points into. Unset (the default): one server
  or chDB. Set: ``ioc setup`` runs every migration ``ON CLUSTER`` with replicated, sharded
  tables (``<table>_local`` + a ``Distributed`` table under the usual name; see
  :mod:`ioc.infra.cluster_ddl`), and the sink inserts through the ``Distributed`` tables in the
  foreground so its dedup tokens still make a retried batch idempotent. Needs an
  ``http(s)://`` URL; readers need nothing (same table names).
- ``IOC_TOPIC_PARTITIONS`` — partitions for topics that ``ioc setup`` creates (default 3).
- ``IOC_TOPIC_REPLICATION_FACTOR`` — replicas of the topics that ``ioc setup`` and the Faust
  worker (its internal topics) create (default: the brokers' ``default.replication.factor``
  for ``ioc setup``, 1 for Faust's internal topics). Production: 3.
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
- ``IOC_STALL_TIMEOUT_S`` — the stream worker's watchdog restarts a worker whose event loop or
  backlog made no progress for this long (default 60 s; see ``ioc.infra.watchdog``).
- ``IOC_PSEUDONYM_KEY`` — **secret**: the key of the keyed pseudonyms that replace citizens'
  phone numbers and names before feedback reports are sent (``ioc.connectors.privacy``); at
  least 16 characters, its UTF-8 bytes are the HMAC key. Every producer of one deployment must
  use the same key, or one person gets several pseudonyms; changing it starts new pseudonyms.
  When unset (the embedded default), a random key is generated once and kept in
  ``$IOC_DATA_DIR/pseudonym.key`` (mode 0600), so pseudonyms are stable on that machine. The
  value is held as a :class:`Secret` and never printed or logged. The stream worker needs it
  too (it redacts dead letters of reports), and so does ``ioc privacy forget --phone/--name``.
- ``IOC_RETENTION_DAYS`` — how many days ClickHouse keeps rows of the raw event tables, dead
  letters, alerts and the notifier's history (default ``0``: for good); ``ioc setup`` sets each
  table's TTL (see :mod:`ioc.infra.retention`, which also says which time column each table
  ages by). Never applied to ``kpi`` or the reference tables.
- ``IOC_RETENTION`` — per-table days that win over everything else, ``table=days,…`` (``0``:
  for good), e.g. ``feedback_report=365,dead_letters=30,kpi=3650``. Without an entry,
  ``feedback_report`` keeps 730 days and ``dead_letters`` 90 (or ``IOC_RETENTION_DAYS`` if
  shorter): the tables that may hold personal data do not keep it for good by default.

Alert notifications (``ioc notify``, part of ``ioc run``; see ``docs/notifications.md``):

- ``IOC_NOTIFY_CONFIG`` — the routing config (YAML). Default ``$IOC_DATA_DIR/notify/routes.yaml``
  if that file exists; with neither, ``ioc run`` runs without the notifier (it says so).
- ``IOC_NOTIFY_HOST`` / ``IOC_NOTIFY_PORT`` — where the notifier's HTTP server (ack links, status)
  listens (default ``127.0.0.1:9480``; port 0 turns it off).
- ``IOC_NOTIFY_PUBLIC_URL`` — the base URL that ack links in messages point at (default
  ``http://<host>:<port>``); set it to the address duty officers can reach (a reverse proxy).
- Secrets (never logged, never in the config file): ``IOC_NOTIFY_SECRET`` signs ack links
  (unset: a random key is generated once into ``$IOC_DATA_DIR/notify/secret``);
  ``IOC_SMTP_PASSWORD``; ``IOC_TELEGRAM_BOT_TOKEN``; ``IOC_WEBHOOK_SECRET`` (HMAC-SHA256 signature
  of webhook bodies); ``IOC_NOTIFY_TOKEN_<NAME>`` — the token an HTTP template channel refers to
  as ``secret: <name>`` (e.g. ``IOC_NOTIFY_TOKEN_ZALO_OA`` for ``secret: zalo_oa``).
- ``IOC_SCHEMA_REGISTRY_URL`` — a Confluent-compatible schema registry (``http://host:8081``).
  When set, producers write Confluent framing (``00`` + schema id) with the ids registered by
  ``ioc schemas register``, and readers resolve ids there; unset, single-object encoding.

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
import re
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


class Secret:
    """A secret value that never shows in ``repr``/``str`` (logs, tracebacks, settings dumps)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    get_secret_value = get  # the pydantic name, used by the pseudonym key

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[type[Secret], tuple[str]]:  # picklable for child processes
        return (Secret, (self._value,))


TOKEN_PREFIX = "IOC_NOTIFY_TOKEN_"  # noqa: S105 - an env name prefix, not a secret


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("var")
    kafka_bootstrap: str | None = None
    kafka_port: int = 19092
    clickhouse_url: str | None = field(default=None, repr=False)  # may hold a password
    topic_partitions: int = 3
    topic_replication_factor: int | None = None
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
    stall_timeout_s: float = 60.0
    pseudonym_key: Secret | None = None
    retention_days: int = 0
    retention: tuple[tuple[str, int], ...] = ()
    notify_config: Path | None = None
    notify_host: str = "127.0.0.1"
    notify_port: int = 9480
    notify_public_url: str | None = None
    notify_secret: Secret | None = None
    smtp_password: Secret | None = None
    telegram_bot_token: Secret | None = None
    webhook_secret: Secret | None = None
    notify_tokens: tuple[tuple[str, Secret], ...] = ()
    schema_registry_url: str | None = None
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    kafka_username: str | None = None
    kafka_password: Secret | None = None
    kafka_ca_file: Path | None = None
    clickhouse_password: Secret | None = None
    clickhouse_cluster: str | None = None

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
        if self.clickhouse_cluster is not None:
            from ioc.infra.cluster_ddl import CLUSTER_NAME

            if not CLUSTER_NAME.match(self.clickhouse_cluster):
                raise SettingsError(f"IOC_CLICKHOUSE_CLUSTER={self.clickhouse_cluster!r}: a "
                                    "cluster name has letters, digits, _ . - or a {macro}")
            if not self.clickhouse.startswith(("http://", "https://")):
                raise SettingsError("IOC_CLICKHOUSE_CLUSTER needs a ClickHouse server: set "
                                    "IOC_CLICKHOUSE_URL to http(s)://… of a node of the "
                                    "cluster (the embedded chDB has no clusters)")
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
            stall_timeout_s=float(env.get("IOC_STALL_TIMEOUT_S", d.stall_timeout_s)),
            pseudonym_key=Secret(env["IOC_PSEUDONYM_KEY"]) if env.get("IOC_PSEUDONYM_KEY")
            else None,
            retention_days=_days("IOC_RETENTION_DAYS", env.get("IOC_RETENTION_DAYS", "0")),
            retention=_retention(env.get("IOC_RETENTION", "")),
            notify_config=Path(env["IOC_NOTIFY_CONFIG"]) if env.get("IOC_NOTIFY_CONFIG") else None,
            notify_host=env.get("IOC_NOTIFY_HOST", d.notify_host),
            notify_port=int(env.get("IOC_NOTIFY_PORT", d.notify_port)),
            notify_public_url=env.get("IOC_NOTIFY_PUBLIC_URL") or None,
            notify_secret=_secret(env, "IOC_NOTIFY_SECRET"),
            smtp_password=_secret(env, "IOC_SMTP_PASSWORD"),
            telegram_bot_token=_secret(env, "IOC_TELEGRAM_BOT_TOKEN"),
            webhook_secret=_secret(env, "IOC_WEBHOOK_SECRET"),
            notify_tokens=tuple(sorted(
                (k.removeprefix(TOKEN_PREFIX).lower(), Secret(v)) for k, v in env.items()
                if k.startswith(TOKEN_PREFIX) and v)),
            schema_registry_url=env.get("IOC_SCHEMA_REGISTRY_URL") or None,
            kafka_security_protocol=env.get("IOC_KAFKA_SECURITY_PROTOCOL",
                                            d.kafka_security_protocol).upper(),
            kafka_sasl_mechanism=env.get("IOC_KAFKA_SASL_MECHANISM",
                                         d.kafka_sasl_mechanism).upper(),
            kafka_username=env.get("IOC_KAFKA_USERNAME") or None,
            kafka_password=_secret(env, "IOC_KAFKA_PASSWORD"),
            kafka_ca_file=Path(env["IOC_KAFKA_CA_FILE"]) if env.get("IOC_KAFKA_CA_FILE") else None,
            clickhouse_password=_secret(env, "IOC_CLICKHOUSE_PASSWORD"),
            clickhouse_cluster=env.get("IOC_CLICKHOUSE_CLUSTER") or None,
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
    def clickhouse_store(self) -> str:
        """Where the platform writes, for metric labels: ``embedded`` or ``scheme://host:port``
        (no user, no password, no path)."""
        if self.chdb_path is not None:
            return "embedded"
        parts = urlsplit(self.clickhouse)
        return f"{parts.scheme}://{parts.hostname}:{parts.port or ''}".rstrip(":")

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
    def pseudonym_key_file(self) -> Path:
        """Where the generated pseudonym key lives when ``IOC_PSEUDONYM_KEY`` is unset."""
        return self.data_dir / "pseudonym.key"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def notify_config_path(self) -> Path | None:
        """The notifier's routing config: ``IOC_NOTIFY_CONFIG``, else
        ``$IOC_DATA_DIR/notify/routes.yaml`` if it exists, else none (notifier off)."""
        if self.notify_config is not None:
            return self.notify_config
        default = self.data_dir / "notify" / "routes.yaml"
        return default if default.is_file() else None

    @property
    def notify_base_url(self) -> str:
        """Base of the ack links in messages."""
        return (self.notify_public_url
                or f"http://{self.notify_host}:{self.notify_port}").rstrip("/")

    def notify_token(self, name: str) -> Secret | None:
        return dict(self.notify_tokens).get(name.lower())

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


def _days(name: str, text: str) -> int:
    try:
        days = int(text.strip() or "0")
    except ValueError:
        raise SettingsError(f"{name}={text!r}: a whole number of days (0: keep for good)"
                            ) from None
    if days < 0:
        raise SettingsError(f"{name}={text!r}: days cannot be negative")
    return days


def _retention(text: str) -> tuple[tuple[str, int], ...]:
    """``IOC_RETENTION``: ``table=days,table=days`` → sorted pairs (tables checked at setup)."""
    out: dict[str, int] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        table, sep, days = item.partition("=")
        table = table.strip()
        if not sep or not re.match(r"^[a-z_][a-z0-9_]*$", table):
            raise SettingsError(f"IOC_RETENTION: {item.strip()!r} is not table=days (e.g. "
                                "feedback_report=365,dead_letters=30)")
        out[table] = _days(f"IOC_RETENTION {table}", days)
    return tuple(sorted(out.items()))


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
