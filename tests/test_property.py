"""Property tests: every valid spec renders into configs promtool and amtool accept; every
broken spec exits 2 with `file:line: path: message` lines and never a traceback.

Budgets: `make test` runs VALID_EXAMPLES generated specs and INVALID_EXAMPLES mutated ones
(seeded, derandomized: the same cases every run); `make fuzz` sets STACKGEN_FUZZ_EXAMPLES
and runs that many of each. Each test prints its count (`pytest -s`).
"""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from stackgen.cli import app
from stackgen.errors import SpecError
from stackgen.model import build_model
from stackgen.render import render_all
from stackgen.spec import load_spec_text
from stackgen.spec.loader import _fast_accepts, _validator
from stackgen.validate import config_for_amtool, missing_secret_files, tool_version
from stackgen.writer import write_tree
from tests.conftest import DEFAULT_SPEC, require_tool
from tests.strategies import MUTATIONS, Expect, invalid_case, valid_spec

FUZZ = int(os.environ.get("STACKGEN_FUZZ_EXAMPLES", "0"))
VALID_EXAMPLES = FUZZ or 120
INVALID_EXAMPLES = FUZZ or 300
TEXT_EXAMPLES = FUZZ // 4 or 60
PROFILE = settings(
    derandomize=True,  # seeded from the test's name: the same cases on every run and machine
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
LOCATED = re.compile(r"^  (?P<file>[^:\n]+):(?P<line>\d+): (?P<rest>.*)$")


def dump(spec: dict[str, Any]) -> str:
    return yaml.safe_dump(spec, allow_unicode=True, sort_keys=False, width=1000)


def expected_line(text: str, path: tuple[str | int, ...]) -> int:
    """Line the loader should name for path: the key's line in a mapping, the item's first
    line in a list; the nearest existing ancestor when path is gone. Computed from PyYAML's
    node marks independently of the loader's walk."""
    node = yaml.compose(text)
    line = node.start_mark.line + 1
    for part in path:
        if isinstance(node, yaml.MappingNode):
            hit = next(((k, v) for k, v in node.value if k.value == part), None)
            if hit is None:
                break
            line, node = hit[0].start_mark.line + 1, hit[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


# ---- valid specs

# What the generated specs must cover between them (asserted after the run).
FEATURES = {
    "sli:events",
    "sli:events-window",
    "sli:latency",
    "sli:native",
    "sli:availability",
    "sli:raw",
    "tiers:default",
    "tiers:custom",
    "tiers:budget_percent",
    "tiers:burn_rate",
    "target:docker",
    "target:host",
    *(f"receiver:{t}" for t in ("pagerduty", "slack", "email", "opsgenie", "webhook")),
    "routing:categories",
    "routing:teams",
    "routing:escalation",
    "routing:business_hours",
    "routing:watchdog",
    "routing:status_page",
    "logs:alloy",
    *(f"source:{t}" for t in ("docker", "file", "journal")),
    *(f"storage:{t}" for t in ("filesystem", "s3", "gcs")),
    "logs:custom_alert",
    "logs:redaction_pattern",
    "labels",
    "text",
    "scrape:bearer",
    "scrape:basic_auth",
    "scrape:tls",
    "probes",
    "exporters",
    "service:no-slos",
    "severity:extra",
    "category:extra",
    "escalation_severities",
    "status_page:impact",
    "alerts:promql",
    "alerts:logql",
    "alerts:tested",
    "alert_packs",
    *(f"format:{f}" for f in ("json", "logfmt", "text", "regex")),
    "cri",
    "email:list",
    "webhook:timeout",
}


def features(spec: dict[str, Any]) -> set[str]:
    out = {f"target:{spec['stack']['target']}"}
    for job in spec.get("scrape_jobs", []):
        out.update(
            f"scrape:{k}"
            for k, v in (("bearer", "bearer_token_file"), ("basic_auth", "basic_auth"), ("tls", "tls"))
            if v in job
        )
    out.update(k for k in ("probes", "exporters", "alert_packs") if spec.get(k))
    routing_ = spec["routing"]
    if set(routing_["severities"]) - {"critical", "warning", "info"}:
        out.add("severity:extra")
    if set(routing_.get("categories", {})) - {"slo", "security", "budget", "logs", "platform"}:
        out.add("category:extra")
    if "impact" in routing_.get("status_page", {}):
        out.add("status_page:impact")
    for alert in spec.get("alerts", []):
        out.add("alerts:logql" if "logql" in alert else "alerts:promql")
        if alert.get("tests"):
            out.add("alerts:tested")
    for receiver in spec["receivers"]:
        if isinstance(receiver.get("to"), list):
            out.add("email:list")
        if "timeout" in receiver:
            out.add("webhook:timeout")
    for source in spec["logs"].get("sources", []):
        out.add(f"format:{source.get('format', 'json')}")
        if source.get("cri"):
            out.add("cri")
    for svc in spec["services"]:
        if not svc.get("slos"):
            out.add("service:no-slos")
        for slo in svc.get("slos", []):
            kind, body = next(iter(slo["sli"].items()))
            if kind == "events" and "{{window}}" in body["total"]:
                kind = "events-window"
            if kind == "latency" and body.get("native"):
                kind = "native"
            out.add(f"sli:{kind}")
            tiers = slo.get("alerting", {}).get("tiers")
            out.add("tiers:custom" if tiers else "tiers:default")
            out.update(f"tiers:{k}" for t in tiers or [] for k in ("budget_percent", "burn_rate") if k in t)
            if slo.get("alerting", {}).get("labels") or svc.get("labels"):
                out.add("labels")
            if slo.get("description"):
                out.add("text")
    out.update(f"receiver:{r['type']}" for r in spec["receivers"])
    out.update(
        f"routing:{k}"
        for k in spec["routing"]
        if k not in ("severities", "default_receiver", "group_by", "escalation_severities")
    )
    if "escalation_severities" in spec["routing"]:
        out.add("escalation_severities")
    logs = spec["logs"]
    if logs.get("agent") == "alloy":
        out.add("logs:alloy")
    out.update(f"source:{s['type']}" for s in logs.get("sources", []))
    out.add(f"storage:{logs.get('storage', {}).get('type', 'filesystem')}")
    if logs.get("alerts", {}).get("custom"):
        out.add("logs:custom_alert")
    if logs.get("redaction", {}).get("patterns"):
        out.add("logs:redaction_pattern")
    return out


@pytest.mark.tools
def test_valid_generated_specs_render_and_pass_promtool_and_amtool(tmp_path: Path) -> None:
    promtool, amtool = require_tool("promtool"), require_tool("amtool")
    outs: list[Path] = []
    covered: set[str] = set()

    @settings(PROFILE, max_examples=VALID_EXAMPLES)
    @given(valid_spec())
    def render_one(spec: dict[str, Any]) -> None:
        text = dump(spec)
        covered.update(features(spec))
        try:
            files = render_all(build_model(load_spec_text(text)))
        except SpecError as err:  # the strategy promised a valid spec
            pytest.fail(f"valid spec rejected:\n{err}\n---\n{text}")
        out = tmp_path / f"s{len(outs)}"
        write_tree(files, out)
        for rel, body in files.items():  # every artifact parses
            if rel.endswith((".yml", ".yaml")):
                assert yaml.safe_load(body) is not None, rel
            elif rel.endswith(".json"):
                json.loads(body)
        if len(outs) % 10 == 0:  # deterministic output
            assert render_all(build_model(load_spec_text(text))) == files
        outs.append(out)

    render_one()
    assert len(outs) >= VALID_EXAMPLES // 2, f"only {len(outs)} specs rendered"
    assert covered >= FEATURES, f"never generated: {sorted(FEATURES - covered)}"
    rule_files = plain_tests = 0
    amtool_version = tool_version("amtool")
    for start in range(0, len(outs), 100):  # batches keep command lines short
        batch = outs[start : start + 100]
        # Specs whose scrape jobs name credential files get the syntax-only check, as in
        # `stackgen validate`: promtool stats those files, which exist only where it runs.
        for syntax_only in (False, True):
            configs = [
                str(o / "prometheus/prometheus.yml")
                for o in batch
                if bool(missing_secret_files(o / "prometheus/prometheus.yml")) == syntax_only
            ]
            if configs:
                flags = ["--syntax-only"] if syntax_only else []
                proc = subprocess.run(
                    [promtool, "check", "config", *flags, *configs], capture_output=True, text=True, timeout=1800
                )
                assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
        rules = [str(p) for o in batch for p in sorted((o / "prometheus/rules").rglob("*.rules.yml"))]
        rule_files += len(rules)
        proc = subprocess.run([promtool, "check", "rules", *rules], capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
        # Plain alerts' tests (the spec's own, on hyphenated job names and all).
        tests = [str(p) for o in batch for p in sorted((o / "prometheus/tests").rglob("_*.test.yml"))]
        plain_tests += len(tests)
        if tests:
            proc = subprocess.run([promtool, "test", "rules", *tests], capture_output=True, text=True, timeout=1800)
            assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
        ams = [str(config_for_amtool(o / "alertmanager/alertmanager.yml", amtool_version, o)[0]) for o in batch]
        proc = subprocess.run([amtool, "check-config", *ams], capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert plain_tests, "no generated plain-alert test ran"
    print(
        f"\nproperty/valid: {len(outs)} generated specs rendered and passed "
        f"promtool check config + check rules ({rule_files} rule files) + {plain_tests} plain-alert "
        "test files + amtool check-config"
    )


@pytest.mark.tools
def test_just_above_scenario_avoids_a_rounding_edge(tmp_path: Path) -> None:
    """Found by the property test: an ordinary ticket tier (1d, 5% of a 30d budget, i.e.
    burn rate 1.5 at 99%). 1.1 x the threshold gives a steady $value of 1.65, which prints
    as 1.6 or 1.7 by float noise, so the render used to raise. It now picks 1.12 x; the
    generated tests pass promtool."""
    text = """
version: stackgen/v1
stack: {name: repro}
services:
  - name: api
    team: a
    slos:
      - name: u
        objective: 99
        period: 30d
        sli: {events: {bad: 'x_errors_total', total: 'x_total'}}
        alerting:
          tiers: [{severity: ticket, long_window: 1d, budget_percent: 5}]
receivers: [{name: hook, type: webhook, url: "http://127.0.0.1:1/x"}]
routing:
  default_receiver: hook
  severities: {critical: {receivers: [hook]}, warning: {receivers: [hook]}, info: {receivers: [hook]}}
"""
    promtool = require_tool("promtool")
    files = render_all(build_model(load_spec_text(text)))
    # The 1d window is read from hourly rollups: its "just above" case is in the hourly test.
    assert "(1.12 x 0.015)" in files["prometheus/tests/api/u.hourly.test.yml"]
    write_tree(files, tmp_path / "out")
    proc = subprocess.run(
        [
            promtool,
            "test",
            "rules",
            "tests/api/u.test.yml",
            "tests/api/u.hourly.test.yml",
            "tests/api/u.recording.test.yml",
        ],
        cwd=tmp_path / "out/prometheus",
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


# ---- invalid specs


def run_cli(spec_text: str | bytes, tmp: Path) -> tuple[int, str, Path]:
    """`stackgen render` in-process: a traceback would surface as result.exception."""
    spec = tmp / "slos.yaml"
    spec.write_bytes(spec_text.encode() if isinstance(spec_text, str) else spec_text)
    out = tmp / "out"
    result = CliRunner().invoke(app, ["render", "--spec", str(spec), "--out", str(out)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError("stackgen raised instead of reporting") from result.exception
    return result.exit_code, result.stderr, out


def located_lines(stderr: str, spec_file: str) -> list[tuple[int, str]]:
    """Every problem line as (line, 'path: message'); fails on any other shape."""
    lines = stderr.splitlines()
    assert lines and re.match(r"error: the spec has \d+ problem\(s\); nothing was written:$", lines[0]), stderr
    out = []
    for raw in lines[1:]:
        m = LOCATED.match(raw)
        assert m, f"not `file:line: path: message`: {raw!r}"
        assert m["file"] == spec_file
        out.append((int(m["line"]), m["rest"]))
    assert out, stderr
    assert "Traceback" not in stderr
    return out


SEEN_MUTATIONS: dict[str, int] = {}


@pytest.mark.parametrize("kind", MUTATIONS)
def test_mutated_specs_exit_2_with_located_messages(kind: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    count = 0

    @settings(PROFILE, max_examples=-(-INVALID_EXAMPLES // len(MUTATIONS)))
    @given(invalid_case(kind))
    def check(case: tuple[dict[str, Any], Expect]) -> None:
        nonlocal count
        spec, expect = case
        text = dump(spec)
        tmp = tmp_path_factory.mktemp("bad")
        code, stderr, out = run_cli(text, tmp)
        assert code == 2, f"{expect}: exit {code}\n{stderr}\n---\n{text}"
        assert not out.exists(), "nothing may be written for a bad spec"
        problems = located_lines(stderr, str(tmp / "slos.yaml"))
        path = expect.spec_path()
        line = expected_line(text, expect.path)
        prefix = f"{path}: " if path else ""
        hits = [(n, rest) for n, rest in problems if rest.startswith(prefix) and re.search(expect.message, rest)]
        assert hits, f"{expect.kind}: no problem at {path!r} matching {expect.message!r}:\n{stderr}"
        assert any(n == line for n, _ in hits), f"{expect.kind}: {path} reported on {hits}, expected line {line}"
        count += 1

    check()
    assert count >= INVALID_EXAMPLES // len(MUTATIONS) // 2
    SEEN_MUTATIONS[kind] = count
    print(
        f"\nproperty/invalid {kind}: {count} mutated specs exited 2 with located messages "
        f"(so far {sum(SEEN_MUTATIONS.values())} over {len(SEEN_MUTATIONS)} kinds)"
    )


# Edges between Python's and Rust's types and regexes, each a change to the default spec:
# the two checks must agree on each (a newline-ended name passed Python's `$` before).
SCHEMA_EDGES: dict[str, tuple[tuple[str | int, ...], Any]] = {
    "trailing newline in a name": (("stack", "name"), "shop\n"),
    "trailing newline in the version": (("version",), "stackgen/v1\n"),
    "a date where text goes": (("stack", "scrape_interval"), datetime.date(2024, 1, 1)),
    "a huge objective": (("services", 0, "slos", 0, "objective"), 10**30),
    "a bool objective": (("services", 0, "slos", 0, "objective"), True),
    "a float port": (("stack", "ports"), {"grafana": 3000.0}),
    "a huge port": (("stack", "ports"), {"grafana": 2**70}),
    "an int key": (("stack", 1), "x"),
    "a set": (("scrape_jobs", 0, "targets"), {"api:8080"}),
}


def _python_accepts(data: Any) -> bool:
    return next(iter(_validator().iter_errors(data)), None) is None


@pytest.mark.parametrize("edge", SCHEMA_EDGES)
def test_fast_schema_check_agrees_on_edges(edge: str) -> None:
    data = yaml.safe_load(DEFAULT_SPEC.read_text())
    assert _fast_accepts(data) and _python_accepts(data)
    *parents, key = SCHEMA_EDGES[edge][0]
    node = data
    for part in parents:
        node = node[part]
    node[key] = SCHEMA_EDGES[edge][1]
    assert _fast_accepts(data) == _python_accepts(data), edge


def test_fast_schema_check_agrees_with_jsonschema() -> None:
    """The render trusts jsonschema-rs's pass (loader._fast_accepts): on every generated and
    mutated spec its verdict must be jsonschema's."""
    seen = {True: 0, False: 0}

    @settings(PROFILE, max_examples=INVALID_EXAMPLES)
    @given(st.one_of(valid_spec(), st.sampled_from(MUTATIONS).flatmap(invalid_case).map(lambda case: case[0])))
    def check(spec: dict[str, Any]) -> None:
        data = yaml.safe_load(dump(spec))  # the types the loader sees
        verdict = _python_accepts(data)
        assert _fast_accepts(data) == verdict, dump(spec)
        seen[verdict] += 1

    check()
    assert min(seen.values()) >= INVALID_EXAMPLES // 10, seen
    print(f"\nschema check: jsonschema-rs agreed with jsonschema on {seen[True]} valid, {seen[False]} invalid specs")


def _text_mutation(text: str, kind: str) -> tuple[str | bytes, str, int | None]:
    """(broken text, message regex, expected line or None)."""
    lines = text.splitlines(keepends=True)
    if kind == "duplicate-key":
        return text + "version: stackgen/v1\n", "duplicate key", len(lines) + 1
    if kind == "tab-indent":
        i = next(n for n, line in enumerate(lines) if line.startswith("  ") and ":" in line)
        lines[i] = "\t" + lines[i].lstrip(" ")
        return "".join(lines), "YAML syntax error", None
    if kind == "unclosed-flow":
        return text + "extra: [1, 2\n", "YAML syntax error", None
    if kind == "int-key":
        return text + "1: x\n", "read as int, not text; quote it", len(lines) + 1
    if kind == "nan":
        i = next(n for n, line in enumerate(lines) if line.lstrip().startswith("objective:"))
        lines[i] = lines[i].split("objective:")[0] + "objective: .nan\n"
        return "".join(lines), "not a finite number", i + 1
    if kind == "control-char":
        i = next(n for n, line in enumerate(lines) if line.startswith("  name:"))
        lines[i] = '  name: "st\\x1bck"\n'
        return "".join(lines), "control character", i + 1
    if kind == "bad-utf8":
        return text.encode() + b"# \xff\xfe\n", "not UTF-8", None
    if kind == "empty":
        return "", "empty", None
    if kind == "top-level-list":
        return "- a\n- b\n", "top level must be a mapping", 1
    if kind == "unknown-version":
        return text.replace("version: stackgen/v1", "version: stackgen/v9", 1), "unknown version", 1
    if kind == "python-tag":
        return text + "x: !!python/object/apply:os.system [echo pwned]\n", "constructor for the tag", None
    # alias fan-out: a few hundred bytes that expand past the node limit
    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x","x"]\n'
    for i in range(1, 7):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        bomb += f"{cur}: &{cur} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
    return text + bomb, "expands to more than", None


TEXT_KINDS = [
    "duplicate-key",
    "tab-indent",
    "unclosed-flow",
    "int-key",
    "nan",
    "control-char",
    "bad-utf8",
    "empty",
    "top-level-list",
    "unknown-version",
    "python-tag",
    "alias-bomb",
]


@pytest.mark.parametrize("kind", TEXT_KINDS)
def test_broken_yaml_exits_2_with_located_messages(kind: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    count = 0

    @settings(PROFILE, max_examples=-(-TEXT_EXAMPLES // len(TEXT_KINDS)))
    @given(valid_spec())
    def check(spec: dict[str, Any]) -> None:
        nonlocal count
        broken, message, line = _text_mutation(dump(spec), kind)
        tmp = tmp_path_factory.mktemp("yaml")
        code, stderr, out = run_cli(broken, tmp)
        assert code == 2 and not out.exists(), (kind, code, stderr)
        if kind == "bad-utf8":  # no line to give: the file does not decode
            assert re.search(message, stderr) and "Traceback" not in stderr, stderr
        else:
            hits = [(n, rest) for n, rest in located_lines(stderr, str(tmp / "slos.yaml")) if re.search(message, rest)]
            assert hits, (kind, stderr)
            assert line is None or any(n == line for n, _ in hits), (kind, line, hits)
        count += 1

    check()
    print(f"\nproperty/yaml {kind}: {count} broken documents exited 2 with located messages")


def test_real_process_never_prints_a_traceback(tmp_path: Path) -> None:
    """The same through `python -m stackgen` (no CliRunner): exit 2, located lines only."""
    cases = [
        "version: stackgen/v1\nstack: {name: x}\n",
        "services: [\n",
        "version: stackgen/v1\nstack: {name: x, publish: {grafana: 8.8.8.8}}\n"
        "services: []\nreceivers: []\nrouting: {}\n",
        "1: x\n",
        "a: .nan\n",
    ]
    for i, text in enumerate(cases):
        spec = tmp_path / f"case{i}.yaml"
        spec.write_text(text)
        proc = subprocess.run(
            [sys.executable, "-m", "stackgen", "render", "--spec", str(spec), "--out", str(tmp_path / f"o{i}")],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 2, (text, proc.stderr)
        assert "Traceback" not in proc.stderr and proc.stdout == ""
        located_lines(proc.stderr, str(spec))


# ---- resource limits


def _bomb() -> str:
    text = 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for i in range(1, 10):  # 10^9 strings once expanded: "billion laughs" in ~900 bytes
        refs = ",".join([f"*a{i - 1}"] * 10)
        text += f"a{i}: &a{i} [{refs}]\n"
    return text


def _key_bomb() -> str:
    """The same multiplication with every anchor inside a complex key ("? [...]"): keys are
    not values, so a walk of the values alone would never count them."""
    text = "? &k0 [x, x, x, x, x, x, x, x, x, x]\n: 0\n"
    for i in range(1, 10):
        text += f"? &k{i} [{', '.join([f'*k{i - 1}'] * 10)}]\n: {i}\n"
    return text


LIMIT_CASES = {
    "alias bomb": (_bomb(), "expands to more than 500000 nodes"),
    "alias bomb in complex keys": (_key_bomb(), "a list is used as a key here"),
    "deep block nesting": (
        "".join("  " * i + f"k{i}:\n" for i in range(60)) + "  " * 60 + "x: 1\n",
        "nested deeper than 40",
    ),
    # 50 levels: stackgen's own limit; 50,000: past libyaml's (PyYAML >= 6.0.4), same message.
    "flow nesting past stackgen's limit": ("version: " + "[" * 50 + "]" * 50 + "\n", "nested deeper than 40"),
    "deep flow nesting": ("version: " + "[" * 50_000 + "]" * 50_000 + "\n", "nested deeper than 40"),
    "5 MiB spec": ("version: stackgen/v1\n#" + "x" * (5 * 1024 * 1024) + "\n", "the limit is 4194304"),
    "wide flat list": ("version: [" + "1," * 600_000 + "1]\n", "more than 500000 nodes"),
}


@pytest.mark.parametrize("case", sorted(LIMIT_CASES))
def test_hostile_documents_fail_fast(case: str, tmp_path: Path) -> None:
    text, message = LIMIT_CASES[case]
    spec = tmp_path / "slos.yaml"
    spec.write_text(text)
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "stackgen", "render", "--spec", str(spec), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "o").exists()
    assert elapsed < 5, f"{case}: {elapsed:.1f}s"
    print(f"\nlimit {case}: {len(text.encode())} bytes rejected in {elapsed:.2f}s (process start included)")


def thousand_slo_spec() -> str:
    spec = yaml.safe_load((Path(__file__).parent / "e2e/spec.yaml").read_text())
    template = spec["services"][0]
    spec["services"] = [
        {**template, "name": f"svc-{s}", "slos": [{**template["slos"][0], "name": f"slo-{k}"} for k in range(5)]}
        for s in range(200)
    ]
    return yaml.safe_dump(spec)


@pytest.mark.slow
def test_a_thousand_slos_still_render(tmp_path: Path) -> None:
    text = thousand_slo_spec()
    started = time.monotonic()
    files = render_all(build_model(load_spec_text(text)))
    rendered = time.monotonic() - started
    write_tree(files, tmp_path / "out")
    written = time.monotonic() - started
    assert sum(1 for p in files if re.fullmatch(r"prometheus/rules/svc-\d+/slo-\d\.rules\.yml", p)) == 1000
    size = sum(len(t) for t in files.values())
    print(
        f"\n1000 SLOs: spec {len(text.encode()) // 1024} KiB -> {len(files)} files, {size / 1e6:.1f} MB; "
        f"render {rendered:.1f}s, with the atomic write {written:.1f}s"
    )
    assert rendered < 120
