"""Bad input: exit 2, every problem located (file:line: spec path: message), nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from stackgen.cli import app
from tests.conftest import DEFAULT_SPEC, require_tool

runner = CliRunner()
BASE = DEFAULT_SPEC.read_text()


def render_text(tmp_path: Path, text: str, out: Path | None = None) -> tuple[int, str]:
    spec = tmp_path / "slos.yaml"
    spec.write_text(text)
    out = out or tmp_path / "out"
    result = runner.invoke(app, ["render", "--spec", str(spec), "--out", str(out)])
    return result.exit_code, result.output


def replace(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new, 1)


def line_of(text: str, needle: str) -> int:
    """1-based line where needle (possibly several lines) starts."""
    return text[: text.index(needle)].count("\n") + 1


# Nine levels of nine aliases: 9**7 nodes once expanded ("billion laughs").
ALIAS_BOMB = "a: &a [1,2,3,4,5,6,7,8,9]\n" + "".join(
    f"{n}: &{n} [{','.join(['*' + p] * 9)}]\n" for p, n in zip("abcdef", "bcdefg", strict=True)
)

CASES = [
    (
        "An objective of 100 or more is rejected.",
        replace(
            "objective: 99.5\n        description: The API's",
            "objective: 100.5\n        description: The API's",
        ),
        "services[0].slos[0].objective: must be below 100",
        "objective: 100.5",
    ),
    (
        "An unknown key is rejected and the allowed keys listed.",
        replace("  lifecycle_api: false", "  lifecycle_apy: false"),
        "stack.lifecycle_apy: unknown key 'lifecycle_apy'; allowed keys:",
        "lifecycle_apy",
    ),
    (
        "A malformed duration is rejected.",
        replace("period: 7d ", "period: 7days "),
        "services[1].slos[0].period: '7days' is not valid",
        "period: 7days",
    ),
    (
        "A zero duration is rejected.",
        replace("scrape_interval: 15s", "scrape_interval: 0s"),
        "stack.scrape_interval:",
        "scrape_interval: 0s",
    ),
    (
        "A reference to an undefined receiver is rejected.",
        replace("info: {receivers: [slack-low-priority]", "info: {receivers: [slack-nowhere]"),
        "routing.severities.info.receivers[0]: receiver 'slack-nowhere' is not defined",
        "slack-nowhere",
    ),
    (
        "Duplicate service names are rejected.",
        replace("  - name: search\n    team: search", "  - name: api\n    team: search"),
        "services[1].name: duplicate service name 'api'",
        "  - name: api\n    team: search",
    ),
    (
        "PromQL that does not parse is rejected.",
        replace(
            'bad: \'http_requests_total{job="api", code=~"5.."}\'',
            "bad: 'http_requests_total{job=\"api\", code=~}'",
        ),
        "services[0].slos[1].sli.events.bad: PromQL does not parse",
        "code=~}",
    ),
    (
        "An unknown spec version is rejected by name.",
        replace("version: stackgen/v1", "version: stackgen/v9"),
        "version: unknown version 'stackgen/v9'",
        "version: stackgen/v9",
    ),
    (
        "A latency threshold that is not a bucket boundary is rejected.",
        replace("threshold: 0.1\n", "threshold: 0.15\n"),
        "services[0].slos[2].sli.latency.threshold: 0.15 is not a bucket boundary",
        "threshold: 0.15",
    ),
    (
        "An inline secret is rejected with a hint to the *_file form.",
        replace("routing_key_file: pagerduty_oncall_key}", "routing_key: abc123}"),
        "inline secret 'routing_key' is not allowed",
        "routing_key: abc123",
    ),
    (
        "A receiver without its secret source is rejected.",
        replace(
            "{name: pagerduty-security, type: pagerduty, routing_key_file: pagerduty_security_key}",
            "{name: pagerduty-security, type: pagerduty}",
        ),
        "missing required key 'routing_key_file'",
        "name: pagerduty-security",
    ),
    (
        "A duplicate YAML key is rejected.",
        replace("  scrape_interval: 15s\n", "  scrape_interval: 15s\n  scrape_interval: 30s\n"),
        "stack.scrape_interval: duplicate key",
        "scrape_interval: 30s",
    ),
    (
        # Python's `$` matches before a final newline; JSON Schema's (ECMA-262) does not.
        "A name ending in a newline is rejected (it would become a directory name).",
        replace("  - name: api\n    team:", '  - name: "api\\n"\n    team:'),
        "services[0].name: 'api\\n' is not valid",
        'name: "api\\n"',
    ),
    (
        "A key ending in a newline is rejected where keys are patterns.",
        replace("    grafana: 0.0.0.0 ", '    "grafana\\n": 0.0.0.0 '),
        "stack.publish: Additional properties are not allowed",
        "publish:",
    ),
    (
        # Found by review: jsonschema-rs cannot take a non-text key, and jsonschema has no key
        # list to check under labels; the YAML walk's message must come out, not a traceback.
        "A non-text key inside labels is rejected in the walk's words.",
        replace("    labels: {env: production}\n", "    labels: {env: production, 1: x}\n"),
        "scrape_jobs[0].labels.1: key '1' is read as int, not text; quote it",
        "labels: {env: production, 1: x}",
    ),
    (
        "A tier that could never fire is rejected.",
        replace(
            "- {severity: page, long_window: 1h, short_window: 5m, burn_rate: 8}",
            "- {severity: page, long_window: 1h, short_window: 5m, burn_rate: 14.4}",
        ),
        "can never fire",
        "burn_rate: 14.4",
    ),
]


@pytest.mark.parametrize(("name", "text", "message", "line_needle"), CASES, ids=[c[0] for c in CASES])
def test_bad_spec_is_located_and_exits_2(tmp_path: Path, name: str, text: str, message: str, line_needle: str) -> None:
    code, output = render_text(tmp_path, text)
    assert code == 2, output
    assert message in output, output
    line = line_of(text, line_needle)
    assert f"slos.yaml:{line}:" in output, output
    assert "Traceback" not in output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("- a\n- b\n", "the top level must be a mapping"),
        ("version: stackgen/v1\nstack: {name: x\n", "YAML syntax error"),
        (
            ALIAS_BOMB,
            "YAML aliases multiplying",
        ),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than 40 levels"),
        ("a: " + "{b: " * 45 + "1" + "}" * 45 + "\n", "nested deeper than 40 levels"),
    ],
    ids=["empty file", "wrong top-level type", "YAML syntax error", "alias bomb", "deep nesting", "45 flow maps"],
)
def test_unusable_documents_exit_2(tmp_path: Path, text: str, message: str) -> None:
    code, output = render_text(tmp_path, text)
    assert code == 2, output
    assert message in output
    assert "Traceback" not in output


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = replace(
        "objective: 99.5\n        description: The API's",
        "objective: 120\n        description: The API's",
    )
    text = text.replace("  lifecycle_api: false", "  lifecycle_apy: false")
    text = text.replace("info: {receivers: [slack-low-priority]", "info: {receivers: [slack-nowhere]")
    code, output = render_text(tmp_path, text)
    assert code == 2
    assert "objective: must be below 100" in output
    assert "unknown key 'lifecycle_apy'" in output


def test_a_non_finite_number_is_reported_once(tmp_path: Path) -> None:
    """jsonschema-rs reads .inf as null; only the walk's message may come out (found by review)."""
    text = replace("threshold: 0.1\n", "threshold: .inf\n")
    code, output = render_text(tmp_path, text)
    assert code == 2, output
    located = [line for line in output.splitlines() if line.startswith("  ")]
    assert len(located) == 1, output
    assert ".inf is not a finite number" in located[0]


