"""The routing config: the shipped examples are valid, mistakes are reported with file:line,
routing follows Alertmanager's tree semantics, and ack links are signed and expire."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from notify_helpers import CONFIG

from ioc.connectors.notify.config import ConfigError, load_config, parse_config
from ioc.connectors.notify.model import Matcher, duration_vi, parse_duration
from ioc.connectors.notify.tokens import AckClaim, TokenError, load_or_create_secret, sign, verify
from ioc.infra.settings import Secret, Settings

NOTIFY_DIR = Path(__file__).resolve().parents[3] / "infra" / "notify"
IOC = str(Path(sys.executable).parent / "ioc")


@pytest.mark.parametrize("name", ["routes.example.yaml", "routes.demo.yaml"])
def test_shipped_configs_are_valid(name: str) -> None:
    config = load_config(NOTIFY_DIR / name)
    assert config.version == 1
    for route in config.route.walk():
        assert route.receiver in config.receivers
        for level in route.escalation:
            assert level.receiver in config.receivers


def test_example_routes_a_critical_traffic_alert_to_sms_and_the_traffic_desk() -> None:
    config = load_config(NOTIFY_DIR / "routes.example.yaml")
    labels = {"domain": "traffic", "severity": "critical", "area_code": "502",
              "rule": "traffic.congestion", "entity": "TK-HV-01", "alert_id": "x",
              "status": "firing"}
    routes = config.route.match(labels)
    assert [(r.id, r.receiver) for r in routes] == [
        ("nghiem-trong-lanh-dao", "lanh-dao-ioc-sms"),  # continue: true
        ("giao-thong-nghiem-trong", "truc-giao-thong")]  # nested, inherits escalation
    assert [lv.receiver for lv in routes[1].escalation] == ["truong-ca-giao-thong",
                                                            "lanh-dao-so-gtvt"]
    assert routes[1].group_wait == timedelta(seconds=10)
    assert routes[1].repeat_interval == timedelta(hours=1)
    assert routes[1].group_by == ("domain", "area_code")  # inherited
    warning = dict(labels, severity="warning")
    assert [r.id for r in config.route.match(warning)] == ["giao-thong"]
    hoi_an = dict(labels, domain="egov", severity="warning", area_code="503")
    assert [r.id for r in config.route.match(hoi_an)] == ["do-thi-trung-tam"]
    elsewhere = dict(hoi_an, area_code="510")
    assert [r.id for r in config.route.match(elsewhere)] == ["route"]  # the default route


def test_every_mistake_is_reported_with_its_line() -> None:
    text = """version: 1
people:
  an: {name: Nguyễn Văn An, phone: +84905000101}
