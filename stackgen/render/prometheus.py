"""prometheus.yml: global settings, Alertmanager target, rule files, scrape jobs."""

from __future__ import annotations

from typing import Any

from stackgen import conventions as cv
from stackgen.durations import format_duration
from stackgen.model import Spec
from stackgen.render.common import header, yaml_document, yaml_list

# Components the stack scrapes about itself, when they run.
SELF_JOBS = ("prometheus", "alertmanager", "grafana", "loki", "node-exporter", "cadvisor")
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
        jobs = [j for j in jobs if j in ("prometheus", "alertmanager", "node-exporter")]
    jobs += [j for j in OPTIONAL_JOBS if j in spec.stack.optional_services]
    return jobs


def render(spec: Spec) -> dict[str, str]:
    stack = spec.stack
    global_section = {
        "global": {
            "scrape_interval": format_duration(stack.scrape_interval),
            "evaluation_interval": format_duration(stack.evaluation_interval),
            "external_labels": {"stack": stack.name},
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
    rule_files = {"rule_files": cv.rule_file_globs([s.name for s in spec.services])}

    scrape_items: list[tuple[str | None, dict[str, Any]]] = []
    for job in spec.scrape_jobs:
        item: dict[str, Any] = {"job_name": job.name}
        if job.interval:
            item["scrape_interval"] = format_duration(job.interval)
        if job.timeout:
            item["scrape_timeout"] = format_duration(job.timeout)
        if job.metrics_path != "/metrics":
            item["metrics_path"] = job.metrics_path
        if job.scheme != "http":
            item["scheme"] = job.scheme
        static: dict[str, Any] = {"targets": list(job.targets)}
        if job.labels:
            static["labels"] = dict(job.labels)
        item["static_configs"] = [static]
        owners = [s.name for s in spec.services if job.name in s.jobs]
        note = f"Spec scrape job {job.name}" + (f" (service {', '.join(owners)})" if owners else "")
        scrape_items.append((note, item))
    for component in self_jobs(spec):
        item = {
            "job_name": component,
            "static_configs": [{"targets": [cv.address(stack, component)]}],
        }
        scrape_items.append((f"Stack component: {component}", item))

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
                "SLO rules (one file per service) and stack rules; unit tests live in tests/.",
                rule_files,
            ),
        ],
    )
    text += "\n" + comment_block() + yaml_list("scrape_configs", scrape_items)
    return {"prometheus/prometheus.yml": text}


def comment_block() -> str:
    return "# Scrape jobs: first the spec's, then the stack's own components.\n"
