"""Grouped SLOs (`group_by`): one SLO per value of a label, with a bounded number of groups.

The generated promtool tests of examples/every-sli-kind.yaml's grouped SLO run in
tests/test_slo_engine.py (one route burns and fires, the other stays quiet; ratios per
route). Here: what the spec accepts, what the rules keep, and that those generated tests
fail on rules that sum the groups together.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import promql_parser
import pytest
import yaml
from typer.testing import CliRunner

from stackgen.cli import app
from stackgen.pipeline import render_spec
from stackgen.writer import write_tree
from tests.conftest import ROOT, require_tool

EXAMPLE = ROOT / "examples/every-sli-kind.yaml"
GROUPED = """      - name: routes
        objective: 99.5
        description: One SLO per route (group_by); a noisy route cannot hide behind the rest.
        group_by: [route]
        max_groups: 20
"""


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return render_spec(EXAMPLE)


def rules_of(files: dict[str, str]) -> list[dict]:  # type: ignore[type-arg]
    doc = yaml.safe_load(files["prometheus/rules/checkout/routes.rules.yml"])
    return [r for g in doc["groups"] for r in g["rules"]]


def test_every_series_and_alert_keeps_the_group_label(rendered: dict[str, str]) -> None:
    rules = rules_of(rendered)
    for rule in rules:
        promql_parser.parse(rule["expr"])
    records = [r for r in rules if "record" in r]
    for rule in records:
        # Every aggregation keeps the group; nothing sums the routes together.
        assert re.findall(r"\bsum\b(?! by \(route[,)])", rule["expr"]) == [], rule["expr"]
        assert "vector(0)" not in rule["expr"]  # a label-free zero would be a group of its own
    bad = next(r for r in records if r["record"] == "slo:sli_bad_events:rate1m")
    assert " or 0 * sum by (route) (rate(checkout_requests_total[1m]))" in bad["expr"]
    burn = next(r for r in rules if r.get("alert") == "SLOBurnRate1h")
    assert "(route={{ $labels.route }})" in burn["annotations"]["summary"]
    assert (
        'printf `slo:error_budget_remaining:ratio{service="checkout", slo="routes", route=%q}`'
        in (burn["annotations"]["description"])
    )
    cap = next(r for r in rules if r.get("alert") == "SLOGroupsOverLimit")
    assert cap["expr"] == 'count(slo:sli_total_events:rate1m{service="checkout", slo="routes"}) > 20'


def test_dashboard_legends_name_the_group(rendered: dict[str, str]) -> None:
    dashboard = rendered["grafana/dashboards/team-payments/sg-svc-checkout.json"]
    assert '"legendFormat": "budget left {{route}}"' in dashboard


def load_errors(tmp_path: Path, slo_text: str) -> str:
    text = EXAMPLE.read_text()
    assert GROUPED in text
    spec = tmp_path / "spec.yaml"
    spec.write_text(text.replace(GROUPED, slo_text))
    result = CliRunner().invoke(app, ["render", "--spec", str(spec), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "out").exists()
    return result.output


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("        max_groups: 20\n", ""), "group_by: say how many groups to expect with max_groups"),
        (("group_by: [route]", "group_by: [team]"), "group_by[0]: 'team' cannot group an SLO: stackgen sets it"),
        (("group_by: [route]", "group_by: [le]"), "group_by[0]: 'le' cannot group an SLO"),
        (("        group_by: [route]\n", ""), "max_groups: max_groups only applies with group_by"),
    ],
)
def test_bad_grouping_is_a_located_error(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    output = load_errors(tmp_path, GROUPED.replace(*change))
    assert "services[0].slos[1]." + message in output, output
    assert "every-sli-kind.yaml" not in output or "spec.yaml" in output


def test_a_raw_sli_cannot_be_grouped(tmp_path: Path) -> None:
    raw = GROUPED + "        sli:\n          raw:\n            error_ratio: 'sum(rate(x[{{window}}]))'\n"
    text = EXAMPLE.read_text()
    block = text[text.index(GROUPED) : text.index("      - name: payments-ok")]
    spec = tmp_path / "spec.yaml"
    spec.write_text(text.replace(block, raw))
    result = CliRunner().invoke(app, ["render", "--spec", str(spec), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "a raw error_ratio query decides its own labels" in result.output


def test_the_generated_tests_fail_when_the_groups_are_summed_together(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    write_tree(render_spec(EXAMPLE), tmp_path)
    rules = tmp_path / "prometheus/rules/checkout/routes.rules.yml"
    rules.write_text(rules.read_text().replace("sum by (route) ", "sum"))
    result = subprocess.run(
        [promtool, "test", "rules", "tests/checkout/routes.recording.test.yml"],
        cwd=tmp_path / "prometheus",
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 1, result.stdout
    assert 'exp: {route="a", service="checkout", slo="routes", team="payments"} 1E+00' in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("route", "receivers"),
    [("/pay", "payments-pager"), ("/cart", "oncall,chat")],
)
def test_routing_matches_the_group_label(tmp_path: Path, route: str, receivers: str) -> None:
    """routing.labels: the payment route of the grouped SLO pages the payments team, any other
    route the critical default; amtool walks the rendered tree."""
    amtool = require_tool("amtool")
    from stackgen.pipeline import load_model
    from stackgen.render.alertmanager import expected_receivers

    write_tree(render_spec(EXAMPLE), tmp_path)
    labels = {
        "alertname": "SLOBurnRate1h",
        "severity": "critical",
        "category": "slo",
        "service": "checkout",
        "slo": "routes",
        "route": route,
    }
    assert ",".join(expected_receivers(load_model(EXAMPLE, None).routing, labels)) == receivers
    result = subprocess.run(
        [
            amtool,
            "config",
            "routes",
            "test",
            f"--config.file={tmp_path / 'alertmanager/alertmanager.yml'}",
            *(f"{k}={v}" for k, v in labels.items()),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == receivers


def test_a_label_route_cannot_match_what_stackgen_routes_itself(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace("match: {service: checkout, route: /pay}", "match: {alertname: X}")
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    result = CliRunner().invoke(app, ["render", "--spec", str(spec), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "routing.labels[0].match: alertname and escalation_level are routed by stackgen itself" in result.output
