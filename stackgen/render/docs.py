"""Human documents in output/: runbooks per SLO, the directory README, secrets README, .env.example."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from stackgen import alert_templates, slo_math
from stackgen import conventions as cv
from stackgen.durations import format_duration
from stackgen.model import SLO, Alert, SecretUse, Service, Spec
from stackgen.render.sli import bad_and_total
from stackgen.render.templating import md_code, md_text, render_template
from stackgen.slo_math import num

SECRET_MEANING = {
    "routing_key_file": "PagerDuty Events API v2 routing key",
    "api_url_file": "Slack webhook URL",
    "auth_password_file": "SMTP password",
    "api_key_file": "Opsgenie API key",
    "credentials_file": "bearer token for the webhook",
}
SCRAPE_SECRET_MEANING = {
    "bearer_token_file": "bearer token Prometheus sends when scraping",
    "ca_file": "CA certificate (PEM) Prometheus trusts for the target",
    "cert_file": "client certificate (PEM) Prometheus presents",
    "key_file": "client key (PEM) for that certificate",
}
EXPORTER_SECRET_MEANING = {
    "postgres-exporter": "the database user's password (plain text)",
    "redis-exporter": 'a JSON map from the Redis address to its password: {"redis://redis:6379": "..."}',
}


def sli_text(slo: SLO) -> str:
    sli = slo.sli
    if sli.kind == "latency":
        what = f"share of requests slower than {sli.threshold}s ({md_code(f'{sli.histogram}{sli.selector}')})"
        if not sli.threshold_checked:
            what += (
                "; the spec lists no `buckets`, so nothing checked that the threshold is one of the"
                " histogram's `le` boundaries: `stackgen check --prometheus URL` does"
            )
        return what
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
                "detection": f"{int(detection)}s"
                + (
                    " + up to 1h (hourly rollups)"
                    if tier.long_window in slo.rollup_windows(spec.stack.base_window)
                    and tier.long_window != slo.period  # the period is exact to the minute
                    else ""
                ),
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
        rollup_windows=", ".join(format_duration(w) for w in sorted(slo.rollup_windows(spec.stack.base_window))),
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


def alert_runbook(spec: Spec, alert: Alert) -> str:
    tests = len(alert.tests)
    return render_template(
        "runbooks/alert.md.j2",
        header=cv.HEADER.format(source=spec.source_file),
        alert=alert,
        summary=alert_templates.placeholders(alert.summary),
        description=alert_templates.placeholders(alert.description),
        impact=f"{alert.impact} (impact={spec.routing.impact(alert.impact)})" if alert.impact else "not notified",
        for_=format_duration(alert.for_) if alert.for_ else "the first evaluation that finds it",
        engine="Prometheus (PromQL)" if alert.engine == "prometheus" else "the Loki ruler (LogQL)",
        language="promql" if alert.engine == "prometheus" else "logql",
        source=f"alert pack `{alert.pack}`" if alert.pack else f"`alerts:` in {md_text(spec.source_file)}",
        tests=tests,
        test_file=cv.plain_test_file(cv.alert_file_stem(alert)).removeprefix("prometheus/"),
    )


def with_dashboard(files: dict[str, str], path: str, title: str, markdown: str, tags: list[str]) -> None:
    """The runbook at path, and the same Markdown as a Grafana dashboard (folder Runbooks)."""
    from stackgen.render.grafana import runbook_dashboard

    files[path] = markdown
    files[cv.runbook_dashboard_file(path)] = runbook_dashboard(path, title, markdown, tags)


def render_service(spec: Spec, service: Service) -> dict[str, str]:
    """The runbook of each SLO and plain alert of the service, each also as a dashboard."""
    files: dict[str, str] = {}
    for slo in service.slos:
        with_dashboard(
            files, cv.runbook_file(slo), f"Runbook: {slo.service} / {slo.name}", runbook(spec, slo), [service.team]
        )
    for alert in spec.alerts:
        if alert.service == service.name:
            with_dashboard(
                files,
                cv.alert_runbook_file(alert),
                f"Runbook: {alert.name} ({service.name})",
                alert_runbook(spec, alert),
                [service.team],
            )
    return files


def secret_meanings(spec: Spec) -> list[tuple[SecretUse, str]]:
    """Every secret file the stack reads, with what it holds."""
    out = []
    for use in spec.secret_uses():
        setting = use.purpose.rsplit(".", 1)[-1]
        if use.component == "alertmanager":
            what = SECRET_MEANING.get(setting, setting)
        elif use.component == "prometheus":
            what = SCRAPE_SECRET_MEANING.get(setting, f"basic-auth password ({use.purpose})")
        else:
            what = EXPORTER_SECRET_MEANING.get(use.component, use.purpose)
        out.append((use, what))
    return out


def secret_rows(spec: Spec) -> list[tuple[str, str, str]]:
    """(file, who reads it, what it holds) for every secret file the stack reads."""
    return sorted({(use.file, f"`{use.component}`: {md_text(use.user)}", what) for use, what in secret_meanings(spec)})


def render_stack(spec: Spec) -> dict[str, str]:
    """Runbooks (and their dashboards) of the plain alerts of no service."""
    files: dict[str, str] = {}
    for alert in spec.alerts:
        if not alert.service:
            with_dashboard(
                files, cv.alert_runbook_file(alert), f"Runbook: {alert.name}", alert_runbook(spec, alert), ["stack"]
            )
    return files


def render(spec: Spec, other_files: list[str]) -> dict[str, str]:
    """The stack's documents; other_files: every other generated path, for the README's table."""
    files: dict[str, str] = {}
    files["secrets/README.md"] = render_template(
        "output/secrets.md.j2",
        header=cv.HEADER.format(source=spec.source_file),
        stack=spec.stack,
        secrets=secret_rows(spec),
        k8s_secrets=[
            (cv.k8s_secret_name(spec.stack, use.component), use.file, f"`{use.component}`: {md_text(use.user)}", what)
            for use, what in secret_meanings(spec)
        ],
    )
    files["secrets/.gitignore"] = f"# {cv.HEADER.format(source=spec.source_file)}\n*\n!README.md\n!.gitignore\n"
    if spec.stack.target != "kubernetes":
        files[".env.example"] = env_example(spec)
    described = sorted(set(other_files) | set(files) | {"README.md"})
    files["README.md"] = render_template(
        "output/README.md.j2",
        header=cv.HEADER.format(source=spec.source_file),
        stack=spec.stack,
        source=spec.source_file,
        files=[(p, describe(p)) for p in described],
        ports={component: cv.port_of(spec.stack, component) for component in cv.COMPONENTS},
    )
    return files


def describe(path: str) -> str:
    table = [
        ("prometheus/prometheus.yml", "Prometheus: scrape jobs, rule files, Alertmanager target"),
        ("prometheus/rules/stack", "Watchdog, ServiceDown, self-monitoring and escalation alerts"),
        ("prometheus/rules/_pack-", "an alert pack's rules (tested here) for an exporter the stack runs"),
        ("prometheus/rules/_alerts", "plain alerts of no service"),
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
        ("grafana/dashboards/Runbooks/", "a runbook as a Grafana dashboard: where alerts link by default"),
        ("grafana/dashboards/", "dashboard JSON (built with grafanalib)"),
        ("runbooks/_stack/alerts/", "runbook of a plain alert of no service"),
        ("runbooks/", "runbook of one SLO or plain alert: what it means, first steps"),
        ("blackbox/", "blackbox_exporter probe modules"),
        (
            "alert-state-exporter/",
            "exporter of Alertmanager's silenced/inhibited state per alert (Python, stdlib only)",
        ),
        ("docker-compose.yml", "the whole stack for `docker compose up`"),
        ("kubernetes/prometheusrules/", "PrometheusRule objects: the groups of prometheus/rules/ unchanged"),
        ("kubernetes/scraping", "ScrapeConfig and Probe objects for the spec's scrape jobs and probes"),
        (
            "kubernetes/alertmanager-config",
            "Secret: alertmanager/alertmanager.yml verbatim, the Alertmanager's configSecret",
        ),
        ("kubernetes/grafana", "ConfigMaps for the Grafana sidecar: datasources and every dashboard"),
        ("kubernetes/loki-rules", "ConfigMap for the Loki chart's rules sidecar: LogQL alerts"),
        ("kubernetes/alloy-config", "ConfigMap: the Alloy DaemonSet's config (pod logs, CRI, redaction)"),
        ("kubernetes/namespace", "the stack's namespace"),
        ("kubernetes/alert-state-exporter", "ConfigMap: the alert-state exporter's code, run beside Alertmanager"),
        ("helm/", "values for the community Helm chart named in the file name"),
        ("mimir/rules/", "ruler namespace file of one service, or of all services packed (mimirtool rules load)"),
        ("secrets/", "where the secret files go (never committed)"),
        (".env.example", "environment variables the compose file reads"),
        ("README.md", "this file"),
    ]
    # The most specific prefix first: the first that matches wins.
    return next((what for prefix, what in table if path.startswith(prefix)), "")
