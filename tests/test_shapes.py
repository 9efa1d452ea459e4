"""One alerts test per SLO shape (stackgen/render/test_shapes.py): the claim it rests on.

One SLO of each shape gets the long alerts test; the others keep their recording test and
rely on their alert rules being the same, names aside. These tests prove that: over the
shipped specs, the seeds and generated specs where SLOs are cloned under other names, teams,
labels and selectors, SLOs of one shape have the same rules above their base rules; a covered
SLO passes its own alerts test under promtool; and the shape tells apart what the math reads.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stackgen import conventions as cv
from stackgen.model import SLO, Spec, build_model
from stackgen.pipeline import load_model
from stackgen.render import render_all, rule_tests, rules, test_shapes
from stackgen.spec.loader import load_spec_text
from tests.conftest import DEFAULT_SPEC, ROOT, require_tool
from tests.strategies import names, selectors, valid_spec

SPECS = [DEFAULT_SPEC, ROOT / "examples/every-sli-kind.yaml", *sorted((ROOT / "examples/seeds").glob("*.yaml"))]
# Alert labels that carry math; the rest name the SLO, its team and its owners' labels.
MATH_LABELS = ("severity", "tier", "category", "long_window", "short_window")


def upper_rules(spec: Spec, slo: SLO) -> list[tuple[Any, ...]]:
    """The SLO's rules above its two base rules, with its names taken out: what its alerts
    test exercises."""
    service = next(s for s in spec.services if s.name == slo.service)
    own = cv.slo_matchers(slo)
    base = {cv.bad_rate(spec.stack), cv.total_rate(spec.stack)}
    out: list[tuple[Any, ...]] = []
    for index, (_, group) in enumerate(rules.slo_rule_groups(spec, service, slo)):
        for rule in group["rules"]:
            if rule.get("record") in base:
                continue
            labels = {k: v for k, v in rule.get("labels", {}).items() if k in MATH_LABELS}
            name = rule.get("record") or rule["alert"]
            # own[:-1]: also in selectors that add a matcher ({service=..., slo=..., slo_events=...}).
            out.append((index, name, rule["expr"].replace(own[:-1], "{SLO"), rule.get("for"), labels))
    return out


def check_shapes(spec: Spec) -> int:
    """Every covered SLO's upper rules equal its representative's; returns how many were covered."""
    covered = 0
    for slo in spec.slos:
        rep = test_shapes.representative(spec, slo)
        if rep is None or rep is slo:
            continue
        covered += 1
        assert upper_rules(spec, slo) == upper_rules(spec, rep), f"{slo.service}/{slo.name} vs {rep.service}/{rep.name}"
    return covered


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_slos_of_one_shape_have_the_same_rules_but_for_names(path: Path) -> None:
    spec = load_model(path, None)
    check_shapes(spec)
    files = render_all(spec)
    for slo in spec.slos:
        rep = test_shapes.representative(spec, slo)
        if rep is None:  # untestable: its own no-data test
            assert cv.alerts_test_file(slo) in files
            continue
        # Every SLO has its recording test; exactly one of each shape has an alerts test.
        assert cv.recording_test_file(slo) in files
        assert (cv.alerts_test_file(slo) in files) == (rep is slo)
        if rep is not slo:
            assert f"{slo.service}/{slo.name}" in files[cv.alerts_test_file(rep)]
            assert cv.alerts_test_file(rep).removeprefix("prometheus/") in files[cv.rules_file(slo)]


def test_the_default_spec_shares_a_shape() -> None:
    """latency-list and latency-detail differ in threshold and route only: one alerts test."""
    spec = load_model(DEFAULT_SPEC, None)
    assert check_shapes(spec) == 1
    detail = next(s for s in spec.slos if s.name == "latency-detail")
    assert test_shapes.representative(spec, detail).name == "latency-list"


def test_the_shape_tells_apart_what_the_math_reads() -> None:
    spec = load_model(DEFAULT_SPEC, None)
    slo = next(s for s in spec.slos if s.name == "latency-list")
    variants = {
        "objective": dataclasses.replace(slo, objective=Decimal("99")),
        "period": dataclasses.replace(slo, period=slo.period // 2),
        "tiers": dataclasses.replace(slo, tiers=slo.tiers[:2]),
        "budget line": dataclasses.replace(slo, budget_low=Decimal("0.5")),
        "grouping": dataclasses.replace(slo, group_by=("route",), max_groups=10),
    }
    for what, other in variants.items():
        assert test_shapes.shape(other) != test_shapes.shape(slo), what
        assert upper_rules(spec, other) != upper_rules(spec, slo), what
    renamed = dataclasses.replace(slo, name="other", team="other", labels=(("tier2", "x"),), description="x")
    assert test_shapes.shape(renamed) == test_shapes.shape(slo)


@st.composite
def spec_with_clones(draw: st.DrawFn) -> dict[str, Any]:
    """A generated spec where some SLOs are copied into other services under other names,
    labels, descriptions and selectors of the same kind: shapes repeat, names do not."""
    spec = draw(valid_spec())
    services = spec["services"]
    originals = [slo for s in services for slo in s.get("slos", [])]
    if not originals:
        return spec
    for _ in range(draw(st.integers(1, 3))):
        slo = draw(st.sampled_from(originals))
        target = draw(st.sampled_from(services))
        clone = yaml.safe_load(yaml.safe_dump(slo))
        taken = {s["name"] for s in target.get("slos", [])}
        clone["name"] = draw(names.filter(lambda n, taken=taken: n not in taken))
        clone["description"] = draw(st.text(alphabet="abc {}%$", max_size=20))
        (body,) = clone["sli"].values()
        for key in ("bad", "good", "total", "selector"):  # another job's series: other base rules
            value = body.get(key)
            if isinstance(value, str) and "[" not in value and value.endswith("}"):
                body[key] = value[: value.index("{")] + draw(selectors(job=draw(names)))
        target.setdefault("slos", []).append(clone)
    return spec


@pytest.mark.slow
def test_generated_clones_share_rules_but_for_names() -> None:
    seen = {"covered": 0}

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True)
    @given(spec_with_clones())
    def check(raw: dict[str, Any]) -> None:
        try:
            spec = build_model(load_spec_text(yaml.safe_dump(raw, sort_keys=False)))
        except Exception as err:  # a clone may clash with a check of the spec (a route name): skip it
            if type(err).__name__ == "SpecError":
                return
            raise
        seen["covered"] += check_shapes(spec)

    check()
    assert seen["covered"] >= 20, seen


@pytest.mark.tools
def test_a_covered_slo_passes_its_own_alerts_test(tmp_path: Path, rendered: Path) -> None:
    """latency-detail has no alerts test of its own: the one it would have had passes. Test
    cases replaying up to a day of traffic run here (the longer ones take a minute each; the
    rule equality above carries them)."""
    promtool = require_tool("promtool")
    spec = load_model(DEFAULT_SPEC, None)
    slo = next(s for s in spec.slos if s.name == "latency-detail")
    service = next(s for s in spec.services if s.name == slo.service)
    doc = yaml.safe_load(rule_tests.slo_alerts_test(spec, service, slo))
    day = 86400 + 7200
    doc["tests"] = [t for t in doc["tests"] if max(seconds(c["eval_time"]) for c in t["alert_rule_test"]) <= day]
    assert {c["alertname"] for t in doc["tests"] for c in t["alert_rule_test"]} >= {
        "SLOBurnRate1h",
        "SLOBurnRate6h",
        "SLOBurnRate1d",
        cv.ALERT_ABSENT,
        cv.ALERT_BUDGET_LOW,
    }
    prometheus = tmp_path / "prometheus"
    shutil.copytree(rendered / "prometheus", prometheus)
    test = prometheus / "tests/api/latency-detail.test.yml"
    assert not test.exists()
    test.write_text(yaml.safe_dump(doc, sort_keys=False))
    proc = subprocess.run(
        [promtool, "test", "rules", "tests/api/latency-detail.test.yml"],
        cwd=prometheus,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]
    # And it can fail: the same test on a threshold that is off.
    rule_file = prometheus / "rules/api/latency-detail.rules.yml"
    rule_file.write_text(rule_file.read_text().replace("> 14.4", "> 20", 2))
    proc = subprocess.run(
        [promtool, "test", "rules", "tests/api/latency-detail.test.yml"], cwd=prometheus, capture_output=True, text=True
    )
    assert proc.returncode != 0 and "SLOBurnRate1h" in proc.stdout + proc.stderr


def seconds(text: str) -> int:
    from stackgen.durations import parse_duration

    return parse_duration(text)


def test_a_grouped_shape_is_tested_by_the_slo_whose_test_is_fullest(tmp_path: Path) -> None:
    """An SLO whose selector allows three routes cannot have max_groups + 1 = 21 groups
    synthesised (its limit case would be a no-data one): a later SLO of the shape that can is
    the one whose alerts test covers both."""
    text = (ROOT / "examples/every-sli-kind.yaml").read_text()
    pinned = """      - name: three-routes
        objective: 99.5
        description: The same shape, three routes only.
        group_by: [route]
        max_groups: 20
        sli:
          events:
            bad: 'checkout_requests_total{route=~"a|b|c", outcome="error"}'
            total: 'checkout_requests_total{route=~"a|b|c"}'
      - name: routes
"""
    path = tmp_path / "spec.yaml"
    path.write_text(text.replace("      - name: routes\n", pinned, 1))
    spec = load_model(path, None)
    one, routes = (next(s for s in spec.slos if s.name == n) for n in ("three-routes", "routes"))
    assert test_shapes.shape(one) == test_shapes.shape(routes)
    assert test_shapes.representative(spec, one) is routes
    assert test_shapes.covered(spec, routes) == [one]
    check_shapes(spec)
