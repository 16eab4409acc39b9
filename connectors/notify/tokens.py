"""Signed, expiring acknowledgement links.

A token says: *recipient R may acknowledge episode S of alert A until time E*. It is
``base64url(json) + "." + base64url(HMAC-SHA256(secret, base64url(json)))``; the notifier's
``/ack/<token>`` page verifies the signature (constant-time) and the expiry before showing the
confirmation form. An episode's token cannot acknowledge a later episode of the same alert.

The secret comes from ``IOC_NOTIFY_SECRET``; when unset, a random one is generated once into
``$IOC_DATA_DIR/notify/secret`` (mode 0600) so links survive restarts of the embedded default.
A deployment with several hosts sets ``IOC_NOTIFY_SECRET``. The secret is never logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ioc.connectors.notify.model import from_ms, ms
from ioc.infra.settings import Settings

log = logging.getLogger(__name__)


class TokenError(ValueError):
    """The link is not valid: ``reason`` is ``invalid`` or ``expired``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class AckClaim:
    alert_id: str
    starts_at: datetime
    recipient: str  # person id (or channel name for a webhook)
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(secret: bytes, claim: AckClaim) -> str:
    body = json.dumps({"a": claim.alert_id, "s": ms(claim.starts_at), "r": claim.recipient,
                       "e": ms(claim.expires_at), "v": 1}, separators=(",", ":"),
                      ensure_ascii=False).encode()
    head = _b64(body)
    mac = hmac.new(secret, head.encode(), hashlib.sha256).digest()
    return f"{head}.{_b64(mac)}"


def verify(secret: bytes, token: str, now: datetime) -> AckClaim:
    try:
        head, mac = token.split(".", 1)
        expected = hmac.new(secret, head.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(mac)):
            raise TokenError("invalid", "chữ ký của liên kết không hợp lệ")
        data = json.loads(_unb64(head))
        claim = AckClaim(str(data["a"]), from_ms(int(data["s"])), str(data["r"]),
                         from_ms(int(data["e"])))
    except TokenError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise TokenError("invalid", f"liên kết không hợp lệ ({type(exc).__name__})") from None
    if now >= claim.expires_at:
        raise TokenError("expired", "liên kết đã hết hạn")
    return claim


def load_or_create_secret(settings: Settings) -> bytes:
    """``IOC_NOTIFY_SECRET``, or the key generated once into the data dir."""
    if settings.notify_secret is not None:
        return settings.notify_secret.get().encode()
    path = Path(settings.data_dir) / "notify" / "secret"
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first
        return path.read_bytes().strip()
    try:
        os.write(fd, key)
    finally:
        os.close(fd)
    log.warning("IOC_NOTIFY_SECRET is not set: generated an ack-link key in %s (set "
                "IOC_NOTIFY_SECRET when several hosts run the notifier)", path)
    return key
