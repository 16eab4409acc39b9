"""A monitoring subsystem as a plug-in: its input topics, KPI families and alert rules.

The processor and the Faust app know nothing about traffic or any other field; each domain
module (``ioc.streams.traffic``, …) builds a :class:`Domain` from reference data, and
:mod:`ioc.streams.registry` lists them. Adding a subsystem means adding a module and a line
there, plus its schemas, migration, simulator and dashboard.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from ioc.streams.engine import TP, KpiEngine, KpiFamily, Position, Window


class Progress:
    """What the worker knows of its assigned partitions, shared by every rule (read-only to
    them): ``unread`` maps each assigned partition to the number of its messages not yet
    handled (``None`` while its end is not known yet), as of the last tick. It is ``None`` when
    the caller does not know its assignment (pure tests that drive the processor event by
    event); rules then fall back to what the events alone tell."""

    def __init__(self) -> None:
        self.unread: dict[TP, int | None] | None = None


class Holds:
    """Source positions one rule keeps un-acknowledged because its state is built from them.

    The event log is the state: a rule that needs an event after the event's windows closed
    (an open citizen report, the last 35 days of disease cases) *holds* its position under a key
    of its choosing (report id, area+disease, …) and releases the key when the state no longer
    needs it. Until then Faust does not commit past it, so after a crash or a rebalance the new
    owner replays the held events and the rule rebuilds exactly the same state. Topics whose
    events are held for long declare a matching retention (:attr:`Domain.retention`).
    """

    def __init__(self, engine: KpiEngine, released: list[Position],
                 progress: Progress | None = None) -> None:
        self._engine = engine
        self._released = released
        self._by_key: dict[str, list[Position]] = {}
        self.current: Position | None = None
        self.progress = progress if progress is not None else Progress()

    def hold(self, key: str) -> None:
        """Hold the event being handled (inside ``on_event``) under ``key``."""
        if self.current is None:
            raise RuntimeError("Holds.hold is only valid while an event is being handled")
        held = self._by_key.setdefault(key, [])
        if self.current not in held:
            held.append(self.current)
            self._engine.retain(self.current)

    def release(self, key: str) -> None:
        """Let go of every position held under ``key``."""
        for pos in self._by_key.pop(key, ()):
            self._engine.unretain(pos, self._released)

    def keys(self) -> set[str]:
        return set(self._by_key)

    def drop_partitions(self, tps: set[TP]) -> set[str]:
        """Forget keys fed by partitions this worker lost; returns them so the rule can drop
        their state (the partitions' new owner replays the events)."""
        gone = {k for k, held in self._by_key.items() if any(p[0] in tps for p in held)}
        for key in gone:
            # The engine forgets positions of lost partitions itself; a key should follow the
            # topic's partition key, but if it spanned partitions, the kept ones are let go.
            for pos in self._by_key.pop(key):
                if pos[0] not in tps:
                    self._engine.unretain(pos, self._released)
        return gone

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_key.values())


Record = dict[str, Any]
"""What rule hooks return: alert records (:func:`ioc.streams.rules.alert_record`, they carry
``alert_id``) and KPI records (:func:`ioc.streams.rules.kpi_record`, they carry ``kpi``) — rules
compute the KPIs that are state rather than windows (a backlog gauge, a 30-day rate)."""


class Rule(Protocol):
    """An alert rule (or a stateful KPI): a small state machine fed by events, closed windows
    and time.

    Hooks must be idempotent under replay and re-sent events: after a restart the processor
    shows a rule the held events again, and an agency may send an event twice (same
    ``event_id``). ``now`` in :meth:`on_timer` is the processor's timer clock (event time,
    continuing at wall-clock speed when no events come — see :class:`Processor`), so timers
    are deterministic under a controlled clock.
    """

    name: str
    topics: tuple[str, ...]

    def bind(self, holds: Holds) -> None: ...

    def on_event(self, topic: str, event: Mapping[str, Any], watermark: datetime
                 ) -> list[Record]: ...

    def on_window_closed(self, window: Window) -> list[Record]: ...

    def on_timer(self, now: datetime) -> list[Record]: ...

    def restore(self, alerts: Iterable[Mapping[str, Any]]) -> None: ...

    def forget(self, keys: set[str]) -> None: ...


class BaseRule:
    """No-op hooks; rules override what they need. ``self.holds`` is bound by the processor."""

    name = ""
    topics: tuple[str, ...] = ()
    holds: Holds

    def bind(self, holds: Holds) -> None:
        self.holds = holds

    def on_event(self, topic: str, event: Mapping[str, Any], watermark: datetime
                 ) -> list[Record]:
        return []

    def on_window_closed(self, window: Window) -> list[Record]:
        return []

    def on_timer(self, now: datetime) -> list[Record]:
        return []

    def restore(self, alerts: Iterable[Mapping[str, Any]]) -> None:
        return None

    def forget(self, keys: set[str]) -> None:
        """Drop the state of ``keys`` (their partitions moved to another worker)."""
        return None


@dataclass(frozen=True)
class Domain:
    """``retention`` maps a topic to how long Kafka must keep it (``None``: forever) when the
    domain's rules hold its events longer than the default retention."""

    name: str
    topics: tuple[str, ...]
    families: tuple[KpiFamily, ...]
    rules: tuple[Rule, ...]
    retention: Mapping[str, timedelta | None] = field(default_factory=dict)
