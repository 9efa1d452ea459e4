"""`stackgen import sloth`: Sloth's own examples (../shared/interop/sloth, v0.16.0) import into
specs that load, render, and alert at exactly the windows and burn-rate factors Sloth
generated for them (its _gen files); the Kubernetes form imports the same; a merge keeps the
spec as written; what cannot be carried over stops the import with its location."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stackgen.model import build_model
from stackgen.render import render_all
from stackgen.spec import load_spec_text
from tests.conftest import DEFAULT_SPEC, SHARED
from tests.test_interop_sloth import EXAMPLES, SLOTH, sloth_thresholds

pytestmark = pytest.mark.skipif(not SLOTH.is_dir(), reason="../shared/interop/sloth is not beside this checkout")


def stackgen(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stackgen", *args], capture_output=True, text=True, timeout=120)


def burn_thresholds(files: dict[str, str]) -> set[tuple[str, object]]:
    import re
    from decimal import Decimal

    ours = set()
    for path, text in files.items():
        if path.startswith("prometheus/rules/") and not path.endswith(("stack.rules.yml", ".dashboard.rules.yml")):
            for group in yaml.safe_load(text)["groups"]:
                for rule in group["rules"]:
                    if rule.get("alert", "").startswith("SLOBurnRate"):
                        for window, budget, rate in re.findall(
                            r"ratio_rate(\w+)\{[^}]*\} / ([0-9.]+) > ([0-9.]+)", rule["expr"]
                        ):
                            ours.add((window, (Decimal(rate) * Decimal(budget)).quantize(Decimal("1e-9"))))
    return ours


@pytest.mark.parametrize("example", EXAMPLES)
def test_sloths_examples_import_and_alert_at_sloths_thresholds(example: str, tmp_path: Path) -> None:
    out = tmp_path / "slos.yaml"
    proc = stackgen("import", "sloth", str(SLOTH / example), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert text.startswith("# yaml-language-server") and "Imported from Sloth" in text
    files = render_all(build_model(load_spec_text(text)))
    assert burn_thresholds(files) == sloth_thresholds(SLOTH / "_gen" / example) != set()


def test_the_kubernetes_form_imports_the_same(tmp_path: Path) -> None:
    plain = yaml.safe_load((SLOTH / "getting-started.yml").read_text())
    crd = {
        "apiVersion": "sloth.slok.dev/v1",
        "kind": "PrometheusServiceLevel",
        "metadata": {"name": "myservice-slos", "namespace": "default"},
        "spec": {k: v for k, v in plain.items() if k != "version"},
    }
    source = tmp_path / "crd.yaml"
    source.write_text("---\n" + yaml.safe_dump(crd) + "---\n")
    from_crd = stackgen("import", "sloth", str(source))
    from_plain = stackgen("import", "sloth", str(SLOTH / "getting-started.yml"))
    assert from_crd.returncode == from_plain.returncode == 0, from_crd.stderr

    def services(text: str) -> object:
        return yaml.safe_load(text)["services"]

    assert services(from_crd.stdout) == services(from_plain.stdout)
    assert "(myservice-slos)" in from_crd.stdout


def test_a_merge_adds_services_and_keeps_the_spec_as_written(tmp_path: Path) -> None:
    spec = tmp_path / "slos.yaml"
    original = DEFAULT_SPEC.read_text()
    spec.write_text(original)
    proc = stackgen("import", "sloth", str(SLOTH / "kubernetes-apiserver.yml"), "--into", str(spec))
    assert proc.returncode == 0, proc.stderr
    merged = spec.read_text()
    # Every line of the original is still there, in order; the import adds only lines.
    lines = iter(merged.splitlines())
    assert all(any(line == m for m in lines) for line in original.splitlines())
    model = build_model(load_spec_text(merged))
    assert "k8s-apiserver" in {s.name for s in model.services}
    assert len(model.services) == len(yaml.safe_load(original)["services"]) + 1
    # Importing again clashes with the service now in the spec: refused, file untouched.
    again = stackgen("import", "sloth", str(SLOTH / "kubernetes-apiserver.yml"), "--into", str(spec))
    assert again.returncode == 2 and "k8s-apiserver" in again.stderr and "Traceback" not in again.stderr
    assert spec.read_text() == merged


def test_disabled_alerts_keep_the_other_tiers(tmp_path: Path) -> None:
    sloth = yaml.safe_load((SLOTH / "getting-started.yml").read_text())
    sloth["slos"][0]["alerting"]["page_alert"] = {"disable": True}
    source = tmp_path / "s.yaml"
    source.write_text(yaml.safe_dump(sloth))
    proc = stackgen("import", "sloth", str(source))
    assert proc.returncode == 0, proc.stderr
    tiers = yaml.safe_load(proc.stdout)["services"][0]["slos"][0]["alerting"]["tiers"]
    assert [t["severity"] for t in tiers] == ["ticket", "ticket"]
    assert "Sloth disabled its page alerts" in proc.stdout


@pytest.mark.parametrize(
    ("document", "where", "message"),
    [
        (
            {
                "version": "prometheus/v1",
                "service": "x",
                "slos": [
                    {
                        "name": "a",
                        "objective": 99,
                        "sli": {"plugin": {"id": "sloth-common/kubernetes/apiserver/availability"}},
                    }
                ],
            },
            ":7: slos[0].sli.plugin",
            "plugin 'sloth-common/kubernetes/apiserver/availability' has no stackgen equivalent",
        ),
        ({"groups": []}, ":1: ", "not a Sloth spec"),
        ({"version": "prometheus/v1", "slos": []}, ":1: ", "names its service"),
    ],
    ids=["plugin SLI", "not Sloth", "no service"],
)
def test_what_cannot_be_imported_is_located_and_nothing_is_written(
    tmp_path: Path, document: dict[str, object], where: str, message: str
) -> None:
    source = tmp_path / "sloth.yaml"
    source.write_text(yaml.safe_dump(document, sort_keys=False))
    out = tmp_path / "out.yaml"
    proc = stackgen("import", "sloth", str(source), "--out", str(out))
    assert proc.returncode == 2 and f"{source}{where}" in proc.stderr and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()


def test_into_and_out_together_is_a_usage_error(tmp_path: Path) -> None:
    proc = stackgen("import", "sloth", str(SLOTH / "getting-started.yml"), "--into", "a.yaml", "--out", "b.yaml")
    assert proc.returncode == 2 and "not both" in proc.stderr


def test_sloth_names_become_stackgen_names() -> None:
    from stackgen.importers import NAME, stackgen_name

    for raw in ["My Service", "k8s_apiserver", "9lives", "--x--", "a" * 40, "Ünïcode-ok", "requests.availability"]:
        assert NAME.fullmatch(stackgen_name(raw)), raw
    assert SHARED.is_dir()
