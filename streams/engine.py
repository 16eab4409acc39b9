"""Windowed KPI computation on event time, with no Kafka in it.

The engine is fed decoded events with their source position (topic, partition, offset) and
produces KPI records. Three properties make the results exact under at-least-once delivery:

* **Deduplication** — a window remembers the ``event_id`` values it counted; a re-sent event
  (an agency re-uploading a file, a producer retry) is not counted twice.
* **Holds** — an event stays *held* while any window it contributed to is open. The Faust agent
  acknowledges (and so lets Faust commit) only released events. After a crash, the worker
  resumes at the oldest held event and replays it, rebuilding every open window completely; a
  window is never re-emitted from partial state.
* **Per-partition watermarks** — a window closes when the watermark (the highest event time seen)
  of every partition that fed it is past ``window_end + allowed_lateness``. Events older than
  that are *late*: they are dropped (and counted in metrics) instead of re-opening a closed
  window with partial state.

A window can be retained after it closes (``KpiFamily.retain_closed``) until the next window of
the same key closes; rules that compare consecutive windows need the predecessor replayed too.

**Replay guards.** A restarted worker replays each partition from its committed offset, which
rules may hold far back (an open citizen report, a dossier not yet decided). Windows that had
already closed before the restart must not be rebuilt from that partial replay and published
over their complete final value. The worker therefore checkpoints, per partition,
:meth:`KpiEngine.checkpoint` — the first offset any *window* still needs and the watermark of the
last :meth:`advance` — and a restarted worker installs it as a :class:`ReplayGuard`:

* events before ``engine_from`` are not added to windows at all (outcome ``REPLAYED``; rules still
  see them and rebuild their own state);
* a window re-created from later events that had closed before the checkpoint (every partition
  that feeds it has ``end + lateness <= closed_wm``: it was due at that advance) is *quiet*: it
  publishes nothing and is not passed to rules again, unless its family retains closed windows
  (then it is the predecessor a rule compares with, and it is complete: retained windows hold
  their events). A window open at the checkpoint held all its events, is replayed whole and is
  not quiet.

What no checkpoint covers: a worker killed between two checkpoints (every 5 s) replays from its
last *committed* offset, and a window that closed after the last checkpoint is rebuilt from the
replayed events; if some of its events came before the committed offset (events of it and of the
next window interleaved out of order in the partition), the rebuilt value is partial and
replaces the complete one. In-order data never hits this.

A window fed by several partitions has one more hazard that no guard covers: it closes when the
partitions that fed it *so far* are past it, so a partition read much later (a lagging one, or
one that moved to another worker) can re-create it from its own events alone. KPI keys therefore
follow the topic's partition key wherever possible (checked on simulated data by
``tests/streams/test_partitioning.py``, which lists the exceptions and why).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from ioc.streams.windows import WindowSpec

TP = tuple[str, int]
Position = tuple[TP, int]  # ((topic, partition), offset)


class Accumulator(Protocol):
    def add(self, event: Mapping[str, Any]) -> None: ...

    def results(self) -> list[tuple[str, float, int]]:
        """(kpi code, value, sample_count) for each KPI this window yields; may be empty."""
        ...


@dataclass(frozen=True)
class KpiFamily:
    """KPIs computed from one topic over one window length, keyed by (area_code, entity)."""

    name: str
    topic: str
    window: WindowSpec
    key: Callable[[Mapping[str, Any]], tuple[str, str] | None]
    accumulator: Callable[[str, str], Accumulator]
    retain_closed: bool = False


@dataclass
class Window:
    family: KpiFamily
    start: datetime
    end: datetime
    area_code: str
    entity: str
    acc: Accumulator
    event_ids: set[str] = field(default_factory=set)
    holds: list[Position] = field(default_factory=list)
    tps: set[TP] = field(default_factory=set)
    dirty: bool = True
    closed: bool = False
    quiet: bool = False  # closed before a restart: rebuilt for rules' context only (see above)

    @property
    def series(self) -> tuple[str, str, str]:
        return (self.family.name, self.area_code, self.entity)


class Outcome(enum.Enum):
    COUNTED = "counted"
    REPLAYED = "replayed"  # counted before a restart by a window that has closed since
    DUPLICATE = "duplicate"
    LATE = "late"
    IGNORED = "ignored"  # no KPI family reads this topic


@dataclass(frozen=True)
class ReplayGuard:
    """What a partition's last checkpoint says (see the module docstring)."""

    engine_from: int
    closed_wm: datetime | None


