"""Every PromQL expression stackgen emits parses with a real PromQL parser."""

from __future__ import annotations

import json
from collections.abc import Iterator

import promql_parser
import yaml

LOKI_PREFIXES = ("loki/",)


def rule_exprs(files: dict[str, str]) -> Iterator[tuple[str, str]]:
    for path, text in files.items():
        if path.startswith("prometheus/rules/"):
            for group in yaml.safe_load(text)["groups"]:
                for rule in group["rules"]:
                    yield (
                        f"{path}:{group['name']}:{rule.get('record') or rule.get('alert')}",
                        rule["expr"],
                    )


def dashboard_exprs(files: dict[str, str]) -> Iterator[tuple[str, str]]:
    for path, text in files.items():
        if path.startswith("grafana/dashboards/"):
            data = json.loads(text)
            for panel in data.get("panels", []):
                for target in panel.get("targets", []):
                    if (target.get("datasource") or {}).get("type") == "prometheus" and target.get("expr"):
                        yield f"{path}:{panel.get('title')}", target["expr"]
            for var in data.get("templating", {}).get("list", []):
                if (var.get("datasource") or {}).get("type") == "prometheus" and isinstance(var.get("query"), str):
                    query = var["query"]
                    if query.startswith("label_values("):
                        inner = query[len("label_values(") : -1].rsplit(",", 1)[0]
                        if inner.strip():
                            yield f"{path}:var {var.get('name')}", inner
                    elif query:
                        yield f"{path}:var {var.get('name')}", query
            for ann in data.get("annotations", {}).get("list", []):
                if (ann.get("datasource") or {}).get("type") == "prometheus" and ann.get("expr"):
                    yield f"{path}:annotation {ann.get('name')}", ann["expr"]


def test_every_rule_expression_parses(default_files: dict[str, str]) -> None:
    exprs = list(rule_exprs(default_files))
    assert len(exprs) > 50
    for where, expr in exprs:
        promql_parser.parse(expr)  # raises with the parser's message
        assert where


def test_every_dashboard_expression_parses(default_files: dict[str, str]) -> None:
    exprs = list(dashboard_exprs(default_files))
    assert exprs
    for _, expr in exprs:
        promql_parser.parse(
            expr.replace("$__rate_interval", "5m")
            .replace("$__range", "1d")
            .replace("$service", "api")
            .replace("$slo", "x")
        )


def test_parser_rejects_broken_promql() -> None:
    import pytest

    with pytest.raises(ValueError):
        promql_parser.parse("sum(rate(x[5m])")
