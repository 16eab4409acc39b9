"""The routing configuration: a versioned YAML file, validated with errors that name file:line.

Format (``version: 1``; ``infra/notify/routes.example.yaml`` is a complete example, the operator
guide is ``docs/notifications.md``)::

    version: 1
    global:                       # all optional
      title: IOC Quảng Nam        # prefix of every subject
      ack_link_ttl: 24h           # how long an ack link works
      evaluation_interval: 1s     # how often groups and escalations are evaluated
      history_lookback: 7d        # how much history a restarted notifier reads back
      max_alert_age: 24h          # a firing record older than this (event time) pages nobody
      fallback_receiver: truc-ban-ioc
      retry: {attempts: 4, initial_backoff: 2s, max_backoff: 1m}
    people:                       # duty officers and their contact points
      nguyen_van_an: {name: Nguyễn Văn An, email: an.nv@…, telegram: "123456789", phone: "0905…"}
    channels:                     # how to reach them (secrets come from the environment)
      email:   {type: email, host: smtp.…, port: 587, starttls: true, username: …, from: …}
      telegram: {type: telegram, api_base: https://api.telegram.org}
      sms:     {type: http, contact: phone, url: …, format: json, body: {to: "${phone}", …}}
      dieu-hanh: {type: webhook, url: https://…/alertmanager}
      outbox:  {type: file, directory: notify/outbox}
    receivers:                    # duty rosters
      truc-giao-thong: {members: [nguyen_van_an, …], via: [email, telegram], fallback: truc-ban-ioc}
    route:                        # the routing tree; the root is the default route
      receiver: truc-ban-ioc
      group_by: [domain, area_code]
      group_wait: 30s
      group_interval: 5m
      repeat_interval: 4h
      routes:
        - name: giao-thong
          match: {domain: traffic}          # or match_re: {…}, matchers: ['severity=~"…"']
          receiver: truc-giao-thong
          continue: false
          escalation:
            - {after: 15m, receiver: truong-ca-giao-thong}
            - {after: 45m, receiver: lanh-dao-so-gtvt}
    inhibit_rules:
      - {source: {severity: critical}, target: {severity: warning}, equal: [entity]}

Routing follows Alertmanager: an alert enters the root, goes down into the first child route that
matches (and on to later siblings only if that child has ``continue: true``), and is handled by
the deepest matching routes; a route that has no matching child handles the alert itself.
Children inherit receiver, grouping, timing and escalation from their parent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from ioc.connectors.notify.model import (
    LABELS,
    Matcher,
    canonical_label,
    duration_vi,
    matches_all,
    parse_duration,
)

VERSION = 1
CHANNEL_TYPES = ("email", "telegram", "webhook", "http", "file")
DEFAULT_CONTACT = {"email": "email", "telegram": "telegram"}


class ConfigError(ValueError):
    """The config is invalid; ``problems`` are ``file:line: message`` strings."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# -- YAML with line numbers ---------------------------------------------------------------------

class _Map(dict[str, Any]):
    """A YAML mapping that remembers where it and each of its keys are."""

    line: int = 0
    key_lines: dict[str, int]


class _List(list[Any]):
    line: int = 0


class _Loader(yaml.SafeLoader):
    pass


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> _Map:
    loader.flatten_mapping(node)
    out = _Map()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, str):
            key = str(key)
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {out.key_lines[key]})",
                key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = line
    return out


def _construct_list(loader: _Loader, node: yaml.SequenceNode) -> _List:
    out = _List(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_list)


