"""Channel adapters: thin, asynchronous, one ``send`` each.

- ``email`` — SMTP with STARTTLS (or implicit TLS) and AUTH; Vietnamese subject (RFC 2047) and
  body as plain text + HTML; ``Message-ID`` derived from the notification and recipient, so a
  resend after a crash carries the same id. smtplib is blocking: it runs in a worker thread.
- ``webhook`` — POST of the Alertmanager v4 JSON; ``X-IOC-Signature: sha256=<hex>`` is
  HMAC-SHA256 over ``<X-IOC-Timestamp>.<body>`` with ``IOC_WEBHOOK_SECRET``; ``Idempotency-Key``
  is ``<notification id>:<recipient>`` (the same on a resend).
- ``telegram`` — Bot API ``sendMessage`` (HTML parse mode) at a configurable ``api_base``;
  the bot token (``IOC_TELEGRAM_BOT_TOKEN``) is part of the URL path and never appears in logs
  or history.
- ``http`` — a generic template for SMS gateways and Zalo OA: URL, headers and body (JSON, form
  or text) with ``${placeholders}``: ``text``, ``short``, ``subject``, ``ack_url``, ``name``,
  ``receiver``, ``status``, ``notification_id``, ``secret`` (``IOC_NOTIFY_TOKEN_<NAME>``) and
  the person's contacts (``phone``, ``zalo``, ``email``, ``telegram``, …).
- ``file`` — writes each email as an ``.eml`` file into a folder (the demo's outbox; no mail
  server involved).

Errors raise :class:`DeliveryError`; ``retryable`` is false for answers that a retry cannot
change (HTTP 4xx other than 408/429, SMTP 5xx, a missing secret).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import smtplib
import ssl
import string
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlencode

import aiohttp

from ioc.connectors.notify.config import ChannelConfig, NotifyConfig, Person
from ioc.connectors.notify.deliveries import Delivery
from ioc.connectors.notify.engine import Notification
from ioc.connectors.notify.model import parse_duration
from ioc.connectors.notify.render import Context, Message, webhook_payload
from ioc.infra.settings import Secret, Settings


class DeliveryError(Exception):
    def __init__(self, message: str, retryable: bool = True,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass(frozen=True)
class Outgoing:
    notification: Notification
    delivery: Delivery
    person: Person | None
    message: Message
    context: Context
    external_url: str


class Channel(Protocol):
    async def send(self, out: Outgoing) -> str:
        """Deliver; returns a short detail for the history (e.g. the server's answer)."""
        ...


def _timeout(options: Mapping[str, Any], default: float = 10.0) -> float:
    raw = options.get("timeout")
    return parse_duration(str(raw)).total_seconds() if raw else default


# -- email ---------------------------------------------------------------------------------------

def encode_subject(text: str, limit: int = 45) -> str:
    """RFC 2047 encoded words, each holding whole characters (at most ``limit`` UTF-8 bytes),
    folded onto continuation lines. The spaces stay inside the encoded words: Python's own
    folder can cut a subject at a space and drop it ("cảnh báo" → "cảnhbáo")."""
    if text.isascii() and len(text) < 70:
        return text
    words, chunk = [], ""
    for ch in text:
        if len((chunk + ch).encode()) > limit:
            words.append(chunk)
            chunk = ""
        chunk += ch
    if chunk:
        words.append(chunk)
    return "\n ".join(f"=?utf-8?b?{base64.b64encode(w.encode()).decode()}?=" for w in words)


def build_email(out: Outgoing, sender: str) -> bytes:
    """The message as it goes on the wire (the Subject header encoded by
    :func:`encode_subject`)."""
    n, d, m = out.notification, out.delivery, out.message
    name, addr = parseaddr(sender)
    domain = addr.rsplit("@", 1)[-1] if "@" in addr else "ioc.local"
    msg = EmailMessage()
    msg["From"] = formataddr((name, addr)) if name else addr
    to_name = out.person.name if out.person else ""
    msg["To"] = formataddr((to_name, d.address)) if to_name else d.address
    msg["Date"] = format_datetime(n.created_at.astimezone(UTC))
    msg["Message-ID"] = f"<{n.notification_id}.{d.recipient_id}@{domain}>"
    msg["X-IOC-Notification-Id"] = n.notification_id
    msg["X-IOC-Alert-Ids"] = ",".join(sorted({a["alert_id"] for a in n.alerts}))
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(m.text, cte="quoted-printable")
    msg.add_alternative(m.html, subtype="html", cte="quoted-printable")
    wire = msg.policy.clone(linesep="\r\n")  # SMTP needs CRLF (smtplib sends bytes as they are)
    return f"Subject: {encode_subject(m.subject)}\r\n".encode() + msg.as_bytes(policy=wire)


class EmailChannel:
    def __init__(self, cfg: ChannelConfig, password: Secret | None) -> None:
        o = cfg.options
        self.host = str(o["host"])
        self.port = int(o.get("port", 465 if o.get("tls") else 587))
        self.tls = bool(o.get("tls", False))
        self.starttls = bool(o.get("starttls", not self.tls))
        self.username = o.get("username")
        self.sender = str(o["from"])
        self.timeout = _timeout(o, 20.0)
        self.ca_file = o.get("ca_file")
        self.password = password

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file) if self.ca_file \
            else ssl.create_default_context()

    def _send_blocking(self, msg: bytes, to: str) -> str:
        envelope_from = parseaddr(self.sender)[1]
        smtp: smtplib.SMTP
        if self.tls:
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                    context=self._context())
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with smtp:
            smtp.ehlo()
            if self.starttls and not self.tls:
                smtp.starttls(context=self._context())
                smtp.ehlo()
            if self.username:
                if self.password is None:
                    raise DeliveryError("IOC_SMTP_PASSWORD is not set", retryable=False)
                smtp.login(str(self.username), self.password.get())
            smtp.sendmail(envelope_from, [to], msg)
        return f"SMTP {self.host}:{self.port} accepted"

    async def send(self, out: Outgoing) -> str:
        msg = build_email(out, self.sender)
        try:
            return await asyncio.to_thread(self._send_blocking, msg, out.delivery.address)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryError(f"recipient refused ({codes})",
                                retryable=all(400 <= c < 500 for c in codes)) from None
        except smtplib.SMTPResponseException as exc:
            text = exc.smtp_error.decode("utf-8", "replace") if isinstance(
                exc.smtp_error, bytes) else str(exc.smtp_error)
            raise DeliveryError(f"SMTP {exc.smtp_code}: {text[:200]}",
                                retryable=exc.smtp_code < 500) from None
        except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise DeliveryError(f"SMTP {type(exc).__name__}: {str(exc)[:200]}") from None