@dataclass
class Advance:
    kpis: list[dict[str, Any]] = field(default_factory=list)
    closed: list[Window] = field(default_factory=list)
    released: list[Position] = field(default_factory=list)


class KpiEngine:
    def __init__(self, families: Iterable[KpiFamily], allowed_lateness: timedelta,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.families = list(families)
        self.lateness = allowed_lateness
        self.clock = clock
        self._by_topic: dict[str, list[KpiFamily]] = {}
        for fam in self.families:
            self._by_topic.setdefault(fam.topic, []).append(fam)
        self.watermarks: dict[TP, datetime] = {}
        self._windows: dict[tuple[str, datetime, str, str], Window] = {}
        self._retained: dict[tuple[str, str, str], Window] = {}
        self._refs: dict[Position, int] = {}
        self.guards: dict[TP, ReplayGuard] = {}
        self._read: dict[TP, int] = {}  # highest offset added per partition
        self._advanced_wm: dict[TP, datetime] = {}  # watermarks at the last advance()

    # -- holds ---------------------------------------------------------------------------------
    def retain(self, pos: Position) -> None:
        """Hold ``pos`` once more (rules hold the events their state is built from)."""
        self._refs[pos] = self._refs.get(pos, 0) + 1

    def unretain(self, pos: Position, out: list[Position]) -> None:
        """Drop one hold on ``pos``; append it to ``out`` when nothing holds it any more."""
        left = self._refs[pos] - 1
        if left:
            self._refs[pos] = left
        else:
            del self._refs[pos]
            out.append(pos)

    # -- input ---------------------------------------------------------------------------------
    def process(self, topic: str, event: Mapping[str, Any], tp: TP, offset: int
                ) -> tuple[Outcome, list[Position]]:
        """Add one event. Returns its outcome and positions released right away."""
        pos: Position = (tp, offset)
        self.retain(pos)
        outcome = self.add(topic, event, tp, offset)
        released: list[Position] = []
        self.unretain(pos, released)
        return outcome, released

    def add(self, topic: str, event: Mapping[str, Any], tp: TP, offset: int) -> Outcome:
        """Add one event to its windows, which hold its position until they close. The caller
        holds the position around the call (see :meth:`process`)."""
        pos: Position = (tp, offset)
        ts: datetime = event["occurred_at"]
        wm = self.watermarks.get(tp)
        # Every partition's watermark moves, KPI or not: rules' timers run on it too.
        if wm is None or ts > wm:
            self.watermarks[tp] = ts
        if offset > self._read.get(tp, -1):
            self._read[tp] = offset
        families = self._by_topic.get(topic)
        if not families:
            return Outcome.IGNORED
        guard = self.guards.get(tp)
        if guard is not None and offset < guard.engine_from:
            return Outcome.REPLAYED
        targets: list[tuple[KpiFamily, datetime, datetime, str, str]] = []
        for fam in families:
            key = fam.key(event)
            if key is None:
                continue
            start, end = fam.window.bounds(ts)
            targets.append((fam, start, end, key[0], key[1]))
        if not targets:
            return Outcome.IGNORED
        # Late if even the shortest window it would join has closed on this partition.
        if wm is not None and all(end + self.lateness <= wm for _, _, end, _, _ in targets):
            return Outcome.LATE
        event_id = str(event["event_id"])
        taken = 0
        duplicate = False
        for fam, start, end, area, entity in targets:
            if wm is not None and end + self.lateness <= wm:
                continue  # this (longer or shorter) window closed already; others still count
            wkey = (fam.name, start, area, entity)
            win = self._windows.get(wkey)
            if win is None:
                win = Window(fam, start, end, area, entity, fam.accumulator(area, entity))
                self._windows[wkey] = win
            if event_id in win.event_ids:
                duplicate = True
                continue
            win.event_ids.add(event_id)
            win.acc.add(event)
            win.holds.append(pos)
            win.tps.add(tp)
            win.dirty = True
            taken += 1
        if taken == 0:
            return Outcome.DUPLICATE if duplicate else Outcome.LATE
        self._refs[pos] = self._refs.get(pos, 0) + taken
        return Outcome.COUNTED

    # -- output --------------------------------------------------------------------------------
    def _record(self, win: Window, kpi: str, value: float, count: int, final: bool
                ) -> dict[str, Any]:
        return {
            "kpi": kpi, "window": win.family.window.name,
            "window_start": win.start, "window_end": win.end,
            "area_code": win.area_code, "entity": win.entity,
            "value": float(value), "sample_count": int(count),
            "computed_at": self.clock(), "is_final": final,
        }

    def _closed_before_checkpoint(self, win: Window) -> bool:
        """Every partition that fed ``win`` has a guard saying the window was due at the last
        advance before the checkpoint — so it closed then (see the module docstring)."""
        limit = win.end + self.lateness
        for tp in win.tps:
            guard = self.guards.get(tp)
            if guard is None or guard.closed_wm is None or guard.closed_wm < limit:
                return False
        return bool(win.tps)

    def _emit(self, win: Window, final: bool) -> list[dict[str, Any]]:
        win.dirty = False
        win.quiet = bool(self.guards) and self._closed_before_checkpoint(win)
        if win.quiet:
            return []
        return [self._record(win, k, v, n, final) for k, v, n in win.acc.results()]

    def _release(self, win: Window, out: list[Position]) -> None:
        for pos in win.holds:
            self.unretain(pos, out)
        win.holds = []

    def _is_due(self, win: Window) -> bool:
        limit = win.end + self.lateness
        return all(self.watermarks.get(tp, limit) >= limit for tp in win.tps)

    def advance(self) -> Advance:
        """Close every window whose partitions' watermarks passed its end plus lateness."""
        result = Advance()
        self._advanced_wm = dict(self.watermarks)
        due = [w for w in self._windows.values() if self._is_due(w)]
        due.sort(key=lambda w: (w.end, w.family.name, w.area_code, w.entity))
        for win in due:
            del self._windows[(win.family.name, win.start, win.area_code, win.entity)]
            win.closed = True
            result.kpis.extend(self._emit(win, final=True))
            result.closed.append(win)
            if win.family.retain_closed:
                previous = self._retained.get(win.series)
                if previous is not None:
                    self._release(previous, result.released)
                self._retained[win.series] = win
            else:
                self._release(win, result.released)
        # A retained window whose successor never came is released once it is two windows old.
        for series, win in list(self._retained.items()):
            limit = win.end + 2 * win.family.window.size + self.lateness
            if all(self.watermarks.get(tp, limit) >= limit for tp in win.tps):
                del self._retained[series]
                self._release(win, result.released)
        return result

    def flush(self) -> list[dict[str, Any]]:
        """Provisional values of open windows that changed since they were last emitted."""
        out: list[dict[str, Any]] = []
        for win in sorted(self._windows.values(), key=lambda w: (w.end, w.family.name)):
            if win.dirty:
                out.extend(self._emit(win, final=False))
        return out

    def checkpoint(self) -> dict[TP, ReplayGuard]:
        """Per partition read so far: the first offset a window (open or retained) still holds,
        else the offset after the last one read; and the watermark of the last advance. Take it
        *before* flushing the outputs: every window it counts as closed has had its final
        records produced by then."""
        first: dict[TP, int] = {tp: off + 1 for tp, off in self._read.items()}
        for win in (*self._windows.values(), *self._retained.values()):
            for tp, off in win.holds:
                if off < first[tp]:
                    first[tp] = off
        return {tp: ReplayGuard(off, self._advanced_wm.get(tp)) for tp, off in first.items()}

    def drop_partitions(self, tps: set[TP]) -> None:
        """Forget the state fed by partitions this worker no longer owns (after a rebalance);
        their new owner rebuilds it by replaying from the committed offsets."""
        for key, win in list(self._windows.items()):
            if win.tps & tps:
                del self._windows[key]
        for series, win in list(self._retained.items()):
            if win.tps & tps:
                del self._retained[series]
        for pos in [p for p in self._refs if p[0] in tps]:
            del self._refs[pos]
        for tp in tps:
            self.watermarks.pop(tp, None)
            self._read.pop(tp, None)
            self._advanced_wm.pop(tp, None)
            self.guards.pop(tp, None)

    @property
    def open_windows(self) -> int:
        return len(self._windows)

    @property
    def held_events(self) -> int:
        return len(self._refs)
