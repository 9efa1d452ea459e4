"""`stackgen simulate`: incidents through the rendered rules (promtool) and routing (amtool).
The timeline agrees with SLO-MATH.md's detection times and with the generated unit tests'
math; routing is amtool's own answer; inhibition and escalation show; expectations fail the
command when unmet."""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree

import pytest
import yaml
from conftest import DEFAULT_SPEC, ROOT, require_tool
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from stackgen.cli import app
from stackgen.pipeline import load, render_model
from stackgen.render.rule_tests import detection
from stackgen.simulate import Result, simulate

SCENARIOS = sorted((ROOT / "examples/scenarios").glob("*.yaml"))


@pytest.fixture(scope="module")
def default_render():  # type: ignore[no-untyped-def]
    require_tool("promtool")
    require_tool("amtool")
    loaded, model = load(DEFAULT_SPEC, None)
    return model, render_model(loaded, model)


def scenario(tmp_path: Path, data: dict) -> Path:  # type: ignore[type-arg]
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_shipped_scenarios_meet_their_expectations(path: Path, tmp_path: Path) -> None:
    require_tool("promtool")
    picture = tmp_path / "timeline.svg"
    result = CliRunner().invoke(
        app, ["simulate", "--scenario", str(path), "--spec", str(DEFAULT_SPEC), "--svg", str(picture)]
    )
    assert result.exit_code == 0, result.output
    assert "every expectation met" in result.output
    # The picture: well-formed SVG, one bar (with its times) per alert in the timeline.
    root = ElementTree.parse(picture).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    bars = [r for r in root.iter(f"{ns}rect") if r.find(f"{ns}title") is not None]
    rows = [line for line in result.output.splitlines() if line.startswith(("+", "0s"))]
    assert len(bars) == len(rows) > 0
    # Under it, the burn rate per window of each simulated SLO, against each tier's threshold.
    curves = {c.find(f"{ns}title").text for c in root.iter(f"{ns}polyline")}
    assert {"5m window", "1h window", "6h window", "3d window"} <= curves
    texts = {t.text for t in root.iter(f"{ns}text")}
    assert "page 1h/5m > 14.4x" in texts and "ticket 3d/6h > 1x" in texts


@pytest.fixture(scope="module")
def full_outage(default_render, tmp_path_factory):  # type: ignore[no-untyped-def]
    """One hour of 100% errors on api/error-rate: every tier fires (one simulation, shared)."""
    model, files = default_render
    path = scenario(
        tmp_path_factory.mktemp("outage"),
        {"incidents": [{"slo": "api/error-rate", "duration": "1h", "errors": "100%"}]},
    )
    return model, simulate(model, files, path)[2]


def test_every_tier_fires_when_slo_math_says(full_outage) -> None:  # type: ignore[no-untyped-def]
    """Each page tier's first firing is within one evaluation interval of L*r*b/e + B/2 (the
    generated unit tests assert the same formula); ticket tiers, read from hourly rollups, at
    the first whole hour after it."""
    model, result = full_outage
    slo = next(s for s in model.slos if (s.service, s.name) == ("api", "error-rate"))
    base = model.stack.base_window
    fired = {s.name: s for s in result.spans if s.labels.get("slo") == "error-rate"}
    for tier in slo.tiers:
        predicted = float(detection(tier, slo.budget, slo.budget / slo.budget, base))  # e = 1: every request fails
        span = fired[f"SLOBurnRate{tier.long}"]
        if tier.long_window in slo.rollup_windows(base):
            assert predicted - base <= span.first <= predicted + 3600, (tier.long, span.first)
            assert span.first % 3600 == 0
        else:
            assert abs(span.first - predicted) <= base, (tier.long, span.first, predicted)
            assert "pagerduty-oncall" in span.receivers
        assert span.labels["tier"] == tier.severity
    assert len(fired) >= len(slo.tiers)


def test_routing_is_amtools_and_escalation_one_chain(full_outage) -> None:  # type: ignore[no-untyped-def]
    model, result = full_outage
    levels = [s for s in result.spans if s.name.startswith("EscalationLevel")]
    # One chain for the incident, though both page tiers fire.
    assert [s.labels["escalation_level"] for s in levels] == ["2", "3", "4"]
    first_page = min(s.first for s in result.spans if s.labels.get("tier") == "page")
    for span in levels:
        level = next(v for v in model.routing.escalation if str(v.level) == span.labels["escalation_level"])
        assert span.first - first_page == level.after  # the level's delay after the first page
        assert span.receivers == list(level.receivers)


