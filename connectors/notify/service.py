"""The notifier process (``ioc notify``; a child process of ``ioc run`` and ``ioc demo``).

One asyncio loop wires the pure :class:`~ioc.connectors.notify.engine.Dispatcher` to Kafka, the
channels and a small HTTP server:

- **start**: read the alert, ack and silence topics from the beginning and the history topic for
  ``history_lookback``; rebuild the dispatcher and the delivery ledger; finish interrupted
  deliveries; then follow the topics from where the reading stopped;
- **every ``evaluation_interval``**: ask the dispatcher what is due and send it;
- **HTTP** (``IOC_NOTIFY_HOST:IOC_NOTIFY_PORT``): ``GET /ack/<token>`` shows a Vietnamese
  confirmation page for a signed ack link, ``POST /ack/<token>`` records the ack (name and
  comment from the form); ``GET /api/alerts`` lists firing alerts with their acks (JSON);
  ``GET /healthz``.

Guarantee (see ``docs/notifications.md``): every transition is announced at least once, and a
transition already announced is not announced again after a restart, a rebalance or a replay.
The only duplicate possible is one delivery that was under way when the process died (the
remote side accepted it but its ``sent`` record had not reached Kafka): it is resent once,
with the same Message-ID / Idempotency-Key so receivers can drop it.
"""

from __future__ import annotations

import asyncio
import html
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

from ioc.connectors.notify import history
from ioc.connectors.notify.channels import build_channels, missing_secrets
from ioc.connectors.notify.config import NotifyConfig
from ioc.connectors.notify.deliveries import Delivery, Ledger
from ioc.connectors.notify.engine import Dispatcher, Notification
from ioc.connectors.notify.kafka_io import AsyncProducer, Follower, read_topics
from ioc.connectors.notify.model import domain_vi, local_time, severity_vi
from ioc.connectors.notify.sender import Contexts, Sender
from ioc.connectors.notify.tokens import TokenError, load_or_create_secret, verify
from ioc.infra.metrics import Metrics, serve
from ioc.infra.settings import Settings
from ioc.schemas.serde import Serde

log = logging.getLogger(__name__)

FOLLOWED = (history.ALERT_TOPIC, history.ACK_TOPIC, history.SILENCE_TOPIC)
PRUNE_EVERY = timedelta(minutes=10)
METRICS_OFFSET = 2
"""The notifier serves Prometheus metrics on ``IOC_METRICS_PORT + 2`` (worker +0, sink +1)."""


