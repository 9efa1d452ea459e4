"""prometheus.yml: global settings, Alertmanager target, rule files, scrape jobs and probes."""

from __future__ import annotations

from typing import Any

from stackgen import alert_state_exporter
from stackgen import conventions as cv
from stackgen.durations import format_duration
from stackgen.model import Probe, ScrapeJob, Spec
from stackgen.render.common import header, yaml_document, yaml_list

# Components the stack scrapes about itself, when they run.
SELF_JOBS = ("prometheus", "alertmanager", "grafana", "loki", "node-exporter", "cadvisor", "alert-state-exporter")
OPTIONAL_JOBS = (
    "pushgateway",
    "blackbox-exporter",
    "postgres-exporter",
    "redis-exporter",
    "nginx-exporter",
)


def self_jobs(spec: Spec) -> list[str]:
    jobs = list(SELF_JOBS)
    jobs.append(spec.logs.agent)
    if spec.stack.target == "host":
        # The host profile runs what Debian packages: no cAdvisor, no Grafana scrape by default.
        jobs = [j for j in jobs if j in ("prometheus", "alertmanager", "node-exporter", "alert-state-exporter")]
    jobs += [j for j in OPTIONAL_JOBS if spec.runs(j)]
    return jobs


def external_labels(spec: Spec) -> dict[str, str]:
    """Labels Prometheus adds to what it sends out (alerts included): which stack it is."""
    return {cv.LABEL_STACK: spec.stack.name}


# The alert-state exporter exposes an alert's own job and instance as alert_job and
# alert_instance; these put them back in place of the exporter's target labels (or drop
# them when the alert has none), so each series carries its ALERTS series' labels exactly.
ALERT_STATE_RELABEL = [
    {
        "source_labels": ["__name__", f"alert_{label}"],
        "regex": f"stackgen_alert_(?:{'|'.join(alert_state_exporter.STATES)});(.*)",
        "target_label": label,
        "replacement": "$1",
    }
    for label in ("job", "instance")
] + [{"action": "labeldrop", "regex": "alert_job|alert_instance"}]


def credentials(spec: Spec, bearer_token_file: str | None, basic_auth: tuple[str, str] | None) -> dict[str, Any]:
    """The Authorization Prometheus sends (a scrape, a remote write), from secret files."""
    if bearer_token_file:
        path = cv.secret_path(spec.stack, bearer_token_file, "prometheus")
        return {"authorization": {"type": "Bearer", "credentials_file": path}}
    if basic_auth:
        username, password_file = basic_auth
        return {
            "basic_auth": {
                "username": username,
                "password_file": cv.secret_path(spec.stack, password_file, "prometheus"),
            }
        }
    return {}


def scrape_job(spec: Spec, job: ScrapeJob) -> dict[str, Any]:
    item: dict[str, Any] = {"job_name": job.name}
    if job.honor_labels:
        item["honor_labels"] = True
    if job.interval:
        item["scrape_interval"] = format_duration(job.interval)
    if job.timeout:
        item["scrape_timeout"] = format_duration(job.timeout)
    if job.metrics_path != "/metrics":
        item["metrics_path"] = job.metrics_path
    if job.scheme != "http":
        item["scheme"] = job.scheme
    # Credentials are files Prometheus re-reads at every scrape: rotate them without a reload.
    item.update(credentials(spec, job.bearer_token_file, job.basic_auth))
    if job.tls:
        tls: dict[str, Any] = {}
        for key in ("ca_file", "cert_file", "key_file"):
            name = getattr(job.tls, key)
            if name:
                tls[key] = cv.secret_path(spec.stack, name, "prometheus")
        if job.tls.server_name:
            tls["server_name"] = job.tls.server_name
        if job.tls.insecure_skip_verify:
            tls["insecure_skip_verify"] = True
        item["tls_config"] = tls
    static: dict[str, Any] = {"targets": list(job.targets)}
    if job.labels:
        static["labels"] = dict(job.labels)
    item["static_configs"] = [static]
    return item


def probe_job(spec: Spec, probe: Probe) -> dict[str, Any]:
    """The blackbox exporter's multi-target pattern: each target becomes ?target=..., the
    instance label keeps the probed URL, and the scrape goes to the exporter."""
    item: dict[str, Any] = {"job_name": probe.name, "metrics_path": "/probe", "params": {"module": [probe.module]}}
    if probe.interval:
        item["scrape_interval"] = format_duration(probe.interval)
    static: dict[str, Any] = {"targets": list(probe.targets)}
    if probe.labels:
        static["labels"] = dict(probe.labels)
    item["static_configs"] = [static]
    item["relabel_configs"] = [
        {"source_labels": ["__address__"], "target_label": "__param_target"},
        {"source_labels": ["__param_target"], "target_label": "instance"},
        {"target_label": "__address__", "replacement": cv.address(spec.stack, "blackbox-exporter")},
    ]
    return item


