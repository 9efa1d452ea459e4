"""Users migrating from Sloth: its example specs (../shared/interop/sloth, Sloth v0.16.0)
translate into stackgen specs that render, pass promtool, and alert at the same burn-rate
thresholds Sloth generated for them."""

from __future__ import annotations

import re
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackgen.errors import SpecError
from stackgen.model import RESERVED_LABELS, build_model
from stackgen.render import render_all
from stackgen.spec import load_spec_text
from stackgen.writer import write_tree
from tests.conftest import DEFAULT_SPEC, SHARED, require_tool

SLOTH = SHARED / "interop/sloth"
EXAMPLES = ["getting-started.yml", "kubernetes-apiserver.yml", "raw-home-wifi.yml"]

pytestmark = pytest.mark.skipif(not SLOTH.is_dir(), reason="../shared/interop/sloth is not beside this checkout")


def name(text: str) -> str:
    return re.sub(r"[^a-z0-9-]", "-", text.lower())[:30].strip("-")


def from_sloth(sloth: dict[str, Any]) -> dict[str, Any]:
    """A stackgen spec from a Sloth prometheus/v1 spec (SLIs: events and raw)."""
    spec = yaml.safe_load(DEFAULT_SPEC.read_text())
    slos = []
    for slo in sloth["slos"]:
        sli = slo["sli"]
        if "events" in sli:
            ours = {
                "events": {
                    "bad": sli["events"]["error_query"].replace("{{.window}}", "{{window}}"),
                    "total": sli["events"]["total_query"].replace("{{.window}}", "{{window}}"),
                }
            }
        else:
            ours = {"raw": {"error_ratio": sli["raw"]["error_ratio_query"].replace("{{.window}}", "{{window}}")}}
        slos.append(
            {
                "name": name(slo["name"]),
                "objective": slo["objective"],
                "sli": ours,
                "description": slo.get("description", ""),
            }
        )
    spec["services"] = [
        {
            "name": name(sloth["service"]),
            "team": "storefront",
            "slos": slos,
            # Sloth's `tier: "2"` would overwrite the tier label stackgen's routing reads.
            "labels": {
                (f"sloth_{k}" if k in RESERVED_LABELS else k): str(v) for k, v in sloth.get("labels", {}).items()
            },
        }
    ]
    spec["logs"]["alerts"] = {}
    # The demo's team routes and log sources name its own services and teams.
    spec["routing"].pop("teams", None)
    spec.pop("alerts", None)
    spec["logs"]["sources"] = [s for s in spec["logs"].get("sources", []) if "service" not in s]
    return spec


def sloth_thresholds(generated: Path) -> set[tuple[str, Decimal]]:
    """(short window, burn rate x error budget) pairs in Sloth's generated page/ticket alerts."""
    pairs = set()
    for doc in yaml.safe_load_all(generated.read_text()):
        for group in (doc or {}).get("groups", []):
            for rule in group["rules"]:
                if "alert" in rule:
                    for window, rate, budget in re.findall(
                        r"ratio_rate(\w+)\{[^}]*\} > \(([0-9.]+) \* ([0-9.e-]+)\)", rule["expr"]
                    ):
                        pairs.add((window, (Decimal(rate) * Decimal(budget)).quantize(Decimal("1e-9"))))
    return pairs


@pytest.mark.parametrize("example", EXAMPLES)
def test_sloth_examples_translate_and_alert_at_sloths_thresholds(example: str) -> None:
    spec = from_sloth(yaml.safe_load((SLOTH / example).read_text()))
    files = render_all(build_model(load_spec_text(yaml.safe_dump(spec))))
    ours = set()
    for path, text in files.items():
        if path.startswith("prometheus/rules/") and not path.endswith(("stack.rules.yml", ".dashboard.rules.yml")):
            for rule in yaml.safe_load(text)["groups"][0]["rules"]:
                if rule.get("alert", "").startswith("SLOBurnRate"):
                    for window, budget, rate in re.findall(
                        r"ratio_rate(\w+)\{[^}]*\} / ([0-9.]+) > ([0-9.]+)", rule["expr"]
                    ):
                        ours.add((window, (Decimal(rate) * Decimal(budget)).quantize(Decimal("1e-9"))))
    theirs = sloth_thresholds(SLOTH / "_gen" / example)
    assert theirs and ours == theirs


def test_a_sloth_label_named_like_stackgens_is_rejected_with_its_location() -> None:
    spec = from_sloth(yaml.safe_load((SLOTH / "getting-started.yml").read_text()))
    labels = spec["services"][0]["labels"]
    labels["tier"] = labels.pop("sloth_tier")
    with pytest.raises(SpecError) as caught:
        build_model(load_spec_text(yaml.safe_dump(spec, sort_keys=False)))
    assert "services[0].labels.tier: 'tier' is set by stackgen; pick another label name" in str(caught.value)


@pytest.mark.tools
def test_translated_sloth_specs_pass_promtool(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    for example in EXAMPLES:
        out = tmp_path / example
        write_tree(
            render_all(
                build_model(load_spec_text(yaml.safe_dump(from_sloth(yaml.safe_load((SLOTH / example).read_text())))))
            ),
            out,
        )
        rules = [str(p) for p in (out / "prometheus/rules").rglob("*.rules.yml")]
        proc = subprocess.run([promtool, "check", "rules", *rules], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
