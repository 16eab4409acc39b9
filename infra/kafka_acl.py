"""Kafka access control from an agencies manifest: SCRAM users, ACLs and produce quotas.

``ioc acl apply --manifest agencies.toml`` (see ``infra/security/agencies.example.toml``) makes
the cluster's ACLs, SCRAM users and client quotas match the manifest; ``--dry-run`` prints the
plan only. It runs as a super user (``admin``) and is idempotent: a second run plans nothing.

The security model it enforces (``docs/operations.md`` has the whole picture):

- **Agencies** (``[[agency]]``): one SCRAM user each. It may WRITE (and DESCRIBE) only the
  topics listed for it — never the platform's outputs (KPI, alert), the dead-letter topic or
  feedback topics — and READ nothing. Its produce rate is capped per broker by a client quota
  on its user (``produce_bytes_per_s``), so one flooding agency is throttled instead of starving
  the others.
- **Services** (``[[service]]``): the platform's own principals (worker + sink, gateway,
  notifier, …). ``read``/``write`` list contract topics or patterns; ``"*"`` means every agency
  event topic except the *restricted* ones (``ioc.feedback.*``); the platform's outputs (KPI,
  alert), the dead-letter topic and restricted topics are granted only by naming them.
  ``groups`` are consumer-group name prefixes it may use; ``create`` topic-name prefixes it may
  create (Faust's internal topics). ``extra_topics`` / ``extra_groups`` are names outside the
  contract and without the prefix (the schema registry's ``_schemas`` topic and its group),
  granted in full; they are outside the managed scope below (never pruned).
- Topic and group names get ``topic_prefix`` (``IOC_TOPIC_PREFIX``) in front. Topic ACLs are
  LITERAL per topic of the schema catalogue (a new topic needs a new ``apply``), group ACLs are
  PREFIXED.
- **Managed scope**: every ACL on a topic starting with ``<prefix>ioc.`` or a group starting
  with ``<prefix>ioc-`` belongs to the manifest. Bindings there that the manifest does not
  produce (an agency removed, a topic taken away) are deleted unless ``--no-prune``.
- **Passwords** never sit in the manifest: ``password_env`` names the environment variable
  that holds it when ``apply`` runs (a Kubernetes Secret). A user that does not exist yet is
  created with it; an existing one keeps its password unless ``--rotate`` is given (then every
  user whose variable is set gets it as a new credential — see "Rotation" in the docs).

confluent-kafka 2.16.1's AdminClient has ACLs and SCRAM users but no client-quota API, so
quotas go through aiokafka's protocol layer (``DescribeClientQuotas`` is built in; the
``AlterClientQuotas`` v0 request is declared here), over the same SASL_SSL connection settings.
No JVM is needed.
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from ioc.infra.settings import Settings

RESTRICTED = ("ioc.dlq.v1", "ioc.feedback.*")
"""Topics that ``"*"`` never covers: dead letters carry any agency's raw bytes, feedback carries
citizens' personal data. A service reads or writes them only when it names them."""
PLATFORM_OUTPUTS = ("ioc.kpi.v1", "ioc.alert.v1")
SCRAM_ITERATIONS = 8192
QUOTA_KEYS = {"produce_bytes_per_s": "producer_byte_rate",
              "consume_bytes_per_s": "consumer_byte_rate"}


class ManifestError(ValueError):
    """The manifest is malformed or grants something the model forbids."""


@dataclass(frozen=True)
class Principal:
    """A SCRAM user of the manifest: an agency or a platform service."""

    user: str
    kind: str  # "agency" | "service"
    label: str  # agency code or service name, for messages
    password_env: str | None
    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    create: tuple[str, ...] = ()
    extra_topics: tuple[str, ...] = ()
    extra_groups: tuple[str, ...] = ()
    quotas: Mapping[str, float] = field(default_factory=dict)  # Kafka quota key → value


@dataclass(frozen=True)
class Manifest:
    topic_prefix: str
    principals: tuple[Principal, ...]

    def principal(self, user: str) -> Principal:
        return next(p for p in self.principals if p.user == user)


def load_manifest(path: Path) -> Manifest:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ManifestError(f"{path}: {exc}") from None
    return parse_manifest(data, str(path))