def render(spec: Spec) -> dict[str, str]:
    stack = spec.stack
    global_section = {
        "global": {
            "scrape_interval": format_duration(stack.scrape_interval),
            "evaluation_interval": format_duration(stack.evaluation_interval),
            "external_labels": external_labels(spec),
        }
    }
    alerting = {
        "alerting": {
            "alertmanagers": [
                {
                    "api_version": "v2",
                    "static_configs": [{"targets": [cv.address(stack, "alertmanager")]}],
                }
            ]
        }
    }
    storage = stack.long_term_storage
    in_ruler = bool(storage and storage.in_ruler)
    rule_files = {"rule_files": cv.rule_file_globs([] if in_ruler else [s.name for s in spec.services])}

    scrape_items: list[tuple[str | None, dict[str, Any]]] = []
    for job in spec.scrape_jobs:
        owners = [s.name for s in spec.services if job.name in s.jobs]
        note = f"Spec scrape job {job.name}" + (f" (service {', '.join(owners)})" if owners else "")
        scrape_items.append((note, scrape_job(spec, job)))
    for probe in spec.probes:
        owners = [s.name for s in spec.services if probe.name in s.jobs]
        note = f"Probe {probe.name}: blackbox {probe.module} of {', '.join(probe.targets)}" + (
            f" (service {', '.join(owners)})" if owners else ""
        )
        scrape_items.append((note, probe_job(spec, probe)))
    for component in self_jobs(spec):
        item: dict[str, Any] = {"job_name": component}
        note = f"Stack component: {component}"
        if component == "pushgateway":
            # Pushed series carry the pusher's job/instance: keep them, not the gateway's.
            item["honor_labels"] = True
            note += " (honor_labels: pushed job/instance labels are kept)"
        item["static_configs"] = [{"targets": [cv.address(stack, component)]}]
        if component == cv.ALERT_STATE_JOB:  # AlertStateUnknown reads this job's up
            note += (
                " (Alertmanager's silenced/inhibited state per alert; relabelled to the alert's own job and "
                "instance, so each series matches its ALERTS series)"
            )
            item["metric_relabel_configs"] = ALERT_STATE_RELABEL
        scrape_items.append((note, item))

    head = header(
        spec.source_file,
        f"Prometheus for stack {stack.name} ({stack.target} profile). Reload: "
        + (
            "POST /-/reload (lifecycle API on)"
            if stack.lifecycle_api
            else "send SIGHUP (docker compose kill -s HUP prometheus); the lifecycle API is off"
        ),
    )
    text = yaml_document(
        head,
        [
            (
                "Scrape and rule-evaluation cadence. The evaluation interval is also the SLO base window.",
                global_section,
            ),
            ("Alerts go to Alertmanager (API v2: Prometheus 3 dropped v1).", alerting),
            (
                (
                    f"Only the stack's own rules and alert packs: SLO and service rules run in the {storage.kind} "
                    "ruler (long_term_storage.evaluate: ruler; load them from mimir/rules/). Unit tests live in tests/."
                    if in_ruler and storage
                    else "SLO rules and plain alerts (a directory per service), stack rules and alert packs; "
                    "unit tests live in tests/."
                ),
                rule_files,
            ),
            *([remote_write_section(spec)] if storage else []),
        ],
    )
    text += "\n" + comment_block() + yaml_list("scrape_configs", scrape_items)
    return {"prometheus/prometheus.yml": text}


def remote_write_section(spec: Spec) -> tuple[str, dict[str, Any]]:
    """Every sample goes on to the long-term store, with the tenant header and credentials
    read from files (re-read on each request: rotate without a reload)."""
    storage = spec.stack.long_term_storage
    assert storage is not None
    item: dict[str, Any] = {"url": storage.remote_write_url, "name": storage.kind}
    if storage.tenant:
        item["headers"] = {storage.tenant_header: storage.tenant}
    item.update(credentials(spec, storage.bearer_token_file, storage.basic_auth))
    note = f"Long-term storage: every sample is also written to {storage.kind}" + (
        f" (tenant {storage.tenant})" if storage.tenant else ""
    )
    return note + "; Grafana reads it back from its query URL.", {"remote_write": [item]}


def comment_block() -> str:
    return "# Scrape jobs: first the spec's, then its probes, then the stack's own components.\n"
