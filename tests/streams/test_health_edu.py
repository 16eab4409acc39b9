"""Exact KPIs and alert transitions of the health and education domains on the pure processor."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ioc.infra.reference import load_reference
from ioc.infra.reference_health_edu import load_facilities
from ioc.streams.domain import Domain
from ioc.streams.edu import ATTENDANCE_TOPIC, edu_domain
from ioc.streams.engine import Position
from ioc.streams.health import (
    DISEASE_CASE_TOPIC,
    FACILITY_STATUS_TOPIC,
    FacilityLoadRule,
    OutbreakRule,
    day_end,
    health_domain,
    health_families,
)
from ioc.streams.processor import Processor, Step
from ioc.streams.rules import alert_fingerprint

REF = load_reference()
FACILITIES = load_facilities()
WALL = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
M = timedelta(minutes=1)
DAY0 = date(2026, 9, 1)  # a Tuesday


def local(day: date, hour: float) -> datetime:
    """``hour`` o'clock Vietnam time on ``day``, in UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=hour - 7)


def d(n: int) -> date:
    return DAY0 + timedelta(days=n)


class Feed:
    """One processor, events on explicit partitions with increasing offsets, every output
    kept."""

    def __init__(self, domains: Sequence[Domain], lateness_s: float = 120) -> None:
        self.proc = Processor(domains, timedelta(seconds=lateness_s), lambda: WALL)
        self.offsets: dict[tuple[str, int], int] = {}
        self.steps: list[Step] = []
        self.log: list[tuple[str, dict[str, Any], int, int]] = []

    def send(self, topic: str, event: dict[str, Any], partition: int = 0) -> Step:
        tp = (topic, partition)
        offset = self.offsets.get(tp, 0)
        self.offsets[tp] = offset + 1
        self.log.append((topic, event, partition, offset))
        step = self.proc.handle(topic, event, tp, offset)
        self.steps += [step, self.proc.tick()]
        return step

    def flush(self) -> None:
        """The open windows' provisional values, as the worker publishes them every 2 s."""
        self.steps.append(Step(kpis=self.proc.flush()))

    def alerts(self, since: int = 0) -> list[dict[str, Any]]:
        return [a for s in self.steps[since:] for a in s.alerts]

    def kpis(self, kpi: str, final: bool | None = None) -> list[dict[str, Any]]:
        return [r for s in self.steps for r in s.kpis
                if r["kpi"] == kpi and (final is None or r["is_final"] == final)]

    def latest(self, kpi: str) -> dict[tuple[str, str, datetime], tuple[float, int, bool]]:
        """Each key's last record, as the KPI table keeps it."""
        out = {}
        for r in self.kpis(kpi):
            out[(r["area_code"], r["entity"], r["window_start"])] = (
                r["value"], r["sample_count"], r["is_final"])
        return out

    def released(self) -> set[Position]:
        return {p for s in self.steps for p in s.released}


# --- facility status: gauges and the occupancy alert ---------------------------------------


def status(eid: str, ts: datetime, occupied: int, total: int = 600, waiting: int = 3,
           facility: str = "bvdk-qnam", icu: tuple[int, int] | None = None) -> dict[str, Any]:
    return {"event_id": eid, "occurred_at": ts, "source": "SYT-QNA", "area_code": "502",
            "facility_id": facility, "beds_total": total, "beds_occupied": occupied,
            "emergency_waiting": waiting, "icu_total": icu[0] if icu else None,
            "icu_occupied": icu[1] if icu else None}


T = local(DAY0, 9)  # 09:00 local


