"""Reference data of the cyber subsystem: media-monitoring topics and government systems.

Two versioned CSV files, read by the stream processor at start and loaded by ``ioc setup`` into
ClickHouse for dashboards and analysts:

- ``cyber_topics.csv`` (``code``, ``name_vi``) → ``ref_cyber_topics``: the topic codes a
  media-monitoring system puts on mentions (``ioc.cyber.mention.v1`` field ``topic``) and their
  Vietnamese labels for alerts and dashboards;
- ``gov_systems.csv`` (``system_id``, ``name_vi``, ``owner_agency``) → ``ref_gov_systems``: the
  government information systems that security events (``ioc.cyber.security_event.v1`` field
  ``system``) refer to.

A deployment's own reference folder (``IOC_REFERENCE_DIR``) may carry its own copies; when it
lacks one of these files (a folder prepared before the cyber subsystem existed), the shipped
default in ``infra/reference`` is used, so adding the subsystem never breaks a deployment.
The shipped lists are illustrative: the province's IT department replaces them with its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ioc.infra.reference import DEFAULT_DIR, ReferenceDataError, read_rows

TOPICS_FILE = "cyber_topics.csv"
SYSTEMS_FILE = "gov_systems.csv"


@dataclass(frozen=True)
class CyberTopic:
    code: str
    name_vi: str


@dataclass(frozen=True)
class GovSystem:
    system_id: str
    name_vi: str
    owner_agency: str


def reference_file(directory: Path | None, name: str) -> Path:
    """``directory/name`` if it exists, else the shipped default ``infra/reference/name``."""
    if directory is not None and (directory / name).is_file():
        return directory / name
    return DEFAULT_DIR / name




def load_topics(directory: Path | None = None) -> dict[str, CyberTopic]:
    path = reference_file(directory, TOPICS_FILE)
    out: dict[str, CyberTopic] = {}
    for line, r in read_rows(path, ["code", "name_vi"]):
        topic = CyberTopic(r["code"], r["name_vi"])
        if not topic.code or topic.code in out:
            raise ReferenceDataError(f"{path}:{line}: empty or duplicate code {topic.code!r}")
        if not topic.name_vi:
            raise ReferenceDataError(f"{path}:{line}: empty name_vi")
        out[topic.code] = topic
    return out


def load_systems(directory: Path | None = None) -> dict[str, GovSystem]:
    path = reference_file(directory, SYSTEMS_FILE)
    out: dict[str, GovSystem] = {}
    for line, r in read_rows(path, ["system_id", "name_vi", "owner_agency"]):
        system = GovSystem(r["system_id"], r["name_vi"], r["owner_agency"])
        if not system.system_id or system.system_id in out:
            raise ReferenceDataError(
                f"{path}:{line}: empty or duplicate system_id {system.system_id!r}")
        if not system.name_vi:
            raise ReferenceDataError(f"{path}:{line}: empty name_vi")
        out[system.system_id] = system
    return out


def load_into_clickhouse(client: Any, db: str, directory: Path | None = None) -> dict[str, int]:
    """Replace ``ref_cyber_topics`` and ``ref_gov_systems`` with the files' content; return
    row counts. Both files are read before anything is written, so a bad file changes nothing."""
    topics = load_topics(directory)
    systems = load_systems(directory)
    now = datetime.now(UTC)
    client.command(f"TRUNCATE TABLE IF EXISTS {db}.ref_cyber_topics")
    client.insert(f"{db}.ref_cyber_topics",
                  [[t.code, t.name_vi, now] for t in topics.values()],
                  column_names=["code", "name_vi", "loaded_at"])
    client.command(f"TRUNCATE TABLE IF EXISTS {db}.ref_gov_systems")
    client.insert(f"{db}.ref_gov_systems",
                  [[s.system_id, s.name_vi, s.owner_agency, now] for s in systems.values()],
                  column_names=["system_id", "name_vi", "owner_agency", "loaded_at"])
    return {"ref_cyber_topics": len(topics), "ref_gov_systems": len(systems)}
