"""Grafana Alloy config: the Promtail pipeline in Alloy's syntax (templates/alloy/)."""

from __future__ import annotations

from stackgen import conventions as cv
from stackgen.model import Spec
from stackgen.render.promtail import pipeline_fields
from stackgen.render.templating import render_template

ALLOY_CONFIG = "alloy/config.alloy"


def render(spec: Spec) -> dict[str, str]:
    text = render_template(
        "alloy/config.alloy.j2",
        header=cv.HEADER.format(source=spec.source_file),
        push_url=f"http://{cv.address(spec.stack, 'loki')}/loki/api/v1/push",
        fields=pipeline_fields(spec),
        redaction=spec.logs.redaction,
        sources=spec.logs.sources,
    )
    return {ALLOY_CONFIG: text}
