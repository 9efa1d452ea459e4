"""Jinja2 for the files where layout and comments matter more than structure (runbooks,
Alloy's own syntax, READMEs). StrictUndefined; values go through escaping filters."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jinja2


def templates_dir() -> Path:
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "templates", package.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("stackgen templates/ directory not found")


def alloy_string(value: Any) -> str:
    """An Alloy string literal: Go-style double-quoted with escapes (JSON's rules suffice)."""
    return json.dumps(str(value), ensure_ascii=False)


def md_text(value: Any) -> str:
    """User text in Markdown: one line, no HTML."""
    return str(value).replace("\r", " ").replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;")


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["alloy"] = alloy_string
    env.filters["md"] = md_text
    return env


def render_template(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)
