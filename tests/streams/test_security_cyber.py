"""Exact KPI values and alerts of the security and cyber domains on the pure processor."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ioc.infra.reference import DEFAULT_DIR, ReferenceData, load_reference
from ioc.infra.reference_cyber import load_systems, load_topics
from ioc.streams.cyber import (
    MENTION_TOPIC,
    NEGATIVE_BELOW,
    SECURITY_EVENT_TOPIC,
    NegativeShareRule,
    cyber_domain,
)
from ioc.streams.engine import Outcome
from ioc.streams.processor import Processor, Step
from ioc.streams.rules import alert_fingerprint
from ioc.streams.security import INCIDENT_TOPIC, security_domain

T0 = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)  # 14:00 in Quảng Nam
DAY0 = datetime(2026, 11, 1, 17, 0, tzinfo=UTC)  # local midnight of 2 Nov
FIXED_NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
REF = load_reference()
H = timedelta(hours=1)


def at(minute: float) -> datetime:
    return T0 + timedelta(minutes=minute)


def incident(eid: str, minute: float, kind: str = "theft", severity: str = "minor",
             area: str = "503", casualties: int = 0, description: str = "") -> dict[str, Any]:
    return {"event_id": eid, "occurred_at": at(minute), "source": "CA-QNA", "area_code": area,
            "incident_type": kind, "severity": severity, "description": description,
            "casualties": casualties, "address": "", "lat": None, "lon": None}


def mention(eid: str, minute: float, topic: str = "dat_dai", score: float = 0.1,
            area: str = "") -> dict[str, Any]:
    return {"event_id": eid, "occurred_at": at(minute), "source": "STTTT-QNA",
            "area_code": area, "channel": "facebook", "topic": topic, "sentiment_score": score,
            "reach": 1000, "url": ""}


def sec_event(eid: str, minute: float, system: str = "cong-dvc", severity: str = "low",
              kind: str = "intrusion_attempt", description: str = "") -> dict[str, Any]:
    return {"event_id": eid, "occurred_at": at(minute), "source": "SOC-QNA", "area_code": "",
            "system": system, "event_type": kind, "severity": severity,
            "src_ip": "203.0.113.7", "description": description}


def make(lateness_s: float = 60, ref: ReferenceData = REF) -> Processor:
    return Processor([security_domain(ref), cyber_domain(ref)], timedelta(seconds=lateness_s),
                     lambda: FIXED_NOW)


def feed(proc: Processor, events: Iterable[tuple[str, dict[str, Any]]], start_offset: int = 0
         ) -> list[Step]:
    """Events as (topic, value), one partition per topic, offsets counting from start."""
    steps = []
    for i, (topic, ev) in enumerate(events):
        steps.append(proc.handle(topic, ev, (topic, 0), start_offset + i))
        steps.append(proc.tick())
    return steps


def kpis(steps: Iterable[Step]) -> dict[tuple[str, str, datetime, str, str], tuple[float, int]]:
    return {(r["kpi"], r["window"], r["window_start"], r["area_code"], r["entity"]):
            (r["value"], r["sample_count"])
            for s in steps for r in s.kpis if r["is_final"]}


def alerts(steps: Iterable[Step]) -> list[dict[str, Any]]:
    return [a for s in steps for a in s.alerts]


# --- security ------------------------------------------------------------------------------


def test_security_incidents_per_area_and_type_hourly_and_daily() -> None:
    proc = make()
    evs = [incident("s1", 5), incident("s2", 20), incident("s3", 30, kind="drug"),
           incident("s4", 40, area="502"), incident("s5", 70),  # next hour, same day
           incident("s2", 20),  # re-sent: not counted twice
           incident("late-day", 60 * 11)]  # 2026-11-03 01:00 local: next day, closes the rest
    steps = feed(proc, [(INCIDENT_TOPIC, e) for e in evs])
    assert steps[10].outcome is Outcome.DUPLICATE
    got = kpis(steps)
    assert got[("security.incidents", "1h", T0, "503", "theft")] == (2.0, 2)
    assert got[("security.incidents", "1h", T0, "503", "drug")] == (1.0, 1)
    assert got[("security.incidents", "1h", T0, "502", "theft")] == (1.0, 1)
    assert got[("security.incidents", "1h", T0 + H, "503", "theft")] == (1.0, 1)
    # the daily window runs from local midnight and holds every incident of that day
    assert got[("security.incidents", "1d", DAY0, "503", "theft")] == (3.0, 3)
    assert got[("security.incidents", "1d", DAY0, "502", "theft")] == (1.0, 1)
    assert ("security.incidents", "1d", DAY0, "503", "drug") in got


def test_critical_incident_alerts_at_once_names_type_and_area_and_auto_resolves() -> None:
    proc = make()
    fire = incident("f1", 10, kind="fire", severity="critical", casualties=2,
                    description="Cháy nhà dân trên đường Trần Phú")
    steps = feed(proc, [(INCIDENT_TOPIC, fire), (INCIDENT_TOPIC, incident("m1", 20)),
                        (INCIDENT_TOPIC, fire),  # re-sent: no second alert
                        (INCIDENT_TOPIC, incident("assault-mod", 30, kind="assault",
                                                  severity="moderate"))])
    got = alerts(steps)
    assert len(got) == 1
    a = got[0]
    assert a["rule"] == "security.critical_incident" and a["domain"] == "security"
    assert (a["severity"], a["status"]) == ("critical", "firing")
    assert a["alert_id"] == alert_fingerprint("security.critical_incident", {"event_id": "f1"})
    assert (a["area_code"], a["entity"]) == ("503", "fire")
    assert a["starts_at"] == a["updated_at"] == at(10) and a["ends_at"] is None
    assert a["summary"] == ("Vụ việc an ninh trật tự nghiêm trọng (cháy) tại Thành phố Hội An, "
                            "2 người thương vong: Cháy nhà dân trên đường Trần Phú")
    later = alerts(feed(proc, [(INCIDENT_TOPIC, incident("m2", 75))], start_offset=4))
    assert [(r["status"], r["ends_at"], r["updated_at"]) for r in later] == [
        ("resolved", at(70), at(70))]
    assert later[0]["summary"].endswith(" — đã tự đóng sau 1 giờ.")
    # the same incident re-sent after its alert resolved raises nothing
    assert alerts(feed(proc, [(INCIDENT_TOPIC, fire)], start_offset=5)) == []


def test_unknown_area_and_type_show_their_codes() -> None:
    proc = make()
    got = alerts(feed(proc, [(INCIDENT_TOPIC, incident("x", 1, kind="riot", area="99999",
                                                       severity="critical"))]))
    assert got[0]["summary"] == "Vụ việc an ninh trật tự nghiêm trọng (riot) tại 99999"


# --- cyber: KPIs ---------------------------------------------------------------------------


def test_mentions_and_negative_share_exact_with_the_threshold_excluded() -> None:
    proc = make()
    scores = [-0.9, -0.5, NEGATIVE_BELOW, -0.19, 0.0, 0.7, -0.21]  # 3 strictly below −0.2
    evs = [(MENTION_TOPIC, mention(f"m{i}", 2 + i, score=s)) for i, s in enumerate(scores)]
    evs += [(MENTION_TOPIC, mention("local", 10, area="507", score=-1.0)),
            (MENTION_TOPIC, mention("yte", 11, topic="y_te", score=0.3)),
            (MENTION_TOPIC, mention("m0", 2, score=-0.9)),  # re-sent
            (MENTION_TOPIC, mention("tick", 63, topic="y_te"))]
    got = kpis(feed(proc, evs))
    assert got[("cyber.mentions", "1h", T0, "", "dat_dai")] == (7.0, 7)
    assert got[("cyber.negative_share", "1h", T0, "", "dat_dai")] == (pytest.approx(3 / 7), 7)
    assert got[("cyber.mentions", "1h", T0, "507", "dat_dai")] == (1.0, 1)
    assert got[("cyber.negative_share", "1h", T0, "507", "dat_dai")] == (1.0, 1)
    assert got[("cyber.negative_share", "1h", T0, "", "y_te")] == (0.0, 1)


def test_security_events_per_system_with_a_count_per_severity() -> None:
    proc = make()
    sevs = ["low", "low", "medium", "high", "low"]
    evs = [(SECURITY_EVENT_TOPIC, sec_event(f"e{i}", 5 + i, severity=s))
           for i, s in enumerate(sevs)]
    evs += [(SECURITY_EVENT_TOPIC, sec_event("mail", 9, system="email-congvu",
                                              severity="medium")),
            (SECURITY_EVENT_TOPIC, sec_event("e1", 6, severity="low")),  # re-sent
            (SECURITY_EVENT_TOPIC, sec_event("tick", 62, system="qlvb"))]
    got = kpis(feed(proc, evs))
    assert got[("cyber.security_events", "1h", T0, "", "cong-dvc")] == (5.0, 5)
    assert {sev: got[(f"cyber.security_events_{sev}", "1h", T0, "", "cong-dvc")][0]
            for sev in ("low", "medium", "high", "critical")} == {
        "low": 3.0, "medium": 1.0, "high": 1.0, "critical": 0.0}
    assert got[("cyber.security_events", "1h", T0, "", "email-congvu")] == (1.0, 1)
    assert got[("cyber.security_events_medium", "1h", T0, "", "email-congvu")] == (1.0, 1)


# --- cyber: alerts -------------------------------------------------------------------------


def hour_of_mentions(hour: int, total: int, negative: int, topic: str = "dat_dai",
                     prefix: str = "h") -> list[tuple[str, dict[str, Any]]]:
    """``total`` mentions spread over hour ``hour`` after T0, the first ``negative`` of them
    with a clearly negative score."""
    return [(MENTION_TOPIC, mention(f"{prefix}{hour}-{i}", hour * 60 + 1 + i * 58 / total,
                                    topic=topic, score=-0.6 if i < negative else 0.2))
            for i in range(total)]


def tick_at(minute: float, eid: str = "tick") -> tuple[str, dict[str, Any]]:
    """A mention on another topic, to move the watermark."""
    return (MENTION_TOPIC, mention(eid, minute, topic="du_lich"))


def negative_share_alerts(steps: Iterable[Step]) -> list[dict[str, Any]]:
    return [a for a in alerts(steps) if a["rule"] == "cyber.negative_share"]


def test_negative_share_fires_updates_and_resolves_on_closed_hours() -> None:
    proc = make(lateness_s=0)
    evs = (hour_of_mentions(0, 25, 15)      # 60 % of 25 → fires at the end of the hour
           + hour_of_mentions(1, 30, 20)    # still high → same episode, updated
           + hour_of_mentions(2, 19, 19)    # 100 % but only 19 mentions → resolved
           + [tick_at(3 * 60 + 1)])
    got = negative_share_alerts(feed(proc, evs))
    assert [(a["status"], a["starts_at"], a["updated_at"], a["ends_at"]) for a in got] == [
        ("firing", T0 + H, T0 + H, None),
        ("firing", T0 + H, T0 + 2 * H, None),
        ("resolved", T0 + H, T0 + 3 * H, T0 + 3 * H)]
    fire, update, resolved = got
    assert fire["alert_id"] == alert_fingerprint("cyber.negative_share",
                                                 {"area_code": "", "topic": "dat_dai"})
    assert (fire["severity"], fire["domain"], fire["entity"]) == ("warning", "cyber", "dat_dai")
    assert (fire["value"], fire["threshold"]) == (0.6, 0.5)
    assert fire["summary"] == ("Dư luận tiêu cực tăng cao về chủ đề «Đất đai»: 60% trong 25 "
                               "lượt đề cập trong một giờ (ngưỡng 50%, tối thiểu 20 lượt).")
    assert update["value"] == pytest.approx(20 / 30)
    assert resolved["summary"].startswith("Dư luận về chủ đề «Đất đai» đã trở lại bình thường")


def test_negative_share_thresholds_are_inclusive() -> None:
    proc = make(lateness_s=0)
    got = negative_share_alerts(feed(proc, [*hour_of_mentions(0, 20, 10), tick_at(61)]))
    assert [(a["status"], a["value"]) for a in got] == [("firing", 0.5)]
    proc = make(lateness_s=0)
    assert negative_share_alerts(feed(proc, [*hour_of_mentions(0, 19, 10), tick_at(61)])) == []
    proc = make(lateness_s=0)
    assert negative_share_alerts(feed(proc, [*hour_of_mentions(0, 40, 19), tick_at(61)])) == []


def test_a_silent_hour_resolves_the_episode() -> None:
    proc = make(lateness_s=0)
    # dat_dai goes quiet after hour 0; another topic keeps the stream (and watermark) going
    evs = hour_of_mentions(0, 25, 20) + [tick_at(60 + 30 * k, f"t{k}") for k in range(1, 5)]
    got = negative_share_alerts(feed(proc, evs))
    assert [(a["status"], a["ends_at"]) for a in got] == [
        ("firing", None), ("resolved", T0 + 2 * H)]  # resolved at the end of the silent hour
    assert got[1]["summary"].startswith("Dư luận về chủ đề «Đất đai» đã trở lại bình thường")


def test_a_gap_before_the_next_closed_hour_resolves_then_fires_again() -> None:
    rule = NegativeShareRule(load_topics(), REF.areas)
    assert [a["status"] for a in rule.on_hour("", "y_te", T0, T0 + H, 0.8, 30)] == ["firing"]
    out = rule.on_hour("", "y_te", T0 + 2 * H, T0 + 3 * H, 0.9, 40)  # hour 1 had no mention
    assert [(a["status"], a["starts_at"], a["ends_at"]) for a in out] == [
        ("resolved", T0 + H, T0 + 2 * H), ("firing", T0 + 3 * H, None)]
    assert rule.on_hour("", "y_te", T0 + 2 * H, T0 + 3 * H, 0.9, 40) == []  # replayed


def test_local_mentions_alert_on_their_own_area_with_its_name() -> None:
    rule = NegativeShareRule(load_topics(), REF.areas)
    (a,) = rule.on_hour("503", "moi_truong", T0, T0 + H, 0.75, 24)
    assert (a["area_code"], a["entity"]) == ("503", "moi_truong")
    assert "«Môi trường» tại Thành phố Hội An" in a["summary"]


def test_restart_replay_does_not_duplicate_or_lose_alerts() -> None:
    evs = (hour_of_mentions(0, 25, 15) + hour_of_mentions(1, 30, 20)
           + hour_of_mentions(2, 10, 0) + [tick_at(3 * 60 + 1)])
    first = make(lateness_s=0)
    steps = feed(first, evs[:60])  # crash in the middle of hour 2
    before = negative_share_alerts(steps)
    assert [a["status"] for a in before] == ["firing", "firing"]
    held_from = min(off for (_tp, off) in first.engine._refs)
    again = make(lateness_s=0)
    again.restore_alerts(before)
    replayed = negative_share_alerts(feed(again, evs[held_from:], start_offset=held_from))
    assert [(a["status"], a["ends_at"]) for a in replayed] == [("resolved", T0 + 3 * H)]
    # an uninterrupted run produces the same records
    whole = negative_share_alerts(feed(make(lateness_s=0), evs))
    assert whole == before + replayed


def test_critical_security_event_alerts_at_once_and_auto_resolves() -> None:
    proc = make()
    crit = sec_event("c1", 10, system="cong-dvc", severity="critical", kind="defacement",
                     description="Trang chủ bị thay đổi giao diện")
    steps = feed(proc, [(SECURITY_EVENT_TOPIC, crit),
                        (SECURITY_EVENT_TOPIC, sec_event("h1", 11, severity="high")),
                        (SECURITY_EVENT_TOPIC, crit)])
    got = alerts(steps)
    assert len(got) == 1
    a = got[0]
    assert (a["rule"], a["severity"], a["domain"]) == (
        "cyber.critical_security_event", "critical", "cyber")
    assert (a["entity"], a["starts_at"]) == ("cong-dvc", at(10))
    assert a["summary"] == ("Sự cố an toàn thông tin nghiêm trọng (thay đổi giao diện trang web) "
                            "trên Cổng Dịch vụ công tỉnh: Trang chủ bị thay đổi giao diện")
    later = alerts(feed(proc, [(SECURITY_EVENT_TOPIC, sec_event("l", 71))], start_offset=3))
    assert [(r["status"], r["ends_at"]) for r in later] == [("resolved", at(70))]


# --- reference data for the domains --------------------------------------------------------


def test_cyber_domain_falls_back_to_shipped_files_for_a_folder_without_them(
        tmp_path: Path) -> None:
    for name in ("areas.csv", "road_segments.csv"):
        shutil.copy(DEFAULT_DIR / name, tmp_path / name)
    ref = load_reference(tmp_path)
    domain = cyber_domain(ref)
    rule = next(r for r in domain.rules if isinstance(r, NegativeShareRule))
    assert rule.topic_names == load_topics()
    assert load_systems(tmp_path) == load_systems()
    assert security_domain(ref).topics == (INCIDENT_TOPIC,)


def test_a_deployments_own_topics_file_wins(tmp_path: Path) -> None:
    (tmp_path / "cyber_topics.csv").write_text("code,name_vi\nngap_lut,Ngập lụt đô thị\n",
                                               encoding="utf-8")
    topics = load_topics(tmp_path)
    assert list(topics) == ["ngap_lut"] and topics["ngap_lut"].name_vi == "Ngập lụt đô thị"
    (a,) = NegativeShareRule(topics, REF.areas).on_hour("", "ngap_lut", T0, T0 + H, 0.5, 20)
    assert "«Ngập lụt đô thị»" in a["summary"]


def test_shipped_cyber_reference_files_are_complete_and_vietnamese() -> None:
    topics, systems = load_topics(), load_systems()
    assert {"dat_dai", "moi_truong", "giao_thong", "y_te"} <= set(topics)
    assert {"cong-dvc", "email-congvu"} <= set(systems)
    names = [t.name_vi for t in topics.values()] + [s.name_vi for s in systems.values()]
    assert all(any(ord(ch) > 127 for ch in name) for name in names), names
    assert all(s.owner_agency for s in systems.values())
