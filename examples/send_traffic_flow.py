"""Send traffic-flow readings to the IOC platform with the Python SDK (see docs/sdk.md).

    IOC_KAFKA_BOOTSTRAP=kafka.ioc.example.vn:9092 python examples/send_traffic_flow.py

Without IOC_KAFKA_BOOTSTRAP it uses the local broker of `ioc kafka up` (127.0.0.1:19092).
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta

from ioc.connectors.sdk import AgencyProducer, DeliveryError, ValidationError

TOPIC = "ioc.traffic.flow.v1"


def main() -> int:
    bootstrap = os.environ.get("IOC_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
    prefix = os.environ.get("IOC_TOPIC_PREFIX", "")  # test deployments only
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    readings = [
        # (segment, minutes ago, vehicles, mean speed km/h)
        ("QL1A-TK-01", 2, 42, 38.5),
        ("QL1A-TK-01", 1, 51, 31.0),
        ("DT607-01", 1, 9, 55.0),
    ]
    try:
        with AgencyProducer(bootstrap=bootstrap, source="SGTVT-QNA",
                            topic_prefix=prefix) as producer:
            for segment, ago, vehicles, speed in readings:
                # A stable id from your own data makes re-running this script harmless.
                minute = now - timedelta(minutes=ago)
                event_id = f"SGTVT-QNA-{segment}-{minute:%Y%m%d%H%M}"
                producer.send(TOPIC, {
                    "event_id": event_id,
                    "occurred_at": minute.isoformat(),
                    "area_code": "502",
                    "segment_id": segment,
                    "vehicle_count": vehicles,
                    "avg_speed_kmh": speed,
                })
            # A mistake is caught before anything is sent, with the field named:
            try:
                producer.send(TOPIC, {"occurred_at": now.isoformat(), "area_code": "502",
                                      "segment_id": "QL1A-TK-01", "vehicle_count": -1,
                                      "avg_speed_kmh": 30})
            except ValidationError as exc:
                for err in exc.errors:
                    print(f"rejected: {err.field}: {err.en} / {err.vi}")
            confirmed = producer.flush()
    except DeliveryError as exc:
        print(f"not confirmed, run again later: {exc}", file=sys.stderr)
        return 1
    print(f"{len(confirmed)} readings confirmed by Kafka: {', '.join(confirmed)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
