"""The ``ioc`` command as a user runs it (subprocesses, real broker, real chDB)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from ioc.schemas.catalogue import Catalogue

IOC = str(Path(sys.executable).parent / "ioc")
COMMANDS = ["setup", "run", "produce", "simulate", "sql", "demo", "kafka", "dashboards", "wall",
            "acl", "kafka-cluster"]


def ioc(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([IOC, *args], capture_output=True, text=True, timeout=180,
                          env={**os.environ, **(env or {})})


def test_every_command_has_help() -> None:
    top = ioc("--help")
    assert top.returncode == 0
    for name in COMMANDS:
        assert name in top.stdout
        sub = ioc(name, "--help")
        assert sub.returncode == 0, sub.stderr
        assert "usage: ioc " + name in sub.stdout


@pytest.fixture
def env(kafka_broker: str, tmp_path: Path) -> dict[str, str]:
    return {"IOC_KAFKA_BOOTSTRAP": kafka_broker, "IOC_DATA_DIR": str(tmp_path / "var"),
            "IOC_TOPIC_PREFIX": f"c{uuid.uuid4().hex[:8]}.", "IOC_METRICS_PORT": "0"}


def test_setup_is_idempotent_and_sql_answers_in_three_formats(env: dict[str, str]) -> None:
    first = ioc("setup", env=env)
    assert first.returncode == 0, first.stderr
    n = len(Catalogue().topics)
    assert f"topics: {n} created" in first.stdout
    second = ioc("setup", env=env)
    assert second.returncode == 0, second.stderr
    assert f"topics: 0 created, {n} already there" in second.stdout
    assert "0 migrations applied" in second.stdout

    query = "SELECT code, name_vi FROM ioc.ref_areas FINAL WHERE level != 'province' ORDER BY code"
    as_json = ioc("sql", query, "--format", "json", env=env)
    rows = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert len(rows) == 18
    assert rows[0] == {"code": "502", "name_vi": "Thành phố Tam Kỳ"}
    assert rows[-1] == {"code": "519", "name_vi": "Huyện Nông Sơn"}
    as_csv = list(csv.reader(io.StringIO(ioc("sql", query, "--format", "csv", env=env).stdout)))
    assert as_csv[0] == ["code", "name_vi"] and len(as_csv) == 19
    table = ioc("sql", query, env=env).stdout
    assert table.splitlines()[0].split() == ["code", "name_vi"]
    assert table.rstrip().endswith("(18 rows)")


def test_sql_is_read_only_and_reports_errors(env: dict[str, str]) -> None:
    assert ioc("setup", env=env).returncode == 0
    write = ioc("sql", "INSERT INTO ioc.ref_areas (code) VALUES ('x')", env=env)
    assert write.returncode == 1
    assert "readonly" in write.stderr.lower() or "read-only" in write.stderr.lower()
    typo = ioc("sql", "SELEC 1", env=env)
    assert typo.returncode == 1 and "query failed" in typo.stderr


def test_commands_explain_a_missing_local_broker(tmp_path: Path) -> None:
    env = {"IOC_DATA_DIR": str(tmp_path / "var"), "IOC_KAFKA_PORT": "1"}
    env_clean = {k: v for k, v in os.environ.items() if k != "IOC_KAFKA_BOOTSTRAP"}
    proc = subprocess.run([IOC, "setup"], capture_output=True, text=True, timeout=60,
                          env={**env_clean, **env})
    assert proc.returncode != 0
    assert "ioc kafka up" in proc.stderr


def test_simulate_sends_only_the_named_subsystems(env: dict[str, str]) -> None:
    from confluent_kafka import Consumer, TopicPartition

    assert ioc("setup", env=env).returncode == 0
    proc = ioc("simulate", "security", "cyber", "--duration", "3", "--speedup", "600", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "(cyber, security)" in proc.stdout
    consumer = Consumer({"bootstrap.servers": env["IOC_KAFKA_BOOTSTRAP"], "group.id": "probe"})
    try:
        def count(topic: str) -> int:
            name = env["IOC_TOPIC_PREFIX"] + topic
            return sum(consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)[1]
                       for p in range(3))
        sent = int(proc.stdout.split()[0])
        assert count("ioc.cyber.mention.v1") > 50  # 30 simulated minutes with a surge
        assert count("ioc.traffic.flow.v1") == 0
        assert sent == sum(count(t) for t in ("ioc.cyber.mention.v1",
                                              "ioc.cyber.security_event.v1",
                                              "ioc.security.incident.v1"))
    finally:
        consumer.close()


def test_run_before_setup_says_what_to_do(env: dict[str, str]) -> None:
    proc = ioc("run", "--exit-when-idle", "1", env=env)
    assert proc.returncode == 1
    assert "Run `ioc setup` first" in proc.stderr
    assert env["IOC_TOPIC_PREFIX"] + "ioc.traffic.flow.v1" in proc.stderr


def test_security_commands_explain_bad_input(tmp_path: Path) -> None:
    status = ioc("kafka-cluster", "status", env={"IOC_DATA_DIR": str(tmp_path)})
    assert status.returncode == 3 and "0/3 nodes running" in status.stdout
    manifest = tmp_path / "agencies.toml"
    manifest.write_text('[[agency]]\ncode = "A"\nuser = "a"\ntopics = ["ioc.kpi.v1"]\n')
    bad = ioc("acl", "apply", "--manifest", str(manifest), "--dry-run")
    assert bad.returncode == 2 and "may not write 'ioc.kpi.v1'" in bad.stderr
    insecure = ioc("kafka", "status", env={"IOC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"})
    assert insecure.returncode == 2 and "IOC_KAFKA_USERNAME" in insecure.stderr
