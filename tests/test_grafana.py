"""Dashboards: valid, tidy, wired to provisioned datasources, and every series they read is
produced by a generated recording rule or a component of the stack."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackgen import alert_state_exporter
from stackgen import conventions as cv
from stackgen.promql import selector_nodes
from tests.conftest import ROOT

# Metrics the stack's components export themselves (not recording rules).
COMPONENT_METRICS = {
    "up",
    "ALERTS",
    "prometheus_rule_evaluation_failures_total",
    "alertmanager_notifications_failed_total",
    "loki_distributor_bytes_received_total",
}
# What the alert-state exporter exposes, read from its own page.
COMPONENT_METRICS |= {
    line.split("{")[0].split(" ")[0]
    for line in alert_state_exporter.exposition([{"labels": {"alertname": "A"}, "status": {}}]).splitlines()
    if not line.startswith("#")
}


def dashboards(files: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {p: json.loads(t) for p, t in files.items() if p.startswith("grafana/dashboards/") and p.endswith(".json")}


def targets(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = [t for panel in dashboard.get("panels", []) for t in panel.get("targets", [])]
    out += dashboard.get("annotations", {}).get("list", [])
    return [t for t in out if t.get("expr")]


def overlaps(panels: list[dict[str, Any]]) -> list[tuple[Any, Any]]:
    boxes = [(p.get("id"), p["gridPos"]) for p in panels if "gridPos" in p]
    found = []
    for i, (a_id, a) in enumerate(boxes):
        for b_id, b in boxes[i + 1 :]:
            if (
                a["x"] < b["x"] + b["w"]
                and b["x"] < a["x"] + a["w"]
                and a["y"] < b["y"] + b["h"]
                and b["y"] < a["y"] + a["h"]
            ):
                found.append((a_id, b_id))
    return found


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads, from promql-parser's syntax tree."""
    return {node.name for node in selector_nodes(expr) if node.name}


def recorded(files: dict[str, str]) -> set[str]:
    names = set()
    for path, text in files.items():
        if path.startswith("prometheus/rules/"):
            names |= {r["record"] for g in yaml.safe_load(text)["groups"] for r in g["rules"] if "record" in r}
    return names


def test_every_dashboard_is_valid_and_tidy(default_files: dict[str, str], default_model) -> None:  # type: ignore[no-untyped-def]
    boards = dashboards(default_files)
    from stackgen.render.component_dashboards import DASHBOARDS

    runbooks = [path for path in boards if "/Runbooks/" in path]
    components = [b for b in boards.values() if b["uid"] in {d.uid for d in DASHBOARDS}]
    assert len(boards) - len(runbooks) - len(components) == 3 + len(default_model.services)
    assert len(runbooks) == sum(1 for path in default_files if path.startswith("runbooks/"))
    uids = [b["uid"] for b in boards.values()]
    assert len(uids) == len(set(uids)) and all(len(u) <= 40 for u in uids)
    for path, board in boards.items():
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), path
        assert overlaps(board["panels"]) == [], path
        assert board["refresh"] and board["time"]["from"].startswith("now-"), path


def test_overlap_checker_can_fail() -> None:
    panels = [
        {"id": 1, "gridPos": {"x": 0, "y": 0, "w": 12, "h": 8}},
        {"id": 2, "gridPos": {"x": 6, "y": 4, "w": 12, "h": 8}},
    ]
    assert overlaps(panels) == [(1, 2)]


def test_datasources_are_provisioned_uids(default_files: dict[str, str]) -> None:
    provisioned = {
        d["uid"]: d["type"]
        for d in yaml.safe_load(default_files["grafana/provisioning/datasources/datasources.yml"])["datasources"]
    }
    for path, board in dashboards(default_files).items():
        for node in [*board["panels"], *targets(board)]:
            ds = node.get("datasource")
            if isinstance(ds, dict):
                assert provisioned.get(ds["uid"]) == ds["type"], (path, ds)
            else:
                assert ds is None, (path, ds)  # never by name


