"""Apply redaction regexes the way Promtail's `replace` stage and Alloy's `stage.replace` do,
with RE2 (Go) semantics via google-re2.

Promtail docs (replace stage): the expression must contain capture groups; for every match,
each captured group's text is replaced by `replace` (named groups too); the rest of the
match is kept. Without `source`, the stage rewrites the log line.
"""

from __future__ import annotations

import re2  # type: ignore[import-not-found]


def compiles_as_re2(pattern: str) -> str | None:
    try:
        re2.compile(pattern)
    except re2.error as err:
        return str(err)
    return None


def redact(line: str, pattern: str, replacement: str) -> str:
    regex = re2.compile(pattern)
    out = []
    last = 0
    for match in regex.finditer(line):
        spans = [match.span(i) for i in range(1, (match.re.groups or 0) + 1) if match.span(i)[0] >= 0]
        for start, end in sorted(spans):
            out.append(line[last:start])
            out.append(replacement)
            last = end
    out.append(line[last:])
    return "".join(out)
