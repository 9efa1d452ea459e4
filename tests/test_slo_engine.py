"""The SLO engine: numbers follow SLO-MATH.md, every alert is unit-tested, and the generated
promtool tests pass.

Expected numbers here are computed from SLO-MATH.md's formulas (r = f * T / L,
threshold = r * b, detection = L * r * b / e + B/2), not read from output.
"""

from __future__ import annotations

import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from stackgen import conventions as cv
from stackgen import slo_math
from stackgen.cli import app
from stackgen.model import build_model
from stackgen.pipeline import load_model, render_spec
from stackgen.render import test_shapes
from stackgen.render.sli import le_matcher
from stackgen.spec import load_spec_text
from stackgen.writer import write_tree
from tests.conftest import DEFAULT_SPEC, ROOT, require_tool

EXAMPLE = ROOT / "examples/every-sli-kind.yaml"
DAY = 86400
HOUR = 3600
# SLO-MATH.md's table for 30d: (severity, budget share f, long window, short window).
WORKBOOK = [
    ("page", Fraction(2, 100), HOUR, 300),
    ("page", Fraction(5, 100), 6 * HOUR, 1800),
    ("ticket", Fraction(10, 100), DAY, 2 * HOUR),
    ("ticket", Fraction(10, 100), 3 * DAY, 6 * HOUR),
]


def model_with(period: str, objective: float = 99.9, tiers: str = "") -> object:
    text = DEFAULT_SPEC.read_text()
    text = text.replace(
        "objective: 99.5\n        description: Fewer than",
        f"objective: {objective}\n        period: {period}\n{tiers}        description: Fewer than",
        1,
    )
    return build_model(load_spec_text(text))


def error_rate_slo(model):  # type: ignore[no-untyped-def]
    return next(s for s in model.slos if s.name == "error-rate")


@pytest.mark.parametrize("days", [30, 28])
def test_long_periods_keep_the_budget_share_and_recompute_the_burn_rate(days: int) -> None:
    slo = error_rate_slo(model_with(f"{days}d"))
    period = days * DAY
    for tier, (severity, f, long_w, short_w) in zip(slo.tiers, WORKBOOK, strict=True):
        assert (tier.severity, tier.long_window, tier.short_window) == (severity, long_w, short_w)
        assert Fraction(tier.burn_rate) == pytest.approx(f * period / long_w, rel=1e-11)
        assert Fraction(tier.budget_share) == pytest.approx(f, rel=1e-11)


def test_thirty_day_burn_rates_are_the_workbooks() -> None:
    slo = error_rate_slo(model_with("30d"))
    assert [tier.burn_rate for tier in slo.tiers] == [Decimal("14.4"), 6, 3, 1]


def test_twenty_eight_day_burn_rates_match_slo_math() -> None:
    slo = error_rate_slo(model_with("28d"))
    assert [float(t.burn_rate) for t in slo.tiers][:3] == [13.44, 5.6, 2.8]
    assert float(slo.tiers[3].burn_rate) == pytest.approx(0.9333333333, rel=1e-9)


def test_seven_day_policy_keeps_the_thirty_day_burn_rates() -> None:
    slo = error_rate_slo(model_with("7d"))
    assert [t.burn_rate for t in slo.tiers] == [Decimal("14.4"), 6, 3, 1]
    for tier in slo.tiers:  # the budget share follows: f = r * L / T
        assert Fraction(tier.budget_share) == pytest.approx(Fraction(tier.burn_rate) * tier.long_window / (7 * DAY))
    assert "shorter than 28d keep the 30d burn rates" in slo_math.SHORT_PERIOD_POLICY


def test_worked_check_of_slo_math() -> None:
    """99.9 %, 100 % errors: the 1h/14.4 page fires after 52 s plus B/2."""
    b = slo_math.error_budget(Decimal("99.9"))
    assert b == Decimal("0.001")
    seconds = slo_math.detection_seconds(HOUR, Decimal("14.4"), b, Decimal(1), 60)
    assert seconds == Decimal("51.84") + 30
    # At a steady 1% error ratio (burn 10) the 6h/6 page fires when the 6h ratio crosses 0.6%.
    assert slo_math.detection_seconds(6 * HOUR, Decimal(6), b, Decimal("0.01"), 60) == Decimal(6 * HOUR * 6) / 10 + 30


