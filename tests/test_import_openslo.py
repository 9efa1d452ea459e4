"""`stackgen import openslo`: OpenSLO's own examples (tests/fixtures/openslo, pinned with
their source in SOURCE.md) import, load, and keep their objectives, periods and burn-rate
conditions; what cannot be carried over is a comment or a located error.

Expected values are read from the OpenSLO documents here, not from stackgen's output.
"""

from __future__ import annotations

import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from stackgen.cli import app
from stackgen.model import build_model
from stackgen.pipeline import render_spec
from stackgen.spec import load_spec_text
from stackgen.writer import write_tree
from tests.conftest import DEFAULT_SPEC, require_tool

FIXTURES = Path(__file__).parent / "fixtures/openslo"
IMPORTABLE = [
    "budgeting-method--occurences-slo.yaml",
    "budgeting-method--ratio-timeslices.yaml",
    "treat-low-traffic-as-equally-important--timeslices-slo.yaml",
    "readme--foo-slo-inline-sli.yaml",
    "readme--prometheus-ratio-with-alert-policy.yaml",
]
UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "M": 30 * 86400}


def run_import(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["import", "openslo", *args])
    return result.exit_code, result.output


def openslo_docs(path: Path) -> list[dict]:  # type: ignore[type-arg]
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.mark.parametrize("fixture", IMPORTABLE)
def test_openslo_examples_import_and_keep_objectives_and_periods(tmp_path: Path, fixture: str) -> None:
    out = tmp_path / "spec.yaml"
    code, output = run_import(str(FIXTURES / fixture), "--out", str(out))
    assert code == 0, output
    model = build_model(load_spec_text(out.read_text(), str(out)))
    slos = list(model.slos)
    expected = []
    for doc in openslo_docs(FIXTURES / fixture):
        if doc["kind"] != "SLO":
            continue
        spec = doc["spec"]
        window = (spec.get("timeWindow") or [{"duration": "30d"}])[0]["duration"]
        period = int(window[:-1]) * UNITS[window[-1]]
        for objective in spec["objectives"]:
            percent = (
                Decimal(str(objective["targetPercent"]))
                if "targetPercent" in objective
                else Decimal(str(objective["target"])) * 100
            )
            expected.append((spec["service"], percent, period))
    got = [(slo.service, slo.objective, slo.period) for slo in slos]
    assert sorted(got) == sorted(expected)
    text = out.read_text()
    methods = {d["spec"].get("budgetingMethod") for d in openslo_docs(FIXTURES / fixture) if d["kind"] == "SLO"}
    for method in methods - {None, "Occurrences"}:
        assert f"Not carried over from OpenSLO: budgetingMethod {method}" in text
    if "type: Any" in (FIXTURES / fixture).read_text():
        assert "TODO(import): the SLI could not be carried over: " in text
        assert "# OpenSLO source: good: 'Any'" in text or "# OpenSLO source: thresholdMetric: 'Any'" in text


def test_burn_rate_conditions_become_tiers(tmp_path: Path) -> None:
    fixture = FIXTURES / "readme--prometheus-ratio-with-alert-policy.yaml"
    out = tmp_path / "spec.yaml"
    code, output = run_import(str(fixture), "--out", str(out))
    assert code == 0, output
    condition = next(d for d in openslo_docs(fixture) if d["kind"] == "AlertCondition")["spec"]
    (slo,) = build_model(load_spec_text(out.read_text(), str(out))).slos
    (tier,) = slo.tiers
    lookback = condition["condition"]["lookbackWindow"]
    assert tier.long_window == int(lookback[:-1]) * UNITS[lookback[-1]]
    assert tier.burn_rate == Decimal(str(condition["condition"]["threshold"]))
    assert tier.severity == "page" and condition["severity"] == "page"
    assert slo.sli.kind == "events"
    assert slo.sli.good == 'localhost_server_requests{code=~"2xx|3xx",host="*",instance="127.0.0.1:9090"}'
    assert slo.sli.total == 'localhost_server_requests{code="total",host="*",instance="127.0.0.1:9090"}'
    text = out.read_text()
    assert "Not carried over from OpenSLO: op lte" in text
    assert "Not carried over from OpenSLO: alertAfter 5m" in text


