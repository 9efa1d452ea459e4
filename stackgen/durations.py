"""Prometheus-style durations ("1h30m", "30d"): parse to seconds and format back."""

from __future__ import annotations

import functools
import re

_UNITS = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
# Same grammar as Prometheus' model.ParseDuration: units in descending order, each once.
DURATION_PATTERN = r"^(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?$"
_RE = re.compile(DURATION_PATTERN)


def parse_duration(text: str) -> int:
    """Seconds in a duration; raises ValueError with a hint on bad input.

    Sub-second durations are rejected: nothing stackgen renders needs them.
    """
    if not isinstance(text, str) or not text or not _RE.match(text):
        raise ValueError(f"{text!r} is not a duration; write e.g. 30s, 5m, 1h, 30d")
    total = 0.0
    for value, unit in re.findall(r"([0-9]+)(ms|[ywdhms])", text):
        total += int(value) * _UNITS[unit]
    if total <= 0 or total != int(total):
        raise ValueError(f"{text!r} must be a positive whole number of seconds")
    return int(total)


@functools.lru_cache(maxsize=4096)
def format_duration(seconds: int) -> str:
    """Shortest Prometheus duration for whole seconds: 86400 -> '1d', 5400 -> '1h30m'.

    Weeks and years are not used so that windows read the way SREs write them (30d, 28d).
    """
    if seconds <= 0:
        raise ValueError("durations are positive")
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            count, seconds = divmod(seconds, size)
            out.append(f"{count}{unit}")
    return "".join(out)
