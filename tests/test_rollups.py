"""Long windows from hourly rollups, and window rules that survive a spec edit.

The generated promtool tests (tests/test_slo_engine.py) prove each tier's timing with the
rollups' lag; here: which windows are rolled up, what the rules read, and a promtool test
of a team rename in the middle of the series (the rules of the renamed spec run over the
base series the old rules recorded), which fails against rules that do not aggregate.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import promql_parser
import pytest
import yaml

from stackgen import slo_math
from stackgen.model import build_model
from stackgen.render import render_all
from stackgen.spec import load_spec_text
from tests.conftest import DEFAULT_SPEC, require_tool

HOUR, DAY = 3600, 86400
SERVICE, SLO = "api", "error-rate"


def model(text: str):  # type: ignore[no-untyped-def]
    return build_model(load_spec_text(text))


def error_rate(m):  # type: ignore[no-untyped-def]
    return next(s for s in m.slos if s.service == SERVICE and s.name == SLO)


def test_rolled_up_windows_are_the_ticket_windows_and_the_period() -> None:
    m = model(DEFAULT_SPEC.read_text())
    slo = error_rate(m)
    assert slo.rollup_windows(m.stack.base_window) == {DAY, 3 * DAY, 30 * DAY}
    pages = {w for t in slo.tiers if t.severity == "page" for w in (t.long_window, t.short_window)}
    assert not pages & slo.rollup_windows(m.stack.base_window)


@pytest.mark.parametrize(
    ("windows", "pages", "base", "expected"),
    [
        ((300, HOUR, DAY, 30 * DAY), {300, HOUR}, 60, {DAY, 30 * DAY}),
        ((300, HOUR, DAY, 30 * DAY), {DAY, 300}, 60, {30 * DAY}),  # a page on 1d stays exact
        ((300, 23 * HOUR, 30 * DAY), set(), 60, {30 * DAY}),  # shorter than a day: exact
        ((DAY + 1800, 30 * DAY), set(), 30, {30 * DAY}),  # not whole hours: exact
        ((DAY, 30 * DAY), set(), 420, set()),  # 7m does not divide the hour: no rollups
        ((DAY, 30 * DAY), set(), 15, {DAY, 30 * DAY}),
    ],
)
def test_rollup_rule(windows: tuple[int, ...], pages: set[int], base: int, expected: set[int]) -> None:
    assert slo_math.rollup_windows(windows, frozenset(pages), base) == expected


def rules_of(files: dict[str, str]) -> dict[str, str]:
    doc = yaml.safe_load(files[f"prometheus/rules/{SERVICE}/{SLO}.rules.yml"])
    return {r["record"]: r["expr"] for g in doc["groups"] for r in g["rules"] if "record" in r}


def test_long_windows_read_rollups_and_short_windows_the_base_series() -> None:
    records = rules_of(render_all(model(DEFAULT_SPEC.read_text())))
    assert records["slo:sli_bad_events:rate1m_sum1h"] == (
        f'sum(sum_over_time(slo:sli_bad_events:rate1m{{service="{SERVICE}", slo="{SLO}"}}[59m59s]))'
    )
    for window, source, rng in [
        ("5m", "rate1m", "4m59s"),
        ("6h", "rate1m", "5h59m59s"),
        ("1d", "rate1m_sum1h", "23h59m59s:1h"),
        ("30d", "rate1m_sum1h", "29d23h59m59s:1h"),
    ]:
        expr = records[f"slo:sli_error:ratio_rate{window}"]
        promql_parser.parse(expr)
        assert f"slo:sli_bad_events:{source}{{" in expr and f"[{rng}]" in expr, expr
        assert f"slo:sli_total_events:{source}{{" in expr


# --- a team rename in the middle of the series --------------------------------------------

STEP = 30  # input samples every 30s: rate() over 1m sees three of them in Prometheus 2 and 3
RENAME = 120 * 60  # the new rules' raw counters start here; the old base series end here
ERRORS_FROM = 105 * 60  # 100% errors from here (old rules) on (new rules) ...
ERRORS_TO = 135 * 60  # ... to here
RATE = 10  # events per second, all the time


def _every_minute(first: int, last: int, value_at) -> str:  # type: ignore[no-untyped-def]
    """promtool values at STEP: a sample each whole minute in [first, last], missing otherwise."""
    out = []
    for i in range(last // STEP + 1):
        t = i * STEP
        out.append(str(value_at(t)) if first <= t <= last and t % 60 == 0 else "_")
    return " ".join(out)


def _counter_from(start: int, end: int, increment_at) -> str:  # type: ignore[no-untyped-def]
    out, value = [], 0
    for i in range(end // STEP + 1):
        t = i * STEP
        if t < start:
            out.append("_")
            continue
        if t > start:
            value += increment_at(t)
        out.append(str(value))
    return " ".join(out)


def rename_test(rule_file: str, old_team: str, new_team: str, end: int) -> dict:  # type: ignore[type-arg]
    labels = f'service="{SERVICE}", slo="{SLO}"'

    def errors(t: int) -> bool:
        return ERRORS_FROM < t <= ERRORS_TO

    old = [
        # What the old rules recorded until the rename, one base sample per minute.
        {
            "series": f'slo:sli_total_events:rate1m{{{labels}, team="{old_team}"}}',
            "values": _every_minute(60, RENAME, lambda t: RATE),
        },
        {
            "series": f'slo:sli_bad_events:rate1m{{{labels}, team="{old_team}"}}',
            "values": _every_minute(60, RENAME, lambda t: RATE if errors(t) else 0),
        },
    ]
    raw = [
        {
            "series": 'http_requests_total{job="api", code="500"}',
            "values": _counter_from(RENAME, end, lambda t: RATE * STEP if errors(t) else 0),
        },
        {
            "series": 'http_requests_total{job="api", code="200"}',
            "values": _counter_from(RENAME, end, lambda t: 0 if errors(t) else RATE * STEP),
        },
    ]
    at = f"{ERRORS_TO // 60}m"
    # By SLO-MATH's ratio of sums over the base samples at whole minutes in (t - W, t]:
    # 1h at 135m: 30 error minutes (106..135) of 60. 1d, read at the last whole hour (120m):
    # 15 error minutes (106..120) of 120.
    new = f'service="{SERVICE}", slo="{SLO}", team="{new_team}"'
    return {
        "rule_files": [rule_file],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": f"{STEP}s",
                "input_series": old + raw,
                "promql_expr_test": [
                    {
                        "expr": "slo:sli_error:ratio_rate1h",
                        "eval_time": at,
                        "exp_samples": [{"labels": f"slo:sli_error:ratio_rate1h{{{new}}}", "value": 0.5}],
                    },
                    {
                        "expr": "slo:sli_error:ratio_rate1d",
                        "eval_time": at,
                        "exp_samples": [{"labels": f"slo:sli_error:ratio_rate1d{{{new}}}", "value": 0.125}],
                    },
                    {
                        # The period, exact to the minute: 30 error minutes of 135, none
                        # counted twice while the old team's series lingers in the lookback.
                        "expr": "abs(slo:sli_error:ratio_rate30d - 30 / 135) < bool 1e-12",
                        "eval_time": at,
                        "exp_samples": [{"labels": f"{{{new}}}", "value": 1}],
                    },
                    {
                        "expr": 'count by (team) (ALERTS{alertname="SLOBurnRate1h", alertstate="firing"})',
                        "eval_time": at,
                        "exp_samples": [{"labels": f'{{team="{new_team}"}}', "value": 1}],
                    },
                ],
            }
        ],
    }


def run_rename(tmp_path: Path, mutate: bool) -> subprocess.CompletedProcess[str]:
    promtool = require_tool("promtool")
    text = DEFAULT_SPEC.read_text()
    assert "team: storefront" in text
    renamed = render_all(model(text.replace("team: storefront", "team: checkout", 1)))
    rules = renamed[f"prometheus/rules/{SERVICE}/{SLO}.rules.yml"]
    if mutate:  # the window rules as they were before: no aggregation over the series' labels
        rules, n = re.subn(r"sum\((sum_over_time\([^()]*\))\)", r"\1", rules)
        assert n > 10
    (tmp_path / "rules.yml").write_text(rules)
    test = rename_test("rules.yml", "storefront", "checkout", ERRORS_TO + HOUR)
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
    return subprocess.run(
        [promtool, "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )


def test_window_rules_survive_a_team_rename(tmp_path: Path) -> None:
    result = run_rename(tmp_path, mutate=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rename_test_fails_on_rules_that_keep_the_series_labels(tmp_path: Path) -> None:
    result = run_rename(tmp_path, mutate=True)
    assert result.returncode != 0
    assert "vector contains metrics with the same labelset" in result.stdout + result.stderr, result.stdout


# --- the generated tests see a wrong rollup --------------------------------------------------


def _run_case(  # type: ignore[no-untyped-def]
    rendered: Path, tmp_path: Path, test_file: str, case_prefix: str, mutate
) -> subprocess.CompletedProcess[str]:
    """One case of a generated test file, on a copy of the output whose rule file `mutate` edits."""
    import shutil

    promtool = require_tool("promtool")
    out = tmp_path / "out"
    shutil.copytree(rendered, out)
    rules = out / f"prometheus/rules/{SERVICE}/{SLO}.rules.yml"
    rules.write_text(mutate(rules.read_text()))
    test = out / "prometheus" / test_file
    doc = yaml.safe_load(test.read_text())
    doc["tests"] = [c for c in doc["tests"] if c["name"].startswith(case_prefix)]
    assert len(doc["tests"]) == 1
    test.write_text(yaml.safe_dump(doc, sort_keys=False))
    return subprocess.run(
        [promtool, "test", "rules", test_file], cwd=out / "prometheus", capture_output=True, text=True, timeout=600
    )


ROLLUP_RANGE = "[59m59s]))\n    labels"


@pytest.mark.tools
@pytest.mark.parametrize("rng", ["[59m59s]", "[1h]"])
def test_the_outage_case_checks_that_a_rollup_sums_one_hour(rendered: Path, tmp_path: Path, rng: str) -> None:
    """The hourly tests hold one base sample per rollup, so they cannot see the rollup's own
    range: the 1m outage case checks it at its onset. A `[1h]` range sums 61 samples."""

    def mutate(text: str) -> str:
        assert text.count(ROLLUP_RANGE) == 2  # the bad and total rollups
        return text.replace(ROLLUP_RANGE, f"{rng}))\n    labels")

    proc = _run_case(rendered, tmp_path, f"tests/{SERVICE}/{SLO}.test.yml", "100% errors", mutate)
    if rng == "[59m59s]":
        assert proc.returncode == 0, proc.stdout + proc.stderr
    else:
        assert proc.returncode != 0
        said = proc.stdout + proc.stderr
        assert "rate1m_sum1h" in said and "got: {" in said, said


@pytest.mark.tools
def test_the_hourly_test_fails_on_a_rolled_window_that_averages_ratios(rendered: Path, tmp_path: Path) -> None:
    """The 1d window, evaluated hourly with 10x day/night traffic: a mean of the hourly
    ratios instead of their ratio of sums fails its check."""
    sel = f'{{service="{SERVICE}", slo="{SLO}"}}'
    ratio_of_sums = (
        f"sum(sum_over_time(slo:sli_bad_events:rate1m_sum1h{sel}[23h59m59s:1h]))\n      /\n      "
        f"(sum(sum_over_time(slo:sli_total_events:rate1m_sum1h{sel}[23h59m59s:1h])) > 0)"
    )
    mean = (
        f"sum(avg_over_time((slo:sli_bad_events:rate1m_sum1h{sel} / slo:sli_total_events:rate1m_sum1h{sel})"
        "[23h59m59s:1h]))"
    )

    def mutate(text: str) -> str:
        assert text.count(ratio_of_sums) == 1
        return text.replace(ratio_of_sums, mean)

    proc = _run_case(rendered, tmp_path, f"tests/{SERVICE}/{SLO}.hourly.test.yml", "Recording rules", mutate)
    assert proc.returncode != 0
    assert "slo:sli_error:ratio_rate1d" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


# --- the period to the minute -------------------------------------------------------------


def _period_spec() -> str:
    """api/error-rate (alone in its service), over a 1d period (so a test can replay more than a period at 1m),
    with one page tier: its windows are 5m and 1h exact, the 1d period from hourly rollups."""
    data = yaml.safe_load(DEFAULT_SPEC.read_text())
    service = next(s for s in data["services"] if s["name"] == SERVICE)
    slo = next(s for s in service["slos"] if s["name"] == SLO)
    slo["period"] = "1d"
    slo.setdefault("alerting", {})["tiers"] = [
        {"severity": "page", "long_window": "1h", "short_window": "5m", "burn_rate": 14.4}
    ]
    service["slos"] = [slo]
    return yaml.safe_dump(data, sort_keys=False)


BURSTS = ((10 * 60, 20 * 60), (DAY + 10 * 60, DAY + 15 * 60))  # 100% errors in these (start, end]


def _period_case(tmp_path: Path, rules_text: str) -> subprocess.CompletedProcess[str]:
    """Constant traffic, a 10-minute burst in the first hour and a 5-minute one a day later.
    At 1d30m the period (30m, 1d30m] holds the second burst only: 5 of 1,440 base samples.
    Read from the rollups alone it would be (0, 1d]: 10 of 1,440; with this hour but without
    taking off the same minutes a day ago, 15 of 1,470. On the mark (1d) it is 10 of 1,440."""
    promtool = require_tool("promtool")
    (tmp_path / "rules.yml").write_text(rules_text)
    end = DAY + 31 * 60

    def bad(t: int) -> bool:
        return any(start < t <= stop for start, stop in BURSTS)

    doc = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": f"{STEP}s",
                "input_series": [
                    {
                        "series": 'http_requests_total{job="api", code="500"}',
                        "values": _counter_from(0, end, lambda t: RATE * STEP if bad(t) else 0),
                    },
                    {
                        "series": 'http_requests_total{job="api", code="200"}',
                        "values": _counter_from(0, end, lambda t: 0 if bad(t) else RATE * STEP),
                    },
                ],
                "promql_expr_test": [
                    {
                        "expr": f'abs(slo:sli_error:ratio_rate1d{{service="{SERVICE}"}} - {bad_n} / 1440) < bool 1e-12',
                        "eval_time": when,
                        "exp_samples": [
                            {"labels": f'{{service="{SERVICE}", slo="{SLO}", team="storefront"}}', "value": 1}
                        ],
                    }
                    for when, bad_n in (("1d", 10), ("1d30m", 5))
                ],
            }
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return subprocess.run(
        [promtool, "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )


def _period_rules() -> str:
    files = render_all(model(_period_spec()))
    return files[f"prometheus/rules/{SERVICE}/{SLO}.rules.yml"]


@pytest.mark.tools
def test_the_period_is_exact_to_the_minute(tmp_path: Path) -> None:
    """The period's ratio of sums mid-hour, a period after an incident: this hour so far is
    added to the hourly rollups, and the same minutes a period ago are taken off."""
    rules = _period_rules()
    assert "offset 1d" in rules
    proc = _period_case(tmp_path, rules)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.tools
@pytest.mark.parametrize("part", ["this hour", "a period ago"])
def test_the_period_check_fails_without_either_part(tmp_path: Path, part: str) -> None:
    rules = _period_rules()
    doc = yaml.safe_load(rules)
    for group in doc["groups"]:
        for rule in group["rules"]:
            if rule.get("record") == "slo:sli_error:ratio_rate1d":
                lines = rule["expr"].splitlines()

                def dropped(line: str) -> bool:
                    if not line.strip().startswith(("+", "-")):
                        return False
                    return "offset 1d" in line if part == "a period ago" else "offset" not in line

                kept = [line for line in lines if not dropped(line)]
                assert len(kept) == len(lines) - 2, rule["expr"]
                rule["expr"] = "\n".join(kept)
    proc = _period_case(tmp_path, yaml.safe_dump(doc, sort_keys=False))
    assert proc.returncode != 0
    assert "ratio_rate1d" in proc.stdout + proc.stderr