def test_inhibition_marks_tickets_under_a_page(default_render, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """20% errors for 3h: the 1d ticket fires while the pages fire, and the rendered
    inhibit_rules (page inhibits ticket, same service and slo) suppress it."""
    model, files = default_render
    path = scenario(tmp_path, {"incidents": [{"slo": "api/error-rate", "duration": "3h", "errors": "20%"}]})
    _, _, result = simulate(model, files, path)
    ticket = next(s for s in result.spans if s.name == "SLOBurnRate1d")
    assert ticket.inhibited_by in ("SLOBurnRate1h", "SLOBurnRate6h")
    assert all(s.inhibited_by is None for s in result.spans if s.labels.get("tier") == "page")


def test_unmet_expectation_exits_1(tmp_path: Path) -> None:
    """On the end-to-end spec (1m and 10m windows: a fast simulation). 1% errors on a 99%
    objective burn at 1x: nothing fires."""
    require_tool("promtool")
    path = scenario(
        tmp_path,
        {
            "incidents": [{"slo": "app/errors", "duration": "10m", "errors": "1%"}],
            "expect": [{"alert": "SLOBurnRate1m", "within": "5m"}, {"receiver": "hook", "fires": False}],
        },
    )
    spec = ROOT / "tests/e2e/spec.yaml"
    result = CliRunner().invoke(app, ["simulate", "--scenario", str(path), "--spec", str(spec)])
    assert result.exit_code == 1, result.output
    assert "FAIL expect[0] SLOBurnRate1m fires within 5m: it never did" in result.output
    assert "FAIL expect[1]" not in result.output  # nothing paged: the second holds
    assert "(no alert fired)" in result.output


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"incidents": [{"slo": "api/nope", "duration": "1h", "errors": "5%"}]},
            "incidents[0].slo: 'api/nope' is no SLO",
        ),
        ({"incidents": [{"slo": "api/error-rate", "duration": "1h", "errors": "5"}]}, "an error ratio is in (0, 100%]"),
        ({"incidents": [{"slo": "api/error-rate", "duration": "soon", "errors": "5%"}]}, "incidents[0].duration:"),
        (
            {"incidents": [{"slo": "api/error-rate", "duration": "1h", "errors": "5%"}], "expect": [{"receiver": "x"}]},
            "expect[0].receiver: 'x' is no receiver",
        ),
        ({"incidents": []}, "a scenario is a mapping with incidents"),
    ],
)
def test_bad_scenarios_exit_2_with_a_location(tmp_path: Path, data: dict, message: str) -> None:  # type: ignore[type-arg]
    path = scenario(tmp_path, data)
    result = CliRunner().invoke(app, ["simulate", "--scenario", str(path), "--spec", str(DEFAULT_SPEC)])
    assert result.exit_code == 2, result.output
    assert str(path) in result.output and message in result.output
    assert "Traceback" not in result.output


class FakeAPI:
    """query_range as Prometheus answers it, refusing more than 11,000 points per series."""

    base = "http://fake"

    def __init__(self) -> None:
        self.calls = 0

    def get(self, path: str, params: list[tuple[str, str]]) -> dict:  # type: ignore[type-arg]
        args = dict(params)
        start, end, step = int(args["start"]), int(args["end"]), int(args["step"].rstrip("s"))
        assert (end - start) // step + 1 <= 11_000, "exceeded maximum resolution of 11,000 points per timeseries"
        self.calls += 1
        values = [[t, str(t)] for t in range(start, end + 1, step) if t % 600]  # a gap every 10 minutes
        return {"result": [{"metric": {"__name__": "m", "path": 'a"b\\c'}, "values": values}]}


def test_replay_fetches_long_history_in_pieces() -> None:
    from stackgen.simulate import fetched_series

    api = FakeAPI()
    start, step = 1_000_000_200, 15
    end = start + 3 * 86400  # 3d at 15s: 17,281 points, over Prometheus' 11,000
    (series,) = fetched_series(api, ["m"], start, end, step)
    assert api.calls == 2
    values = series["values"].split(" ")
    assert len(values) == (end - start) // step + 1
    for i in (0, 9_999, 10_000, 17_280):
        t = start + i * step
        assert values[i] == ("_" if t % 600 == 0 else str(t))
    assert series["series"] == 'm{path="a\\"b\\\\c"}'  # quoted as PromQL reads it


def test_an_intermittent_source_does_not_inhibit() -> None:
    from stackgen.simulate import Span, inhibit

    config = {
        "inhibit_rules": [{"source_matchers": ['tier="page"'], "target_matchers": ['tier="ticket"'], "equal": ["slo"]}]
    }
    page = Span({"alertname": "P", "tier": "page", "slo": "s"}, first=0, last=600, evaluations=11)
    ticket = Span({"alertname": "T", "tier": "ticket", "slo": "s"}, first=300, last=900, evaluations=11)
    other = Span({"alertname": "T", "tier": "ticket", "slo": "other"}, first=300, last=900, evaluations=11)
    inhibit([page, ticket, other], config, 60)
    assert ticket.inhibited_by == "P" and other.inhibited_by is None
    gappy = Span(
        {"alertname": "P", "tier": "page", "slo": "s"}, first=0, last=600, evaluations=3
    )  # fired, stopped, fired
    ticket.inhibited_by = None
    inhibit([gappy, ticket], config, 60)
    assert ticket.inhibited_by is None


