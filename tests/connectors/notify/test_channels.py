"""Every channel against a real local server: SMTP (aiosmtpd with STARTTLS and AUTH), webhook,
Telegram Bot API and an SMS gateway (aiohttp); retries with backoff, and the fallback receiver
when a channel keeps failing. The sender writes its history to an in-memory writer that checks
the intent is recorded before anything is sent."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from notify_helpers import (
    SMTP_PASSWORD,
    SMTP_USER,
    T0,
    HttpServer,
    Request,
    SmtpServer,
    alert,
    make_cert,
)

from ioc.connectors.notify.channels import build_channels
from ioc.connectors.notify.config import NotifyConfig, parse_config
from ioc.connectors.notify.deliveries import Ledger
from ioc.connectors.notify.engine import Dispatcher, Notification
from ioc.connectors.notify.sender import Contexts, Sender
from ioc.connectors.notify.tokens import verify
from ioc.infra.reference import load_areas
from ioc.infra.settings import Secret, Settings

SECRET = b"khoa-ky-lien-ket-thu-nghiem"
WEBHOOK_SECRET = "bi-mat-webhook"  # noqa: S105
BOT_TOKEN = "123456:ABC-bot-token"  # noqa: S105
SMS_TOKEN = "sms-token-42"  # noqa: S105
AREAS = {code: a.name_vi for code, a in load_areas().items()}


@pytest.fixture(scope="module")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    cert, key = make_cert(tmp_path_factory.mktemp("tls"))
    server = SmtpServer(cert, key).start()
    server.cert = cert  # type: ignore[attr-defined]
    yield server
    server.stop()


def config_text(smtp: SmtpServer, webhook: str, telegram: str, sms: str) -> str:
    return f"""
version: 1
global:
  title: IOC Quảng Nam
  retry: {{attempts: 3, initial_backoff: 50ms, max_backoff: 200ms}}
people:
  an:   {{name: Nguyễn Văn An, email: an@ioc.quangnam.example}}
  binh: {{name: Trần Thị Bình, email: binh@sogtvt.quangnam.example, telegram: "1002",
          phone: "0905000102"}}
channels:
  email:
    type: email
    host: 127.0.0.1
    port: {smtp.port}
    starttls: true
    username: {SMTP_USER}
    from: "Trung tâm IOC Quảng Nam <{SMTP_USER}>"
    ca_file: {smtp.cert}  # type: ignore[attr-defined]
    timeout: 5s
  dieu-hanh: {{type: webhook, url: "{webhook}/hooks/ioc", timeout: 2s}}
  telegram: {{type: telegram, api_base: "{telegram}", timeout: 2s}}
  sms:
    type: http
    contact: phone
    url: "{sms}/api/send"
    secret: sms
    headers: {{Authorization: "Bearer ${{secret}}"}}
    body: {{to: "${{phone}}", message: "${{short}}"}}
receivers:
  ioc:       {{members: [an], via: [email]}}
  gt:        {{members: [binh], via: [email, telegram, sms], fallback: ioc}}
  dieu-hanh: {{members: [], via: [dieu-hanh], fallback: ioc}}
route:
  receiver: gt
  group_by: [domain, area_code]
