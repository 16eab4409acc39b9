"""Alert notifications end to end through the real broker: the real ``ioc notify`` process,
``ioc alerts`` commands, a real SMTP server (STARTTLS + AUTH) and a real webhook receiver in the
test process. Alerts are produced to ``ioc.alert.v1`` as the stream worker would; the last test
takes a congestion alert from the real worker (``ioc run``) to a duty officer's mailbox and the
notifier's history into ClickHouse.

Timings are short (group wait 1 s, escalation after 6 s and 20 s) so the whole file runs in about
a minute and a half.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from notify_helpers import (
    SMTP_PASSWORD,
    SMTP_USER,
    HttpServer,
    Mail,
    SmtpServer,
    alert,
    free_port,
    make_cert,
)
from pipeline import Pipeline

from ioc.connectors.notify.kafka_io import read_topics
from ioc.connectors.producer import EventProducer, make_producer
from ioc.infra.runtime import ensure_topics
from ioc.infra.settings import Settings
from ioc.schemas.serde import Serde
from ioc.streams.rules import alert_fingerprint

IOC = str(Path(sys.executable).parent / "ioc")
WEBHOOK_SECRET = "bi-mat-webhook-e2e"  # noqa: S105
BINH, CUONG, DUC = ("binh@sogtvt.quangnam.example", "cuong@sogtvt.quangnam.example",
                    "duc@sogtvt.quangnam.example")


def routes(smtp: SmtpServer, cert: Path, webhook: str) -> str:
    return f"""
version: 1
global:
  title: IOC Quảng Nam
  evaluation_interval: 200ms
  retry: {{attempts: 2, initial_backoff: 100ms, max_backoff: 200ms}}
people:
  binh:  {{name: Trần Thị Bình, email: {BINH}}}
  cuong: {{name: Lê Văn Cường, email: {CUONG}}}
  duc:   {{name: Phạm Minh Đức, email: {DUC}}}
channels:
  email:
    type: email
    host: 127.0.0.1
    port: {smtp.port}
    starttls: true
    username: {SMTP_USER}
    from: "Trung tâm IOC Quảng Nam <{SMTP_USER}>"
    ca_file: {cert}
  dieu-hanh: {{type: webhook, url: "{webhook}/hooks/ioc", timeout: 10s}}
receivers:
  truc-giao-thong: {{members: [binh], via: [email, dieu-hanh]}}
  truong-ca:       {{members: [cuong], via: [email]}}
  lanh-dao:        {{members: [duc], via: [email]}}
route:
  receiver: truc-giao-thong
  group_by: [domain, area_code]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 5m
  routes:
    - name: giao-thong
      match: {{domain: traffic}}
      escalation:
        - {{after: 6s, receiver: truong-ca}}
        - {{after: 20s, receiver: lanh-dao}}
inhibit_rules:
  - {{source: {{severity: critical}}, target: {{severity: warning}}, equal: [entity]}}
