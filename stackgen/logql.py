"""LogQL the spec brings in (plain alerts' `logql`, `logs.alerts.custom`), parsed at load time,
so a typo fails `stackgen render` with its position instead of silently switching off the
Loki ruler (it loads a tenant's rule files together: one bad rule stops them all).

The grammar is stackgen's own (logql_grammar.lark, run by Lark's Earley parser: pure Python,
no Node at run time), written from Loki's query language and proven against Grafana's own
grammar (@grafana/lezer-logql) on a corpus in tests/test_logql_parser.py. After the parse:
an alert needs a metric query, both legs of a binary operation must be metric queries (as
Loki requires), and stream selectors may only use labels the stack's log agents set.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

GRAMMAR = Path(__file__).with_name("logql_grammar.lark")

# Log range aggregations: each needs a [range] after its log query.
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
_RANGE = re.compile(r"\[\s*[0-9]+(ms|[smhdwy])([0-9]+(ms|[smhdwy]))*\s*\]")


@functools.cache
def _parser() -> Any:
    from lark import Lark  # only specs that bring LogQL pay for the grammar (~0.15 s)

    return Lark(GRAMMAR.read_text(), parser="earley", lexer="basic", propagate_positions=True)


def _where(expr: str, line: int, column: int) -> str:
    return f"character {column}" if "\n" not in expr.strip() else f"line {line}, column {column}"


def parse(expr: str) -> tuple[Any, str | None]:
    """(tree, None) or (None, what is wrong and where)."""
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

    try:
        return _parser().parse(expr), None
    except UnexpectedEOF:
        return None, "does not parse: it ends too early (an unclosed bracket or a missing operand?)"
    except UnexpectedToken as err:
        token = str(err.token)
        if err.token.type == "$END":
            return None, "does not parse: it ends too early (an unclosed bracket or a missing operand?)"
        return None, f"does not parse at {_where(expr, err.line, err.column)}: unexpected {token!r}"
    except UnexpectedCharacters as err:
        return None, f"does not parse at {_where(expr, err.line, err.column)}: unexpected {err.char!r}"
    except UnexpectedInput as err:  # any other position-carrying parse error
        return None, f"does not parse at {_where(expr, err.line, err.column)}"


def _kind(node: Any) -> str:
    return str(getattr(node, "data", "token"))


def _is_log_query(node: Any) -> bool:
    return _kind(node) == "log_expr"


def _subtrees(node: Any) -> list[Any]:
    return list(node.iter_subtrees()) if hasattr(node, "iter_subtrees") else []


def _hints(expr: str) -> list[str]:
    """Actionable words for the usual mistake behind a parse error: a range function whose
    log query has no [range]."""
    found = []
    for match in re.finditer(r"\b(" + "|".join(RANGE_FUNCTIONS) + r")\s*\(", expr):
        depth, end = 0, match.end() - 1
        for end in range(match.end() - 1, len(expr)):
            depth += {"(": 1, ")": -1}.get(expr[end], 0)
            if depth == 0:
                break
        if not _RANGE.search(expr[match.end() : end]):
            found.append(f"{match.group(1)}(...) needs a range, e.g. [5m], after its log query")
    return found


def problems(expr: str, stream_labels: set[str]) -> list[str]:
    """What is wrong with a LogQL alert expression, in words a user can act on (empty: fine)."""
    tree, err = parse(expr)
    if err:
        return [err, *_hints(expr)]
    found: list[str] = []
    if _is_log_query(tree):
        found.append(
            "is a log query (it selects lines); an alert needs a metric query over it, "
            'e.g. sum(rate({service="api"} |= "error" [5m])) > 1'
        )
    for node in _subtrees(tree):
        if node.data == "binop":
            lhs, op, rhs = node.children[0], node.children[1], node.children[-1]
            if _is_log_query(lhs) or _is_log_query(rhs):
                found.append(f"both sides of {str(op)!r} must be metric queries, not log queries (Loki refuses it)")
        if node.data == "selector":
            if not any(node.children):
                found.append('an empty stream selector {} selects nothing: name a stream, e.g. {service="api"}')
            for matcher in node.children:
                if matcher is None:
                    continue
                label = str(matcher.children[0])
                if label not in stream_labels:
                    found.append(
                        f"stream label {label!r} is set by no log agent of this stack (they set: "
                        f"{', '.join(sorted(stream_labels))}); filter on it after a parser, e.g. | json | {label}=..."
                    )
    return found
