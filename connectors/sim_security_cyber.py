"""Simulated public-order incidents, media mentions and security events: pure and deterministic.

Like :mod:`ioc.connectors.simulator`, no Kafka and no sleeping: ``events_at(now, interval_s)``
returns the events whose event time falls in ``(now − interval_s, now]``, sorted by time, as
:class:`~ioc.connectors.simulator.SimEvent` values with the Avro schema's field names.

The model (approximate figures chosen for the demo, not statistics):

* **SecuritySimulator** — public-order incidents reported to the IOC: a Poisson process at
  ``incident_rate_per_hour`` (3 by default for the whole province), busier in the evening
  (Asia/Ho_Chi_Minh time), placed on the district-level areas in proportion to their
  population (the province-level row is skipped). Types by weight: theft most often, then
  public disorder, assault, drug, illegal racing (mostly at night), fire, robbery, other.
  Severity mostly minor; about 5 % critical overall (fires and robberies more often). Critical
  incidents carry casualties more often. Descriptions are Vietnamese. Keyed by area code.
  **Scripted critical fire**: the first call anchors the simulation; 4–8 simulated minutes later
  a critical fire with casualties breaks out in a seed-chosen area (weighted by population), so
  the demo shows ``security.critical_incident`` firing, and resolving an hour later (the rule's
  auto-resolve). ``episode=False`` turns it off.
* **CyberSimulator** — mentions: about ``mention_rate_per_hour`` (150) by day and a third of
  that at night, spread over the reference topics with fixed per-topic weights; 80 % are
  province-wide (``area_code`` ""), the rest about one district. Sentiment is a clipped normal
  around a per-topic mean (land and environment run a little negative), so roughly a quarter of
  ordinary mentions are negative (below −0.2). Reach is log-normal by channel.
  **Negative surge**: the first call anchors the simulation; a surge on one seed-chosen topic
  starts 1–3 minutes later and lasts 75–90 minutes, adding ``surge_rate_per_minute`` (6)
  strongly negative province-wide mentions per minute — so any hour window the demo closes in
  that span has far more than 20 mentions and a negative share near 0.9, and the
  ``cyber.negative_share`` alert fires. ``surge=False`` turns it off.
  Security events on the reference government systems: ``security_event_rate_per_hour`` (4),
  severity low 60 %, medium 27 %, high 10 %, critical 3 %; intrusion attempts and
  vulnerabilities dominate; source IPs from the documentation ranges (RFC 5737), never real
  addresses. **Scripted critical event**: 8–12 simulated minutes after the anchoring call,
  ransomware on a seed-chosen government system (critical), so the demo shows
  ``cyber.critical_security_event`` firing and resolving; ``episode=False`` turns it off.

Determinism: every draw is seeded from ``(seed, what, UTC hour)`` (the surge also from the
anchoring call), so re-running with the same seed and times yields the same events and ids
(``sim-{seed}-sec-{hour}-{n}``, ``sim-{seed}-men-{hour}-{n}``, ``sim-{seed}-men-surge-{hour}-{n}``,
``sim-{seed}-soc-{hour}-{n}``) and a replay is deduplicated downstream.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from ioc.connectors.simulator import (
    LOCAL_TZ,
    SimEvent,
    _poisson,
    from_epoch_ms,
    to_epoch_ms,
)
from ioc.infra.reference import Area
from ioc.infra.reference_cyber import CyberTopic, GovSystem

SECURITY_INCIDENT_TOPIC = "ioc.security.incident.v1"
MENTION_TOPIC = "ioc.cyber.mention.v1"
SECURITY_EVENT_TOPIC = "ioc.cyber.security_event.v1"

_HOUR_MS = 3_600_000
_MINUTE_MS = 60_000


def _local_hour(ms: int) -> int:
    return from_epoch_ms(ms).astimezone(LOCAL_TZ).hour


def _choose(rng: random.Random, weights: Mapping[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


class _HourlySimulator:
    """Events generated per UTC hour bucket (cached), served by interval."""

    def __init__(self) -> None:
        self._cache: dict[int, list[SimEvent]] = {}

    def _hour(self, hour: int) -> list[SimEvent]:
        raise NotImplementedError

    def _bucket(self, hour: int) -> list[SimEvent]:
        cached = self._cache.get(hour)
        if cached is None:
            if len(self._cache) > 256:
                self._cache.clear()
            cached = sorted(self._hour(hour),
                            key=lambda e: (e.value["occurred_at"], e.value["event_id"]))
            self._cache[hour] = cached
        return cached

    def _anchor(self, ms: int) -> None:
        return None

    def events_at(self, now: datetime, interval_s: float = 60.0) -> list[SimEvent]:
        """Events with ``now − interval_s < occurred_at <= now``."""
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        end = to_epoch_ms(now)
        start = end - round(interval_s * 1000)
        self._anchor(start)
        out: list[SimEvent] = []
        for hour in range(start // _HOUR_MS, end // _HOUR_MS + 1):
            out.extend(e for e in self._bucket(hour)
                       if start < to_epoch_ms(e.occurred_at) <= end)
        return out


# -- public order ----------------------------------------------------------------------------

# type: (weight, P(critical), descriptions)
_INCIDENTS: dict[str, tuple[float, float, tuple[str, ...]]] = {
    "theft": (0.30, 0.0, ("Mất trộm xe máy trước cửa nhà",
                          "Trộm cắp tài sản tại chợ",
                          "Đột nhập cửa hàng điện thoại, lấy trộm tài sản")),
    "public_disorder": (0.18, 0.02, ("Tụ tập đông người gây mất trật tự",
                                     "Hỗn chiến giữa hai nhóm thanh niên",
                                     "Gây rối tại quán karaoke")),
    "assault": (0.14, 0.10, ("Xô xát dẫn đến cố ý gây thương tích",
                             "Dùng hung khí tấn công người khác")),
    "drug": (0.10, 0.0, ("Phát hiện nhóm đối tượng sử dụng trái phép chất ma túy",
                         "Bắt quả tang mua bán trái phép chất ma túy")),
    "illegal_racing": (0.08, 0.03, ("Nhóm thanh niên tụ tập đua xe trái phép",
                                    "Đua xe, lạng lách trên tuyến đường ven biển")),
    "fire": (0.08, 0.20, ("Cháy nhà dân", "Cháy kho hàng", "Cháy rừng keo",
                          "Cháy cơ sở sản xuất đồ gỗ")),
    "robbery": (0.05, 0.15, ("Cướp giật túi xách của người đi đường",
                             "Cướp tài sản tại cửa hàng tạp hóa")),
    "other": (0.07, 0.0, ("Phát hiện vật liệu nổ còn sót lại sau chiến tranh",
                          "Tranh chấp đất đai dẫn đến xô xát")),
}
# Share of the day's incidents by local hour: quiet before dawn, busiest in the evening.
_SECURITY_PROFILE = (0.5, 0.4, 0.3, 0.3, 0.3, 0.4, 0.6, 0.8, 0.9, 0.9, 1.0, 1.0,
                     1.0, 0.9, 0.9, 1.0, 1.1, 1.2, 1.4, 1.6, 1.7, 1.6, 1.2, 0.8)


class SecuritySimulator(_HourlySimulator):
    def __init__(self, areas: Mapping[str, Area], seed: int = 0, *, source: str = "CA-QNA",
                 incident_rate_per_hour: float = 3.0, episode: bool = True) -> None:
        super().__init__()
        local = {c: a for c, a in sorted(areas.items()) if a.level != "province"}
        if not local:
            raise ValueError("the security simulator needs at least one sub-provincial area")
        if incident_rate_per_hour < 0:
            raise ValueError("incident_rate_per_hour must be >= 0")
        self.areas = local
        self.seed = seed
        self.source = source
        self.rate = incident_rate_per_hour
        self._weights = {c: float(max(a.population, 1)) for c, a in local.items()}
        self.episode_enabled = episode
        self.episode: SimEvent | None = None

    def _anchor(self, ms: int) -> None:
        if self.episode is not None or not self.episode_enabled:
            return
        rng = random.Random(f"{self.seed}|security-episode|{ms}")
        at = ms + rng.randrange(4 * _MINUTE_MS, 8 * _MINUTE_MS)
        area = _choose(rng, self._weights)
        self.episode = SimEvent(SECURITY_INCIDENT_TOPIC, area, {
            "event_id": f"sim-{self.seed}-sec-episode-{at}",
            "occurred_at": from_epoch_ms(at),
            "source": self.source,
            "area_code": area,
            "incident_type": "fire",
            "severity": "critical",
            "description": "Cháy lớn tại khu chợ, nhiều người mắc kẹt",
            "casualties": 3,
            "address": "",
            "lat": None,
            "lon": None,
        })
        self._cache.clear()

    def _hour(self, hour: int) -> list[SimEvent]:
        scripted = [self.episode] if self.episode is not None and (
            to_epoch_ms(self.episode.occurred_at) // _HOUR_MS == hour) else []
        return scripted + self._random_hour(hour)

    def _random_hour(self, hour: int) -> list[SimEvent]:
        rng = random.Random(f"{self.seed}|security|{hour}")
        factor = _SECURITY_PROFILE[_local_hour(hour * _HOUR_MS)]
        events = []
        for n in range(_poisson(rng, self.rate * factor)):
            ms = hour * _HOUR_MS + rng.randrange(_HOUR_MS)
            area = _choose(rng, self._weights)
            kind = _choose(rng, {k: w for k, (w, _, _) in _INCIDENTS.items()})
            _, p_critical, texts = _INCIDENTS[kind]
            roll = rng.random()
            severity = ("critical" if roll < p_critical
                        else "moderate" if roll < p_critical + 0.25 else "minor")
            hurt = kind in ("fire", "assault", "robbery", "public_disorder")
            casualties = (rng.randint(1, 4) if severity == "critical" and hurt
                          else int(rng.random() < 0.3) if hurt and severity == "moderate"
                          else 0)
            events.append(SimEvent(SECURITY_INCIDENT_TOPIC, area, {
                "event_id": f"sim-{self.seed}-sec-{hour}-{n}",
                "occurred_at": from_epoch_ms(ms),
                "source": self.source,
                "area_code": area,
                "incident_type": kind,
                "severity": severity,
                "description": rng.choice(texts),
                "casualties": casualties,
                "address": "",
                "lat": None,
                "lon": None,
            }))
        return events


# -- online information and cyber security ---------------------------------------------------

_CHANNELS: dict[str, tuple[float, float, float]] = {
    # channel: (weight, log-normal mu, sigma) of reach
    "facebook": (0.45, math.log(2_000), 1.2),
    "news": (0.20, math.log(15_000), 0.8),
    "tiktok": (0.15, math.log(8_000), 1.5),
    "youtube": (0.08, math.log(5_000), 1.3),
    "forum": (0.07, math.log(500), 1.0),
    "other": (0.05, math.log(300), 1.0),
}
_URL_HOSTS = {"facebook": "facebook.example", "news": "baomoi.example",
              "tiktok": "tiktok.example", "youtube": "youtube.example",
              "forum": "diendan.example", "other": "web.example"}
_TOPIC_MEAN = {"dat_dai": -0.05, "moi_truong": -0.02, "thien_tai": -0.05, "du_lich": 0.25,
               "giao_duc": 0.1}
_SENTIMENT_SD = 0.35

# event type: (weight, descriptions)
_SOC_EVENTS: dict[str, tuple[float, tuple[str, ...]]] = {
    "intrusion_attempt": (0.35, ("Dò quét cổng dịch vụ từ địa chỉ IP nước ngoài",
                                 "Nhiều lần đăng nhập sai mật khẩu quản trị")),
    "vulnerability": (0.20, ("Phát hiện lỗ hổng trên phiên bản máy chủ web",
                             "Thư viện phần mềm có lỗ hổng đã công bố")),
    "phishing": (0.15, ("Thư điện tử giả mạo gửi tới cán bộ, công chức",)),
    "malware": (0.12, ("Máy trạm nhiễm mã độc", "Phát hiện mã độc đào tiền ảo")),
    "ddos": (0.08, ("Lưu lượng truy cập bất thường, dấu hiệu tấn công từ chối dịch vụ",)),
    "defacement": (0.04, ("Trang con bị thay đổi giao diện",)),
    "data_leak": (0.03, ("Dữ liệu nội bộ bị đăng tải trên diễn đàn",)),
    "other": (0.03, ("Sự kiện an toàn thông tin khác",)),
}
_SOC_SEVERITY = {"low": 0.60, "medium": 0.27, "high": 0.10, "critical": 0.03}


@dataclass(frozen=True)
class Surge:
    """Strongly negative province-wide mentions on ``topic`` in ``[start, end)``."""

    topic: str
    start: datetime
    end: datetime


class CyberSimulator(_HourlySimulator):
    def __init__(self, topics: Mapping[str, CyberTopic], systems: Mapping[str, GovSystem],
                 seed: int = 0, *, areas: Mapping[str, Area] | None = None,
                 source: str = "STTTT-QNA", soc_source: str = "SOC-QNA",
                 mention_rate_per_hour: float = 150.0, surge: bool = True,
                 surge_rate_per_minute: float = 6.0,
                 security_event_rate_per_hour: float = 4.0, episode: bool = True) -> None:
        super().__init__()
        if not topics or not systems:
            raise ValueError("the cyber simulator needs topics and systems")
        self.topics = dict(sorted(topics.items()))
        self.systems = dict(sorted(systems.items()))
        self.area_codes = sorted(c for c, a in (areas or {}).items() if a.level != "province")
        self.seed = seed
        self.source = source
        self.soc_source = soc_source
        self.mention_rate = mention_rate_per_hour
        self.surge_enabled = surge
        self.surge_rate = surge_rate_per_minute
        self.soc_rate = security_event_rate_per_hour
        self._topic_weights = {c: random.Random(f"weight|{c}").uniform(0.5, 1.5)
                               for c in self.topics}
        self.surge: Surge | None = None
        self.episode_enabled = episode
        self.episode: SimEvent | None = None

    def _anchor(self, ms: int) -> None:
        if self.episode is None and self.episode_enabled and self.systems:
            rng = random.Random(f"{self.seed}|soc-episode|{ms}")
            at = ms + rng.randrange(8 * _MINUTE_MS, 12 * _MINUTE_MS)
            system = rng.choice(sorted(self.systems))
            self.episode = SimEvent(SECURITY_EVENT_TOPIC, system, {
                "event_id": f"sim-{self.seed}-soc-episode-{at}",
                "occurred_at": from_epoch_ms(at),
                "source": self.soc_source,
                "area_code": "",
                "system": system,
                "event_type": "malware",
                "severity": "critical",
                "src_ip": "",
                "description": "Mã độc mã hóa dữ liệu (ransomware) trên máy chủ ứng dụng",
            })
            self._cache.clear()
        if self.surge is not None or not self.surge_enabled:
            return
        rng = random.Random(f"{self.seed}|surge|{ms}")
        start = ms + rng.randrange(60_000, 180_000)
        self.surge = Surge(rng.choice(sorted(self.topics)), from_epoch_ms(start),
                           from_epoch_ms(start + rng.randrange(75, 91) * _MINUTE_MS))
        self._cache.clear()

    def _hour(self, hour: int) -> list[SimEvent]:
        scripted = [self.episode] if self.episode is not None and (
            to_epoch_ms(self.episode.occurred_at) // _HOUR_MS == hour) else []
        return scripted + self._mentions(hour) + self._surge(hour) + self._security_events(hour)

    def _mention(self, rng: random.Random, event_id: str, ms: int, topic: str, area: str,
                 score: float) -> SimEvent:
        channel = _choose(rng, {c: w for c, (w, _, _) in _CHANNELS.items()})
        _, mu, sigma = _CHANNELS[channel]
        return SimEvent(MENTION_TOPIC, topic, {
            "event_id": event_id,
            "occurred_at": from_epoch_ms(ms),
            "source": self.source,
            "area_code": area,
            "channel": channel,
            "topic": topic,
            "sentiment_score": round(max(-1.0, min(1.0, score)), 3),
            "reach": round(rng.lognormvariate(mu, sigma)),
            "url": f"https://{_URL_HOSTS[channel]}/{event_id}",
        })

    def _mentions(self, hour: int) -> list[SimEvent]:
        rng = random.Random(f"{self.seed}|mentions|{hour}")
        local = _local_hour(hour * _HOUR_MS)
        factor = 1.0 if 6 <= local < 23 else 1 / 3
        out = []
        for n in range(_poisson(rng, self.mention_rate * factor)):
            ms = hour * _HOUR_MS + rng.randrange(_HOUR_MS)
            topic = _choose(rng, self._topic_weights)
            area = (rng.choice(self.area_codes)
                    if self.area_codes and rng.random() < 0.2 else "")
            score = rng.gauss(_TOPIC_MEAN.get(topic, 0.05), _SENTIMENT_SD)
            out.append(self._mention(rng, f"sim-{self.seed}-men-{hour}-{n}", ms, topic, area,
                                     score))
        return out

    def _surge(self, hour: int) -> list[SimEvent]:
        s = self.surge
        if s is None:
            return []
        lo = max(hour * _HOUR_MS, to_epoch_ms(s.start))
        hi = min((hour + 1) * _HOUR_MS, to_epoch_ms(s.end))
        if lo >= hi:
            return []
        rng = random.Random(f"{self.seed}|surge|{hour}|{to_epoch_ms(s.start)}")
        out = []
        for n in range(_poisson(rng, self.surge_rate * (hi - lo) / _MINUTE_MS)):
            ms = lo + rng.randrange(hi - lo)
            out.append(self._mention(rng, f"sim-{self.seed}-men-surge-{hour}-{n}", ms,
                                     s.topic, "", rng.gauss(-0.6, 0.25)))
        return out

    def _security_events(self, hour: int) -> list[SimEvent]:
        rng = random.Random(f"{self.seed}|soc|{hour}")
        out = []
        for n in range(_poisson(rng, self.soc_rate)):
            ms = hour * _HOUR_MS + rng.randrange(_HOUR_MS)
            system = rng.choice(list(self.systems))
            kind = _choose(rng, {k: w for k, (w, _) in _SOC_EVENTS.items()})
            severity = _choose(rng, _SOC_SEVERITY)
            ip = (f"{rng.choice(('192.0.2', '198.51.100', '203.0.113'))}.{rng.randint(1, 254)}"
                  if kind in ("intrusion_attempt", "ddos", "phishing") else "")
            out.append(SimEvent(SECURITY_EVENT_TOPIC, system, {
                "event_id": f"sim-{self.seed}-soc-{hour}-{n}",
                "occurred_at": from_epoch_ms(ms),
                "source": self.soc_source,
                "area_code": "",
                "system": system,
                "event_type": kind,
                "severity": severity,
                "src_ip": ip,
                "description": rng.choice(_SOC_EVENTS[kind][1]),
            }))
        return out


__all__ = ["CyberSimulator", "SecuritySimulator", "SimEvent", "Surge"]