channels:
  email: {type: email, host: smtp.x, from: ioc@x, prot: 25}
  sms: {type: http, contact: phone, url: ftp://x, body: {to: "${sdt}"}}
receivers:
  gt: {members: [an, binh], via: [email, pager]}
route:
  receiver: gt
  group_wait: 30 giây
  routes:
    - match: {quan: "502"}
      receiver: nobody
      escalation:
        - {after: 15m, receiver: gt}
        - {after: 10m, receiver: gt}
"""
    with pytest.raises(ConfigError) as info:
        parse_config(text, "routes.yaml")
    problems = info.value.problems
    expected = [
        "routes.yaml:3: people.an.phone: 84905000101 was read as a number; put it in quotes",
        "routes.yaml:5: channels.email: unknown key 'prot'",
        "routes.yaml:6: channels.sms.url: must start with http:// or https://",
        "routes.yaml:6: channels.sms: unknown placeholder ${sdt}",
        "routes.yaml:8: receivers.gt.members: unknown person 'binh'",
        "routes.yaml:8: receivers.gt.via: unknown channel 'pager'",
        "routes.yaml:11: route.group_wait: not a duration: '30 giây'",
        "routes.yaml:13: route.routes[0].match: unknown label 'quan'",
        "routes.yaml:14: route.routes[0].receiver: unknown receiver 'nobody'",
        "routes.yaml:17: route.routes[0].escalation[2].after: levels must come later and later",
    ]
    for want in expected:
        assert any(p.startswith(want) for p in problems), (want, problems)
    assert len(problems) == len(expected), problems


def test_yaml_syntax_errors_and_missing_files_say_where() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("version: 1\nroute: {receiver: [\n", "r.yaml")
    assert info.value.problems[0].startswith("r.yaml:3: invalid YAML")
    with pytest.raises(ConfigError) as info:
        parse_config("version: 1\nversion: 2\n", "r.yaml")
    assert "duplicate key 'version'" in info.value.problems[0]
    with pytest.raises(ConfigError) as info:
        parse_config(CONFIG.replace("version: 1", "version: 2"), "r.yaml")
    assert info.value.problems == ["r.yaml:2: version: this notifier reads version 1, the "
                                   "file says 2"]
    with pytest.raises(ConfigError) as info:
        load_config(Path("/nonexistent/routes.yaml"))
    assert "cannot read the notification config" in str(info.value)


def test_ioc_notify_check_prints_the_tree_or_the_errors(tmp_path: Path) -> None:
    ok = subprocess.run([IOC, "notify", "--check", "--config",
                         str(NOTIFY_DIR / "routes.example.yaml")], capture_output=True,
                        text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "hợp lệ (valid) — 11 cán bộ, 10 tổ trực" in ok.stdout
    assert "giao-thong: domain=\"traffic\" → truc-giao-thong; leo thang: truong-ca-giao-thong " \
           "sau 15 phút → lanh-dao-so-gtvt sau 45 phút" in ok.stdout
    bad = tmp_path / "routes.yaml"
    bad.write_text("version: 1\nreceivers: {}\nroute: {receiver: x}\n", encoding="utf-8")
    run = subprocess.run([IOC, "notify", "--check", "--config", str(bad)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert f"{bad}:3: route.receiver: unknown receiver 'x'" in run.stderr
    for sub in (["notify"], ["alerts"], ["alerts", "silence", "add"]):
        helped = subprocess.run([IOC, *sub, "--help"], capture_output=True, text=True,
                                timeout=60)
        assert helped.returncode == 0 and f"usage: ioc {' '.join(sub)}" in helped.stdout


def test_matchers_and_durations() -> None:
    m = Matcher.parse('area=~"50[23]"')
    assert (m.name, m.op, m.value) == ("area_code", "=~", "50[23]")
    assert m.matches({"area_code": "503"}) and not m.matches({"area_code": "5031"})
    assert str(m) == 'area_code=~"50[23]"'
    assert Matcher.parse("severity!=info").matches({"severity": "critical"})
    quoted = Matcher.parse('entity="cầu \\"Hà\\" 01"')
    assert quoted.value == 'cầu "Hà" 01' and Matcher.parse(str(quoted)) == quoted
    with pytest.raises(ValueError, match="unknown label"):
        Matcher.parse('quan="502"')
    with pytest.raises(ValueError, match="bad regular expression"):
        Matcher.parse('entity=~"("')
    assert Matcher.any_of("severity", ["warning", "critical"]).matches(
        {"severity": "critical"})
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("500ms") == timedelta(milliseconds=500)
    with pytest.raises(ValueError):
        parse_duration("5 phút")
    assert duration_vi(timedelta(minutes=90)) == "1 giờ 30 phút"
    assert duration_vi(timedelta(seconds=45)) == "45 giây"
    assert duration_vi(timedelta(days=2, hours=3)) == "2 ngày 3 giờ"


def test_ack_links_are_signed_expiring_and_bound_to_the_episode(tmp_path: Path) -> None:
    secret = b"bi-mat"
    now = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
    claim = AckClaim("3fa1c2d4e5f60718", now, "binh", now + timedelta(hours=24))
    token = sign(secret, claim)
    assert verify(secret, token, now + timedelta(hours=1)) == claim
    with pytest.raises(TokenError) as info:
        verify(secret, token, now + timedelta(hours=24))
    assert info.value.reason == "expired"
    head, mac = token.split(".")
    forged = sign(b"other", claim)
    for bad in (forged, head + "." + mac[:-2] + "AA", "abc", head[:-1] + "." + mac):
        with pytest.raises(TokenError) as info:
            verify(secret, bad, now)
        assert info.value.reason == "invalid"
    # the secret: from the settings, or generated once into the data dir (mode 0600)
    assert load_or_create_secret(Settings(notify_secret=Secret("s3"))) == b"s3"
    settings = Settings(data_dir=tmp_path)
    first = load_or_create_secret(settings)
    assert first == load_or_create_secret(settings) and len(first) >= 32
    assert (tmp_path / "notify" / "secret").stat().st_mode & 0o777 == 0o600


def test_silences_and_acks_are_checked_before_they_are_written() -> None:
    from ioc.schemas.serde import EncodeError, Serde

    serde = Serde()
    now = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
    silence = {"silence_id": "s1", "matchers": [], "starts_at": now,
               "ends_at": now - timedelta(hours=1), "created_by": "Ngô Văn Khánh",
               "comment": "", "created_at": now, "updated_at": now, "expired_by": ""}
    with pytest.raises(EncodeError) as info:
        serde.encode("ioc.silence.v1", silence)
    assert "matchers: at least one matcher is needed" in str(info.value)
    assert "ends_at: must not be before starts_at" in str(info.value)
    with pytest.raises(EncodeError, match="is not name op"):
        serde.encode("ioc.silence.v1", dict(silence, matchers=["domain traffic"],
                                            ends_at=now))
    ack = {"ack_id": "a1", "alert_id": "x", "starts_at": now, "acked_by": " ", "comment": "",
           "acked_at": now, "first_acked_at": now, "via": "cli"}
    with pytest.raises(EncodeError, match="acked_by: must not be empty"):
        serde.encode("ioc.alert_ack.v1", ack)