# --- Phases, traffic, latency distributions and raw series (on short windows: fast) -----------


def small_spec(tmp_path: Path) -> Path:
    """The end-to-end spec (1m/12s page, 10m/1m ticket, 4 s evaluations) plus a latency SLO, a
    custom-PromQL SLO and a plain alert."""
    data = yaml.safe_load((ROOT / "tests/e2e/spec.yaml").read_text())
    app = data["services"][0]
    alerting = app["slos"][0]["alerting"]
    app["slos"] += [
        {
            "name": "latency",
            "objective": 95,
            "period": "1d",
            "sli": {"latency": {"histogram": "app_duration_seconds", "threshold": 0.25, "buckets": [0.1, 0.25, 1]}},
            "alerting": alerting,
        },
        {
            "name": "quality",
            "objective": 99,
            "period": "1d",
            "sli": {"raw": {"error_ratio": "1 - avg(avg_over_time(app_quality_ratio[{{window}}]))"}},
            "alerting": alerting,
        },
    ]
    data["alerts"] = [
        {"name": "QueueBacklog", "expr": "max(app_queue_size) > 500", "for": "2m", "severity": "warning",
         "service": "app", "summary": "backlog"}
    ]  # fmt: skip
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_scenario(tmp_path: Path, data: dict) -> Result:  # type: ignore[type-arg]
    require_tool("promtool")
    require_tool("amtool")
    loaded, model = load(small_spec(tmp_path), None)
    return simulate(model, render_model(loaded, model), scenario(tmp_path, data))[2]


def burn_at(result: Result, slo: str, window: str, t: int) -> float:
    return dict(result.burn[slo][window])[t]


def test_phases_and_traffic_weight_the_windows(tmp_path: Path) -> None:
    """5 minutes of 100% errors at 3x traffic, then steady: at +10m the 10m window holds 15
    bad of 20 units of traffic (0.75, 75x a 1% budget); at 1x it would be 0.5. A second,
    later phase of the same SLO (50% errors) moves its 1m window to 50x."""
    result = run_scenario(
        tmp_path,
        {
            "duration": "20m",
            "incidents": [
                {"slo": "app/errors", "duration": "5m", "errors": "100%", "traffic": "300%"},
                {"slo": "app/errors", "start": "15m", "duration": "5m", "errors": "50%"},
            ],
        },
    )
    assert burn_at(result, "app/errors", "10m", 600) == pytest.approx(75, rel=0.01)
    assert burn_at(result, "app/errors", "1m", 600) < 0.2  # steady, no errors
    assert burn_at(result, "app/errors", "1m", 1200) == pytest.approx(50, rel=0.01)
    pages = [s for s in result.spans if s.name == "SLOBurnRate1m"]
    assert len(pages) == 1 and not pages[0].continuous(result.interval)  # it fired in both phases
    assert result.thresholds["app/errors"] == [("page 1m/12s", 10.0), ("ticket 10m/1m", 2.0)]


def test_a_latency_distribution_becomes_the_share_over_the_threshold(tmp_path: Path) -> None:
    from statistics import NormalDist

    from stackgen.simulate import slower_than

    # Log-normal: p50 at the threshold means half is slower; p99 at it, 1%.
    assert slower_than(Decimal("0.25"), 0.25, 1.0) == Decimal("0.5")
    assert slower_than(Decimal("0.25"), 0.05, 0.25) == Decimal("0.01")
    expected = 1 - NormalDist(math.log(0.08), (math.log(2) - math.log(0.08)) / NormalDist().inv_cdf(0.99)).cdf(
        math.log(0.25)
    )
    share = slower_than(Decimal("0.25"), 0.08, 2.0)
    assert float(share) == pytest.approx(expected, abs=1e-6)
    result = run_scenario(
        tmp_path,
        {
            "duration": "10m",
            "incidents": [{"slo": "app/latency", "duration": "10m", "latency": {"p50": "80ms", "p99": "2s"}}],
        },
    )
    # The 1m window at +5m is all inside the phase: burn = share / 5% budget.
    assert burn_at(result, "app/latency", "1m", 296) == pytest.approx(float(share) / 0.05, rel=0.01)
    # 20.5% slower at a 5% budget is a 4.1x burn: the 2x ticket fires, the 10x page does not.
    fired = {s.name for s in result.spans if s.labels.get("slo") == "latency"}
    assert "SLOBurnRate10m" in fired and "SLOBurnRate1m" not in fired


