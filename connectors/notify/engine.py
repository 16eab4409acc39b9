"""What to tell whom, and when: grouping, deduplication, silences, inhibition, acknowledgement
and escalation as one pure state machine driven by a clock the caller passes in.

Inputs are records: alerts (``ioc.alert.v1``), acks (``ioc.alert_ack.v1``), silences
(``ioc.silence.v1``) and, at start, the notifier's own history (``ioc.alert_event.v1``) from
which :meth:`Dispatcher.restore` rebuilds what every group was last told. Outputs are
:class:`Notification` decisions and history records. No I/O, no wall clock: tests drive it with
exact times.

Semantics (Alertmanager's, plus acknowledgement and escalation):

- An alert is routed by the config's route tree into one **aggregation group** per matching
  route and ``group_by`` values. A new group waits ``group_wait`` before its first notification
  (to collect related alerts), then is evaluated every ``group_interval``.
- A group notifies its route's receiver (level 0) when its set of firing alerts gained an alert
  or a severity change since the last notification ("new"/"changed"), when an alert it announced
  resolved ("resolved"), or when ``repeat_interval`` passed since the last notification and at
  least one firing alert is not acknowledged ("repeat"). Otherwise it stays quiet: the same
  transition (a record re-published after a worker restart) is never announced twice.
- An alert matched by an active **silence**, or **inhibited** (a firing alert matching an
  inhibit rule's source, with equal ``equal`` labels, mutes alerts matching its target), is
  left out of notifications and recorded as suppressed. A silenced alert that resolves is
  dropped quietly.
- **Escalation**: when a route has levels ``[{after, receiver}, …]``, a firing alert that is
  neither acknowledged nor muted ``after`` its first notification is announced to that level's
  receiver (each level once per episode). An acknowledged episode stops escalating and stops
  repeating. Levels that were told about an episode also get its resolved notification.
- A new episode of an alert (new ``starts_at``) implies the end of the previous one: if the
  resolve record was compacted away, the group still announces the old episode as resolved.
- A firing record whose ``updated_at`` (event time) is older than ``max_alert_age`` when it
  arrives (a backfill of last month's data, a replay) opens no group and pages nobody; an
  episode already announced still gets its updates and its resolve.
- When an alert's routes change (a warning becomes critical and matches another route), groups
  it leaves forget it quietly if the same receiver hears about it in its new group; otherwise they
  keep it until it resolves, so whoever was told about an episode is told when it ends.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ioc.connectors.notify import history
from ioc.connectors.notify.config import InhibitRule, NotifyConfig, Route
from ioc.connectors.notify.model import (
    SEVERITY_RANK,
    Matcher,
    episode_key,
    firing_key,
    labels_of,
    matches_all,
    ms,
    parse_transition_key,
    stable_id,
    transition_key,
)

REASONS = ("new", "changed", "repeat", "resolved", "escalation", "fallback")


@dataclass
class Notification:
    """One message to one receiver (a roster): what the sender delivers on every channel."""

    notification_id: str
    created_at: datetime
    group_key: str
    route: str
    receiver: str
    level: int
    reason: str
    status: str  # firing if any alert in it fires, else resolved
    alerts: list[dict[str, Any]]
    group_labels: dict[str, str]
    escalation_after: timedelta | None = None
    parent_id: str = ""
    failures: tuple[str, ...] = ()
    fallback_from: str = ""  # the receiver a fallback notification stands in for

    @property
    def alert_keys(self) -> list[str]:
        return [transition_key(a) for a in self.alerts]

    @property
    def firing(self) -> list[dict[str, Any]]:
        return [a for a in self.alerts if a["status"] == "firing"]

    @property
    def resolved(self) -> list[dict[str, Any]]:
        return [a for a in self.alerts if a["status"] != "firing"]

    def payload(self, deliveries: Iterable[Any]) -> dict[str, Any]:
        return {"alerts": [history.alert_to_json(a) for a in self.alerts],
                "group_labels": self.group_labels,
                "escalation_after_s": (self.escalation_after.total_seconds()
                                       if self.escalation_after is not None else None),
                "parent_id": self.parent_id, "failures": list(self.failures),
                "fallback_from": self.fallback_from,
                "deliveries": [d.to_json() for d in deliveries]}

    def history_record(self, deliveries: Iterable[Any], subject: str = "") -> dict[str, Any]:
        """The ``notification`` history record, written before anything is sent."""
        deliveries = list(deliveries)
        fields: dict[str, Any] = {}
        if len(self.alerts) == 1:
            fields = history.alert_fields(self.alerts[0])
        elif self.alerts:  # what the alerts have in common; the worst severity
            for name in ("domain", "area_code", "rule", "entity"):
                values = {a[name] for a in self.alerts}
                if len(values) == 1:
                    fields[name] = values.pop()
            fields["severity"] = min((a["severity"] for a in self.alerts),
                                     key=lambda s: SEVERITY_RANK.get(s, 9))
        fields.update(status=self.status, summary=subject or fields.get("summary", ""))
        return history.event(
            "notification", self.created_at, stable_id("notification", self.notification_id),
            group_key=self.group_key, route=self.route, receiver=self.receiver,
            level=self.level, reason=self.reason, notification_id=self.notification_id,
            alert_keys=self.alert_keys, payload=history.dumps(self.payload(deliveries)),
            detail="; ".join(self.failures), **fields)

    @classmethod
    def from_event(cls, ev: Mapping[str, Any]) -> tuple[Notification, list[dict[str, str]]]:
        """The notification a ``notification`` history record announced, and its planned
        deliveries (as JSON)."""
        data = json.loads(ev.get("payload") or "{}")
        after = data.get("escalation_after_s")
        n = cls(ev["notification_id"], ev["occurred_at"], ev["group_key"], ev["route"],
                ev["receiver"], ev["level"], ev["reason"], ev["status"],
                [history.alert_from_json(a) for a in data.get("alerts", [])],
                dict(data.get("group_labels") or {}),
                timedelta(seconds=after) if after is not None else None,
                data.get("parent_id") or "", tuple(data.get("failures") or ()),
                data.get("fallback_from") or "")
        return n, list(data.get("deliveries") or [])


@dataclass
class EpisodeNote:
    """A firing episode a group announced: when first (escalation clock) and the highest
    escalation level told."""

    first_notified_at: datetime
    level: int = 0


@dataclass
class GroupMemory:
    """What a group's receiver was last told: rebuilt from history after a restart."""

    notified_firing: set[str] = field(default_factory=set)  # firing_key()s
    notified_at: datetime | None = None
    episodes: dict[str, EpisodeNote] = field(default_factory=dict)  # episode_key() →


