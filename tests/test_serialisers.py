"""The fast paths of a render write exactly what the reference serialisers write.

block_yaml writes YAML for the renderers' plain data; PyYAML (with stackgen's dumper
settings) is the reference. orjson writes dashboard JSON; json.dumps(indent=2) is the
reference. Worker processes render large estates; rendering in this process is the
reference. Same bytes, so the committed output and its promtool/amtool checks do not
depend on which path produced them.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stackgen import render
from stackgen.errors import LimitExceeded, Problem, SpecError, StackgenError
from stackgen.model import build_model
from stackgen.pipeline import load_model
from stackgen.render import block_yaml, common, render_all
from stackgen.spec.loader import load_spec_text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from synth import synthetic_spec  # noqa: E402

SPECS = [ROOT / "slos.yaml", ROOT / "examples/every-sli-kind.yaml"]


def _captured_documents(monkeypatch: pytest.MonkeyPatch, render: Any) -> list[Any]:
    """Every data structure the renderers hand to yaml_text during `render()`."""
    seen: list[Any] = []
    original = block_yaml.dump

    def spy(data: Any) -> str:
        seen.append(data)
        return original(data)

    monkeypatch.setattr(block_yaml, "dump", spy)
    render()
    monkeypatch.setattr(block_yaml, "dump", original)
    return seen


@pytest.mark.parametrize("spec", [*SPECS, "synthetic-40"], ids=lambda s: getattr(s, "name", s))
def test_every_rendered_yaml_document_matches_pyyaml(spec: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    if spec == "synthetic-40":
        model = build_model(load_spec_text(synthetic_spec(40), "synthetic.yaml"))
    else:
        model = load_model(spec, None)
    documents = _captured_documents(monkeypatch, lambda: render_all(model))
    assert len(documents) > 20
    fast = 0
    for data in documents:
        try:
            text = block_yaml.dump(data)
        except block_yaml.Unsupported:
            continue
        fast += 1
        assert text == common.pyyaml_text(data)
    # Everything stackgen itself writes takes the fast path (else the speed-up is gone).
    assert fast == len(documents)


def test_multi_line_promql_is_a_literal_block(default_files: dict[str, str]) -> None:
    text = default_files["prometheus/rules/api/availability.rules.yml"]
    assert "    expr: |-\n      (\n        slo:sli_error:ratio_rate5m{" in text
    assert "\\n" not in text  # no escaped newlines anywhere: every multi-line value is a block


# Text built to hit every rule of PyYAML's scalar analysis: indicators at the start and
# inside, ': ' and ' #', leading/trailing spaces, quotes, YAML 1.1 keywords and numbers,
# Go-retyped scalars, non-ASCII, tabs and control characters, line breaks and blank lines.
TRICKY = st.sampled_from(
    [
        "",
        " ",
        "a",
        "-",
        "- x",
        "-5m",
        "?",
        "? x",
        ":",
        "a:",
        "a: b",
        "a:b",
        "#",
        "a #b",
        "a#b",
        "'",
        '"',
        "it's",
        "{{ $value }}",
        "{a}",
        "[x]",
        "x, y",
        "&a",
        "*a",
        "!tag",
        "|",
        ">",
        "%",
        "@",
        "`",
        "---",
        "...",
        "y",
        "n",
        "yes",
        "No",
        "on",
        "off",
        "true",
        "null",
        "~",
        "1",
        "1.5",
        "1e3",
        "0o17",
        "0x1F",
        "1_000",
        ".inf",
        ".nan",
        "2024-01-01",
        "12:30",
        "=",
        "<<",
        "é",
        "日本",
        "\u200b",
        "\xa0",
        "a\tb",
        "\x07",
        "\n",
        "a\nb",
        "a\n b",
        "a \nb",
        "a\n\nb",
        "a\n",
        "\na",
        " a\nb",
        "a\nb ",
        "x" * 1200,
        "a b " * 300,
    ]
)
TEXT = st.one_of(TRICKY, st.text(max_size=40), st.lists(TRICKY, min_size=1, max_size=4).map("".join))
SCALARS = st.one_of(
    TEXT,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
)
DATA = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=30,
)
PROFILE = settings(max_examples=1500, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


@PROFILE
@given(st.one_of(st.lists(DATA, min_size=1, max_size=4), st.dictionaries(TEXT, DATA, min_size=1, max_size=4)))
def test_block_yaml_matches_pyyaml_or_declines(data: Any) -> None:
    try:
        text = block_yaml.dump(data)
    except block_yaml.Unsupported:
        return
    assert text == common.pyyaml_text(data)
    assert _same(yaml.safe_load(text), data)


def test_block_yaml_declines_what_it_cannot_decide() -> None:
    for data in ({"k": "a \nb"}, {"k": "\x07"}, {"k": "x " * 600}, {"k" * 200: 1}, {1: "a"}, "scalar", {}):
        with pytest.raises(block_yaml.Unsupported):
            block_yaml.dump(data)
        assert common.yaml_text(data) == common.pyyaml_text(data)  # and PyYAML writes it


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


JSON_SCALARS = st.one_of(
    TEXT,
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),  # not JSON: json.dumps writes Infinity, orjson null
    st.booleans(),
    st.none(),
)
JSON_DATA = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=30,
)


@settings(PROFILE, max_examples=500)
@given(JSON_DATA)
def test_json_text_matches_the_standard_library(data: Any) -> None:
    """Same values always; same bytes unless a float is spelled differently (orjson writes
    0.00006103515625 where Python writes 6.103515625e-05: both read back as the same double)."""
    fast, reference = common.json_text(data), common.stdlib_json_text(data)
    assert _same(json.loads(fast), json.loads(reference))
    if not _has_float(data):
        assert fast == reference


def _has_float(data: Any) -> bool:
    if isinstance(data, dict):
        return any(_has_float(v) for v in data.values())
    if isinstance(data, list):
        return any(_has_float(v) for v in data)
    return isinstance(data, float)


WORDS = st.lists(
    st.one_of(st.text(alphabet="ab-./é{}", min_size=1, max_size=12), st.sampled_from(["x" * 30, "y" * 96, "z" * 97])),
    min_size=1,
    max_size=40,
)


@settings(PROFILE, max_examples=1500)
@given(
    st.one_of(
        WORDS.map(" ".join),  # the fast path: words joined by single spaces
        st.text(alphabet=" \tab-\xa0\u3000é", max_size=60),  # textwrap's: tabs, runs of spaces, odd spaces
    ),
    st.integers(min_value=1, max_value=120),
)
def test_comment_wrap_matches_textwrap(paragraph: str, width: int) -> None:
    expected = textwrap.wrap(paragraph, width=width, break_long_words=False, break_on_hyphens=False)
    assert common.wrap(paragraph, width) == expected


def test_rendered_dashboards_match_the_standard_library(default_files: dict[str, str]) -> None:
    dashboards = [p for p in default_files if p.endswith(".json")]
    assert len(dashboards) >= 4
    for path in dashboards:
        assert default_files[path] == common.stdlib_json_text(json.loads(default_files[path])), path


def test_worker_processes_render_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    model = build_model(load_spec_text(synthetic_spec(30), "synthetic.yaml"))
    monkeypatch.setenv("STACKGEN_JOBS", "1")
    here = render_all(model)
    monkeypatch.setenv("STACKGEN_JOBS", "3")
    spread = render_all(model)
    assert list(spread) == list(here)
    assert spread == here


def _slow_here_in_worker(action: Any) -> Any:
    """A service renderer that is slow in this process (so the worker surely takes chunks) and
    runs `action` in a worker process."""
    parent = os.getpid()

    def renderer(spec: Any, service: Any) -> dict[str, str]:
        if os.getpid() == parent:
            time.sleep(0.02)
            return {}
        return action(service)  # type: ignore[no-any-return]

    return renderer


def test_an_error_in_a_worker_process_reaches_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    """A limit an estate breaks is raised in whichever process renders it: the caller gets it
    whole (path and message, which locate it in the spec), and located errors too."""
    model = build_model(load_spec_text(synthetic_spec(30), "synthetic.yaml"))

    def breaks_a_limit(service: Any) -> dict[str, str]:
        raise LimitExceeded(("services", 3, "slos"), f"{service.name}: too many rules")

    part = (lambda spec: {}, _slow_here_in_worker(breaks_a_limit))
    monkeypatch.setattr(render, "SPLIT_RENDERERS", (*render.SPLIT_RENDERERS, part))
    monkeypatch.setenv("STACKGEN_JOBS", "2")
    with pytest.raises(LimitExceeded, match="too many rules") as raised:
        render_all(model)
    assert raised.value.path == ("services", 3, "slos")

    problem = Problem("slos.yaml", 7, "services[1]", "bad")
    part = (lambda spec: {}, _slow_here_in_worker(lambda service: (_ for _ in ()).throw(SpecError([problem]))))
    monkeypatch.setattr(render, "SPLIT_RENDERERS", (*render.SPLIT_RENDERERS[:-1], part))
    with pytest.raises(SpecError) as located:
        render_all(model)
    assert located.value.problems == [problem]


def test_a_killed_worker_process_is_an_error_not_a_partial_render(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker that dies (the OOM killer) leaves its chunks unrendered: that must be an error
    the CLI reports, never a render with files missing."""
    model = build_model(load_spec_text(synthetic_spec(30), "synthetic.yaml"))
    part = (lambda spec: {}, _slow_here_in_worker(lambda service: os._exit(9)))
    monkeypatch.setattr(render, "SPLIT_RENDERERS", (*render.SPLIT_RENDERERS, part))
    monkeypatch.setenv("STACKGEN_JOBS", "2")
    with pytest.raises(StackgenError, match="ended without its results"):
        render_all(model)


