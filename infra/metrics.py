"""Prometheus metrics of the platform's processes.

Each process builds one ``Metrics`` on a registry it is given (tests pass a fresh
``CollectorRegistry``) and exposes it with :func:`serve`. Names are stable: dashboards and the
platform's own alert rules rely on them.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.events_in = Counter("ioc_events_in", "Messages read, by topic and component",
                                 ["component", "topic"], registry=registry)
        self.events_out = Counter("ioc_events_out", "Records written, by topic/table and component",
                                  ["component", "topic"], registry=registry)
        self.dead_letters = Counter("ioc_dead_letters", "Records sent to the dead-letter topic",
                                    ["component", "topic", "error_type"], registry=registry)
        self.event_outcomes = Counter("ioc_stream_event_outcomes",
                                      "Stream events by outcome (counted, duplicate, late, ...)",
                                      ["topic", "outcome"], registry=registry)
        self.stream_rereads = Counter("ioc_stream_rereads",
                                      "Times the stream worker sought back to its read cursor "
                                      "(its consumer skipped messages, or a partition with "
                                      "unread messages made no progress)",
                                      ["topic"], registry=registry)
        self.sink_batch_rows = Histogram("ioc_sink_batch_rows", "Rows per ClickHouse insert",
                                         ["table"], registry=registry,
                                         buckets=(1, 10, 100, 500, 1000, 5000, 10000, 50000))
        self.sink_batch_seconds = Histogram("ioc_sink_batch_seconds",
                                            "Seconds per ClickHouse insert", ["table"],
                                            registry=registry)
        self.sink_retries = Counter("ioc_sink_retries", "Retried ClickHouse inserts",
                                    ["table", "reason"], registry=registry)
        self.sink_clickhouse_up = Gauge(
            "ioc_sink_clickhouse_up",
            "1 while the sink can write to ClickHouse, 0 while its inserts fail and are retried "
            "with backoff (unreachable or overloaded); store = where it writes", ["store"],
            registry=registry)
        self.sink_skipped = Counter("ioc_sink_skipped",
                                    "Undecodable raw messages the sink skipped (the stream "
                                    "worker dead-letters them)", ["topic"], registry=registry)
        self.consumer_lag = Gauge("ioc_consumer_lag", "High watermark minus position",
                                  ["component", "topic", "partition"], registry=registry)
        self.e2e_latency = Histogram("ioc_end_to_end_latency_seconds",
                                     "Event time to stored in ClickHouse (raw tables)",
                                     ["topic"], registry=registry,
                                     buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600))
        self.open_windows = Gauge("ioc_stream_open_windows", "Open KPI windows",
                                  registry=registry)
        self.held_events = Gauge("ioc_stream_held_events",
                                 "Events held (not yet committable) by open windows",
                                 registry=registry)
        self.stalled = Gauge("ioc_stream_stalled",
                             "1 when the watchdog found the worker stalled (it then restarts)",
                             registry=registry)
        self.watchdog_restarts = Gauge("ioc_stream_watchdog_restarts",
                                       "Times the watchdog restarted this worker process",
                                       registry=registry)
        self.alerts_emitted = Counter("ioc_alerts_emitted", "Alert state changes emitted",
                                      ["rule", "status"], registry=registry)
        self.notifications = Counter("ioc_notifications",
                                     "Notifications decided by the notifier",
                                     ["receiver", "reason"], registry=registry)
        self.notification_deliveries = Counter(
            "ioc_notification_deliveries",
            "Deliveries (recipient x channel) finished, by outcome (sent, gave_up)",
            ["channel", "outcome"], registry=registry)


def serve(registry: CollectorRegistry, port: int, addr: str = "127.0.0.1") -> int:
    """Expose metrics over HTTP; returns the port (0 = metrics off)."""
    if port <= 0:
        return 0
    start_http_server(port, addr=addr, registry=registry)
    return port