@dataclass
class Group:
    key: str
    route: Route
    labels: dict[str, str]
    next_flush: datetime
    memory: GroupMemory
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)  # episode_key() → record


@dataclass
class Silence:
    record: dict[str, Any]
    matchers: tuple[Matcher, ...]

    def active(self, now: datetime) -> bool:
        return bool(self.record["starts_at"] <= now < self.record["ends_at"])

    def matches(self, labels: Mapping[str, str]) -> bool:
        return matches_all(self.matchers, labels)


def parse_silence(record: Mapping[str, Any]) -> Silence:
    return Silence(dict(record), tuple(Matcher.parse(m) for m in record["matchers"]))


def _order(alert: Mapping[str, Any]) -> tuple[Any, ...]:
    return (alert["status"] != "firing", SEVERITY_RANK.get(alert["severity"], 9),
            alert["starts_at"], alert["area_code"], alert["entity"], alert["rule"],
            alert["alert_id"])


class Dispatcher:
    """The notifier's state: alerts, groups, acks, silences. See the module docstring."""

    def __init__(self, config: NotifyConfig, start: datetime) -> None:
        self.config = config
        self.alerts: dict[str, dict[str, Any]] = {}  # alert_id → latest record
        self.groups: dict[str, Group] = {}
        self.memberships: dict[str, set[str]] = defaultdict(set)  # alert_id → group keys
        self.acks: dict[str, dict[str, Any]] = {}  # alert_id → latest ack
        self.silences: dict[str, Silence] = {}
        self.memory: dict[str, GroupMemory] = {}  # restored, for groups not yet re-created
        self.seen: dict[str, datetime] = {}  # history event ids written or read back → when
        self.since = start - config.global_.history_lookback

    # -- history -----------------------------------------------------------------------------

    def _new(self, *events: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        for ev in events:
            if ev["event_id"] not in self.seen:
                self.seen[ev["event_id"]] = ev["occurred_at"]
                out.append(ev)
        return out

    def prune(self, now: datetime) -> None:
        """Forget history ids older than the lookback (a long-running process stays small;
        such records are never re-read at start either)."""
        self.since = now - self.config.global_.history_lookback
        self.seen = {k: t for k, t in self.seen.items() if t >= self.since}

    def restore(self, events: Iterable[Mapping[str, Any]]) -> None:
        """Rebuild what every group was told from the history records (oldest first). Call
        before the first alert is observed."""
        for ev in events:
            self.seen[ev["event_id"]] = ev["occurred_at"]
            if ev["kind"] != "notification" or ev["reason"] == "fallback":
                continue
            mem = self.memory.setdefault(ev["group_key"], GroupMemory())
            parsed = [parse_transition_key(k) for k in ev["alert_keys"]]
            at = ev["occurred_at"]
            if ev["level"] == 0:
                mem.notified_firing = {f"{a}|{s}|{sev}" for a, s, st, sev in parsed
                                       if st == "firing"}
                mem.notified_at = at
                for a, s, st, _sev in parsed:
                    if st == "firing":
                        mem.episodes.setdefault(f"{a}|{s}", EpisodeNote(at, 0))
                    else:
                        mem.episodes.pop(f"{a}|{s}", None)
            elif ev["reason"] == "escalation":
                for a, s, _st, _sev in parsed:
                    note = mem.episodes.get(f"{a}|{s}")
                    if note is not None:
                        note.level = max(note.level, ev["level"])

    # -- inputs --------------------------------------------------------------------------------

    def observe_alert(self, rec: Mapping[str, Any], now: datetime, replay: bool = False
                      ) -> list[dict[str, Any]]:
        """Take one alert record at wall-clock ``now``; returns history records of a new
        transition (if any). ``replay``: the record comes from re-reading the topic at start,
        so it is recorded only if it is recent (within ``history_lookback``) and not already in
        the history read back; a live record that is a new transition is always recorded."""
        rec = dict(rec)
        aid = rec["alert_id"]
        prev = self.alerts.get(aid)
        if prev is not None:
            if rec["starts_at"] < prev["starts_at"]:
                return []  # a late record of an older episode
            if transition_key(rec) == transition_key(prev):
                if rec["updated_at"] > prev["updated_at"]:  # same state, fresher figures
                    self.alerts[aid] = rec
                    for gk in self.memberships.get(aid, ()):
                        g = self.groups.get(gk)
                        if g is not None and episode_key(rec) in g.alerts:
                            g.alerts[episode_key(rec)] = rec
                return []
        self.alerts[aid] = rec
        events = (self._new(history.state_change(rec, rec["updated_at"]))
                  if not replay or rec["updated_at"] >= self.since else [])
        labels = labels_of(rec)
        routes = self.config.route.match(labels)
        targets = {route.group_key(labels): route for route in routes}
        receivers = {route.receiver for route in routes}
        for gk in list(self.memberships.get(aid, ())):
            g = self.groups.get(gk)
            if g is None or gk in targets:
                continue
            if g.route.receiver in receivers:
                self._drop_alert(g, aid)
            else:
                self._put(g, rec, add=False)
        max_age = self.config.global_.max_alert_age
        historical = bool(max_age) and now - rec["updated_at"] > max_age
        for gk, route in targets.items():
            g = self.groups.get(gk)
            if g is None:
                mem = self.memory.get(gk)
                known = mem is not None and any(k.startswith(aid + "|") for k in mem.episodes)
                if (rec["status"] != "firing" or historical) and not known:
                    continue
                g = self._create(gk, route, labels, now)
            self._put(g, rec, add=True)
        return events

    def observe_ack(self, ack: Mapping[str, Any], replay: bool = False
                    ) -> list[dict[str, Any]]:
        ack = dict(ack)
        cur = self.acks.get(ack["alert_id"])
        if cur is None or (ack["starts_at"], ack["acked_at"]) >= (cur["starts_at"],
                                                                  cur["acked_at"]):
            self.acks[ack["alert_id"]] = ack
        if replay and ack["acked_at"] < self.since:
            return []
        return self._new(history.acked(ack, self.alerts.get(ack["alert_id"])))

    def observe_silence(self, record: Mapping[str, Any], replay: bool = False
                        ) -> list[dict[str, Any]]:
        cur = self.silences.get(record["silence_id"])
        if cur is not None and record["updated_at"] < cur.record["updated_at"]:
            return []
        self.silences[record["silence_id"]] = parse_silence(record)
        events = []
        if not replay or record["created_at"] >= self.since:
            events += self._new(history.silence_created(record))
        if record.get("expired_by") and (not replay or record["updated_at"] >= self.since):
            events += self._new(history.silence_expired(record))
        return events

    def is_acked(self, alert: Mapping[str, Any]) -> bool:
        ack = self.acks.get(alert["alert_id"])
        return ack is not None and ack["starts_at"] == alert["starts_at"]

    def ack_of(self, alert: Mapping[str, Any]) -> dict[str, Any] | None:
        return self.acks[alert["alert_id"]] if self.is_acked(alert) else None

    # -- groups --------------------------------------------------------------------------------

    def _create(self, gk: str, route: Route, labels: Mapping[str, str], at: datetime) -> Group:
        mem = self.memory.pop(gk, None)
        if mem is not None and mem.notified_at is not None:
            first = max(at, mem.notified_at + route.group_interval)
        else:
            mem = mem or GroupMemory()
            first = at + route.group_wait
        g = Group(gk, route, route.group_labels(labels), first, mem)
        self.groups[gk] = g
        return g

    def _put(self, g: Group, rec: dict[str, Any], add: bool) -> None:
        ek = episode_key(rec)
        for other_ek, other in list(g.alerts.items()):
            if (other["alert_id"] == rec["alert_id"] and other_ek != ek
                    and other["status"] == "firing"):
                g.alerts[other_ek] = dict(
                    other, status="resolved", ends_at=rec["starts_at"],
                    updated_at=rec["starts_at"],
                    summary=other["summary"] + " (Đợt cảnh báo này đã kết thúc; một đợt mới "
                                               "của cùng cảnh báo đã bắt đầu.)")
        if add or ek in g.alerts:
            g.alerts[ek] = rec
        self.memberships[rec["alert_id"]].add(g.key)

    def _forget_episode(self, g: Group, ek: str) -> None:
        rec = g.alerts.pop(ek, None)
        g.memory.episodes.pop(ek, None)
        g.memory.notified_firing = {k for k in g.memory.notified_firing
                                    if not k.startswith(ek + "|")}
        if rec is not None and not any(a["alert_id"] == rec["alert_id"]
                                       for a in g.alerts.values()):
            self.memberships.get(rec["alert_id"], set()).discard(g.key)

    def _drop_alert(self, g: Group, alert_id: str) -> None:
        for ek in [k for k, a in g.alerts.items() if a["alert_id"] == alert_id]:
            self._forget_episode(g, ek)
        self.memberships.get(alert_id, set()).discard(g.key)

    # -- muting --------------------------------------------------------------------------------

    def _inhibitions(self) -> dict[str, str]:
        """alert_id → the id of a firing alert that inhibits it."""
        firing = [a for a in self.alerts.values() if a["status"] == "firing"]
        if not firing or not self.config.inhibit_rules:
            return {}
        labelled = [(a, labels_of(a)) for a in firing]
        out: dict[str, str] = {}
        for rule in self.config.inhibit_rules:
            sources = [(a, lab) for a, lab in labelled if matches_all(rule.source, lab)]
            if not sources:
                continue
            for target, tlab in labelled:
                if target["alert_id"] in out or not matches_all(rule.target, tlab):
                    continue
                for source, slab in sources:
                    if source["alert_id"] != target["alert_id"] and _equal(rule, slab, tlab):
                        out[target["alert_id"]] = source["alert_id"]
                        break
        return out

    def mute_reason(self, alert: Mapping[str, Any], now: datetime,
                    inhibitions: Mapping[str, str] | None = None) -> tuple[str, str] | None:
        """("silenced", silence_id) or ("inhibited", alert_id of the source), or None."""
        labels = labels_of(alert)
        for sid, s in sorted(self.silences.items()):
            if s.active(now) and s.matches(labels):
                return "silenced", sid
        inh = self._inhibitions() if inhibitions is None else inhibitions
        source = inh.get(alert["alert_id"])
        if source is not None and alert["status"] == "firing":
            return "inhibited", source
        return None

    # -- decisions -------------------------------------------------------------------------------

    def due(self, now: datetime, flush_all: bool = False
            ) -> tuple[list[Notification], list[dict[str, Any]]]:
        """Evaluate every group at ``now``: notifications to send and history records (the
        suppressions). ``flush_all`` evaluates groups whose wait or interval has not passed
        (used when a batch run ends)."""
        notes: list[Notification] = []
        events: list[dict[str, Any]] = []
        inhibitions = self._inhibitions()
        for g in list(self.groups.values()):
            if flush_all or now >= g.next_flush:
                self._flush(g, now, inhibitions, notes, events)
            self._escalate(g, now, inhibitions, notes)
            if not g.alerts:
                del self.groups[g.key]
        return notes, events

    def next_due(self) -> datetime | None:
        """When :meth:`due` next has group work (escalation is checked on every call)."""
        return min((g.next_flush for g in self.groups.values()), default=None)

    def _flush(self, g: Group, now: datetime, inhibitions: Mapping[str, str],
               notes: list[Notification], events: list[dict[str, Any]]) -> None:
        route, mem = g.route, g.memory
        firing: list[dict[str, Any]] = []
        resolved: list[dict[str, Any]] = []
        present: set[str] = set()
        for ek, rec in list(g.alerts.items()):
            muted = self.mute_reason(rec, now, inhibitions)
            if rec["status"] == "firing":
                present.add(firing_key(rec))
                if muted is not None:
                    events += self._new(history.suppressed(rec, g.key, route.id, route.receiver,
                                                           muted[0], muted[1], now))
                    continue
                firing.append(rec)
            elif ek in mem.episodes and muted is None:
                resolved.append(rec)
            else:
                if muted is not None and ek in mem.episodes:
                    events += self._new(history.suppressed(rec, g.key, route.id, route.receiver,
                                                           muted[0], muted[1], now))
                self._forget_episode(g, ek)
        mem.notified_firing &= present
        keys = {firing_key(r) for r in firing}
        reason = None
        if keys - mem.notified_firing:
            reason = "changed" if mem.notified_at is not None else "new"
        elif resolved:
            reason = "resolved"
        elif (firing and mem.notified_at is not None
              and now - mem.notified_at >= route.repeat_interval
              and any(not self.is_acked(r) for r in firing)):
            reason = "repeat"
        g.next_flush = now + route.group_interval
        if reason is None:
            return
        announce = sorted(firing, key=_order) + sorted(resolved, key=_order)
        if firing or route.send_resolved:
            notes.append(self._notification(g, 0, route.receiver, reason, announce, now))
        mem.notified_firing = keys
        mem.notified_at = now
        for r in firing:
            mem.episodes.setdefault(episode_key(r), EpisodeNote(now, 0))
        if route.send_resolved:
            for level, esc in enumerate(route.escalation, start=1):
                told = [r for r in resolved if mem.episodes[episode_key(r)].level >= level]
                if told:
                    notes.append(self._notification(g, level, esc.receiver, "resolved",
                                                    sorted(told, key=_order), now))
        for r in resolved:
            self._forget_episode(g, episode_key(r))

    def _escalate(self, g: Group, now: datetime, inhibitions: Mapping[str, str],
                  notes: list[Notification]) -> None:
        levels = g.route.escalation
        if not levels:
            return
        by_level: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for ek, rec in g.alerts.items():
            note = g.memory.episodes.get(ek)
            if (note is None or rec["status"] != "firing" or self.is_acked(rec)
                    or self.mute_reason(rec, now, inhibitions) is not None):
                continue
            elapsed = now - note.first_notified_at
            target = sum(1 for lv in levels if elapsed >= lv.after)
            for level in range(note.level + 1, target + 1):
                by_level[level].append(rec)
            note.level = max(note.level, target)
        for level in sorted(by_level):
            esc = levels[level - 1]
            notes.append(self._notification(g, level, esc.receiver, "escalation",
                                            sorted(by_level[level], key=_order), now,
                                            after=esc.after))

    def _notification(self, g: Group, level: int, receiver: str, reason: str,
                      alerts: list[dict[str, Any]], now: datetime,
                      after: timedelta | None = None) -> Notification:
        status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
        keys = sorted(transition_key(a) for a in alerts)
        nid = stable_id("notification", g.key, receiver, level, reason, *keys, ms(now))
        return Notification(nid, now, g.key, g.route.id, receiver, level, reason, status,
                            [dict(a) for a in alerts], dict(g.labels), after)

    # -- views for the CLI and the HTTP API ----------------------------------------------------

    def firing(self) -> list[dict[str, Any]]:
        return sorted((a for a in self.alerts.values() if a["status"] == "firing"), key=_order)


def _equal(rule: InhibitRule, source: Mapping[str, str], target: Mapping[str, str]) -> bool:
    return all(source.get(label, "") == target.get(label, "") for label in rule.equal)