def parse_manifest(data: Mapping[str, Any], where: str = "manifest") -> Manifest:
    unknown = set(data) - {"topic_prefix", "agency", "service"}
    if unknown:
        raise ManifestError(f"{where}: unknown keys {sorted(unknown)}")
    prefix = data.get("topic_prefix", "")
    if not isinstance(prefix, str):
        raise ManifestError(f"{where}: topic_prefix must be a string")
    out: list[Principal] = []
    for entry in data.get("agency", []):
        code = _str(entry, "code", where)
        w = f"{where}: agency {code}"
        _only(entry, {"code", "name", "user", "password_env", "topics", "produce_bytes_per_s",
                      "consume_bytes_per_s"}, w)
        topics = tuple(_strs(entry, "topics", w))
        if not topics:
            raise ManifestError(f"{w}: topics is empty")
        for t in topics:
            if "*" in t or any(fnmatch.fnmatchcase(t, r) for r in RESTRICTED) \
                    or t in PLATFORM_OUTPUTS:
                raise ManifestError(f"{w}: may not write {t!r} (agencies write only their own "
                                    "event topics, named one by one)")
        out.append(Principal(user=_str(entry, "user", w), kind="agency", label=code,
                             password_env=entry.get("password_env"), write=topics,
                             quotas=_quotas(entry, w)))
    for entry in data.get("service", []):
        name = _str(entry, "name", where)
        w = f"{where}: service {name}"
        _only(entry, {"name", "user", "password_env", "read", "write", "groups", "create",
                      "extra_topics", "extra_groups", "produce_bytes_per_s",
                      "consume_bytes_per_s"}, w)
        out.append(Principal(user=_str(entry, "user", w), kind="service", label=name,
                             password_env=entry.get("password_env"),
                             read=tuple(_strs(entry, "read", w)),
                             write=tuple(_strs(entry, "write", w)),
                             groups=tuple(_strs(entry, "groups", w)),
                             create=tuple(_strs(entry, "create", w)),
                             extra_topics=tuple(_strs(entry, "extra_topics", w)),
                             extra_groups=tuple(_strs(entry, "extra_groups", w)),
                             quotas=_quotas(entry, w)))
    users = [p.user for p in out]
    dupes = sorted({u for u in users if users.count(u) > 1})
    if dupes:
        raise ManifestError(f"{where}: users appear twice: {dupes}")
    if "admin" in users:
        raise ManifestError(f"{where}: 'admin' is the cluster's super user, not a manifest user")
    return Manifest(prefix, tuple(out))


# --------------------------------------------------------------------------- desired state


@dataclass(frozen=True, order=True)
class Acl:
    """One ALLOW binding (the model has no DENY), host ``*``."""

    principal: str  # "User:name"
    operation: str  # AclOperation name: READ, WRITE, DESCRIBE, CREATE
    resource: str  # ResourceType name: TOPIC, GROUP
    name: str
    pattern: str  # LITERAL | PREFIXED

    def __str__(self) -> str:
        star = "*" if self.pattern == "PREFIXED" else ""
        return f"{self.principal} {self.operation} {self.resource} {self.name}{star}"

    def binding(self) -> AclBinding:
        return AclBinding(ResourceType[self.resource], self.name,
                          ResourcePatternType[self.pattern], self.principal, "*",
                          AclOperation[self.operation], AclPermissionType.ALLOW)


@dataclass(frozen=True)
class Topics:
    """The contract's topic names (``Catalogue().topics`` and ``.event_topics``)."""

    all: tuple[str, ...]
    events: tuple[str, ...]

    @classmethod
    def from_catalogue(cls) -> Topics:
        from ioc.schemas.catalogue import Catalogue

        cat = Catalogue()
        return cls(tuple(cat.topics), tuple(cat.event_topics))


def resolve_topics(patterns: Iterable[str], topics: Topics) -> list[str]:
    """Contract topics named by ``patterns``: ``*`` = every event topic not restricted; other
    patterns (``fnmatch``) match any contract topic."""
    out: set[str] = set()
    for pat in patterns:
        if pat == "*":
            out.update(t for t in topics.events
                       if not any(fnmatch.fnmatchcase(t, r) for r in RESTRICTED))
        else:
            out.update(t for t in topics.all if fnmatch.fnmatchcase(t, pat))
    return sorted(out)


def unmatched_patterns(manifest: Manifest, topics: Topics) -> list[str]:
    """``user: pattern`` for every read/write pattern that names no contract topic (a typo,
    or a topic of a subsystem this release does not have)."""
    return [f"{p.user}: {pat}" for p in manifest.principals
            for pat in dict.fromkeys((*p.read, *p.write)) if not resolve_topics([pat], topics)]


