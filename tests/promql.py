"""Check PromQL without a Prometheus: parse it with a real parser (promql-parser, the Python
binding of the Rust ``promql-parser`` crate) and compare every metric and label name it uses with
what the platform really exposes — a ``Metrics`` registry whose every metric was exercised,
rendered by ``prometheus_client.generate_latest`` and read back with its exposition parser.

``from promql import exposed_series, promql_problems`` (tests/ is on sys.path).
"""

from __future__ import annotations

import re
from typing import Any

import promql_parser
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from ioc.infra.metrics import Metrics

TARGET_LABELS = {"job", "instance"}
"""Labels Prometheus attaches to every scraped series."""

GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}


def exposed_series() -> dict[str, set[str]]:
    """Series name → its label names (target labels included), as Prometheus would store them
    after scraping a process whose every metric has been used, plus ``up``."""
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    for value in vars(metrics).values():
        if not isinstance(value, MetricWrapperBase):
            continue
        labelnames = value._labelnames
        child: Any = value.labels(*["x"] * len(labelnames)) if labelnames else value
        if hasattr(child, "observe"):
            child.observe(1.0)
        elif hasattr(child, "inc"):
            child.inc()
    series: dict[str, set[str]] = {"up": set(TARGET_LABELS)}
    text = generate_latest(registry).decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            series.setdefault(sample.name, set(TARGET_LABELS)).update(sample.labels)
    return series


def with_grafana_variables(expr: str) -> str:
    """Replace Grafana's ``$__…`` interval variables by durations, as Grafana does before it
    sends the query."""
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


def promql_problems(expr: str, series: dict[str, set[str]]) -> list[str]:
    """Parse errors, unknown metrics, and label names no metric in scope has."""
    try:
        ast = promql_parser.parse(with_grafana_variables(expr))
    except ValueError as exc:
        return [f"does not parse: {exc}"]
    problems: list[str] = []

    def labels_below(node: Any) -> set[str]:
        found: set[str] = set()

        def visit(n: Any) -> None:
            if isinstance(n, promql_parser.VectorSelector):
                found.update(series.get(n.name or "", set()))
        promql_parser.walk(node, visit)
        return found

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name not in series:
                problems.append(f"unknown metric {node.name!r}")
                return
            for matcher in node.matchers.matchers:
                if matcher.name != "__name__" and matcher.name not in series[node.name]:
                    problems.append(f"{node.name} has no label {matcher.name!r}")
        elif isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            if node.modifier.type == promql_parser.AggModifierType.By:
                missing = set(node.modifier.labels) - labels_below(node.expr)
                if missing:
                    problems.append(f"{node.op} by {sorted(missing)}: no such label below")
        elif isinstance(node, promql_parser.BinaryExpr) and node.modifier is not None:
            matching = node.modifier.matching
            if matching is not None:
                missing = set(matching.labels) - (labels_below(node.lhs) & labels_below(node.rhs))
                if missing:
                    problems.append(f"vector matching on {sorted(missing)}: not on both sides")

    promql_parser.walk(ast, visit)
    return problems


def metric_names(expr: str) -> set[str]:
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)
    promql_parser.walk(promql_parser.parse(with_grafana_variables(expr)), visit)
    return names


def label_values(expr: str, label: str) -> set[str]:
    """Values an expression's matchers compare ``label`` with (regex alternatives split)."""
    values: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            for m in node.matchers.matchers:
                if m.name == label:
                    values.update(re.split(r"\|", m.value))
    promql_parser.walk(promql_parser.parse(with_grafana_variables(expr)), visit)
    return values
