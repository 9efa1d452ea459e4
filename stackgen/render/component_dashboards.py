"""A dashboard for each component stackgen deploys beyond the core: the host (node_exporter),
containers (cAdvisor), and each exporter the spec runs. Built with grafanalib like the rest,
in the Stack folder. Metric names are the exporters' documented ones, the same the alert
packs (stackgen/packs/) read; tests check every name against the component that exports it.
"""

from __future__ import annotations

from dataclasses import dataclass

from grafanalib import core as g

from stackgen.model import Spec
from stackgen.render.grafana import PROM, dashboard_json, prom


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str
    queries: tuple[tuple[str, str], ...]  # (PromQL, legend)
    stat: bool = False  # a current value instead of a time series


@dataclass(frozen=True)
class ComponentDashboard:
    component: str  # the stack component (compose service and scrape job)
    uid: str
    title: str
    panels: tuple[Panel, ...]


def _job(component: str) -> str:
    return f'job="{component}"'


HOST = _job("node-exporter")
CONTAINERS = _job("cadvisor") + ', name!=""'
DASHBOARDS = (
    ComponentDashboard(
        "node-exporter",
        "stackgen-host",
        "Host (node_exporter)",
        (
            Panel(
                "CPU busy",
                "percentunit",
                ((f'1 - avg by (instance) (rate(node_cpu_seconds_total{{{HOST}, mode="idle"}}[5m]))', "{{instance}}"),),
            ),
            Panel(
                "Memory used",
                "percentunit",
                (
                    (
                        f"1 - node_memory_MemAvailable_bytes{{{HOST}}} / node_memory_MemTotal_bytes{{{HOST}}}",
                        "{{instance}}",
                    ),
                ),
            ),
            Panel(
                "Disk used per mount",
                "percentunit",
                (
                    (
                        f'1 - node_filesystem_avail_bytes{{{HOST}, fstype!~"tmpfs|overlay|squashfs"}}'
                        f' / node_filesystem_size_bytes{{{HOST}, fstype!~"tmpfs|overlay|squashfs"}}',
                        "{{instance}} {{mountpoint}}",
                    ),
                ),
            ),
            Panel(
                "Network traffic",
                "Bps",
                (
                    (
                        f'sum by (instance) (rate(node_network_receive_bytes_total{{{HOST}, device!="lo"}}[5m]))',
                        "{{instance}} in",
                    ),
                    (
                        f'sum by (instance) (rate(node_network_transmit_bytes_total{{{HOST}, device!="lo"}}[5m]))',
                        "{{instance}} out",
                    ),
                ),
            ),
            Panel("Load (1m)", "short", ((f"node_load1{{{HOST}}}", "{{instance}}"),)),
        ),
    ),
    ComponentDashboard(
        "cadvisor",
        "stackgen-containers",
        "Containers (cAdvisor)",
        (
            Panel(
                "CPU per container (cores)",
                "short",
                ((f"sum by (name) (rate(container_cpu_usage_seconds_total{{{CONTAINERS}}}[5m]))", "{{name}}"),),
            ),
            Panel(
                "Memory per container (working set)",
                "bytes",
                ((f"container_memory_working_set_bytes{{{CONTAINERS}}}", "{{name}}"),),
            ),
            Panel(
                "Network received per container",
                "Bps",
                ((f"sum by (name) (rate(container_network_receive_bytes_total{{{CONTAINERS}}}[5m]))", "{{name}}"),),
            ),
            Panel(
                "OOM kills (1h)", "short", ((f"increase(container_oom_events_total{{{CONTAINERS}}}[1h])", "{{name}}"),)
            ),
        ),
    ),
    ComponentDashboard(
        "postgres-exporter",
        "stackgen-postgres",
        "PostgreSQL (postgres_exporter)",
        (
            Panel(
                "Database reachable (1 = up)",
                "short",
                ((f"pg_up{{{_job('postgres-exporter')}}}", "{{instance}}"),),
                stat=True,
            ),
            Panel(
                "Connections against the limit",
                "short",
                (
                    (
                        f"sum by (instance) (pg_stat_activity_count{{{_job('postgres-exporter')}}})",
                        "{{instance}} in use",
                    ),
                    (
                        f"max by (instance) (pg_settings_max_connections{{{_job('postgres-exporter')}}})",
                        "{{instance}} max",
                    ),
                ),
            ),
            Panel(
                "Deadlocks (10m)",
                "short",
                (
                    (
                        f"sum by (datname) (increase(pg_stat_database_deadlocks{{{_job('postgres-exporter')}}}[10m]))",
                        "{{datname}}",
                    ),
                ),
            ),
        ),
    ),
    ComponentDashboard(
        "redis-exporter",
        "stackgen-redis",
        "Redis (redis_exporter)",
        (
            Panel(
                "Redis reachable (1 = up)",
                "short",
                ((f"redis_up{{{_job('redis-exporter')}}}", "{{instance}}"),),
                stat=True,
            ),
            Panel(
                "Memory against maxmemory",
                "bytes",
                (
                    (f"redis_memory_used_bytes{{{_job('redis-exporter')}}}", "used"),
                    (f"redis_memory_max_bytes{{{_job('redis-exporter')}}}", "max"),
                ),
            ),
            Panel("Connected clients", "short", ((f"redis_connected_clients{{{_job('redis-exporter')}}}", "clients"),)),
            Panel(
                "Rejected connections (5m)",
                "short",
                ((f"increase(redis_rejected_connections_total{{{_job('redis-exporter')}}}[5m])", "rejected"),),
            ),
        ),
    ),
    ComponentDashboard(
        "nginx-exporter",
        "stackgen-nginx",
        "nginx (nginx-prometheus-exporter)",
        (
            Panel(
                "nginx reachable (1 = up)",
                "short",
                ((f"nginx_up{{{_job('nginx-exporter')}}}", "{{instance}}"),),
                stat=True,
            ),
            Panel(
                "Active connections", "short", ((f"nginx_connections_active{{{_job('nginx-exporter')}}}", "active"),)
            ),
            Panel(
                "Requests per second",
                "reqps",
                ((f"rate(nginx_http_requests_total{{{_job('nginx-exporter')}}}[5m])", "requests"),),
            ),
            Panel(
                "Dropped connections (accepted - handled, 5m)",
                "short",
                (
                    (
                        f"increase(nginx_connections_accepted{{{_job('nginx-exporter')}}}[5m])"
                        f" - increase(nginx_connections_handled{{{_job('nginx-exporter')}}}[5m])",
                        "dropped",
                    ),
                ),
            ),
        ),
    ),
    ComponentDashboard(
        "blackbox-exporter",
        "stackgen-probes",
        "Probes (blackbox_exporter)",
        (
            Panel("Probe success (1 = up)", "short", (("probe_success", "{{job}} {{instance}}"),)),
            Panel("Probe duration", "s", (("probe_duration_seconds", "{{job}} {{instance}}"),)),
            Panel(
                "Days until the TLS certificate expires",
                "d",
                (("(probe_ssl_earliest_cert_expiry - time()) / 86400", "{{instance}}"),),
            ),
        ),
    ),
    ComponentDashboard(
        "pushgateway",
        "stackgen-pushgateway",
        "Batch jobs (Pushgateway)",
        (
            Panel(
                "Time since each job last pushed",
                "s",
                ((f"time() - push_time_seconds{{{_job('pushgateway')}}}", "{{exported_job}}"),),
            ),
        ),
    ),
)


