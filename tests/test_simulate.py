"""`stackgen simulate`: incidents through the rendered rules (promtool) and routing (amtool).
The timeline agrees with SLO-MATH.md's detection times and with the generated unit tests'
math; routing is amtool's own answer; inhibition and escalation show; expectations fail the
command when unmet."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import pytest
import yaml
from conftest import DEFAULT_SPEC, ROOT, require_tool
from typer.testing import CliRunner

from stackgen.cli import app
from stackgen.pipeline import load, render_model
from stackgen.render.rule_tests import detection
from stackgen.simulate import simulate

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
