"""A fast writer for the block-style YAML stackgen emits, byte-identical to PyYAML's.

Why: at 1,000 SLOs PyYAML's representer (pure Python, one node object per value) took
over half of the render. Renderers produce plain data (dicts, lists, text, numbers), so
this writes that data directly. It only takes the cases it can decide exactly (one-line
printable text, our literal blocks, numbers, nesting); for anything else it raises
`Unsupported` and `common.yaml_text` lets PyYAML write the whole document, so PyYAML
stays the reference. tests/test_block_yaml.py compares both byte for byte on every
rendered file and on generated data.

Layout (PyYAML with indent 2, default_flow_style=False, width 1000): mapping values
nest 2 spaces deeper; a sequence under a key is not indented; literal block text sits
2 spaces deeper than its container.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import yaml

_STR = "tag:yaml.org,2002:str"
_RESOLVER = yaml.resolver.Resolver()
# Text starting with one of these may resolve to a bool, number, null, timestamp, merge or
# value tag; text starting with anything else is always a string.
_MAYBE_TYPED = frozenset("yYnNtTfFoO0123456789+-.~<=")
_ALWAYS_INDICATOR = frozenset("#,[]{}&*!|>'\"%@`")
_NUMBER = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_DATE = re.compile(r"\d{4}-")
# PyYAML folds long scalars at spaces past this column; leave those to PyYAML.
_MAX_COLUMN = 990


class Unsupported(Exception):
    """This value needs PyYAML's full analysis."""


def _printable(text: str) -> bool:
    """Characters both Python and libyaml call printable: libyaml escapes everything past
    U+FFFF (emoji, historic scripts), so those go to PyYAML."""
    return text.isprintable() and (text.isascii() or max(text) <= "\uffff")


def _resolves_to_str(text: str) -> bool:
    if not text or text[0] not in _MAYBE_TYPED:
        return True
    tag: str = _RESOLVER.resolve(yaml.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    return tag == _STR


def _plain_allowed(text: str) -> bool:
    """PyYAML's rules for a plain scalar in block context, for one-line printable text."""
    first = text[0]
    if first == " " or text[-1] == " " or first in _ALWAYS_INDICATOR:
        return False
    if first in "?:-" and (len(text) == 1 or text[1] == " "):
        return False
    if text.startswith(("---", "...")):
        return False
    if text[-1] == ":" or ": " in text[1:] or " #" in text:
        return False
    return _resolves_to_str(text)


def _single_quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def go_retypes(value: str) -> bool:
    """True when Go's YAML libraries would read this plain scalar as a bool, number, null or
    time although PyYAML (YAML 1.1) writes it unquoted: y/n (yaml.v2), 1e3, 0o17, 0b1,
    2024-01-01T00:00:00 (both). Promtail and Loki decode some fields into interface{}.
    Such text is single-quoted by both writers."""
    if value in ("y", "Y", "n", "N"):
        return True
    if not value or value[0] not in "+-.0123456789":
        return False
    plain = value.replace("_", "")
    if _NUMBER.fullmatch(plain) or _DATE.match(value):
        return True
    try:
        int(plain, 0)
        return True
    except ValueError:
        pass
    try:
        float(plain)
        return True
    except ValueError:
        return False


def _literal_ok(text: str) -> bool:
    """Text PyYAML writes as a literal block (common._str asks for one for every multi-line
    text), narrowed to blocks that need no indentation or keep hints."""
    return (
        "\n" in text
        and text[0] not in " \n"
        and text[-1] not in " \n"
        and "\n\n" not in text
        and " \n" not in text
        and _printable(text.replace("\n", ""))  # every line printable
    )


@functools.lru_cache(maxsize=1 << 16)  # keys, label values and durations repeat thousands of times
def _text(value: str) -> str:
    if not _printable(value):  # newlines (literal blocks are written by the container), tabs, controls
        raise Unsupported
    if not value:
        return "''"
    if go_retypes(value):
        return _single_quoted(value)
    return value if _plain_allowed(value) else _single_quoted(value)


def scalar(value: Any, column: int) -> str:
    """One scalar written at `column`, or Unsupported."""
    kind = type(value)
    if kind is str:
        text: str = _text(value)
        if len(text) + column > _MAX_COLUMN:  # quoting ('' for ') makes it longer than value
            raise Unsupported
        return text
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        if value != value:
            return ".nan"
        if value in (float("inf"), float("-inf")):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value).lower()
        if "." not in text and "e" in text:
            text = text.replace("e", ".0e", 1)
        return text
    if value is None:
        return "null"
    raise Unsupported


def _inline(value: Any, column: int, indent: int) -> str:
    """The part after `key: ` or `- `, with its newline: a scalar, a literal block, or an
    empty collection."""
    kind = type(value)
    if kind is str:
        if "\n" not in value:
            written: str = _text(value)
            if len(written) + column > _MAX_COLUMN:
                raise Unsupported
            return written + "\n"
        if not _literal_ok(value) or go_retypes(value):
            raise Unsupported
        text: str = value
        pad = "\n" + " " * (indent + 2)
        return "|-" + pad + text.replace("\n", pad) + "\n"
    if kind is dict:
        return "{}\n"  # only called for empty ones
    if kind is list:
        return "[]\n"
    return scalar(value, column) + "\n"


@functools.lru_cache(maxsize=1 << 12)
def _key(key: Any) -> str:
    if type(key) is not str or len(key.encode()) > 128:
        raise Unsupported  # libyaml writes keys over 128 bytes in "? key" form
    text: str = _text(key)
    return text


def _mapping(data: dict[Any, Any], indent: int, out: list[str], lead: str) -> None:
    """Keys at `indent`; the first line starts with `lead` (spaces, or a sequence dash)."""
    pad = " " * indent
    append = out.append
    for key, value in data.items():
        text = _key(key)
        kind = type(value)
        if kind is str and "\n" not in value and 2 * len(value) + indent + len(text) + 4 <= _MAX_COLUMN:
            append(f"{lead}{text}: {_text(value)}\n")  # the common case (even fully quoted it fits), inlined
        elif kind is dict and value:
            out.append(f"{lead}{text}:\n")
            _mapping(value, indent + 2, out, pad + "  ")
        elif kind is list and value:
            out.append(f"{lead}{text}:\n")
            _sequence(value, indent, out, pad)
        else:
            out.append(f"{lead}{text}: {_inline(value, indent + len(text) + 2, indent)}")
        lead = pad


def _sequence(data: list[Any], indent: int, out: list[str], lead: str) -> None:
    """Dashes at `indent`; the first line starts with `lead`."""
    pad = " " * indent
    for item in data:
        kind = type(item)
        if kind is dict and item:
            _mapping(item, indent + 2, out, lead + "- ")
        elif kind is list and item:
            _sequence(item, indent + 2, out, lead + "- ")
        else:
            out.append(f"{lead}- {_inline(item, indent + 2, indent)}")
        lead = pad


def dump(data: Any) -> str:
    """`data` as block YAML, or Unsupported when PyYAML must decide."""
    out: list[str] = []
    if type(data) is dict and data:
        _mapping(data, 0, out, "")
    elif type(data) is list and data:
        _sequence(data, 0, out, "")
    else:
        raise Unsupported
    return "".join(out)
