"""The real tools judge the rendered default stack: promtool, amtool, the compose-spec schema."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from check_jsonschema.builtin_schemas import get_builtin_schema

from stackgen.durations import format_duration, parse_duration
from tests.conftest import require_tool

pytestmark = pytest.mark.tools


def run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=900)


def test_promtool_check_config(rendered: Path) -> None:
    promtool = require_tool("promtool")
    proc = run([promtool, "check", "config", "prometheus/prometheus.yml"], cwd=rendered)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_promtool_check_rules(rendered: Path) -> None:
    promtool = require_tool("promtool")
    files = sorted(str(p) for p in (rendered / "prometheus/rules").rglob("*.rules.yml"))
    assert len(files) >= 2
    proc = run([promtool, "check", "rules", *files])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_amtool_check_config(rendered: Path) -> None:
    amtool = require_tool("amtool")
    proc = run([amtool, "check-config", str(rendered / "alertmanager/alertmanager.yml")])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_compose_file_validates_against_compose_spec(rendered: Path) -> None:
    schema = get_builtin_schema("vendor.compose-spec")
    data = yaml.safe_load((rendered / "docker-compose.yml").read_text())
    errors = list(jsonschema.validators.validator_for(schema)(schema).iter_errors(data))
    assert not errors, [e.message for e in errors]


def test_compose_schema_check_can_fail() -> None:
    schema = get_builtin_schema("vendor.compose-spec")
    broken = {"services": {"prometheus": {"image": "x", "volume": ["./a:/b"]}}}
    assert list(jsonschema.validators.validator_for(schema)(schema).iter_errors(broken))


def test_stackgen_validate_passes_on_the_default_stack(validate_run: subprocess.CompletedProcess[str]) -> None:
    assert validate_run.returncode == 0, validate_run.stdout + validate_run.stderr
    assert " 0 failed" in validate_run.stdout
    lines = validate_run.stdout.splitlines()
    # It says first what it will run (the unit tests take minutes), then a line per check.
    assert lines[0].startswith("validating ") and "unit-test files" in lines[0]
    checks = [line for line in lines if line.startswith(("ok ", "FAIL", "MISSING"))]
    assert len(checks) == int(lines[-1].split()[0]) and lines[-1].endswith(" 0 failed")
    for check in (
        "promtool check config",
        "promtool check rules",
        "promtool test rules",
        "amtool check-config",
        "amtool config routes test",
        "compose-spec schema",
    ):
        assert any(line.startswith("ok") and check in line for line in validate_run.stdout.splitlines()), check


def test_stackgen_validate_fails_on_a_broken_rule(tmp_path: Path) -> None:
    """On a small spec (seconds of promtool, not minutes): one broken rule fails validate. The
    e2e spec's 4 s evaluations would make its recording test replay a day in 21,600 steps."""
    require_tool("promtool")
    from tests.conftest import ROOT

    data = yaml.safe_load((ROOT / "tests/e2e/spec.yaml").read_text())
    data["stack"].update(scrape_interval="15s", evaluation_interval="1m")
    data["services"][0]["slos"][0]["alerting"]["tiers"] = [
        {"severity": "page", "long_window": "1h", "short_window": "5m", "burn_rate": 14.4},
        {"severity": "ticket", "long_window": "6h", "short_window": "30m", "burn_rate": 6},
    ]
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    out = tmp_path / "out"
    assert run([sys.executable, "-m", "stackgen", "render", "--spec", str(spec), "--out", str(out)]).returncode == 0
    rules = out / "prometheus/rules/stack.rules.yml"
    rules.write_text(rules.read_text().replace("expr: vector(1)", "expr: vector(1"))
    proc = run([sys.executable, "-m", "stackgen", "validate", "--spec", str(spec), "--out", str(out)])
    assert proc.returncode == 1
    assert "FAIL promtool check rules" in proc.stdout


