"""Apply redaction regexes the way Promtail's `replace` stage and Alloy's `stage.replace` do
(the same Go code), with RE2 semantics via google-re2.

Semantics, as read in Promtail's clients/pkg/logentry/stages/replace.go (3.6): for every
match, every capture group that took part (index != -1) is replaced by `replace`, in group
order; a group that starts before the end of the previous replacement is skipped, unless
nothing was replaced yet; the rest of the line is kept. Without `source`, the stage rewrites
the log line.
"""

from __future__ import annotations

import re2  # type: ignore[import-not-found]

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False


def compiles_as_re2(pattern: str) -> str | None:
    try:
        re2.compile(pattern, _OPTIONS)
    except re2.error as err:
        return str(err)
    return None


def redact(line: str, pattern: str, replacement: str) -> str:
    regex = re2.compile(pattern, _OPTIONS)
    out = []
    previous_end = 0
    for match in regex.finditer(line):
        for group in range(1, regex.groups + 1):
            start, end = match.span(group)
            if start == -1:
                continue
            if previous_end == 0 or previous_end <= start:
                out.append(line[previous_end:start])
                out.append(replacement)
                previous_end = end
    out.append(line[previous_end:])
    return "".join(out)
