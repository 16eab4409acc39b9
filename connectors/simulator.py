"""Simulated traffic sensors for the demo and for load tests: realistic, pure and deterministic.

``TrafficSimulator`` turns the road-segment reference data into ``ioc.traffic.flow.v1`` readings
and occasional ``ioc.traffic.incident.v1`` reports. It contains no Kafka and never sleeps: the
CLI wires it to a producer and does the waiting, and tests drive it with
made-up times.

The model, kept simple enough to read in one sitting:

* **Demand** — vehicles per minute (all vehicle types, motorbikes included, both directions) by
  road class, times a time-of-day profile in Asia/Ho_Chi_Minh: low at night, morning rush
  06:30–08:00, a short home-for-lunch rise around 11:15 then the lunchtime dip, evening rush
  16:30–18:30; weekends are a little lighter; expressways carry long-distance trucks at night,
  so their profile is flatter. Each segment has a fixed size factor (0.75–1.25, derived from its
  id) so segments of one class differ; national and provincial roads with a free-flow speed
  under 60 km/h (winding hill roads) carry less, by ``(free_flow / 60)²``. Counts are Poisson
  around the demand, with a little extra (log-normal) spread.
* **Speed** — a BPR-style speed–flow curve below the segment's ``free_flow_kmh``; flow alone
  never pushes the congestion index ``1 − speed / free_flow`` above about 0.5.
* **Congestion episodes** — a segment jams for 10–40 minutes at 15–35 % of free-flow speed
  (congestion index 0.62–0.9; the alert rule's 0.6 / 0.8 thresholds are both reached). Episodes
  are a Poisson process over the whole network at ``congestion_episode_rate_per_hour`` on
  average, more likely in rush hours; a moderate or critical accident, obstruction, flood or
  landslide also jams its segment. So that a short demo always shows one, the simulation's first
  call (``events_at``, ``schedule`` or ``stream``) also opens an episode of 20–40 minutes on a
  seed-chosen segment within its first minute (none when the episode rate is 0). During an
  episode fewer vehicles pass the sensor and occupancy is high (Greenshields density).
* **Occupancy** — share of time the detector is occupied, from the density; ``null`` for
  expressway segments (radar sensors measure count and speed only).
* **Incidents** — a Poisson process over the network at ``incident_rate_per_hour``; the type
  follows the schema's enum (accidents and breakdowns most often, floods more in the Sep–Dec
  rainy season, landslides only on slow non-urban roads), severity mostly ``minor``, rarely
  ``critical``; the description is Vietnamese. Keyed by area code, located by ``segment_id``;
  no coordinates.
* **Scripted critical accident** — so that a short demo always shows ``traffic.critical_incident``
  fire and (an hour later, by itself) resolve, the first call also schedules a critical
  accident 3–8 minutes later on a seed-chosen national or urban segment (any segment if there is
  none), which jams that segment like any critical accident (none when ``incident_rate_per_hour``
  is 0, or with ``scripted_accident=False``).

Determinism and idempotence: every random draw is seeded from ``(seed, what, where, when)``, so
a reading depends only on the seed, the segment and its time (plus the opening episode, anchored
at the first call). Re-running with the same seed and times yields the same events and the same
``event_id`` values (``sim-{seed}-{segment_id}-{epoch_ms}`` for flow,
``sim-{seed}-inc-{segment_id}-{epoch_ms}`` for incidents), so a replay is deduplicated
downstream.

The sample file ``connectors/samples/traffic_flow_sample.jsonl`` is produced by
``write_jsonl`` (see ``_write_sample``; ``python -m ioc.connectors.simulator`` rewrites it).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ioc.infra.reference import RoadSegment

FLOW_TOPIC = "ioc.traffic.flow.v1"
INCIDENT_TOPIC = "ioc.traffic.incident.v1"
LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_HOUR_MS = 3_600_000
_MINUTE_MS = 60_000


@dataclass(frozen=True)
class SimEvent:
    """One event to produce: ``value`` has the Avro schema's field names, in schema order;
    ``occurred_at`` is a timezone-aware UTC ``datetime``; ``key`` is the Kafka partition key."""

    topic: str
    key: str
    value: dict[str, Any]

    @property
    def occurred_at(self) -> datetime:
        occurred: datetime = self.value["occurred_at"]
        return occurred


@dataclass(frozen=True)
class CongestionEpisode:
    """A segment is jammed from ``start`` (inclusive) to ``end`` (exclusive) at
    ``speed_factor`` × free-flow speed. ``cause`` is ``opening``, ``random`` or the incident's
    event id."""

    segment_id: str
    start: datetime
    end: datetime
    speed_factor: float
    cause: str

    def active_at(self, t: datetime) -> bool:
        return self.start <= t < self.end


@dataclass(frozen=True)
class _RoadClass:
    peak_per_min: float  # demand at the rush-hour peak, vehicles per minute, both directions
    capacity_per_min: float
    night_floor: float  # share of the peak that never goes away (night trucks)
    has_occupancy: bool


# Approximate figures for the demo, in vehicles of all types (motorbikes included) per minute.
_ROAD_CLASSES: dict[str, _RoadClass] = {
    "expressway": _RoadClass(20.0, 60.0, 0.45, False),
    "national": _RoadClass(60.0, 90.0, 0.10, True),
    "provincial": _RoadClass(30.0, 55.0, 0.05, True),
    "urban": _RoadClass(70.0, 100.0, 0.0, True),
}
_DEFAULT_CLASS = "provincial"  # for road classes a deployment adds that the model does not know

# (local hour, share of the peak) on a weekday; linear in between.
_PROFILE: tuple[tuple[float, float], ...] = (
    (0.0, 0.10), (2.0, 0.05), (4.0, 0.07), (5.0, 0.22), (6.0, 0.50), (6.5, 0.85), (7.0, 1.0),
    (7.75, 1.0), (8.0, 0.85), (9.0, 0.62), (10.5, 0.60), (11.25, 0.78), (12.0, 0.50),
    (13.0, 0.42), (13.75, 0.55), (14.5, 0.62), (16.0, 0.72), (16.5, 0.90), (17.0, 1.0),
    (18.0, 1.0), (18.5, 0.85), (19.5, 0.62), (21.0, 0.42), (22.0, 0.27), (23.0, 0.16),
    (24.0, 0.10),
)
_WEEKDAY_FACTOR = (1.0, 1.0, 1.0, 1.0, 1.0, 0.92, 0.80)  # Monday .. Sunday

_INCIDENT_TYPES: dict[str, tuple[float, tuple[float, float, float], tuple[str, ...]]] = {
    # type: (weight, (P minor, P moderate, P critical), descriptions)
    "accident": (0.35, (0.60, 0.30, 0.10), (
        "Va chạm giữa xe tải và xe máy",
        "Va chạm giữa ô tô con và xe máy",
        "Xe khách va chạm với xe đầu kéo",
        "Tai nạn liên hoàn giữa ba ô tô",
        "Xe máy tự ngã, người điều khiển bị thương",
    )),
    "breakdown": (0.25, (0.85, 0.15, 0.0), (
        "Xe tải chết máy giữa làn đường",
        "Xe container hỏng, chiếm một làn xe",
        "Ô tô con nổ lốp, dừng sát lề đường",
    )),
    "obstruction": (0.12, (0.70, 0.25, 0.05), (
        "Cây đổ chắn ngang đường",
        "Hàng hóa rơi vãi trên mặt đường",
        "Đàn gia súc đi qua đường",
    )),
    "roadwork": (0.10, (0.80, 0.20, 0.0), (
        "Thi công sửa chữa mặt đường, thu hẹp một làn",
        "Thi công hệ thống thoát nước, xe đi chậm",
    )),
    "flooding": (0.06, (0.40, 0.45, 0.15), (
        "Ngập sâu khoảng 0,4 m sau mưa lớn",
        "Nước lũ tràn qua mặt đường",
    )),
    "landslide": (0.05, (0.30, 0.45, 0.25), (
        "Sạt lở taluy dương, đất đá tràn xuống mặt đường",
        "Sạt lở một phần mặt đường",
    )),
    "other": (0.07, (0.90, 0.10, 0.0), (
        "Đèn tín hiệu giao thông bị hỏng",
        "Tụ tập đông người gây ùn ứ cục bộ",
    )),
}
_SEVERITIES = ("minor", "moderate", "critical")
_JAMMING_TYPES = frozenset({"accident", "obstruction", "flooding", "landslide"})
_CRITICAL_SUFFIX = {
    "accident": ", có người bị thương nặng",
}


def to_epoch_ms(t: datetime) -> int:
    """Exact epoch milliseconds of a timezone-aware datetime (naive datetimes are refused)."""
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"naive datetime {t!r}: the simulator works in timezone-aware UTC")
    return (t - _EPOCH) // _MS


def from_epoch_ms(ms: int) -> datetime:
    return _EPOCH + ms * _MS


def _profile(local: datetime) -> float:
    hour = local.hour + local.minute / 60 + local.second / 3600
    for (h0, v0), (h1, v1) in pairwise(_PROFILE):
        if h0 <= hour <= h1:
            return v0 + (v1 - v0) * (hour - h0) / (h1 - h0)
    return _PROFILE[-1][1]


def _daily_mean_profile() -> float:
    base = datetime(2024, 1, 1, tzinfo=LOCAL_TZ)  # only the time of day matters here
    samples = [_profile(base + timedelta(minutes=m)) for m in range(0, 24 * 60, 5)]
    return sum(samples) / len(samples)


_PROFILE_MEAN = _daily_mean_profile()


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam < 30:
        limit, k, p = math.exp(-lam), 0, rng.random()
        while p > limit:
            k += 1
            p *= rng.random()
        return k
    return max(0, round(rng.gauss(lam, math.sqrt(lam))))


def _weighted(rng: random.Random, options: Mapping[str, float]) -> str:
    return rng.choices(list(options), weights=list(options.values()))[0]


class TrafficSimulator:
    """Flow readings and incidents for a set of road segments, deterministic by ``seed``.

    Two ways to drive it:

    * ``events_at(now)`` — one reading per segment for the ``interval_s`` seconds ending at
      ``now`` (plus any incident in that interval). For batch files and replays: call it at
      ``start``, ``start + interval_s``, ...
    * ``schedule(start, rate=N)`` / ``stream(...)`` — live pacing. ``N`` events per second over
      ``S`` segments means each segment reports every ``S / N`` seconds of wall time, the
      segments staggered evenly so events arrive at a steady ``N`` per second; each reading
      covers the ``S / N`` seconds before it (counts scale with the interval, so per-minute
      KPIs do not depend on the rate). Event time ``occurred_at`` is the scheduled wall time:
      when ``start`` is now, the pipeline sees live data. Incidents come on top of the ``N``.
      The simulator never sleeps; the caller asks for the events due up to a time
      (``Schedule.due``) and waits in between (``Schedule.seconds_until_next``).
    """

    def __init__(self, segments: Mapping[str, RoadSegment], *, seed: int = 0,
                 source: str = "SGTVT-QNA", interval_s: float = 60.0,
                 incident_rate_per_hour: float = 0.5,
                 congestion_episode_rate_per_hour: float = 1.0,
                 scripted_accident: bool = True) -> None:
        if not segments:
            raise ValueError("the simulator needs at least one road segment")
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        if incident_rate_per_hour < 0 or congestion_episode_rate_per_hour < 0:
            raise ValueError("rates must be >= 0")
        self.segments: dict[str, RoadSegment] = {k: segments[k] for k in sorted(segments)}
        self._ids: list[str] = list(self.segments)
        self.seed = seed
        self.source = source
        self.interval_s = float(interval_s)
        self.incident_rate_per_hour = float(incident_rate_per_hour)
        self.congestion_episode_rate_per_hour = float(congestion_episode_rate_per_hour)
        self._origin_ms: int | None = None
        self._opening: CongestionEpisode | None = None
        self.scripted_accident = scripted_accident and self.incident_rate_per_hour > 0
        self.accident: SimEvent | None = None
        """The scripted critical accident, set at the first call (see the module docstring)."""
        self._bucket_cache: dict[int, tuple[list[SimEvent], list[CongestionEpisode]]] = {}

    # -- anchoring ---------------------------------------------------------------------------

    @property
    def origin(self) -> datetime | None:
        """Time of the first call; the opening congestion episode starts within a minute of it."""
        return None if self._origin_ms is None else from_epoch_ms(self._origin_ms)

    def _anchor(self, ms: int) -> None:
        if self._origin_ms is not None:
            return
        self._origin_ms = ms
        self._bucket_cache.clear()
        if self.scripted_accident:
            rng = random.Random(f"{self.seed}|accident|{ms}")
            at = ms + rng.randrange(3 * _MINUTE_MS, 8 * _MINUTE_MS)
            main = [k for k, s in self.segments.items() if s.road_class in ("national", "urban")]
            seg = self.segments[rng.choice(main or self._ids)]
            inc = self._incident(rng, seg, at, f"sim-{self.seed}-inc-{seg.segment_id}-{at}",
                                 kind="accident", severity="critical")
            self.accident = inc
        if self.congestion_episode_rate_per_hour <= 0:
            return
        rng = random.Random(f"{self.seed}|opening|{ms}")
        start = ms + round(rng.uniform(5_000, 45_000))
        self._opening = CongestionEpisode(
            segment_id=rng.choice(self._ids),
            start=from_epoch_ms(start),
            end=from_epoch_ms(start + round(rng.uniform(20, 40) * _MINUTE_MS)),
            speed_factor=rng.uniform(0.15, 0.30),
            cause="opening",
        )

    # -- incidents and episodes, per UTC hour bucket ------------------------------------------

    def _bucket(self, hour: int) -> tuple[list[SimEvent], list[CongestionEpisode]]:
        cached = self._bucket_cache.get(hour)
        if cached is not None:
            return cached
        incidents = self._incidents_in_hour(hour)
        if self.accident is not None and to_epoch_ms(self.accident.occurred_at) // _HOUR_MS == hour:
            incidents = sorted([*incidents, self.accident],
                               key=lambda e: (e.value["occurred_at"], e.value["event_id"]))
        episodes = self._random_episodes_in_hour(hour)
        for inc in incidents:
            v = inc.value
            if v["incident_type"] in _JAMMING_TYPES and v["severity"] != "minor":
                rng = random.Random(f"{self.seed}|jam|{v['event_id']}")
                start = to_epoch_ms(v["occurred_at"])
                critical = v["severity"] == "critical"
                minutes = rng.uniform(25, 40) if critical else rng.uniform(10, 30)
                episodes.append(CongestionEpisode(
                    v["segment_id"], v["occurred_at"],
                    from_epoch_ms(start + round(minutes * _MINUTE_MS)),
                    rng.uniform(0.15, 0.30), v["event_id"]))
        if len(self._bucket_cache) > 512:
            self._bucket_cache.clear()
        self._bucket_cache[hour] = (incidents, episodes)
        return incidents, episodes

    def _random_episodes_in_hour(self, hour: int) -> list[CongestionEpisode]:
        rng = random.Random(f"{self.seed}|congestion|{hour}")
        mid = from_epoch_ms(hour * _HOUR_MS + _HOUR_MS // 2).astimezone(LOCAL_TZ)
        weight = (0.3 + 0.7 * _profile(mid) / _PROFILE_MEAN) / (0.3 + 0.7)
        out = []
        for _ in range(_poisson(rng, self.congestion_episode_rate_per_hour * weight)):
            start = hour * _HOUR_MS + round(rng.uniform(0, _HOUR_MS - 1))
            out.append(CongestionEpisode(
                segment_id=rng.choice(self._ids),
                start=from_epoch_ms(start),
                end=from_epoch_ms(start + round(rng.uniform(10, 40) * _MINUTE_MS)),
                speed_factor=rng.uniform(0.15, 0.35),
                cause="random",
            ))
        return out

    def _incidents_in_hour(self, hour: int) -> list[SimEvent]:
        rng = random.Random(f"{self.seed}|incident|{hour}")
        out: list[SimEvent] = []
        seen: set[str] = set()
        for _ in range(_poisson(rng, self.incident_rate_per_hour)):
            ms = hour * _HOUR_MS + round(rng.uniform(0, _HOUR_MS - 1))
            seg = self.segments[rng.choice(self._ids)]
            event_id = f"sim-{self.seed}-inc-{seg.segment_id}-{ms}"
            if event_id in seen:  # same segment, same millisecond: astronomically rare
                continue
            seen.add(event_id)
            out.append(self._incident(rng, seg, ms, event_id))
        out.sort(key=lambda e: (e.value["occurred_at"], e.value["event_id"]))
        return out

    def _incident(self, rng: random.Random, seg: RoadSegment, ms: int, event_id: str, *,
                  kind: str | None = None, severity: str | None = None) -> SimEvent:
        at = from_epoch_ms(ms)
        month = at.astimezone(LOCAL_TZ).month
        weights = {k: w for k, (w, _, _) in _INCIDENT_TYPES.items()}
        if month >= 9:  # central Vietnam's rainy season: Sep–Dec
            weights["flooding"] *= 3
        if seg.road_class in ("urban", "expressway") or seg.free_flow_kmh > 50:
            weights["landslide"] = 0.0  # slopes: slow mountain and hill roads only
        kind = kind or _weighted(rng, weights)
        _, sev_p, texts = _INCIDENT_TYPES[kind]
        severity = severity or _weighted(rng, dict(zip(_SEVERITIES, sev_p, strict=True)))
        text = rng.choice(texts)
        if severity == "critical":
            text += _CRITICAL_SUFFIX.get(kind, ", giao thông bị chặn hoàn toàn")
        value: dict[str, Any] = {
            "event_id": event_id,
            "occurred_at": at,
            "source": self.source,
            "area_code": seg.area_code,
            "segment_id": seg.segment_id,
            "incident_type": kind,
            "severity": severity,
            "description": f"{text} trên {seg.name_vi}.",
            "lat": None,
            "lon": None,
        }
        return SimEvent(INCIDENT_TOPIC, seg.area_code, value)

    def incidents_between(self, start: datetime, end: datetime) -> list[SimEvent]:
        """Incidents with ``start < occurred_at <= end``, in time order (pure in the seed)."""
        lo, hi = to_epoch_ms(start), to_epoch_ms(end)
        out: list[SimEvent] = []
        for hour in range(lo // _HOUR_MS, hi // _HOUR_MS + 1):
            out.extend(e for e in self._bucket(hour)[0]
                       if lo < to_epoch_ms(e.value["occurred_at"]) <= hi)
        return out

    def episodes_between(self, start: datetime, end: datetime) -> list[CongestionEpisode]:
        """Congestion episodes overlapping ``[start, end)``, ordered by start."""
        lo, hi = to_epoch_ms(start), to_epoch_ms(end)
        found: list[CongestionEpisode] = []
        for hour in range(lo // _HOUR_MS - 1, hi // _HOUR_MS + 1):
            found.extend(self._bucket(hour)[1])
        if self._opening is not None:
            found.append(self._opening)
        return sorted((e for e in found if e.start < end and e.end > start),
                      key=lambda e: (e.start, e.segment_id))

    def _jam_factor(self, segment_id: str, ms: int) -> float | None:
        t = from_epoch_ms(ms)
        hour = ms // _HOUR_MS
        active = [e.speed_factor for h in (hour - 1, hour) for e in self._bucket(h)[1]
                  if e.segment_id == segment_id and e.active_at(t)]
        if self._opening is not None and self._opening.segment_id == segment_id \
                and self._opening.active_at(t):
            active.append(self._opening.speed_factor)
        return min(active) if active else None

    # -- flow readings ------------------------------------------------------------------------

    def reading(self, segment_id: str, now: datetime, interval_s: float) -> SimEvent:
        """The flow reading of one segment for the ``interval_s`` seconds ending at ``now``."""
        ms = to_epoch_ms(now)
        self._anchor(ms)
        return self._reading(self.segments[segment_id], ms, interval_s)

    def _reading(self, seg: RoadSegment, ms: int, interval_s: float) -> SimEvent:
        rng = random.Random(f"{self.seed}|flow|{seg.segment_id}|{ms}")
        at = from_epoch_ms(ms)
        local = at.astimezone(LOCAL_TZ)
        rc = _ROAD_CLASSES.get(seg.road_class, _ROAD_CLASSES[_DEFAULT_CLASS])
        size = random.Random(f"size|{seg.segment_id}").uniform(0.75, 1.25)
        if seg.road_class in ("national", "provincial"):
            size *= min(1.0, seg.free_flow_kmh / 60) ** 2  # slow rural roads: hills, less traffic
        shape = rc.night_floor + (1 - rc.night_floor) * _profile(local)
        demand_per_min = rc.peak_per_min * size * shape * _WEEKDAY_FACTOR[local.weekday()]
        ff = seg.free_flow_kmh
        capacity_h = rc.capacity_per_min * 60
        k_jam = 4 * capacity_h / ff  # Greenshields: capacity = k_jam * v_free / 4
        mean = demand_per_min * interval_s / 60 * math.exp(rng.gauss(0, 0.1))

        jam = self._jam_factor(seg.segment_id, ms)
        if jam is not None:
            # Queue at a bottleneck: fewer vehicles get past, slowly, packed close together.
            count = _poisson(rng, mean * rng.uniform(0.5, 0.8))
            speed = ff * min(0.38, max(0.08, jam * rng.uniform(0.95, 1.05)))
            density = k_jam * (1 - speed / ff)
        else:
            x = min(1.0, demand_per_min / rc.capacity_per_min)
            count = _poisson(rng, mean)
            # BPR-style curve; with no vehicle in the interval this is still the speed a
            # vehicle would drive (a quiet night must not look like a jam).
            speed = ff / (1 + 0.6 * x**4) * min(1.15, max(0.85, rng.gauss(1.0, 0.05)))
            density = demand_per_min * 60 / speed
        occupancy = None
        if rc.has_occupancy:
            occupancy = round(min(0.98, max(0.0, 0.95 * density / k_jam + rng.gauss(0, 0.01))), 3)
        value: dict[str, Any] = {
            "event_id": f"sim-{self.seed}-{seg.segment_id}-{ms}",
            "occurred_at": at,
            "source": self.source,
            "area_code": seg.area_code,
            "segment_id": seg.segment_id,
            "vehicle_count": count,
            "avg_speed_kmh": round(speed, 1),
            "occupancy": occupancy,
        }
        return SimEvent(FLOW_TOPIC, seg.segment_id, value)

    def events_at(self, now: datetime) -> list[SimEvent]:
        """One flow reading per segment for the ``interval_s`` seconds ending at ``now``, then
        the incidents that occurred in that interval. ``now`` must be timezone-aware; it is
        truncated to the millisecond. The first call anchors the opening congestion episode."""
        ms = to_epoch_ms(now)
        self._anchor(ms)
        flows = [self._reading(seg, ms, self.interval_s) for seg in self.segments.values()]
        begin = from_epoch_ms(ms - round(self.interval_s * 1000))
        return flows + self.incidents_between(begin, from_epoch_ms(ms))

    # -- live pacing ---------------------------------------------------------------------------

    def schedule(self, start: datetime, *, rate: float,
                 duration_s: float | None = None) -> Schedule:
        """A pacing cursor from ``start``: ``rate`` flow readings per second across the segments
        (each segment every ``len(segments) / rate`` s), for ``duration_s`` (``None``: endless)."""
        return Schedule(self, start, rate=rate, duration_s=duration_s)

    def stream(self, start: datetime, *, rate: float, duration_s: float,
               clock: Callable[[], datetime] | None = None) -> Iterator[SimEvent]:
        """Events from ``start`` to ``start + duration_s`` in time order, about ``rate`` flow
        readings per second of event time (see the class docstring), plus incidents.

        Never sleeps. Without ``clock`` the whole run comes out as fast as it is consumed
        (files, tests, fast replay); a caller pacing itself waits until each event's
        ``occurred_at`` before sending it. With ``clock`` an event is only yielded once
        ``clock()`` has reached its time; whenever nothing is due the generator calls
        ``clock()`` again, so the clock is where the caller's waiting happens (a test clock that
        advances per call, or a real clock that blocks briefly). For a real-time loop with its
        own sleep, prefer ``schedule()`` + ``Schedule.due()`` + ``Schedule.seconds_until_next()``.
        """
        sched = self.schedule(start, rate=rate, duration_s=duration_s)
        if clock is None:
            step = timedelta(minutes=1)
            t = sched.start
            while not sched.done:
                t += step
                yield from sched.due(t)
            return
        while not sched.done:
            yield from sched.due(clock())


class Schedule:
    """A cursor over the simulator's live schedule; ``due(until)`` advances it.

    Flow slot ``n`` (0, 1, ...) is at ``start + (n + 1) / rate`` seconds, for segment
    ``n mod S`` (segments sorted by id), and covers the ``S / rate`` seconds before it. Incidents
    come at their own times. Slots after ``start + duration_s`` are never produced.
    """

    def __init__(self, sim: TrafficSimulator, start: datetime, *, rate: float,
                 duration_s: float | None) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0 events per second")
        if duration_s is not None and duration_s < 0:
            raise ValueError("duration_s must be >= 0")
        self._sim = sim
        self._start_ms = to_epoch_ms(start)
        self.rate = float(rate)
        self.period_s = len(sim.segments) / self.rate
        self._end_ms = None if duration_s is None else self._start_ms + round(duration_s * 1000)
        self._slot = 0
        self._cursor_ms = self._start_ms
        sim._anchor(self._start_ms)

    @property
    def start(self) -> datetime:
        return from_epoch_ms(self._start_ms)

    def _slot_ms(self, n: int) -> int:
        return self._start_ms + round((n + 1) * 1000 / self.rate)

    @property
    def next_at(self) -> datetime | None:
        """Event time of the next flow reading, or ``None`` once the run is over."""
        ms = self._slot_ms(self._slot)
        if self._end_ms is not None and ms > self._end_ms:
            return None
        return from_epoch_ms(ms)

    @property
    def done(self) -> bool:
        return self.next_at is None

    def seconds_until_next(self, now: datetime) -> float:
        """How long a real-time caller should wait before calling ``due`` again (>= 0)."""
        nxt = self.next_at
        return 0.0 if nxt is None else max(0.0, (nxt - now).total_seconds())

    def due(self, until: datetime) -> list[SimEvent]:
        """All events with ``occurred_at <= until`` not returned yet, in time order."""
        until_ms = to_epoch_ms(until)
        if self._end_ms is not None:
            until_ms = min(until_ms, self._end_ms)
        if until_ms <= self._cursor_ms:
            return []
        sim, ids = self._sim, self._sim._ids
        out: list[SimEvent] = []
        while (ms := self._slot_ms(self._slot)) <= until_ms:
            seg = sim.segments[ids[self._slot % len(ids)]]
            out.append(sim._reading(seg, ms, self.period_s))
            self._slot += 1
        incidents = sim.incidents_between(from_epoch_ms(self._cursor_ms), from_epoch_ms(until_ms))
        self._cursor_ms = until_ms
        if incidents:  # flows are already in time order; a stable sort keeps them first on ties
            out = sorted(out + incidents, key=lambda e: e.value["occurred_at"])
        return out


def write_jsonl(events: Iterable[SimEvent], path: Path) -> int:
    """Write each event's ``value`` as one JSON line (UTF-8, Vietnamese kept readable,
    ``occurred_at`` as ISO-8601 with offset), the format ``ioc produce`` reads. The caller
    chooses the topic: pass one topic's events per file. Returns the number of lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for event in events:
            record = {k: (v.isoformat(timespec="milliseconds") if isinstance(v, datetime) else v)
                      for k, v in event.value.items()}
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            n += 1
    return n


SAMPLE_PATH = Path(__file__).parent / "samples" / "traffic_flow_sample.jsonl"


def _write_sample(path: Path = SAMPLE_PATH) -> int:
    """The documented sample: five Tam Kỳ / Hội An segments, four minutes of a weekday morning
    rush (07:30 local), seed 49, one-minute readings."""
    from ioc.infra.reference import load_segments

    chosen = ("CT-DNQN-TK", "HA-HBT-01", "QL1A-TK-01", "TK-HV-01", "TK-PCT-01")
    all_segments = load_segments()
    sim = TrafficSimulator({k: all_segments[k] for k in chosen}, seed=49)
    start = datetime(2026, 3, 10, 7, 30, tzinfo=LOCAL_TZ).astimezone(UTC)
    events = [e for m in range(1, 5) for e in sim.events_at(start + timedelta(minutes=m))
              if e.topic == FLOW_TOPIC]
    return write_jsonl(events, path)


if __name__ == "__main__":
    print(f"wrote {_write_sample()} lines to {SAMPLE_PATH}")
