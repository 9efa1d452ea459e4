"""Human documents in output/: runbooks per SLO, the directory README, secrets README, .env.example."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from stackgen import conventions as cv
from stackgen import slo_math
from stackgen.durations import format_duration
from stackgen.model import SLO, Service, Spec
from stackgen.render.sli import bad_and_total
from stackgen.render.templating import md_code, render_template
from stackgen.slo_math import num

SECRET_MEANING = {
    "routing_key_file": "PagerDuty Events API v2 routing key",
    "api_url_file": "Slack webhook URL",
    "auth_password_file": "SMTP password",
    "api_key_file": "Opsgenie API key",
    "credentials_file": "bearer token for the webhook",
}


def sli_text(slo: SLO) -> str:
    sli = slo.sli
    if sli.kind == "latency":
        return f"share of requests slower than {sli.threshold}s ({md_code(f'{sli.histogram}{sli.selector}')})"
    if sli.kind == "availability":
        return f"share of failed {sli.metric} samples ({md_code(f'{sli.metric}{sli.selector}')})"
    if sli.kind == "raw":
        return "error ratio query (raw; long windows average it)"
    return "bad events over all events"


def tier_rows(spec: Spec, slo: SLO) -> list[dict[str, Any]]:
    rows = []
    for tier in slo.tiers:
        detection = slo_math.detection_seconds(
            tier.long_window, tier.burn_rate, slo.budget, Decimal(1), spec.stack.base_window
        )
        rows.append(
            {
                "alert": cv.burn_alert_name(tier),
                "severity": f"{tier.severity} ({tier.alert_severity})",
                "long": tier.long,
                "short": tier.short,
                "burn_rate": num(tier.burn_rate),
                "threshold_pct": num(tier.burn_rate * slo.budget * 100),
                "share_pct": num(tier.budget_share * 100),
                "detection": f"{int(detection)}s",
            }
        )
    return rows


def runbook(spec: Spec, slo: SLO) -> str:
    bad, total = bad_and_total(slo.sli, spec.stack.base_window)
    del bad, total
    return render_template(
        "runbooks/slo.md.j2",
        header=cv.HEADER.format(source=spec.source_file),
        slo=slo,
        period=format_duration(slo.period),
        budget=num(slo.budget),
        budget_pct=num(slo.budget * 100),
        sli_text=sli_text(slo),
        dashboard_url=cv.dashboard_url(spec.stack, slo),
        tiers=tier_rows(spec, slo),
        base=format_duration(spec.stack.base_window),
        budget_low_pct=num(slo.budget_low * 100),
        short_period_policy=(slo_math.SHORT_PERIOD_POLICY if slo.period < slo_math.KEEP_BUDGET_SHARE_FROM else ""),
        bad_rate=cv.bad_rate(spec.stack),
        total_rate=cv.total_rate(spec.stack),
    )


def env_example(spec: Spec) -> str:
    return (
        f"# {cv.HEADER.format(source=spec.source_file)}\n"
        "# Copy to .env next to docker-compose.yml and fill in. Never commit .env.\n"
        "\n# Grafana's admin password (required; there is no default password).\n"
        "GRAFANA_ADMIN_PASSWORD=\n"
        "# Grafana's admin user name.\n"
        "GRAFANA_ADMIN_USER=admin\n"
    )


def render_service(spec: Spec, service: Service) -> dict[str, str]:
    """The runbook of each SLO of the service."""
    return {cv.runbook_file(slo): runbook(spec, slo) for slo in service.slos}


def render(spec: Spec, other_files: list[str]) -> dict[str, str]:
    """The stack's documents; other_files: every other generated path, for the README's table."""
    files: dict[str, str] = {}
    secrets = sorted(
        {
            (value, r.name, SECRET_MEANING.get(key, key))
            for r in spec.receivers
            for key, value in r.settings
            if key in SECRET_MEANING
        }
    )
    files["secrets/README.md"] = render_template(
        "output/secrets.md.j2",
        header=cv.HEADER.format(source=spec.source_file),
        stack=spec.stack,
        secrets=secrets,
    )
    files["secrets/.gitignore"] = f"# {cv.HEADER.format(source=spec.source_file)}\n*\n!README.md\n!.gitignore\n"
    files[".env.example"] = env_example(spec)
    described = sorted(set(other_files) | set(files) | {"README.md"})
    files["README.md"] = render_template(
        "output/README.md.j2",
        header=cv.HEADER.format(source=spec.source_file),
        stack=spec.stack,
        source=spec.source_file,
        files=[(p, describe(p)) for p in described],
    )
    return files


def describe(path: str) -> str:
    table = [
        ("prometheus/prometheus.yml", "Prometheus: scrape jobs, rule files, Alertmanager target"),
        ("prometheus/rules/stack", "Watchdog, ServiceDown, self-monitoring and escalation alerts"),
        ("prometheus/rules/", "SLO recording rules and burn-rate alerts of one service"),
        ("prometheus/tests/", "promtool unit tests of the rules (`promtool test rules`)"),
        ("alertmanager/alertmanager.yml", "Alertmanager: receivers, routing, inhibition"),
        ("alertmanager/routing-tests", "routing test matrix for `amtool config routes test`"),
        ("loki/loki.yml", "Loki 3 single binary: storage, retention, ruler"),
        ("loki/rules/", "Loki ruler: LogQL alert rules"),
        ("promtail/", "Promtail log agent config"),
        ("alloy/", "Grafana Alloy log agent config (Promtail's successor)"),
        ("grafana/provisioning/datasources", "Grafana datasources with fixed uids"),
        ("grafana/provisioning/dashboards", "Grafana dashboard providers (folders)"),
        ("grafana/dashboards/", "dashboard JSON (built with grafanalib)"),
        ("runbooks/", "runbook of one SLO: what its alerts mean, the math, first steps"),
        ("docker-compose.yml", "the whole stack for `docker compose up`"),
        ("secrets/", "where the secret files go (never committed)"),
        (".env.example", "environment variables the compose file reads"),
        ("README.md", "this file"),
    ]
    return next((what for prefix, what in table if path.startswith(prefix)), "")
