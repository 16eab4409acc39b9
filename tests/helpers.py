"""Small helpers shared by the tests (``from helpers import ...``; tests/ is on sys.path)."""

from __future__ import annotations

import random
from pathlib import Path

from ioc.infra.local_kafka import port_free

_port_free = port_free  # one definition: the launcher's (SO_REUSEADDR like the JVM's)


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def find_free_port_pair() -> int:
    """A port ``p`` such that ``p`` and ``p + 1`` are free on 127.0.0.1.

    The local Kafka broker needs both (client and controller port). Ports are picked below the
    kernel's ephemeral range so that outgoing connections cannot grab them in the meantime.
    """
    return find_free_ports(2)


def find_free_ports(count: int) -> int:
    """A port ``p`` such that ``p`` … ``p + count - 1`` are free on 127.0.0.1 (a local Kafka
    cluster of n nodes needs 2n)."""
    low, _ = _ephemeral_range()
    upper = low - count if low > 12000 else 65000
    for _ in range(200):
        port = random.randint(10000, upper)
        if all(_port_free(port + i) for i in range(count)):
            return port
    raise RuntimeError(f"no {count} consecutive free TCP ports found on 127.0.0.1")