def test_found_by_review_long_multibyte_keys_and_quotes_near_the_width() -> None:
    """An independent review found these two: libyaml's 128 limit on simple keys counts bytes,
    and doubled quotes make a scalar longer than its text (libyaml folds past column 1000)."""
    for data in ({"é" * 65: 1}, {"x" * 127 + "é": 1}, {"k": "'" * 20 + "a" * 965 + " b"}, ["'" * 500 + " b"]):
        assert common.yaml_text(data) == common.pyyaml_text(data)


def test_an_error_that_cannot_travel_between_processes_is_still_reported() -> None:
    carried = render._portable(ValueError(lambda: 1))  # a lambda cannot be pickled
    assert isinstance(carried, StackgenError) and "a render worker failed: ValueError(" in str(carried)
    limit = render._portable(LimitExceeded(("services", 0), "over"))
    assert isinstance(limit, LimitExceeded) and (limit.path, limit.message) == (("services", 0), "over")


_FAILING_RENDER = r"""
import multiprocessing, os, sys, time
sys.path.insert(0, sys.argv[2])
from synth import synthetic_spec
from stackgen import render
from stackgen.errors import StackgenError
from stackgen.model import build_model
from stackgen.spec.loader import load_spec_text

model = build_model(load_spec_text(synthetic_spec(200), "synthetic.yaml"))
parent = os.getpid()

def part(spec, service):
    if os.getpid() == parent:
        if sys.argv[1] == "parent-fails":
            raise StackgenError("the parent failed")
        return {}
    if sys.argv[1] == "the-first-worker-dies" and multiprocessing.current_process().name.endswith("-1"):
        os._exit(9)  # read first by the caller; the second one goes on
    time.sleep(0.05)  # slow workers: this process surely takes chunks too
    return {f"big/{service.name}/{i}": "x" * 1000 for i in range(100)}  # more than a pipe holds

render.SPLIT_RENDERERS = (*render.SPLIT_RENDERERS, (lambda spec: {}, part))
try:
    render.render_all(model)
except StackgenError as err:
    print("raised:", err)
"""


@pytest.mark.parametrize(("case", "jobs"), [("parent-fails", "2"), ("the-first-worker-dies", "3")])
def test_a_failing_parallel_render_ends_while_workers_still_have_files_to_send(case: str, jobs: str) -> None:
    """An error in this process, or a worker killed while another holds more files than a
    pipe buffers: the render must end with the error, not wait for ever on a worker that
    cannot finish sending (it did while workers kept the pipes' read ends forked along)."""
    bench = str(Path(__file__).resolve().parent.parent / "bench")
    argv = [sys.executable, "-c", _FAILING_RENDER, case, bench]
    env = {**os.environ, "STACKGEN_JOBS": jobs}
    with subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True) as proc:
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            pytest.fail(f"{case}: the render hung")
    expected = "the parent failed" if case == "parent-fails" else "ended without its results"
    assert proc.returncode == 0 and "raised:" in out and expected in out, out
