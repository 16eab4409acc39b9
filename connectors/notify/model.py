"""Alerts as the notifier sees them: labels, matchers, episode and transition keys, durations
and Vietnamese wording. Pure functions, no I/O.

An alert record (``ioc.alert.v1``) has no free-form label map; its labels are its identifying
fields: ``rule`` (also ``alertname``), ``severity``, ``domain``, ``area_code`` (also ``area``),
``entity``, ``alert_id`` and ``status``. Routes, silences and inhibition rules match on those.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")

LABELS = ("rule", "severity", "domain", "area_code", "entity", "alert_id", "status")
ALIASES = {"alertname": "rule", "area": "area_code"}

SEVERITY_VI = {"critical": "Nghiêm trọng", "warning": "Cảnh báo", "info": "Thông tin"}
STATUS_VI = {"firing": "Đang kích hoạt", "resolved": "Đã kết thúc"}
DOMAIN_VI = {
    "traffic": "Giao thông",
    "security": "An ninh trật tự",
    "cyber": "Thông tin trên mạng và an toàn thông tin",
    "feedback": "Phản ánh hiện trường",
    "egov": "Chính quyền điện tử",
    "health": "Y tế",
    "edu": "Giáo dục",
    "econ": "Kinh tế - xã hội",
}
SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}


def canonical_label(name: str) -> str:
    """``area`` → ``area_code``, ``alertname`` → ``rule``; other names unchanged."""
    return ALIASES.get(name, name)


def labels_of(alert: Mapping[str, Any]) -> dict[str, str]:
    return {name: str(alert.get(name) or "") for name in LABELS}


# -- matchers ----------------------------------------------------------------------------------

_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$", re.S)


@functools.lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@dataclass(frozen=True)
class Matcher:
    """One Alertmanager-style matcher; regexes are anchored (they must match the whole value)."""

    name: str
    op: str  # = != =~ !~
    value: str

    def __post_init__(self) -> None:
        if self.op not in ("=", "!=", "=~", "!~"):
            raise ValueError(f"unknown matcher operator {self.op!r}")
        if canonical_label(self.name) not in LABELS:
            raise ValueError(f"unknown label {self.name!r}; labels are "
                             + ", ".join((*LABELS, *ALIASES)))
        object.__setattr__(self, "name", canonical_label(self.name))
        if self.op in ("=~", "!~"):
            try:
                _regex(self.value)
            except re.error as exc:
                raise ValueError(f"bad regular expression {self.value!r}: {exc}") from None

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """``severity="critical"``, ``area_code=~"50[23]"``, ``domain!=traffic`` …"""
        m = _MATCHER.match(text)
        if not m:
            raise ValueError(f'not a matcher: {text!r} (expected name op "value", '
                             "op one of = != =~ !~)")
        name, op, value = m.groups()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = re.sub(r'\\(.)', r"\1", value[1:-1])
        return cls(name, op, value)

    @classmethod
    def any_of(cls, name: str, values: list[str]) -> Matcher:
        if len(values) == 1:
            return cls(name, "=", values[0])
        return cls(name, "=~", "|".join(re.escape(v) for v in values))

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.name, "")
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        found = _regex(self.value).fullmatch(value) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.op}"{escaped}"'


def matches_all(matchers: tuple[Matcher, ...] | list[Matcher], labels: Mapping[str, str]
                ) -> bool:
    return all(m.matches(labels) for m in matchers)


# -- identities -------------------------------------------------------------------------------

def ms(value: datetime) -> int:
    return int(value.astimezone(UTC).timestamp() * 1000)


def from_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)


def episode_key(alert: Mapping[str, Any]) -> str:
    """``alert_id|starts_at_ms``: one episode of an alert."""
    return f"{alert['alert_id']}|{ms(alert['starts_at'])}"


def firing_key(alert: Mapping[str, Any]) -> str:
    """What a receiver was told about a firing alert: the episode and its severity (a severity
    change is news)."""
    return f"{episode_key(alert)}|{alert['severity']}"


def transition_key(alert: Mapping[str, Any]) -> str:
    """``alert_id|starts_at_ms|status|severity``: records with the same key are the same
    transition (a re-published record after a worker restart is one)."""
    return f"{episode_key(alert)}|{alert['status']}|{alert['severity']}"


def parse_transition_key(key: str) -> tuple[str, int, str, str]:
    alert_id, starts, status, severity = key.split("|")
    return alert_id, int(starts), status, severity


def stable_id(*parts: object) -> str:
    """A deterministic id: the same inputs always give the same id (history dedup)."""
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


# -- durations --------------------------------------------------------------------------------

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``30s``, ``5m``, ``1h30m``, ``2d``, ``500ms`` (Alertmanager / Prometheus style)."""
    s = str(text).strip()
    if not s:
        raise ValueError("empty duration")
    pos, total = 0, 0.0
    for m in _DURATION.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if pos != len(s):
        raise ValueError(f"not a duration: {text!r} (examples: 30s, 5m, 1h30m, 2d)")
    return timedelta(seconds=total)


def duration_vi(td: timedelta) -> str:
    """``15 phút``, ``1 giờ 30 phút``, ``45 giây``, ``2 ngày``."""
    secs = round(td.total_seconds())
    if secs < 60:
        return f"{secs} giây"
    days, rest = divmod(secs, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = []
    if days:
        parts.append(f"{days} ngày")
    if hours:
        parts.append(f"{hours} giờ")
    if minutes:
        parts.append(f"{minutes} phút")
    if seconds and not days and not hours:
        parts.append(f"{seconds} giây")
    return " ".join(parts)


def local_time(value: datetime | None) -> str:
    """``07:15 02/11/2026`` in Vietnam time (how duty officers read times)."""
    if value is None:
        return ""
    return value.astimezone(LOCAL_TZ).strftime("%H:%M %d/%m/%Y")


def severity_vi(severity: str) -> str:
    return SEVERITY_VI.get(severity, severity)


def domain_vi(domain: str) -> str:
    return DOMAIN_VI.get(domain, domain)
