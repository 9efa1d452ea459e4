"""Grafana provisioning (datasources with fixed uids, one dashboard folder per team) and the
dashboards, built with grafanalib: SLO overview (home), one per service, logs, stack health."""

from __future__ import annotations

from typing import Any

from grafanalib import core as g

from stackgen import conventions as cv
from stackgen import promql
from stackgen.durations import format_duration
from stackgen.model import SLO, Service, Spec
from stackgen.render.common import header, json_text, yaml_document

DASHBOARDS_DIR = "grafana/dashboards"
OVERVIEW_UID = "stackgen-slo-overview"
LOGS_UID = "stackgen-logs"
HEALTH_UID = "stackgen-stack-health"
PROM = {"type": "prometheus", "uid": cv.DS_PROMETHEUS}
LOKI = {"type": "loki", "uid": cv.DS_LOKI}
ERROR_LEVELS = "(?i)(error|err|fatal|critical|crit|panic|emerg|alert)"
# Budget left: red when spent, orange below a quarter, green otherwise.
BUDGET_STEPS = [{"color": "red", "value": None}, {"color": "orange", "value": 0}, {"color": "green", "value": 0.25}]
ALERT_STEPS = [{"color": "green", "value": None}, {"color": "red", "value": 1}]


def provisioning(spec: Spec) -> dict[str, str]:
    stack = spec.stack
    mount = "/var/lib/grafana/dashboards" if stack.target == "docker" else f"{stack.data_dir}/grafana/dashboards"
    datasources = {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "Prometheus",
                "type": "prometheus",
                "uid": cv.DS_PROMETHEUS,
                "access": "proxy",
                "url": f"http://{cv.address(stack, 'prometheus')}",
                "isDefault": True,
                "editable": False,
                "jsonData": {"timeInterval": format_duration(stack.scrape_interval)},
            },
            {
                "name": "Loki",
                "type": "loki",
                "uid": cv.DS_LOKI,
                "access": "proxy",
                "url": f"http://{cv.address(stack, 'loki')}",
                "editable": False,
            },
            {
                "name": "Alertmanager",
                "type": "alertmanager",
                "uid": cv.DS_ALERTMANAGER,
                "access": "proxy",
                "url": f"http://{cv.address(stack, 'alertmanager')}",
                "editable": False,
                "jsonData": {"implementation": "prometheus", "handleGrafanaManagedAlerts": False},
            },
        ],
    }
    providers = {
        "apiVersion": 1,
        "providers": [
            {
                "name": folder,
                "folder": folder,
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 60,
                "options": {"path": f"{mount}/{folder}", "foldersFromFilesStructure": False},
            }
            for folder in folders(spec)
        ],
    }
    return {
        "grafana/provisioning/datasources/datasources.yml": yaml_document(
            header(spec.source_file, "Grafana datasources with fixed uids: dashboards reference the uids."),
            [(None, datasources)],
        ),
        "grafana/provisioning/dashboards/dashboards.yml": yaml_document(
            header(spec.source_file, "Dashboard providers: SLOs (home: the SLO overview), Stack, one folder per team."),
            [(None, providers)],
        ),
    }


def folders(spec: Spec) -> list[str]:
    return ["SLOs", "Stack"] + [f"team-{team}" for team in spec.teams]


def prom(expr: str, legend: str = "", ref: str = "A", instant: bool = False, fmt: str = "time_series") -> g.Target:
    return g.Target(expr=expr, legendFormat=legend, refId=ref, instant=instant, format=fmt, datasource=PROM)


def loki(expr: str, legend: str = "", ref: str = "A") -> g.Target:
    return g.Target(expr=expr, legendFormat=legend, refId=ref, datasource=LOKI)


def sel(slo: SLO) -> str:
    return cv.slo_matchers(slo)


