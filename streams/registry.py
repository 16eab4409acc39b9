"""The monitoring subsystems the worker runs, built from reference data."""

from __future__ import annotations

from collections.abc import Mapping

from ioc.infra.reference import Area, RoadSegment
from ioc.streams.domain import Domain
from ioc.streams.traffic import traffic_domain


def build_domains(segments: Mapping[str, RoadSegment], areas: Mapping[str, Area]
                  ) -> list[Domain]:
    return [traffic_domain(segments, areas)]
