"""Promtail config: Docker discovery, files and journal, JSON pipeline, PII redaction.

Promtail reached end of life on 2 March 2026; Alloy (alloy.py) renders the same pipeline.
"""

from __future__ import annotations

from typing import Any

from stackgen import conventions as cv
from stackgen.model import AGENT_LABELS, LogSource, Spec
from stackgen.render.common import header, yaml_document, yaml_list

PROMTAIL_CONFIG = "promtail/promtail.yml"
# Labels the agents set on streams (the model's list); dashboards and log alerts use only these.
STREAM_LABELS = AGENT_LABELS


def pipeline_fields(spec: Spec) -> dict[str, str]:
    fields = {
        "timestamp_field": "ts",
        "timestamp_format": "RFC3339Nano",
        "level_field": "level",
    }
    fields.update(dict(spec.logs.pipeline))
    return fields


# A level word among the first three tokens of a text line (and a leading RFC 3339 time as
# the timestamp): Rust tracing ("2026-01-29T10:30:00.1Z  INFO app: ..."), Python logging
# ("ERROR:root:..."), "[WARN] ...", Go's log. A line without one (e.g. "[INGEST] ...") gets
# no level label. RE2. Checked with Promtail 3.6.11 built from source (-stdin -dry-run).
TEXT_LEVEL = (
    r"^(?:(?P<ts>[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(?:Z|[+-][0-9]{2}:?[0-9]{2}))\s+)?"  # an RFC 3339 time first
    r"(?:\S+\s+){0,2}[\[(<]?(?P<level>(?i:trace|debug|info|notice|warn|warning|error|err|fatal|critical|crit"
    r"|panic|emerg|alert))(?:[\])>:]|\s|$)"
)
# Lower-case the level whatever the source wrote (ERROR, Error, error), so {level="debug"}
# and the error-level regexes match every spelling; no level, no label.
LOWER_LEVEL = "{{ if .Value }}{{ ToLower .Value }}{{ end }}"
# The keys loggers write the level under: zap, logrus, slog, log15 (lvl), GCP and OTel
# (severity), Python's json logger (levelname), .NET and Java (capitalised).
JSON_LEVEL_KEYS = "level || lvl || severity || levelname || Level || Severity"
# logfmt takes one key per extracted value: the alternatives land beside `level`, and the
# template takes the first that is set, lower-cased.
LOGFMT_LEVEL_KEYS = {"level": "level", "level_lvl": "lvl", "level_severity": "severity"}
LOGFMT_LEVEL = "{{ with or .level .level_lvl .level_severity }}{{ ToLower . }}{{ end }}"
FORMAT_NOTES = {
    "json": "JSON lines: level from the first of level, lvl, severity, levelname (any of them "
    "capitalised), timestamp from the line",
    "logfmt": "logfmt lines (key=value): level from level, lvl or severity, timestamp from its key",
    "text": "plain text: the level is a level word among the first tokens",
    "regex": "lines parsed by the source's regex: named groups level and ts",
}


def parse_stages(spec: Spec, source: LogSource) -> list[tuple[str, dict[str, Any]]]:
    """(stage kind, settings) that extract `level` and `ts` from a line of this source's
    format; kinds are Promtail's stage names (Alloy's are stage.<kind>)."""
    f = pipeline_fields(spec)
    stages: list[tuple[str, dict[str, Any]]] = []
    if source.cri:
        stages.append(("cri", {}))  # time, stream, flags, content: the rest runs on content
    own_level_field = f["level_field"] != "level"  # the spec named one: only that one
    lower = LOWER_LEVEL
    if source.format == "json":
        level = f["level_field"] if own_level_field else JSON_LEVEL_KEYS
        stages.append(("json", {"expressions": {"level": level, "ts": f["timestamp_field"]}}))
    elif source.format == "logfmt":
        mapping = {"level": f["level_field"]} if own_level_field else dict(LOGFMT_LEVEL_KEYS)
        stages.append(("logfmt", {"mapping": {**mapping, "ts": f["timestamp_field"]}}))
        lower = LOWER_LEVEL if own_level_field else LOGFMT_LEVEL
    elif source.format == "text":
        stages.append(("regex", {"expression": TEXT_LEVEL}))
    else:
        assert source.regex is not None
        stages.append(("regex", {"expression": source.regex}))
    stages.append(("template", {"source": "level", "template": lower}))
    return stages


def pipeline(spec: Spec, source: LogSource) -> list[dict[str, Any]]:
    f = pipeline_fields(spec)
    stages: list[dict[str, Any]] = [{kind: settings} for kind, settings in parse_stages(spec, source)]
    stages += [
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
        job["pipeline_stages"] = pipeline(spec, source)
        jobs.append((f"{note} Format: {FORMAT_NOTES[source.format]}" + (" (CRI-wrapped)." if source.cri else "."), job))
    sections: list[tuple[str | None, dict[str, Any]]] = [
        (
            "Promtail's own HTTP port (metrics, readiness).",
            {
                "server": {
                    "http_listen_address": "0.0.0.0" if docker else "127.0.0.1",
                    "http_listen_port": port,
                    "grpc_listen_address": "127.0.0.1",  # unused; 0 picks a free port
                    "grpc_listen_port": 0,
                }
            },
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
        "successor). Pipeline per source: [cri ->] parse (json, logfmt, text or regex) -> level "
        "lower-cased -> labels (level only) -> timestamp -> redaction.",
    )
    return {PROMTAIL_CONFIG: yaml_document(head, sections) + "\n" + yaml_list("scrape_configs", jobs)}
