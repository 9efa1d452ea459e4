"""`stackgen import sloth FILE...`: Sloth specs (prometheus/v1 and Kubernetes
PrometheusServiceLevel) -> stackgen services, written as commented YAML a person would keep.

What carries over: service, SLO names (made stackgen names, the original noted), objectives,
descriptions, events SLIs (error_query/total_query) and raw SLIs (error_ratio_query), with
Sloth's {{.window}} written {{window}}; Sloth's service labels (renamed sloth_<name> where
stackgen sets that label itself); a disabled page or ticket alert (the
other tiers are kept). Sloth's period is 30d, its windows and burn rates the workbook's,
which are stackgen's defaults, so the thresholds come out the same. What does not carry
over is said in a comment where it was: alert names (stackgen names burn-rate alerts
SLOBurnRate<window>), alert labels (per service here) and annotations, page/ticket labels (stackgen routes on
its own severities). A Sloth SLI plugin has no equivalent: the import stops with its
location.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stackgen.errors import Problem, SpecError
from stackgen.model.slos import RESERVED_LABELS

NAME = re.compile(r"^[a-z][a-z0-9-]{0,29}$")


def stackgen_name(text: str) -> str:
    """A name stackgen accepts (^[a-z][a-z0-9-]{0,29}$) from any Sloth name."""
    name = re.sub(r"[^a-z0-9-]+", "-", str(text).lower()).strip("-")
    name = re.sub(r"-{2,}", "-", name)
    if not name or not name[0].isalpha():
        name = f"s-{name}".rstrip("-")
    return name[:30].rstrip("-")


@dataclass
class Imported:
    """One service, as YAML lines with comments, and the names it uses."""

    name: str
    lines: list[str] = field(default_factory=list)


def _lines_of(text: str, file: str) -> dict[tuple[Any, ...], int]:
    """Spec path -> line, for located errors (the documents of a multi-document file by index)."""
    lines: dict[tuple[Any, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[Any, ...]) -> None:
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = (*path, getattr(key, "value", "?"))
                lines.setdefault(child, key.start_mark.line + 1)  # the key's line, as the loader does
                walk(value, child)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, i))

    try:
        for index, document in enumerate(yaml.compose_all(text, Loader=yaml.SafeLoader)):
            if document is not None:
                walk(document, (index,))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise SpecError([Problem(file, mark.line + 1 if mark else 0, "", f"YAML syntax error: {err}")]) from None
    return lines


def read_documents(path: Path) -> tuple[list[tuple[int, Any]], dict[tuple[Any, ...], int]]:
    """The non-empty YAML documents of a file with their index, and spec path -> line; a
    located SpecError when the file cannot be read or parsed."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError([Problem(file, 0, "", f"cannot read it: {err}")]) from None
    lines = _lines_of(text, file)
    return [(i, d) for i, d in enumerate(yaml.safe_load_all(text)) if d is not None], lines


def _where(lines: dict[tuple[Any, ...], int], path: tuple[Any, ...]) -> int:
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path, 1)


def _path_text(path: tuple[Any, ...]) -> str:
    out = ""
    for part in path[1:]:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _q(value: Any) -> str:
    """One YAML scalar, as the serialiser writes it (quoted where it must be)."""
    return (
        yaml.safe_dump(value, default_flow_style=True, width=10_000, allow_unicode=True).strip().removesuffix("\n...")
    )


def import_sloth(paths: list[Path]) -> list[Imported]:
    """Every service of every Sloth document in paths; SpecError (located) on what cannot be
    carried over."""
    problems: list[Problem] = []
    services: list[Imported] = []
    for path in paths:
        file = str(path)
        documents, lines = read_documents(path)
        for index, document in documents:
            where: tuple[Any, ...] = (index,)
            if not isinstance(document, dict):
                problems.append(Problem(file, _where(lines, where), "", "not a Sloth spec (a mapping)"))
                continue
            if document.get("kind") == "PrometheusServiceLevel":
                body, where = document.get("spec") or {}, (index, "spec")
                origin = f"{file} ({document.get('metadata', {}).get('name', 'PrometheusServiceLevel')})"
            elif document.get("version") == "prometheus/v1":
                body, origin = document, file
            else:
                problems.append(
                    Problem(
                        file,
                        _where(lines, where),
                        "",
                        'not a Sloth spec: expected version: "prometheus/v1" or kind: PrometheusServiceLevel',
                    )
                )
                continue
            service, found = _service(body, where, origin, functools.partial(_where, lines), file)
            problems += found
            if service:
                services.append(service)
    seen: dict[str, int] = {}
    for service in services:
        seen[service.name] = seen.get(service.name, 0) + 1
    clashes = [name for name, count in seen.items() if count > 1]
    if clashes:
        problems.append(Problem(str(paths[0]), 0, "", f"more than one Sloth spec is for service {clashes[0]!r}"))
    if problems:
        raise SpecError(problems)
    return services


