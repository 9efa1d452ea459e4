"""What every section builder shares: located problems, durations, uniqueness, receivers."""

from __future__ import annotations

from collections import Counter
from typing import Any

from stackgen.durations import parse_duration
from stackgen.errors import Problem
from stackgen.spec.loader import LoadedSpec

Path_ = tuple[str | int, ...]

MAX_DURATION = 100 * 365 * 86400


def pairs(mapping: dict[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((mapping or {}).items()))


class BuilderBase:
    """Turns schema-valid data into the model, collecting every cross-field problem."""

    def __init__(self, spec: LoadedSpec) -> None:
        self.spec = spec
        self.problems: list[Problem] = []

    def fail(self, path: Path_, message: str) -> None:
        self.problems.append(self.spec.problem(path, message))

    def duration(self, value: str | None, path: Path_, default: int, allow_zero: bool = False) -> int:
        if value is None:
            return default
        if allow_zero and isinstance(value, str) and value and set(value) <= set("0smhdwy") and value[0] == "0":
            return 0  # "0s": notify at once (group_wait)
        try:
            seconds = parse_duration(value)
        except ValueError as err:
            self.fail(path, str(err))
            return default
        if seconds > MAX_DURATION:
            # Prometheus durations are int64 nanoseconds: past ~292y they overflow.
            self.fail(path, f"{value!r} is longer than 100y; no window, period or retention needs that")
            return default
        return seconds

    def unique(self, items: list[dict[str, Any]], path: Path_, what: str) -> None:
        counts = Counter(item.get("name") for item in items)
        for index, item in enumerate(items):
            if counts[item.get("name")] > 1:
                self.fail(
                    (*path, index, "name"),
                    f"duplicate {what} name {item.get('name')!r}; names must be unique",
                )

    def check_receivers(self, names: list[str] | str, path: Path_, known: set[str]) -> tuple[str, ...]:
        """A list of receiver names, or one name (reported at path itself, not path[0])."""
        single = isinstance(names, str)
        names = [names] if isinstance(names, str) else names
        for i, name in enumerate(names):
            if name not in known:
                self.fail(
                    path if single else (*path, i),
                    f"receiver {name!r} is not defined under receivers: "
                    f"define it or use one of {', '.join(sorted(known))}",
                )
        return tuple(names)

    def check_severity(self, severity: str, path: Path_, known: tuple[str, ...]) -> None:
        if severity not in known:
            self.fail(
                path,
                f"severity {severity!r} has no route: add it under routing.severities (defined: {', '.join(known)})",
            )
