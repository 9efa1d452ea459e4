"""Grafana Alloy config: the Promtail pipeline in Alloy's syntax (templates/alloy/)."""

from __future__ import annotations

from typing import Any

from stackgen import conventions as cv
from stackgen.model import Spec
from stackgen.render.promtail import FORMAT_NOTES, parse_stages, pipeline_fields
from stackgen.render.templating import alloy_string, render_template

ALLOY_CONFIG = "alloy/config.alloy"


def stage_lines(settings: dict[str, Any]) -> list[str]:
    """A stage's attributes in Alloy syntax: strings quoted, maps as { key = "value", }."""
    lines = []
    for key, value in settings.items():
        if isinstance(value, dict):
            lines.append(f"{key} = {{")
            lines += [f"  {k} = {alloy_string(v)}," for k, v in value.items()]
            lines.append("}")
        else:
            lines.append(f"{key} = {alloy_string(value)}")
    return lines


def render(spec: Spec) -> dict[str, str]:
    sources = []
    for source in spec.logs.sources:
        sources.append(
            {
                "name": source.name,
                "id": "src_" + source.name.replace("-", "_"),  # never the shared "redact"
                "type": source.type,
                "paths": source.paths,
                "service": source.service,
                "labels": source.labels,
                "note": FORMAT_NOTES[source.format] + (", CRI-wrapped" if source.cri else ""),
                "stages": [
                    {"kind": kind, "lines": stage_lines(settings)} for kind, settings in parse_stages(spec, source)
                ],
            }
        )
    text = render_template(
        "alloy/config.alloy.j2",
        header=cv.HEADER.format(source=spec.source_file),
        push_url=f"http://{cv.address(spec.stack, 'loki')}/loki/api/v1/push",
        fields=pipeline_fields(spec),
        redaction=spec.logs.redaction,
        sources=sources,
    )
    return {ALLOY_CONFIG: text}