def test_stackgen_validate_reports_every_check_before_a_spec_that_no_longer_loads(tmp_path: Path) -> None:
    """The spec is broken after the render: every check of the output still reports its line
    (none is dropped when the "matches the spec" check fails to load it), then the located
    spec error, exit 2."""
    require_tool("promtool")
    from tests.conftest import ROOT

    spec = tmp_path / "spec.yaml"
    spec.write_text((ROOT / "tests/e2e/spec.yaml").read_text())
    out = tmp_path / "out"
    assert run([sys.executable, "-m", "stackgen", "render", "--spec", str(spec), "--out", str(out)]).returncode == 0
    data = yaml.safe_load(spec.read_text())
    data["services"][0]["slos"][0]["objective"] = 200
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    proc = run([sys.executable, "-m", "stackgen", "validate", "--spec", str(spec), "--out", str(out)])
    assert proc.returncode == 2, proc.stdout + proc.stderr
    tests = sorted(p.relative_to(out / "prometheus") for p in (out / "prometheus/tests").rglob("*.test.yml"))
    assert tests
    for test in tests:
        assert f"ok   promtool test rules {test}" in proc.stdout, proc.stdout
    assert "ok   amtool check-config" in proc.stdout and "objective" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("level", ["EscalationLevel2", "EscalationLevel3", "EscalationLevel4"])
def test_a_wrong_delay_on_any_escalation_level_fails_the_stack_test(rendered: Path, tmp_path: Path, level: str) -> None:
    """The generated stack test keeps the source firing until the last level is due, so each
    level is asserted firing at its delay: ten minutes more on any level's `for:` fails it."""
    require_tool("promtool")
    prometheus = tmp_path / "prometheus"
    shutil.copytree(rendered / "prometheus", prometheus)
    rules = prometheus / "rules/stack.rules.yml"
    text = rules.read_text()
    start = text.index(f"- alert: {level}\n")
    head, tail = text[:start], text[start:]
    match = re.search(r"for: (\S+)", tail)
    assert match
    late = format_duration(parse_duration(match.group(1)) + 600)
    rules.write_text(head + tail.replace(f"for: {match.group(1)}", f"for: {late}", 1))
    proc = run(["promtool", "test", "rules", "tests/stack.test.yml"], cwd=prometheus)
    assert proc.returncode != 0 and level in proc.stdout + proc.stderr, proc.stdout[-1500:]


def test_escalating_each_tier_separately_fails_the_stack_test(rendered: Path, tmp_path: Path) -> None:
    """Before: each firing tier started its own chain (an outage paged each level twice).
    The generated test catches a rule that escalates per alert again."""
    require_tool("promtool")
    prometheus = tmp_path / "prometheus"
    shutil.copytree(rendered / "prometheus", prometheus)
    rules = prometheus / "rules/stack.rules.yml"
    data = yaml.safe_load(rules.read_text())
    for group in data["groups"]:
        for rule in group["rules"]:
            if rule.get("alert", "").startswith("EscalationLevel"):
                rule["expr"] = 'ALERTS{alertstate="firing", severity="critical", escalation_level=""}'
                rule["labels"]["escalated_alertname"] = "{{ $labels.alertname }}"
    rules.write_text(yaml.safe_dump(data))
    proc = run(["promtool", "test", "rules", "tests/stack.test.yml"], cwd=prometheus)
    output = proc.stdout + proc.stderr
    # The per-tier rule starts a chain per firing tier: the test sees one escalation too many.
    assert proc.returncode != 0 and 'escalated_alertname="SLOBurnRate' in output, output[-1500:]


@pytest.mark.parametrize(
    ("code", "status", "stderr"),
    [("None", 0, ""), ("0", 0, ""), ("2", 2, ""), ("'boom'", 1, "boom\n"), ("256 + 3", 3, "")],
)
def test_the_cli_ends_as_sys_exit_would(code: str, status: int, stderr: str) -> None:
    """main() ends the process without the interpreter's teardown: the same status and the
    same last words as sys.exit(code), and what was printed is delivered (a pipe here)."""
    script = f"import sys; from stackgen.cli import _exit; print('said'); _exit({code})"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (status, "said\n", stderr)
    reference = subprocess.run(
        [sys.executable, "-c", f"import sys; print('said'); sys.exit({code})"], capture_output=True, text=True
    )
    assert (reference.returncode, reference.stderr) == (status, stderr)


def test_the_cli_ends_as_sys_exit_would_with_its_output_closed() -> None:
    """Started with stdout closed (`stackgen render >&-` from cron), Python has no sys.stdout:
    the status is still 0, with nothing on stderr."""
    script = "from stackgen.cli import _exit; _exit(0)"
    done = subprocess.run(["bash", "-c", f"'{sys.executable}' -c '{script}' >&-"], capture_output=True, text=True)
    assert (done.returncode, done.stderr) == (0, "")
