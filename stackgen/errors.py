"""The project's own error types; the CLI turns them into exit codes and messages."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a spec, located by file, line and spec path."""

    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class StackgenError(Exception):
    """Base class: an error stackgen reports to the user without a traceback."""

    exit_code = 1


class SpecError(StackgenError):
    """The spec is invalid; carries every problem found, not just the first."""

    exit_code = 2

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(set(problems))
        super().__init__("\n".join(str(p) for p in self.problems))

    def __reduce__(self) -> tuple[type[SpecError], tuple[list[Problem]]]:
        return (type(self), (self.problems,))  # as raised in a render worker process


class UsageError(StackgenError):
    """A bad command line or environment (e.g. the output path is a file)."""

    exit_code = 2


class ToolMissingError(StackgenError):
    """A validator (promtool, amtool) is not installed."""

    exit_code = 1


class LimitExceeded(StackgenError):
    """What the spec renders breaks a limit of the engine it is for (e.g. the Mimir ruler's rules
    per group); the pipeline locates it at the spec path that sets or implies the limit."""

    exit_code = 2

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(message)

    def __reduce__(self) -> tuple[type[LimitExceeded], tuple[tuple[str | int, ...], str]]:
        return (type(self), (self.path, self.message))  # as raised in a render worker process