class Notifier:
    def __init__(self, settings: Settings, config: NotifyConfig, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 serde: Serde | None = None, registry: CollectorRegistry | None = None
                 ) -> None:
        self.settings = settings
        self.metrics = Metrics(registry or CollectorRegistry())
        self.config = config
        self.clock = clock
        self.serde = serde or Serde()
        self.dispatcher = Dispatcher(config, clock())
        self.ledger = Ledger()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.sent = 0
        self.failed = 0
        self.ready = asyncio.Event()
        self.port = 0
        from ioc.infra.reference import load_areas

        areas = load_areas(settings.reference_dir)
        self.area_name: Callable[[str], str] = lambda code: (
            areas[code].name_vi if code in areas else code)

    # -- writing ---------------------------------------------------------------------------------

    async def _record(self, events: list[dict[str, Any]]) -> None:
        for ev in events:
            await self.producer.send(history.TOPIC, ev, wait=False)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a notification task failed", exc_info=task.exception())

    def _on_outcome(self, n: Notification, d: Delivery, outcome: str) -> None:
        self.metrics.notification_deliveries.labels(d.channel, outcome).inc()
        if outcome == "sent":
            self.sent += 1
        else:
            self.failed += 1

    # -- start -----------------------------------------------------------------------------------

    async def start(self) -> None:
        for missing in missing_secrets(self.config, self.settings):
            log.warning("notifier: %s is not set", missing)
        self.secret = load_or_create_secret(self.settings)
        self.producer = AsyncProducer(self.settings, self.serde)
        now = self.clock()
        since = now - self.config.global_.history_lookback
        reads = await asyncio.to_thread(
            read_topics, self.settings, self.serde, (*FOLLOWED, history.TOPIC),
            {history.TOPIC: since})
        past = sorted(reads[history.TOPIC].records, key=lambda e: e["occurred_at"])
        self.dispatcher.restore(past)
        self.ledger.restore(past)
        self.ledger.forget_before(since)
        events: list[dict[str, Any]] = []
        for s in reads[history.SILENCE_TOPIC].records:
            events += self.dispatcher.observe_silence(s, replay=True)
        for a in reads[history.ACK_TOPIC].records:
            events += self.dispatcher.observe_ack(a, replay=True)
        for rec in reads[history.ALERT_TOPIC].records:
            events += self.dispatcher.observe_alert(rec, now, replay=True)
        await self._record(events)
        self.session: aiohttp.ClientSession | None = None
        base = (self.settings.notify_base_url if self.settings.notify_port
                or self.settings.notify_public_url else None)
        self.contexts = Contexts(self.config, base, self.secret, self.dispatcher.ack_of,
                                 self.area_name, self.clock)
        self.sender = Sender(self.config, build_channels(self.config, self.settings,
                                                         self._session),
                             self.ledger, self.producer, self.contexts,
                             base or "", self.clock, on_outcome=self._on_outcome)
        todo = self.ledger.unfinished(self.config)
        for n, d in todo.superseded:
            await self.sender.supersede(n, d)
        for n, ds in todo.resume:
            log.warning("resuming %d interrupted deliveries of notification %s", len(ds),
                        n.notification_id)
            self._spawn(self.sender.deliver(n, ds))
        for n, failed in todo.fallbacks:
            failures = [f"{k}: không gửi được" for k in failed]
            self._spawn(self.sender.fallback(n, failures))
        self.follower = Follower(self.settings, self.serde,
                                 {t: reads[t].positions for t in FOLLOWED})
        log.info("notifier: %d alerts, %d acks, %d silences, %d history records read; "
                 "%d groups", len(reads[history.ALERT_TOPIC].records),
                 len(reads[history.ACK_TOPIC].records),
                 len(reads[history.SILENCE_TOPIC].records), len(past),
                 len(self.dispatcher.groups))

    def _session(self) -> aiohttp.ClientSession:
        if self.session is None or self.session.closed:
            self.session = aiohttp.ClientSession()
        return self.session

    # -- loops -----------------------------------------------------------------------------------

    async def follow(self) -> None:
        while True:
            batch = await self.follower.next(0.3)
            now = self.clock()
            events: list[dict[str, Any]] = []
            for topic, rec in batch:
                if topic == history.ALERT_TOPIC:
                    events += self.dispatcher.observe_alert(rec, now)
                elif topic == history.ACK_TOPIC:
                    events += self.dispatcher.observe_ack(rec)
                else:
                    events += self.dispatcher.observe_silence(rec)
            await self._record(events)

    async def evaluate(self, flush_all: bool = False) -> int:
        notes, events = self.dispatcher.due(self.clock(), flush_all=flush_all)
        await self._record(events)
        for n in notes:
            self.metrics.notifications.labels(n.receiver, n.reason).inc()
            self._spawn(self.sender.send(n))
        return len(notes)

    async def tick(self) -> None:
        interval = self.config.global_.evaluation_interval.total_seconds()
        last_prune = self.clock()
        while True:
            await self.evaluate()
            now = self.clock()
            if now - last_prune >= PRUNE_EVERY:
                last_prune = now
                self.dispatcher.prune(now)
                self.ledger.forget_before(now - self.config.global_.history_lookback)
            await asyncio.sleep(interval)

    async def run(self, drain: Any = None, parent_pid: int | None = None) -> int:
        """Run until cancelled, or until ``drain`` (an Event-like with ``is_set``) is set:
        then catch up, send everything pending at once, wait for the deliveries and return."""
        await self.start()
        runner = await self._serve_http()
        loops = [asyncio.ensure_future(self.follow()), asyncio.ensure_future(self.tick())]
        self.ready.set()
        try:
            while True:
                await asyncio.sleep(0.5)
                if parent_pid is not None and os.getppid() != parent_pid:
                    log.warning("parent process is gone; the notifier exits")
                    return 3
                for task in loops:
                    if task.done():
                        task.result()  # a crashed loop stops the notifier (supervisor restarts)
                if drain is not None and drain.is_set():
                    await self._drain()
                    return 0
        finally:
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await self._close(runner)

    async def _drain(self, timeout: float = 120.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while await asyncio.to_thread(self.follower.lag) > 0:
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.3)
        await asyncio.sleep(0.6)  # let the follow loop take the last batch
        await self.evaluate(flush_all=True)
        while self.tasks and asyncio.get_running_loop().time() < deadline:
            await asyncio.wait(set(self.tasks), timeout=1.0)
        await self.producer.flush()

    async def _close(self, runner: web.AppRunner | None) -> None:
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=5.0)
        for task in list(self.tasks):
            task.cancel()
        if runner is not None:
            await runner.cleanup()
        if self.session is not None:
            await self.session.close()
        self.follower.close()
        await asyncio.to_thread(self.producer.close)

    # -- HTTP ------------------------------------------------------------------------------------

    async def _serve_http(self) -> web.AppRunner | None:
        if not self.settings.notify_port:
            return None
        app = web.Application()
        app.add_routes([web.get("/healthz", self._healthz),
                        web.get("/api/alerts", self._api_alerts),
                        web.get("/ack/{token}", self._ack_page),
                        web.post("/ack/{token}", self._ack_post)])
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.settings.notify_host, self.settings.notify_port)
        try:
            await site.start()
        except OSError as exc:  # notifications matter more than the ack page
            log.error("notifier HTTP server cannot listen on %s:%d (%s): ack links will not "
                      "work; use `ioc alerts ack`", self.settings.notify_host,
                      self.settings.notify_port, exc)
            await runner.cleanup()
            return None
        self.port = self.settings.notify_port
        log.info("notifier HTTP on http://%s:%d", self.settings.notify_host, self.port)
        return runner

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "groups": len(self.dispatcher.groups),
                                  "sent": self.sent, "failed": self.failed})

    async def _api_alerts(self, request: web.Request) -> web.Response:
        out = []
        for a in self.dispatcher.firing():
            ack = self.dispatcher.ack_of(a)
            out.append({"alert_id": a["alert_id"], "rule": a["rule"],
                        "severity": a["severity"], "domain": a["domain"],
                        "area_code": a["area_code"], "entity": a["entity"],
                        "summary": a["summary"], "starts_at": a["starts_at"].isoformat(),
                        "acked_by": ack["acked_by"] if ack else "",
                        "acked_at": ack["acked_at"].isoformat() if ack else None})
        return web.json_response(out, dumps=lambda o: history.dumps(o))

    def _claim(self, request: web.Request) -> Any:
        return verify(self.secret, request.match_info["token"], self.clock())

    async def _ack_page(self, request: web.Request) -> web.Response:
        try:
            claim = self._claim(request)
        except TokenError as exc:
            return _page("Không thể xác nhận", f"<p>{html.escape(str(exc))}.</p>",
                         status=410 if exc.reason == "expired" else 403)
        alert = self.dispatcher.alerts.get(claim.alert_id)
        body = _alert_block(alert, claim.starts_at, self.area_name)
        ack = self.dispatcher.acks.get(claim.alert_id)
        if ack is not None and ack["starts_at"] == claim.starts_at:
            body += (f"<p class=ok>Đã được xác nhận bởi <b>{html.escape(ack['acked_by'])}</b> "
                     f"lúc {local_time(ack['acked_at'])}"
                     + (f" — «{html.escape(ack['comment'])}»" if ack.get("comment") else "")
                     + ".</p>")
        if alert is None or alert["starts_at"] != claim.starts_at \
                or alert["status"] != "firing":
            body += "<p>Đợt cảnh báo này đã kết thúc; không cần xác nhận nữa.</p>"
            return _page("Cảnh báo đã kết thúc", body)
        person = self.config.people.get(claim.recipient)
        name = person.name if person else ""
        body += (
            "<form method=post><p><label>Họ và tên người nhận xử lý<br>"
            f"<input name=by value=\"{html.escape(name, quote=True)}\" required "
            "maxlength=120></label></p><p><label>Ghi chú (không bắt buộc)<br>"
            "<textarea name=comment rows=3 maxlength=1000></textarea></label></p>"
            "<p><button type=submit>Tôi nhận xử lý cảnh báo này</button></p></form>")
        return _page("Xác nhận xử lý cảnh báo", body)

    async def _ack_post(self, request: web.Request) -> web.Response:
        try:
            claim = self._claim(request)
        except TokenError as exc:
            return _page("Không thể xác nhận", f"<p>{html.escape(str(exc))}.</p>",
                         status=410 if exc.reason == "expired" else 403)
        form = await request.post()
        person = self.config.people.get(claim.recipient)
        by = str(form.get("by") or (person.name if person else claim.recipient)).strip()[:120]
        comment = str(form.get("comment") or "").strip()[:1000]
        alert = self.dispatcher.alerts.get(claim.alert_id)
        if alert is None or alert["starts_at"] != claim.starts_at:
            return _page("Cảnh báo đã kết thúc",
                         "<p>Đợt cảnh báo này đã kết thúc; không cần xác nhận nữa.</p>",
                         status=409)
        record = history.ack_record(claim.alert_id, claim.starts_at, by or claim.recipient, comment,
                            "link", self.clock(), self.dispatcher.acks.get(claim.alert_id))
        await self.producer.send(history.ACK_TOPIC, record)
        await self._record(self.dispatcher.observe_ack(record))
        body = _alert_block(alert, claim.starts_at, self.area_name) + (
            f"<p class=ok>Đã ghi nhận: <b>{html.escape(record['acked_by'])}</b> nhận xử lý lúc "
            f"{local_time(record['acked_at'])}. Cảnh báo sẽ không được chuyển lên cấp trên."
            "</p>")
        return _page("Đã xác nhận", body)


