"""A real gateway on a real port, in a background thread, against the session's Kafka broker.

Tests talk to it over HTTP with :func:`call` (urllib); the broker is real, topics get a unique
prefix. Used by the gateway and fuzz tests.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client import CollectorRegistry

from ioc.connectors.gateway.app import Gateway, GatewayMetrics, create_app
from ioc.connectors.gateway.delivery import KafkaSender
from ioc.connectors.gateway.ingest import Transform
from ioc.connectors.gateway.keys import KeyStore
from ioc.connectors.gateway.ratelimit import RateLimiter
from ioc.connectors.gateway.settings import GatewaySettings
from ioc.connectors.producer import producer_config
from ioc.connectors.transforms import default_transforms
from ioc.infra.settings import Settings
from ioc.schemas.serde import Serde


@dataclass
class Response:
    status: int
    headers: Mapping[str, str]
    body: Any
    raw: bytes


def call(url: str, method: str = "GET", body: Any = None, key: str | None = None,
         raw: bytes | None = None, content_type: str = "application/json",
         headers: Mapping[str, str] | None = None) -> Response:
    data = raw if raw is not None else (None if body is None else
                                        json.dumps(body, ensure_ascii=False).encode())
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (tests: http)
    if data is not None:
        req.add_header("Content-Type", content_type)
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310
            payload = resp.read()
            status, hdrs = resp.status, dict(resp.headers)
    except urllib.error.HTTPError as exc:
        payload, status, hdrs = exc.read(), exc.code, dict(exc.headers)
    try:
        parsed = json.loads(payload) if payload else None
    except ValueError:
        parsed = None
    return Response(status, hdrs, parsed, payload)


def create_topics(bootstrap: str, names: list[str], partitions: int = 3) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(n, num_partitions=partitions, replication_factor=1)
                                  for n in names]).values():
        f.result(timeout=30)


def read_all(bootstrap: str, topic: str, timeout: float = 10.0) -> list[bytes]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"t-{uuid.uuid4().hex}",
                  "enable.auto.commit": False})
    try:
        md = c.list_topics(topic, timeout=timeout).topics[topic]
        tps, ends = [], {}
        for p in md.partitions:
            low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
            if high > low:
                tps.append(TopicPartition(topic, p, low))
                ends[p] = high
        out: list[bytes] = []
        if not tps:
            return out
        c.assign(tps)
        deadline = time.monotonic() + timeout
        while ends and time.monotonic() < deadline:
            for m in c.consume(500, timeout=0.2):
                if m.error():
                    continue
                out.append(m.value() or b"")
                if (m.offset() or 0) + 1 >= ends.get(m.partition() or 0, 0):
                    ends.pop(m.partition(), None)
        return out
    finally:
        c.close()


@dataclass
class RunningGateway:
    url: str
    settings: Settings
    gateway: Gateway
    keys: KeyStore
    clock: list[float] = field(default_factory=lambda: [0.0])
    _stop: Any = None
    _thread: threading.Thread | None = None

    def topic(self, name: str) -> str:
        return self.settings.topic(name)

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()
        if self._thread is not None:
            self._thread.join(30)


def start_gateway(bootstrap: str, tmp: Path, topics: list[str], *,
                  max_body: int = 1 << 20, max_events: int = 1000,
                  transforms: Mapping[str, Transform] | None = None,
                  serde: Serde | None = None, reports: Any = None) -> RunningGateway:
    prefix = f"g{uuid.uuid4().hex[:8]}."
    settings = Settings(data_dir=tmp, kafka_bootstrap=bootstrap, topic_prefix=prefix)
    create_topics(bootstrap, [settings.topic(t) for t in topics])
    gs = GatewaySettings(settings, port=0, keys_file=tmp / "keys.json", max_body_bytes=max_body,
                         max_events=max_events, send_timeout_s=20)
    clock = [1000.0]
    producer = Producer(producer_config(bootstrap, **{"linger.ms": 2,
                                                      "message.timeout.ms": 20000}))
    gw = Gateway(settings=gs, serde=serde or Serde(), keys=KeyStore(gs.keys_path),
                 sender=KafkaSender(producer, settings.topic),
                 metrics=GatewayMetrics(CollectorRegistry()),
                 limiter=RateLimiter(clock=lambda: clock[0]),
                 # as `ioc gateway` does: the platform's own steps (personal data of citizen
                 # reports) unless a test gives its own
                 transforms=dict(default_transforms(settings) if transforms is None
                                 else transforms))
    ready = threading.Event()
    box: dict[str, Any] = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        app = create_app(gw)
        if reports is not None:
            from ioc.connectors.gateway.open311 import OPEN311

            if OPEN311 in app:
                app[OPEN311].reports = reports
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        box["port"] = runner.addresses[0][1]
        stop = asyncio.Event()
        box["stop"] = lambda: loop.call_soon_threadsafe(stop.set)
        ready.set()
        loop.run_until_complete(stop.wait())
        loop.run_until_complete(runner.cleanup())
        gw.sender.close()
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(30), "gateway did not start"
    return RunningGateway(f"http://127.0.0.1:{box['port']}", settings, gw, gw.keys, clock,
                          box["stop"], thread)