def overview(spec: Spec) -> g.Dashboard:
    burn_windows = sorted({t.long_window for s in spec.slos for t in s.tiers})
    targets = [
        prom(cv.OBJECTIVE, ref="A", instant=True, fmt="table"),
        prom(cv.SLI_PERIOD, ref="B", instant=True, fmt="table"),
        prom(cv.BUDGET_REMAINING, ref="C", instant=True, fmt="table"),
    ]
    rename = {"Value #A": "Objective", "Value #B": "SLI (period)", "Value #C": "Budget left"}
    for i, window in enumerate(burn_windows):
        ref = chr(ord("D") + i)
        targets.append(prom(cv.burn_rate(window), ref=ref, instant=True, fmt="table"))
        rename[f"Value #{ref}"] = f"Burn {format_duration(window)}"
    ref = chr(ord("D") + len(burn_windows))
    targets.append(
        prom(
            'count by (service, slo) (ALERTS{alertstate="firing", category="slo"})', ref=ref, instant=True, fmt="table"
        )
    )
    rename[f"Value #{ref}"] = "Firing alerts"
    link = f"/d/{cv.service_dashboard_uid('${__data.fields.service}')}?var-slo=${{__data.fields.slo}}"
    table = g.Table(
        title="Every SLO: objective, SLI over its period, error budget left, burn rate per alert window",
        description="One row per SLO. Click a row's service for its dashboard. Budget left: red when spent, "
        "orange under 25 %. Burn rate 1 spends exactly the budget over the period.",
        dataSource=PROM,
        gridPos=g.GridPos(h=14, w=24, x=0, y=4),
        targets=targets,
        transformations=[
            {"id": "merge", "options": {}},
            {
                "id": "organize",
                "options": {"excludeByName": {"Time": True, "team": False, "__name__": True}, "renameByName": rename},
            },
        ],
        sortBy=[g.TableSortByField("Budget left", desc=False)],
        overrides=[
            {
                "matcher": {"id": "byRegexp", "options": "Objective|SLI.*|Budget left"},
                "properties": [{"id": "unit", "value": "percentunit"}, {"id": "decimals", "value": 3}],
            },
            {
                "matcher": {"id": "byName", "options": "Budget left"},
                "properties": [
                    {"id": "custom.cellOptions", "value": {"type": "color-background"}},
                    {
                        "id": "thresholds",
                        "value": {
                            "mode": "absolute",
                            "steps": [
                                {"color": "red", "value": None},
                                {"color": "orange", "value": 0},
                                {"color": "green", "value": 0.25},
                            ],
                        },
                    },
                ],
            },
            {
                "matcher": {"id": "byRegexp", "options": "Burn .*"},
                "properties": [{"id": "unit", "value": "x"}, {"id": "decimals", "value": 2}],
            },
            {
                "matcher": {"id": "byName", "options": "service"},
                "properties": [{"id": "links", "value": [{"title": "Service dashboard", "url": link}]}],
            },
        ],
    )
    firing = g.Stat(
        title="SLO alerts firing",
        dataSource=PROM,
        gridPos=g.GridPos(h=4, w=8, x=0, y=0),
        targets=[prom('count(ALERTS{alertstate="firing", category="slo"}) or vector(0)', instant=True)],
        reduceCalc="lastNotNull",
        thresholds=ALERT_STEPS,
    )
    spent = g.Stat(
        title="SLOs with their budget spent",
        dataSource=PROM,
        gridPos=g.GridPos(h=4, w=8, x=8, y=0),
        targets=[prom(f"count({cv.BUDGET_REMAINING} < 0) or vector(0)", instant=True)],
        reduceCalc="lastNotNull",
        thresholds=ALERT_STEPS,
    )
    count = g.Stat(
        title="SLOs",
        dataSource=PROM,
        gridPos=g.GridPos(h=4, w=8, x=16, y=0),
        targets=[prom(f"count({cv.OBJECTIVE})", instant=True)],
        reduceCalc="lastNotNull",
    )
    return g.Dashboard(
        title="SLO overview",
        uid=OVERVIEW_UID,
        tags=["stackgen", "slo"],
        description="Generated by stackgen. Every SLO of the spec.",
        panels=[firing, spent, count, table],
        refresh="1m",
        time=g.Time("now-24h", "now"),
        timezone="browser",
        links=[g.DashboardLink(title="Services", type="dashboards", tags=["slo"], asDropdown=True)],
    )


def alert_annotations(service: str) -> g.Annotations:
    return g.Annotations(
        list=[
            {
                "name": "SLO alerts",
                "datasource": PROM,
                "enable": True,
                "iconColor": "red",
                "expr": f'ALERTS{{{promql.equals("service", service)}, alertstate="firing", escalation_level=""}}',
                "titleFormat": "{{alertname}} ({{severity}})",
                "textFormat": "{{slo}} {{long_window}}/{{short_window}}",
                "step": "1m",
            },
            {
                "name": "Escalations",
                "datasource": PROM,
                "enable": True,
                "iconColor": "purple",
                "expr": f'ALERTS{{{promql.equals("service", service)}, alertstate="firing", escalation_level!=""}}',
                "titleFormat": "escalated to level {{escalation_level}}",
                "textFormat": "{{escalated_alertname}}",
                "step": "1m",
            },
        ]
    )