"""


@pytest.fixture(scope="module")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    cert, key = make_cert(tmp_path_factory.mktemp("tls"))
    server = SmtpServer(cert, key).start()
    server.cert = cert  # type: ignore[attr-defined]
    yield server
    server.stop()


class Notifier:
    """``ioc notify`` in a subprocess, with its own topics and data dir."""

    def __init__(self, bootstrap: str, tmp: Path, smtp: SmtpServer, webhook: HttpServer
                 ) -> None:
        self.prefix = f"n{uuid.uuid4().hex[:8]}."
        self.port = free_port()
        config = tmp / "routes.yaml"
        config.write_text(routes(smtp, smtp.cert, webhook.url),  # type: ignore[attr-defined]
                          encoding="utf-8")
        self.env = dict(os.environ)
        self.env.update({
            "IOC_KAFKA_BOOTSTRAP": bootstrap, "IOC_TOPIC_PREFIX": self.prefix,
            "IOC_DATA_DIR": str(tmp / "var"), "IOC_METRICS_PORT": "0",
            "IOC_NOTIFY_CONFIG": str(config), "IOC_NOTIFY_PORT": str(self.port),
            "IOC_SMTP_PASSWORD": SMTP_PASSWORD, "IOC_WEBHOOK_SECRET": WEBHOOK_SECRET})
        self.settings = Settings(kafka_bootstrap=bootstrap, topic_prefix=self.prefix,
                                 topic_partitions=2)
        ensure_topics(self.settings)
        self.producer = EventProducer(make_producer(bootstrap),
                                      topic_name=self.settings.topic)
        self.proc: subprocess.Popen[str] | None = None
        self.log = tmp / "notify.log"

    def start(self) -> None:
        out = self.log.open("a", encoding="utf-8")
        self.proc = subprocess.Popen([IOC, "notify", "-v"], env=self.env, stdout=out,
                                     stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        wait_for(lambda: self._healthy(), 60, "the notifier's /healthz", self)

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"ioc notify exited {self.proc.returncode}:\n{self.logs()}")
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as resp:  # noqa: S310
                return bool(resp.status == 200)
        except OSError:
            return False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def logs(self) -> str:
        return self.log.read_text(encoding="utf-8")[-5000:] if self.log.exists() else ""

    def send(self, *alerts: dict[str, Any]) -> None:
        for a in alerts:
            self.producer.send("ioc.alert.v1", a)
        self.producer.flush(30)

    def outcomes(self, alert: dict[str, Any]) -> set[tuple[str, str]]:
        """(channel, outcome) of every delivery about ``alert`` recorded in the history topic."""
        events = read_topics(self.settings, Serde(), ["ioc.alert_event.v1"])
        return {(ev["channel"], ev["outcome"]) for ev in events["ioc.alert_event.v1"].records
                if ev["kind"] == "delivery"
                and any(k.startswith(alert["alert_id"] + "|") for k in ev["alert_keys"])}

    def ioc(self, *args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([IOC, *args], env=self.env, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, f"ioc {args} exited {proc.returncode}:\n{proc.stderr}"
        return proc


def wait_for(check: Callable[[], Any], timeout: float, what: str,
             notifier: Notifier | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}"
                         + (f"\n{notifier.logs()}" if notifier else ""))


def mails(smtp: SmtpServer, to: str, since: int = 0) -> list[Mail]:
    return smtp.to(to)[since:]


def http(url: str, data: dict[str, str] | None = None) -> tuple[int, str]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body),  # noqa: S310
                                    timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def now_ms() -> datetime:
    t = datetime.now(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


@pytest.fixture
def hook() -> Iterator[HttpServer]:
    server = HttpServer().start()
    yield server
    server.stop()


@pytest.fixture
def notifier(kafka_broker: str, tmp_path: Path, smtp: SmtpServer, hook: HttpServer
             ) -> Iterator[Notifier]:
    n = Notifier(kafka_broker, tmp_path, smtp, hook)
    yield n
    n.stop()


def test_group_escalate_ack_resolve_silence_and_inhibit(notifier: Notifier, smtp: SmtpServer,
                                                        hook: HttpServer) -> None:
    seen = {addr: len(smtp.to(addr)) for addr in (BINH, CUONG, DUC)}
    t0 = now_ms() - timedelta(minutes=10)
    a = alert("TK-HV-01", starts_at=t0)                      # congestion, warning
    b = alert("TK-PCT-01", severity="critical", rule="traffic.critical_incident",
              starts_at=t0)                                  # a critical incident …
    c = alert("TK-PCT-01", starts_at=t0)                     # … mutes congestion there
    notifier.start()
    notifier.send(a, b, c)

    # one grouped notification: both unmuted alerts, by email and webhook
    first = wait_for(lambda: mails(smtp, BINH, seen[BINH]), 20, "the first email", notifier)
    first_at = time.monotonic()
    time.sleep(1.5)  # nothing else may follow (no storm, no duplicate)
    assert len(mails(smtp, BINH, seen[BINH])) == 1
    mail = first[0]
    assert mail.subject == ("[IOC Quảng Nam] NGHIÊM TRỌNG: 2 cảnh báo đang kích hoạt — "
                            "Giao thông — Thành phố Tam Kỳ")
    text = mail.part("plain")
    assert "Kính gửi đồng chí Trần Thị Bình" in text
    assert text.count("Ùn tắc kéo dài trên TK-PCT-01") == 1  # b's summary; c is inhibited
    assert b["alert_id"] in text and a["alert_id"] in text and c["alert_id"] not in text
    (payload,) = [r.json() for r in hook.requests]
    assert payload["version"] == "4" and len(payload["alerts"]) == 2
    assert {x["fingerprint"] for x in payload["alerts"]} == {a["alert_id"], b["alert_id"]}

    # the ack link of alert a: a Vietnamese confirmation page, then the ack
    links = dict(re.findall(r"Mã cảnh báo: (\w+)\s+Xác nhận xử lý: (\S+)", text))
    link = links[a["alert_id"]]
    status, page = http(link)
    assert status == 200 and "Xác nhận xử lý cảnh báo" in page
    assert 'value="Trần Thị Bình"' in page and "Tôi nhận xử lý cảnh báo này" in page
    status, page = http(link, {"by": "Trần Thị Bình", "comment": "Đã cử CSGT điều tiết"})
    assert status == 200 and "Đã ghi nhận" in page
    status, page = http(link.replace("/ack/", "/ack/x"))
    assert status == 403

    # 6 s after the first notification: level 1 hears of b only (a was acknowledged)
    escalated = wait_for(lambda: mails(smtp, CUONG, seen[CUONG]), 20, "the escalation",
                         notifier)
    esc = escalated[0]
    assert esc.subject.startswith("[IOC Quảng Nam] LEO THANG CẤP 1 – NGHIÊM TRỌNG:")
    esc_text = esc.part("plain")
    assert b["alert_id"] in esc_text and a["alert_id"] not in esc_text
    assert "chưa được ai xác nhận xử lý sau 6 giây" in esc_text

    # the shift lead takes b on from the command line: no level 2
    out = notifier.ioc("alerts", "ack", b["alert_id"][:10], "--by", "Lê Văn Cường",
                       "--comment", "Đã điều xe cứu hộ").stdout
    assert f"Đã ghi nhận: Lê Văn Cường nhận xử lý cảnh báo {b['alert_id']}" in out
    listed = notifier.ioc("alerts", "list").stdout
    assert listed.startswith("Cảnh báo đang kích hoạt: 3 (1 nghiêm trọng, 2 khác; "
                             "1 chưa xác nhận)")
    assert "Đã xác nhận: Trần Thị Bình" in listed and "Đã xác nhận: Lê Văn Cường" in listed

    # meanwhile a silence made with the CLI keeps a new alert quiet
    out = notifier.ioc("alerts", "silence", "add", 'entity="HA-01"', "--by", "Ngô Văn Khánh",
                       "--comment", "Bảo trì camera", "--duration", "1h").stdout
    assert out.startswith("Đã tạo im lặng ") and 'entity="HA-01"' in out
    silence_id = out.split()[4].rstrip(":")
    time.sleep(1.0)  # the notifier reads the silence before the alert
    d = alert("HA-01", area="503", starts_at=now_ms())
    notifier.send(d)
    time.sleep(3.0)
    assert len(mails(smtp, BINH, seen[BINH])) == 1
    silences = notifier.ioc("alerts", "silence", "list").stdout
    assert silences.startswith("Im lặng: 1 đang hiệu lực")
    assert "Đang chặn thông báo của 1 cảnh báo đang kích hoạt." in silences

    # past the level-2 timeout with b still firing: nobody at level 2 is told (b was acked)
    time.sleep(max(0.0, first_at + 21.0 - time.monotonic()))
    assert [m.part("plain") for m in mails(smtp, DUC, seen[DUC])] == [], notifier.logs()

    # a resolves, c resolves while muted (quietly), then b resolves
    notifier.send(dict(a, status="resolved", ends_at=now_ms(), updated_at=now_ms()),
                  dict(c, status="resolved", ends_at=now_ms(), updated_at=now_ms()))
    wait_for(lambda: len(mails(smtp, BINH, seen[BINH])) >= 2, 20, "a's resolve", notifier)
    notifier.send(dict(b, status="resolved", ends_at=now_ms(), updated_at=now_ms()))
    wait_for(lambda: len(mails(smtp, BINH, seen[BINH])) >= 3, 20, "b's resolve", notifier)
    wait_for(lambda: len(mails(smtp, CUONG, seen[CUONG])) >= 2, 20, "b's resolve to level 1",
             notifier)
    to_binh = mails(smtp, BINH, seen[BINH])
    assert [m.subject.split(":")[0] for m in to_binh] == [
        "[IOC Quảng Nam] NGHIÊM TRỌNG", "[IOC Quảng Nam] NGHIÊM TRỌNG",
        "[IOC Quảng Nam] ĐÃ KẾT THÚC"]
    assert "ĐÃ KẾT THÚC (1):" in to_binh[1].part("plain")
    assert c["alert_id"] not in to_binh[1].part("plain") + to_binh[2].part("plain")
    assert mails(smtp, CUONG, seen[CUONG])[1].subject.startswith(
        "[IOC Quảng Nam] ĐÃ KẾT THÚC: Ùn tắc kéo dài trên TK-PCT-01")
    # nothing repeated before repeat_interval
    assert not any("NHẮC LẠI" in m.subject for m in smtp.mails)

    shown = notifier.ioc("alerts", "show", d["alert_id"]).stdout
    assert f"Không gửi (đang im lặng: {silence_id})" in shown
    shown = notifier.ioc("alerts", "show", b["alert_id"]).stdout
    assert "Xác nhận bởi Lê Văn Cường: Đã điều xe cứu hộ" in shown
    assert "Thông báo leo thang → truong-ca (cấp 1)" in shown
    assert "✓ đã gửi qua email → Lê Văn Cường <cuong@sogtvt.quangnam.example>" in shown
    assert "Kết thúc (Nghiêm trọng)" in shown

    # expiring the silence lets the alert through
    notifier.ioc("alerts", "silence", "expire", silence_id, "--by", "Ngô Văn Khánh")
    wait_for(lambda: len(mails(smtp, BINH, seen[BINH])) >= 4, 20, "d after the silence",
             notifier)
    assert d["alert_id"] in mails(smtp, BINH, seen[BINH])[3].part("plain")


def test_sigkill_and_restart_lose_nothing_and_repeat_nothing(
        notifier: Notifier, smtp: SmtpServer, hook: HttpServer) -> None:
    seen = len(smtp.to(BINH))
    t0 = now_ms() - timedelta(minutes=5)
    e = alert("TK-HV-02", starts_at=t0)
    notifier.start()
    notifier.send(e)
    wait_for(lambda: mails(smtp, BINH, seen), 20, "the first email", notifier)
    wait_for(lambda: {("email", "sent"), ("dieu-hanh", "sent")} <= notifier.outcomes(e),
             30, "both outcomes recorded in Kafka", notifier)
    notifier.kill()

    # while it is down: the worker replays e, a new alert f fires, e resolves
    f = alert("TK-HV-03", starts_at=now_ms())
    notifier.send(e, f, dict(e, status="resolved", ends_at=now_ms(), updated_at=now_ms()))
    notifier.start()
    wait_for(lambda: len(mails(smtp, BINH, seen)) >= 2, 20, "the news after the restart",
             notifier)
    time.sleep(2.0)
    got = mails(smtp, BINH, seen)
    assert len(got) == 2  # e firing (before), then f firing + e resolved; no repeat of e
    text = got[1].part("plain")
    assert "ĐANG KÍCH HOẠT (1):" in text and f["alert_id"] in text
    assert "ĐÃ KẾT THÚC (1):" in text and e["alert_id"] in text
    assert len(hook.requests) == 2

    # killed while a delivery is under way: resent once, with the same idempotency key
    hook.delay = 8.0
    g = alert("TK-HV-04", starts_at=now_ms())
    notifier.send(g)
    wait_for(lambda: len(hook.requests) >= 3, 20, "g's webhook (slow receiver)", notifier)
    wait_for(lambda: ("email", "sent") in notifier.outcomes(g), 20, "g's email recorded",
             notifier)
    assert ("dieu-hanh", "sent") not in notifier.outcomes(g)
    notifier.kill()  # the webhook call is still waiting for its answer
    hook.delay = 0.0
    notifier.start()
    wait_for(lambda: len(hook.requests) >= 4, 20, "the resumed webhook", notifier)
    time.sleep(2.0)
    keys = [r.headers["Idempotency-Key"] for r in hook.requests]
    assert len(keys) == 4 and keys[2] == keys[3]  # the same notification, resent once
    assert len(mails(smtp, BINH, seen)) == 3  # the email had been recorded as sent


FLOW = "ioc.traffic.flow.v1"


def slow_traffic(t0: datetime) -> list[dict[str, Any]]:
    """TK-HV-01 (free flow 40 km/h) at 10 km/h from t0+5m on: congestion 0.75 in the 5m
    windows t0+5m and t0+10m → the congestion alert fires at t0+15m and stays firing. (Recent
    times: a firing record older than max_alert_age would page nobody.)"""
    events = []
    for m in range(23):
        events.append({"event_id": f"hv-{m}", "occurred_at": t0 + timedelta(minutes=m, seconds=30),
                       "source": "SGTVT-QNA", "area_code": "502", "segment_id": "TK-HV-01",
                       "vehicle_count": 12, "avg_speed_kmh": 30.0 if m < 5 else 10.0,
                       "occupancy": 0.3})
    return events


def test_a_congestion_alert_from_the_worker_reaches_the_duty_officer(
        pipeline: Pipeline, smtp: SmtpServer, hook: HttpServer, tmp_path: Path) -> None:
    config = tmp_path / "routes.yaml"
    config.write_text(routes(smtp, smtp.cert, hook.url),  # type: ignore[attr-defined]
                      encoding="utf-8")
    pipeline.env.update({"IOC_NOTIFY_CONFIG": str(config), "IOC_NOTIFY_PORT": str(free_port()),
                         "IOC_SMTP_PASSWORD": SMTP_PASSWORD,
                         "IOC_WEBHOOK_SECRET": WEBHOOK_SECRET})
    seen = len(smtp.to(BINH))
    now = datetime.now(UTC)
    t0 = now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0) \
        - timedelta(minutes=30)
    pipeline.send(FLOW, slow_traffic(t0))
    log = tmp_path / "run.log"
    with log.open("w", encoding="utf-8") as out:
        running = subprocess.Popen([IOC, "run"], env=pipeline.env, stdout=out,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
    alert_id = alert_fingerprint("traffic.congestion", {"segment_id": "TK-HV-01"})
    try:
        got = wait_for(lambda: mails(smtp, BINH, seen), 180, "the congestion email")
        assert got[0].subject.startswith("[IOC Quảng Nam] CẢNH BÁO: Ùn tắc kéo dài trên "
                                         "Đường Hùng Vương")
        assert alert_id in got[0].part("plain")
        # the duty officer acknowledges from the command line while `ioc run` runs
        ack = subprocess.run([IOC, "alerts", "ack", alert_id[:8], "--by", "Trần Thị Bình",
                              "--comment", "Đã phân luồng"], env=pipeline.env,
                             capture_output=True, text=True, timeout=60)
        assert ack.returncode == 0, ack.stderr
        wait_for(lambda: "Xác nhận bởi Trần Thị Bình: Đã phân luồng" in subprocess.run(
            [IOC, "alerts", "show", alert_id], env=pipeline.env, capture_output=True,
            text=True, timeout=60).stdout, 60, "the notifier's record of the ack")
        # the sink stored everything the notifier and the CLI wrote
        wait_for(lambda: all(
            pipeline.committed("ioc-sink", t) == pipeline.high_watermark(t)
            for t in ("ioc.alert_event.v1", "ioc.alert_ack.v1")), 60, "the sink")
        assert len(mails(smtp, BINH, seen)) == 1
        assert "notifier: routing from" in log.read_text(encoding="utf-8")
    finally:
        pipeline.kill(running)
    rows = pipeline.query(
        events="SELECT kind, reason, receiver, channel, outcome, actor FROM ioc.alert_events "
               "FINAL ORDER BY occurred_at, kind, channel",
        acks="SELECT alert_id, toString(starts_at) AS starts, acked_by, comment, via "
             "FROM ioc.alert_acks FINAL")
    kinds = [(r["kind"], r["reason"], r["channel"], r["outcome"]) for r in rows["events"]]
    assert ("alert_firing", "", "", "") in kinds
    assert ("notification", "new", "", "") in kinds
    assert ("delivery", "new", "email", "sent") in kinds
    assert ("delivery", "new", "dieu-hanh", "sent") in kinds
    assert ("acked", "cli", "", "") in kinds
    # one notification for the transition (escalations may follow it if the ack came after
    # their timeouts on this busy machine)
    assert sum(k[:2] == ("notification", "new") for k in kinds) == 1
    starts = (t0 + timedelta(minutes=15)).strftime("%Y-%m-%d %H:%M:%S.000")
    assert rows["acks"] == [{"alert_id": alert_id, "starts": starts,
                             "acked_by": "Trần Thị Bình", "comment": "Đã phân luồng",
                             "via": "cli"}]
    script = r"""
import json, sys
from datetime import datetime
from ioc.connectors.clickhouse import connect
from ioc.dashboards.build import render_dict
from ioc.dashboards.testing import problems, run_panel_queries
client = connect(sys.argv[1])
board = render_dict("alerts_board")
res = run_panel_queries(client, "ioc", board, datetime.fromisoformat(sys.argv[2]),
                        datetime.fromisoformat(sys.argv[3]), strict=False)
print(json.dumps({"problems": problems(board, res, require_rows=False),
                  "rows": {t: len(r.rows) for t, r in res.items()}}, ensure_ascii=False))
"""
    end = datetime.now(UTC) + timedelta(minutes=1)
    proc = subprocess.run([sys.executable, "-c", script, pipeline.clickhouse_url,
                           (end - timedelta(days=400)).isoformat(), end.isoformat()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["problems"] == {}
    assert result["rows"]["Cảnh báo đang bật và người nhận xử lý"] == 1
