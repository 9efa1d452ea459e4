"""One way in for user values: every name or label value that stackgen puts inside a PromQL or
LogQL string or regex goes through stackgen.promql.quote/quote_meta, and the real parsers
and engines read back exactly that value.

The values come from the schema's own patterns (every character each pattern allows, and
values hypothesis draws from the patterns), plus free text, so no friendly subset hides a
character the escaping gets wrong (the hyphen in `clipper-backend` once did).
"""

from __future__ import annotations

import json
import re
import re._parser as sre  # type: ignore[import-not-found]
import subprocess
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import re2  # type: ignore[import-not-found]
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from stackgen import promql
from stackgen.spec.loader import CONTROL_CHARS, SCHEMA_PATH
from tests.conftest import require_tool
from tests.support.logql import parse_logql

DEFS = json.loads(SCHEMA_PATH.read_text())["$defs"]


def _patterns() -> dict[str, str]:
    """Every schema pattern whose values can reach query text, by name."""
    return {
        "name (service, SLO, team, log source)": DEFS["name"]["pattern"],
        "scrape job or probe": DEFS["job_name"]["pattern"],
        "severity or category": DEFS["severity_name"]["pattern"],
        "receiver": DEFS["receiver_name"]["pattern"],
        "label name": DEFS["labels"]["propertyNames"]["pattern"].replace("(?!__)", ""),
    }


PATTERNS = _patterns()


def _core(pattern: str) -> str:
    return pattern.removeprefix("^").removesuffix("$")


def alphabet(pattern: str) -> list[str]:
    """Every character the pattern's classes and literals allow."""
    chars: set[str] = set()

    def walk(parsed: Any) -> None:
        for op, arg in parsed:
            name = str(op)
            if name == "LITERAL":
                chars.add(chr(arg))
            elif name == "IN":
                for sub_op, sub_arg in arg:
                    if str(sub_op) == "LITERAL":
                        chars.add(chr(sub_arg))
                    elif str(sub_op) == "RANGE":
                        chars.update(chr(c) for c in range(sub_arg[0], sub_arg[1] + 1))
            elif name in ("MAX_REPEAT", "MIN_REPEAT"):
                walk(arg[2])
            elif name == "SUBPATTERN":
                walk(arg[-1])

    walk(sre.parse(_core(pattern)))
    return sorted(chars)


def corpus() -> list[str]:
    """Each pattern's every character in a valid value, real-world names, and hostile text."""
    values = {"clipper-backend", "api-gateway", "intent-parser-server", "job_1", "a-b-c-d", "x-1.2"}
    for pattern in PATTERNS.values():
        first = re.compile(_core(pattern))
        for char in alphabet(pattern):
            for candidate in (f"a{char}b", f"{char}a", f"a{char}"):
                if first.fullmatch(candidate):
                    values.add(candidate)
    values |= {
        'q"uote',
        "back\\slash",
        "new\nline",
        "tab\there",
        "dot.star.*",
        "(paren)|pipe",
        "[x]{2}^$",
        "ünïcödé 漢字",
    }
    return sorted(values)


CORPUS = corpus()
free_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40).map(lambda s: CONTROL_CHARS.sub("", s))
pattern_values = st.one_of(*(st.from_regex(_core(p), fullmatch=True) for p in PATTERNS.values()))


def matcher_of(expr: str) -> Any:
    node = promql_parser.parse(expr)
    return node.matchers.matchers[0]


def test_the_corpus_covers_every_pattern_character() -> None:
    for name, pattern in PATTERNS.items():
        missing = [c for c in alphabet(pattern) if not any(c in v for v in CORPUS)]
        assert not missing, f"{name}: no corpus value holds {missing}"
    assert "-" in alphabet(PATTERNS["scrape job or probe"]), "hyphenated job names are allowed and must be tested"


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(pattern_values, free_text))
def test_a_quoted_value_parses_back_to_itself(value: str) -> None:
    matcher = matcher_of(promql.selector("up", promql.equals("job", value)))
    assert matcher.value == value


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.one_of(pattern_values, free_text), min_size=1, max_size=4, unique=True))
def test_an_alternation_matches_exactly_its_values(values: list[str]) -> None:
    matcher = matcher_of(promql.selector("up", promql.any_of("job", values)))
    regex = re2.compile(matcher.value, options=_dot_nl()) if len(values) > 1 else None
    for value in values:
        if regex is None:
            assert matcher.value == value
        else:
            assert regex.fullmatch(value), (matcher.value, value)
    if regex is not None:
        for value in values:
            for other in (value + "x", "x" + value, value[:-1]):
                if other not in values:
                    assert not regex.fullmatch(other), (matcher.value, other)


def _dot_nl() -> Any:
    options = re2.Options()
    options.dot_nl = True  # Prometheus 3: `.` matches newlines; quote_meta leaves no bare `.`
    return options


def test_python_re_escape_would_not_parse() -> None:
    """Why quote_meta exists: re.escape's `\\-` is no escape in a PromQL string."""
    with pytest.raises(ValueError):
        promql_parser.parse(f'up{{job=~"{re.escape("clipper-backend")}"}}')
    promql_parser.parse(promql.selector("up", promql.any_of("job", ["clipper-backend", "x"])))