def test_occupancy_alert_escalates_de_escalates_and_resolves_in_one_episode() -> None:
    f = Feed([health_domain(REF, lambda: WALL)])
    for eid, minute, occupied in [("s1", 0, 480), ("s2", 5, 552), ("s3", 10, 576),
                                  ("s4", 15, 570), ("s5", 20, 564), ("s6", 25, 540),
                                  ("s7", 30, 534)]:
        f.send(FACILITY_STATUS_TOPIC, status(eid, T + minute * M, occupied))
    got = f.alerts()
    assert [(a["severity"], a["status"], a["value"], a["threshold"], a["updated_at"])
            for a in got] == [
        ("warning", "firing", 0.92, 0.90, T + 5 * M),     # 552/600
        ("critical", "firing", 0.96, 0.95, T + 10 * M),   # 576/600; 570/600 = 0.95 stays
        ("warning", "firing", 0.94, 0.90, T + 20 * M),    # 564/600; 540/600 = 0.90 stays
        ("warning", "resolved", 0.89, 0.90, T + 30 * M)]  # 534/600
    fid = alert_fingerprint("health.bed_occupancy", {"facility_id": "bvdk-qnam"})
    assert {a["alert_id"] for a in got} == {fid}
    assert {a["starts_at"] for a in got} == {T + 5 * M}
    assert got[-1]["ends_at"] == T + 30 * M
    assert all((a["rule"], a["domain"], a["area_code"], a["entity"])
               == ("health.bed_occupancy", "health", "502", "bvdk-qnam") for a in got)
    label = "Bệnh viện Đa khoa tỉnh Quảng Nam (Thành phố Tam Kỳ)"
    assert [a["summary"] for a in got] == [
        f"{label} sắp quá tải: công suất sử dụng giường bệnh 92% (552/600 giường), vượt "
        "ngưỡng cảnh báo 90%.",
        f"{label} quá tải nghiêm trọng: công suất sử dụng giường bệnh 96% (576/600 giường), "
        "vượt ngưỡng 95%.",
        f"{label} giảm tải nhưng vẫn cao: công suất sử dụng giường bệnh 94% (564/600 giường), "
        "trên ngưỡng cảnh báo 90%.",
        f"{label} đã hết quá tải: công suất sử dụng giường bệnh 89% (534/600 giường), dưới "
        "ngưỡng 90%."]


def test_facility_gauges_hourly_latest_value_final_when_the_next_hour_starts() -> None:
    f = Feed([health_domain(REF, lambda: WALL)])
    f.send(FACILITY_STATUS_TOPIC, status("a", T + 10 * M, 300, waiting=4, icu=(30, 21)))
    f.send(FACILITY_STATUS_TOPIC, status("b", T + 25 * M, 330, waiting=9, icu=(30, 21)))
    f.send(FACILITY_STATUS_TOPIC, status("b", T + 25 * M, 330, waiting=9, icu=(30, 21)))
    f.send(FACILITY_STATUS_TOPIC, status("c", T + 40 * M, 330, waiting=2, icu=(30, 24)))
    f.send(FACILITY_STATUS_TOPIC, status("d", T + 70 * M, 360, waiting=0))
    f.send(FACILITY_STATUS_TOPIC, status("e", T + 5 * M, 0, waiting=50))  # older: ignored
    occ = f.latest("health.bed_occupancy")
    assert occ == {("502", "bvdk-qnam", T): (330 / 600, 600, True),
                   ("502", "bvdk-qnam", T + H): (0.6, 600, False)}
    # one record per change: 0.5 then 0.55 in the first hour, none for the unchanged 09:40
    assert [r["value"] for r in f.kpis("health.bed_occupancy", final=False)] == [0.5, 0.55, 0.6]
    assert f.latest("health.emergency_waiting") == {("502", "bvdk-qnam", T): (2.0, 1, True),
                                                    ("502", "bvdk-qnam", T + H): (0.0, 1, False)}
    assert f.latest("health.icu_occupancy") == {("502", "bvdk-qnam", T): (0.8, 30, False)}
    rec = f.kpis("health.bed_occupancy")[0]
    assert (rec["window"], rec["window_end"], rec["computed_at"]) == ("1h", T + H, WALL)