def deployed(spec: Spec) -> list[ComponentDashboard]:
    """The dashboards of the components this stack runs (cAdvisor: compose only)."""
    out = []
    for board in DASHBOARDS:
        if board.component == "node-exporter":
            out.append(board)
        elif board.component == "cadvisor":
            if spec.stack.target == "docker":
                out.append(board)
        elif spec.runs(board.component):
            out.append(board)
    return out


def build(board: ComponentDashboard) -> g.Dashboard:
    panels = []
    for i, panel in enumerate(board.panels):
        x, y = (i % 2) * 12, (i // 2) * 8
        targets = [prom(expr, legend, chr(65 + j)) for j, (expr, legend) in enumerate(panel.queries)]
        kind = g.Stat if panel.stat else g.TimeSeries
        options = {"format": panel.unit, "reduceCalc": "lastNotNull"} if panel.stat else {"unit": panel.unit}
        panels.append(
            kind(title=panel.title, dataSource=PROM, gridPos=g.GridPos(h=8, w=12, x=x, y=y), targets=targets, **options)
        )
    return g.Dashboard(
        title=board.title,
        uid=board.uid,
        tags=["stackgen", "stack", board.component],
        refresh="1m",
        time=g.Time("now-6h", "now"),
        timezone="browser",
        description=f"Generated by stackgen: the {board.component} the stack runs.",
        panels=panels,
    )


def render(spec: Spec) -> dict[str, str]:
    return {f"grafana/dashboards/Stack/{board.uid}.json": dashboard_json(build(board)) for board in deployed(spec)}