def slo_panels(spec: Spec, slo: SLO, y: int) -> list[Any]:
    s = sel(slo)
    period = format_duration(slo.period)
    percent = {"unit": "percentunit", "valueDecimals": 3}
    panels: list[Any] = [
        g.RowPanel(title=f"{slo.name}: {slo.objective}% over {period}", gridPos=g.GridPos(h=1, w=24, x=0, y=y)),
        g.Stat(
            title=f"SLI over {period}",
            dataSource=PROM,
            gridPos=g.GridPos(h=6, w=4, x=0, y=y + 1),
            targets=[prom(f"{cv.SLI_PERIOD}{s}", instant=True)],
            format="percentunit",
            decimals=3,
            reduceCalc="lastNotNull",
            thresholds=[{"color": "red", "value": None}, {"color": "green", "value": float(slo.objective) / 100}],
        ),
        g.Stat(
            title="Error budget left",
            dataSource=PROM,
            gridPos=g.GridPos(h=6, w=4, x=0, y=y + 7),
            targets=[prom(f"{cv.BUDGET_REMAINING}{s}", instant=True)],
            format="percentunit",
            decimals=1,
            reduceCalc="lastNotNull",
            thresholds=BUDGET_STEPS,
        ),
        g.TimeSeries(
            title="SLI (1h) against the objective",
            dataSource=PROM,
            gridPos=g.GridPos(h=6, w=10, x=4, y=y + 1),
            **percent,
            targets=[
                prom(f"1 - {cv.error_ratio(min(t.long_window for t in slo.tiers))}{s}", "SLI", "A"),
                prom(f"{cv.OBJECTIVE}{s}", "objective", "B"),
            ],
        ),
        g.TimeSeries(
            title=f"Error budget left over {period} (burn-down)",
            dataSource=PROM,
            gridPos=g.GridPos(h=6, w=10, x=14, y=y + 1),
            **percent,
            targets=[prom(f"{cv.BUDGET_REMAINING}{s}", "budget left")],
        ),
        g.TimeSeries(
            title="Burn rate per alert window, with the alert thresholds",
            dataSource=PROM,
            gridPos=g.GridPos(h=6, w=10, x=4, y=y + 7),
            unit="x",
            valueDecimals=2,
            targets=[
                prom(f"{cv.burn_rate(t.long_window)}{s}", f"{t.long} burn", chr(65 + i))
                for i, t in enumerate(slo.tiers)
            ]
            + [prom(f"{cv.TIER_THRESHOLD}{s}", "{{long_window}} threshold ({{tier}})", "Z")],
        ),
        g.TimeSeries(
            title="Events per second (traffic) and bad events",
            dataSource=PROM,
            gridPos=g.GridPos(h=6, w=10, x=14, y=y + 7),
            unit="reqps" if slo.sli.kind != "availability" else "short",
            valueDecimals=2,
            targets=[
                prom(f"{cv.total_rate(spec.stack)}{s}", "all events", "A"),
                prom(f"{cv.bad_rate(spec.stack)}{s}", "bad events", "B"),
            ],
        ),
    ]
    return panels


def service_dashboard(spec: Spec, service: Service) -> g.Dashboard:
    panels: list[Any] = []
    y = 0
    for slo in service.slos:
        panels += slo_panels(spec, slo, y)
        y += 13
    panels.append(
        g.Table(
            title=f"Alerts of {service.name} firing now in Prometheus (SLO, plain and escalation alerts)",
            dataSource=PROM,
            gridPos=g.GridPos(h=6, w=24, x=0, y=y),
            targets=[
                prom(
                    f'ALERTS{{{promql.equals("service", service.name)}, alertstate="firing"}}',
                    instant=True,
                    fmt="table",
                )
            ],
        )
    )
    y += 6
    panels.append(
        g.Logs(
            title=f"Recent log lines of {service.name} (errors first: filter with the level label)",
            dataSource=LOKI,
            gridPos=g.GridPos(h=10, w=24, x=0, y=y),
            targets=[loki("{" + promql.equals("service", service.name) + "}")],
            showTime=True,
            wrapLogMessages=True,
            enableLogDetails=True,
        )
    )
    slo_names = [slo.name for slo in service.slos]
    templating = g.Templating(
        list=[
            g.Template(
                name="slo",
                label="SLO",
                type="custom",
                query=",".join(slo_names),
                default=slo_names[0],
                includeAll=False,
            )
        ]
        if slo_names
        else []  # a service that only logs or has plain alerts
    )
    return g.Dashboard(
        title=f"{service.name}: SLOs",
        uid=cv.service_dashboard_uid(service.name),
        description=f"Generated by stackgen. Team {service.team}. {service.description}"[:500],
        tags=["stackgen", "slo", f"team-{service.team}"],
        panels=panels,
        refresh="1m",
        time=g.Time("now-24h", "now"),
        timezone="browser",
        annotations=alert_annotations(service.name),
        templating=templating,
        links=[g.DashboardLink(title="SLO overview", type="link", uri=f"/d/{OVERVIEW_UID}")],
    )


