"""Loki 3 single-binary config and its ruler's LogQL alert rules."""

from __future__ import annotations

from typing import Any

from stackgen import conventions as cv
from stackgen import promql
from stackgen.durations import format_duration, parse_duration
from stackgen.model import LogAlert, Spec
from stackgen.render.common import header, yaml_document, yaml_list
from stackgen.render.rules import chunked, plain_alert_rule, template_safe

LOKI_CONFIG = "loki/loki.yml"
# auth_enabled: false makes Loki single-tenant with the tenant id "fake"; the ruler reads
# rule files from <rules_directory>/<tenant>/.
TENANT = "fake"
RULES_DIR = "loki/rules"
LOKI_RULES = f"{RULES_DIR}/{TENANT}/logs.rules.yml"

# Built-in log alerts, one per service: (alert name, LogQL pipeline after the stream
# selector, what it counts, default per-second threshold, severity, category). Regexes are
# RE2 in backtick raw strings, so no escaping games.
BUILTIN_LOG_ALERTS: dict[str, tuple[str, str, str, float, str, str]] = {
    "error_rate": ("LogErrorRateHigh", "", "error log lines", 1.0, "warning", "logs"),
    "auth_failures": (
        "AuthFailureSpike",
        "|~ `(?i)(authentication failed|invalid credentials|login failed|invalid password|unauthorized|status=401)`",
        "failed authentications",
        0.5,
        "warning",
        "security",
    ),
    "panics": (
        "ApplicationPanic",
        "|~ `(panic: |fatal error: |Traceback \\(most recent call last\\)|FATAL|uncaught exception)`",
        "panics or crashes",
        0.001,
        "critical",
        "logs",
    ),
    "db_errors": (
        "DatabaseConnectionErrors",
        "|~ `(?i)(connection refused|too many connections|could not connect to server|"
        "connection reset by peer|deadlock detected|database is locked|server closed the connection)`",
        "database connection errors",
        0.1,
        "warning",
        "logs",
    ),
}
# Levels (the `level` stream label, from JSON logs) that count as errors.
ERROR_LEVELS = "(?i)(error|err|fatal|critical|crit|panic|emerg|alert)"


def paths(spec: Spec) -> dict[str, str]:
    if spec.stack.target == "docker":
        return {"prefix": "/loki", "rules": "/etc/loki/rules"}
    # The host profile reads the rules where stackgen rendered them: relative to Loki's
    # working directory, which is output/ (the systemd unit's WorkingDirectory=), so log
    # alerts load right after `stackgen render` with no copy step.
    return {"prefix": f"{spec.stack.data_dir}/loki", "rules": RULES_DIR}


def storage_sections(spec: Spec) -> dict[str, Any]:
    logs = spec.logs
    p = paths(spec)
    common: dict[str, Any] = {
        "path_prefix": p["prefix"],
        # The ring advertises this address to the querier: the loopback gRPC listener's.
        "instance_addr": "127.0.0.1",
        "replication_factor": 1,
        "ring": {"kvstore": {"store": "inmemory"}},
    }
    settings = dict(logs.storage)
    if logs.storage_type == "filesystem":
        common["storage"] = {
            "filesystem": {
                "chunks_directory": f"{p['prefix']}/chunks",
                "rules_directory": p["rules"],
            }
        }
    elif logs.storage_type == "s3":
        s3: dict[str, Any] = {
            "bucketnames": settings["bucket"],
            "region": settings.get("region", "us-east-1"),
            "s3forcepathstyle": True,
        }
        if settings.get("endpoint"):
            s3["endpoint"] = settings["endpoint"]
        if settings.get("insecure"):
            s3["insecure"] = True
        # Credentials come from the environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) or an IAM role.
        common["storage"] = {"s3": s3}
    else:
        common["storage"] = {"gcs": {"bucket_name": settings["bucket"]}}
    return common


def limits(spec: Spec) -> dict[str, Any]:
    logs = spec.logs
    ingestion = dict(logs.ingestion)
    out: dict[str, Any] = {
        "retention_period": format_duration(logs.retention),
        "ingestion_rate_mb": ingestion.get("rate_mb", 8),
        "ingestion_burst_size_mb": ingestion.get("burst_mb", 16),
        "per_stream_rate_limit": f"{ingestion.get('per_stream_rate_mb', 3)}MB",
        "per_stream_rate_limit_burst": f"{ingestion.get('per_stream_burst_mb', 15)}MB",
        "max_label_names_per_series": ingestion.get("max_label_names_per_series", 15),
        "reject_old_samples": True,
        "reject_old_samples_max_age": "168h",
        "allow_structured_metadata": True,
    }
    if logs.retention_overrides:
        out["retention_stream"] = [
            {"selector": sel, "priority": prio, "period": format_duration(period)}
            for sel, period, prio in logs.retention_overrides
        ]
    return out


