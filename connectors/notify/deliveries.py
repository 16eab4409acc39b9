"""Who gets a notification on which channel, and the ledger of what was delivered.

A :class:`Notification` goes to a receiver (a roster); :func:`plan` expands it into deliveries:
one per member and per-person channel the member has a contact for (email, Telegram, SMS/Zalo
templates, file), plus one per receiver-wide webhook.

The :class:`Ledger` is the notifier's memory of sending, rebuilt from the history topic at start.
The sender writes a ``notification`` record (with the planned deliveries) *before* it sends
anything, and one final ``delivery`` record per delivery after (``sent``, ``gave_up``, or
``superseded``). Whatever was planned but has no final record was interrupted (SIGKILL, power
loss): :meth:`Ledger.unfinished` says what to resend, what newer news made moot, and which
notifications still owe their fallback.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ioc.connectors.notify.config import NotifyConfig
from ioc.connectors.notify.engine import Notification

FINAL_OUTCOMES = ("sent", "gave_up", "superseded")


@dataclass(frozen=True)
class Delivery:
    channel: str
    recipient_id: str  # person id, or the channel name for a receiver-wide webhook
    recipient: str  # readable: "Nguyễn Văn An <an@…>"
    address: str  # where: email address, chat id, phone, URL

    @property
    def key(self) -> str:
        return f"{self.channel}|{self.recipient_id}"

    def to_json(self) -> dict[str, str]:
        return {"channel": self.channel, "recipient_id": self.recipient_id,
                "recipient": self.recipient, "address": self.address}

    @classmethod
    def from_json(cls, data: Mapping[str, str]) -> Delivery:
        return cls(data["channel"], data["recipient_id"], data["recipient"], data["address"])


def plan(n: Notification, config: NotifyConfig) -> list[Delivery]:
    receiver = config.receivers[n.receiver]
    out: list[Delivery] = []
    for name in receiver.via:
        ch = config.channels[name]
        if not ch.per_person:
            url = str(ch.options.get("url", ""))
            out.append(Delivery(name, name, f"{name} ({_host(url)})", url))
            continue
        for pid in receiver.members:
            person = config.people[pid]
            if ch.contact is None:
                address = person.contacts.get("email", "")
            else:
                address = person.contacts.get(ch.contact, "")
                if not address:
                    continue
            shown = f"{person.name} <{address}>" if address else person.name
            out.append(Delivery(name, pid, shown, address))
    return out


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).netloc or url


@dataclass
class _Intent:
    notification: Notification
    deliveries: list[Delivery]
    outcomes: dict[str, str] = field(default_factory=dict)  # delivery key → final outcome


@dataclass
class Unfinished:
    resume: list[tuple[Notification, list[Delivery]]]
    superseded: list[tuple[Notification, Delivery]]
    fallbacks: list[tuple[Notification, list[str]]]  # (original, failed delivery keys)


class Ledger:
    def __init__(self) -> None:
        self.intents: dict[str, _Intent] = {}

    def record_intent(self, n: Notification, deliveries: list[Delivery]) -> None:
        self.intents.setdefault(n.notification_id, _Intent(n, list(deliveries)))

    def record_outcome(self, notification_id: str, delivery_key: str, outcome: str) -> None:
        intent = self.intents.get(notification_id)
        if intent is not None and outcome in FINAL_OUTCOMES:
            intent.outcomes.setdefault(delivery_key, outcome)

    def restore(self, events: Iterable[Mapping[str, Any]]) -> None:
        for ev in events:
            if ev["kind"] == "notification":
                n, planned = Notification.from_event(ev)
                self.record_intent(n, [Delivery.from_json(d) for d in planned])
            elif ev["kind"] == "delivery":
                self.record_outcome(ev["notification_id"],
                                    f"{ev['channel']}|{ev['recipient_id']}", ev["outcome"])

    def forget_before(self, when: datetime) -> None:
        """Drop finished intents older than ``when`` (the history lookback)."""
        for nid, intent in list(self.intents.items()):
            done = all(d.key in intent.outcomes for d in intent.deliveries)
            if done and intent.notification.created_at < when:
                del self.intents[nid]

    @staticmethod
    def fallback_id(notification_id: str) -> str:
        return f"{notification_id}-fb"

    def unfinished(self, config: NotifyConfig) -> Unfinished:
        """What a restarted notifier owes: resend interrupted deliveries of the latest
        notification of each level-0 group stream (older ones are superseded by it: a group's
        level-0 notification always states the group's whole current state), and of every
        escalation, resolve-to-escalation and fallback notification; send the fallback of a
        notification whose deliveries gave up if that was not yet done."""
        ordered = sorted(self.intents.values(), key=lambda i: i.notification.created_at)
        latest: dict[tuple[str, str], str] = {}
        for intent in ordered:
            n = intent.notification
            if n.level == 0 and n.reason != "fallback":
                latest[(n.group_key, n.receiver)] = n.notification_id
        out = Unfinished([], [], [])
        for intent in ordered:
            n = intent.notification
            missing = [d for d in intent.deliveries if d.key not in intent.outcomes]
            if missing:
                stream = (n.group_key, n.receiver)
                if (n.level == 0 and n.reason != "fallback"
                        and latest.get(stream) != n.notification_id):
                    out.superseded.extend((n, d) for d in missing)
                else:
                    out.resume.append((n, missing))
                continue
            failed = [k for k, o in intent.outcomes.items() if o == "gave_up"]
            if (failed and n.reason != "fallback" and config.fallback_for(n.receiver)
                    and self.fallback_id(n.notification_id) not in self.intents):
                out.fallbacks.append((n, failed))
        return out