def test_every_metric_is_produced_by_a_rule_or_a_component(default_files: dict[str, str]) -> None:
    from stackgen.render.component_dashboards import DASHBOARDS

    # The component dashboards' names are checked against each exporter below.
    exported = {n for d in DASHBOARDS for p in d.panels for expr, _ in p.queries for n in metric_names(expr)}
    produced = recorded(default_files) | COMPONENT_METRICS | exported
    used = set()
    for path, board in dashboards(default_files).items():
        for target in targets(board):
            if target.get("datasource", {}).get("type") == "prometheus":
                names = metric_names(target["expr"])
                assert names, target["expr"]
                assert names <= produced, (path, target["expr"], names - produced)
                used |= names
    assert {"slo:error_budget_remaining:ratio", "slo:sli:ratio_period", "slo:objective:ratio"} <= used


def test_metric_check_can_fail() -> None:
    assert metric_names('sum(rate(nope_total{job="x"}[5m])) / 2') == {"nope_total"}


def test_home_dashboard_lists_every_slo(default_files: dict[str, str], default_model) -> None:  # type: ignore[no-untyped-def]
    compose = yaml.safe_load(default_files["docker-compose.yml"])
    home = compose["services"]["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    path = "grafana/dashboards/" + home.removeprefix("/var/lib/grafana/dashboards/")
    board = json.loads(default_files[path])
    table = next(p for p in board["panels"] if p["type"] == "table")
    # The table reads slo:objective:ratio, recorded once per SLO, so it has a row per SLO.
    exprs = [t["expr"] for t in table["targets"]]
    assert "slo:objective:ratio" in exprs and "slo:sli:ratio_period" in exprs
    objective_rules = [
        r
        for p, t in default_files.items()
        if p.endswith(".dashboard.rules.yml")
        for g in yaml.safe_load(t)["groups"]
        for r in g["rules"]
        if r.get("record") == "slo:objective:ratio"
    ]
    assert len(objective_rules) == len(default_model.slos)
    providers = yaml.safe_load(default_files["grafana/provisioning/dashboards/dashboards.yml"])["providers"]
    mount = next(v for v in compose["services"]["grafana"]["volumes"] if v.startswith("./grafana/dashboards:"))
    container_dir = mount.split(":")[1]
    for provider in providers:
        folder = provider["options"]["path"].removeprefix(container_dir + "/")
        assert any(p.startswith(f"grafana/dashboards/{folder}/") for p in default_files), provider


@pytest.mark.parametrize("service", ["api", "search", "webhooks"])
def test_service_dashboard_has_the_panels_on_call_needs(default_files: dict[str, str], service: str) -> None:
    path = next(p for p in default_files if p.endswith(f"{cv.service_dashboard_uid(service)}.json"))
    board = json.loads(default_files[path])
    titles = " | ".join(p.get("title", "") for p in board["panels"])
    for needle in (
        "SLI over",
        "Error budget left",
        "against the objective",
        "burn-down",
        "alert thresholds",
        "traffic",
        "log lines",
    ):
        assert needle in titles, needle
    names = [a["name"] for a in board["annotations"]["list"]]
    assert "SLO alerts" in names and "Escalations" in names
    assert any(v["name"] == "slo" for v in board["templating"]["list"])
    logs = next(p for p in board["panels"] if p["type"] == "logs")
    assert logs["targets"][0]["expr"] == f'{{service="{service}"}}'


def test_readme_lists_the_dashboards() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "## Dashboards" in readme


def test_every_alert_links_to_a_runbook_grafana_serves() -> None:
    """With no stack.runbook_base_url, runbook links open the runbook as a Grafana dashboard
    (folder Runbooks, provisioned like the rest): no 404, no extra setup."""
    import json

    import yaml

    from stackgen.model import build_model
    from stackgen.render import render_all
    from stackgen.spec import load_spec_text
    from tests.conftest import DEFAULT_SPEC

    spec = yaml.safe_load(DEFAULT_SPEC.read_text())
    spec["stack"].pop("runbook_base_url", None)
    files = render_all(build_model(load_spec_text(yaml.safe_dump(spec))))
    grafana = spec["stack"].get("grafana_url", "http://localhost:3000")
    dashboards = {
        json.loads(text)["uid"]: json.loads(text)
        for path, text in files.items()
        if path.startswith("grafana/dashboards/Runbooks/")
    }
    runbooks = {path: text for path, text in files.items() if path.startswith("runbooks/")}
    assert len(dashboards) == len(runbooks) > 0
    links = []
    for path, text in files.items():
        if path.startswith(("prometheus/rules/", "loki/rules/")):
            for group in yaml.safe_load(text)["groups"]:
                links += [
                    r["annotations"]["runbook_url"] for r in group["rules"] if "runbook_url" in r.get("annotations", {})
                ]
    assert len(links) > 20
    for link in links:
        assert link.startswith(f"{grafana}/d/sg-rb-"), link
        uid = link.rsplit("/", 1)[1]
        assert uid in dashboards and len(uid) <= 40, link
    # The dashboard shows the same runbook text, and the provider serves its folder.
    for path, text in runbooks.items():
        from stackgen import conventions as cv

        panel = dashboards[cv.runbook_dashboard_uid(path)]["panels"][0]
        assert panel["type"] == "text" and panel["options"]["mode"] == "markdown"
        body = "\n".join(line for line in text.split("\n") if not line.startswith("<!--")).strip()
        assert panel["options"]["content"].strip() == body
    providers = yaml.safe_load(files["grafana/provisioning/dashboards/dashboards.yml"])["providers"]
    assert any(p["folder"] == "Runbooks" and p["options"]["path"].endswith("/Runbooks") for p in providers)


def test_an_alerts_dashboard_link_lands_on_the_slo_that_fired(default_files: dict[str, str]) -> None:
    """dashboard_url ?var-slo=<slo>: the variable exists with that value, and the top row's
    panels read slo="$slo", so the link shows that SLO first, with its runbook and logs."""
    boards = {b["uid"]: b for b in dashboards(default_files).values()}
    links = [
        r["annotations"]["dashboard_url"]
        for path, text in default_files.items()
        if path.startswith("prometheus/rules/")
        for group in yaml.safe_load(text)["groups"]
        for r in group["rules"]
        if "?var-slo=" in r.get("annotations", {}).get("dashboard_url", "")
    ]
    assert links
    for link in links:
        uid, _, query = link.split("/d/", 1)[1].partition("?var-slo=")
        board = boards[uid]
        variable = next(t for t in board["templating"]["list"] if t["name"] == "slo")
        assert query in variable["query"].split(","), link
        top = [p for p in board["panels"] if p["gridPos"]["y"] < 13 and p["type"] not in ("row", "text")]
        assert top and all('slo="$slo"' in t["expr"] for p in top for t in p["targets"]), uid
        text = next(p for p in board["panels"] if p["type"] == "text")
        assert f"`{query}`: [runbook](" in text["options"]["content"] and "/explore?" in text["options"]["content"]


def test_component_dashboards_cover_what_the_stack_runs_and_read_real_metric_names() -> None:
    """A dashboard per deployed component (host, containers, each exporter the spec runs),
    and every metric they read is one the component's alert pack reads too, or listed below
    from the exporter's documentation. Checked once against the real exporters (Debian's
    node, nginx, redis, blackbox exporters and Pushgateway, run on loopback and scraped):
    every name was exported, probe_ssl_earliest_cert_expiry only for an https target."""

    from stackgen.pipeline import render_spec
    from stackgen.render.component_dashboards import DASHBOARDS
    from tests.conftest import ROOT

    files = render_spec(ROOT / "examples/seeds/004-clipper.yaml", "docker")
    stack_boards = {
        p.rsplit("/", 1)[1].removesuffix(".json") for p in files if p.startswith("grafana/dashboards/Stack/")
    }
    assert {"stackgen-host", "stackgen-containers", "stackgen-postgres", "stackgen-redis"} <= stack_boards
    default = render_spec(ROOT / "slos.yaml")
    assert "grafana/dashboards/Stack/stackgen-redis.json" not in default  # the default runs no Redis exporter
    host = render_spec(ROOT / "slos.yaml", "host")
    assert "grafana/dashboards/Stack/stackgen-containers.json" not in host  # no cAdvisor on the host profile
    packs = ROOT / "stackgen/packs"
    pack_of = {
        "node-exporter": "node",
        "cadvisor": "cadvisor",
        "postgres-exporter": "postgres",
        "redis-exporter": "redis",
        "nginx-exporter": "nginx",
        "blackbox-exporter": "blackbox",
        "pushgateway": "pushgateway",
    }
    # Names a pack does not read, each read off the exporter's documentation at the pinned version.
    documented = {
        "node-exporter": {
            "node_memory_MemTotal_bytes",
            "node_network_receive_bytes_total",
            "node_network_transmit_bytes_total",
            "node_load1",
        },
        "cadvisor": {"container_cpu_usage_seconds_total", "container_network_receive_bytes_total"},
        "redis-exporter": {"redis_connected_clients"},
        "nginx-exporter": {"nginx_connections_active", "nginx_http_requests_total"},
        "blackbox-exporter": {"probe_duration_seconds"},
    }
    for board in DASHBOARDS:
        pack = (packs / f"{pack_of[board.component]}.yaml").read_text()
        known = set(re.findall(r"\b([a-z][a-z0-9_]*[A-Za-z0-9_]*)\{", pack)) | documented.get(board.component, set())
        for panel in board.panels:
            for expr, _ in panel.queries:
                names = metric_names(expr)
                assert names and names <= known, (board.component, expr, names - known)


SERVICE_PICTURE = ROOT / "docs/service-dashboard.svg"
PICTURE_NOTE = "opened from an SLO alert: /d/sg-svc-api?var-slo=error-rate (the top row shows that SLO)"


def test_the_readme_picture_is_the_rendered_dashboard(default_files: dict[str, str]) -> None:
    """docs/service-dashboard.svg is drawn from the rendered JSON (make docs): each panel once,
    at its grid position; a render that moves a panel makes this fail until it is redrawn."""
    from tests.support.dashboard_svg import svg

    board = json.loads(default_files["grafana/dashboards/team-storefront/sg-svc-api.json"])
    drawn = svg(board, PICTURE_NOTE)
    assert drawn.count("<rect ") == len(board["panels"])
    assert SERVICE_PICTURE.read_text() == drawn, "run `make docs` and commit docs/"
    assert "docs/service-dashboard.svg" in (ROOT / "README.md").read_text()


def test_links_in_a_notification_reach_what_the_stack_renders(default_files: dict[str, str], tmp_path: Path) -> None:
    """The path from a page: an Alertmanager webhook payload (as the real Alertmanager sends
    it, for the alert promtool proves fires) -> its dashboard_url -> the dashboard and SLO it
    names -> that SLO's runbook link -> a runbook that concerns that SLO."""
    import yaml as yaml_module

    from stackgen.model import build_model
    from stackgen.render import render_all
    from stackgen.spec import load_spec_text
    from tests.conftest import DEFAULT_SPEC

    spec = yaml_module.safe_load(DEFAULT_SPEC.read_text())
    spec["stack"].pop("runbook_base_url", None)  # the default: runbooks served by Grafana
    files = render_all(build_model(load_spec_text(yaml_module.safe_dump(spec))))
    test = yaml_module.safe_load(files["prometheus/tests/api/error-rate.test.yml"])
    fired = next(
        a
        for t in test["tests"]
        for a in t.get("alert_rule_test", [])
        if a["alertname"] == "SLOBurnRate1h" and a["exp_alerts"]
    )["exp_alerts"][0]
    payload = {  # Alertmanager's webhook body (version 4), one alert
        "version": "4",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "SLOBurnRate1h", **fired["exp_labels"]},
                "annotations": fired["exp_annotations"],
            }
        ],
    }
    alert = payload["alerts"][0]
    grafana = "http://localhost:3000"
    boards = {
        json.loads(text)["uid"]: json.loads(text)
        for path, text in files.items()
        if path.startswith("grafana/dashboards/")
    }
    # dashboard_url: the service dashboard, its slo variable set to the SLO that fired.
    uid, _, slo = alert["annotations"]["dashboard_url"].removeprefix(f"{grafana}/d/").partition("?var-slo=")
    assert slo == alert["labels"]["slo"] and uid in boards
    variable = next(t for t in boards[uid]["templating"]["list"] if t["name"] == "slo")
    assert slo in variable["query"].split(",")
    # runbook_url: a runbook dashboard about exactly that SLO, and the dashboard links it too.
    runbook_uid = alert["annotations"]["runbook_url"].removeprefix(f"{grafana}/d/")
    runbook = boards[runbook_uid]
    assert runbook["title"] == f"Runbook: {alert['labels']['service']} / {slo}"
    content = runbook["panels"][0]["options"]["content"]
    assert f"# Runbook: {alert['labels']['service']} / {slo}" in content and "SLOBurnRate1h" in content
    text = next(p for p in boards[uid]["panels"] if p["type"] == "text")["options"]["content"]
    assert f"`{slo}`: [runbook]({alert['annotations']['runbook_url']})" in text
