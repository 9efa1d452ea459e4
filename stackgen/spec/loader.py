"""Load slos.yaml: safe YAML with limits, schema check, every error with file, line and path."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema_rs
import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from stackgen.errors import Problem, SpecError

if TYPE_CHECKING:
    import jsonschema

SCHEMA_PATH = Path(__file__).with_name("slos.schema.json")
SUPPORTED_VERSIONS = ("stackgen/v1",)

# Limits that make hostile input fail fast instead of eating memory or the stack.
MAX_SPEC_BYTES = 4 * 1024 * 1024
MAX_NODES = 500_000  # nodes after alias expansion: stops "billion laughs"
MAX_DEPTH = 40
TOO_DEEP = f"nested deeper than {MAX_DEPTH} levels; no stackgen spec needs that"
# Text may hold tab and newline, no other control character (NUL, ESC, CR, DEL, C1): no
# renderer can carry them as data everywhere (Markdown drops NUL, terminals run ESC).
CONTROL_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
STR_TAG = "tag:yaml.org,2002:str"
FLOAT_TAG = "tag:yaml.org,2002:float"
_FLOATS = yaml.constructor.SafeConstructor()
# libyaml's parser and composer (every PyYAML wheel has it): ~4x faster on large specs; its
# nodes carry the same line marks, so error locations do not change.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Keys that would put a secret inline; the message points at the *_file form.
INLINE_SECRET_KEYS = {
    "routing_key": "routing_key_file",
    "service_key": "routing_key_file",
    "api_url": "api_url_file",
    "api_key": "api_key_file",
    "auth_password": "auth_password_file",
    "password": "auth_password_file",
    "credentials": "credentials_file",
    "token": "credentials_file",
    "webhook_url": "url with credentials_file",
}


def format_path(parts: tuple[str | int, ...]) -> str:
    """('services', 0, 'slos', 1, 'objective') -> 'services[0].slos[1].objective'."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass
class LoadedSpec:
    """Plain data of a spec plus where each path came from, for error messages."""

    data: dict[str, Any]
    file: str
    lines: dict[tuple[str | int, ...], int] = field(default_factory=dict)

    def line_of(self, path: tuple[str | int, ...]) -> int:
        """Line of the nearest located ancestor of path (1-based; 0 if unknown)."""
        parts = tuple(path)
        while parts:
            if parts in self.lines:
                return self.lines[parts]
            parts = parts[:-1]
        return self.lines.get((), 1)

    def problem(self, path: tuple[str | int, ...], message: str) -> Problem:
        return Problem(self.file, self.line_of(path), format_path(path), message)


