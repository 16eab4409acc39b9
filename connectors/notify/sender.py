"""Sending a notification: intent first, every delivery with retries, outcome after, fallback.

1. The ``notification`` history record (with its planned deliveries) is written and confirmed
   by Kafka **before** any channel is tried.
2. Each delivery (recipient × channel) runs as its own task: up to ``retry.attempts`` tries with
   doubling backoff (``initial_backoff`` … ``max_backoff``, or the server's ``Retry-After``);
   each failed try is recorded (``failed``), the end is recorded and confirmed (``sent`` or
   ``gave_up``).
3. If any delivery gave up, the receiver's fallback receiver (or ``global.fallback_receiver``)
   gets the same alerts in a ``fallback`` notification saying what failed. A fallback does not
   fall back further.

So after a crash the ledger knows, per delivery, whether it finished; see
:mod:`ioc.connectors.notify.deliveries` for what a restarted notifier resends.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ioc.connectors.notify import history
from ioc.connectors.notify.channels import Channel, DeliveryError, Outgoing
from ioc.connectors.notify.config import NotifyConfig, Person
from ioc.connectors.notify.deliveries import Delivery, Ledger, plan
from ioc.connectors.notify.engine import Notification
from ioc.connectors.notify.model import stable_id
from ioc.connectors.notify.render import Context, render, subject
from ioc.connectors.notify.tokens import AckClaim, sign

log = logging.getLogger(__name__)


class HistoryWriter(Protocol):
    async def send(self, topic: str, record: dict[str, Any], wait: bool = True) -> None: ...


@dataclass
class Contexts:
    """Builds the rendering context of one delivery: names, ack links, current acks."""

    config: NotifyConfig
    base_url: str | None  # None: no ack links (the HTTP server is off)
    secret: bytes
    ack_of: Callable[[Mapping[str, Any]], Mapping[str, Any] | None]
    area_name: Callable[[str], str]
    clock: Callable[[], datetime]

    def person(self, d: Delivery) -> Person | None:
        return self.config.people.get(d.recipient_id)

    def for_delivery(self, n: Notification, d: Delivery) -> Context:
        person = self.person(d)
        receiver = self.config.receivers.get(n.receiver)
        description = receiver.description if receiver else n.receiver
        expires = self.clock() + self.config.global_.ack_link_ttl

        def ack_url(alert: Mapping[str, Any]) -> str | None:
            if self.base_url is None or alert["status"] != "firing":
                return None
            token = sign(self.secret, AckClaim(alert["alert_id"], alert["starts_at"],
                                               d.recipient_id, expires))
            return f"{self.base_url}/ack/{token}"

        return Context(self.config.global_.title,
                       person.name if person else (description or d.recipient),
                       description, ack_url, self.ack_of, self.area_name)


def delivery_record(n: Notification, d: Delivery, attempt: int, outcome: str, detail: str,
                    at: datetime, subj: str) -> dict[str, Any]:
    base = n.history_record([], subj)
    keep = {k: base[k] for k in ("alert_id", "starts_at", "rule", "severity", "status",
                                 "domain", "area_code", "entity", "summary", "group_key",
                                 "route", "receiver", "level", "reason", "notification_id",
                                 "alert_keys")}
    return history.event("delivery", at, stable_id("delivery", n.notification_id, d.key,
                                                   attempt, outcome),
                         channel=d.channel, recipient_id=d.recipient_id,
                         recipient=d.recipient, attempt=attempt, outcome=outcome,
                         detail=detail[:500], **keep)


class Sender:
    def __init__(self, config: NotifyConfig, channels: Mapping[str, Channel], ledger: Ledger,
                 writer: HistoryWriter, contexts: Contexts, external_url: str,
                 clock: Callable[[], datetime],
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 on_outcome: Callable[[Notification, Delivery, str], None] | None = None
                 ) -> None:
        self.config = config
        self.channels = channels
        self.ledger = ledger
        self.writer = writer
        self.contexts = contexts
        self.external_url = external_url
        self.clock = clock
        self.sleep = sleep
        self.on_outcome = on_outcome

    def subject(self, n: Notification) -> str:
        return subject(n, self.contexts.for_delivery(n, Delivery("", "", n.receiver, "")))

    async def send(self, n: Notification) -> None:
        """A new notification: record the intent (durably), then deliver."""
        deliveries = plan(n, self.config)
        await self.writer.send(history.TOPIC, n.history_record(deliveries, self.subject(n)))
        self.ledger.record_intent(n, deliveries)
        log.info("notification %s → %s (level %d, %s): %d deliveries", n.notification_id,
                 n.receiver, n.level, n.reason, len(deliveries))
        await self.deliver(n, deliveries)

    async def deliver(self, n: Notification, deliveries: list[Delivery]) -> None:
        """Deliver (or, after a restart, finish delivering) ``n``; then its fallback."""
        results = await asyncio.gather(*(self._deliver(n, d) for d in deliveries))
        failed = [f"{d.channel} → {d.recipient}: {detail}"
                  for d, (outcome, detail) in zip(deliveries, results, strict=True)
                  if outcome == "gave_up"]
        if failed:
            await self.fallback(n, failed)

    async def supersede(self, n: Notification, d: Delivery) -> None:
        await self.writer.send(history.TOPIC, delivery_record(
            n, d, 0, "superseded", "a newer notification of the group was sent instead",
            self.clock(), self.subject(n)))
        self.ledger.record_outcome(n.notification_id, d.key, "superseded")

    async def fallback(self, n: Notification, failed: list[str]) -> None:
        target = self.config.fallback_for(n.receiver)
        if n.reason == "fallback" or target is None:
            log.error("notification %s to %s: %d deliveries failed and there is no fallback "
                      "receiver: %s", n.notification_id, n.receiver, len(failed),
                      "; ".join(failed))
            return
        fb = dataclasses.replace(n, notification_id=Ledger.fallback_id(n.notification_id),
                                 receiver=target, reason="fallback",
                                 parent_id=n.notification_id, failures=tuple(failed),
                                 fallback_from=n.receiver,
                                 created_at=self.clock())
        log.warning("notification %s to %s failed on %d deliveries; falling back to %s",
                    n.notification_id, n.receiver, len(failed), target)
        await self.send(fb)

    async def _deliver(self, n: Notification, d: Delivery) -> tuple[str, str]:
        channel = self.channels[d.channel]
        ctx = self.contexts.for_delivery(n, d)
        message = render(n, ctx)
        out = Outgoing(n, d, self.contexts.person(d), message, ctx, self.external_url)
        policy = self.config.global_.retry
        attempt = 0
        while True:
            attempt += 1
            try:
                detail = await channel.send(out)
            except DeliveryError as exc:
                final = attempt >= policy.attempts or not exc.retryable
                outcome = "gave_up" if final else "failed"
                await self.writer.send(history.TOPIC, delivery_record(
                    n, d, attempt, outcome, str(exc), self.clock(), message.subject),
                    wait=final)
                log.warning("delivery %s of %s (attempt %d/%d) failed: %s", d.key,
                            n.notification_id, attempt, policy.attempts, exc)
                if final:
                    self.ledger.record_outcome(n.notification_id, d.key, "gave_up")
                    self._notify(n, d, "gave_up")
                    return "gave_up", str(exc)
                await self.sleep(max(policy.backoff(attempt), exc.retry_after or 0.0))
                continue
            except Exception as exc:  # a bug in an adapter must not stop the notifier
                log.exception("delivery %s of %s: unexpected error", d.key, n.notification_id)
                if attempt >= policy.attempts:
                    await self.writer.send(history.TOPIC, delivery_record(
                        n, d, attempt, "gave_up", f"{type(exc).__name__}: {exc}",
                        self.clock(), message.subject))
                    self.ledger.record_outcome(n.notification_id, d.key, "gave_up")
                    return "gave_up", str(exc)
                await self.sleep(policy.backoff(attempt))
                continue
            await self.writer.send(history.TOPIC, delivery_record(
                n, d, attempt, "sent", detail, self.clock(), message.subject))
            self.ledger.record_outcome(n.notification_id, d.key, "sent")
            self._notify(n, d, "sent")
            return "sent", detail

    def _notify(self, n: Notification, d: Delivery, outcome: str) -> None:
        if self.on_outcome is not None:
            self.on_outcome(n, d, outcome)
