"""A monitoring subsystem as a plug-in: its input topics, KPI families and alert rules.

The processor and the Faust app know nothing about traffic or any other field; each domain
module (``ioc.streams.traffic``, …) builds a :class:`Domain` from reference data, and
:mod:`ioc.streams.registry` lists them. Adding a subsystem means adding a module and a line
there, plus its schemas, migration, simulator and dashboard.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ioc.streams.engine import KpiFamily, Window


class Rule(Protocol):
    """An alert rule: a small state machine fed by events, closed windows and time.

    Every hook returns alert records (see :func:`ioc.streams.rules.alert_record`). Hooks must
    be idempotent under replay: the processor may show a rule the same event or window again
    after a restart.
    """

    name: str
    topics: tuple[str, ...]

    def on_event(self, topic: str, event: Mapping[str, Any], watermark: datetime
                 ) -> list[dict[str, Any]]: ...

    def on_window_closed(self, window: Window) -> list[dict[str, Any]]: ...

    def expire(self, watermark: datetime) -> list[dict[str, Any]]: ...

    def restore(self, alerts: Iterable[Mapping[str, Any]]) -> None: ...


class BaseRule:
    """No-op hooks; rules override what they need."""

    name = ""
    topics: tuple[str, ...] = ()

    def on_event(self, topic: str, event: Mapping[str, Any], watermark: datetime
                 ) -> list[dict[str, Any]]:
        return []

    def on_window_closed(self, window: Window) -> list[dict[str, Any]]:
        return []

    def expire(self, watermark: datetime) -> list[dict[str, Any]]:
        return []

    def restore(self, alerts: Iterable[Mapping[str, Any]]) -> None:
        return None


@dataclass(frozen=True)
class Domain:
    name: str
    topics: tuple[str, ...]
    families: tuple[KpiFamily, ...]
    rules: tuple[Rule, ...]