class _Walk:
    """Walks the composed YAML node graph, recording lines and enforcing limits."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.count = 0
        self.lines: dict[tuple[str | int, ...], int] = {}
        self.problems: list[Problem] = []

    def visit(self, node: Node, path: tuple[str | int, ...], depth: int) -> None:
        self.count += 1
        if self.count > MAX_NODES:
            raise SpecError(
                [
                    Problem(
                        self.file,
                        node.start_mark.line + 1,
                        format_path(path),
                        f"the document expands to more than {MAX_NODES} nodes "
                        "(YAML aliases multiplying?); simplify the spec",
                    )
                ]
            )
        if depth > MAX_DEPTH:
            raise SpecError(
                [
                    Problem(
                        self.file,
                        node.start_mark.line + 1,
                        format_path(path),
                        TOO_DEEP,
                    )
                ]
            )
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, MappingNode):
            seen: dict[Any, int] = {}
            for key_node, value_node in node.value:
                line = key_node.start_mark.line + 1
                if not isinstance(key_node, ScalarNode):
                    # A mapping or list as a key ("? [a, b]: 1") is never a spec field; refuse it
                    # before anything walks it: aliases inside keys could multiply unseen.
                    kind = "mapping" if isinstance(key_node, MappingNode) else "list"
                    raise SpecError(
                        [
                            Problem(
                                self.file,
                                line,
                                format_path(path),
                                f"a {kind} is used as a key here; keys are names (text)",
                            )
                        ]
                    )
                key = key_node.value
                if isinstance(key_node, ScalarNode) and key_node.tag != STR_TAG and key != "<<":
                    # `1:`, `on:`, `null:` load as int/bool/None: quote them (or they reach the
                    # model as non-text keys; mixed with text keys they cannot even be sorted).
                    self.problems.append(
                        Problem(
                            self.file,
                            line,
                            format_path((*path, key)),
                            f"key {key!r} is read as {key_node.tag.rsplit(':', 1)[-1]}, not text; quote it",
                        )
                    )
                if key in seen:
                    self.problems.append(
                        Problem(
                            self.file,
                            line,
                            format_path((*path, key)),
                            f"duplicate key (first defined on line {seen[key]}); keep one",
                        )
                    )
                seen[key] = line
                self.lines[(*path, key)] = line
                self.visit(value_node, (*path, key), depth + 1)
        elif isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                self.visit(item, (*path, index), depth + 1)
        elif isinstance(node, ScalarNode):
            self.check_scalar(node, path)

    def check_scalar(self, node: ScalarNode, path: tuple[str | int, ...]) -> None:
        """Values no renderer can carry as data: control characters, NaN and infinities."""
        line = node.start_mark.line + 1
        bad = CONTROL_CHARS.search(node.value)
        if bad:
            self.problems.append(
                Problem(
                    self.file,
                    line,
                    format_path(path),
                    f"contains the control character {bad.group(0)!r}; only tab and newline are allowed in text",
                )
            )
        if node.tag == FLOAT_TAG and not math.isfinite(_FLOATS.construct_yaml_float(node)):
            self.problems.append(Problem(self.file, line, format_path(path), f"{node.value} is not a finite number"))


def load_spec(path: Path) -> LoadedSpec:
    """Read and check a spec file; raises SpecError with every problem found."""
    name = str(path)
    try:
        with path.open("rb") as handle:  # bounded: --spec /dev/zero must not fill the memory
            raw = handle.read(MAX_SPEC_BYTES + 1)
    except FileNotFoundError:
        raise SpecError([Problem(name, 0, "", "file not found; pass --spec PATH or create slos.yaml")]) from None
    except OSError as err:
        raise SpecError([Problem(name, 0, "", f"cannot read: {err.strerror}")]) from None
    return load_spec_text(raw, name)


def load_spec_text(raw: bytes | str, name: str = "slos.yaml") -> LoadedSpec:
    """Parse spec text: YAML -> located plain data -> schema check -> version check."""
    size = len(raw.encode() if isinstance(raw, str) else raw)
    if size > MAX_SPEC_BYTES:
        raise SpecError(
            [
                Problem(
                    name,
                    0,
                    "",
                    f"the spec has more than {MAX_SPEC_BYTES} bytes; the limit is {MAX_SPEC_BYTES} "
                    "(split very large estates into several stacks)",
                )
            ]
        )
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1 if isinstance(raw, bytes) else 0
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1 if isinstance(raw, bytes) else 0
        raise SpecError(
            [Problem(name, line, "", f"not UTF-8 text (column {column}, byte {err.start}); save it as UTF-8")]
        ) from None

    _prescan(text, name)
    loader = _LOADER(text)
    try:
        try:
            node = loader.get_single_node()
            if node is None:
                raise SpecError([Problem(name, 1, "", "the file is empty; start from the README's example spec")])
            walk = _Walk(name)
            walk.visit(node, (), 0)
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else 0
        if _parser_nesting_limit(err):
            raise SpecError([Problem(name, line, "", TOO_DEEP)]) from None
        what = " ".join(x for x in (err.context, err.problem) if x)
        raise SpecError([Problem(name, line, "", f"YAML syntax error: {what}; fix the YAML")]) from None
    except yaml.YAMLError as err:
        raise SpecError([Problem(name, 0, "", f"YAML error: {err}")]) from None
    except RecursionError:
        raise SpecError([Problem(name, 0, "", "nested too deeply to parse; no stackgen spec needs that")]) from None

    if not isinstance(data, dict):
        kind = type(data).__name__ if data is not None else "nothing"
        raise SpecError(
            [
                Problem(
                    name,
                    1,
                    "",
                    f"the top level must be a mapping (version:, stack:, ...), found {kind}",
                )
            ]
        )

    spec = LoadedSpec(data=data, file=name, lines=walk.lines)
    problems = list(walk.problems)
    version = data.get("version")
    if version is not None and version not in SUPPORTED_VERSIONS:
        problems.append(
            spec.problem(
                ("version",),
                f"unknown version {version!r}; this stackgen reads {', '.join(SUPPORTED_VERSIONS)}",
            )
        )
    problems += schema_problems(spec, last_resort=not problems)
    if problems:
        raise SpecError(problems)
    return spec


def _prescan(text: str, name: str) -> None:
    """Count nodes and nesting on libyaml's event stream before PyYAML's composer (pure Python,
    recursive) builds the tree: a flat list of a million items or 50,000 nested brackets then
    fails in well under a second instead of tens of seconds. Syntax errors are left to the
    full parse, which reports them with their location."""
    parser = getattr(yaml, "CSafeLoader", None)
    if parser is None:
        return
    count = depth = 0
    try:
        for event in yaml.parse(text, Loader=parser):
            if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
                continue
            if not isinstance(event, yaml.NodeEvent):
                continue
            line = event.start_mark.line + 1 if event.start_mark else 0
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH + 1:
                    raise SpecError([Problem(name, line, "", TOO_DEEP)])
            count += 1
            if count > MAX_NODES:
                message = f"the document has more than {MAX_NODES} nodes; the limit is {MAX_NODES}"
                raise SpecError([Problem(name, line, "", message)])
    except yaml.MarkedYAMLError as err:
        # libyaml may refuse deep flow nesting ("[[[[...") while scanning ahead, before it
        # emits the events counted above: the same limit, reported in the same words.
        if _parser_nesting_limit(err):
            mark = err.problem_mark or err.context_mark
            raise SpecError([Problem(name, mark.line + 1 if mark else 0, "", TOO_DEEP)]) from None
        return
    except yaml.YAMLError:
        return


def _parser_nesting_limit(err: yaml.MarkedYAMLError) -> bool:
    """The YAML library's own depth limit (libyaml in PyYAML >= 6.0.4: "exceeded maximum
    nesting depth"), which is far above MAX_DEPTH: any spec that reaches it is too deep."""
    return "nesting depth" in f"{err.context or ''} {err.problem or ''}"