# -- HTTP based ----------------------------------------------------------------------------------

def _http_error(status: int, text: str, headers: Mapping[str, str]) -> DeliveryError:
    retry_after = None
    if headers.get("Retry-After", "").isdigit():
        retry_after = float(headers["Retry-After"])
    return DeliveryError(f"HTTP {status}: {text[:200]}",
                         retryable=status >= 500 or status in (408, 429),
                         retry_after=retry_after)


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, ``<timestamp>.<body>``)."""
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body,
                                hashlib.sha256).hexdigest()


class WebhookChannel:
    def __init__(self, cfg: ChannelConfig, secret: Secret | None,
                 session: Callable[[], aiohttp.ClientSession]) -> None:
        self.url = str(cfg.options["url"])
        self.timeout = _timeout(cfg.options)
        self.max_alerts = int(cfg.options.get("max_alerts") or 0)
        self.secret = secret
        self.session = session

    async def send(self, out: Outgoing) -> str:
        payload = webhook_payload(out.notification, out.context, out.external_url)
        if self.max_alerts and len(payload["alerts"]) > self.max_alerts:
            payload["truncatedAlerts"] = len(payload["alerts"]) - self.max_alerts
            payload["alerts"] = payload["alerts"][: self.max_alerts]
        body = json.dumps(payload, ensure_ascii=False).encode()
        ts = str(int(time.time()))
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "User-Agent": "ioc-notifier/1",
                   "X-IOC-Notification-Id": out.notification.notification_id,
                   "Idempotency-Key": f"{out.notification.notification_id}:"
                                      f"{out.delivery.recipient_id}",
                   "X-IOC-Timestamp": ts}
        if self.secret is not None:
            headers["X-IOC-Signature"] = signature(self.secret.get().encode(), ts, body)
        return await _post(self.session(), self.url, body, headers, self.timeout)


async def _post(session: aiohttp.ClientSession, url: str, body: bytes,
                headers: Mapping[str, str], timeout: float, method: str = "POST",
                redact: str | None = None) -> str:
    try:
        async with session.request(method, url, data=body, headers=dict(headers),
                                   timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            text = await resp.text(errors="replace")
            if 200 <= resp.status < 300:
                return f"HTTP {resp.status}"
            raise _http_error(resp.status, text, resp.headers)
    except DeliveryError:
        raise
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        message = f"{type(exc).__name__}: {str(exc)[:200]}"
        if redact:
            message = message.replace(redact, "***")
        raise DeliveryError(message) from None


class TelegramChannel:
    def __init__(self, cfg: ChannelConfig, token: Secret | None,
                 session: Callable[[], aiohttp.ClientSession]) -> None:
        self.api_base = str(cfg.options.get("api_base") or "https://api.telegram.org").rstrip("/")
        self.timeout = _timeout(cfg.options)
        self.parse_mode = str(cfg.options.get("parse_mode") or "HTML")
        self.token = token
        self.session = session

    async def send(self, out: Outgoing) -> str:
        if self.token is None:
            raise DeliveryError("IOC_TELEGRAM_BOT_TOKEN is not set", retryable=False)
        token = self.token.get()
        body = json.dumps({"chat_id": out.delivery.address, "text": out.message.telegram,
                           "parse_mode": self.parse_mode,
                           "disable_web_page_preview": True}, ensure_ascii=False).encode()
        url = f"{self.api_base}/bot{token}/sendMessage"
        try:
            async with self.session().post(
                    url, data=body, headers={"Content-Type": "application/json"},
                    timeout=aiohttp.ClientTimeout(total=self.timeout)) as resp:
                text = await resp.text(errors="replace")
                try:
                    answer = json.loads(text)
                except ValueError:
                    answer = {}
                if resp.status == 200 and answer.get("ok"):
                    msg_id = (answer.get("result") or {}).get("message_id")
                    return f"Telegram message {msg_id}"
                retry_after = (answer.get("parameters") or {}).get("retry_after")
                description = str(answer.get("description") or text)[:200]
                raise DeliveryError(f"Telegram HTTP {resp.status}: {description}",
                                    retryable=resp.status >= 500 or resp.status == 429,
                                    retry_after=float(retry_after) if retry_after else None)
        except DeliveryError:
            raise
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {str(exc)[:200]}".replace(token, "***")
                                ) from None


class HttpTemplateChannel:
    def __init__(self, cfg: ChannelConfig, secret: Secret | None,
                 session: Callable[[], aiohttp.ClientSession]) -> None:
        o = cfg.options
        self.name = cfg.name
        self.url = str(o["url"])
        self.method = str(o.get("method") or "POST").upper()
        self.format = str(o.get("format") or "json")
        self.headers = dict(o.get("headers") or {})
        self.body = o.get("body")
        self.secret_name = o.get("secret")
        self.secret = secret
        self.timeout = _timeout(o)
        self.session = session

    def fields(self, out: Outgoing) -> dict[str, str]:
        n, m = out.notification, out.message
        first = next((a for a in (n.firing or n.alerts)), None)
        ack_url = (out.context.ack_url(first) or "") if first is not None else ""
        values = dict(out.person.contacts) if out.person else {}
        values.update(text=m.text, short=m.short, subject=m.subject, ack_url=ack_url,
                      name=out.person.name if out.person else out.delivery.recipient,
                      receiver=n.receiver, status=n.status,
                      notification_id=n.notification_id,
                      secret=self.secret.get() if self.secret else "")
        return values

    def request(self, out: Outgoing) -> tuple[str, bytes, dict[str, str]]:
        """(url, body, headers) with every placeholder filled."""
        if self.secret_name and self.secret is None:
            raise DeliveryError(f"IOC_NOTIFY_TOKEN_{str(self.secret_name).upper()} is not set",
                                retryable=False)
        values = self.fields(out)
        url = string.Template(self.url).safe_substitute(
            {k: quote(v, safe="") for k, v in values.items()})
        headers = {k: string.Template(str(v)).safe_substitute(values)
                   for k, v in self.headers.items()}
        if self.format == "json":
            body = json.dumps(_fill(self.body if self.body is not None else {"text": "${text}"},
                                    values), ensure_ascii=False).encode()
            headers.setdefault("Content-Type", "application/json; charset=utf-8")
        elif self.format == "form":
            filled = _fill(self.body or {}, values)
            body = urlencode({k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
                              for k, v in filled.items()}).encode()
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        else:
            body = string.Template(str(self.body or "${text}")).safe_substitute(values).encode()
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        return url, body, headers

    async def send(self, out: Outgoing) -> str:
        url, body, headers = self.request(out)
        redact = self.secret.get() if self.secret else None
        return await _post(self.session(), url, body, headers, self.timeout, self.method,
                           redact=redact or None)


def _fill(template: Any, values: Mapping[str, str]) -> Any:
    if isinstance(template, str):
        return string.Template(template).safe_substitute(values)
    if isinstance(template, dict):
        return {k: _fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, values) for v in template]
    return template


class FileChannel:
    """Writes each message as an ``.eml`` file (the demo's outbox)."""

    def __init__(self, cfg: ChannelConfig, base: Path) -> None:
        directory = Path(str(cfg.options["directory"]))
        self.directory = directory if directory.is_absolute() else base / directory
        self.sender = str(cfg.options.get("from") or "IOC <ioc-canhbao@ioc.local>")

    def _write(self, name: str, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / (name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(self.directory / name)

    async def send(self, out: Outgoing) -> str:
        if not out.delivery.address:
            out = Outgoing(out.notification,
                           Delivery(out.delivery.channel, out.delivery.recipient_id,
                                    out.delivery.recipient,
                                    f"{out.delivery.recipient_id}@ioc.local"),
                           out.person, out.message, out.context, out.external_url)
        msg = build_email(out, self.sender)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        name = f"{stamp}_{out.notification.notification_id[:12]}_{out.delivery.recipient_id}.eml"
        await asyncio.to_thread(self._write, name, msg)
        return f"written to {self.directory / name}"


def build_channels(config: NotifyConfig, settings: Settings,
                   session: Callable[[], aiohttp.ClientSession]) -> dict[str, Channel]:
    out: dict[str, Channel] = {}
    for name, cfg in config.channels.items():
        if cfg.type == "email":
            out[name] = EmailChannel(cfg, settings.smtp_password)
        elif cfg.type == "webhook":
            out[name] = WebhookChannel(cfg, settings.webhook_secret, session)
        elif cfg.type == "telegram":
            out[name] = TelegramChannel(cfg, settings.telegram_bot_token, session)
        elif cfg.type == "http":
            secret_name = cfg.options.get("secret")
            out[name] = HttpTemplateChannel(
                cfg, settings.notify_token(str(secret_name)) if secret_name else None, session)
        elif cfg.type == "file":
            out[name] = FileChannel(cfg, Path(settings.data_dir))
    return out


def missing_secrets(config: NotifyConfig, settings: Settings) -> list[str]:
    """Environment variables the config's channels need but are not set (startup warning)."""
    missing = []
    for cfg in config.channels.values():
        if cfg.type == "email" and cfg.options.get("username") and not settings.smtp_password:
            missing.append(f"IOC_SMTP_PASSWORD (channel {cfg.name})")
        if cfg.type == "telegram" and not settings.telegram_bot_token:
            missing.append(f"IOC_TELEGRAM_BOT_TOKEN (channel {cfg.name})")
        if cfg.type == "webhook" and not settings.webhook_secret:
            missing.append(f"IOC_WEBHOOK_SECRET (channel {cfg.name}; bodies go unsigned)")
        if cfg.type == "http" and cfg.options.get("secret") and not settings.notify_token(
                str(cfg.options["secret"])):
            missing.append(f"IOC_NOTIFY_TOKEN_{str(cfg.options['secret']).upper()} "
                           f"(channel {cfg.name})")
    return missing