def test_an_inline_alert_condition_becomes_a_tier(tmp_path: Path) -> None:
    slo = tmp_path / "slo.yaml"
    slo.write_text(
        "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: checkout}\nspec:\n  service: shop\n"
        "  indicatorRef: main-page-requests\n  budgetingMethod: Occurrences\n"
        "  objectives: [{target: 0.999}]\n  alertPolicies: [{alertPolicyRef: AlertPolicy}]\n"
    )
    sli = FIXTURES / "readme--prometheus-ratio-with-alert-policy.yaml"
    sli_only = tmp_path / "sli.yaml"
    sli_only.write_text(sli.read_text().split("---")[0])
    out = tmp_path / "spec.yaml"
    code, output = run_import(
        str(slo), str(sli_only), str(FIXTURES / "readme--alert-policy-inline-condition.yaml"), "--out", str(out)
    )
    assert code == 0, output
    (imported,) = build_model(load_spec_text(out.read_text(), str(out))).slos
    assert [(t.severity, t.long_window, t.burn_rate) for t in imported.tiers] == [("page", 3600, Decimal(2))]


def test_the_imported_stack_renders_and_promtool_accepts_its_rules(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    spec = tmp_path / "spec.yaml"
    code, output = run_import(str(FIXTURES / "readme--prometheus-ratio-with-alert-policy.yaml"), "--out", str(spec))
    assert code == 0, output
    write_tree(render_spec(spec), tmp_path / "out")
    rules = tmp_path / "out/prometheus/rules/web-shop/main-page.rules.yml"
    assert 'localhost_server_requests{code=~"2xx|3xx",host="*",instance="127.0.0.1:9090"}' in rules.read_text()
    result = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            None,
            "budgeting-method--timeslices-slo.yaml:27: spec.timeWindow[0].duration: 1m is shorter than a day "
            "(OpenSLO's month is 1M; 1m is a minute)",
        ),
        ("apiVersion: openslo/v1alpha\nkind: SLO\nmetadata: {name: a}\n", "not an OpenSLO v1 document"),
        (
            "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: a}\nspec:\n  service: s\n"
            "  indicatorRef: nowhere\n  objectives: [{target: 0.99}]\n",
            ":6: spec.indicatorRef: the SLI 'nowhere' is not among the documents given",
        ),
        (
            "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: a}\nspec:\n  service: s\n"
            "  objectives:\n    - {target: 0.99, indicatorRef: x}\n",
            ":7: spec.objectives[0]: a composite SLO (an indicator per objective) has no stackgen equivalent",
        ),
        ("apiVersion: openslo/v1\nkind: Service\nmetadata: {name: a}\n", "no OpenSLO SLO among the documents given"),
    ],
)
def test_what_cannot_be_imported_is_a_located_error(tmp_path: Path, text: str | None, message: str) -> None:
    if text is None:
        source = FIXTURES / "budgeting-method--timeslices-slo.yaml"
    else:
        source = tmp_path / "in.yaml"
        source.write_text(text)
    out = tmp_path / "spec.yaml"
    code, output = run_import(str(source), "--out", str(out))
    assert code == 2, output
    assert message in output, output
    assert "Traceback" not in output
    assert not out.exists()


def test_import_into_an_existing_spec_keeps_it(tmp_path: Path) -> None:
    spec = tmp_path / "slos.yaml"
    spec.write_text(DEFAULT_SPEC.read_text())
    before = spec.read_text().splitlines()
    code, output = run_import(str(FIXTURES / "readme--prometheus-ratio-with-alert-policy.yaml"), "--into", str(spec))
    assert code == 0, output
    after = spec.read_text().splitlines()
    assert all(line in after for line in before)
    names = [s.name for s in build_model(load_spec_text(spec.read_text(), str(spec))).services]
    assert "web-shop" in names