@cache
def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return schema


@cache
def _fast_validator() -> Any:
    return jsonschema_rs.validator_for(_schema())


@cache
def _validator() -> jsonschema.Draft202012Validator:
    import jsonschema  # only on the error path: ~60 ms to import

    def pattern(validator: Any, regex: str, instance: Any, schema: dict[str, Any]) -> Any:
        if validator.is_type(instance, "string") and not re.search(_ecma_end(regex), instance):
            yield jsonschema.ValidationError(f"{instance!r} does not match {regex!r}")

    ecma = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": pattern})  # type: ignore[no-untyped-call]
    validator: jsonschema.Draft202012Validator = ecma(_schema())
    return validator


@cache
def _ecma_end(regex: str) -> str:
    """JSON Schema patterns are ECMA-262: `$` is the end of the text. Python's `$` also matches
    before a final newline, which let "shop\\n" pass as a name (and become a directory name
    with a newline in it). An unescaped `$` outside a class becomes `\\Z`."""
    out, escaped, in_class = [], False, False
    for char in regex:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        elif char == "$" and not in_class:
            char = r"\Z"
        out.append(char)
    return "".join(out)


def _fast_accepts(data: Any) -> bool:
    """jsonschema-rs's verdict: ~100x faster than jsonschema at 1,000 SLOs (0.2 s of a render).
    A pass ends the check; data it cannot take (a date, an int key) or rejects goes to
    jsonschema, which words the messages. tests/test_property.py checks the two agree."""
    try:
        return bool(_fast_validator().is_valid(data))
    except (ValueError, TypeError, OverflowError):
        return False


def schema_problems(spec: LoadedSpec, last_resort: bool = True) -> list[Problem]:
    """Every schema violation, translated into a message a user can act on. last_resort:
    nothing else is wrong with the document (see below)."""
    if _fast_accepts(spec.data):
        return []
    problems = []
    for error in _validator().iter_errors(spec.data):
        problems.extend(_translate(spec, error))
    if not problems and last_resort:
        # jsonschema-rs rejected what jsonschema accepts: a regex edge where Python and
        # ECMA-262 still differ (a key ending in a newline under patternProperties). The
        # schema means ECMA-262, so that verdict stands, with jsonschema-rs's message.
        # Only as a last resort: it also rejects what the YAML walk already reported in
        # its own words (a non-text key it cannot take, .inf which it reads as null).
        try:
            for fast_error in _fast_validator().iter_errors(spec.data):
                problems.append(spec.problem(tuple(fast_error.instance_path), fast_error.message))
        except (ValueError, TypeError, OverflowError):
            pass  # data it cannot take: jsonschema, which can, found nothing wrong
    return problems


