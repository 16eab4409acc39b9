"""Semantic checks of the notifier's topics: history, acknowledgements, silences.

:data:`CHECKS` maps each topic to its checks (merged by :mod:`ioc.schemas.validation`). An ack
needs an alert, an episode and a person; a silence needs at least one well-formed matcher and
must end after it starts (a silence matching everything would mute the whole platform, so an
empty matcher list is refused).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

Check = Callable[[Mapping[str, Any]], list[str]]

ALERT_EVENT_TOPIC = "ioc.alert_event.v1"
ACK_TOPIC = "ioc.alert_ack.v1"
SILENCE_TOPIC = "ioc.silence.v1"

EVENT_KINDS = ("alert_firing", "alert_resolved", "notification", "delivery", "suppressed",
               "acked", "silence_created", "silence_expired")
MATCHER = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*$')
"""One matcher as stored: ``name op "value"`` (the notifier's parser accepts more forms and
writes this one)."""


def _text(r: Mapping[str, Any], name: str) -> str:
    return str(r.get(name) or "").strip()


def _aware(r: Mapping[str, Any], *names: str) -> list[str]:
    return [f"{n}: must carry a time zone" for n in names
            if isinstance(r.get(n), datetime) and r[n].tzinfo is None]


def alert_event(r: Mapping[str, Any]) -> list[str]:
    problems = []
    if not _text(r, "event_id"):
        problems.append("event_id: must not be empty")
    if r.get("kind") not in EVENT_KINDS:
        problems.append(f"kind: must be one of {', '.join(EVENT_KINDS)}, got {r.get('kind')!r}")
    return problems + _aware(r, "occurred_at", "starts_at")


def alert_ack(r: Mapping[str, Any]) -> list[str]:
    problems = [f"{n}: must not be empty" for n in ("ack_id", "alert_id", "acked_by")
                if not _text(r, n)]
    first, at = r.get("first_acked_at"), r.get("acked_at")
    if isinstance(first, datetime) and isinstance(at, datetime) and first > at:
        problems.append("first_acked_at: must not be after acked_at")
    return problems + _aware(r, "starts_at", "acked_at", "first_acked_at")


def silence(r: Mapping[str, Any]) -> list[str]:
    problems = [f"{n}: must not be empty" for n in ("silence_id", "created_by")
                if not _text(r, n)]
    matchers = r.get("matchers") or []
    if not matchers:
        problems.append("matchers: at least one matcher is needed (a silence without matchers "
                        "would mute every alert)")
    for m in matchers:
        if not MATCHER.match(str(m)):
            problems.append(f'matchers: {m!r} is not name op "value" (op: = != =~ !~)')
    start, end = r.get("starts_at"), r.get("ends_at")
    if isinstance(start, datetime) and isinstance(end, datetime) and end < start:
        problems.append("ends_at: must not be before starts_at")
    return problems + _aware(r, "starts_at", "ends_at", "created_at", "updated_at")


CHECKS: dict[str, list[Check]] = {
    ALERT_EVENT_TOPIC: [alert_event],
    ACK_TOPIC: [alert_ack],
    SILENCE_TOPIC: [silence],
}
