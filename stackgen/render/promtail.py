"""Promtail config: Docker discovery, files and journal, JSON pipeline, PII redaction.

Promtail reached end of life on 2 March 2026; Alloy (alloy.py) renders the same pipeline.
"""

from __future__ import annotations

from typing import Any

from stackgen import conventions as cv
from stackgen.model import Spec
from stackgen.render.common import header, yaml_document, yaml_list

PROMTAIL_CONFIG = "promtail/promtail.yml"
# Labels the agents set on every stream; dashboards and log alerts may only use these.
STREAM_LABELS = (
    "service",
    "container",
    "compose_project",
    "level",
    "job",
    "unit",
    "host",
    "source",
)


def pipeline_fields(spec: Spec) -> dict[str, str]:
    fields = {
        "timestamp_field": "ts",
        "timestamp_format": "RFC3339Nano",
        "level_field": "level",
        "service_field": "service",
    }
    fields.update(dict(spec.logs.pipeline))
    return fields


def pipeline(spec: Spec) -> list[dict[str, Any]]:
    f = pipeline_fields(spec)
    stages: list[dict[str, Any]] = [
        # Parse JSON lines; non-JSON lines pass through unchanged.
        {
            "json": {
                "expressions": {
                    "level": f["level_field"],
                    "ts": f["timestamp_field"],
                    "json_service": f["service_field"],
                }
            }
        },
        # Only low-cardinality fields become labels; user ids, paths, trace ids stay in the line.
        {"labels": {"level": ""}},
        {
            "timestamp": {
                "source": "ts",
                "format": f["timestamp_format"],
                "action_on_failure": "skip",
            }
        },
    ]
    for pattern in spec.logs.redaction:
        stages.append({"replace": {"expression": pattern.regex, "replace": pattern.replace}})
    return stages


def render(spec: Spec) -> dict[str, str]:
    stack = spec.stack
    docker = stack.target == "docker"
    positions = "/var/lib/promtail/positions.yaml" if docker else f"{stack.data_dir}/promtail/positions.yaml"
    port = cv.COMPONENTS["promtail"] if docker else cv.port_of(stack, "promtail")
    jobs: list[tuple[str | None, dict[str, Any]]] = []
    for source in spec.logs.sources:
        job: dict[str, Any] = {"job_name": source.name}
        if source.type == "docker":
            job["docker_sd_configs"] = [{"host": "unix:///var/run/docker.sock", "refresh_interval": "5s"}]
            job["relabel_configs"] = [
                {
                    "source_labels": ["__meta_docker_container_name"],
                    "regex": "/(.*)",
                    "target_label": "container",
                },
                {
                    "source_labels": ["__meta_docker_container_label_com_docker_compose_service"],
                    "target_label": "service",
                },
                {
                    "source_labels": ["__meta_docker_container_label_com_docker_compose_project"],
                    "target_label": "compose_project",
                },
            ]
            note = "Containers found through the Docker socket, labelled by compose service."
        elif source.type == "file":
            labels = {"job": source.name, "source": "file", **dict(source.labels)}
            if source.service:
                labels["service"] = source.service
            job["static_configs"] = [
                {"targets": ["localhost"], "labels": {**labels, "__path__": path}} for path in source.paths
            ]
            note = f"Files: {', '.join(source.paths)}."
        else:
            job["journal"] = {
                "max_age": "12h",
                "labels": {"job": source.name, "source": "journal", **dict(source.labels)},
            }
            job["relabel_configs"] = [{"source_labels": ["__journal__systemd_unit"], "target_label": "unit"}]
            if source.service:
                job["journal"]["labels"]["service"] = source.service
            note = "The systemd journal."
        job["pipeline_stages"] = pipeline(spec)
        jobs.append((note, job))
    sections: list[tuple[str | None, dict[str, Any]]] = [
        (
            "Promtail's own HTTP port (metrics, readiness).",
            {"server": {"http_listen_port": port, "grpc_listen_port": 0}},
        ),
        ("Read offsets survive restarts here.", {"positions": {"filename": positions}}),
        (
            "Push to Loki.",
            {"clients": [{"url": f"http://{cv.address(stack, 'loki')}/loki/api/v1/push"}]},
        ),
    ]
    head = header(
        spec.source_file,
        "Promtail (end of life since 2 March 2026; see alloy/config.alloy for its "
        "successor). Pipeline: json -> labels (level only) -> timestamp -> redaction.",
    )
    return {PROMTAIL_CONFIG: yaml_document(head, sections) + "\n" + yaml_list("scrape_configs", jobs)}