def _service(
    body: dict[str, Any], where: tuple[Any, ...], origin: str, line: Any, file: str
) -> tuple[Imported | None, list[Problem]]:
    problems: list[Problem] = []

    def fail(path: tuple[Any, ...], message: str) -> None:
        problems.append(Problem(file, line(path), _path_text(path), message))

    if not body.get("service"):
        fail(where, "a Sloth spec names its service")
        return None, problems
    name = stackgen_name(body["service"])
    labels = {str(k): str(v) for k, v in (body.get("labels") or {}).items()}
    team = labels.get("team") or labels.get("owner")
    out = Imported(name)
    out.lines.append(f"  # Imported from Sloth: {origin}, service {body['service']!r}.")
    out.lines.append(f"  - name: {name}")
    if team:
        out.lines.append(
            f"    team: {stackgen_name(team)}  # from the Sloth label {'team' if 'team' in labels else 'owner'}"
        )
    else:
        out.lines.append("    team: unowned  # TODO: Sloth names no team (no team or owner label): set the owning team")
    carried = {(f"sloth_{k}" if k in RESERVED_LABELS else k): v for k, v in labels.items()}
    if carried:
        renamed = sorted(k for k in labels if k in RESERVED_LABELS)
        note = f"  # {', '.join(renamed)} renamed sloth_<name>: stackgen sets those itself" if renamed else ""
        out.lines.append(f"    labels:{note}")
        out.lines += [f"      {_q(k)}: {_q(v)}" for k, v in sorted(carried.items())]
    out.lines.append("    slos:")
    for i, slo in enumerate(body.get("slos") or []):
        problems += _slo(out, slo, (*where, "slos", i), line, file)
    if not body.get("slos"):
        fail((*where, "slos"), "the Sloth spec has no SLOs")
    return out, problems


