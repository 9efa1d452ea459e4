"""Grafana provisioning (datasources with fixed uids, dashboard providers per team folder) and
dashboards built with grafanalib."""

from __future__ import annotations

from typing import Any

from grafanalib import core as g
from grafanalib._gen import DashboardEncoder

from stackgen import conventions as cv
from stackgen.model import SLO, Service, Spec
from stackgen.render.common import header, json_text, yaml_document

DASHBOARDS_DIR = "grafana/dashboards"
OVERVIEW_UID = "stackgen-slo-overview"


def datasource(uid: str, kind: str) -> dict[str, str]:
    return {"type": kind, "uid": uid}


PROM = datasource(cv.DS_PROMETHEUS, "prometheus")


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
                "jsonData": {"timeInterval": f"{stack.scrape_interval}s"},
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
    folders = ["SLOs"] + [f"team-{team}" for team in spec.teams]
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
            for folder in folders
        ],
    }
    head = header(spec.source_file, "Grafana datasources: fixed uids, dashboards reference these uids.")
    head2 = header(spec.source_file, "Grafana dashboard providers: one folder per team plus SLOs.")
    return {
        "grafana/provisioning/datasources/datasources.yml": yaml_document(head, [(None, datasources)]),
        "grafana/provisioning/dashboards/dashboards.yml": yaml_document(head2, [(None, providers)]),
    }


def target(expr: str, legend: str = "", ref: str = "A", instant: bool = False, fmt: str = "time_series") -> g.Target:
    return g.Target(expr=expr, legendFormat=legend, refId=ref, instant=instant, format=fmt, datasource=PROM)


def overview(spec: Spec) -> g.Dashboard:
    period_ratio = " or ".join(
        sorted({f'{cv.error_ratio(s.period)}{{service="{s.service}",slo="{s.name}"}}' for s in spec.slos})
    )
    panels = [
        g.Table(
            title="Every SLO: objective, SLI over its period, error budget left",
            dataSource=PROM,
            gridPos=g.GridPos(h=16, w=24, x=0, y=0),
            targets=[
                target(f"{cv.OBJECTIVE}", ref="A", instant=True, fmt="table"),
                target(f"1 - ({period_ratio})", ref="B", instant=True, fmt="table"),
                target(cv.BUDGET_REMAINING, ref="C", instant=True, fmt="table"),
            ],
            transformations=[
                {"id": "merge", "options": {}},
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {"Time": True},
                        "renameByName": {
                            "Value #A": "Objective",
                            "Value #B": "SLI (period)",
                            "Value #C": "Budget left",
                        },
                    },
                },
            ],
            unit="percentunit",
        ),
    ]
    return g.Dashboard(
        title="SLO overview",
        uid=OVERVIEW_UID,
        tags=["stackgen", "slo"],
        panels=panels,
        refresh="1m",
        time=g.Time("now-7d", "now"),
        timezone="browser",
    )


def service_dashboard(spec: Spec, service: Service) -> g.Dashboard:
    panels: list[Any] = []
    y = 0
    for slo in service.slos:
        sel = cv.slo_matchers(slo)
        panels.append(
            g.TimeSeries(
                title=f"{slo.name}: burn rate per window",
                dataSource=PROM,
                gridPos=g.GridPos(h=8, w=12, x=0, y=y),
                unit="x",
                targets=[
                    target(f"{cv.burn_rate(w)}{sel}", legend=f"{_w(w)}", ref=chr(65 + i))
                    for i, w in enumerate(slo.windows)
                ],
            )
        )
        panels.append(
            g.TimeSeries(
                title=f"{slo.name}: error budget remaining",
                dataSource=PROM,
                gridPos=g.GridPos(h=8, w=12, x=12, y=y),
                unit="percentunit",
                targets=[target(f"{cv.BUDGET_REMAINING}{sel}", legend="budget left")],
            )
        )
        y += 8
    return g.Dashboard(
        title=f"{service.name}: SLOs",
        uid=cv.service_dashboard_uid(service.name),
        tags=["stackgen", "slo", f"team-{service.team}"],
        panels=panels,
        refresh="1m",
        time=g.Time("now-24h", "now"),
        timezone="browser",
    )


def _w(seconds: int) -> str:
    from stackgen.durations import format_duration

    return format_duration(seconds)


def dashboard_json(dashboard: g.Dashboard) -> str:
    import json

    data = json.loads(json.dumps(dashboard.auto_panel_ids().to_json_data(), cls=DashboardEncoder))
    return json_text(data)


def render(spec: Spec) -> dict[str, str]:
    files = provisioning(spec)
    files[f"{DASHBOARDS_DIR}/SLOs/{OVERVIEW_UID}.json"] = dashboard_json(overview(spec))
    for service in spec.services:
        uid = cv.service_dashboard_uid(service.name)
        files[f"{DASHBOARDS_DIR}/team-{service.team}/{uid}.json"] = dashboard_json(service_dashboard(spec, service))
    return files


__all__ = ["SLO", "render"]
