"""Traffic KPIs of the catalogue, as pure accumulators over windows.

- ``traffic.vehicle_count`` (1m, 1h; per segment): sum of ``vehicle_count``.
- ``traffic.avg_speed_kmh`` (5m; per segment): Σ speed·count / Σ count, vehicle-weighted; the
  plain mean of the readings when no vehicle was counted at all.
- ``traffic.congestion_index`` (5m; per segment): max(0, 1 − avg_speed / free-flow speed).
- ``traffic.incidents`` (1h; per area, entity ""): number of incidents.

Per-segment KPIs carry the segment's area (from reference data) as ``area_code`` and the
segment id as ``entity``.

A flow reading on a segment that is not in the reference data still counts towards vehicle
counts and speed (the sensor is real), but has no congestion index (no free-flow speed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ioc.infra.reference import Area, RoadSegment
from ioc.streams.domain import Domain
from ioc.streams.engine import KpiFamily
from ioc.streams.windows import WINDOWS

FLOW_TOPIC = "ioc.traffic.flow.v1"
INCIDENT_TOPIC = "ioc.traffic.incident.v1"


class VehicleCount:
    def __init__(self) -> None:
        self.total = 0
        self.samples = 0

    def add(self, event: Mapping[str, Any]) -> None:
        self.total += int(event["vehicle_count"])
        self.samples += 1

    def results(self) -> list[tuple[str, float, int]]:
        return [("traffic.vehicle_count", float(self.total), self.samples)]


class SpeedAndCongestion:
    def __init__(self, free_flow_kmh: float | None) -> None:
        self.free_flow = free_flow_kmh
        self.vehicles = 0
        self.weighted = 0.0
        self.plain_sum = 0.0
        self.samples = 0

    def add(self, event: Mapping[str, Any]) -> None:
        count = int(event["vehicle_count"])
        speed = float(event["avg_speed_kmh"])
        self.vehicles += count
        self.weighted += speed * count
        self.plain_sum += speed
        self.samples += 1

    def avg_speed(self) -> float:
        if self.vehicles > 0:
            return self.weighted / self.vehicles
        return self.plain_sum / self.samples

    def results(self) -> list[tuple[str, float, int]]:
        if not self.samples:
            return []
        speed = self.avg_speed()
        out = [("traffic.avg_speed_kmh", speed, self.samples)]
        if self.free_flow:
            out.append(("traffic.congestion_index",
                        congestion_index(speed, self.free_flow), self.samples))
        return out


def congestion_index(avg_speed_kmh: float, free_flow_kmh: float) -> float:
    return max(0.0, 1.0 - avg_speed_kmh / free_flow_kmh)


class IncidentCount:
    def __init__(self) -> None:
        self.count = 0

    def add(self, event: Mapping[str, Any]) -> None:
        self.count += 1

    def results(self) -> list[tuple[str, float, int]]:
        return [("traffic.incidents", float(self.count), self.count)]


def traffic_families(segments: Mapping[str, RoadSegment]) -> list[KpiFamily]:
    def segment_key(event: Mapping[str, Any]) -> tuple[str, str]:
        seg = segments.get(event["segment_id"])
        # The reference data's area wins: a sensor mislabelled with another area still lands
        # on the segment's own area.
        return (seg.area_code if seg else event["area_code"], event["segment_id"])

    def speed_acc(area: str, entity: str) -> SpeedAndCongestion:
        seg = segments.get(entity)
        return SpeedAndCongestion(seg.free_flow_kmh if seg else None)

    return [
        KpiFamily("traffic.flow.1m", FLOW_TOPIC, WINDOWS["1m"], segment_key,
                  lambda a, e: VehicleCount()),
        KpiFamily("traffic.flow.1h", FLOW_TOPIC, WINDOWS["1h"], segment_key,
                  lambda a, e: VehicleCount()),
        KpiFamily("traffic.speed.5m", FLOW_TOPIC, WINDOWS["5m"], segment_key, speed_acc,
                  retain_closed=True),
        KpiFamily("traffic.incidents.1h", INCIDENT_TOPIC, WINDOWS["1h"],
                  lambda ev: (ev["area_code"], ""), lambda a, e: IncidentCount()),
    ]



def traffic_domain(segments: Mapping[str, RoadSegment], areas: Mapping[str, Area]) -> Domain:
    from ioc.streams.rules import CongestionRule, CriticalIncidentRule

    return Domain(
        name="traffic",
        topics=(FLOW_TOPIC, INCIDENT_TOPIC),
        families=tuple(traffic_families(segments)),
        rules=(CongestionRule(segments), CriticalIncidentRule(segments, areas)),
    )