def test_failed_render_leaves_previous_output_untouched(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, _ = render_text(tmp_path, BASE, out)
    assert code == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    code, _ = render_text(
        tmp_path,
        replace(
            "objective: 99.5\n        description: The API's",
            "objective: 101\n        description: The API's",
        ),
        out,
    )
    assert code == 2
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before


def test_missing_spec_file_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["render", "--spec", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "file not found" in result.output


def test_real_process_prints_no_traceback(tmp_path: Path) -> None:
    spec = tmp_path / "slos.yaml"
    spec.write_text("version: stackgen/v1\nstack: [1\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "stackgen",
            "render",
            "--spec",
            str(spec),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "slos.yaml:" in proc.stderr


def test_schema_file_is_referenced_by_default_spec() -> None:
    first = DEFAULT_SPEC.read_text().splitlines()[0]
    assert first.startswith("# yaml-language-server: $schema=")
    schema_path = (DEFAULT_SPEC.parent / first.split("$schema=")[1]).resolve()
    assert schema_path.exists()
    assert yaml.safe_load(schema_path.read_text())["$schema"].startswith("https://json-schema.org/")


def test_promql_errors_say_where_with_prometheus_own_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """promql-parser's messages carry no position: promtool (Prometheus' parser) gives it;
    without promtool the parser's message stands."""
    require_tool("promtool")
    text = replace(
        'bad: \'http_requests_total{job="api", code=~"5.."}\'',
        'bad: \'http_requests_total{job="api" code=~"5.."}\'',
    )
    code, output = render_text(tmp_path, text)
    assert code == 2
    flat = " ".join(output.split())
    assert (
        'services[0].slos[1].sli.events.bad: PromQL does not parse: at character 31 (after `{job="api"`): '
        'unexpected identifier "code" in label matching' in flat
    ), output
    assert f"slos.yaml:{line_of(text, 'code=~')}:" in flat
    from stackgen import promql

    assert promql.parse_error("sum(rate(x[{{window}}]) foo", window=True) == (
        'at character 25 (after `rate(x[{{window}}])`): unexpected identifier "foo" in aggregation (promtool)'
    )
    assert promql.matchers_error('{job="api" code="5"}').startswith("at character 12 ")
    # Go counts bytes, the message counts characters; {{window}} is an SLI query's only.
    assert promql.parse_error('x{a="ééééé" b="c"}').startswith("at character 13 ")
    assert promql.parse_error('rate(x{job="api"}[{{window}}]) > 5') is not None  # a plain alert's expr
    monkeypatch.setenv("PATH", "/nonexistent")
    assert promql.parse_error('x{job="api" code="5"}') == "invalid promql query"
