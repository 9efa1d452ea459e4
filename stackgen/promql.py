"""PromQL checks backed by promql-parser (the Prometheus grammar, in Rust), and the one way user
values enter PromQL and LogQL text."""

from __future__ import annotations

import json
import re
from typing import Any

import promql_parser

WINDOW_PLACEHOLDER = "{{window}}"


# Same length as {{window}}, so a column promtool reports is the user's column too.
WINDOW_STAND_IN = "999999999s"


def parse_error(expr: str, offset: int = 0, window: bool = False) -> str | None:
    """None if expr parses as PromQL, else what is wrong, and where when promtool (Prometheus'
    own parser) is on PATH: promql-parser's messages carry no position. offset: characters the
    caller put before the user's text (not counted in the position). window: expr may hold
    the {{window}} placeholder (SLI queries; nowhere else)."""
    text = expr.replace(WINDOW_PLACEHOLDER, WINDOW_STAND_IN) if window else expr
    try:
        promql_parser.parse(text)
    except (ValueError, RuntimeError, TypeError) as err:  # the binding raises ValueError
        return promtool_says(expr, offset, window) or str(err) or "does not parse"
    return None


_PROMTOOL_ERROR = re.compile(r"could not parse expression: (\d+):(\d+): parse error: (.*)$", re.M)


def promtool_says(expr: str, offset: int = 0, window: bool = False) -> str | None:
    """Prometheus' own parse error for expr, with its position, from `promtool check rules`
    on a one-rule file; None without promtool (or when it accepts expr)."""
    import shutil
    import subprocess
    import tempfile

    import yaml

    promtool = shutil.which("promtool")
    if promtool is None:
        return None
    text = expr.replace(WINDOW_PLACEHOLDER, WINDOW_STAND_IN) if window else expr
    doc = {"groups": [{"name": "check", "rules": [{"record": "check", "expr": text}]}]}
    with tempfile.TemporaryDirectory(prefix="stackgen-promql-") as tmp:
        path = f"{tmp}/rule.yml"
        with open(path, "w", encoding="utf-8") as f:
            f.write(yaml.safe_dump(doc, allow_unicode=True))
        try:
            proc = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return None
    found = _PROMTOOL_ERROR.search(proc.stdout + proc.stderr)
    if not found:
        return None
    line, column, message = int(found[1]), int(found[2]), found[3].strip()
    message = message.replace(f'"{WINDOW_STAND_IN}"', WINDOW_PLACEHOLDER) if window else message
    lines = expr.split("\n")
    if 0 < line <= len(lines):  # Go counts bytes; the user reads characters
        column = len(lines[line - 1].encode()[: column - 1].decode(errors="ignore")) + 1
    if line == 1:
        column, expr, lines[0] = max(1, column - offset), expr[offset:], lines[0][offset:]
    where = f"character {column}" if len(lines) == 1 else f"line {line}, column {column}"
    source = lines[line - 1] if 0 < line <= len(lines) else ""
    before = source[: column - 1]
    near = before[-20:]
    if len(before) > 20 and re.match(r"[\w:.]", before[-21]):
        near = re.sub(r"^[\w:.]+", "", near)  # start at a token, not inside a name
    shown = f" (after `{near.strip()}`)" if near.strip() else ""
    return f"at {where}{shown}: {message} (promtool)"


# promtool's expanding notation for test input series: `1 2 3`, `0+10x30`, `1-1x5`, `2x3` (a
# repeated n+1 times), `_`, `_x3` (three gaps), `stale`. One token, its parts named.
_NUMBER = r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?Inf|NaN"
SERIES_VALUE = re.compile(
    rf"^(?:(?P<first>{_NUMBER})(?:(?P<sign>[-+])(?P<step>{_NUMBER})x(?P<count>[0-9]+)|x(?P<repeat>[0-9]+))?"
    rf"|_(?:x(?P<gaps>[0-9]+))?|(?P<stale>stale))$"
)


def selector_nodes(expr: str) -> list[Any]:
    """Every VectorSelector node of a PromQL expression ({{window}} filled in), in order."""
    found: list[Any] = []

    def walk(item: Any) -> None:
        kind = type(item).__name__
        if kind == "VectorSelector":
            found.append(item)
            return
        if kind == "MatrixSelector":
            walk(item.vector_selector)
            return
        for attr in ("expr", "lhs", "rhs", "param", "args", "vector_selector"):
            child = getattr(item, attr, None)
            if child is None:
                continue
            if isinstance(child, list | tuple):
                for c in child:
                    walk(c)
            elif not isinstance(child, str | int | float):
                walk(child)

    walk(promql_parser.parse(expr.replace(WINDOW_PLACEHOLDER, "5m")))
    return found