def test_raw_series_feed_custom_promql_slos_and_plain_alerts(tmp_path: Path) -> None:
    """The custom-PromQL SLO (quality) and the plain alert read series given as they are."""
    result = run_scenario(
        tmp_path,
        {
            "duration": "15m",
            "series": [
                {"series": "app_quality_ratio", "values": "1x4 0.5x5 1x5"},
                {"series": 'app_queue_size{queue="orders"}', "values": "10x2 900x10", "every": "1m"},
            ],
            "expect": [
                {"alert": "SLOBurnRate1m", "slo": "app/quality", "within": "6m"},
                {"alert": "QueueBacklog", "within": "5m"},
                {"alert": "SLOBurnRate1m", "slo": "app/errors", "fires": False},
            ],
        },
    )
    assert result.failures == []
    backlog = next(s for s in result.spans if s.name == "QueueBacklog")
    assert backlog.first == 3 * 60 + 120  # "10x2" is three samples: over 500 from +3m, then for: 2m
    assert burn_at(result, "app/quality", "1m", 480) == pytest.approx(50, rel=0.01)  # 1 - 0.5 = 50x 1%


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"incidents": [{"slo": "app/errors", "duration": "5m", "latency": {"p50": "1s", "p99": "2s"}}]},
            "incidents[0].latency: app/errors has a events SLI: give errors instead",
        ),
        (
            {"incidents": [{"slo": "app/latency", "duration": "5m", "latency": {"p50": "2s", "p99": "1s"}}]},
            "incidents[0].latency: p99 must be above p50",
        ),
        (
            {
                "incidents": [
                    {"slo": "app/errors", "duration": "10m", "errors": "5%"},
                    {"slo": "app/errors", "start": "5m", "duration": "10m", "errors": "50%"},
                ]
            },
            "incidents of app/errors overlap",
        ),
        ({"series": [{"series": "m", "values": "1 2y3"}]}, "series[0].values: '2y3' is not promtool notation"),
        ({"series": [{"series": "rate(m[5m])", "values": "1"}]}, "series[0].series: write a metric name"),
        ({"incidents": [{"slo": "app/errors", "duration": "5m", "traffic": "0%"}]}, "incidents[0].traffic:"),
    ],
)
def test_bad_phases_and_series_exit_2(tmp_path: Path, data: dict, message: str) -> None:  # type: ignore[type-arg]
    path = scenario(tmp_path, data)
    result = CliRunner().invoke(app, ["simulate", "--scenario", str(path), "--spec", str(small_spec(tmp_path))])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(-5, 5).map(float), st.sampled_from([0.5, 1e-05, 2.25])), max_size=40))
def test_value_notation_round_trips(values: list[float | None]) -> None:
    from stackgen.simulate import compress, expand_values

    if not values:
        return
    assert expand_values(compress(values)) == values


def test_replay_fetches_the_metrics_a_custom_promql_sli_reads() -> None:
    from stackgen.pipeline import load_model
    from stackgen.simulate import raw_selectors

    spec = load_model(ROOT / "examples/every-sli-kind.yaml", None)
    wifi = next(s for s in spec.slos if s.name == "wifi")
    assert raw_selectors(wifi) == ["unifipoller_client_satisfaction_ratio"]


def test_only_the_first_group_of_a_grouped_slo_burns_in_a_phase() -> None:
    from stackgen.pipeline import load_model
    from stackgen.render.rule_tests import Scenario, input_series

    spec = load_model(ROOT / "examples/every-sli-kind.yaml", None)
    slo = next(s for s in spec.slos if s.group_by)
    sc = Scenario(step=30, end=900, onset=0, stop=0, error=Decimal(0), phases=((120, 600, Decimal("0.5"), Decimal(1)),))
    series = input_series(slo, sc)
    assert series is not None
    errors = {s["series"]: s["values"] for s in series if 'outcome="error"' in s["series"]}
    # route a burns (50 errors per step in the phase); route b's error counter never moves.
    assert errors == {
        'checkout_requests_total{outcome="error", route="a"}': "1000 1000+0x3 1050+50x15 1800+0x9",
        'checkout_requests_total{outcome="error", route="b"}': "1000 1000+0x29",
    }


def test_raw_series_finer_than_the_input_step_are_refused(tmp_path: Path) -> None:
    path = scenario(tmp_path, {"series": [{"series": "m", "values": "0+1x7", "every": "2s"}]})
    result = CliRunner().invoke(app, ["simulate", "--scenario", str(path), "--spec", str(DEFAULT_SPEC)])
    assert result.exit_code == 2 and "every must be a multiple of 30s" in result.output, result.output
