"""Plain alerts, alert packs, custom severities and the status page: what the spec accepts,
what it refuses (located, exit 2), and what it renders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from stackgen.errors import SpecError
from stackgen.model import PACKS, build_model
from stackgen.render import render_all
from stackgen.spec import load_spec_text
from tests.conftest import DEFAULT_SPEC
from tests.test_slo_engine import all_alerts_and_tests

ALERT = {
    "name": "QueueTooLong",
    "expr": 'max(queue_size{job="api"}) > 100',
    "for": "5m",
    "severity": "warning",
    "category": "jobs",
    "service": "api",
    "summary": "Queue at {{ $value }} items",
}

LOGQL_ALERT = {k: v for k, v in ALERT.items() if k != "expr"}


def spec_with(**top: Any) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(DEFAULT_SPEC.read_text())
    spec.update(top)
    return spec


def render(spec: dict[str, Any]) -> dict[str, str]:
    return render_all(build_model(load_spec_text(yaml.safe_dump(spec, sort_keys=False))))


def problems(spec: dict[str, Any]) -> str:
    with pytest.raises(SpecError) as err:
        build_model(load_spec_text(yaml.safe_dump(spec, sort_keys=False)))
    return str(err.value)


EXPORTERS = {
    "postgres": {"uri": "db:5432/app"},
    "redis": {"address": "redis://cache:6379"},
    "nginx": {"scrape_uri": "http://web:8080/nginx_status"},
    "pushgateway": {},
    "blackbox": {},
}


def test_every_pack_alert_has_a_test_and_lands_in_its_own_file() -> None:
    files = render(spec_with(alert_packs={pack: {} for pack in PACKS}, exporters=EXPORTERS))
    alerts, tested = all_alerts_and_tests(files)
    packed = {a for a in alerts if a[0].startswith("rules/_pack-")}
    assert {p.removeprefix("rules/_pack-").removesuffix(".rules.yml") for p, _ in packed} == set(PACKS)
    assert packed <= tested, sorted(packed - tested)


def test_a_plain_alert_is_labelled_routed_and_runbooked_like_an_slo_alert() -> None:
    files = render(spec_with(alerts=[{**ALERT, "impact": "degraded"}]))
    rules = yaml.safe_load(files["prometheus/rules/api/_alerts.rules.yml"])["groups"][0]["rules"]
    rule = rules[0]
    assert rule["labels"] == {
        "severity": "warning",
        "category": "jobs",
        "service": "api",
        "team": "storefront",
        "impact": "degraded",
    }
    assert rule["annotations"]["runbook_url"].endswith("/runbooks/api/alerts/QueueTooLong.md")
    assert "runbooks/api/alerts/QueueTooLong.md" in files
    cases = yaml.safe_load(files["alertmanager/routing-tests.yml"])["cases"]
    case = next(c for c in cases if c["labels"].get("alertname") == "QueueTooLong")
    # Status page first (it has an impact), then the severity's receivers.
    assert case["receivers"] == ["statuspage", "slack-alerts", "email-oncall"]


def test_an_alert_of_yours_replaces_the_pack_alert_of_its_name() -> None:
    mine = {"name": "HostHighCpuUsage", "expr": "node_load1 > 8", "severity": "warning", "summary": "load"}
    files = render(spec_with(alerts=[mine], alert_packs={"node": {"exclude": ["NodeExporterDown"]}}))
    pack = yaml.safe_load(files["prometheus/rules/_pack-node.rules.yml"])["groups"][0]["rules"]
    names = [r["alert"] for r in pack]
    assert "HostHighCpuUsage" not in names and "NodeExporterDown" not in names and "HostDiskSpaceLow" in names
    own = yaml.safe_load(files["prometheus/rules/_alerts.rules.yml"])["groups"][0]["rules"]
    assert own[0]["expr"] == "node_load1 > 8"


def test_custom_severities_route_and_escalate() -> None:
    spec = spec_with(alerts=[{**ALERT, "severity": "emergency"}])
    spec["routing"]["severities"]["emergency"] = {"receivers": ["pagerduty-oncall"], "group_wait": "0s"}
    spec["routing"]["escalation_severities"] = ["emergency", "critical"]
    files = render(spec)
    am = yaml.safe_load(files["alertmanager/alertmanager.yml"])
    route = next(r for r in am["route"]["routes"] if r.get("matchers") == ['severity="emergency"'])
    assert route["receiver"] == "pagerduty-oncall" and route["group_wait"] == "0s"
    stack = yaml.safe_load(files["prometheus/rules/stack.rules.yml"])["groups"]
    escalation = next(g for g in stack if g["name"] == "stackgen:escalation")["rules"][0]["expr"]
    firing = 'alertstate="firing", severity=~"emergency|critical", escalation_level=""'
    unsilenced = "unless ignoring (alertstate, stack, prometheus) (stackgen_alert_silenced == 1)"
    assert escalation == (
        f'max by (service, slo, team, severity, category, alertstate) (ALERTS{{{firing}, slo!=""}} {unsilenced})\n'
        f'or (ALERTS{{{firing}, slo=""}} {unsilenced})'
    )


def test_status_page_impact_values_reach_every_alert_with_an_impact() -> None:
    spec = spec_with()
    spec["routing"]["status_page"]["impact"] = {"outage": "2", "degraded": 1}
    files = render(spec)
    rules = yaml.safe_load(files["prometheus/rules/api/error-rate.rules.yml"])["groups"][0]["rules"]
    impacts = {r["alert"]: r["labels"].get("impact") for r in rules if "alert" in r}
    assert impacts["SLOBurnRate1h"] == "2" and impacts["SLOBurnRate3d"] == "1"
    stack = yaml.safe_load(files["prometheus/rules/stack.rules.yml"])["groups"][0]["rules"]
    assert next(r for r in stack if r["alert"] == "ServiceDown")["labels"]["impact"] == "2"
    am = yaml.safe_load(files["alertmanager/alertmanager.yml"])
    assert am["route"]["routes"][1]["matchers"] == ['impact=~"1|2"', 'escalation_level=""']


def test_services_without_slos_get_dashboards_log_alerts_and_service_down() -> None:
    spec = spec_with()
    spec["services"].append({"name": "worker", "team": "storefront", "jobs": ["api"]})
    files = render(spec)
    assert "grafana/dashboards/team-storefront/sg-svc-worker.json" in files
    loki = files["loki/rules/fake/logs.rules.yml"]
    assert 'service="worker"' in loki
    assert "service: worker" in files["prometheus/rules/stack.rules.yml"]


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        (lambda s: s.update(alerts=[{**ALERT, "name": "ServiceDown"}]), "alerts[0].name", "stackgen's own alerts"),
        (lambda s: s.update(alerts=[{**ALERT, "logql": "x"}]), "alerts[0]", "exactly one of expr"),
        (lambda s: s.update(alerts=[{**ALERT, "expr": "sum(x"}]), "alerts[0].expr", "PromQL does not parse"),
        (lambda s: s.update(alerts=[{**ALERT, "severity": "urgent"}]), "alerts[0].severity", "has no route"),
        (lambda s: s.update(alerts=[{**ALERT, "service": "nope"}]), "alerts[0].service", "is not defined"),
        (lambda s: s.update(alerts=[{**ALERT, "summary": "{{ range . }}"}]), "alerts[0].summary", "templates may"),
        (lambda s: s.update(alerts=[{**ALERT, "labels": {"tier": "x"}}]), "alerts[0].labels.tier", "set by stackgen"),
        (lambda s: s.update(alerts=[ALERT, ALERT]), "alerts[1].name", "duplicate alert name"),
        (
            lambda s: s.update(
                alerts=[
                    {
                        **ALERT,
                        "tests": [
                            {
                                "input_series": [{"series": 'queue_size{job="api"}', "values": "1 2 three"}],
                                "expect": [{"eval_time": "5m", "alerts": [{"value": 2}]}],
                            }
                        ],
                    }
                ]
            ),
            "alerts[0].tests[0].input_series[0].values",
            "not promtool series notation",
        ),
        (
            lambda s: s.update(
                alerts=[
                    {
                        **ALERT,
                        "tests": [
                            {
                                "input_series": [{"series": 'queue_size{job="api"}', "values": "200x10"}],
                                "expect": [{"eval_time": "5m", "alerts": [{"labels": {}}]}],
                            }
                        ],
                    }
                ]
            ),
            "alerts[0].tests[0].expect[0].alerts[0]",
            "give the value",
        ),
        (
            lambda s: s.update(alert_packs={"node": {"exclude": ["NoSuchAlert"]}}),
            "alert_packs.node.exclude[0]",
            "has no alert",
        ),
        (
            lambda s: s["routing"]["teams"].update(serach={"warning": ["slack-search"]}),
            "routing.teams.serach",
            "did you mean 'search'",
        ),
        (
            lambda s: s["receivers"][0].update(routing_key_file="grafana_admin_password"),
            "receivers[0].routing_key_file",
            "Grafana's admin password",
        ),
        (
            lambda s: s["receivers"][4].update(api_url_file="smtp_password"),
            "auth_password_file",
            "is also receiver slack-incidents's \\(api_url_file\\): give receiver email-oncall",
        ),
        (lambda s: s["routing"]["severities"].pop("info"), "routing.severities", "missing required key 'info'"),
        (lambda s: s.update(alert_packs={"redis": {}}), "alert_packs.redis", "does not run: add exporters.redis"),
        (
            lambda s: s["stack"].update(ports={"grafana": 9090}),
            "stack.ports.grafana",
            "port 9090 is also prometheus's",
        ),
        (
            lambda s: s["stack"].update(metrics_retention="15d"),
            "stack.metrics_retention",
            "shorter than the 30d period of SLO api/availability",
        ),
        (
            lambda s: s.update(alerts=[{**LOGQL_ALERT, "logql": 'sum(rate({service="api"} |= "x"))'}]),
            "alerts[0].logql",
            r"rate\(\.\.\.\) needs a range",
        ),
        (
            lambda s: s.update(alerts=[{**LOGQL_ALERT, "logql": 'sum(rate({app="api"} [5m])) > 1'}]),
            "alerts[0].logql",
            "stream label 'app' is set by no log agent",
        ),
        (
            lambda s: s.update(alerts=[{**LOGQL_ALERT, "logql": 'sum(rate({service="api"} [5m]) > 1'}]),
            "alerts[0].logql",
            "ends too early",
        ),
        (lambda s: s["services"][0]["slos"][1].update(objective=0.995), "objective", "objectives are percent"),
        (
            lambda s: next(r for r in s["receivers"] if r["name"] == "slack-search").update(
                api_url_file="slack_alerts_webhook_url"
            ),
            "api_url_file",
            r"also serves receiver slack-alerts \(#alerts\).*give #team-search its own webhook file",
        ),
        (
            lambda s: s["services"][0]["slos"][2]["sli"]["latency"].update(threshold=100, buckets=[100]),
            "sli.latency.threshold",
            r"thresholds are in seconds, did you mean 0\.1 \(100 ms\)\?",
        ),
        (
            lambda s: s["services"][0]["slos"][1].update(
                sli={"events": {"bad": "sum(rate(x_errors[{{.window}}]))", "total": "sum(rate(x[{{window}}]))"}}
            ),
            "sli.events.bad",
            r"Sloth's \{\{\.window\}\} is written \{\{window\}\}",
        ),
        (
            lambda s: s["services"][0]["slos"][1].update(
                alerting={"tiers": [{"severity": "page", "long_window": "45m", "burn_rate": 2}]}
            ),
            "alerting.tiers[0]",
            r"short_window 3m45s \(long_window / 12",
        ),
        (
            lambda s: s.update(scrape_jobs=[*s["scrape_jobs"], {"name": "prometheus", "targets": ["x:1"]}]),
            "scrape_jobs[3].name",
            "stack's own prometheus",
        ),
        (
            lambda s: s.update(
                scrape_jobs=[{**s["scrape_jobs"][0], "bearer_token_file": "api-token"}, *s["scrape_jobs"][1:]]
            ),
            "scrape_jobs[0].bearer_token_file",
            "plain http",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and not v.startswith(("alerts", "routing", "receivers", "scrape")) else None,
)
def test_bad_alerting_input_is_located(change: Any, where: str, message: str) -> None:
    import re

    spec = spec_with()
    change(spec)
    text = problems(spec)
    assert any(where in line and re.search(message, line) for line in text.splitlines()), text


def test_pack_files_are_valid_spec_alerts() -> None:
    """The packs are written in the spec's own format: they pass the schema's alert definition."""
    import json

    import jsonschema

    from stackgen.model.build import pack_alerts
    from stackgen.spec.loader import SCHEMA_PATH

    schema = json.loads(SCHEMA_PATH.read_text())
    validator = jsonschema.Draft202012Validator({"$defs": schema["$defs"], "$ref": "#/$defs/alert"})
    for pack in PACKS:
        for alert in pack_alerts(pack):
            errors = list(validator.iter_errors(alert))
            assert not errors, (pack, alert["name"], [e.message for e in errors])


def test_packs_directory_holds_exactly_the_known_packs() -> None:
    packs = Path(__file__).resolve().parent.parent / "stackgen/packs"
    assert sorted(p.stem for p in packs.glob("*.yaml")) == sorted(PACKS)


def test_for_zero_and_cri_json_sources_are_accepted() -> None:
    spec = spec_with(alerts=[{**ALERT, "for": "0s"}])
    spec["logs"]["sources"] = [{"name": "pods", "type": "file", "paths": ["/var/log/pods/*/*/*.log"], "format": "cri"}]
    files = render(spec)
    rule = yaml.safe_load(files["prometheus/rules/api/_alerts.rules.yml"])["groups"][0]["rules"][0]
    assert "for" not in rule  # fires at the first evaluation that finds it
    stages = yaml.safe_load(files["promtail/promtail.yml"])["scrape_configs"][0]["pipeline_stages"]
    assert [next(iter(s)) for s in stages[:3]] == ["cri", "json", "template"]


def test_a_latency_threshold_without_buckets_is_flagged_in_render_and_runbook(tmp_path: Path) -> None:
    import subprocess
    import sys

    spec = yaml.safe_load(DEFAULT_SPEC.read_text())
    del spec["services"][0]["slos"][2]["sli"]["latency"]["buckets"]
    path = tmp_path / "slos.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    args = [sys.executable, "-m", "stackgen", "render", "--spec", str(path), "--out", str(tmp_path / "out")]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in proc.stderr.splitlines() if "is unchecked" in line]
    assert len(notes) == 1 and "api/latency-list" in notes[0] and "stackgen check --prometheus" in notes[0]
    runbook = (tmp_path / "out/runbooks/api/latency-list.md").read_text()
    assert "`stackgen check --prometheus URL` does" in runbook
    assert "stackgen check" not in (tmp_path / "out/runbooks/api/latency-detail.md").read_text()
