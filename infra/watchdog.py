"""The stream worker's watchdog: notice a stalled worker, say so, and restart it.

A Faust worker can stall without dying — a blocking call in the event loop, or an agent
awaiting something that never comes (faust-streaming's tracker has both). Nothing crashes, the
consumer group keeps the partitions, and the wall quietly freezes. The watchdog is a thread of
the worker process, so it keeps running when the event loop does not. Every second it checks:

* **the event loop's heartbeat** — the worker's tick timer stamps ``WorkerState.heartbeat``
  every second; no stamp for ``stall_after`` seconds means the loop is blocked;
* **progress on a backlog** — the offsets the agent has read (``WorkerState.positions``). If
  the last lag reading showed unread messages and no position moved for ``stall_after``
  seconds, the agent is stuck — provided the broker answers (``broker_ok``): while Kafka itself
  is away (a restart) the worker is waiting, not stalled. (Committed offsets are the wrong
  signal: they legitimately wait an hour while an hourly window holds its events.)

On a stall it sets ``ioc_stream_stalled`` to 1, publishes a critical ``platform.worker_stalled``
alert (Vietnamese summary) straight to the alert topic with its own producer, logs the reason,
and **restarts the process in place** (``os.execv`` of the same command after stopping its
child processes): the new worker resumes from the committed offsets, so nothing is lost, and
once it makes progress it resolves the alert. Under systemd or Kubernetes the PID stays the
same; the restart is also counted in the log.

``IOC_FAULT_BLOCK_LOOP_AFTER_S`` (testing only) blocks the event loop once, that many seconds
after start, so the tests can prove all of the above on a real worker.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ioc.streams.rules import alert_record

log = logging.getLogger(__name__)

RULE = "platform.worker_stalled"
FAULT_ENV = "IOC_FAULT_BLOCK_LOOP_AFTER_S"
FAULT_FIRED_ENV = "IOC_FAULT_BLOCK_LOOP_FIRED"


def stall_alert(group: str, reason_vi: str, status: str, since: datetime,
                now: datetime) -> dict[str, Any]:
    return alert_record(
        rule=RULE, labels={"group": group}, severity="critical", status=status,
        domain="platform", area_code="", entity=group, value=0.0, threshold=0.0,
        summary=(f"Bộ xử lý luồng {group} bị treo ({reason_vi}); đã tự khởi động lại."
                 if status == "firing" else
                 f"Bộ xử lý luồng {group} đã hoạt động trở lại sau khi tự khởi động lại."),
        starts_at=since, ends_at=None if status == "firing" else now, updated_at=now)


class Watchdog(threading.Thread):
    """See the module docstring. ``state`` is the worker's ``WorkerState``; ``lag`` returns
    the total unread messages of the last reading (``None`` when unknown); ``publish`` sends
    one alert record; ``on_stall`` restarts (or, in tests, records) — it must not return."""

    def __init__(self, state: Any, *, group: str, stall_after: float,
                 lag: Callable[[], int | None], publish: Callable[[dict[str, Any]], None],
                 on_stall: Callable[[str], None], stalled_gauge: Any,
                 restored: list[dict[str, Any]] | None = None,
                 broker_ok: Callable[[], bool] = lambda: True,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        super().__init__(name="ioc-watchdog", daemon=True)
        self.state, self.group, self.stall_after = state, group, stall_after
        self.lag, self.publish, self.on_stall = lag, publish, on_stall
        self.gauge, self.clock, self.broker_ok = stalled_gauge, clock, broker_ok
        self._stop = threading.Event()
        self._first_heartbeat = state.heartbeat
        self._armed = False
        # A stall alert left firing by the previous process resolves once this one progresses.
        self._open = next((a for a in restored or [] if a.get("rule") == RULE
                           and a.get("entity") == group and a.get("status") == "firing"),
                          None)

    def stop(self) -> None:
        self._stop.set()

    def check(self, now: float, last_positions: dict[Any, int], last_move: float
              ) -> tuple[str | None, float]:
        """One check: (reason if stalled, time positions last moved). Armed by the first
        heartbeat after start: joining the consumer group can take longer than a stall."""
        if self._open is not None and self.state.positions:
            # This process has read messages: the stall the previous one reported is over.
            self.publish(stall_alert(self.group, "", "resolved", self._open["starts_at"],
                                     self.clock()))
            self._open = None
        if not self._armed:
            if self.state.heartbeat == self._first_heartbeat:
                return None, now
            self._armed = True
        if self.state.positions != last_positions:
            last_move = now
        if now - self.state.heartbeat > self.stall_after:
            return (f"event loop blocked for {now - self.state.heartbeat:.0f} s", last_move)
        backlog = self.lag()
        if backlog and now - last_move > self.stall_after and self.broker_ok():
            return (f"{backlog} messages waiting and no progress for {now - last_move:.0f} s",
                    last_move)
        return None, last_move

    def run(self) -> None:
        last_positions = dict(self.state.positions)
        last_move = time.monotonic()
        while not self._stop.wait(1.0):
            reason, last_move = self.check(time.monotonic(), last_positions, last_move)
            last_positions = dict(self.state.positions)
            if reason is None:
                continue
            self.gauge.set(1)
            log.error("worker stalled: %s; restarting", reason)
            vi = ("vòng lặp sự kiện không phản hồi" if reason.startswith("event loop")
                  else "có dữ liệu chờ nhưng không xử lý được")
            try:
                now = self.clock()
                self.publish(stall_alert(self.group, vi, "firing", now, now))
            finally:
                self.on_stall(reason)
            return


RESTARTS_ENV = "IOC_WATCHDOG_RESTARTS"


def restarts_so_far() -> int:
    """How often the watchdog restarted this process (carried across ``exec`` in the
    environment; exported as ``ioc_stream_watchdog_restarts``)."""
    return int(os.environ.get(RESTARTS_ENV, "0"))


def restart_in_place(children: Callable[[], None]) -> None:
    """Stop the child processes (``children``), then replace this process with a fresh run of
    the same command. Never returns."""
    os.environ[RESTARTS_ENV] = str(restarts_so_far() + 1)
    try:
        children()
    finally:
        sys.stderr.flush()
        sys.stdout.flush()
        os.execv(sys.executable, [sys.executable, *sys.argv])  # noqa: S606 — same command


def maybe_inject_fault(app: Any) -> None:
    """Testing only: block the event loop once, ``IOC_FAULT_BLOCK_LOOP_AFTER_S`` after start."""
    delay = os.environ.get(FAULT_ENV)
    if not delay or os.environ.get(FAULT_FIRED_ENV):
        return
    os.environ[FAULT_FIRED_ENV] = "1"  # survives the exec: the restarted worker runs normally

    @app.task
    async def _block_loop() -> None:
        import asyncio

        await asyncio.sleep(float(delay))
        log.warning("fault injection: blocking the event loop")
        time.sleep(3600)  # blocking the loop is the point of the fault
