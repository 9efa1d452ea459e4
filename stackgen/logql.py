"""A structural check of LogQL the spec brings in (plain alerts, custom log alerts), at load
time, so a typo fails `stackgen render` with a location instead of silently switching off
the Loki ruler (it loads a tenant's rule files together: one bad rule stops them all).

No LogQL grammar ships for Python; this checks what most often goes wrong: brackets that do
not balance, stream selectors that are not label matchers, range functions without a
range, and stream labels no log agent sets. The full grammar (Grafana's lezer-logql) parses
every generated expression in the test suite.
"""

from __future__ import annotations

import re

from stackgen import promql

# Log range aggregations: each needs a [range] inside its parentheses.
RANGE_FUNCTIONS = (
    "rate",
    "rate_counter",
    "count_over_time",
    "bytes_rate",
    "bytes_over_time",
    "absent_over_time",
    "sum_over_time",
    "avg_over_time",
    "max_over_time",
    "min_over_time",
    "first_over_time",
    "last_over_time",
    "stdvar_over_time",
    "stddev_over_time",
    "quantile_over_time",
)
_CLOSE = {")": "(", "]": "[", "}": "{"}
_RANGE = re.compile(r"\[\s*[0-9]+(ms|[smhdwy])([0-9]+(ms|[smhdwy]))*\s*\]")


def _code_spans(expr: str) -> tuple[str, str | None]:
    """expr with the contents of string literals blanked (same length), or an error."""
    out = []
    i = 0
    while i < len(expr):
        char = expr[i]
        if char in '"`':
            end = i + 1
            while end < len(expr) and expr[end] != char:
                end += 2 if char == '"' and expr[end] == "\\" else 1
            if end >= len(expr):
                return "", f"the string starting at character {i + 1} is not closed"
            out.append(char + " " * (end - i - 1) + char)
            i = end + 1
        else:
            out.append(char)
            i += 1
    return "".join(out), None


def problems(expr: str, stream_labels: set[str]) -> list[str]:
    """What is wrong with a LogQL expression, in words a user can act on (empty: looks fine)."""
    code, err = _code_spans(expr)
    if err:
        return [err]
    found: list[str] = []
    stack: list[tuple[str, int]] = []
    for i, char in enumerate(code):
        if char in "([{":
            stack.append((char, i))
        elif char in ")]}":
            if not stack or stack[-1][0] != _CLOSE[char]:
                return [f"{char!r} at character {i + 1} closes nothing"]
            stack.pop()
    if stack:
        char, i = stack[-1]
        return [f"{char!r} at character {i + 1} is never closed"]
    selectors = list(re.finditer(r"\{[^{}]*\}", code))
    if not selectors:
        found.append('no stream selector: a LogQL query starts from one, e.g. {service="api"}')
    for match in selectors:
        text = expr[match.start() : match.end()]
        err = promql.matchers_error(text)
        if err:
            found.append(f"stream selector {text} does not parse: {err}")
            continue
        for label in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", text):
            if label not in stream_labels:
                found.append(
                    f"stream label {label!r} is set by no log agent of this stack (they set: "
                    f"{', '.join(sorted(stream_labels))}); filter on it after a parser, e.g. | json | {label}=..."
                )
    for match in re.finditer(r"\b(" + "|".join(RANGE_FUNCTIONS) + r")\s*\(", code):
        depth, end = 0, match.end() - 1
        for end in range(match.end() - 1, len(code)):
            depth += {"(": 1, ")": -1}.get(code[end], 0)
            if depth == 0:
                break
        if not _RANGE.search(code[match.end() : end]):
            found.append(f"{match.group(1)}(...) needs a range, e.g. [5m], after its stream selector")
    return found
