"""`ioc schemas register` against a Confluent-compatible registry (a real HTTP server in the
test implementing the few routes the platform uses), then producers write Confluent framing
with the registered ids and readers resolve them — through the real broker."""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from gateway_harness import create_topics, read_all

from ioc.connectors.schema_registry import RegistryClient, RegistryError, serde_for
from ioc.infra.settings import Settings
from ioc.schemas.catalogue import Catalogue

FLOW = "ioc.traffic.flow.v1"
IOC = str(Path(sys.executable).parent / "ioc")


class FakeRegistry:
    """Subjects → versions → schema ids, global ids by canonical schema text, like Confluent's
    (ids shared across subjects for the same schema; re-registering returns the existing id)."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.schemas: dict[int, str] = {}
        self.subjects: dict[str, list[int]] = {}
        self.requests: list[str] = []

    def canonical(self, text: str) -> str:
        return json.dumps(json.loads(text), sort_keys=True)

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        self.requests.append(f"{method} {path}")
        if m := re.fullmatch(r"/subjects/([^/]+)/versions", path):
            if method != "POST":
                return 200, list(range(1, len(self.subjects.get(m[1], [])) + 1))
            key = self.canonical(body["schema"])
            sid = self.ids.setdefault(key, len(self.ids) + 1)
            self.schemas[sid] = body["schema"]
            versions = self.subjects.setdefault(m[1], [])
            if sid not in versions:
                versions.append(sid)
            return 200, {"id": sid}
        if (m := re.fullmatch(r"/subjects/([^/]+)", path)) and method == "POST":
            key = self.canonical(body["schema"])
            sid = self.ids.get(key)
            if m[1] not in self.subjects:
                return 404, {"error_code": 40401, "message": "Subject not found"}
            if sid is None or sid not in self.subjects[m[1]]:
                return 404, {"error_code": 40403, "message": "Schema not found"}
            return 200, {"subject": m[1], "id": sid,
                         "version": self.subjects[m[1]].index(sid) + 1,
                         "schema": self.schemas[sid]}
        if (m := re.fullmatch(r"/schemas/ids/(\d+)", path)) and method == "GET":
            sid = int(m[1])
            if sid not in self.schemas:
                return 404, {"error_code": 40403, "message": "Schema not found"}
            return 200, {"schema": self.schemas[sid]}
        return 404, {"error_code": 404, "message": "no route"}


@pytest.fixture
def registry() -> Iterator[tuple[str, FakeRegistry]]:
    state = FakeRegistry()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            status, out = state.handle(self.command, self.path, body)
            data = json.dumps(out).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()


def test_register_then_produce_with_confluent_framing(
        registry: tuple[str, FakeRegistry], kafka_broker: str, tmp_path: Path) -> None:
    url, state = registry
    prefix = f"reg{uuid.uuid4().hex[:6]}."
    env = {**os.environ, "IOC_KAFKA_BOOTSTRAP": kafka_broker, "IOC_TOPIC_PREFIX": prefix,
           "IOC_DATA_DIR": str(tmp_path)}
    out = subprocess.run([IOC, "schemas", "register", "--registry", url], env=env,
                         capture_output=True, text=True, timeout=60, check=True).stdout
    catalogue = Catalogue()
    assert set(state.subjects) == {f"{prefix}{t}-value" for t in catalogue.topics}
    assert f"{prefix}{FLOW}-value  id=" in out
    flow_id = state.subjects[f"{prefix}{FLOW}-value"][0]
    # registering again changes nothing
    subprocess.run([IOC, "schemas", "register", "--registry", url], env=env,
                   capture_output=True, text=True, timeout=60, check=True)
    assert state.subjects[f"{prefix}{FLOW}-value"] == [flow_id]

    create_topics(kafka_broker, [prefix + FLOW])
    path = tmp_path / "f.jsonl"
    path.write_text(json.dumps({
        "event_id": "reg-1", "occurred_at": "2026-11-30T07:30:00+07:00", "source": "SGTVT-QNA",
        "area_code": "502", "segment_id": "S1", "vehicle_count": 3, "avg_speed_kmh": 30}) + "\n",
        encoding="utf-8")
    proc = subprocess.run([IOC, "produce", FLOW, "--file", str(path)],
                          env={**env, "IOC_SCHEMA_REGISTRY_URL": url}, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    (value,) = read_all(kafka_broker, prefix + FLOW)
    assert value[0] == 0 and struct.unpack(">I", value[1:5])[0] == flow_id
    settings = Settings(kafka_bootstrap=kafka_broker, topic_prefix=prefix,
                        schema_registry_url=url)
    record = serde_for(settings).decode(FLOW, value)
    assert record["event_id"] == "reg-1"
    assert f"GET /schemas/ids/{flow_id}" in state.requests


def test_unregistered_schema_is_a_clear_error(registry: tuple[str, FakeRegistry]) -> None:
    url, _ = registry
    serde = serde_for(Settings(schema_registry_url=url, topic_prefix="nothing."))
    with pytest.raises(RegistryError, match="run `ioc schemas register` first"):
        serde.encode(FLOW, {})


def test_unknown_ids_and_an_unreachable_registry_dead_letter_not_crash(
        registry: tuple[str, FakeRegistry]) -> None:
    from ioc.connectors.schema_registry import RegistryIds
    from ioc.schemas.serde import DecodeError, Serde

    url, _ = registry
    serde = serde_for(Settings(schema_registry_url=url))
    with pytest.raises(DecodeError, match="unknown schema id 99"):
        serde.decode(FLOW, b"\x00\x00\x00\x00\x63body")
    ids = RegistryIds(RegistryClient("http://127.0.0.1:9", timeout=0.5), Catalogue(),
                      tries=2, backoff_s=0.01)
    dead = Serde(schema_ids=ids.reader_schema)
    with pytest.raises(DecodeError, match="cannot resolve schema id 5"):
        dead.decode(FLOW, b"\x00\x00\x00\x00\x05body")
