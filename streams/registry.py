"""The monitoring subsystems the worker runs, built from reference data.

Each subsystem is a module with a ``*_domain(ref)`` factory returning a
:class:`~ioc.streams.domain.Domain`; this list is the one place that names them.
"""

from __future__ import annotations

from ioc.infra.reference import ReferenceData
from ioc.streams.cyber import cyber_domain
from ioc.streams.domain import Domain
from ioc.streams.econ import econ_domain
from ioc.streams.edu import edu_domain
from ioc.streams.egov import egov_domain
from ioc.streams.feedback import feedback_domain
from ioc.streams.health import health_domain
from ioc.streams.security import security_domain
from ioc.streams.traffic import traffic_domain


def build_domains(ref: ReferenceData) -> list[Domain]:
    return [
        traffic_domain(ref.segments, ref.areas),
        security_domain(ref),
        cyber_domain(ref),
        econ_domain(ref),
        health_domain(ref),
        edu_domain(ref),
        feedback_domain(ref),
        egov_domain(ref),
    ]
