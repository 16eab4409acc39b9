"""The notifier's decisions on a clock the test controls: grouping, dedup, repeat, escalation,
acknowledgement, resolve, silences, inhibition, and rebuilding after a restart."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from notify_helpers import T0, alert

from ioc.connectors.notify.config import NotifyConfig
from ioc.connectors.notify.deliveries import Delivery, Ledger, plan
from ioc.connectors.notify.engine import Dispatcher, Notification
from ioc.connectors.notify.model import episode_key

S = timedelta(seconds=1)
M = timedelta(minutes=1)


def ack(rec: dict[str, Any], at: datetime, by: str = "Trần Thị Bình") -> dict[str, Any]:
    return {"ack_id": f"ack-{rec['alert_id']}-{at.timestamp()}", "alert_id": rec["alert_id"],
            "starts_at": rec["starts_at"], "acked_by": by, "comment": "Đang xử lý",
            "acked_at": at, "first_acked_at": at, "via": "cli"}


def silence(sid: str, matchers: list[str], start: datetime, end: datetime,
            expired_by: str = "") -> dict[str, Any]:
    return {"silence_id": sid, "matchers": matchers, "starts_at": start, "ends_at": end,
            "created_by": "Ngô Văn Khánh", "comment": "Bảo trì cảm biến", "created_at": start,
            "updated_at": start if not expired_by else end, "expired_by": expired_by}


def run(d: Dispatcher, start: datetime, end: datetime, step: timedelta = S
        ) -> list[Notification]:
    """Evaluate every ``step`` from ``start`` to ``end`` inclusive, like the ticker does."""
    out: list[Notification] = []
    t = start
    while t <= end:
        out += d.due(t)[0]
        t += step
    return out


def summary(notes: list[Notification]) -> list[tuple[str, int, str, list[str]]]:
    return [(n.receiver, n.level, n.reason, [f"{a['entity']}:{a['status']}:{a['severity']}"
                                             for a in n.alerts]) for n in notes]


def test_one_grouped_notification_after_group_wait(config: NotifyConfig) -> None:
    d = Dispatcher(config, T0)
    d.observe_alert(alert("TK-HV-01"), T0)
    d.observe_alert(alert("TK-PCT-01", severity="critical"), T0 + 10 * S)
    d.observe_alert(alert("HA-01", area="503"), T0 + 10 * S)  # another area: its own group
    assert run(d, T0, T0 + 29 * S) == []
    notes = run(d, T0 + 30 * S, T0 + 40 * S)
    assert summary(notes) == [
        ("gt", 0, "new", ["TK-PCT-01:firing:critical", "TK-HV-01:firing:warning"]),
        ("gt", 0, "new", ["HA-01:firing:warning"])]
    assert notes[0].group_key == 'giao-thong{area_code="502",domain="traffic"}'
    assert notes[0].group_labels == {"area_code": "502", "domain": "traffic"}


def test_the_same_transition_again_is_not_news(config: NotifyConfig) -> None:
    d = Dispatcher(config, T0)
    rec = alert("TK-HV-01")
    first = d.observe_alert(rec, T0)
    assert [e["kind"] for e in first] == ["alert_firing"]
    run(d, T0, T0 + 30 * S)
    # the worker restarted and re-published the same record; a fresher figure is not news either
    assert d.observe_alert(dict(rec), T0 + M) == []
    assert d.observe_alert(dict(rec, updated_at=T0 + 5 * M, value=0.75), T0 + 5 * M) == []
    assert run(d, T0 + M, T0 + 14 * M, step=M) == []


def test_no_repeat_before_repeat_interval_then_repeat_unless_acked(config: NotifyConfig
                                                                   ) -> None:
    d = Dispatcher(config, T0)
    a, b = alert("TK-HV-01", rule="r1"), alert("TK-HV-01", rule="r2")
    d.observe_alert(a, T0)
    d.observe_alert(b, T0)
    assert len(run(d, T0, T0 + 30 * S)) == 1
    d.observe_ack(ack(a, T0 + M))
    d.observe_ack(ack(b, T0 + M))
    assert [n.reason for n in run(d, T0 + M, T0 + 8 * 3600 * S, step=M)] == []  # all acked
    d2 = Dispatcher(config, T0)  # public order: a route without escalation
    a = alert("TK-HV-01", domain="security", rule="security.x")
    d2.observe_alert(a, T0)
    assert len(run(d2, T0, T0 + 30 * S)) == 1
    d2.observe_ack(ack(a, T0 + M))
    b2 = alert("TK-HV-02", domain="security", rule="security.x")
    d2.observe_alert(b2, T0 + 2 * M)
    notes = run(d2, T0 + M, T0 + 4 * 3600 * S + 6 * M, step=10 * S)
    # the new alert is news at the next group interval (5m after the first notification);
    # the repeat comes 4 h after that, for the group with an unacknowledged alert
    assert [(n.reason, n.created_at - T0) for n in notes] == [
        ("changed", timedelta(minutes=5, seconds=30)),
        ("repeat", timedelta(hours=4, minutes=5, seconds=30))]
    assert len(notes[1].alerts) == 2  # the acked one is still listed, with its ack


def test_escalation_after_timeouts_and_ack_stops_it(config: NotifyConfig) -> None:
    d = Dispatcher(config, T0)
    a, b = alert("TK-HV-01"), alert("TK-PCT-01")
    d.observe_alert(a, T0)
    d.observe_alert(b, T0)
    first = run(d, T0, T0 + 30 * S)
    assert summary(first) == [("gt", 0, "new", ["TK-HV-01:firing:warning",
                                                "TK-PCT-01:firing:warning"])]
    assert run(d, T0 + 31 * S, T0 + 15 * M + 29 * S, step=S) == []
    level1 = run(d, T0 + 15 * M + 30 * S, T0 + 15 * M + 30 * S)
    assert summary(level1) == [("truong-ca", 1, "escalation",
                                ["TK-HV-01:firing:warning", "TK-PCT-01:firing:warning"])]
    assert level1[0].escalation_after == timedelta(minutes=15)
    d.observe_ack(ack(a, T0 + 20 * M))  # someone took TK-HV-01 on
    level2 = run(d, T0 + 20 * M, T0 + 46 * M, step=S)
    assert summary(level2) == [("lanh-dao", 2, "escalation", ["TK-PCT-01:firing:warning"])]
    assert level2[0].created_at == T0 + 45 * M + 30 * S
    assert run(d, T0 + 46 * M, T0 + 3 * 3600 * S, step=M) == []  # no level 3; no repeat yet


def test_resolve_notifies_the_receiver_and_the_levels_that_were_told(config: NotifyConfig
                                                                     ) -> None:
    d = Dispatcher(config, T0)
    a = alert("TK-HV-01")
    d.observe_alert(a, T0)
    run(d, T0, T0 + 16 * M, step=10 * S)  # notified at 0:30, escalated to level 1 at 15:30
    events = d.observe_alert(alert("TK-HV-01", status="resolved",
                                   updated_at=T0 + 17 * M), T0 + 17 * M)
    assert [e["kind"] for e in events] == ["alert_resolved"]
    notes = run(d, T0 + 16 * M + 10 * S, T0 + 21 * M, step=10 * S)
    assert summary(notes) == [("gt", 0, "resolved", ["TK-HV-01:resolved:warning"]),
                              ("truong-ca", 1, "resolved", ["TK-HV-01:resolved:warning"])]
    assert notes[0].status == "resolved"
    assert d.groups == {}  # nothing left to remember
    assert run(d, T0 + 21 * M, T0 + 2 * 3600 * S, step=M) == []


def test_resolved_before_first_notification_is_not_sent(config: NotifyConfig) -> None:
    d = Dispatcher(config, T0)
    d.observe_alert(alert("TK-HV-01"), T0)
    d.observe_alert(alert("TK-HV-01", status="resolved", updated_at=T0 + 10 * S), T0 + 10 * S)
    assert run(d, T0, T0 + 10 * M, step=10 * S) == []
    # a resolved alert nobody was told about does not even open a group
    d.observe_alert(alert("X-1", status="resolved"), T0 + 11 * M)
    assert d.groups == {}


def test_severity_change_is_news(config: NotifyConfig) -> None:
    d = Dispatcher(config, T0)
    d.observe_alert(alert("TK-HV-01"), T0)
    run(d, T0, T0 + 30 * S)
    d.observe_alert(alert("TK-HV-01", severity="critical", updated_at=T0 + 5 * M), T0 + 5 * M)
    notes = run(d, T0 + 31 * S, T0 + 6 * M, step=S)
    assert summary(notes) == [("gt", 0, "changed", ["TK-HV-01:firing:critical"])]


def test_silence_suppresses_until_it_ends(config: NotifyConfig) -> None:
    d = Dispatcher(config, T0)
    events = d.observe_silence(silence("s1", ['entity="TK-HV-01"'], T0, T0 + 10 * M))
    assert [e["kind"] for e in events] == ["silence_created"]
    d.observe_alert(alert("TK-HV-01"), T0)
    d.observe_alert(alert("TK-PCT-01"), T0)
    notes, suppressed = d.due(T0 + 30 * S)
    assert summary(notes) == [("gt", 0, "new", ["TK-PCT-01:firing:warning"])]
    assert [(e["kind"], e["entity"], e["reason"], e["detail"]) for e in suppressed] == [
        ("suppressed", "TK-HV-01", "silenced", "s1")]
    assert d.due(T0 + 5 * M + 30 * S)[1] == []  # recorded once
    # no escalation for the silenced alert; when the silence ends it is news
    later = run(d, T0 + 31 * S, T0 + 11 * M, step=10 * S)
    assert summary(later) == [("gt", 0, "changed",
                               ["TK-HV-01:firing:warning", "TK-PCT-01:firing:warning"])]


def test_expired_silence_and_silenced_resolve(config: NotifyConfig) -> None:
    d = Dispatcher(config, T0)
    d.observe_alert(alert("TK-HV-01"), T0)
    run(d, T0, T0 + 30 * S)
    d.observe_silence(silence("s1", ['domain="traffic"'], T0 + M, T0 + 24 * 60 * M))
    d.observe_alert(alert("TK-HV-01", status="resolved", updated_at=T0 + 2 * M), T0 + 2 * M)
    assert run(d, T0 + M, T0 + 10 * M, step=10 * S) == []  # silenced: dropped quietly
    d.observe_alert(alert("TK-HV-02"), T0 + 11 * M)
    events = d.observe_silence(silence("s1", ['domain="traffic"'], T0 + M, T0 + 12 * M,
                                       expired_by="Ngô Văn Khánh"))
    assert [e["kind"] for e in events] == ["silence_expired"]
    notes = run(d, T0 + 11 * M, T0 + 17 * M, step=10 * S)
    assert summary(notes) == [("gt", 0, "new", ["TK-HV-02:firing:warning"])]


def test_inhibition_critical_mutes_warning_for_the_same_entity(config: NotifyConfig) -> None:
    d = Dispatcher(config, T0)
    d.observe_alert(alert("TK-HV-01", rule="traffic.critical_incident", severity="critical"),
                    T0)
    d.observe_alert(alert("TK-HV-01", rule="traffic.congestion"), T0)
    d.observe_alert(alert("TK-PCT-01", rule="traffic.congestion"), T0)  # other entity
    notes, events = d.due(T0 + 30 * S)
    assert summary(notes) == [("gt", 0, "new", ["TK-HV-01:firing:critical",
                                                "TK-PCT-01:firing:warning"])]
    assert [(e["rule"], e["reason"]) for e in events] == [("traffic.congestion", "inhibited")]
    # the source resolves: the warning is no longer inhibited and is announced
    d.observe_alert(alert("TK-HV-01", rule="traffic.critical_incident", severity="critical",
                          status="resolved", updated_at=T0 + M), T0 + M)
    notes = run(d, T0 + M, T0 + 6 * M, step=10 * S)
    assert summary(notes) == [("gt", 0, "changed", ["TK-HV-01:firing:warning",
                                                    "TK-PCT-01:firing:warning",
                                                    "TK-HV-01:resolved:critical"])]


def test_a_new_episode_ends_the_previous_one(config: NotifyConfig) -> None:
    d = Dispatcher(config, T0)
    d.observe_alert(alert("TK-HV-01"), T0)
    run(d, T0, T0 + 30 * S)
    # the resolve record was compacted away; the next record is a new episode
    d.observe_alert(alert("TK-HV-01", starts_at=T0 + 20 * M), T0 + 20 * M)
    notes = run(d, T0 + 20 * M, T0 + 21 * M, step=10 * S)
    assert summary(notes) == [("gt", 0, "changed", ["TK-HV-01:firing:warning",
                                                    "TK-HV-01:resolved:warning"])]
    assert "đã kết thúc" in notes[0].alerts[1]["summary"]


def test_continue_routes_and_the_default_route(config: NotifyConfig) -> None:
    d = Dispatcher(config, T0)
    d.observe_alert(alert("cong-dvc", domain="cyber", rule="cyber.x", area=""), T0)
    notes = run(d, T0, T0 + 30 * S)
    assert [(n.receiver, n.route) for n in notes] == [("ioc", "route")]


def history_of(d: Dispatcher, notes: list[Notification], config: NotifyConfig
               ) -> list[dict[str, Any]]:
    return [n.history_record(plan(n, config)) for n in notes]


def test_restart_rebuilds_what_was_told_no_duplicate_and_nothing_lost(config: NotifyConfig
                                                                      ) -> None:
    d = Dispatcher(config, T0)
    a, b = alert("TK-HV-01"), alert("TK-PCT-01", severity="critical")
    log: list[dict[str, Any]] = []
    log += d.observe_alert(a, T0)
    log += d.observe_alert(b, T0)
    notes = run(d, T0, T0 + 16 * M, step=10 * S)
    assert [n.reason for n in notes] == ["new", "escalation"]
    log += history_of(d, notes, config)
    # SIGKILL; while down, TK-HV-01 resolves. The new process rebuilds from the topics.
    now = T0 + 20 * M
    d2 = Dispatcher(config, now)
    d2.restore(log)
    assert d2.observe_alert(a, now) == []  # already recorded
    assert d2.observe_alert(b, now) == []
    resolved = alert("TK-HV-01", status="resolved", updated_at=T0 + 18 * M)
    assert [e["kind"] for e in d2.observe_alert(resolved, now)] == ["alert_resolved"]
    notes2 = run(d2, now, now + 30 * M, step=10 * S)
    # exactly the missed transition, to the receiver (with the group's whole state) and to the
    # level that was told; no repeat of the first notification, no second level-1 escalation;
    # level 2 on time
    assert summary(notes2) == [
        ("gt", 0, "resolved", ["TK-PCT-01:firing:critical", "TK-HV-01:resolved:warning"]),
        ("truong-ca", 1, "resolved", ["TK-HV-01:resolved:warning"]),
        ("lanh-dao", 2, "escalation", ["TK-PCT-01:firing:critical"])]
    assert notes2[0].created_at == now
    assert notes2[2].created_at == T0 + 45 * M + 30 * S


def test_ledger_resumes_interrupted_deliveries_and_owes_fallbacks(config: NotifyConfig
                                                                  ) -> None:
    d = Dispatcher(config, T0)
    d.observe_alert(alert("TK-HV-01"), T0)
    first = run(d, T0, T0 + 30 * S)[0]
    d.observe_alert(alert("TK-HV-02"), T0 + M)
    second = run(d, T0 + 31 * S, T0 + 6 * M, step=10 * S)[0]
    deliveries = plan(first, config)
    assert [x.key for x in deliveries] == ["email|binh", "telegram|binh"]
    assert deliveries[0] == Delivery("email", "binh", "Trần Thị Bình <binh@sogtvt.example>",
                                     "binh@sogtvt.example")
    events = [first.history_record(deliveries), second.history_record(plan(second, config))]
    ledger = Ledger()
    ledger.restore(events)
    todo = ledger.unfinished(config)
    # the first notification's news is in the second (the group's whole state): superseded
    assert [(n.notification_id, dl.key) for n, dl in todo.superseded] == [
        (first.notification_id, "email|binh"), (first.notification_id, "telegram|binh")]
    assert [(n.notification_id, [x.key for x in ds]) for n, ds in todo.resume] == [
        (second.notification_id, ["email|binh", "telegram|binh"])]
    ledger.record_outcome(second.notification_id, "email|binh", "sent")
    ledger.record_outcome(second.notification_id, "telegram|binh", "gave_up")
    ledger.record_outcome(first.notification_id, "email|binh", "superseded")
    ledger.record_outcome(first.notification_id, "telegram|binh", "superseded")
    todo = ledger.unfinished(config)
    assert todo.resume == [] and todo.superseded == []
    assert [(n.notification_id, keys) for n, keys in todo.fallbacks] == [
        (second.notification_id, ["telegram|binh"])]
    assert config.fallback_for("gt") == "ioc"
    restored, _ = Notification.from_event(events[1])
    assert [episode_key(x) for x in restored.alerts] == [episode_key(x) for x in second.alerts]
    assert restored.alerts[0]["starts_at"] == T0


def test_old_firing_records_from_a_backfill_page_nobody(config: NotifyConfig) -> None:
    d = Dispatcher(config, T0)
    old = alert("TK-HV-01", starts_at=T0 - timedelta(days=30))
    events = d.observe_alert(old, T0)
    assert [e["kind"] for e in events] == ["alert_firing"]  # recorded in the history …
    assert run(d, T0, T0 + 10 * M, step=10 * S) == []  # … but nobody is paged
    assert d.groups == {}
    # an announced episode still gets its resolve, however late its record is
    d.observe_alert(alert("TK-HV-02"), T0)
    run(d, T0, T0 + 30 * S)
    late = alert("TK-HV-02", status="resolved", updated_at=T0 + M)
    d.observe_alert(late, T0 + 3 * 24 * 60 * M)
    notes = run(d, T0 + 3 * 24 * 60 * M, T0 + 3 * 24 * 60 * M + 10 * S)
    assert summary(notes) == [("gt", 0, "resolved", ["TK-HV-02:resolved:warning"])]