def _slo(out: Imported, slo: dict[str, Any], where: tuple[Any, ...], line: Any, file: str) -> list[Problem]:
    problems: list[Problem] = []
    name = stackgen_name(slo.get("name", ""))
    out.lines.append(f"      - name: {name}" + (f"  # Sloth: {slo.get('name')!r}" if name != slo.get("name") else ""))
    out.lines.append(f"        objective: {_q(slo.get('objective'))}")
    out.lines.append("        period: 30d  # Sloth's period")
    if slo.get("description"):
        out.lines.append(f"        description: {_q(str(slo['description']))}")
    sli = slo.get("sli") or {}
    out.lines.append("        sli:")
    if "events" in sli:
        events = sli["events"]
        out.lines.append("          events:")
        out.lines += _field("            ", "bad", _window(events.get("error_query", "")))
        out.lines += _field("            ", "total", _window(events.get("total_query", "")))
    elif "raw" in sli:
        out.lines.append("          raw:  # a ratio per base window; long windows average it, as Sloth's 30d rule does")
        out.lines += _field("            ", "error_ratio", _window(sli["raw"].get("error_ratio_query", "")))
    else:
        kind = next(iter(sli), "none")
        what = f"plugin {sli.get('plugin', {}).get('id', '?')!r}" if kind == "plugin" else f"SLI kind {kind!r}"
        problems.append(
            Problem(
                file,
                line((*where, "sli", kind)),
                _path_text((*where, "sli", kind)),
                f"the Sloth {what} has no stackgen equivalent: write its query as events "
                "(error_query/total_query) or raw (error_ratio_query) first",
            )
        )
    alerting = slo.get("alerting") or {}
    notes = []
    if alerting.get("name"):
        notes.append(f"alert name {alerting['name']!r} (stackgen names them SLOBurnRate<window>)")
    if alerting.get("annotations"):
        notes.append("alert annotations (stackgen writes its own summary and description)")
    for kind in ("page_alert", "ticket_alert"):
        if (alerting.get(kind) or {}).get("labels"):
            notes.append(f"{kind} labels (stackgen routes on its own severity and tier labels)")
    alert_labels = {str(k): str(v) for k, v in (alerting.get("labels") or {}).items()}
    if alert_labels:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(alert_labels.items()))
        notes.append(
            f"alerting.labels {shown} (labels are per service here, and category, severity and tier are stackgen's own)"
        )
    disabled = [
        k.removesuffix("_alert") for k in ("page_alert", "ticket_alert") if (alerting.get(k) or {}).get("disable")
    ]
    if disabled:
        out.lines.append(f"        alerting:  # Sloth disabled its {' and '.join(disabled)} alerts")
        out.lines.append("          tiers:")
        tiers = [
            ("page", "1h", "5m", 2),
            ("page", "6h", "30m", 5),
            ("ticket", "1d", "2h", 10),
            ("ticket", "3d", "6h", 10),
        ]
        kept = [t for t in tiers if t[0] not in disabled]
        if not kept:
            out.lines.pop()
            out.lines.pop()
            notes.append("both alerts disabled: stackgen needs at least one tier, the defaults are kept")
        for severity, long, short, share in kept:
            tier = f"severity: {severity}, long_window: {long}, short_window: {short}, budget_percent: {share}"
            out.lines.append(f"            - {{{tier}}}")
    for note in notes:
        out.lines.append(f"        # Not carried over from Sloth: {note}.")
    return problems


def _field(indent: str, key: str, value: str) -> list[str]:
    """`key: value`, as a block scalar (|-) when value has several lines, so a query reads as
    it was written."""
    if "\n" not in value:
        return [f"{indent}{key}: {_q(value)}"]
    return [f"{indent}{key}: |-", *(f"{indent}  {line}".rstrip() for line in value.splitlines())]


def _window(query: str) -> str:
    return re.sub(r"\{\{\s*\.window\s*\}\}", "{{window}}", str(query)).strip()


SKELETON = """\
# yaml-language-server: $schema=./stackgen/spec/slos.schema.json
# Generated by `stackgen import {tool}` from {sources}.
# Check the TODOs, then `stackgen render`. The stack, receivers and routing below are a
# minimal start: point the receiver at your pager and chat.
version: stackgen/v1
stack: {{name: {stack}}}
scrape_jobs: []  # TODO: the jobs that expose your services' metrics
services:
{services}
receivers:
  - {{name: oncall, type: webhook, url: "http://127.0.0.1:9/replace-me"}}  # TODO
routing:
  default_receiver: oncall
  severities:
    critical: {{receivers: [oncall]}}
    warning: {{receivers: [oncall]}}
    info: {{receivers: [oncall]}}
"""


def new_spec(services: list[Imported], sources: list[Path], tool: str = "sloth") -> str:
    body = "\n".join(line for service in services for line in service.lines)
    return SKELETON.format(tool=tool, sources=", ".join(str(p) for p in sources), stack=services[0].name, services=body)


def merged(spec_text: str, services: list[Imported], spec_file: str) -> str:
    """spec_text with the imported services appended to its `services:` list, comments and
    all else kept as written."""
    lines = spec_text.splitlines()
    start = next((i for i, line in enumerate(lines) if re.match(r"^services:\s*(#.*)?$", line)), None)
    if start is None:
        raise SpecError([Problem(spec_file, 0, "services", "has no block `services:` list to add to")])
    end = next(
        (
            i
            for i in range(start + 1, len(lines))
            if re.match(r"^[A-Za-z_#]", lines[i]) and not lines[i].startswith("#")
        ),
        len(lines),
    )
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    block = [line for service in services for line in service.lines]
    return "\n".join([*lines[:end], "", *block, *lines[end:]]) + "\n"
