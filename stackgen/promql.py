"""PromQL checks backed by promql-parser (the Prometheus grammar, in Rust)."""

from __future__ import annotations

import promql_parser

WINDOW_PLACEHOLDER = "{{window}}"


def parse_error(expr: str) -> str | None:
    """None if expr parses as PromQL, else the parser's message."""
    try:
        promql_parser.parse(expr)
    except (ValueError, RuntimeError, TypeError) as err:  # the binding raises ValueError
        return str(err) or "does not parse"
    return None


def is_vector_selector(expr: str) -> bool:
    """True for a plain selector such as http_requests_total{code=~"5.."}."""
    try:
        node = promql_parser.parse(expr)
    except (ValueError, RuntimeError, TypeError):
        return False
    return type(node).__name__ == "VectorSelector"


def matchers_error(matchers: str) -> str | None:
    """Check a bare label-matcher list such as {job="api"} (or an empty string)."""
    if not matchers.strip():
        return None
    text = matchers.strip()
    if not (text.startswith("{") and text.endswith("}")):
        return 'write label matchers in braces, e.g. {job="api"}'
    return parse_error("x" + text)


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
