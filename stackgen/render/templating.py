"""Jinja2 for the files where layout and comments matter more than structure (runbooks,
Alloy's own syntax, READMEs). StrictUndefined; values go through escaping filters."""

from __future__ import annotations

import json
import re
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
    """User text in Markdown: one line, no HTML, no markup (emphasis, links, code, headings,
    lists, entities all come out as the literal characters)."""
    text = str(value).replace("\r", " ").replace("\n", " ").strip()
    text = re.sub(r"([\\`*_\[\]~|$&])", r"\\\1", text)
    text = text.replace("<", "&lt;").replace(">", "&gt;")
    # A block marker at the start (heading, list item, setext line, "1." or "1)"): escape it.
    text = re.sub(r"^([#+=-])", r"\\\1", text)
    return re.sub(r"^(\d{1,9})([.)])", r"\1\\\2", text)


def html_comment(value: Any) -> str:
    """Text inside <!-- -->: no "--" (a spec file named "a-->b" must not end the comment)."""
    text = str(value).replace("\n", " ")
    while "--" in text:
        text = text.replace("--", "- -")
    return text


def md_code(value: Any) -> str:
    """User text as a Markdown code span: one line, printed verbatim (no entity or markup)."""
    text = str(value).replace("\r", " ").replace("\n", " ")
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith(("`", " ")) or text.endswith(("`", " ")) else ""
    return f"{fence}{pad}{text}{pad}{fence}"


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
    env.filters["html_comment"] = html_comment
    return env


def render_template(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)