def test_only_the_latest_status_of_a_facility_is_held_until_it_goes_stale() -> None:
    f = Feed([health_domain(REF, lambda: WALL)])
    tp = (FACILITY_STATUS_TOPIC, 0)
    f.send(FACILITY_STATUS_TOPIC, status("a", T, 300))
    f.send(FACILITY_STATUS_TOPIC, status("x", T + M, 50, total=60, facility="ttyt-504"))
    assert f.released() == set()
    f.send(FACILITY_STATUS_TOPIC, status("b", T + 15 * M, 310))
    assert f.released() == {(tp, 0)}
    assert f.proc.held_by_rules == 2
    # a day later the mountain health centre has not reported again: its status is let go
    f.send(FACILITY_STATUS_TOPIC, status("c", T + 25 * H, 320))
    assert f.released() == {(tp, 0), (tp, 1), (tp, 2)}
    assert f.proc.held_by_rules == 1


def test_firing_occupancy_alert_survives_a_restart_without_a_second_episode() -> None:
    f = Feed([health_domain(REF, lambda: WALL)])
    f.send(FACILITY_STATUS_TOPIC, status("a", T, 580))
    first = f.alerts()
    assert [a["severity"] for a in first] == ["critical"]
    # a new worker restores the alert log and replays the held status: nothing new
    g = Feed([health_domain(REF, lambda: WALL)])
    g.proc.restore_alerts(first)
    g.send(FACILITY_STATUS_TOPIC, status("a", T, 580))
    assert g.alerts() == []
    g.send(FACILITY_STATUS_TOPIC, status("b", T + 15 * M, 420))
    assert [(a["status"], a["starts_at"], a["ends_at"]) for a in g.alerts()] == [
        ("resolved", T, T + 15 * M)]


# --- disease cases: 1d and rolling 7d counts, incidence, the outbreak alert ----------------


def case(eid: str, day: int, area: str = "503", disease: str = "dengue", hour: float = 9,
         case_id: str | None = None) -> dict[str, Any]:
    return {"event_id": eid, "occurred_at": local(d(day), hour), "source": "CDC-QNA",
            "area_code": area, "case_id": case_id or eid, "disease": disease,
            "classification": "suspected", "onset_date": None, "age_group": "age_15_24",
            "hospitalized": False, "facility_id": ""}


def outbreak_cases() -> list[dict[str, Any]]:
    """Dengue in Hội An: 2 cases a week for five weeks (days 0–34), then 1, 2 and 3 cases on
    days 35–37, quiet after; a measles case in Tam Kỳ on day 36; influenza in Tam Kỳ, one case
    every morning (a steady 7 a week: no outbreak), closes each day; one more case on day 44."""
    out = [case(f"b{n}", n) for n in range(35) if n % 7 in (1, 4)]
    out += [case(f"flu{n}", n, area="502", disease="influenza", hour=6) for n in range(45)]
    out += [case(f"o{n}-{k}", n, hour=8 + k) for n, k_max in ((35, 1), (36, 2), (37, 3))
            for k in range(k_max)]
    out.append(case("m1", 36, area="502", disease="measles"))
    out.append(case("late", 44, disease="influenza"))
    return sorted(out, key=lambda e: e["occurred_at"])