""".replace("  # type: ignore[attr-defined]", "")


class Writer:
    """In-memory history; remembers the order of writes."""

    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = []

    async def send(self, topic: str, record: dict[str, Any], wait: bool = True) -> None:
        self.records.append((topic, record))

    def kinds(self) -> list[tuple[str, str, str]]:
        return [(r["kind"], r["channel"], r["outcome"]) for _, r in self.records]


def settings() -> Settings:
    return Settings(smtp_password=Secret(SMTP_PASSWORD), webhook_secret=Secret(WEBHOOK_SECRET),
                    telegram_bot_token=Secret(BOT_TOKEN),
                    notify_tokens=(("sms", Secret(SMS_TOKEN)),))


def notification(config: NotifyConfig, receiver: str) -> tuple[Notification, Dispatcher]:
    d = Dispatcher(config, T0)
    d.observe_alert(alert("TK-HV-01", severity="critical"), T0)
    d.observe_alert(alert("TK-PCT-01"), T0)
    notes, _ = d.due(T0 + timedelta(minutes=1))
    n = notes[0]
    n.receiver = receiver
    return n, d


async def send(config: NotifyConfig, n: Notification, d: Dispatcher, writer: Writer) -> Ledger:
    ledger = Ledger()
    async with aiohttp.ClientSession() as session:
        contexts = Contexts(config, "https://ioc.quangnam.example", SECRET, d.ack_of,
                            lambda c: AREAS.get(c, c), lambda: T0 + timedelta(minutes=1))
        sender = Sender(config, build_channels(config, settings(), lambda: session), ledger,
                        writer, contexts, "https://ioc.quangnam.example",
                        lambda: T0 + timedelta(minutes=1))
        await sender.send(n)
    return ledger


def test_email_telegram_and_sms_reach_the_roster_with_ack_links(smtp: SmtpServer) -> None:
    writer = Writer()
    seen_intent: list[bool] = []

    def telegram_answer(req: Request) -> tuple[int, Any]:
        seen_intent.append(any(r["kind"] == "notification" for _, r in writer.records))
        return 200, {"ok": True, "result": {"message_id": 7}}

    telegram = HttpServer(telegram_answer).start()
    sms = HttpServer(lambda r: (200, {"status": "queued"})).start()
    try:
        config = parse_config(config_text(smtp, "http://127.0.0.1:9", telegram.url, sms.url))
        n, d = notification(config, "gt")
        ledger = asyncio.run(send(config, n, d, writer))
    finally:
        telegram.stop()
        sms.stop()
    assert seen_intent == [True]  # the intent was recorded before the first send
    kinds = writer.kinds()
    assert kinds[0] == ("notification", "", "")
    assert sorted(kinds[1:]) == [("delivery", "email", "sent"), ("delivery", "sms", "sent"),
                                 ("delivery", "telegram", "sent")]
    assert ledger.unfinished(config).resume == []

    # email: STARTTLS + AUTH, one message with both alerts, Vietnamese subject and body
    assert SMTP_USER in smtp.logins
    mails = smtp.to("binh@sogtvt.quangnam.example")
    assert len(mails) == 1
    mail = mails[0]
    assert mail.mail_from == SMTP_USER
    assert mail.subject == ("[IOC Quảng Nam] NGHIÊM TRỌNG: 2 cảnh báo đang kích hoạt — "
                            "Giao thông — Thành phố Tam Kỳ")
    assert str(mail.message["To"]) == "Trần Thị Bình <binh@sogtvt.quangnam.example>"
    assert str(mail.message["Message-ID"]) == (
        f"<{n.notification_id}.binh@quangnam.example>")
    text, body_html = mail.part("plain"), mail.part("html")
    assert "Kính gửi đồng chí Trần Thị Bình" in text
    assert "1. [Nghiêm trọng] Ùn tắc kéo dài trên TK-HV-01" in text
    assert "2. [Cảnh báo] Ùn tắc kéo dài trên TK-PCT-01" in text
    assert "Địa bàn: Thành phố Tam Kỳ · Lĩnh vực: Giao thông" in text
    assert "Bắt đầu: 08:00 02/11/2026" in text
    assert "Tôi nhận xử lý" in body_html and "Trần Thị Bình" in body_html
    links = re.findall(r"Xác nhận xử lý: (\S+)", text)
    assert len(links) == 2
    claim = verify(SECRET, links[0].rsplit("/", 1)[1], T0 + timedelta(hours=1))
    assert (claim.alert_id, claim.starts_at, claim.recipient) == (
        n.alerts[0]["alert_id"], T0, "binh")

    # Telegram: Bot API sendMessage with the chat id and HTML text
    (tg,) = telegram.requests
    assert tg.path == f"/bot{BOT_TOKEN}/sendMessage"
    body = tg.json()
    assert body["chat_id"] == "1002" and body["parse_mode"] == "HTML"
    assert "<b>[IOC Quảng Nam] NGHIÊM TRỌNG" in body["text"]
    assert "Tôi nhận xử lý" in body["text"]

    # SMS gateway: the template filled in, the token from the settings
    (req,) = sms.requests
    assert req.headers["Authorization"] == f"Bearer {SMS_TOKEN}"
    sent = req.json()
    assert sent["to"] == "0905000102"
    assert sent["message"].startswith("IOC Quảng Nam NGHIÊM TRỌNG: Ùn tắc kéo dài trên "
                                      "TK-HV-01")
    assert "(+1 cảnh báo khác) Xác nhận: https://ioc.quangnam.example/ack/" in sent["message"]
    # no secret in the history
    assert all(BOT_TOKEN not in json.dumps(r, default=str) and SMS_TOKEN not in
               json.dumps(r, default=str) for _, r in writer.records)


def test_webhook_payload_is_alertmanager_v4_and_signed_and_retried(smtp: SmtpServer) -> None:
    calls: list[int] = []

    def flaky(req: Request) -> tuple[int, Any]:
        calls.append(1)
        return (503, {"error": "bận"}) if len(calls) < 3 else (200, {"ok": True})

    hook = HttpServer(flaky).start()
    writer = Writer()
    try:
        config = parse_config(config_text(smtp, hook.url, "http://127.0.0.1:9",
                                          "http://127.0.0.1:9"))
        n, d = notification(config, "dieu-hanh")
        asyncio.run(send(config, n, d, writer))
    finally:
        hook.stop()
    assert writer.kinds() == [("notification", "", ""), ("delivery", "dieu-hanh", "failed"),
                              ("delivery", "dieu-hanh", "failed"),
                              ("delivery", "dieu-hanh", "sent")]
    assert [r["attempt"] for _, r in writer.records[1:]] == [1, 2, 3]
    assert len({r.body for r in hook.requests}) == 1  # the same payload each time
    req = hook.requests[-1]
    assert req.path == "/hooks/ioc"
    expected = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(),
                                    req.headers["X-IOC-Timestamp"].encode() + b"." + req.body,
                                    hashlib.sha256).hexdigest()
    assert req.headers["X-IOC-Signature"] == expected
    assert req.headers["Idempotency-Key"] == f"{n.notification_id}:dieu-hanh"
    p = req.json()
    assert (p["version"], p["status"], p["receiver"], p["truncatedAlerts"]) == (
        "4", "firing", "dieu-hanh", 0)
    assert p["groupKey"] == 'route{area_code="502",domain="traffic"}'
    assert p["groupLabels"] == {"area_code": "502", "domain": "traffic"}
    assert p["commonLabels"] == {"alertname": "traffic.congestion", "rule": "traffic.congestion",
                                 "domain": "traffic", "area_code": "502"}
    first = p["alerts"][0]
    assert first["status"] == "firing" and first["endsAt"] == "0001-01-01T00:00:00Z"
    assert first["startsAt"] == "2026-11-02T01:00:00.000Z"
    assert first["labels"]["severity"] == "critical"
    assert first["fingerprint"] == n.alerts[0]["alert_id"]
    assert first["annotations"]["area_name"] == "Thành phố Tam Kỳ"
    assert first["annotations"]["ack_url"].startswith("https://ioc.quangnam.example/ack/")
    assert p["ioc"]["notificationId"] == n.notification_id


def test_a_channel_that_keeps_failing_falls_back_to_another_receiver(smtp: SmtpServer
                                                                     ) -> None:
    hook = HttpServer(lambda r: (500, {"error": "hỏng"})).start()
    writer = Writer()
    before = len(smtp.to("an@ioc.quangnam.example"))
    try:
        config = parse_config(config_text(smtp, hook.url, "http://127.0.0.1:9",
                                          "http://127.0.0.1:9"))
        n, d = notification(config, "dieu-hanh")
        ledger = asyncio.run(send(config, n, d, writer))
    finally:
        hook.stop()
    assert len(hook.requests) == 3  # attempts
    kinds = writer.kinds()
    assert kinds[:4] == [("notification", "", ""), ("delivery", "dieu-hanh", "failed"),
                         ("delivery", "dieu-hanh", "failed"),
                         ("delivery", "dieu-hanh", "gave_up")]
    assert kinds[4:] == [("notification", "", ""), ("delivery", "email", "sent")]
    fallback = writer.records[4][1]
    assert (fallback["reason"], fallback["receiver"]) == ("fallback", "ioc")
    assert fallback["notification_id"] == Ledger.fallback_id(n.notification_id)
    assert "HTTP 500" in fallback["detail"]
    mails = smtp.to("an@ioc.quangnam.example")[before:]
    assert len(mails) == 1
    assert mails[0].subject.startswith("[IOC Quảng Nam] CHUYỂN TIẾP – NGHIÊM TRỌNG")
    assert "không gửi được thông báo tới tổ trực «dieu-hanh»" in mails[0].part("plain")
    assert ledger.unfinished(config).fallbacks == []  # owed nothing


def test_smtp_temporary_refusal_is_retried(smtp: SmtpServer) -> None:
    writer = Writer()
    smtp.fail_next = 1
    before = len(smtp.to("an@ioc.quangnam.example"))
    config = parse_config(config_text(smtp, "http://127.0.0.1:9", "http://127.0.0.1:9",
                                      "http://127.0.0.1:9"))
    n, d = notification(config, "ioc")
    asyncio.run(send(config, n, d, writer))
    assert writer.kinds() == [("notification", "", ""), ("delivery", "email", "failed"),
                              ("delivery", "email", "sent")]
    assert "SMTP 451" in writer.records[1][1]["detail"]
    assert len(smtp.to("an@ioc.quangnam.example")) == before + 1


def test_telegram_429_waits_retry_after_then_sends(smtp: SmtpServer, tmp_path: Path) -> None:
    answers = [(429, {"ok": False, "description": "Too Many Requests: retry after 1",
                      "parameters": {"retry_after": 0.1}}),
               (200, {"ok": True, "result": {"message_id": 8}})]
    telegram = HttpServer(lambda r: answers.pop(0)).start()
    writer = Writer()
    try:
        text = config_text(smtp, "http://127.0.0.1:9", telegram.url, "http://127.0.0.1:9")
        text = text.replace("via: [email, telegram, sms]", "via: [telegram]")
        config = parse_config(text)
        n, d = notification(config, "gt")
        start = datetime.now()  # noqa: DTZ005 - measuring a wait
        asyncio.run(send(config, n, d, writer))
        waited = (datetime.now() - start).total_seconds()  # noqa: DTZ005
    finally:
        telegram.stop()
    assert writer.kinds() == [("notification", "", ""), ("delivery", "telegram", "failed"),
                              ("delivery", "telegram", "sent")]
    assert waited >= 0.1
    assert "Too Many Requests" in writer.records[1][1]["detail"]