def desired_acls(manifest: Manifest, topics: Topics) -> set[Acl]:
    """Every binding the manifest asks for, with the topic prefix applied."""
    pre = manifest.topic_prefix
    acls: set[Acl] = set()
    for p in manifest.principals:
        who = f"User:{p.user}"
        for t in resolve_topics(p.write, topics) if p.kind == "service" else p.write:
            acls.add(Acl(who, "WRITE", "TOPIC", pre + t, "LITERAL"))
            acls.add(Acl(who, "DESCRIBE", "TOPIC", pre + t, "LITERAL"))
        for t in resolve_topics(p.read, topics):
            acls.add(Acl(who, "READ", "TOPIC", pre + t, "LITERAL"))
            acls.add(Acl(who, "DESCRIBE", "TOPIC", pre + t, "LITERAL"))
        for g in p.groups:
            acls.add(Acl(who, "READ", "GROUP", pre + g, "PREFIXED"))
        for c in p.create:
            for op in ("CREATE", "WRITE", "READ", "DESCRIBE"):
                acls.add(Acl(who, op, "TOPIC", pre + c, "PREFIXED"))
        for x in p.extra_topics:
            for op in ("CREATE", "WRITE", "READ", "DESCRIBE", "DESCRIBE_CONFIGS"):
                acls.add(Acl(who, op, "TOPIC", x, "LITERAL"))
        for g in p.extra_groups:
            acls.add(Acl(who, "READ", "GROUP", g, "LITERAL"))
    return acls


def in_scope(acl: Acl, prefix: str) -> bool:
    """Whether ``apply`` owns this binding (see the module docstring)."""
    if acl.resource == "TOPIC":
        return acl.name.startswith(prefix + "ioc.") or acl.name.startswith(prefix + "ioc-")
    if acl.resource == "GROUP":
        return acl.name.startswith(prefix + "ioc-")
    return False


# --------------------------------------------------------------------------- plan and apply


@dataclass
class Plan:
    add: list[Acl] = field(default_factory=list)
    remove: list[Acl] = field(default_factory=list)
    create_users: list[str] = field(default_factory=list)
    rotate_users: list[str] = field(default_factory=list)
    missing_passwords: list[str] = field(default_factory=list)  # user absent, no password
    quotas: dict[str, dict[str, float | None]] = field(default_factory=dict)  # None = remove

    @property
    def empty(self) -> bool:
        return not (self.add or self.remove or self.create_users or self.rotate_users
                    or self.quotas)

    def lines(self) -> list[str]:
        out = [f"+ user {u} (SCRAM-SHA-512)" for u in self.create_users]
        out += [f"~ user {u}: new password (rotation)" for u in self.rotate_users]
        out += [f"! user {u} does not exist and its password variable is not set"
                for u in self.missing_passwords]
        out += [f"+ acl {a}" for a in sorted(self.add)]
        out += [f"- acl {a}" for a in sorted(self.remove)]
        for user, values in sorted(self.quotas.items()):
            for key, value in sorted(values.items()):
                out.append(f"~ quota User:{user} {key} = "
                           + ("(removed)" if value is None else f"{value:.0f}"))
        return out or ["nothing to do: the cluster matches the manifest"]


@dataclass
class ClusterState:
    acls: set[Acl]
    users: set[str]  # users with a SCRAM credential
    quotas: dict[str, dict[str, float]]  # user → quota key → value


def make_plan(manifest: Manifest, topics: Topics, state: ClusterState, *,
              env: Mapping[str, str], prune: bool = True, rotate: bool = False) -> Plan:
    plan = Plan()
    want = desired_acls(manifest, topics)
    plan.add = sorted(want - state.acls)
    if prune:
        plan.remove = sorted(a for a in state.acls - want if in_scope(a, manifest.topic_prefix))
    for p in manifest.principals:
        has_password = bool(p.password_env and env.get(p.password_env))
        if p.user not in state.users:
            (plan.create_users if has_password else plan.missing_passwords).append(p.user)
        elif rotate and has_password:
            plan.rotate_users.append(p.user)
        current = state.quotas.get(p.user, {})
        change: dict[str, float | None] = {
            k: v for k, v in p.quotas.items() if current.get(k) != v}
        change.update({k: None for k in current if k not in p.quotas})
        if change:
            plan.quotas[p.user] = change
    return plan