def _alert_block(alert: dict[str, Any] | None, starts_at: datetime,
                 area_name: Callable[[str], str]) -> str:
    if alert is None:
        return "<p>Không tìm thấy cảnh báo này.</p>"
    area = area_name(alert["area_code"]) if alert["area_code"] else "toàn tỉnh"
    status = "đang kích hoạt" if alert["status"] == "firing" else "đã kết thúc"
    return (f"<p class=sev-{html.escape(alert['severity'])}><b>"
            f"[{html.escape(severity_vi(alert['severity']))}]</b> "
            f"{html.escape(alert['summary'])}</p><p>Địa bàn: {html.escape(area)} · Lĩnh vực: "
            f"{html.escape(domain_vi(alert['domain']))} · Bắt đầu: "
            f"{local_time(starts_at)} · Trạng thái: {status}<br>Mã cảnh báo: "
            f"<code>{html.escape(alert['alert_id'])}</code></p>")


def _page(title: str, body: str, status: int = 200) -> web.Response:
    text = (
        "<!DOCTYPE html><html lang=vi><head><meta charset=utf-8>"
        "<meta name=viewport content=\"width=device-width, initial-scale=1\">"
        f"<title>{html.escape(title)} — IOC</title><style>"
        "body{font-family:Arial,Helvetica,sans-serif;max-width:640px;margin:24px auto;"
        "padding:0 12px;color:#222}.sev-critical b{color:#c62828}.sev-warning b{color:#ef6c00}"
        ".ok{color:#2e7d32}input,textarea{width:100%;font-size:16px}"
        "button{font-size:16px;padding:8px 16px;background:#1565c0;color:#fff;border:0;"
        "border-radius:4px}</style></head><body>"
        f"<h2>{html.escape(title)}</h2>{body}</body></html>")
    return web.Response(text=text, content_type="text/html", charset="utf-8", status=status)


def notify_main(settings: Settings, config_path: str, drain: Any = None, ready: Any = None,
                parent_pid: int | None = None) -> int:
    """Entry point of the notifier process (``ioc notify``, or a spawned child of ``ioc run``)."""
    from pathlib import Path

    from ioc.connectors.notify.config import load_config

    config = load_config(Path(config_path))

    async def main() -> int:
        registry = CollectorRegistry()
        if settings.metrics_port:
            try:
                serve(registry, settings.metrics_port + METRICS_OFFSET)
            except OSError as exc:
                log.warning("notifier metrics port %d unavailable: %s",
                            settings.metrics_port + METRICS_OFFSET, exc)
        notifier = Notifier(settings, config, registry=registry)
        runner = asyncio.ensure_future(notifier.run(drain, parent_pid))
        ready_wait = asyncio.ensure_future(notifier.ready.wait())
        await asyncio.wait({runner, ready_wait}, return_when=asyncio.FIRST_COMPLETED)
        if notifier.ready.is_set() and ready is not None:
            ready.set()
        ready_wait.cancel()
        return await runner

    return asyncio.run(main())
