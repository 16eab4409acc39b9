"""Alert rules as pure state machines over closed windows and events.

Alert identity: ``alert_id`` is a stable fingerprint of the rule and its labels, so the same
condition on the same segment always has the same id; ``starts_at`` tells episodes apart.
Every timestamp of an alert is *event time* (window ends, incident times), so replaying the
same input after a crash yields the same records, which the alerts table then replaces.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ioc.infra.reference import Area, RoadSegment
from ioc.streams.domain import BaseRule
from ioc.streams.engine import Window

SEVERITY_VI = {"info": "thông tin", "warning": "cảnh báo", "critical": "nghiêm trọng"}

INCIDENT_TYPE_VI = {
    "accident": "tai nạn giao thông",
    "breakdown": "xe hỏng giữa đường",
    "flooding": "ngập úng",
    "landslide": "sạt lở",
    "roadwork": "thi công trên đường",
    "obstruction": "vật cản trên đường",
    "other": "sự cố khác",
}


def alert_fingerprint(rule: str, labels: Mapping[str, str]) -> str:
    text = rule + "\x1f" + "\x1f".join(f"{k}={labels[k]}" for k in sorted(labels))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def alert_record(*, rule: str, labels: Mapping[str, str], severity: str, status: str,
                 domain: str, area_code: str, entity: str, value: float, threshold: float,
                 summary: str, starts_at: datetime, ends_at: datetime | None,
                 updated_at: datetime) -> dict[str, Any]:
    return {
        "alert_id": alert_fingerprint(rule, labels), "rule": rule, "severity": severity,
        "status": status, "domain": domain, "area_code": area_code, "entity": entity,
        "value": float(value), "threshold": float(threshold), "summary": summary,
        "starts_at": starts_at, "ends_at": ends_at, "updated_at": updated_at,
        "acked_by": "", "acked_at": None,
    }


def kpi_record(*, kpi: str, window: str, start: datetime, end: datetime, area_code: str,
               entity: str, value: float, sample_count: int, computed_at: datetime,
               final: bool) -> dict[str, Any]:
    """A KPI record (``ioc.kpi.v1``) computed by a rule rather than by a window."""
    return {
        "kpi": kpi, "window": window, "window_start": start, "window_end": end,
        "area_code": area_code, "entity": entity, "value": float(value),
        "sample_count": int(sample_count), "computed_at": computed_at, "is_final": final,
    }


@dataclass
class _SegmentState:
    last_start: datetime
    last_end: datetime
    last_value: float
    firing: dict[str, Any] | None = None


class CongestionRule(BaseRule):
    """congestion_index ≥ 0.6 in two consecutive 5m windows → warning; both ≥ 0.8 → critical;
    resolves at the first window below 0.6. A missing window breaks the sequence."""

    rule = name = "traffic.congestion"
    family = "traffic.speed.5m"

    def __init__(self, segments: Mapping[str, RoadSegment], warning: float = 0.6,
                 critical: float = 0.8) -> None:
        self.segments = segments
        self.warning = warning
        self.critical = critical
        self.state: dict[str, _SegmentState] = {}

    def restore(self, alerts: Iterable[Mapping[str, Any]]) -> None:
        """Resume firing episodes from the alert log (latest record per alert)."""
        for a in alerts:
            if a["rule"] != self.rule or a["status"] != "firing":
                continue
            seg = a["entity"]
            st = self.state.get(seg)
            end = a["updated_at"]
            if st is None or end >= st.last_end:
                self.state[seg] = _SegmentState(end - timedelta(minutes=5), end, a["value"],
                                                dict(a))

    def _name(self, segment_id: str) -> str:
        seg = self.segments.get(segment_id)
        return seg.name_vi if seg else segment_id

    def on_window_closed(self, window: Window) -> list[dict[str, Any]]:
        if window.family.name != self.family:
            return []
        out: list[dict[str, Any]] = []
        for kpi, value, _n in window.acc.results():
            if kpi == "traffic.congestion_index":
                out.extend(self.on_window(window.entity, window.area_code, window.start,
                                          window.end, value))
        return out

    def on_window(self, segment_id: str, area_code: str, start: datetime, end: datetime,
                  value: float) -> list[dict[str, Any]]:
        st = self.state.get(segment_id)
        if st is not None and end <= st.last_end:
            return []  # already evaluated (replay after a restart)
        consecutive = st is not None and st.last_end == start
        prev = st.last_value if (st is not None and consecutive) else None
        out: list[dict[str, Any]] = []
        firing = st.firing if st is not None else None
        high = value >= self.warning
        if firing is not None and (not high or not consecutive):
            resolved = dict(firing, status="resolved", ends_at=end, updated_at=end,
                            value=value,
                            summary=f"Đã hết ùn tắc trên {self._name(segment_id)}: chỉ số ùn tắc "
                                    f"{value:.2f} dưới ngưỡng {self.warning:.1f}.")
            out.append(resolved)
            firing = None
        if high and prev is not None and prev >= self.warning:
            severity = "critical" if min(prev, value) >= self.critical else "warning"
            threshold = self.critical if severity == "critical" else self.warning
            if firing is None or firing["severity"] != severity:
                level = "nghiêm trọng" if severity == "critical" else "kéo dài"
                summary = (f"Ùn tắc {level} trên {self._name(segment_id)}: chỉ số ùn tắc "
                           f"{prev:.2f} rồi {value:.2f} trong hai khung 5 phút liên tiếp "
                           f"(ngưỡng {threshold:.1f}).")
                starts_at = firing["starts_at"] if firing is not None else end
                firing = alert_record(
                    rule=self.rule, labels={"segment_id": segment_id}, severity=severity,
                    status="firing", domain="traffic", area_code=area_code,
                    entity=segment_id, value=value, threshold=threshold, summary=summary,
                    starts_at=starts_at, ends_at=None, updated_at=end)
                out.append(firing)
        self.state[segment_id] = _SegmentState(start, end, value, firing)
        return out


def duration_vi(td: timedelta) -> str:
    """``1 giờ``, ``90 phút``: a duration as an alert summary says it."""
    minutes = int(td.total_seconds() // 60)
    return f"{minutes // 60} giờ" if minutes % 60 == 0 else f"{minutes} phút"


class CriticalEventRule(BaseRule):
    """An event that matters at once → a critical alert at once, one per event.

    Shared by every "critical incident" rule of the catalogue: the subclass or caller says which
    topic, which events qualify (``is_critical``), how to summarise one in Vietnamese
    (``summary``) and what its ``entity`` is. The alert is labelled by the event id, so a re-sent
    event never raises a second alert. It resolves by itself ``auto_resolve`` after the event
    (event time), since no domain has a "closed" event yet; an event re-sent after its alert
    resolved is ignored.
    """

    def __init__(self, *, rule: str, topic: str, domain: str,
                 is_critical: Callable[[Mapping[str, Any]], bool],
                 summary: Callable[[Mapping[str, Any]], str],
                 entity: Callable[[Mapping[str, Any]], str] = lambda ev: "",
                 auto_resolve: timedelta = timedelta(hours=1)) -> None:
        self.rule = self.name = rule
        self.topics = (topic,)
        self.domain = domain
        self.is_critical = is_critical
        self.summary = summary
        self.entity = entity
        self.auto_resolve = auto_resolve
        self.open: dict[str, dict[str, Any]] = {}

    def on_event(self, topic: str, event: Mapping[str, Any], watermark: datetime
                 ) -> list[dict[str, Any]]:
        if event["occurred_at"] + self.auto_resolve <= watermark:
            return []  # a re-sent old event whose alert already resolved
        return self.on_critical(event)

    def on_critical(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        if not self.is_critical(event):
            return []
        rec = alert_record(
            rule=self.rule, labels={"event_id": str(event["event_id"])}, severity="critical",
            status="firing", domain=self.domain, area_code=event["area_code"],
            entity=self.entity(event), value=1.0, threshold=1.0,
            summary=self.summary(event),
            starts_at=event["occurred_at"], ends_at=None, updated_at=event["occurred_at"])
        if rec["alert_id"] in self.open:
            return []
        self.open[rec["alert_id"]] = rec
        return [rec]

    def on_timer(self, now: datetime) -> list[dict[str, Any]]:
        out = []
        for alert_id, rec in list(self.open.items()):
            end = rec["starts_at"] + self.auto_resolve
            if end <= now:
                del self.open[alert_id]
                out.append(dict(rec, status="resolved", ends_at=end, updated_at=end,
                                summary=rec["summary"] + " — đã tự đóng sau "
                                        f"{duration_vi(self.auto_resolve)}."))
        return out


class CriticalIncidentRule(CriticalEventRule):
    """A traffic incident of severity critical → a critical alert at once, placed on its
    segment (or area); auto-resolved an hour later (see :class:`CriticalEventRule`)."""

    def __init__(self, segments: Mapping[str, RoadSegment], areas: Mapping[str, Area],
                 auto_resolve: timedelta = timedelta(hours=1)) -> None:
        self.segments = segments
        self.areas = areas
        super().__init__(rule="traffic.critical_incident", topic="ioc.traffic.incident.v1",
                         domain="traffic", is_critical=lambda ev: ev["severity"] == "critical",
                         summary=self._summary,
                         entity=lambda ev: ev.get("segment_id") or "",
                         auto_resolve=auto_resolve)

    def _summary(self, event: Mapping[str, Any]) -> str:
        seg = self.segments.get(event.get("segment_id") or "")
        area = self.areas.get(event["area_code"])
        place = seg.name_vi if seg else (area.name_vi if area else event["area_code"])
        kind = INCIDENT_TYPE_VI.get(event["incident_type"], event["incident_type"])
        detail = f": {event['description']}" if event.get("description") else ""
        return f"Sự cố giao thông nghiêm trọng ({kind}) tại {place}{detail}"

    def on_incident(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        return self.on_critical(event)