def read_state(admin: AdminClient, settings: Settings, timeout: float = 30.0) -> ClusterState:
    """ACLs, SCRAM users and user quotas as the cluster has them now."""
    anything: Any = None  # a filter's None matches any name, principal and host
    flt = AclBindingFilter(ResourceType.ANY, anything, ResourcePatternType.ANY, anything,
                           anything, AclOperation.ANY, AclPermissionType.ANY)
    acls = set()
    for b in admin.describe_acls(flt, request_timeout=timeout).result():
        if b.permission_type != AclPermissionType.ALLOW or b.host != "*":
            continue  # not something this model writes; left alone
        acls.add(Acl(b.principal, b.operation.name, b.restype.name, b.name,
                     b.resource_pattern_type.name))
    described = admin.describe_user_scram_credentials(request_timeout=timeout)
    users = set(described.result()) if not isinstance(described, dict) else set()
    quotas = asyncio.run(describe_user_quotas(settings))
    return ClusterState(acls, users, quotas)


def apply_plan(admin: AdminClient, settings: Settings, manifest: Manifest, plan: Plan,
               env: Mapping[str, str], timeout: float = 30.0) -> None:
    """Carry out ``plan``: users, then ACL additions, removals, quotas. A failed step raises
    :class:`KafkaException` and stops there; running ``apply`` again continues."""
    upserts: list[Any] = []
    for user in [*plan.create_users, *plan.rotate_users]:
        p = manifest.principal(user)
        assert p.password_env is not None
        upserts.append(UserScramCredentialUpsertion(
            user, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS),
            env[p.password_env].encode()))
    if upserts:
        _wait(admin.alter_user_scram_credentials(upserts, request_timeout=timeout), "user")
    if plan.add:
        _wait(admin.create_acls([a.binding() for a in plan.add], request_timeout=timeout),
              "create acl")
    if plan.remove:
        filters = [AclBindingFilter(ResourceType[a.resource], a.name,
                                    ResourcePatternType[a.pattern], a.principal, "*",
                                    AclOperation[a.operation], AclPermissionType.ALLOW)
                   for a in plan.remove]
        _wait(admin.delete_acls(filters, request_timeout=timeout), "delete acl")
    if plan.quotas:
        asyncio.run(alter_user_quotas(settings, plan.quotas))


def _wait(futures: Mapping[Any, Any], what: str) -> None:
    errors = []
    for key, fut in futures.items():
        try:
            fut.result()
        except KafkaException as exc:
            errors.append(f"{what} {key}: {exc.args[0].str() if exc.args else exc}")
    if errors:
        raise KafkaException("; ".join(errors))


def apply_manifest(settings: Settings, manifest: Manifest, topics: Topics, *,
                   env: Mapping[str, str] | None = None, dry_run: bool = False,
                   prune: bool = True, rotate: bool = False,
                   log: Callable[[str], None] = print,
                   converge_timeout: float = 30.0) -> Plan:
    """Plan (and unless ``dry_run`` apply) the manifest on the cluster of ``settings``."""
    env = os.environ if env is None else env
    admin = AdminClient(settings.kafka_config(log_level=3))
    state = read_state(admin, settings)
    plan = make_plan(manifest, topics, state, env=env, prune=prune, rotate=rotate)
    for line in [f"? pattern matches no contract topic: {u}"
                 for u in unmatched_patterns(manifest, topics)] + plan.lines():
        log(line)
    if not dry_run and not plan.empty:
        apply_plan(admin, settings, manifest, plan, env)
        # Brokers apply users and ACLs from the metadata log asynchronously: wait until they
        # show, so that what `apply` reports is what the cluster enforces when it returns.
        deadline = time.monotonic() + converge_timeout
        while not make_plan(manifest, topics, read_state(admin, settings), env=env,
                            prune=prune).empty:
            if time.monotonic() > deadline:
                log(f"! applied, but not all changes are visible on the cluster after "
                    f"{converge_timeout:.0f} s; run `ioc acl apply` again to check")
                break
            time.sleep(0.5)
    return plan


# --------------------------------------------------------------------------- client quotas


def aiokafka_kwargs(settings: Settings) -> dict[str, Any]:
    """Connection arguments of aiokafka clients (admin, consumer, producer) for ``settings``."""
    kwargs: dict[str, Any] = {"bootstrap_servers": settings.bootstrap.split(","),
                              "security_protocol": settings.kafka_security_protocol}
    if settings.kafka_security_protocol.startswith("SASL_"):
        assert settings.kafka_password is not None
        kwargs.update(sasl_mechanism=settings.kafka_sasl_mechanism,
                      sasl_plain_username=settings.kafka_username,
                      sasl_plain_password=settings.kafka_password.get())
    context = settings.kafka_ssl_context()
    if context is not None:
        kwargs["ssl_context"] = context
    return kwargs