def test_outbreak_fires_updates_and_resolves_at_day_closes() -> None:
    f = Feed([health_domain(REF, lambda: WALL)])
    for ev in outbreak_cases():
        f.send(DISEASE_CASE_TOPIC, ev)
    got = f.alerts()
    # week 7 > 2 × mean 2 on day 37; 6 on day 39; 5 > 2 × 2.25 on day 42; 3 on day 43
    assert [(a["status"], a["value"], a["threshold"], a["updated_at"]) for a in got] == [
        ("firing", 7.0, 4.0, day_end(d(37))),
        ("firing", 6.0, 4.0, day_end(d(39))),
        ("firing", 5.0, 4.5, day_end(d(42))),
        ("resolved", 3.0, 5.0, day_end(d(43)))]
    assert {a["starts_at"] for a in got} == {day_end(d(37))}
    assert got[-1]["ends_at"] == day_end(d(43))
    assert {a["alert_id"] for a in got} == {
        alert_fingerprint("health.outbreak", {"area_code": "503", "disease": "dengue"})}
    assert (got[0]["area_code"], got[0]["entity"], got[0]["domain"]) == (
        "503", "dengue", "health")
    assert got[0]["summary"] == (
        "Nguy cơ bùng phát dịch sốt xuất huyết tại Thành phố Hội An: 7 ca trong 7 ngày đến "
        "hết 08/10/2026, gấp 3,5 lần trung bình 4 tuần trước 2,0 ca/tuần (ngưỡng: trên 2 lần "
        "và ít nhất 5 ca).")
    assert got[-1]["summary"] == (
        "Dịch sốt xuất huyết tại Thành phố Hội An đã lắng xuống: 3 ca trong 7 ngày đến hết "
        "14/10/2026, trung bình 4 tuần trước 2,5 ca/tuần (ngưỡng: trên 2 lần và ít nhất 5 ca).")


def test_daily_and_rolling_counts_and_incidence_are_exact() -> None:
    f = Feed([health_domain(REF, lambda: WALL)])
    for ev in outbreak_cases():
        f.send(DISEASE_CASE_TOPIC, ev)
    f.send(DISEASE_CASE_TOPIC, case("o37-0-fix", 37, hour=8, case_id="o37-0"))  # correction
    daily = f.latest("health.cases")
    start37 = day_end(d(36))
    assert daily[("503", "dengue", start37)] == (3.0, 3, True)
    assert daily[("502", "measles", day_end(d(35)))] == (1.0, 1, True)
    cases7 = f.latest("health.cases_7d")
    end37 = day_end(d(37))
    assert cases7[("503", "dengue", end37 - 7 * timedelta(days=1))] == (7.0, 7, True)
    assert cases7[("503", "dengue", day_end(d(43)) - timedelta(days=7))] == (3.0, 3, True)
    # the first 7d value needs days 1–7 complete (day 0 may have been seen only in part)
    assert min(ws for a, e, ws in cases7 if e == "dengue") == day_end(d(7)) - timedelta(days=7)
    # measles in Tam Kỳ: one case on day 36, then a single final 0 once it left the 7 days
    measles = sorted((ws, v) for (a, e, ws), (v, _, _) in cases7.items() if e == "measles")
    assert [v for _, v in measles] == [1.0] * 7 + [0.0]
    incidence = f.latest("health.incidence_7d_per_100k")
    value, n, final = incidence[("503", "dengue", end37 - timedelta(days=7))]
    assert (value, n, final) == (7 / 98600 * 100_000, 7, True)
    # provisional while day 37 was open: 5, 6 after each case of the day
    provisional = [r["value"] for r in f.kpis("health.cases_7d", final=False)
                   if r["window_end"] == end37 and r["entity"] == "dengue"]
    assert provisional == [5.0, 6.0, 7.0]


def test_no_outbreak_is_judged_before_35_days_of_baseline() -> None:
    f = Feed([health_domain(REF, lambda: WALL)])
    for n in range(7):
        for k in range(3):
            f.send(DISEASE_CASE_TOPIC, case(f"e{n}-{k}", n, hour=8 + k))
    f.send(DISEASE_CASE_TOPIC, case("tick", 40, disease="influenza"))
    assert f.alerts() == []


def test_a_case_of_a_closed_day_is_late_and_not_counted() -> None:
    f = Feed([health_domain(REF, lambda: WALL)])
    for ev in outbreak_cases():
        if ev["occurred_at"] < local(d(38), 12):
            f.send(DISEASE_CASE_TOPIC, ev)
    f.send(DISEASE_CASE_TOPIC, case("late-36", 36, hour=20))  # day 36 closed on day 37
    f.send(DISEASE_CASE_TOPIC, case("tick", 38, hour=13, disease="influenza"))
    cases7 = f.latest("health.cases_7d")
    assert cases7[("503", "dengue", day_end(d(37)) - timedelta(days=7))][0] == 7.0