def test_alert_expressions_use_the_computed_thresholds(default_files: dict[str, str], default_model) -> None:  # type: ignore[no-untyped-def]
    for slo in default_model.slos:
        text = default_files[f"prometheus/rules/{slo.service}/{slo.name}.rules.yml"]
        rules = {r.get("alert"): r for g in yaml.safe_load(text)["groups"] for r in g["rules"]}
        for tier in slo.tiers:
            rule = rules[f"SLOBurnRate{tier.long}"]
            found = re.findall(r"ratio_rate(\w+)\{[^}]*\} / ([0-9.]+) > ([0-9.]+)", rule["expr"])
            assert [w for w, _, _ in found] == [tier.short, tier.long]
            for _, budget, rate in found:
                assert Decimal(budget) == Decimal(100 - float(slo.objective)).quantize(
                    Decimal("0.0001")
                ) / 100 or Decimal(budget) == slo_math.error_budget(slo.objective)
                assert Decimal(rate) == slo_math.tidy(tier.burn_rate)
            assert rule["labels"]["severity"] == ("critical" if tier.severity == "page" else "warning")
            assert (rule["labels"]["long_window"], rule["labels"]["short_window"]) == (tier.long, tier.short)


def test_long_windows_come_from_recorded_base_series_not_raw_counters(default_files: dict[str, str]) -> None:
    for path, text in default_files.items():
        if not path.endswith(".rules.yml") or "/rules/" not in path or path.endswith("stack.rules.yml"):
            continue
        for group in yaml.safe_load(text)["groups"]:
            for rule in group["rules"]:
                record = rule.get("record", "")
                if record.startswith("slo:sli_error:ratio_rate"):
                    assert "rate(" not in rule["expr"].replace("sli_bad_events:rate", "").replace(
                        "sli_total_events:rate", ""
                    )
                    # bad and total; the period adds this hour's and a period ago's tagged samples
                    period = "offset " in rule["expr"]
                    assert rule["expr"].count("sum_over_time(slo:sli_") == (6 if period else 2), rule["expr"]
                    assert period == (record in {"slo:sli_error:ratio_rate30d", "slo:sli_error:ratio_rate7d",
                                                 "slo:sli_error:ratio_rate28d"})  # fmt: skip


def test_groups_stay_under_twenty_rules(default_files: dict[str, str]) -> None:
    for path, text in default_files.items():
        if "/rules/" in path:
            for group in yaml.safe_load(text)["groups"]:
                assert len(group["rules"]) <= 20, (path, group["name"])


@pytest.mark.parametrize(("threshold", "spellings"), [("1", ["1", "1.0"]), ("0.25", ["0.25"]), ("10", ["10", "10.0"])])
def test_le_matcher_matches_prometheus_2_and_3_spellings(threshold: str, spellings: list[str]) -> None:
    matcher = le_matcher(Decimal(threshold))
    op, value = re.match(r'le(=~?)"(.*)"', matcher).groups()  # type: ignore[union-attr]
    pattern = value.replace("\\\\", "\\")
    for spelling in spellings:
        assert re.fullmatch(pattern, spelling) if op == "=~" else pattern == spelling
    assert not re.fullmatch(pattern, "1.5") if op == "=~" else True


def all_alerts_and_tests(files: dict[str, str]) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    alerts, tested = set(), set()
    for path, text in files.items():
        if path.startswith("prometheus/rules/"):
            for group in yaml.safe_load(text)["groups"]:
                for rule in group["rules"]:
                    if "alert" in rule:
                        alerts.add((path.removeprefix("prometheus/"), rule["alert"]))
        if path.startswith("prometheus/tests/"):
            doc = yaml.safe_load(text)
            base = Path(path).parent.relative_to("prometheus")
            rule_files = [str((Path("/x") / base / f).resolve()).removeprefix("/x/") for f in doc["rule_files"]]
            for test in doc["tests"]:
                for check in test.get("alert_rule_test", []):
                    for rule_file in rule_files:
                        tested.add((rule_file, check["alertname"]))
    return alerts, tested


@pytest.mark.parametrize("spec", [DEFAULT_SPEC, EXAMPLE], ids=["slos.yaml", "every-sli-kind"])
def test_every_alert_rule_has_an_alert_rule_test(spec: Path) -> None:
    """Its own, or that of the first SLO of its shape (tests/test_shapes.py proves the rules
    of one shape the same, names aside)."""
    model = load_model(spec, None)
    alerts, tested = all_alerts_and_tests(render_spec(spec))
    assert alerts
    for slo in model.slos:
        rep = test_shapes.representative(model, slo)
        if rep is not None and rep is not slo:
            own, theirs = cv.rules_file(slo).removeprefix("prometheus/"), cv.rules_file(rep).removeprefix("prometheus/")
            tested |= {(own, name) for path, name in tested if path == theirs}
    assert alerts <= tested, sorted(alerts - tested)


@pytest.fixture(scope="module")
def example_rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("example") / "out"
    write_tree(render_spec(EXAMPLE), out)
    return out


def run_promtool_tests(out: Path) -> list[str]:
    promtool = require_tool("promtool")
    tests = sorted(str(p.relative_to(out / "prometheus")) for p in (out / "prometheus/tests").rglob("*.test.yml"))
    assert tests

    def run(test: str) -> str | None:
        proc = subprocess.run(
            [promtool, "test", "rules", test], cwd=out / "prometheus", capture_output=True, text=True, timeout=1200
        )
        return None if proc.returncode == 0 else f"{test}: {proc.stdout[-3000:]}{proc.stderr[-500:]}"

    with ThreadPoolExecutor(max_workers=4) as pool:
        return [r for r in pool.map(run, tests) if r]


