"""Grafana Alloy config: the Promtail pipeline in Alloy's syntax (templates/alloy/)."""

from __future__ import annotations

import dataclasses
from typing import Any

from stackgen import conventions as cv
from stackgen import promql
from stackgen.model import LogSource, Spec
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


def source_entry(spec: Spec, source: LogSource) -> dict[str, Any]:
    """What the templates need of one log source: its names, labels and parse stages."""
    return {
        "name": source.name,
        "id": "src_" + source.name.replace("-", "_"),  # never the shared "redact"
        "type": source.type,
        "paths": source.paths,
        "service": source.service,
        "labels": source.labels,
        "note": FORMAT_NOTES[source.format] + (", CRI-wrapped" if source.cri else ""),
        "stages": [{"kind": kind, "lines": stage_lines(settings)} for kind, settings in parse_stages(spec, source)],
    }


def render(spec: Spec) -> dict[str, str]:
    if spec.stack.target == "kubernetes":
        return {}  # helm_values renders the DaemonSet's config
    sources = [source_entry(spec, source) for source in spec.logs.sources]
    return {ALLOY_CONFIG: config_text(spec, "alloy/config.alloy.j2", sources)}


def config_text(spec: Spec, template: str, sources: list[dict[str, Any]]) -> str:
    """An Alloy config from its template: the sources' pipelines, one redaction, one Loki."""
    return render_template(
        template,
        header=cv.HEADER.format(source=spec.source_file),
        push_url=f"http://{cv.address(spec.stack, 'loki')}/loki/api/v1/push",
        fields=pipeline_fields(spec),
        redaction=spec.logs.redaction,
        sources=sources,
    )


def kubernetes_config(spec: Spec) -> str:
    """config.alloy for the kubernetes target: pod logs from /var/log/pods, CRI-parsed; the
    spec's sources that name a service keep their format for that service's pods, and every
    other pod gets the JSON pipeline."""
    own = [s for s in spec.logs.sources if s.service]
    claimed = sorted({s.service for s in own if s.service})
    entries = []
    for source in own:
        entries.append(
            {
                **source_entry(spec, dataclasses.replace(source, cri=True)),
                "selects": f"pods of service {source.service}, {FORMAT_NOTES[source.format]}",
                "service_regex": promql.quote_meta(source.service or ""),
                "action": "keep",
            }
        )
    # "_" keeps it apart from the spec's source names (kebab-case).
    rest = LogSource("other_pods", "kubernetes", (), None, (), format="json", cri=True)
    entries.append(
        {
            **source_entry(spec, rest),
            "selects": "every other pod, " + FORMAT_NOTES["json"],
            "service_regex": "|".join(promql.quote_meta(s) for s in claimed) if claimed else ".*",
            "action": "drop" if claimed else "keep",
        }
    )
    return config_text(spec, "alloy/config.kubernetes.alloy.j2", entries)
