"""Building and running the gateway process (``ioc gateway``).

One process: the aiohttp server on ``IOC_GATEWAY_HOST:IOC_GATEWAY_PORT``, one idempotent
confluent-kafka producer (``acks=all``) shared by all requests, the keys file re-read on
change, metrics on the gateway's own registry served at ``/metrics``. It needs Kafka, not
ClickHouse (only Open311's status queries read ClickHouse, per request). SIGINT/SIGTERM stop
it after in-flight requests are answered and the producer is flushed.
"""

from __future__ import annotations

import logging

from aiohttp import web
from confluent_kafka import Producer
from prometheus_client import CollectorRegistry

from ioc.connectors.gateway.app import Gateway, GatewayMetrics, create_app
from ioc.connectors.gateway.delivery import KafkaSender
from ioc.connectors.gateway.ingest import RecentEvents
from ioc.connectors.gateway.keys import KeyStore
from ioc.connectors.gateway.settings import GatewaySettings
from ioc.connectors.producer import producer_config
from ioc.connectors.schema_registry import serde_for
from ioc.connectors.transforms import default_transforms

log = logging.getLogger(__name__)


def build_gateway(gs: GatewaySettings, registry: CollectorRegistry | None = None) -> Gateway:
    platform = gs.platform
    producer = Producer(producer_config(platform.bootstrap, **platform.kafka_security, **{
        "linger.ms": 5, "message.timeout.ms": int(gs.send_timeout_s * 1000)}))
    return Gateway(settings=gs, serde=serde_for(platform), keys=KeyStore(gs.keys_path),
                   sender=KafkaSender(producer, platform.topic),
                   metrics=GatewayMetrics(registry or CollectorRegistry()),
                   transforms=default_transforms(platform),
                   recent=RecentEvents(gs.recent_ids))


def run_gateway(gs: GatewaySettings, print_line: object = print) -> int:
    gw = build_gateway(gs)
    app = create_app(gw)

    async def on_cleanup(_app: web.Application) -> None:
        gw.sender.close()

    app.on_cleanup.append(on_cleanup)
    log.info("gateway on %s:%d → Kafka %s", gs.host, gs.port, gs.platform.bootstrap)
    web.run_app(app, host=gs.host, port=gs.port, print=print_line,  # type: ignore[arg-type]
                access_log=None, shutdown_timeout=gs.send_timeout_s)
    return 0