# -- the model ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    initial_backoff: timedelta = timedelta(seconds=1)
    max_backoff: timedelta = timedelta(seconds=30)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based): doubling."""
        return min(self.initial_backoff.total_seconds() * 2 ** (attempt - 1),
                   self.max_backoff.total_seconds())


@dataclass(frozen=True)
class GlobalConfig:
    title: str = "IOC"
    ack_link_ttl: timedelta = timedelta(hours=24)
    evaluation_interval: timedelta = timedelta(seconds=1)
    history_lookback: timedelta = timedelta(days=7)
    max_alert_age: timedelta = timedelta(hours=24)  # 0: no limit
    fallback_receiver: str | None = None
    retry: RetryPolicy = RetryPolicy()


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    contacts: Mapping[str, str]


@dataclass(frozen=True)
class ChannelConfig:
    name: str
    type: str
    contact: str | None  # the person field holding the address (None: receiver-wide)
    options: Mapping[str, Any]

    @property
    def per_person(self) -> bool:
        return self.type != "webhook"


@dataclass(frozen=True)
class Receiver:
    name: str
    description: str
    members: tuple[str, ...]
    via: tuple[str, ...]
    fallback: str | None


@dataclass(frozen=True)
class EscalationLevel:
    after: timedelta
    receiver: str


@dataclass(frozen=True)
class Route:
    id: str
    matchers: tuple[Matcher, ...]
    receiver: str
    group_by: tuple[str, ...]
    group_wait: timedelta
    group_interval: timedelta
    repeat_interval: timedelta
    continue_: bool
    send_resolved: bool
    escalation: tuple[EscalationLevel, ...]
    routes: tuple[Route, ...]
    line: int = 0

    def match(self, labels: Mapping[str, str]) -> list[Route]:
        """The routes that handle an alert with these labels (Alertmanager semantics)."""
        if not matches_all(self.matchers, labels):
            return []
        found: list[Route] = []
        for child in self.routes:
            got = child.match(labels)
            if got:
                found.extend(got)
                if not child.continue_:
                    break
        return found or [self]

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        if self.group_by == ("...",):
            return {k: v for k, v in labels.items() if k != "status"}
        return {name: labels.get(name, "") for name in self.group_by}

    def group_key(self, labels: Mapping[str, str]) -> str:
        """``route{label="value",…}``: one aggregation group."""
        inner = ",".join(f'{k}="{v}"' for k, v in sorted(self.group_labels(labels).items()))
        return f"{self.id}{{{inner}}}"

    def walk(self) -> list[Route]:
        out = [self]
        for child in self.routes:
            out.extend(child.walk())
        return out


@dataclass(frozen=True)
class InhibitRule:
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]


@dataclass(frozen=True)
class NotifyConfig:
    source: str
    version: int
    global_: GlobalConfig
    people: Mapping[str, Person]
    channels: Mapping[str, ChannelConfig]
    receivers: Mapping[str, Receiver]
    route: Route
    inhibit_rules: tuple[InhibitRule, ...] = field(default_factory=tuple)

    def fallback_for(self, receiver: str) -> str | None:
        rec = self.receivers.get(receiver)
        fb = (rec.fallback if rec else None) or self.global_.fallback_receiver
        return fb if fb != receiver else None

    def describe(self) -> list[str]:
        """A readable outline of the routing tree (``ioc notify --check``)."""
        lines: list[str] = []

        def visit(route: Route, depth: int) -> None:
            pad = "  " * depth
            what = ", ".join(str(m) for m in route.matchers) or "(mọi cảnh báo)"
            esc = " → ".join(f"{lv.receiver} sau {duration_vi(lv.after)}"
                             for lv in route.escalation)
            lines.append(f"{pad}- {route.id}: {what} → {route.receiver}"
                         + (" [continue]" if route.continue_ else "")
                         + (f"; leo thang: {esc}" if esc else ""))
            for child in route.routes:
                visit(child, depth + 1)

        visit(self.route, 0)
        return lines


# -- validation ---------------------------------------------------------------------------------

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_TEMPLATE_FIELDS = ("text", "short", "subject", "ack_url", "name", "secret", "receiver",
                    "status", "notification_id")


class _Checker:
    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def at(self, line: int) -> str:
        return f"{self.source}:{line}" if line else self.source

    def error(self, line: int, message: str) -> None:
        self.problems.append(f"{self.at(line)}: {message}")

    def line_of(self, mapping: Any, key: str | None = None) -> int:
        if isinstance(mapping, _Map):
            if key is not None and key in mapping.key_lines:
                return mapping.key_lines[key]
            return mapping.line
        if isinstance(mapping, _List):
            return mapping.line
        return 0

    def mapping(self, value: Any, where: str, line: int) -> _Map:
        if value is None:
            out = _Map()
            out.line, out.key_lines = line, {}
            return out
        if not isinstance(value, dict):
            self.error(line, f"{where}: expected a mapping, got {type(value).__name__}")
            out = _Map()
            out.line, out.key_lines = line, {}
            return out
        return value if isinstance(value, _Map) else _Map(value)

    def known_keys(self, m: _Map, where: str, allowed: tuple[str, ...],
                   required: tuple[str, ...] = ()) -> None:
        for key in m:
            if key not in allowed:
                self.error(self.line_of(m, key),
                           f"{where}: unknown key {key!r} (known: {', '.join(allowed)})")
        for key in required:
            if key not in m or m[key] in (None, ""):
                self.error(self.line_of(m), f"{where}: {key!r} is required")

    def string(self, m: _Map, key: str, where: str, default: str | None = None) -> str | None:
        if key not in m or m[key] is None:
            return default
        value = m[key]
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.error(self.line_of(m, key), f"{where}.{key}: expected text, got "
                                             f"{type(value).__name__}")
            return default
        return str(value)

    def text_contact(self, m: _Map, key: str, where: str) -> str | None:
        value = m.get(key)
        if value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            self.error(self.line_of(m, key),
                       f"{where}.{key}: {value!r} was read as a number; put it in quotes "
                       f"(\"0905…\") so leading zeros and + signs are kept")
            return None
        if not isinstance(value, str):
            self.error(self.line_of(m, key), f"{where}.{key}: expected text")
            return None
        return value

    def duration(self, m: _Map, key: str, where: str, default: timedelta | None
                 ) -> timedelta | None:
        if key not in m or m[key] is None:
            return default
        try:
            value = parse_duration(str(m[key]))
        except ValueError as exc:
            self.error(self.line_of(m, key), f"{where}.{key}: {exc}")
            return default
        return value

    def boolean(self, m: _Map, key: str, where: str, default: bool) -> bool:
        if key not in m or m[key] is None:
            return default
        if not isinstance(m[key], bool):
            self.error(self.line_of(m, key), f"{where}.{key}: expected true or false")
            return default
        return bool(m[key])

    def integer(self, m: _Map, key: str, where: str, default: int, minimum: int = 0) -> int:
        if key not in m or m[key] is None:
            return default
        value = m[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.error(self.line_of(m, key), f"{where}.{key}: expected a whole number "
                                             f">= {minimum}")
            return default
        return value

    def names(self, m: _Map, key: str, where: str) -> tuple[str, ...]:
        value = m.get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.error(self.line_of(m, key), f"{where}.{key}: expected a list of names")
            return ()
        return tuple(value)

    def matchers(self, m: _Map, where: str, match_key: str = "match",
                 re_key: str = "match_re", list_key: str = "matchers") -> tuple[Matcher, ...]:
        found: list[Matcher] = []
        for key, regex in ((match_key, False), (re_key, True)):
            if key not in m or m[key] is None:
                continue
            spec = self.mapping(m[key], f"{where}.{key}", self.line_of(m, key))
            for label, value in spec.items():
                line = self.line_of(spec, label)
                if canonical_label(label) not in LABELS:
                    self.error(line, f"{where}.{key}: unknown label {label!r} (labels: "
                                     f"{', '.join(LABELS)}, area, alertname)")
                    continue
                values = value if isinstance(value, list) else [value]
                if not values or not all(isinstance(v, str | int) and not isinstance(v, bool)
                                         for v in values):
                    self.error(line, f"{where}.{key}.{label}: expected text or a list of text")
                    continue
                try:
                    if regex:
                        found.extend(Matcher(label, "=~", str(v)) for v in values)
                    else:
                        found.append(Matcher.any_of(label, [str(v) for v in values]))
                except ValueError as exc:
                    self.error(line, f"{where}.{key}.{label}: {exc}")
        if list_key in m and m[list_key] is not None:
            items = m[list_key]
            if not isinstance(items, list):
                self.error(self.line_of(m, list_key), f"{where}.{list_key}: expected a list "
                                                      'of matchers such as severity="critical"')
            else:
                for item in items:
                    try:
                        found.append(Matcher.parse(str(item)))
                    except ValueError as exc:
                        self.error(self.line_of(m, list_key), f"{where}.{list_key}: {exc}")
        return tuple(found)


_ROUTE_KEYS = ("name", "receiver", "match", "match_re", "matchers", "group_by", "group_wait",
               "group_interval", "repeat_interval", "continue", "send_resolved", "escalation",
               "routes")
_CHANNEL_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # type: (allowed keys, required keys)
    "email": (("type", "host", "port", "starttls", "tls", "username", "from", "timeout",
               "ca_file", "contact"), ("host", "from")),
    "telegram": (("type", "api_base", "timeout", "contact", "parse_mode"), ()),
    "webhook": (("type", "url", "timeout", "max_alerts"), ("url",)),
    "http": (("type", "url", "method", "format", "headers", "body", "contact", "secret",
              "timeout"), ("url", "contact")),
    "file": (("type", "directory", "contact", "from"), ("directory",)),
}


def _check_global(c: _Checker, raw: Any, line: int) -> GlobalConfig:
    m = c.mapping(raw, "global", line)
    c.known_keys(m, "global", ("title", "ack_link_ttl", "evaluation_interval",
                               "history_lookback", "max_alert_age", "fallback_receiver",
                               "retry"))
    d = GlobalConfig()
    r = c.mapping(m.get("retry"), "global.retry", c.line_of(m, "retry"))
    c.known_keys(r, "global.retry", ("attempts", "initial_backoff", "max_backoff"))
    retry = RetryPolicy(
        attempts=c.integer(r, "attempts", "global.retry", d.retry.attempts, minimum=1),
        initial_backoff=c.duration(r, "initial_backoff", "global.retry",
                                   d.retry.initial_backoff) or d.retry.initial_backoff,
        max_backoff=c.duration(r, "max_backoff", "global.retry",
                               d.retry.max_backoff) or d.retry.max_backoff)
    evaluation = c.duration(m, "evaluation_interval", "global", d.evaluation_interval)
    if evaluation is not None and evaluation <= timedelta(0):
        c.error(c.line_of(m, "evaluation_interval"), "global.evaluation_interval: must be > 0")
        evaluation = d.evaluation_interval
    return GlobalConfig(
        title=c.string(m, "title", "global", d.title) or d.title,
        ack_link_ttl=c.duration(m, "ack_link_ttl", "global", d.ack_link_ttl) or d.ack_link_ttl,
        evaluation_interval=evaluation or d.evaluation_interval,
        history_lookback=c.duration(m, "history_lookback", "global",
                                    d.history_lookback) or d.history_lookback,
        max_alert_age=c.duration(m, "max_alert_age", "global", d.max_alert_age)
        or timedelta(0),
        fallback_receiver=c.string(m, "fallback_receiver", "global"),
        retry=retry)


def _check_people(c: _Checker, raw: Any, line: int) -> dict[str, Person]:
    m = c.mapping(raw, "people", line)
    people = {}
    for pid, spec in m.items():
        where = f"people.{pid}"
        if not _NAME.match(pid):
            c.error(c.line_of(m, pid), f"{where}: ids are letters, digits, _ . -")
        p = c.mapping(spec, where, c.line_of(m, pid))
        name = c.string(p, "name", where)
        if not name:
            c.error(p.line or c.line_of(m, pid), f"{where}: 'name' is required")
        contacts = {}
        for key in p:
            if key == "name":
                continue
            value = c.text_contact(p, key, where)
            if value:
                contacts[key] = value
        if "email" in contacts and "@" not in contacts["email"]:
            c.error(c.line_of(p, "email"), f"{where}.email: not an email address: "
                                           f"{contacts['email']!r}")
        people[pid] = Person(pid, name or pid, contacts)
    return people


def _check_channels(c: _Checker, raw: Any, line: int) -> dict[str, ChannelConfig]:
    m = c.mapping(raw, "channels", line)
    channels = {}
    for name, spec in m.items():
        where = f"channels.{name}"
        ch = c.mapping(spec, where, c.line_of(m, name))
        kind = ch.get("type")
        if kind not in CHANNEL_TYPES:
            c.error(c.line_of(ch, "type"), f"{where}.type: must be one of "
                                           f"{', '.join(CHANNEL_TYPES)}, got {kind!r}")
            continue
        allowed, required = _CHANNEL_KEYS[kind]
        c.known_keys(ch, where, allowed, required)
        for key in ("url", "api_base"):
            url = ch.get(key)
            if isinstance(url, str) and not url.startswith(("http://", "https://")):
                c.error(c.line_of(ch, key), f"{where}.{key}: must start with http:// or "
                                            "https://")
        for key in ("timeout",):
            c.duration(ch, key, where, None)
        if kind == "http":
            fmt = ch.get("format", "json")
            if fmt not in ("json", "form", "text"):
                c.error(c.line_of(ch, "format"), f"{where}.format: json, form or text")
            body = ch.get("body")
            if fmt == "text" and body is not None and not isinstance(body, str):
                c.error(c.line_of(ch, "body"), f"{where}.body: format text needs a string body")
            if fmt in ("json", "form") and body is not None and not isinstance(body, dict):
                c.error(c.line_of(ch, "body"), f"{where}.body: format {fmt} needs a mapping "
                                               "whose values are templates")
            for problem in _template_problems(ch.get("body"), ch.get("headers"),
                                              ch.get("url"), str(ch.get("contact") or "")):
                c.error(c.line_of(ch, "body"), f"{where}: {problem}")
        if kind == "email":
            c.integer(ch, "port", where, 587, minimum=1)
            c.boolean(ch, "starttls", where, True)
            c.boolean(ch, "tls", where, False)
            if ch.get("tls") is True and ch.get("starttls") is True:
                c.error(c.line_of(ch, "tls"), f"{where}: tls (port 465) and starttls "
                                              "exclude each other")
        contact = ch.get("contact")
        if contact is None and kind != "webhook" and kind != "file":
            contact = DEFAULT_CONTACT.get(kind)
        options = {k: v for k, v in ch.items() if k not in ("type", "contact")}
        channels[name] = ChannelConfig(name, kind, str(contact) if contact else None, options)
    return channels


_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _template_problems(*parts: Any) -> list[str]:
    """Placeholders the HTTP template channel cannot fill."""
    *templates, contact = parts
    known = set(_TEMPLATE_FIELDS) | {contact, "phone", "zalo", "email", "telegram"}
    found: list[str] = []

    def visit(value: Any) -> None:
        if isinstance(value, str):
            for name in _PLACEHOLDER.findall(value):
                if name not in known:
                    found.append(f"unknown placeholder ${{{name}}} (known: "
                                 f"{', '.join(sorted(known))})")
        elif isinstance(value, dict):
            for v in value.values():
                visit(v)
        elif isinstance(value, list):
            for v in value:
                visit(v)

    for t in templates:
        visit(t)
    return found


def _check_receivers(c: _Checker, raw: Any, line: int, people: Mapping[str, Person],
                     channels: Mapping[str, ChannelConfig]) -> dict[str, Receiver]:
    m = c.mapping(raw, "receivers", line)
    receivers = {}
    for name, spec in m.items():
        where = f"receivers.{name}"
        r = c.mapping(spec, where, c.line_of(m, name))
        c.known_keys(r, where, ("description", "members", "via", "fallback"), ("via",))
        members = c.names(r, "members", where)
        via = c.names(r, "via", where)
        for pid in members:
            if pid not in people:
                c.error(c.line_of(r, "members"), f"{where}.members: unknown person {pid!r}")
        reachable = 0
        for ch in via:
            cfg = channels.get(ch)
            if cfg is None:
                c.error(c.line_of(r, "via"), f"{where}.via: unknown channel {ch!r}")
                continue
            if not cfg.per_person:
                reachable += 1
            else:
                reachable += sum(1 for pid in members if pid in people
                                 and (cfg.contact is None or cfg.contact in people[pid].contacts))
        if via and reachable == 0 and all(ch in channels for ch in via):
            c.error(r.line, f"{where}: nobody can be reached: no member has a contact for "
                            f"{', '.join(via)}")
        receivers[name] = Receiver(name, c.string(r, "description", where, "") or "",
                                   members, via, c.string(r, "fallback", where))
    for name, rec in receivers.items():
        if rec.fallback is not None and rec.fallback not in receivers:
            c.error(c.line_of(c.mapping(m[name], name, 0), "fallback"),
                    f"receivers.{name}.fallback: unknown receiver {rec.fallback!r}")
    return receivers


def _check_route(c: _Checker, raw: Any, line: int, path: str, parent: Route | None,
                 receivers: Mapping[str, Receiver], names: set[str]) -> Route:
    where = path
    m = c.mapping(raw, where, line)
    c.known_keys(m, where, _ROUTE_KEYS)
    name = c.string(m, "name", where)
    if name is not None:
        if name in names:
            c.error(c.line_of(m, "name"), f"{where}.name: route name {name!r} is used twice")
        names.add(name)
    matchers = c.matchers(m, where)
    if parent is None:
        if matchers:
            c.error(m.line, "route: the root route is the default route and matches every "
                            "alert; put matchers on its child routes")
        if not m.get("receiver"):
            c.error(m.line, "route: the root route needs a 'receiver' (the default)")
        if m.get("continue"):
            c.error(c.line_of(m, "continue"), "route.continue: not allowed on the root route")
    receiver = c.string(m, "receiver", where) or (parent.receiver if parent else "")
    if receiver and receiver not in receivers:
        c.error(c.line_of(m, "receiver"), f"{where}.receiver: unknown receiver {receiver!r}")
    group_by = c.names(m, "group_by", where) if "group_by" in m else (
        parent.group_by if parent else ())
    for label in group_by:
        if label != "..." and canonical_label(label) not in LABELS:
            c.error(c.line_of(m, "group_by"), f"{where}.group_by: unknown label {label!r}")
    group_by = tuple(canonical_label(label) for label in group_by)
    if "..." in group_by and len(group_by) > 1:
        c.error(c.line_of(m, "group_by"), f"{where}.group_by: '...' (every label) stands alone")

    def inherited(key: str, default: timedelta) -> timedelta:
        base = getattr(parent, key) if parent else default
        value = c.duration(m, key, where, base) or base
        if value < timedelta(0):
            c.error(c.line_of(m, key), f"{where}.{key}: must not be negative")
        return value

    group_wait = inherited("group_wait", timedelta(seconds=30))
    group_interval = inherited("group_interval", timedelta(minutes=5))
    repeat_interval = inherited("repeat_interval", timedelta(hours=4))
    if group_interval <= timedelta(0):
        c.error(c.line_of(m, "group_interval"), f"{where}.group_interval: must be > 0")
    escalation = parent.escalation if parent else ()
    if "escalation" in m:
        escalation = _check_escalation(c, m, where, receivers)
    route_id = name or path
    children: list[Route] = []
    proto = Route(route_id, matchers, receiver, group_by, group_wait, group_interval,
                  repeat_interval, c.boolean(m, "continue", where, False),
                  c.boolean(m, "send_resolved", where,
                            parent.send_resolved if parent else True),
                  escalation, (), m.line)
    raw_children = m.get("routes")
    if raw_children is not None:
        if not isinstance(raw_children, list):
            c.error(c.line_of(m, "routes"), f"{where}.routes: expected a list of routes")
        else:
            for i, child in enumerate(raw_children):
                child_line = child.line if isinstance(child, _Map) else c.line_of(m, "routes")
                children.append(_check_route(c, child, child_line, f"{path}.routes[{i}]",
                                             proto, receivers, names))
    return Route(route_id, matchers, receiver, group_by, group_wait, group_interval,
                 repeat_interval, proto.continue_, proto.send_resolved, escalation,
                 tuple(children), m.line)


def _check_escalation(c: _Checker, m: _Map, where: str, receivers: Mapping[str, Receiver]
                      ) -> tuple[EscalationLevel, ...]:
    raw = m.get("escalation")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        c.error(c.line_of(m, "escalation"), f"{where}.escalation: expected a list of levels "
                                            "({after: 15m, receiver: …})")
        return ()
    levels: list[EscalationLevel] = []
    for i, item in enumerate(raw, start=1):
        lw = f"{where}.escalation[{i}]"
        lv = c.mapping(item, lw, c.line_of(m, "escalation"))
        c.known_keys(lv, lw, ("after", "receiver"), ("after", "receiver"))
        after = c.duration(lv, "after", lw, None)
        receiver = c.string(lv, "receiver", lw)
        if receiver and receiver not in receivers:
            c.error(c.line_of(lv, "receiver"), f"{lw}.receiver: unknown receiver {receiver!r}")
        if after is None or not receiver:
            continue
        if after <= timedelta(0):
            c.error(c.line_of(lv, "after"), f"{lw}.after: must be > 0")
        if levels and after <= levels[-1].after:
            c.error(c.line_of(lv, "after"), f"{lw}.after: levels must come later and later "
                                            f"({after} is not after {levels[-1].after})")
        levels.append(EscalationLevel(after, receiver))
    return tuple(levels)


def _check_inhibit(c: _Checker, raw: Any, line: int) -> tuple[InhibitRule, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        c.error(line, "inhibit_rules: expected a list")
        return ()
    rules = []
    for i, item in enumerate(raw, start=1):
        where = f"inhibit_rules[{i}]"
        m = c.mapping(item, where, line)
        c.known_keys(m, where, ("source", "target", "source_matchers", "target_matchers",
                                "equal"))
        source = c.matchers(m, where, "source", "source_re", "source_matchers")
        target = c.matchers(m, where, "target", "target_re", "target_matchers")
        if not source or not target:
            c.error(m.line, f"{where}: needs source and target matchers")
        equal = tuple(canonical_label(x) for x in c.names(m, "equal", where))
        for label in equal:
            if label not in LABELS:
                c.error(c.line_of(m, "equal"), f"{where}.equal: unknown label {label!r}")
        rules.append(InhibitRule(source, target, equal))
    return tuple(rules)


def parse_config(text: str, source: str = "<config>") -> NotifyConfig:
    """Validate a config's text; raises :class:`ConfigError` listing every problem found."""
    c = _Checker(source)
    try:
        raw = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise ConfigError([f"{c.at(line)}: invalid YAML: {exc.problem or exc}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{source}: invalid YAML: {exc}"]) from None
    top = c.mapping(raw, "config", 1)
    c.known_keys(top, "config", ("version", "global", "people", "channels", "receivers", "route",
                                 "inhibit_rules"), ("version", "receivers", "route"))
    if "version" in top and top["version"] != VERSION:
        c.error(c.line_of(top, "version"), f"version: this notifier reads version {VERSION}, "
                                           f"the file says {top['version']!r}")
    global_ = _check_global(c, top.get("global"), c.line_of(top, "global"))
    people = _check_people(c, top.get("people"), c.line_of(top, "people"))
    channels = _check_channels(c, top.get("channels"), c.line_of(top, "channels"))
    receivers = _check_receivers(c, top.get("receivers"), c.line_of(top, "receivers"), people,
                                 channels)
    if global_.fallback_receiver and global_.fallback_receiver not in receivers:
        c.error(c.line_of(c.mapping(top.get("global"), "global", 0), "fallback_receiver"),
                f"global.fallback_receiver: unknown receiver {global_.fallback_receiver!r}")
    route = _check_route(c, top.get("route"), c.line_of(top, "route"), "route", None, receivers,
                         set())
    inhibit = _check_inhibit(c, top.get("inhibit_rules"), c.line_of(top, "inhibit_rules"))
    if c.problems:
        raise ConfigError(c.problems)
    return NotifyConfig(source, VERSION, global_, people, channels, receivers, route, inhibit)


def load_config(path: Path) -> NotifyConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the notification config: {exc.strerror}"]
                          ) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not UTF-8 text"]) from None
    return parse_config(text, str(path))

