"""Kafka delivery for the asyncio gateway: a request is answered after the broker acknowledged.

confluent-kafka's producer is thread-safe and calls delivery callbacks from ``poll()``; a
background thread polls, and each callback resolves an asyncio future on the gateway's loop.
The producer is idempotent with ``acks=all`` (every in-sync replica has the record before the
callback reports success) and gives up after ``message.timeout.ms``, so a request never waits
longer than that.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer


@dataclass(frozen=True)
class Outgoing:
    topic: str      # contract topic name
    key: bytes
    value: bytes


class KafkaSender:
    """Produce messages and await the broker's acknowledgement of each one."""

    def __init__(self, producer: Producer, topic_name: Callable[[str], str] = lambda t: t
                 ) -> None:
        self._producer = producer
        self._topic_name = topic_name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="gateway-kafka-poll",
                                        daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.1)

    async def send_all(self, messages: Sequence[Outgoing]) -> list[str | None]:
        """Send all; for each message None (acknowledged) or the reason it was not."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[str | None]] = []

        def resolver(fut: asyncio.Future[str | None]) -> Callable[[Any, Any], None]:
            def done(err: KafkaError | None, _msg: Message) -> None:
                reason = None if err is None else err.str()
                loop.call_soon_threadsafe(_set, fut, reason)
            return done

        for m in messages:
            fut: asyncio.Future[str | None] = loop.create_future()
            try:
                self._producer.produce(self._topic_name(m.topic), key=m.key, value=m.value,
                                       on_delivery=resolver(fut))
            except BufferError:
                fut.set_result("the gateway's send queue is full")
            except KafkaException as exc:
                fut.set_result(str(exc))
            futures.append(fut)
        return list(await asyncio.gather(*futures))

    def reachable(self, timeout: float = 2.0) -> bool:
        """Whether the cluster answers a metadata request (blocking; run in an executor)."""
        try:
            self._producer.list_topics(timeout=timeout)
            return True
        except KafkaException:
            return False

    def close(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(5)
        self._producer.flush(timeout)
        self._producer.close()  # no reconnect attempts once the gateway is gone


def _set(fut: asyncio.Future[str | None], reason: str | None) -> None:
    if not fut.done():
        fut.set_result(reason)