def config(spec: Spec) -> str:
    p = paths(spec)
    port = cv.port_of(spec.stack, "loki") if spec.stack.target == "host" else cv.COMPONENTS["loki"]
    sections: list[tuple[str | None, dict[str, Any]]] = [
        (
            "auth_enabled is stated, not defaulted: false = single tenant ('fake'). Loki has no users of its "
            "own; keep its port on 127.0.0.1 or behind an authenticating proxy.",
            {"auth_enabled": False},
        ),
        (
            "HTTP and gRPC listeners (gRPC on loopback: only Loki itself talks to it).",
            {
                "server": {
                    "http_listen_address": "0.0.0.0" if spec.stack.target == "docker" else "127.0.0.1",
                    "http_listen_port": port,
                    # gRPC only joins Loki's own components (one binary): loopback, on every target.
                    "grpc_listen_address": "127.0.0.1",
                    "grpc_listen_port": 9096,
                    "log_level": "info",
                }
            },
        ),
        (
            "Single binary: one replica, in-memory ring, storage shared by every component.",
            {"common": storage_sections(spec)},
        ),
        (
            "TSDB index, schema v13, 24h index period (retention needs 24h).",
            {
                "schema_config": {
                    "configs": [
                        {
                            "from": "2024-04-01",
                            "store": "tsdb",
                            "object_store": spec.logs.storage_type,
                            "schema": "v13",
                            "index": {"prefix": "index_", "period": "24h"},
                        }
                    ]
                }
            },
        ),
        (
            "Compactor: applies retention and deletes; deletes are tracked in the same object store.",
            {
                "compactor": {
                    "working_directory": f"{p['prefix']}/compactor",
                    "compaction_interval": "10m",
                    "retention_enabled": True,
                    "retention_delete_delay": "2h",
                    "retention_delete_worker_count": 150,
                    "delete_request_store": spec.logs.storage_type,
                }
            },
        ),
        (
            f"Retention {format_duration(spec.logs.retention)} by default, per-stream overrides, ingestion limits.",
            {"limits_config": limits(spec)},
        ),
        (
            "Ruler: LogQL alert rules from rules/fake/, alerts to Alertmanager like metric alerts; "
            "each alert links to Grafana Explore on the Loki datasource."
            + (
                " Run Loki with output/ as its working directory: the rules path is relative."
                if spec.stack.target == "host"
                else ""
            ),
            {
                "ruler": {
                    "alertmanager_url": f"http://{cv.address(spec.stack, 'alertmanager')}",
                    "external_url": spec.stack.grafana_url,
                    "datasource_uid": cv.DS_LOKI,
                    "enable_alertmanager_v2": True,
                    "enable_api": True,
                    "storage": {"type": "local", "local": {"directory": p["rules"]}},
                    "rule_path": f"{p['prefix']}/rules-temp",
                    "ring": {"kvstore": {"store": "inmemory"}},
                }
            },
        ),
        ("No usage reporting to Grafana Labs.", {"analytics": {"reporting_enabled": False}}),
    ]
    return yaml_document(header(spec.source_file, f"Loki 3 (single binary) for stack {spec.stack.name}."), sections)


def log_alerts(spec: Spec) -> list[tuple[LogAlert, str | None]]:
    """(alert, team) pairs: the built-in alerts per service, then the spec's own."""
    alerts: list[tuple[LogAlert, str | None]] = []
    for key, settings_pairs in spec.logs.builtin_alerts:
        settings = dict(settings_pairs)
        name, pipeline, what, threshold, severity, category = BUILTIN_LOG_ALERTS[key]
        per_second = settings.get("per_second", threshold)
        for service in spec.services:
            matchers = [promql.equals("service", service.name)]
            if key == "error_rate":
                matchers.append(f'level=~"{ERROR_LEVELS}"')
            selector = "{" + ", ".join(matchers) + "}"
            expr = f"sum(rate({selector} {pipeline} [5m])) > {per_second}".replace("  ", " ")
            summary = f'{service.name}: {what} above {per_second}/s ({{{{ $value | printf "%.2f" }}}}/s)'
            alerts.append(
                (
                    LogAlert(
                        name,
                        expr,
                        _seconds(settings.get("for"), 300),
                        settings.get("severity", severity),
                        category,
                        service.name,
                        summary,
                    ),
                    service.team,
                )
            )
    team_of = {s.name: s.team for s in spec.services}
    for custom in spec.logs.custom_alerts:
        summary = template_safe(custom.summary)
        alerts.append(
            (
                LogAlert(
                    custom.name, custom.expr, custom.for_, custom.severity, custom.category, custom.service, summary
                ),
                team_of.get(custom.service or ""),
            )
        )
    return alerts


