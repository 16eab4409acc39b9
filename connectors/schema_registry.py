"""A Confluent-compatible schema registry: registering the catalogue, framing with its ids.

Optional: without ``IOC_SCHEMA_REGISTRY_URL`` the platform needs no registry (single-object
encoding, resolved against the schemas in the repo). With it:

- ``ioc schemas register`` registers every topic's schemas under the subject
  ``<physical topic>-value`` (Confluent's TopicNameStrategy), oldest first — each file of
  ``schemas/avro/history/<topic>/`` in name order, then the current schema — so the registry's
  version numbers follow the repo's history and its own compatibility check sees each step.
  Re-running it is harmless (the registry answers the existing id).
- :func:`serde_for` gives producers a :class:`~ioc.schemas.serde.Serde` that writes Confluent
  framing (``00`` + 4-byte id): the id of a topic's current schema is looked up once
  (``POST /subjects/<subject>``) and cached; a schema that is not registered is an error that
  says to run ``ioc schemas register`` (producers never register on their own, so an agency's
  producer cannot change the contract). Readers resolve ids with ``GET /schemas/ids/<id>``,
  cached per id (one blocking request per schema id for the life of the process).

Only the few REST routes above are used; any Confluent-compatible registry (Confluent,
Karapace, Apicurio in Confluent mode, Redpanda) serves them.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastavro import parse_schema

from ioc.infra.settings import Settings
from ioc.schemas.catalogue import Catalogue
from ioc.schemas.serde import Serde

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class RegistryError(RuntimeError):
    def __init__(self, message: str, status: int | None = None,
                 error_code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code


def subject_for(physical_topic: str) -> str:
    return f"{physical_topic}-value"


class RegistryClient:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, body: Any | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(self.url + path, data=data, method=method,  # noqa: S310
                                     headers={"Content-Type": CONTENT_TYPE,
                                              "Accept": CONTENT_TYPE})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read() or b"{}")
            except ValueError:
                detail = {}
            raise RegistryError(f"{method} {path}: HTTP {exc.code} "
                                f"{detail.get('message') or exc.reason}", exc.code,
                                detail.get("error_code")) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise RegistryError(f"cannot reach the schema registry at {self.url}: {exc}"
                                ) from None

    @staticmethod
    def _quote(subject: str) -> str:
        return urllib.parse.quote(subject, safe="")

    def register(self, subject: str, schema: dict[str, Any]) -> int:
        """Register (or find) ``schema`` under ``subject``; returns its global id."""
        out = self._call("POST", f"/subjects/{self._quote(subject)}/versions",
                         {"schema": json.dumps(schema, ensure_ascii=False)})
        return int(out["id"])

    def lookup(self, subject: str, schema: dict[str, Any]) -> int | None:
        """The id of ``schema`` if it is registered under ``subject``, else None."""
        try:
            out = self._call("POST", f"/subjects/{self._quote(subject)}",
                             {"schema": json.dumps(schema, ensure_ascii=False)})
        except RegistryError as exc:
            if exc.status == 404:
                return None
            raise
        return int(out["id"])

    def schema(self, schema_id: int) -> dict[str, Any]:
        out = self._call("GET", f"/schemas/ids/{int(schema_id)}")
        return dict(json.loads(out["schema"]))


@dataclass(frozen=True)
class Registered:
    subject: str
    source: str     # the schema file, relative to the catalogue folder
    schema_id: int


def register_catalogue(client: RegistryClient, catalogue: Catalogue,
                       topic_name: Callable[[str], str] = lambda t: t) -> list[Registered]:
    """Register every topic's history (oldest first) and current schema."""
    out = []
    for topic in catalogue.topics:
        subject = subject_for(topic_name(topic))
        files = sorted((catalogue.directory / "history" / topic).glob("*.avsc"))
        files.append(catalogue.directory / f"{topic}.avsc")
        for path in files:
            schema = json.loads(path.read_text(encoding="utf-8"))
            rel = str(path.relative_to(catalogue.directory))
            out.append(Registered(subject, rel, client.register(subject, schema)))
    return out


class RegistryIds:
    """Cached lookups for one process: writer ids by topic, reader schemas by id."""

    def __init__(self, client: RegistryClient, catalogue: Catalogue,
                 topic_name: Callable[[str], str] = lambda t: t, tries: int = 3,
                 backoff_s: float = 1.0) -> None:
        self.client = client
        self.catalogue = catalogue
        self.tries = tries
        self.backoff_s = backoff_s
        self.topic_name = topic_name
        self._lock = threading.Lock()
        self._writer: dict[str, int] = {}
        self._reader: dict[int, Any] = {}

    def writer_id(self, topic: str) -> int:
        with self._lock:
            if topic not in self._writer:
                subject = subject_for(self.topic_name(topic))
                found = self.client.lookup(subject, self.catalogue.get(topic).raw)
                if found is None:
                    raise RegistryError(f"the schema of {topic} is not registered under "
                                        f"{subject} at {self.client.url}: run `ioc schemas "
                                        "register` first")
                self._writer[topic] = found
            return self._writer[topic]

    def reader_schema(self, schema_id: int) -> Any:
        """The writer schema of ``schema_id`` (KeyError if the registry does not know it).

        A registry that cannot be reached is retried ``tries`` times; after that the error
        reaches the serde, which dead-letters the record (``ioc dlq replay`` re-sends it)."""
        with self._lock:
            if schema_id not in self._reader:
                for attempt in range(self.tries):
                    try:
                        raw = self.client.schema(schema_id)
                        break
                    except RegistryError as exc:
                        if exc.status == 404:
                            raise KeyError(schema_id) from None
                        if attempt == self.tries - 1:
                            raise
                        time.sleep(self.backoff_s * (attempt + 1))
                self._reader[schema_id] = parse_schema(raw, _write_hint=False)
            return self._reader[schema_id]


def serde_for(settings: Settings, catalogue: Catalogue | None = None,
              directory: Path | None = None) -> Serde:
    """The platform's serde: Confluent framing with registry ids when a registry is
    configured, single-object encoding otherwise."""
    catalogue = catalogue or (Catalogue(directory) if directory else Catalogue())
    if not settings.schema_registry_url:
        return Serde(catalogue)
    ids = RegistryIds(RegistryClient(settings.schema_registry_url), catalogue, settings.topic)
    return Serde(catalogue, schema_ids=ids.reader_schema, writer_ids=ids.writer_id)
