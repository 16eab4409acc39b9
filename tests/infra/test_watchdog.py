"""The watchdog's decisions with a controlled clock (the e2e test proves the restart)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ioc.infra.watchdog import RULE, Watchdog

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


@dataclass
class State:
    heartbeat: float = 100.0
    positions: dict[Any, int] = field(default_factory=dict)


class Gauge:
    def set(self, v: float) -> None:
        self.v = v


def make(state: State, lag: int | None = 0, restored: list[dict[str, Any]] | None = None
         ) -> tuple[Watchdog, list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []
    dog = Watchdog(state, group="ioc-streams", stall_after=10, lag=lambda: lag,
                   publish=sent.append, on_stall=lambda r: None, stalled_gauge=Gauge(),
                   restored=restored, clock=lambda: NOW)
    return dog, sent


def test_not_armed_until_the_first_heartbeat_after_start() -> None:
    state = State()
    dog, _ = make(state, lag=500)
    # a slow group join: no heartbeat for a long time, no progress, a backlog — not a stall
    assert dog.check(1000.0, {}, 0.0) == (None, 1000.0)
    state.heartbeat = 1001.0
    assert dog.check(1001.5, {}, 1001.5)[0] is None


def test_a_blocked_loop_is_a_stall() -> None:
    state = State()
    dog, _ = make(state)
    state.heartbeat = 101.0
    assert dog.check(105.0, {}, 105.0)[0] is None
    reason, _ = dog.check(112.0, {}, 112.0)
    assert reason is not None and reason.startswith("event loop blocked for 11 s")


def test_a_backlog_without_progress_is_a_stall_progress_is_not() -> None:
    state = State(positions={("t", 0): 5})
    dog, _ = make(state, lag=40)
    state.heartbeat = 200.0
    reason, moved = dog.check(200.0, {}, 190.0)
    assert (reason, moved) == (None, 200.0)  # positions moved since the last check
    state.heartbeat = 209.0
    assert dog.check(209.5, {("t", 0): 5}, 200.0)[0] is None
    state.heartbeat = 211.0
    reason, _ = dog.check(211.0, {("t", 0): 5}, 200.0)
    assert reason == "40 messages waiting and no progress for 11 s"


def test_no_backlog_no_progress_is_just_quiet() -> None:
    state = State(positions={("t", 0): 5})
    dog, _ = make(state, lag=0)
    state.heartbeat = 500.0
    assert dog.check(500.0, {("t", 0): 5}, 100.0)[0] is None


def test_the_previous_stall_alert_resolves_once_this_process_reads() -> None:
    firing = {"rule": RULE, "entity": "ioc-streams", "status": "firing",
              "starts_at": NOW.replace(hour=2)}
    state = State()
    dog, sent = make(state, restored=[firing])
    dog.check(100.0, {}, 100.0)
    assert sent == []  # nothing read yet
    state.positions[("t", 0)] = 1
    dog.check(101.0, {}, 100.0)
    [resolved] = sent
    assert (resolved["rule"], resolved["status"], resolved["ends_at"]) == (RULE, "resolved", NOW)
    assert resolved["starts_at"] == firing["starts_at"]
    dog.check(102.0, dict(state.positions), 101.0)
    assert len(sent) == 1