def outside_strings(expr: str) -> str:
    """expr with string literals blanked: what is left is PromQL syntax."""
    return re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)


def is_vector_selector(expr: str) -> bool:
    """True for a plain selector such as http_requests_total{code=~"5.."}, and nothing more: no
    comment (`# ...` would swallow the rest of the rule it is spliced into)."""
    if "#" in outside_strings(expr):
        return False
    try:
        node = promql_parser.parse(expr)
    except (ValueError, RuntimeError, TypeError):
        return False
    return type(node).__name__ == "VectorSelector"


def matchers_error(matchers: str) -> str | None:
    """Check a bare label-matcher list such as {job="api"} (or an empty string): exactly one
    brace pair of matchers, so `{job="api"} or vector(1)` cannot ride into a rule."""
    if not matchers.strip():
        return None
    text = matchers.strip()
    if not (text.startswith("{") and text.endswith("}")):
        return 'write label matchers in braces, e.g. {job="api"}'
    err = parse_error("x" + text, offset=1)
    if err:
        return err
    if not is_vector_selector("x" + text) or outside_strings(text).count("{") != 1:
        return 'only label matchers in one pair of braces, e.g. {job="api", code=~"5.."}: no operators or comments'
    return regex_error("x" + text)


def regex_error(selector: str) -> str | None:
    """A regex matcher Prometheus (Go's regexp, RE2) would refuse, e.g. a repetition over
    1,000 (`5{1001}`), which promql-parser (Rust's regex) accepts."""
    from stackgen import goregex

    for op, value in re.findall(r'(=~|!~)\s*("(?:[^"\\]|\\.)*")', selector):
        pattern = json.loads(value)
        if re.search(r"\(\?<[A-Za-z_]", pattern):
            return f"regex {value} ({op}): write named groups (?P<name>...); Go before 1.22 refuses (?<name>...)"
        error = goregex.compile_error(f"^(?:{pattern})$")
        if error and error.startswith("\\C"):
            return f"regex {value} ({op}): {error}"
        if error:
            return f"regex {value} ({op}) is refused by Prometheus (Go's RE2): {error}"
    return None


def join_matchers(*parts: str) -> str:
    """Merge matcher lists: ('{job="a"}', 'le="1"') -> '{job="a",le="1"}'."""
    inner = []
    for part in parts:
        text = part.strip()
        if text.startswith("{") and text.endswith("}"):
            text = text[1:-1]
        text = text.strip().strip(",").strip()
        if text:
            inner.append(text)
    return "{" + ",".join(inner) + "}"


# ---- Values into query text. Every user value that lands inside a PromQL or LogQL string
# or regex goes through these, so a name with a hyphen, a dot, a quote or a newline stays one
# value. Both languages read double-quoted strings with Go's escapes (strconv.Unquote) and
# regexes with Go's RE2, fully anchored by Prometheus and Loki.

# Go's regexp.QuoteMeta escapes exactly these; anything else (a hyphen) is literal in RE2.
_RE2_SPECIAL = frozenset(r"\.+*?()|[]{}^$")


def quote(value: str) -> str:
    """A double-quoted string literal that PromQL and LogQL read back as exactly `value`.

    JSON's escapes are a subset of Go's (\\" \\\\ \\n \\t \\uXXXX ...), and JSON escapes every
    control character, which a Go string literal cannot hold raw. Values with nothing to escape
    (nearly all: a 1,000-SLO render quotes 60,000) skip the encoder."""
    if _NEEDS_ESCAPE.search(value) is None:
        return f'"{value}"'
    return json.dumps(value, ensure_ascii=False)


_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f]')  # what json.dumps(ensure_ascii=False) escapes


def quote_meta(value: str) -> str:
    """`value` as an RE2 regex matching exactly itself (Go's regexp.QuoteMeta). Python's
    re.escape also escapes '-', and `\\-` is no escape in a PromQL string."""
    return "".join("\\" + char if char in _RE2_SPECIAL else char for char in value)


def equals(label: str, value: str) -> str:
    """label="value", the value quoted."""
    return f"{label}={quote(value)}"


def any_of(label: str, values: list[str] | tuple[str, ...]) -> str:
    """label=~"a|b": a matcher for any of the values, each matched literally."""
    if len(values) == 1:
        return equals(label, values[0])
    return f"{label}=~{quote('|'.join(quote_meta(v) for v in values))}"


def selector(metric: str, *matchers: str) -> str:
    """metric{m1, m2}: a selector from matchers built with equals()/any_of()."""
    return f"{metric}{{{', '.join(matchers)}}}"