@pytest.mark.tools
@pytest.mark.slow
def test_generated_promtool_tests_pass_for_the_default_spec(
    validate_run: subprocess.CompletedProcess[str], default_files: dict[str, str]
) -> None:
    """`stackgen validate` (run once per session) includes every generated unit test."""
    tests = [p for p in default_files if p.startswith("prometheus/tests/")]
    assert len(tests) >= 2 * 6 + 1
    for path in tests:
        line = f"promtool test rules {path.removeprefix('prometheus/')}"
        assert f"ok   {line}" in validate_run.stdout, validate_run.stdout


@pytest.mark.tools
@pytest.mark.slow
def test_generated_promtool_tests_pass_for_every_sli_kind(example_rendered: Path) -> None:
    failures = run_promtool_tests(example_rendered)
    assert not failures, "\n".join(failures)


@pytest.mark.tools
def test_generated_tests_can_fail(tmp_path: Path, rendered: Path) -> None:
    """Break one threshold in a copy: its generated test must fail."""
    import shutil

    promtool = require_tool("promtool")
    out = tmp_path / "out"
    shutil.copytree(rendered, out)
    rules = out / "prometheus/rules/api/error-rate.rules.yml"
    rules.write_text(rules.read_text().replace("> 14.4", "> 20", 2))
    # The test cases of the 1h tier (seconds of promtool; the file's days-long cases add nothing here).
    test = out / "prometheus/tests/api/error-rate.test.yml"
    doc = yaml.safe_load(test.read_text())
    doc["tests"] = [c for c in doc["tests"] if c["name"].startswith("SLOBurnRate1h")]
    assert len(doc["tests"]) == 2
    test.write_text(yaml.safe_dump(doc, sort_keys=False))
    proc = subprocess.run(
        [promtool, "test", "rules", "tests/api/error-rate.test.yml"],
        cwd=out / "prometheus",
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode != 0
    assert "SLOBurnRate1h" in proc.stdout + proc.stderr


def test_explain_prints_the_math() -> None:
    result = CliRunner().invoke(app, ["explain", "--spec", str(DEFAULT_SPEC)])
    assert result.exit_code == 0, result.output
    assert "api / error-rate: objective 99.5% over 30d" in result.output
    assert "SLOBurnRate1h  1h/5m    14.4       7.2%           2%" in result.output
    assert "short period policy" in result.output  # search/latency is a 7d SLO
    # 100% errors on a 99.5% SLO: 1h * 14.4 * 0.005 = 259.2 s, + B/2 = 289 s
    assert "289s" in result.output


@pytest.mark.parametrize("spec_path", [DEFAULT_SPEC, ROOT / "examples/every-sli-kind.yaml"], ids=lambda p: p.name)
def test_the_first_firing_evaluation_by_bisection_is_the_scan_s(spec_path: Path) -> None:
    """first_over_threshold bisects where both ratios can only rise; a plain scan of every
    evaluation (the reference) finds the same time, for every tier, scenario shape and ratio
    reading (exact windows and the hourly rollups), the errors stopping before, at and after it."""
    from stackgen.render import rule_tests as rt

    def scanned(slo, tier, sc, onset, base, ratio):  # type: ignore[no-untyped-def]
        threshold = Fraction(tier.burn_rate) * Fraction(slo.budget)
        for t in range(onset + base, onset + 2 * tier.long_window + base, base):
            ratios = [ratio(slo, sc, t, w, base) for w in (tier.long_window, tier.short_window)]
            if all(r is not None and r > threshold for r in ratios):
                return t
        return None

    model = load_model(spec_path, None)
    base = model.stack.base_window
    checked = 0
    for slo in model.slos:
        for tier in slo.tiers:
            # On the grid, off it before the first base sample, and off it later.
            for onset in (0, base - 1, 6 * 3600 + 90):
                for error in (Decimal(1), Decimal(tier.burn_rate) * slo.budget * Decimal("1.1")):
                    for stop in (onset + tier.long_window // 3, onset + 3 * tier.long_window):
                        sc = rt.Scenario(step=base, end=stop + tier.long_window, onset=onset, stop=stop, error=error)
                        for ratio in (rt.exact_window_ratio, rt.window_ratio):
                            expected = scanned(slo, tier, sc, onset, base, ratio)
                            if expected is None:
                                with pytest.raises(AssertionError, match="never cross"):
                                    rt.first_over_threshold(slo, tier, sc, onset, base, ratio)
                            else:
                                assert rt.first_over_threshold(slo, tier, sc, onset, base, ratio) == expected
                            checked += 1
    assert checked > 100
