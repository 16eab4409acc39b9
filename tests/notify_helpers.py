"""Helpers shared by the notifier tests (``from notify_helpers import ...``): alert records, a
small routing config, and real local servers — an SMTP server (aiosmtpd, STARTTLS + AUTH) and
HTTP servers (webhook, Telegram Bot API, SMS gateway) that record what they receive and can be
told to fail or to answer slowly."""


from __future__ import annotations

import asyncio
import email
import email.policy
import json
import socket
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from ioc.streams.rules import alert_record

SMTP_USER = "ioc-canhbao@quangnam.example"
SMTP_PASSWORD = "mat-khau-thu-nghiem"  # noqa: S105 - a test server's password


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 / localhost (openssl)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    if not cert.exists():
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", str(key), "-out", str(cert), "-days", "2",
                        "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       check=True, capture_output=True)
    return cert, key


@dataclass
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def part(self, subtype: str) -> str:
        for p in self.message.walk():
            if p.get_content_type() == f"text/{subtype}":
                return str(p.get_content())
        raise KeyError(subtype)


class _Handler:
    def __init__(self, box: SmtpServer) -> None:
        self.box = box

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.box.lock:
            if self.box.fail_next > 0:
                self.box.fail_next -= 1
                return "451 4.3.0 Thử lại sau (test)"
            msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
            self.box.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 OK"


class SmtpServer:
    """aiosmtpd on 127.0.0.1 requiring STARTTLS, with AUTH LOGIN/PLAIN."""

    def __init__(self, cert: Path, key: Path) -> None:
        import ssl

        self.mails: list[Mail] = []
        self.logins: list[str] = []
        self.fail_next = 0
        self.lock = threading.Lock()
        self.port = free_port()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(cert), str(key))
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port,
                                     tls_context=context, require_starttls=True,
                                     authenticator=self._auth, auth_require_tls=True)

    def _auth(self, server: Any, session: Any, envelope: Any, mechanism: str,
              data: Any) -> AuthResult:
        if isinstance(data, LoginPassword):
            user, password = data.login.decode(), data.password.decode()
            if user == SMTP_USER and password == SMTP_PASSWORD:
                self.logins.append(user)
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def to(self, address: str) -> list[Mail]:
        with self.lock:
            return [m for m in self.mails if address in m.rcpt_tos]


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpServer:
    """An aiohttp server in its own thread and loop; ``respond`` decides each answer."""

    respond: Callable[[Request], tuple[int, Any]] = lambda r: (200, {"ok": True})
    requests: list[Request] = field(default_factory=list)
    port: int = 0
    delay: float = 0.0  # seconds to wait before answering (a slow receiver)

    def start(self) -> HttpServer:
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        started = threading.Event()

        async def handle(request: web.Request) -> web.Response:
            req = Request(request.path, dict(request.headers), await request.read())
            self.requests.append(req)
            if self.delay:
                await asyncio.sleep(self.delay)
            status, body = self.respond(req)
            return web.json_response(body, status=status)

        async def serve() -> None:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", handle)
            self.runner = web.AppRunner(app, access_log=None)
            await self.runner.setup()
            await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
            started.set()

        def main() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(serve())
            self.loop.run_forever()

        self.thread = threading.Thread(target=main, daemon=True)
        self.thread.start()
        started.wait(10)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        async def close() -> None:
            await self.runner.cleanup()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


# -- alerts and config ----------------------------------------------------------------------

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 08:00 in Quảng Nam

CONFIG = """
version: 1
global:
  title: IOC Quảng Nam
people:
  an:    {name: Nguyễn Văn An, email: an@sogtvt.example}
  binh:  {name: Trần Thị Bình, email: binh@sogtvt.example, telegram: "1002"}
  cuong: {name: Lê Văn Cường, email: cuong@sogtvt.example}
  duc:   {name: Phạm Minh Đức, email: duc@sogtvt.example, phone: "0905000104"}
channels:
  email: {type: email, host: 127.0.0.1, from: "IOC <ioc@example.vn>"}
  telegram: {type: telegram}
receivers:
  ioc:       {members: [an], via: [email]}
  gt:        {members: [binh], via: [email, telegram], fallback: ioc}
  truong-ca: {members: [cuong], via: [email]}
  lanh-dao:  {members: [duc], via: [email]}
route:
  receiver: ioc
  group_by: [domain, area_code]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - name: giao-thong
      match: {domain: traffic}
      receiver: gt
      escalation:
        - {after: 15m, receiver: truong-ca}
        - {after: 45m, receiver: lanh-dao}
inhibit_rules:
  - {source: {severity: critical}, target: {severity: warning}, equal: [entity]}
"""


def alert(segment: str, severity: str = "warning", status: str = "firing",
          starts_at: datetime = T0, updated_at: datetime | None = None, area: str = "502",
          rule: str = "traffic.congestion", domain: str = "traffic") -> dict[str, Any]:
    ends = (updated_at or starts_at) if status == "resolved" else None
    return alert_record(
        rule=rule, labels={"segment_id": segment}, severity=severity, status=status,
        domain=domain, area_code=area, entity=segment, value=0.7, threshold=0.6,
        summary=f"Ùn tắc kéo dài trên {segment}: chỉ số ùn tắc 0.70 (ngưỡng 0.6).",
        starts_at=starts_at, ends_at=ends, updated_at=updated_at or starts_at)