def _leaf_errors(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    """For if/then and allOf wrappers, report the concrete failures underneath."""
    if error.context:
        leaves = []
        for sub in error.context:
            leaves.extend(_leaf_errors(sub))
        return leaves
    return [error]


def _translate(spec: LoadedSpec, error: jsonschema.ValidationError) -> list[Problem]:
    out = []
    for leaf in _leaf_errors(error):
        path = tuple(leaf.absolute_path)
        for message, extra in _messages(leaf):
            out.append(spec.problem((*path, *extra), message))
    return out


def _messages(error: jsonschema.ValidationError) -> list[tuple[str, tuple[Any, ...]]]:
    v, value = error.validator, error.instance
    schema: dict[str, Any] = error.schema if isinstance(error.schema, dict) else {}
    if v == "additionalProperties" and isinstance(value, dict):
        allowed = sorted(k for k in (schema.get("properties") or {}))
        patterns = schema.get("patternProperties") or {}
        extras = [k for k in value if k not in allowed and not any(re.search(p, str(k)) for p in patterns)]
        result = []
        for key in extras:
            if key in INLINE_SECRET_KEYS:
                hint = (
                    f"secrets are never written inline: put the value in a file under secrets/ "
                    f"and name it with {INLINE_SECRET_KEYS[key]}"
                )
                result.append((f"inline secret {key!r} is not allowed; {hint}", (key,)))
            else:
                where = f"; allowed keys: {', '.join(allowed)}" if allowed else ""
                result.append((f"unknown key {key!r}{where}", (key,)))
        return result
    if v == "required":
        missing = [k for k in schema.get("required", []) if isinstance(value, dict) and k not in value]
        return [(f"missing required key {k!r}", ()) for k in missing]
    if v == "exclusiveMaximum":
        return [(f"must be below {schema['exclusiveMaximum']:g}, got {value!r}", ())]
    if v == "exclusiveMinimum":
        return [(f"must be above {schema['exclusiveMinimum']:g}, got {value!r}", ())]
    if v == "maximum":
        return [(f"must be at most {schema['maximum']:g}, got {value!r}", ())]
    if v == "minimum":
        return [(f"must be at least {schema['minimum']:g}, got {value!r}", ())]
    if v == "pattern":
        hint = schema.get("description") or f"must match {schema['pattern']}"
        return [(f"{value!r} is not valid: {hint}", ())]
    if v == "enum":
        return [(f"{value!r} is not one of: {', '.join(map(str, schema['enum']))}", ())]
    if v == "type":
        expected = schema["type"]
        return [(f"must be {_article(expected)}, got {_kind(value)}", ())]
    if v in ("minItems", "maxItems", "maxProperties", "minProperties", "maxLength", "minLength"):
        limit = schema[v]
        what = {
            "minItems": f"needs at least {limit} item(s)",
            "maxItems": f"allows at most {limit} items",
            "minProperties": f"needs at least {limit} key(s)",
            "maxProperties": f"allows at most {limit} key(s)",
            "maxLength": f"is longer than {limit} characters",
            "minLength": f"needs at least {limit} character(s)",
        }[v]
        if v == "maxProperties" and "sli" in [str(p) for p in error.absolute_path][-1:]:
            what = "must name exactly one SLI kind (events, latency, availability or raw)"
        return [(what, ())]
    if v == "uniqueItems":
        return [("has duplicate items; list each once", ())]
    if v == "propertyNames":
        return [(f"{value!r}: key names must match {schema.get('pattern', '')}", ())]
    return [(error.message, ())]


def _article(kind: str | list[str]) -> str:
    kinds = kind if isinstance(kind, list) else [kind]
    words = {
        "object": "a mapping",
        "array": "a list",
        "string": "a string",
        "number": "a number",
        "integer": "a whole number",
        "boolean": "true or false",
    }
    return " or ".join(words.get(k, k) for k in kinds)


def _kind(value: object) -> str:
    if value is None:
        return "nothing (null)"
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "true/false",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__) + f" ({value!r:.40})"
