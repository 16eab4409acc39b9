"""Online information and cyber security (``cyber``): mentions, sentiment, security events.

KPIs, all on 1h windows:

- ``cyber.mentions`` (per topic; area_code = the mention's ``area_code``, "" for province-wide;
  entity = ``topic``): number of mentions.
- ``cyber.negative_share`` (same key): share of those mentions whose ``sentiment_score`` is
  below :data:`NEGATIVE_BELOW` (−0.2: clearly negative; scores between −0.2 and 0.2 are the
  neutral band of most sentiment models). ``sample_count`` is the number of mentions, so the
  share of several keys combines exactly as Σ value·sample_count / Σ sample_count.
- ``cyber.security_events`` (per system; area_code = the event's ``area_code``; entity =
  ``system``): number of security events, all severities.
- ``cyber.security_events_low`` / ``_medium`` / ``_high`` / ``_critical`` (same key): the same
  count for one severity. Severity is in the KPI code rather than the entity so that ``entity``
  stays the system id as for every per-system KPI; all four are emitted (zeros included) so a
  window always has a complete breakdown that sums to ``cyber.security_events``.

Alerts:

- ``cyber.negative_share`` — evaluated when a 1h mention window closes: negative share
  ≥ 0.5 with ≥ 20 mentions → warning (labels: area_code, topic; ``starts_at`` = end of the
  hour). While it stays high, each later hour updates the same episode (value, summary,
  ``updated_at``). It resolves at the end of the first later hour below either threshold —
  including an hour without any mention at all, which has no window: that is detected when a
  window two hours later closes, or once the watermark is two hours past the last evaluated
  hour (``ends_at`` is then the end of the silent hour).
- ``cyber.critical_security_event`` — a security event of severity ``critical`` → critical at
  once, naming the event type and the system's Vietnamese name; auto-resolves an hour later
  (see :class:`~ioc.streams.rules.CriticalEventRule`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ioc.infra.reference import Area, ReferenceData
from ioc.infra.reference_cyber import CyberTopic, GovSystem, load_systems, load_topics
from ioc.streams.domain import BaseRule, Domain
from ioc.streams.engine import KpiFamily, Window
from ioc.streams.rules import CriticalEventRule, alert_record
from ioc.streams.windows import WINDOWS

MENTION_TOPIC = "ioc.cyber.mention.v1"
SECURITY_EVENT_TOPIC = "ioc.cyber.security_event.v1"

MENTIONS_KPI = "cyber.mentions"
NEGATIVE_SHARE_KPI = "cyber.negative_share"
SECURITY_EVENTS_KPI = "cyber.security_events"
SEVERITIES = ("low", "medium", "high", "critical")

NEGATIVE_BELOW = -0.2
"""A mention is negative when its sentiment_score is strictly below this."""

MENTIONS_FAMILY = "cyber.mentions.1h"
SECURITY_EVENTS_FAMILY = "cyber.security_events.1h"

EVENT_TYPE_VI = {
    "malware": "mã độc",
    "intrusion_attempt": "dò quét, xâm nhập trái phép",
    "ddos": "tấn công từ chối dịch vụ (DDoS)",
    "defacement": "thay đổi giao diện trang web",
    "phishing": "lừa đảo (phishing)",
    "data_leak": "lộ lọt dữ liệu",
    "vulnerability": "lỗ hổng bảo mật",
    "other": "sự kiện khác",
}


def security_event_kpi(severity: str) -> str:
    """KPI code of the per-severity count, e.g. ``cyber.security_events_critical``."""
    return f"{SECURITY_EVENTS_KPI}_{severity}"


class MentionStats:
    def __init__(self) -> None:
        self.mentions = 0
        self.negative = 0

    def add(self, event: Mapping[str, Any]) -> None:
        self.mentions += 1
        if float(event["sentiment_score"]) < NEGATIVE_BELOW:
            self.negative += 1

    def results(self) -> list[tuple[str, float, int]]:
        if not self.mentions:
            return []
        return [(MENTIONS_KPI, float(self.mentions), self.mentions),
                (NEGATIVE_SHARE_KPI, self.negative / self.mentions, self.mentions)]


class SecurityEventCounts:
    def __init__(self) -> None:
        self.by_severity = dict.fromkeys(SEVERITIES, 0)

    def add(self, event: Mapping[str, Any]) -> None:
        sev = str(event["severity"])
        self.by_severity[sev] = self.by_severity.get(sev, 0) + 1

    def results(self) -> list[tuple[str, float, int]]:
        total = sum(self.by_severity.values())
        return [(SECURITY_EVENTS_KPI, float(total), total)] + [
            (security_event_kpi(sev), float(self.by_severity[sev]), total)
            for sev in SEVERITIES]


def cyber_families() -> list[KpiFamily]:
    return [
        KpiFamily(MENTIONS_FAMILY, MENTION_TOPIC, WINDOWS["1h"],
                  lambda ev: (ev["area_code"], ev["topic"]), lambda a, e: MentionStats()),
        KpiFamily(SECURITY_EVENTS_FAMILY, SECURITY_EVENT_TOPIC, WINDOWS["1h"],
                  lambda ev: (ev["area_code"], ev["system"]),
                  lambda a, e: SecurityEventCounts()),
    ]


@dataclass
class _TopicState:
    last_end: datetime
    firing: dict[str, Any] | None = None


class NegativeShareRule(BaseRule):
    """Negative share ≥ ``share`` with ≥ ``min_mentions`` in a closed hour → warning; see the
    module docstring for updates and resolution."""

    rule = name = "cyber.negative_share"
    family = MENTIONS_FAMILY

    def __init__(self, topics: Mapping[str, CyberTopic], areas: Mapping[str, Area],
                 share: float = 0.5, min_mentions: int = 20,
                 window: timedelta = timedelta(hours=1)) -> None:
        self.topic_names = topics
        self.areas = areas
        self.share = share
        self.min_mentions = min_mentions
        self.window = window
        self.state: dict[tuple[str, str], _TopicState] = {}

    # -- wording -----------------------------------------------------------------------------
    def _label(self, area_code: str, topic: str) -> str:
        t = self.topic_names.get(topic)
        label = f"«{t.name_vi if t else topic}»"
        if area_code:
            area = self.areas.get(area_code)
            label += f" tại {area.name_vi if area else area_code}"
        return label

    def _limits(self) -> str:
        return f"ngưỡng {self.share:.0%}, tối thiểu {self.min_mentions} lượt"

    # -- state -------------------------------------------------------------------------------
    def restore(self, alerts: Iterable[Mapping[str, Any]]) -> None:
        """Resume from the alert log: the latest record per (area, topic) tells the last hour
        evaluated and whether an episode is firing."""
        for a in alerts:
            if a["rule"] != self.rule:
                continue
            key = (a["area_code"], a["entity"])
            st = self.state.get(key)
            if st is not None and a["updated_at"] < st.last_end:
                continue
            firing = dict(a) if a["status"] == "firing" else None
            self.state[key] = _TopicState(a["updated_at"], firing)

    def _resolve(self, firing: dict[str, Any], end: datetime, value: float, mentions: int
                 ) -> dict[str, Any]:
        label = self._label(firing["area_code"], firing["entity"])
        return dict(firing, status="resolved", ends_at=end, updated_at=end, value=value,
                    summary=f"Dư luận về chủ đề {label} đã trở lại bình thường: tỷ lệ tiêu cực "
                            f"{value:.0%} trong {mentions} lượt đề cập ({self._limits()}).")

    def on_window_closed(self, window: Window) -> list[dict[str, Any]]:
        if window.family.name != self.family:
            return []
        got = {kpi: (value, n) for kpi, value, n in window.acc.results()}
        if NEGATIVE_SHARE_KPI not in got:
            return []
        share, mentions = got[NEGATIVE_SHARE_KPI]
        return self.on_hour(window.area_code, window.entity, window.start, window.end, share,
                            mentions)

    def on_hour(self, area_code: str, topic: str, start: datetime, end: datetime,
                share: float, mentions: int) -> list[dict[str, Any]]:
        key = (area_code, topic)
        st = self.state.get(key)
        if st is not None and end <= st.last_end:
            return []  # already evaluated (replay after a restart)
        out: list[dict[str, Any]] = []
        firing = st.firing if st is not None else None
        if firing is not None and st is not None and start > st.last_end:
            # An hour without any mention came in between: below the thresholds.
            out.append(self._resolve(firing, st.last_end + self.window, 0.0, 0))
            firing = None
        high = mentions >= self.min_mentions and share >= self.share
        if firing is not None and not high:
            out.append(self._resolve(firing, end, share, mentions))
            firing = None
        elif high:
            label = self._label(area_code, topic)
            firing = alert_record(
                rule=self.rule, labels={"area_code": area_code, "topic": topic},
                severity="warning", status="firing", domain="cyber", area_code=area_code,
                entity=topic, value=share, threshold=self.share,
                summary=f"Dư luận tiêu cực tăng cao về chủ đề {label}: {share:.0%} trong "
                        f"{mentions} lượt đề cập trong một giờ ({self._limits()}).",
                starts_at=firing["starts_at"] if firing is not None else end,
                ends_at=None, updated_at=end)
            out.append(firing)
        self.state[key] = _TopicState(end, firing)
        return out

    def on_timer(self, now: datetime) -> list[dict[str, Any]]:
        """Resolve episodes whose topic went silent: two hours past the last evaluated hour,
        the hour after it had no mention (or its window would have closed by now)."""
        out = []
        for key, st in self.state.items():
            if st.firing is not None and st.last_end + 2 * self.window <= now:
                silent_end = st.last_end + self.window
                out.append(self._resolve(st.firing, silent_end, 0.0, 0))
                self.state[key] = _TopicState(silent_end, None)
        return out


def security_event_summary(event: Mapping[str, Any], systems: Mapping[str, GovSystem],
                           areas: Mapping[str, Area]) -> str:
    system = systems.get(event["system"])
    name = system.name_vi if system else event["system"]
    kind = EVENT_TYPE_VI.get(event["event_type"], event["event_type"])
    area = areas.get(event["area_code"]) if event.get("area_code") else None
    place = f" ({area.name_vi})" if area else ""
    detail = f": {event['description']}" if event.get("description") else ""
    return f"Sự cố an toàn thông tin nghiêm trọng ({kind}) trên {name}{place}{detail}"


def critical_security_event_rule(systems: Mapping[str, GovSystem], areas: Mapping[str, Area],
                                 auto_resolve: timedelta = timedelta(hours=1)
                                 ) -> CriticalEventRule:
    return CriticalEventRule(
        rule="cyber.critical_security_event", topic=SECURITY_EVENT_TOPIC, domain="cyber",
        is_critical=lambda ev: ev["severity"] == "critical",
        summary=lambda ev: security_event_summary(ev, systems, areas),
        entity=lambda ev: str(ev["system"]),
        auto_resolve=auto_resolve)


def cyber_domain(ref: ReferenceData) -> Domain:
    """Topics and systems come from ``ref.directory``, or the shipped defaults when that
    folder has no cyber files (see :mod:`ioc.infra.reference_cyber`)."""
    topics = load_topics(ref.directory)
    systems = load_systems(ref.directory)
    return Domain(
        name="cyber",
        topics=(MENTION_TOPIC, SECURITY_EVENT_TOPIC),
        families=tuple(cyber_families()),
        rules=(NegativeShareRule(topics, ref.areas),
               critical_security_event_rule(systems, ref.areas)),
    )