def _aiokafka_admin(settings: Settings) -> Any:
    from aiokafka.admin import AIOKafkaAdminClient

    return AIOKafkaAdminClient(**aiokafka_kwargs(settings))


async def describe_user_quotas(settings: Settings) -> dict[str, dict[str, float]]:
    """Quotas set for named users (``{user: {"producer_byte_rate": 1e6}}``)."""
    from aiokafka.protocol.admin import DescribeClientQuotasRequest

    admin = _aiokafka_admin(settings)
    await admin.start()
    try:
        # match_type 2 = any user entity with a name (not the default entity)
        resp = await admin._send_request(DescribeClientQuotasRequest([("user", 2, None)], True))
    finally:
        await admin.close()
    if resp.error_code:
        raise KafkaException(f"DescribeClientQuotas failed: {resp.error_code} "
                             f"{resp.error_message}")
    out: dict[str, dict[str, float]] = {}
    for entity, values in resp.entries:
        names = dict(entity)
        if set(names) == {"user"} and names["user"] is not None:
            out[names["user"]] = {k: v for k, v in values}
    return out


async def alter_user_quotas(settings: Settings,
                            changes: Mapping[str, Mapping[str, float | None]]) -> None:
    request_type = _alter_client_quotas_request()
    entries = [([("user", user)], [(k, 0.0 if v is None else float(v), v is None)
                                   for k, v in sorted(ops.items())])
               for user, ops in sorted(changes.items())]
    admin = _aiokafka_admin(settings)
    await admin.start()
    try:
        resp = await admin._send_request(request_type(entries, False))
    finally:
        await admin.close()
    errors = [f"{dict(entity)}: {code} {message}" for code, message, entity in resp.entries
              if code]
    if errors:
        raise KafkaException("AlterClientQuotas failed: " + "; ".join(errors))


def _alter_client_quotas_request() -> Any:
    """aiokafka has no AlterClientQuotas (API key 49): its v0 wire format, from the Kafka
    protocol guide, on aiokafka's struct types."""
    from aiokafka.protocol.api import Request, RequestStruct, Response
    from aiokafka.protocol.types import Array, Boolean, Float64, Int16, Int32, Schema, String

    class AlterClientQuotasResponse_v0(Response):
        API_KEY = 49
        API_VERSION = 0
        SCHEMA = Schema(
            ("throttle_time_ms", Int32),
            ("entries", Array(("error_code", Int16), ("error_message", String("utf-8")),
                              ("entity", Array(("entity_type", String("utf-8")),
                                               ("entity_name", String("utf-8")))))))

    class AlterClientQuotasRequest_v0(RequestStruct):
        API_KEY = 49
        API_VERSION = 0
        RESPONSE_TYPE = AlterClientQuotasResponse_v0
        SCHEMA = Schema(
            ("entries", Array(("entity", Array(("entity_type", String("utf-8")),
                                               ("entity_name", String("utf-8")))),
                              ("ops", Array(("key", String("utf-8")), ("value", Float64),
                                            ("remove", Boolean))))),
            ("validate_only", Boolean))

    class AlterClientQuotasRequest(Request[AlterClientQuotasRequest_v0]):
        API_KEY = 49

        def __init__(self, entries: list[Any], validate_only: bool) -> None:
            self._entries, self._validate_only = entries, validate_only

        def build(self, request_struct_class: type[AlterClientQuotasRequest_v0]
                  ) -> AlterClientQuotasRequest_v0:
            return request_struct_class(self._entries, self._validate_only)

    return AlterClientQuotasRequest


# --------------------------------------------------------------------------- helpers


def _str(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise ManifestError(f"{where}: {key} must be a non-empty string")
    return value


def _strs(entry: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ManifestError(f"{where}: {key} must be a list of non-empty strings")
    return value


def _only(entry: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(entry) - allowed
    if unknown:
        raise ManifestError(f"{where}: unknown keys {sorted(unknown)}")


def _quotas(entry: Mapping[str, Any], where: str) -> dict[str, float]:
    out = {}
    for key, kafka_key in QUOTA_KEYS.items():
        if key in entry:
            value = entry[key]
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise ManifestError(f"{where}: {key} must be a positive number")
            out[kafka_key] = float(value)
    return out
