"""Settings of the ingestion gateway (``ioc gateway``), read from the environment in one place.

- ``IOC_GATEWAY_HOST`` / ``IOC_GATEWAY_PORT`` — where it listens (default ``127.0.0.1:8088``;
  put a TLS-terminating reverse proxy in front of it for agencies outside the machine).
- ``IOC_GATEWAY_KEYS_FILE`` — the agencies' hashed API keys (default
  ``$IOC_DATA_DIR/gateway/keys.json``; see :mod:`ioc.connectors.gateway.keys`).
- ``IOC_GATEWAY_MAX_BODY_BYTES`` — largest request body (default 1 MiB; larger → 413).
- ``IOC_GATEWAY_MAX_EVENTS`` — most events in one batch (default 1000; more → 413).
- ``IOC_GATEWAY_SEND_TIMEOUT_S`` — how long the broker may take to acknowledge a request's
  events before the gateway answers 503 (default 30 s).
- ``IOC_GATEWAY_RECENT_IDS`` — how many acknowledged event ids it remembers to answer retries
  without re-sending (default 200000).

Platform settings (Kafka, ClickHouse, topic prefix, schema registry) come from
:class:`ioc.infra.settings.Settings`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from ioc.infra.settings import Settings


@dataclass(frozen=True)
class GatewaySettings:
    platform: Settings
    host: str = "127.0.0.1"
    port: int = 8088
    keys_file: Path | None = None
    max_body_bytes: int = 1 << 20
    max_events: int = 1000
    send_timeout_s: float = 30.0
    recent_ids: int = 200_000

    @classmethod
    def from_env(cls, platform: Settings, env: Mapping[str, str] | None = None
                 ) -> GatewaySettings:
        env = os.environ if env is None else env
        d = cls(platform)
        return cls(
            platform=platform,
            host=env.get("IOC_GATEWAY_HOST", d.host),
            port=int(env.get("IOC_GATEWAY_PORT", d.port)),
            keys_file=Path(env["IOC_GATEWAY_KEYS_FILE"]) if env.get("IOC_GATEWAY_KEYS_FILE")
            else None,
            max_body_bytes=int(env.get("IOC_GATEWAY_MAX_BODY_BYTES", d.max_body_bytes)),
            max_events=int(env.get("IOC_GATEWAY_MAX_EVENTS", d.max_events)),
            send_timeout_s=float(env.get("IOC_GATEWAY_SEND_TIMEOUT_S", d.send_timeout_s)),
            recent_ids=int(env.get("IOC_GATEWAY_RECENT_IDS", d.recent_ids)),
        )

    def with_(self, **changes: object) -> GatewaySettings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def keys_path(self) -> Path:
        return self.keys_file or self.platform.data_dir / "gateway" / "keys.json"
