"""The Go-template subset a plain alert's summary and description may use, and its expansion.

Prometheus runs annotations as Go templates. In a spec, `{{ $value }}` and `{{ $labels.x }}`
are what alert authors need; anything else inside `{{ }}` would run arbitrary template code,
and stackgen could not predict what a generated promtool test must expect. So exactly these
forms are templates, and any other `{{`/`}}` is rejected with this list:
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

FORMS = (
    "{{ $value }}",
    "{{ $value | humanize }}",
    "{{ $value | humanizePercentage }}",
    '{{ $value | printf "%.2f" }} (any number of decimals, 0-9)',
    "{{ $labels.<label name> }}",
)
_TOKEN = re.compile(
    r"\{\{\s*(?:"
    r"(?P<value>\$value)(?:\s*\|\s*(?:(?P<fn>humanize|humanizePercentage)|printf\s+\"%\.(?P<decimals>[0-9])f\"))?"
    r"|\$labels\.(?P<label>[a-zA-Z_][a-zA-Z0-9_]*)"
    r")\s*\}\}"
)


def problem(text: str) -> str | None:
    """Why text is not a valid annotation template, or None."""
    rest = _TOKEN.sub("", text)
    if "{{" in rest or "}}" in rest:
        return "templates may only be " + ", ".join(FORMS) + "; write other braces differently"
    return None


def uses_value(text: str) -> bool:
    return any(m.group("value") for m in _TOKEN.finditer(text))


def labels_used(text: str) -> set[str]:
    return {m.group("label") for m in _TOKEN.finditer(text) if m.group("label")}


def expand(text: str, labels: dict[str, str], value: Decimal | None) -> str:
    """What Prometheus prints for text, given the alert's labels and $value."""

    def one(match: re.Match[str]) -> str:
        if match.group("label"):
            return labels.get(match.group("label"), "")
        assert value is not None, "expand() needs the value of an alert whose annotation prints it"
        number = float(value)
        if match.group("decimals") is not None:
            return f"{number:.{int(match.group('decimals'))}f}"
        if match.group("fn") == "humanize":
            return humanize(number)
        if match.group("fn") == "humanizePercentage":
            return go_g(number * 100, 4) + "%"
        return go_v(number)

    return _TOKEN.sub(one, text)


def placeholders(text: str) -> str:
    """The text for a document: each template as a placeholder (<instance>, <value>)."""
    return _TOKEN.sub(lambda m: f"<{m.group('label') or 'value'}>", text)


def go_v(number: float) -> str:
    """Go's fmt %v of a float64 (what {{ $value }} prints): the shortest digits that read back
    as the same number, in exponent form when the decimal exponent is below -4 or 6 and up
    (strconv's %g with shortest precision decides with precision 6): 90, 0.001, 1e+06."""
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    if number == 0:
        return "-0" if math.copysign(1, number) < 0 else "0"
    sign, digits, exponent = Decimal(repr(number)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    point = len(text) + exponent  # digits left of the decimal point
    exp = point - 1
    if exp < -4 or exp >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        out = f"{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    elif point <= 0:
        out = "0." + "0" * -point + text
    elif point >= len(text):
        out = text + "0" * (point - len(text))
    else:
        out = text[:point] + "." + text[point:]
    return ("-" if sign else "") + out


def go_g(number: float, precision: int) -> str:
    """Go's %.<precision>g: the same as C's and Python's for finite numbers."""
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    return f"{number:.{precision}g}"


def humanize(number: float) -> str:
    """Prometheus' humanize: SI prefixes, 4 significant digits."""
    if number == 0 or math.isnan(number) or math.isinf(number):
        return go_g(number, 4)
    if abs(number) >= 1:
        prefix = ""
        for candidate in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(number) < 1000:
                break
            prefix = candidate
            number /= 1000
        return go_g(number, 4) + prefix
    prefix = ""
    for candidate in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(number) >= 1:
            break
        prefix = candidate
        number *= 1000
    return go_g(number, 4) + prefix