def logs_dashboard(spec: Spec) -> g.Dashboard:
    del spec
    return g.Dashboard(
        title="Logs: errors by service",
        uid=LOGS_UID,
        tags=["stackgen", "logs"],
        refresh="1m",
        time=g.Time("now-6h", "now"),
        timezone="browser",
        description="Generated by stackgen.",
        panels=[
            g.TimeSeries(
                title="Error log lines per second, by service",
                dataSource=LOKI,
                gridPos=g.GridPos(h=9, w=24, x=0, y=0),
                unit="short",
                valueDecimals=2,
                targets=[
                    loki(f'sum by (service) (rate({{service=~".+", level=~"{ERROR_LEVELS}"}} [5m]))', "{{service}}")
                ],
            ),
            g.Logs(
                title="Recent error lines",
                dataSource=LOKI,
                gridPos=g.GridPos(h=14, w=24, x=0, y=9),
                targets=[loki(f'{{service=~".+", level=~"{ERROR_LEVELS}"}}')],
                showTime=True,
                wrapLogMessages=True,
                enableLogDetails=True,
            ),
        ],
    )


def health_dashboard(spec: Spec) -> g.Dashboard:
    del spec
    return g.Dashboard(
        title="Stack health",
        uid=HEALTH_UID,
        tags=["stackgen", "stack"],
        refresh="1m",
        time=g.Time("now-6h", "now"),
        timezone="browser",
        description="Generated by stackgen.",
        panels=[
            g.Table(
                title="Scrape targets up (0 = down)",
                dataSource=PROM,
                gridPos=g.GridPos(h=9, w=12, x=0, y=0),
                targets=[prom("up", ref="A", instant=True, fmt="table")],
                transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True, "__name__": True}}}],
            ),
            g.TimeSeries(
                title="Rule evaluation failures (5m)",
                dataSource=PROM,
                gridPos=g.GridPos(h=9, w=12, x=12, y=0),
                unit="short",
                targets=[
                    prom(
                        "sum by (rule_group) (increase(prometheus_rule_evaluation_failures_total[5m]))",
                        "{{rule_group}}",
                    )
                ],
            ),
            g.TimeSeries(
                title="Alertmanager notification failures (5m)",
                dataSource=PROM,
                gridPos=g.GridPos(h=9, w=12, x=0, y=9),
                unit="short",
                targets=[
                    prom(
                        "sum by (integration) (increase(alertmanager_notifications_failed_total[5m]))",
                        "{{integration}}",
                    )
                ],
            ),
            g.TimeSeries(
                title="Loki ingestion (bytes/s)",
                dataSource=PROM,
                gridPos=g.GridPos(h=9, w=12, x=12, y=9),
                unit="Bps",
                targets=[prom("sum(rate(loki_distributor_bytes_received_total[5m]))", "received")],
            ),
        ],
    )


def dashboard_json(dashboard: g.Dashboard) -> str:
    # grafanalib objects turn into JSON data through to_json_data(), as its DashboardEncoder does.
    return json_text(dashboard.auto_panel_ids().to_json_data(), default=_to_json_data)


def _to_json_data(obj: Any) -> Any:
    to_json_data = getattr(obj, "to_json_data", None)
    if to_json_data is None:
        raise TypeError(f"{type(obj).__name__} is not JSON serialisable")
    return to_json_data()


def render_stack(spec: Spec) -> dict[str, str]:
    files = provisioning(spec)
    files[f"{DASHBOARDS_DIR}/SLOs/{OVERVIEW_UID}.json"] = dashboard_json(overview(spec))
    files[f"{DASHBOARDS_DIR}/Stack/{LOGS_UID}.json"] = dashboard_json(logs_dashboard(spec))
    files[f"{DASHBOARDS_DIR}/Stack/{HEALTH_UID}.json"] = dashboard_json(health_dashboard(spec))
    return files


def render_service(spec: Spec, service: Service) -> dict[str, str]:
    uid = cv.service_dashboard_uid(service.name)
    return {f"{DASHBOARDS_DIR}/team-{service.team}/{uid}.json": dashboard_json(service_dashboard(spec, service))}


def render(spec: Spec) -> dict[str, str]:
    files = render_stack(spec)
    for service in spec.services:
        files.update(render_service(spec, service))
    return files
