"""Exact KPI values, gauges, holds and both alerts of the e-government domain, on the pure
processor with a controlled clock (the timer clock is then the highest event time)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ioc.infra.reference import load_reference
from ioc.infra.reference_egov import load_agencies, load_systems
from ioc.schemas.validation import semantic_errors
from ioc.streams.domain import Domain
from ioc.streams.egov import (
    DOSSIER_TOPIC,
    PORTAL_CHECK_TOPIC,
    SETTLE,
    DossierRule,
    PortalDownRule,
    egov_domain,
    egov_families,
    pct_vi,
)
from ioc.streams.engine import TP, Outcome
from ioc.streams.processor import Processor, Step
from ioc.streams.rules import alert_fingerprint

REF = load_reference()
FIXED = datetime(2020, 1, 1, tzinfo=UTC)  # wall clock far behind the data: timer = event time
DAY0 = datetime(2026, 9, 30, 17, 0, tzinfo=UTC)  # 1 Oct 2026 00:00 in Quảng Nam
TP0: TP = (DOSSIER_TOPIC, 0)


def local(day: int, hour: float = 0) -> datetime:
    """``day`` days after 1 Oct 2026, at ``hour`` Vietnam time, in UTC."""
    return DAY0 + timedelta(days=day, hours=hour)


def dossier(did: str, status: str, at: datetime, *, received: datetime | None = None,
            due: datetime | None = None, resolved: datetime | None = None,
            agency: str = "UBND-503", area: str = "503", channel: str = "in_person",
            fee: bool = True, paid: bool = False, eid: str | None = None) -> dict[str, Any]:
    received = received or at
    return {"event_id": eid or f"{did}-{status}", "occurred_at": at, "source": "VP-UBND",
            "area_code": area, "dossier_id": did, "status": status, "channel": channel,
            "procedure_code": "1.003003", "agency": agency, "received_at": received,
            "due_at": due or received + timedelta(days=5),
            "resolved_at": resolved if status in ("resolved", "rejected") else None,
            "fee_required": fee, "paid_online": paid and fee, "online_level": "partial"}


CHECK_T0 = local(40, 9)


def check(n: int, minute: float, up: bool, system: str = "cong-dvc",
          t0: datetime = CHECK_T0) -> dict[str, Any]:
    return {"event_id": f"chk-{system}-{n}", "occurred_at": t0 + timedelta(minutes=minute),
            "source": "STTTT", "area_code": "", "system_id": system, "up": up,
            "response_ms": 420 + n if up else None, "http_status": 200 if up else 503,
            "check_location": "TTDL-QNA"}


class Feed:
    """Feeds a processor event by event (one tick after each), recording every output and
    the positions that were released."""

    def __init__(self, proc: Processor) -> None:
        self.proc = proc
        self.steps: list[Step] = []
        self.offsets: dict[TP, int] = {}
        self.released: set[tuple[TP, int]] = set()
        self.log: list[tuple[str, dict[str, Any], TP, int]] = []

    def send(self, topic: str, ev: dict[str, Any], partition: int = 0) -> Step:
        assert semantic_errors(topic, ev) == [], ev
        tp = (topic, partition)
        offset = self.offsets.get(tp, 0)
        self.offsets[tp] = offset + 1
        self.log.append((topic, ev, tp, offset))
        step = self.proc.handle(topic, ev, tp, offset)
        tick = self.proc.tick()
        for s in (step, tick):
            self.released.update(s.released)
        self.steps += [step, tick]
        return step

    def kpis(self, kpi: str | None = None, final: bool | None = None) -> list[dict[str, Any]]:
        return [r for s in self.steps for r in s.kpis
                if (kpi is None or r["kpi"] == kpi) and (final is None or r["is_final"] == final)]

    def alerts(self) -> list[dict[str, Any]]:
        return [a for s in self.steps for a in s.alerts]


def make(rule: DossierRule | None = None, lateness_s: float = 60) -> Feed:
    if rule is None:
        domain = egov_domain(REF, settle=timedelta(0))
    else:
        domain = Domain("egov", (DOSSIER_TOPIC, PORTAL_CHECK_TOPIC), tuple(egov_families()),
                        (rule, PortalDownRule(load_systems(), REF.areas)))
    return Feed(Processor([domain], timedelta(seconds=lateness_s), lambda: FIXED))


# --- daily window KPIs ---------------------------------------------------------------------


def test_daily_received_and_resolved_counts_per_area_and_agency() -> None:
    f = make()
    f.send(DOSSIER_TOPIC, dossier("a", "received", local(0, 8), channel="online"))
    f.send(DOSSIER_TOPIC, dossier("b", "received", local(0, 9)))
    f.send(DOSSIER_TOPIC, dossier("c", "received", local(0, 9.5), agency="STNMT", area="49",
                                  channel="post"))
    f.send(DOSSIER_TOPIC, dossier("a", "processing", local(0, 10), channel="online"))
    f.send(DOSSIER_TOPIC, dossier("a", "resolved", local(0, 15), received=local(0, 8),
                                  resolved=local(0, 15), channel="online"))
    f.send(DOSSIER_TOPIC, dossier("b", "rejected", local(0, 16), received=local(0, 9),
                                  due=local(0, 12), resolved=local(0, 16)))
    re_sent = f.send(DOSSIER_TOPIC, dossier("b", "rejected", local(0, 16), received=local(0, 9),
                                            due=local(0, 12), resolved=local(0, 16)))
    assert re_sent.outcome is Outcome.DUPLICATE
    f.send(DOSSIER_TOPIC, dossier("d", "received", local(1, 8)))  # closes day 0
    got = {(r["kpi"], r["area_code"], r["entity"]): (r["value"], r["sample_count"])
           for r in f.kpis(final=True) if r["window"] == "1d"}
    assert got == {
        ("egov.dossiers_received", "503", "UBND-503"): (2.0, 2),
        ("egov.dossiers_received_online", "503", "UBND-503"): (1.0, 2),
        ("egov.dossiers_received", "49", "STNMT"): (1.0, 1),
        ("egov.dossiers_received_online", "49", "STNMT"): (0.0, 1),
        ("egov.dossiers_resolved", "503", "UBND-503"): (2.0, 2),
        ("egov.dossiers_resolved_on_time", "503", "UBND-503"): (1.0, 2),
    }
    assert {r["window_start"] for r in f.kpis(final=True) if r["window"] == "1d"} == {DAY0}


def test_portal_uptime_and_mean_response_per_hour() -> None:
    f = make()
    t0 = local(40, 9)
    for n in range(60):
        f.send(PORTAL_CHECK_TOPIC, check(n, n, up=n % 20 != 5))  # 3 failed checks, not in a row
    f.send(PORTAL_CHECK_TOPIC, check(60, 65, up=True))  # closes the hour
    got = {r["kpi"]: (r["value"], r["sample_count"], r["window_start"])
           for r in f.kpis(final=True)}
    responses = [420 + n for n in range(60) if n % 20 != 5]
    assert got["egov.uptime"] == (57 / 60, 60, t0)
    assert got["egov.response_ms"] == (sum(responses) / 57, 57, t0)
    assert f.alerts() == []


# --- the 30-day rates and the on-time alert -----------------------------------------------


def month(f: Feed) -> None:
    """October 2026 at the one-stop shop of Hội An (see the expectations in the tests).

    Day 0 (1 Oct) only anchors the state: the first 30-day window the rule publishes is the one
    ending with 31 Oct, [2 Oct, 1 Nov), because it has seen the dossier topic since 1 Oct.
    """
    f.send(DOSSIER_TOPIC, dossier("x0", "received", local(0, 8), channel="online"))
    for late in ("late1", "late2"):
        f.send(DOSSIER_TOPIC, dossier(late, "received", local(0, 9), due=local(0, 12)))
    f.send(DOSSIER_TOPIC, dossier("x0", "resolved", local(0, 10), received=local(0, 8),
                                  resolved=local(0, 10), channel="online"))
    for late in ("late1", "late2"):  # decided on 2 Oct, after the appointment
        f.send(DOSSIER_TOPIC, dossier(late, "resolved", local(1, 9), received=local(0, 9),
                                      due=local(0, 12), resolved=local(1, 9)))
    for i in range(19):  # 4–22 Oct: one dossier a day, decided the same afternoon
        kw: dict[str, Any] = {"channel": "online" if i % 2 == 0 else "in_person",
                              "fee": i < 10, "paid": i < 6}
        f.send(DOSSIER_TOPIC, dossier(f"ok{i}", "received", local(4 + i, 8), **kw))
        f.send(DOSSIER_TOPIC, dossier(f"ok{i}", "resolved", local(4 + i, 14),
                                      received=local(4 + i, 8), resolved=local(4 + i, 14),
                                      **kw))
    f.send(DOSSIER_TOPIC, dossier("open1", "received", local(29, 8), due=local(30, 8)))
    f.send(DOSSIER_TOPIC, dossier("wait1", "received", local(29, 9), due=local(30, 8)))
    f.send(DOSSIER_TOPIC, dossier("wait1", "supplement_requested", local(29, 10),
                                  received=local(29, 9), due=local(30, 8)))


def thirty(f: Feed, kpi: str, end: datetime, final: bool = True) -> tuple[float, int]:
    rows = [r for r in f.kpis(kpi, final) if r["window"] == "30d" and r["window_end"] == end
            and r["entity"] == "UBND-503"]
    assert rows, f"no {kpi} for {end}"
    r = rows[-1]
    assert (r["window_start"], r["area_code"]) == (end - timedelta(days=30), "503")
    return r["value"], r["sample_count"]


def test_rolling_rates_on_time_alert_fires_and_resolves_with_exact_values() -> None:
    f = make()
    month(f)
    assert f.alerts() == []
    assert f.kpis("egov.on_time_rate", final=True) == []  # 31 Oct not closed yet
    f.send(DOSSIER_TOPIC, dossier("open1", "processing", local(31, 9), received=local(29, 8),
                                  due=local(30, 8)))  # 1 Nov: 31 Oct closes
    end31 = local(31)
    # 2 Oct – 31 Oct: 21 decided (19 on time, the 2 late ones of 2 Oct), 12 of them with a
    # fee of which 6 paid online; 21 received (19 + open1 + wait1), 10 online.
    assert thirty(f, "egov.on_time_rate", end31) == (19 / 21, 21)
    assert thirty(f, "egov.online_payment_rate", end31) == (6 / 12, 12)
    assert thirty(f, "egov.online_rate", end31) == (10 / 21, 21)
    [fired] = f.alerts()
    assert fired["alert_id"] == alert_fingerprint("egov.on_time_rate_low",
                                                  {"agency": "UBND-503"})
    assert (fired["rule"], fired["severity"], fired["status"], fired["domain"]) == (
        "egov.on_time_rate_low", "warning", "firing", "egov")
    assert (fired["area_code"], fired["entity"]) == ("503", "UBND-503")
    assert (fired["value"], fired["threshold"]) == (19 / 21, 0.95)
    assert fired["starts_at"] == fired["updated_at"] == end31
    assert fired["summary"] == (
        "Tỷ lệ giải quyết hồ sơ đúng hạn 30 ngày của UBND thành phố Hội An (Thành phố Hội An) "
        "chỉ đạt 90,5% (19/21 hồ sơ đúng hạn), dưới ngưỡng 95% (30 ngày đến hết ngày "
        "31/10/2026).")
    # 2 Nov: 1 Nov closes; its window [3 Oct, 2 Nov) no longer holds the late pair.
    f.send(DOSSIER_TOPIC, dossier("z", "received", local(32, 8), agency="STP", area="49"))
    end1 = local(32)
    assert thirty(f, "egov.on_time_rate", end1) == (1.0, 19)
    assert thirty(f, "egov.online_payment_rate", end1) == (6 / 10, 10)
    resolved = f.alerts()[-1]
    assert (resolved["status"], resolved["starts_at"], resolved["ends_at"]) == (
        "resolved", end31, end1)
    assert resolved["alert_id"] == fired["alert_id"] and resolved["value"] == 1.0
    assert "đã đạt 100% (19/19 hồ sơ đúng hạn)" in resolved["summary"]
    # one final value per day and KPI; the provisional values of 1 Nov came before its final
    finals = [r for r in f.kpis("egov.on_time_rate", final=True) if r["entity"] == "UBND-503"]
    assert [r["window_end"] for r in finals] == [end31, end1]
    provisional = f.kpis("egov.on_time_rate", final=False)
    assert provisional and all(r["computed_at"] < end1 for r in provisional
                               if r["window_end"] == end1)


def test_open_and_overdue_gauges_skip_dossiers_waiting_for_the_applicant() -> None:
    f = make()
    month(f)
    gauges = [(r["kpi"], r["value"], r["window_start"]) for r in f.kpis()
              if r["kpi"] in ("egov.open_dossiers", "egov.overdue_open")
              and r["entity"] == "UBND-503"]
    assert gauges[-2:] == [("egov.open_dossiers", 2.0, local(29, 9)),
                           ("egov.overdue_open", 0.0, local(29, 9))]
    f.send(DOSSIER_TOPIC, dossier("open1", "processing", local(31, 9), received=local(29, 8),
                                  due=local(30, 8)))
    # open1 is past its appointment; wait1 too, but the applicant holds it
    last = {r["kpi"]: r for r in f.steps[-1].kpis if r["entity"] == "UBND-503"}
    assert last["egov.open_dossiers"]["value"] == 2.0
    assert last["egov.overdue_open"]["value"] == 1.0
    assert last["egov.overdue_open"]["window"] == "1m"
    assert last["egov.overdue_open"]["window_start"] == local(31, 9)


def test_no_alert_below_the_minimum_number_of_decided_dossiers() -> None:
    rule = DossierRule(load_agencies(), REF.areas, min_decided=22, settle=timedelta(0))
    f = make(rule)
    month(f)
    f.send(DOSSIER_TOPIC, dossier("z", "received", local(31, 8), agency="STP", area="49"))
    assert thirty(f, "egov.on_time_rate", local(31)) == (19 / 21, 21)
    assert f.alerts() == []


def test_nothing_published_before_the_rule_has_seen_a_whole_window() -> None:
    f = make()
    for day in range(29):
        f.send(DOSSIER_TOPIC, dossier(f"d{day}", "received", local(day, 8)))
        f.send(DOSSIER_TOPIC, dossier(f"d{day}", "resolved", local(day, 9),
                                      received=local(day, 8), resolved=local(day, 9)))
    # seen since 1 Oct 08:00: the first whole window is [2 Oct, 1 Nov)
    assert [r for r in f.kpis() if r["window"] == "30d"] == []
    f.send(DOSSIER_TOPIC, dossier("z", "received", local(31, 8)))
    assert {r["window_end"] for r in f.kpis() if r["window"] == "30d"} == {local(31),
                                                                           local(32)}
    assert thirty(f, "egov.on_time_rate", local(31)) == (1.0, 28)


def test_a_day_closes_only_when_every_partition_passed_it() -> None:
    f = make()
    month(f)
    f.send(DOSSIER_TOPIC, dossier("p1", "received", local(29, 12), agency="STP", area="49"),
           partition=1)  # partition 1 is seen, still in 30 Oct
    f.send(DOSSIER_TOPIC, dossier("z", "received", local(32, 8), agency="STP", area="49"))
    assert f.kpis("egov.on_time_rate", final=True) == []
    f.send(DOSSIER_TOPIC, dossier("p2", "received", local(32, 8), agency="STP", area="49"),
           partition=1)
    assert [r["window_end"] for r in f.kpis("egov.on_time_rate", final=True)
            if r["entity"] == "UBND-503"] == [local(31), local(32)]


def test_no_day_closes_before_every_partition_had_time_to_show_up() -> None:
    """Faust hands partitions over as their first fetches complete: a partition that shows up
    a moment later (here with its whole month) is still in the first days closed."""
    wall = [FIXED]
    rule = DossierRule(load_agencies(), REF.areas, clock=lambda: wall[0])
    half = SETTLE / 2
    f = make(rule)
    month(f)
    f.send(DOSSIER_TOPIC, dossier("open1", "processing", local(31, 9), received=local(29, 8),
                                  due=local(30, 8)))
    f.send(DOSSIER_TOPIC, dossier("z", "received", local(32, 8), agency="STP", area="49"))
    assert f.kpis("egov.on_time_rate") == [] and f.alerts() == []
    wall[0] += half
    f.send(DOSSIER_TOPIC, dossier("p1a", "received", local(0, 7), agency="STP", area="49"),
           partition=1)
    f.send(DOSSIER_TOPIC, dossier("p1", "resolved", local(5, 15), received=local(5, 8),
                                  resolved=local(5, 15)), partition=1)
    f.send(DOSSIER_TOPIC, dossier("p1z", "received", local(32, 8), agency="STP", area="49"),
           partition=1)
    assert f.kpis("egov.on_time_rate") == []
    wall[0] += half
    f.steps.append(f.proc.tick())
    assert thirty(f, "egov.on_time_rate", local(31)) == (20 / 22, 22)
    assert thirty(f, "egov.on_time_rate", local(32)) == (1.0, 20)


def test_closed_dossiers_are_released_after_the_window_and_margin_re_sent_ones_ignored(
        ) -> None:
    rule = DossierRule(load_agencies(), REF.areas, horizon=timedelta(days=2),
                       release_margin=timedelta(days=1), settle=timedelta(0))
    f = make(rule)
    f.send(DOSSIER_TOPIC, dossier("a", "received", local(0, 8)))
    f.send(DOSSIER_TOPIC, dossier("a", "resolved", local(0, 9), received=local(0, 8),
                                  resolved=local(0, 9)))
    f.send(DOSSIER_TOPIC, dossier("open", "received", local(0, 10)))
    assert f.proc.held_by_rules == 3
    # 3 Oct closes (window [2 Oct, 4 Oct)); the next window starts 3 Oct, so dossiers closed
    # before 2 Oct (one day of margin) are released
    f.send(DOSSIER_TOPIC, dossier("b", "received", local(3, 8)))
    assert {(TP0, 0), (TP0, 1)} <= f.released
    assert "a" not in rule.dossiers and "open" in rule.dossiers
    assert f.proc.held_by_rules == 2
    again = f.send(DOSSIER_TOPIC, dossier("a", "resolved", local(0, 9), received=local(0, 8),
                                          resolved=local(0, 9), eid="a-resolved-again"))
    assert again.released == [(TP0, 4)] and "a" not in rule.dossiers


def test_restart_replays_held_events_and_republishes_identical_values() -> None:
    """A crash after day 70 of 100: the new processor replays from the oldest held event,
    restores the alert log, and from then on publishes exactly what the first one did."""
    rng = random.Random(7)
    events: list[dict[str, Any]] = []
    for day in range(100):
        for k in range(3):
            did = f"d{day}-{k}"
            rec = local(day, 8 + k)
            late = rng.random() < (0.25 if 20 <= day < 30 else 0.01)
            dec = local(day + rng.randint(0, 4), 15)
            due = dec - timedelta(hours=1) if late else dec + timedelta(days=1)
            kw: dict[str, Any] = {"due": due, "channel": rng.choice(["online", "in_person"]),
                                  "paid": rng.random() < 0.5}
            events.append(dossier(did, "received", rec, **kw))
            events.append(dossier(did, "resolved", dec, received=rec, resolved=dec, **kw))
    events.sort(key=lambda e: (e["occurred_at"], e["event_id"]))
    parts = {f"d{d}-{k}": (d + k) % 2 for d in range(100) for k in range(3)}
    first = make()
    crash = next(i for i, e in enumerate(events) if e["occurred_at"] >= local(70, 12))
    for ev in events[:crash]:
        first.send(DOSSIER_TOPIC, ev, parts[ev["dossier_id"]])
    assert any(a["status"] == "resolved" for a in first.alerts())  # the episode of days 20–29
    latest: dict[str, dict[str, Any]] = {}
    for a in first.alerts():
        latest[a["alert_id"]] = a
    # Faust resumes each partition at its oldest unreleased offset and hands the partitions'
    # records over in turn (its round-robin scheduler).
    second = make()
    second.proc.restore_alerts(list(latest.values()))
    replay: list[list[dict[str, Any]]] = []
    for p in (0, 1):
        tp = (DOSSIER_TOPIC, p)
        logged = [x for x in first.log if x[2] == tp]
        start = min(o for _, _, t, o in logged if (t, o) not in first.released)
        second.offsets[tp] = start
        replay.append([ev for _, ev, _, o in logged if o >= start])
    for i in range(max(map(len, replay))):
        for p in (0, 1):
            if i < len(replay[p]):
                second.send(DOSSIER_TOPIC, replay[p][i], p)
    assert second.offsets[(DOSSIER_TOPIC, 0)] > 0  # the replay did not start from scratch
    for ev in events[crash:]:
        first.send(DOSSIER_TOPIC, ev, parts[ev["dossier_id"]])
        second.send(DOSSIER_TOPIC, ev, parts[ev["dossier_id"]])

    def finals(f: Feed) -> dict[tuple[str, str, datetime], tuple[float, int]]:
        return {(r["kpi"], r["entity"], r["window_end"]): (r["value"], r["sample_count"])
                for r in f.kpis(final=True) if r["window"] == "30d"}

    a, b = finals(first), finals(second)
    assert b and set(b) <= set(a)
    assert {k: a[k] for k in b} == b
    # no pause: every day from the crash on is published again
    assert {k for k in a if k[2] >= local(70)} <= set(b)
    assert [x for x in second.alerts() if x["updated_at"] > local(70)] == [
        x for x in first.alerts() if x["updated_at"] > local(70)]


# --- portal down -----------------------------------------------------------------------------


def test_portal_down_after_three_consecutive_failed_checks_resolves_at_first_good_one() -> None:
    f = make()
    ups = [True, True, False, False, True, False, False, False, False, False, True, True]
    for n, up in enumerate(ups):
        f.send(PORTAL_CHECK_TOPIC, check(n, n, up))
    fired, resolved = f.alerts()
    t0 = local(40, 9)
    assert fired["alert_id"] == alert_fingerprint("egov.portal_down", {"system_id": "cong-dvc"})
    assert (fired["severity"], fired["status"], fired["entity"]) == ("critical", "firing",
                                                                      "cong-dvc")
    assert fired["starts_at"] == t0 + timedelta(minutes=5)  # the first failed check
    assert fired["updated_at"] == t0 + timedelta(minutes=7)  # the third one
    assert (fired["value"], fired["threshold"]) == (3.0, 3.0)
    assert fired["summary"] == (
        "Cổng Dịch vụ công tỉnh không truy cập được: 3 lần kiểm tra liên tiếp không đạt từ "
        "09:05 10/11/2026 (HTTP 503, điểm đo TTDL-QNA).")
    assert (resolved["status"], resolved["starts_at"], resolved["ends_at"]) == (
        "resolved", t0 + timedelta(minutes=5), t0 + timedelta(minutes=10))
    assert resolved["value"] == 5.0
    assert resolved["summary"] == (
        "Cổng Dịch vụ công tỉnh đã hoạt động trở lại lúc 09:10 10/11/2026 sau 5 lần kiểm tra "
        "liên tiếp không đạt (khoảng 5 phút gián đoạn).")


def test_portal_down_counts_one_system_at_a_time_and_ignores_old_checks() -> None:
    f = make()
    f.send(PORTAL_CHECK_TOPIC, check(0, 0, False, "qlvb"))
    f.send(PORTAL_CHECK_TOPIC, check(1, 1, False, "lgsp"))
    f.send(PORTAL_CHECK_TOPIC, check(2, 2, False, "qlvb"))
    f.send(PORTAL_CHECK_TOPIC, check(3, 2.5, False, "qlvb", t0=local(40, 8)))  # an hour old
    assert f.alerts() == []
    f.send(PORTAL_CHECK_TOPIC, check(4, 3, False, "qlvb"))
    [fired] = f.alerts()
    assert fired["entity"] == "qlvb"


def test_portal_down_count_survives_a_restart_and_a_firing_alert_is_not_raised_again() -> None:
    f = make()
    for n in range(2):
        f.send(PORTAL_CHECK_TOPIC, check(n, n, False))
    held = f.proc.held_by_rules
    assert held == 2
    # restart: the two held failed checks are replayed, the third fires
    g = make()
    for topic, ev, tp, o in f.log:
        g.offsets[tp] = o
        g.send(topic, ev, tp[1])
    g.send(PORTAL_CHECK_TOPIC, check(2, 2, False))
    [fired] = g.alerts()
    assert fired["starts_at"] == local(40, 9)
    # restart while firing: restored from the alert log, replayed checks raise nothing new
    h = make()
    h.proc.restore_alerts([fired])
    for topic, ev, tp, o in g.log:
        h.offsets[tp] = o
        h.send(topic, ev, tp[1])
    assert h.alerts() == []
    h.send(PORTAL_CHECK_TOPIC, check(3, 3, True))
    [resolved] = h.alerts()
    assert resolved["status"] == "resolved" and resolved["starts_at"] == local(40, 9)
    assert h.proc.held_by_rules == 0


@pytest.mark.parametrize(("x", "text"), [(0.905, "90,5%"), (0.95, "95%"), (1.0, "100%")])
def test_percent_in_vietnamese(x: float, text: str) -> None:
    assert pct_vi(x) == text
