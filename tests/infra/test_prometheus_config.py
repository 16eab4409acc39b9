"""The Prometheus scrape config and the platform's alert rules (infra/prometheus), and the
generated Grafana provisioning YAML: loaded with a real YAML parser, every rule expression parsed
with a real PromQL parser and checked against the metrics the platform exposes. (No Prometheus
runs here: whether the rules fire on live data is not tested.)"""

from __future__ import annotations

import re
import shutil
import subprocess
import unicodedata
from pathlib import Path
from typing import Any

import pytest
import yaml
from promql import exposed_series, label_values, metric_names, promql_problems

import ioc.infra
from ioc.dashboards import build
from ioc.dashboards.platform import SCRAPE_JOBS
from ioc.infra.settings import Settings

PROMETHEUS_DIR = Path(ioc.infra.__file__).resolve().parent / "prometheus"
CONFIG = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text(encoding="utf-8"))
RULES_DOC = yaml.safe_load((PROMETHEUS_DIR / "rules.yml").read_text(encoding="utf-8"))
RULES = [rule for group in RULES_DOC["groups"] for rule in group["rules"]]
SERIES = exposed_series()
DURATION = re.compile(r"[0-9]+(ms|s|m|h|d|w|y)")


def _has_diacritics(text: str) -> bool:
    return any(unicodedata.decomposition(ch) for ch in text if ch.isalpha() and ord(ch) > 127)


def test_scrape_config_has_one_job_per_process_on_the_metrics_ports() -> None:
    assert DURATION.fullmatch(CONFIG["global"]["scrape_interval"])
    assert CONFIG["rule_files"] == ["rules.yml"]
    jobs = {job["job_name"]: job for job in CONFIG["scrape_configs"]}
    assert set(jobs) == set(SCRAPE_JOBS)
    port = Settings().metrics_port
    targets = {name: [t for sc in job["static_configs"] for t in sc["targets"]]
               for name, job in jobs.items()}
    assert targets == {"ioc-worker": [f"localhost:{port}"], "ioc-sink": [f"localhost:{port + 1}"]}
    metric_labels = set().union(*SERIES.values()) - {"job", "instance"}
    for job in jobs.values():
        for static in job["static_configs"]:
            # a target label named like a metric label would be renamed exported_<name>
            assert not set(static.get("labels") or {}) & metric_labels


def test_rules_cover_process_down_lag_dead_letters_sink_retries_and_clickhouse_down() -> None:
    by_name = {rule["alert"]: rule for rule in RULES}
    assert len(by_name) == len(RULES)
    assert metric_names(by_name["IocProcessDown"]["expr"]) == {"up"}
    assert metric_names(by_name["IocConsumerLagGrowing"]["expr"]) == {"ioc_consumer_lag"}
    assert metric_names(by_name["IocDeadLetters"]["expr"]) == {"ioc_dead_letters_total"}
    assert metric_names(by_name["IocSinkRetries"]["expr"]) == {"ioc_sink_retries_total"}
    assert metric_names(by_name["IocClickHouseUnwritable"]["expr"]) == {"ioc_sink_clickhouse_up"}
    assert label_values(by_name["IocProcessDown"]["expr"], "job") == set(SCRAPE_JOBS)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r["alert"])
def test_rule_is_well_formed(rule: dict[str, Any]) -> None:
    assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}
    assert re.fullmatch(r"Ioc[A-Z][A-Za-z]+", rule["alert"])
    assert promql_problems(rule["expr"], SERIES) == []
    assert DURATION.fullmatch(rule["for"])
    assert rule["labels"]["severity"] in ("warning", "critical")
    summary = rule["annotations"]["summary"]
    assert _has_diacritics(summary), summary
    assert rule["annotations"]["description"]
    assert rule["annotations"]["dashboard"] == "/d/ioc-platform"
    # every label a template names survives the expression's aggregation
    templated = set(re.findall(r"\$labels\.([a-z_]+)", summary + rule["annotations"]
                               ["description"]))
    by = re.findall(r"by \(([^)]*)\)", rule["expr"])
    kept = ({label.strip() for group in by for label in group.split(",")} if by
            else {"job", "instance"})
    assert templated <= kept, (templated, kept)


def test_every_generated_yaml_file_loads() -> None:
    files = build.generated_files()
    for rel, text in files.items():
        if rel.endswith(".yaml"):
            assert yaml.safe_load(text)["apiVersion"] == 1, rel


def test_dashboard_providers_match_the_folders() -> None:
    doc = yaml.safe_load(build.generated_files()["dashboards/ioc.yaml"])
    providers = {p["folderUid"]: p for p in doc["providers"]}
    assert set(providers) == {f.uid for f in build.FOLDERS} == {"ioc", "ioc-ops"}
    for folder in build.FOLDERS:
        provider = providers[folder.uid]
        assert provider["folder"] == folder.title
        assert provider["options"]["path"] == f"/etc/grafana/provisioning/{folder.subdir}"
        assert provider["allowUiUpdates"] is False
    paths = [rel for rel in build.generated_files() if rel.endswith(".json")]
    assert "dashboards/ioc-ops/platform.json" in paths
    assert "dashboards/ioc/overview.json" in paths


def test_prometheus_datasource_reads_its_url_from_the_environment() -> None:
    doc = yaml.safe_load(build.generated_files()["datasources/prometheus.yaml"])
    (ds,) = doc["datasources"]
    assert (ds["uid"], ds["type"], ds["access"]) == ("ioc-prometheus", "prometheus", "proxy")
    assert ds["url"] == "${IOC_PROMETHEUS_URL}" and ds["isDefault"] is False
    clickhouse = yaml.safe_load(build.generated_files()["datasources/clickhouse.yaml"])
    assert clickhouse["datasources"][0]["isDefault"] is True  # exactly one default


PROMTOOL = shutil.which("promtool")
RULES_TEST = Path(__file__).parent / "prometheus" / "rules_test.yml"


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian: apt-get install "
                                              "prometheus); the checks above still ran")
def test_promtool_accepts_the_config_and_every_rule_fires_and_stays_quiet() -> None:
    """Prometheus's own checker and rule unit tests (tests/infra/prometheus/rules_test.yml):
    each alert fires on a synthetic series at the documented time and not on a near miss."""
    assert PROMTOOL is not None
    for args in (["check", "config", str(PROMETHEUS_DIR / "prometheus.yml")],
                 ["check", "rules", str(PROMETHEUS_DIR / "rules.yml")],
                 ["test", "rules", str(RULES_TEST)]):
        done = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