def test_days_close_per_partition() -> None:
    f = Feed([health_domain(REF, lambda: WALL)])
    f.send(DISEASE_CASE_TOPIC, case("a0", 0, area="503"), partition=0)
    f.send(DISEASE_CASE_TOPIC, case("b0", 0, area="502"), partition=1)
    for n in range(1, 9):
        f.send(DISEASE_CASE_TOPIC, case(f"a{n}", n, area="503"), partition=0)
    ends = {(r["area_code"], r["window_end"]) for r in f.kpis("health.cases_7d", final=True)}
    # partition 0 closed day 7 (the first complete week); partition 1 saw nothing after day 0
    assert ("503", day_end(d(7))) in ends
    assert not any(area == "502" for area, _ in ends)


def test_a_restarted_worker_rebuilds_the_35_days_and_judges_only_new_days() -> None:
    events = outbreak_cases()
    crash_at = next(i for i, e in enumerate(events) if e["occurred_at"] >= local(d(39), 0))
    a = Feed([health_domain(REF, lambda: WALL)])
    for ev in events[:crash_at]:
        a.send(DISEASE_CASE_TOPIC, ev)
    before = a.alerts()
    assert [al["status"] for al in before] == ["firing"]
    released = {off for (_tp, off) in a.released()}
    committed = min(set(range(crash_at)) - released)
    # what a held 35-day span means: everything from day 3 (37 − 34) on is still held
    assert local(d(3), 0) <= a.log[committed][1]["occurred_at"] < local(d(4), 0)
    b = Feed([health_domain(REF, lambda: WALL)])
    b.proc.restore_alerts(before)
    for _topic, ev, _p, _off in a.log[committed:]:
        b.send(DISEASE_CASE_TOPIC, ev)
    assert b.alerts() == []  # nothing judged twice
    mark_a, mark_b = len(a.steps), len(b.steps)
    for ev in events[crash_at:]:
        a.send(DISEASE_CASE_TOPIC, ev)
        b.send(DISEASE_CASE_TOPIC, ev)
    assert b.alerts(mark_b) == a.alerts(mark_a)
    assert [al["status"] for al in b.alerts(mark_b)] == ["firing", "firing", "resolved"]


def test_rebalance_forgets_the_lost_partition() -> None:
    rule = OutbreakRule(REF.areas, clock=lambda: WALL)
    proc = Processor([Domain("health", (DISEASE_CASE_TOPIC,), tuple(health_families()),
                             (rule,))], clock=lambda: WALL)
    proc.handle(DISEASE_CASE_TOPIC, case("a", 0, area="503"), (DISEASE_CASE_TOPIC, 0), 0)
    proc.handle(DISEASE_CASE_TOPIC, case("b", 0, area="502"), (DISEASE_CASE_TOPIC, 1), 0)
    proc.drop_partitions({(DISEASE_CASE_TOPIC, 0)})
    assert set(rule.cases) == {("502", "dengue")}
    assert set(rule.parts) == {(DISEASE_CASE_TOPIC, 1)}


def test_the_domain_keeps_case_events_long_enough() -> None:
    dom = health_domain(REF, lambda: WALL)
    assert dom.retention[DISEASE_CASE_TOPIC] >= timedelta(days=36)
    assert any(isinstance(r, FacilityLoadRule) for r in dom.rules)


# --- education: attendance rates and the low-attendance alert ------------------------------


def report(eid: str, day: int, present: int, enrolled: int = 1000, school: str = "s1",
           level: str = "primary", area: str = "510", hour: float = 7.5) -> dict[str, Any]:
    return {"event_id": eid, "occurred_at": local(d(day), hour), "source": "SGDDT-QNA",
            "area_code": area, "school_id": school, "level": level, "school_day": d(day),
            "enrolled": enrolled, "present": present}