def _seconds(value: str | None, default: int) -> int:
    return parse_duration(value) if value else default


def rules(spec: Spec) -> str:
    groups: dict[str, list[dict[str, Any]]] = {}
    for alert, team in log_alerts(spec):
        labels = {"severity": alert.severity, "category": alert.category}
        if alert.service:
            labels["service"] = alert.service
        if team:
            labels["team"] = team
        rule: dict[str, Any] = {"alert": alert.name, "expr": alert.expr}
        if alert.for_:
            rule["for"] = format_duration(alert.for_)
        rule["labels"] = labels
        rule["annotations"] = {"summary": alert.summary}
        groups.setdefault(alert.service or "custom", []).append(rule)
    items: list[tuple[str | None, dict[str, Any]]] = [
        (
            f"Log alerts of service {name}." if name != "custom" else "Log alerts from the spec (logs.alerts.custom).",
            {"name": f"logs:{name}", "rules": rules_},
        )
        for name, rules_ in groups.items()
    ]
    plain: dict[str, list[dict[str, Any]]] = {}
    for logql_alert in spec.loki_alerts():
        plain.setdefault(logql_alert.service or "stack", []).append(plain_alert_rule(spec, logql_alert))
    for owner, rules_ in plain.items():
        for number, chunk in enumerate(chunked(rules_), start=1):
            note = f"Plain LogQL alerts (alerts: with logql) of {owner if owner != 'stack' else 'no service'}."
            items.append((note, {"name": f"alerts:{owner}:{number}", "rules": chunk}))
    escalations = escalation_rules(spec, [r for _, group in items for r in group["rules"]])
    for number, chunk in enumerate(chunked(escalations), start=1):
        note = (
            "Escalation of log alerts: Prometheus' escalation reads its own ALERTS, which never holds "
            "these, so each level is the same LogQL with `for:` = the alert's own plus the level's delay "
            "(the alert has then been firing that long); routing sends it on like any escalation."
        )
        items.append((note, {"name": f"escalation:logs:{number}", "rules": chunk}))
    head = header(
        spec.source_file,
        "Loki ruler rules (LogQL). Same severity/category/team labels as metric "
        "alerts, so Alertmanager routes them alike. Loki reads them from "
        f"<rules_directory>/{TENANT}/ (auth_enabled: false means tenant '{TENANT}').",
    )
    return head + yaml_list("groups", items)


def escalation_rules(spec: Spec, alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per alert of an escalating severity, one rule per escalation level: the same condition,
    held for the alert's `for` plus the level's delay."""
    out = []
    for rule in alerts:
        if rule["labels"].get("severity") not in spec.routing.escalation_severities:
            continue
        own = parse_duration(rule["for"]) if "for" in rule else 0
        for level in spec.routing.escalation:
            after = format_duration(level.after)
            subject = rule["alert"] + (f" for {rule['labels']['service']}" if "service" in rule["labels"] else "")
            out.append(
                {
                    "alert": f"EscalationLevel{level.level}",
                    "expr": rule["expr"],
                    "for": format_duration(own + level.after),
                    "labels": {
                        **rule["labels"],
                        "escalation_level": str(level.level),
                        "escalated_alertname": rule["alert"],
                    },
                    "annotations": {
                        "summary": f"Escalation to level {level.level}: {rule['alert']} has been firing for {after}",
                        "description": f"{subject} (a log alert) is still firing after {after}; "
                        f"level {level.level} is notified.",
                    },
                }
            )
    return out


def render(spec: Spec) -> dict[str, str]:
    return {LOKI_CONFIG: config(spec), LOKI_RULES: rules(spec)}