def test_promtool_matches_each_value_exactly(tmp_path: Path) -> None:
    """The real engine: an alert on up{job=~<every corpus value>} == 0 fires once per value,
    with job holding the value byte for byte, and not for a near miss."""
    promtool = require_tool("promtool")
    rules = {
        "groups": [
            {
                "name": "escaping",
                "rules": [
                    {"alert": "Down", "expr": promql.selector("up", promql.any_of("job", CORPUS)) + " == 0"},
                    {"alert": "DownOne", "expr": promql.selector("up", promql.equals("job", CORPUS[0])) + " == 0"},
                ],
            }
        ]
    }
    near_misses = [v + "-x" for v in CORPUS if v + "-x" not in CORPUS][:5]
    series = [
        {"series": promql.selector("up", promql.equals("job", v), promql.equals("instance", "i")), "values": "0x5"}
        for v in [*CORPUS, *near_misses]
    ]
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {
                        "eval_time": "2m",
                        "alertname": "Down",
                        "exp_alerts": [{"exp_labels": {"job": v, "instance": "i"}} for v in CORPUS],
                    },
                    {
                        "eval_time": "2m",
                        "alertname": "DownOne",
                        "exp_alerts": [{"exp_labels": {"job": CORPUS[0], "instance": "i"}}],
                    },
                ],
            }
        ],
    }
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules, allow_unicode=True))
    (tmp_path / "test.yml").write_text(yaml.safe_dump(tests, allow_unicode=True))
    proc = subprocess.run([promtool, "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_logql_parses_every_quoted_value() -> None:
    exprs = [f"sum(rate({{{promql.equals('service', v)}}} |= {promql.quote(v)} [5m]))" for v in CORPUS]
    results = parse_logql(exprs)
    bad = [(e, r["error"]) for e, r in zip(exprs, results, strict=True) if not r["ok"]]
    assert not bad


# Regex matchers are judged as Prometheus judges them (Go's regexp), not as promql-parser
# (Rust's regex) does: agreement with promtool, regex by regex.
REGEXES = [
    "5..",
    "5{1000}",
    "5{1001}",
    "a\\z",
    "a\\Z",
    "(?U)a+",
    "\\pL+",
    "(?<n>a)",
    "(?P<n>a)",
    "a*+",
    "a++",
    "\\C",
    "[[:alpha:]]+",
    "(?i)GET|post",
    "x{2,1}",
    "(?<=a)b",
    "a\\1",
    "[z-a]",
]


def test_regex_matchers_agree_with_promtool(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    disagree = []
    for i, pattern in enumerate(REGEXES):
        selector = f"up{{job=~{json.dumps(pattern)}}}"
        rules = tmp_path / f"r{i}.yml"
        rules.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [{"record": "r", "expr": selector}]}]}))
        accepted = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True).returncode == 0
        ours = promql.regex_error(selector) is None
        if accepted != ours:
            disagree.append((pattern, f"promtool={accepted}", f"stackgen={ours}"))
    assert disagree == []


@pytest.mark.parametrize(
    ("matchers", "message"),
    [
        ('{job="api"} or vector(1)', "braces"),
        ('{job="api"} # comment', "braces"),
        ('{job="a"} or {job="b"}', "one pair of braces"),
        ('{job="a"} unless on() vector(1) > {job="b"}', "one pair of braces|braces"),
        ('{code=~"5{1001}"}', "invalid repetition size"),
        ('{code=~"(?<n>5)"}', r"\(\?P<name>"),
    ],
)
def test_selectors_cannot_carry_more_than_matchers(matchers: str, message: str) -> None:
    err = promql.matchers_error(matchers)
    assert err is not None and re.search(message, err), err


def test_selector_fields_in_a_spec_are_refused_with_their_path() -> None:
    from stackgen.errors import SpecError
    from stackgen.model import build_model
    from stackgen.spec import load_spec_text
    from tests.conftest import DEFAULT_SPEC

    spec = yaml.safe_load(DEFAULT_SPEC.read_text())
    spec["services"][0]["slos"][2]["sli"]["latency"]["selector"] = '{job="api"} or vector(1)'
    spec["services"][0]["slos"][1]["sli"]["events"]["bad"] = 'http_requests_total{code=~"5{1001}"}'
    spec["services"][0]["slos"][1]["sli"]["events"]["total"] = 'http_requests_total{job="api"} # all'
    with pytest.raises(SpecError) as err:
        build_model(load_spec_text(yaml.safe_dump(spec)))
    text = str(err.value)
    assert "sli.latency.selector" in text and "sli.events.bad" in text and "sli.events.total" in text, text


@settings(max_examples=2000, deadline=None)
@given(st.text())
def test_quote_fast_path_is_the_json_encoder(value: str) -> None:
    """promql.quote skips json.dumps for values with nothing to escape: the same text either way."""
    import json

    from stackgen.promql import quote

    assert quote(value) == json.dumps(value, ensure_ascii=False)