def test_attendance_rates_per_area_and_level_with_corrections() -> None:
    f = Feed([edu_domain(REF)])
    f.send(ATTENDANCE_TOPIC, report("r1", 0, 900))
    f.send(ATTENDANCE_TOPIC, report("r2", 0, 470, 500, school="s2", level="upper_secondary"))
    f.send(ATTENDANCE_TOPIC, report("r1b", 0, 950, hour=9))  # s1 corrects its figure
    f.send(ATTENDANCE_TOPIC, report("r1", 0, 900))  # re-sent: ignored
    f.send(ATTENDANCE_TOPIC, report("r3", 0, 180, 200, school="s3", area="503"), partition=1)
    f.send(ATTENDANCE_TOPIC, report("n1", 1, 990))  # next morning closes day 0
    f.flush()
    start = day_end(d(-1))
    rates = f.latest("edu.attendance_rate")
    assert rates[("510", "", start)] == ((950 + 470) / 1500, 1500, True)
    assert rates[("510", "primary", start)] == (0.95, 1000, True)
    assert rates[("510", "upper_secondary", start)] == (0.94, 500, True)
    assert rates[("503", "", start)] == (0.9, 200, False)  # its own partition: no later report
    assert f.latest("edu.schools_reported")[("510", "", start)] == (2.0, 2, True)
    assert f.latest("edu.pupils_absent")[("510", "", start)] == (80.0, 2, True)
    assert f.alerts() == []


def test_attendance_low_fires_at_the_days_close_and_resolves_at_the_next_good_day() -> None:
    f = Feed([edu_domain(REF)])
    # day 3 is Friday 4 Sep, day 5 is Sunday (no school), day 6 Monday
    f.send(ATTENDANCE_TOPIC, report("r2", 2, 960))
    f.send(ATTENDANCE_TOPIC, report("r3", 3, 785))
    f.send(ATTENDANCE_TOPIC, report("r4", 4, 840))
    f.send(ATTENDANCE_TOPIC, report("r6", 6, 955))
    f.send(ATTENDANCE_TOPIC, report("r7", 7, 950))
    got = f.alerts()
    assert [(a["status"], a["value"], a["updated_at"]) for a in got] == [
        ("firing", 0.785, day_end(d(3))),
        ("firing", 0.84, day_end(d(4))),
        ("resolved", 0.955, day_end(d(6)))]
    assert {a["starts_at"] for a in got} == {day_end(d(3))}
    assert got[-1]["ends_at"] == day_end(d(6))
    assert (got[0]["rule"], got[0]["domain"], got[0]["area_code"], got[0]["threshold"]) == (
        "edu.attendance_low", "edu", "510", 0.85)
    assert got[0]["summary"] == (
        "Tỷ lệ học sinh đi học tại Huyện Nam Giang thấp: 78,5% ngày 04/09/2026 (785/1.000 học "
        "sinh có mặt), dưới ngưỡng 85%.")
    assert got[-1]["summary"] == (
        "Tỷ lệ học sinh đi học tại Huyện Nam Giang đã trở lại bình thường: 95,5% ngày "
        "07/09/2026 (955/1.000 học sinh có mặt), đạt ngưỡng 85%.")


def test_attendance_alert_restored_is_not_judged_again() -> None:
    f = Feed([edu_domain(REF)])
    f.send(ATTENDANCE_TOPIC, report("r3", 3, 700))
    f.send(ATTENDANCE_TOPIC, report("r4", 4, 990))
    first = f.alerts()
    g = Feed([edu_domain(REF)])
    g.proc.restore_alerts(first)
    g.send(ATTENDANCE_TOPIC, report("r3", 3, 700))
    g.send(ATTENDANCE_TOPIC, report("r4", 4, 990))
    assert g.alerts() == []
    g.send(ATTENDANCE_TOPIC, report("r5", 5, 990))
    assert [a["status"] for a in g.alerts()] == ["resolved"]

