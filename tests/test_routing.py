"""Alert routing: amtool walks the generated tree for every case of the matrix; a few cases
are also written out by hand from the default spec, so the matrix generator is checked too."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from stackgen.model import build_model
from stackgen.render import render_all
from stackgen.render.alertmanager import expected_receivers
from stackgen.spec import load_spec_text
from tests.conftest import DEFAULT_SPEC, require_tool

pytestmark = pytest.mark.tools

# Who gets notified, read off slos.yaml by a person (not computed by stackgen).
HAND_CHECKED = [
    (
        {
            "alertname": "SLOBurnRate1h",
            "severity": "critical",
            "category": "slo",
            "tier": "page",
            "impact": "outage",
            "team": "storefront",
            "service": "api",
            "slo": "error-rate",
        },
        ["statuspage", "pagerduty-oncall", "slack-incidents", "email-oncall"],
    ),
    (
        {
            "alertname": "SLOBurnRate1d",
            "severity": "warning",
            "category": "slo",
            "tier": "ticket",
            "impact": "degraded",
            "team": "storefront",
            "service": "api",
            "slo": "error-rate",
        },
        ["statuspage", "slack-alerts", "email-oncall"],
    ),
    (
        {
            "alertname": "SLOBurnRate1d",
            "severity": "warning",
            "category": "slo",
            "tier": "ticket",
            "impact": "degraded",
            "team": "search",
            "service": "search",
            "slo": "latency",
        },
        ["statuspage", "slack-search"],
    ),
    (
        {
            "alertname": "SLOBurnRate6h",
            "severity": "critical",
            "category": "slo",
            "tier": "page",
            "impact": "outage",
            "team": "integrations",
            "service": "webhooks",
            "slo": "delivery",
        },
        ["statuspage", "opsgenie-integrations", "slack-incidents", "email-oncall"],
    ),
    (
        # A full outage: ServiceDown inhibits the service's SLO alerts, so it must reach the
        # status page itself.
        {
            "alertname": "ServiceDown",
            "severity": "critical",
            "category": "platform",
            "impact": "outage",
            "team": "storefront",
            "service": "api",
        },
        ["statuspage", "pagerduty-oncall", "slack-incidents", "email-oncall"],
    ),
    (
        {"alertname": "AuthFailureSpike", "severity": "critical", "category": "security", "team": "storefront"},
        ["pagerduty-security", "slack-security"],
    ),
    (
        {"alertname": "AuthFailureSpike", "severity": "warning", "category": "security", "team": "search"},
        ["slack-security"],
    ),
    (
        {"alertname": "SLOErrorBudgetLow", "severity": "info", "category": "budget", "team": "storefront"},
        ["slack-slo-reports"],
    ),
    (
        {"alertname": "LogErrorRateHigh", "severity": "info", "category": "logs", "team": "storefront"},
        ["slack-low-priority"],
    ),
    (
        {
            "alertname": "EscalationLevel2",
            "severity": "critical",
            "category": "slo",
            "tier": "page",
            "team": "storefront",
            "escalation_level": "2",
        },
        ["pagerduty-lead"],
    ),
    (
        {
            "alertname": "EscalationLevel3",
            "severity": "critical",
            "category": "platform",
            "team": "search",
            "escalation_level": "3",
        },
        ["email-eng-manager"],
    ),
    (
        {
            "alertname": "EscalationLevel4",
            "severity": "critical",
            "category": "slo",
            "tier": "page",
            "impact": "outage",
            "team": "integrations",
            "escalation_level": "4",
        },
        ["email-leadership"],
    ),
    ({"alertname": "Watchdog", "severity": "none", "category": "platform"}, ["deadmans-switch"]),
    ({"alertname": "SomethingUnlabelled"}, ["slack-low-priority"]),
]


def amtool_receivers(config: Path, labels: dict[str, str]) -> str:
    amtool = require_tool("amtool")
    proc = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={config}", *(f"{k}={v}" for k, v in labels.items())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc.stdout.strip()


@pytest.mark.parametrize(
    ("labels", "receivers"), HAND_CHECKED, ids=[c[0]["alertname"] + "/" + c[0].get("team", "") for c in HAND_CHECKED]
)
def test_hand_checked_routes(rendered: Path, default_model, labels: dict[str, str], receivers: list[str]) -> None:  # type: ignore[no-untyped-def]
    assert expected_receivers(default_model.routing, labels) == receivers
    assert amtool_receivers(rendered / "alertmanager/alertmanager.yml", labels) == ",".join(receivers)


def test_routing_matrix_passes_amtool(rendered: Path, default_model) -> None:  # type: ignore[no-untyped-def]
    amtool = require_tool("amtool")
    cases = yaml.safe_load((rendered / "alertmanager/routing-tests.yml").read_text())["cases"]
    teams = set(default_model.teams)
    assert len(cases) >= 3 * 5 * (len(teams) + 1) + 3 * (len(teams) + 1)  # severity x category x team + escalation
    failures = []
    for case in cases:
        proc = subprocess.run(
            [
                amtool,
                "config",
                "routes",
                "test",
                f"--config.file={rendered / 'alertmanager/alertmanager.yml'}",
                f"--verify.receivers={','.join(case['receivers'])}",
                *(f"{k}={v}" for k, v in case["labels"].items()),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if proc.returncode != 0:
            failures.append(f"{case['name']}: {proc.stdout.strip()}")
    assert not failures, failures


def test_amtool_verification_can_fail(rendered: Path) -> None:
    amtool = require_tool("amtool")
    proc = subprocess.run(
        [
            amtool,
            "config",
            "routes",
            "test",
            f"--config.file={rendered / 'alertmanager/alertmanager.yml'}",
            "--verify.receivers=slack-low-priority",
            "severity=critical",
            "category=slo",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0


def test_inhibition_and_business_hours(default_files: dict[str, str]) -> None:
    config = yaml.safe_load(default_files["alertmanager/alertmanager.yml"])
    rules = config["inhibit_rules"]
    page_over_ticket = next(r for r in rules if 'tier="page"' in r["source_matchers"])
    assert 'tier="ticket"' in page_over_ticket["target_matchers"]
    assert page_over_ticket["equal"] == ["service", "slo"]
    down = next(r for r in rules if 'alertname="ServiceDown"' in r["source_matchers"])
    assert down["target_matchers"] == ['category="slo"'] and down["equal"] == ["service"]
    interval = config["time_intervals"][0]
    assert interval["time_intervals"][0]["location"] == "Europe/Berlin"
    warning = next(r for r in config["route"]["routes"] if r.get("matchers") == ['severity="warning"'])
    assert warning["active_time_intervals"] == [interval["name"]]
    critical = next(r for r in config["route"]["routes"] if r.get("matchers") == ['severity="critical"'])
    assert "active_time_intervals" not in critical  # pages go out at night too
    assert (critical["group_wait"], critical["repeat_interval"]) == ("10s", "1h")


def test_receivers_read_secrets_from_files(default_files: dict[str, str]) -> None:
    config = yaml.safe_load(default_files["alertmanager/alertmanager.yml"])
    receivers = {r["name"]: r for r in config["receivers"]}
    assert (
        receivers["pagerduty-oncall"]["pagerduty_configs"][0]["routing_key_file"] == "/run/secrets/pagerduty_oncall_key"
    )
    assert receivers["slack-alerts"]["slack_configs"][0]["api_url_file"] == "/run/secrets/slack_alerts_webhook_url"
    assert (
        receivers["statuspage"]["webhook_configs"][0]["http_config"]["authorization"]["credentials_file"]
        == "/run/secrets/statuspage_token"
    )
    secrets_doc = default_files["secrets/README.md"]
    for name in ("pagerduty_oncall_key", "slack_alerts_webhook_url", "smtp_password", "statuspage_token"):
        assert f"`{name}`" in secrets_doc


def test_status_page_must_be_a_webhook() -> None:
    from stackgen.errors import SpecError

    text = DEFAULT_SPEC.read_text().replace(
        "status_page: {receiver: statuspage}", "status_page: {receiver: slack-alerts}"
    )
    with pytest.raises(SpecError, match="must be a webhook receiver"):
        build_model(load_spec_text(text))


def test_escalation_levels_must_wait_longer_each_time() -> None:
    from stackgen.errors import SpecError

    text = DEFAULT_SPEC.read_text().replace("{level: 3, after: 30m", "{level: 3, after: 10m")
    with pytest.raises(SpecError, match="must wait longer"):
        build_model(load_spec_text(text))


# business_hours judged as amtool judges it: each value stackgen accepts renders a config
# amtool accepts, and each it refuses, written into the rendered config by hand, amtool refuses.
BUSINESS_HOURS = [
    {"timezone": "Europe/Berlin", "weekdays": "monday:friday", "start": "09:00", "end": "18:00"},
    {"timezone": "America/Argentina/Buenos_Aires", "weekdays": "saturday", "start": "00:00", "end": "24:00"},
    {"timezone": "UTC", "weekdays": "monday:sunday", "start": "08:30", "end": "17:45"},
    {"timezone": "Europe/Berlim", "weekdays": "monday:friday", "start": "09:00", "end": "18:00"},
    {"timezone": "Mars/Olympus_Mons", "weekdays": "monday", "start": "09:00", "end": "18:00"},
    {"timezone": "Europe/Berlin", "weekdays": "friday:monday", "start": "09:00", "end": "18:00"},
    {"timezone": "Europe/Berlin", "weekdays": "sunday:saturday", "start": "09:00", "end": "18:00"},
    {"timezone": "Europe/Berlin", "weekdays": "monday", "start": "18:00", "end": "09:00"},
]


@pytest.mark.parametrize(
    "hours", BUSINESS_HOURS, ids=lambda h: f"{h['timezone']} {h['weekdays']} {h['start']}-{h['end']}"
)
def test_business_hours_agree_with_amtool(hours: dict[str, str], tmp_path: Path) -> None:
    from stackgen.errors import SpecError
    from stackgen.validate import config_for_amtool, tool_version

    amtool = require_tool("amtool")
    spec = yaml.safe_load(DEFAULT_SPEC.read_text())
    spec["routing"]["business_hours"] = hours
    try:
        files = render_all(build_model(load_spec_text(yaml.safe_dump(spec))))
        ours = True
    except SpecError:
        ours = False
        spec["routing"]["business_hours"] = BUSINESS_HOURS[0]
        files = render_all(build_model(load_spec_text(yaml.safe_dump(spec))))
    config = yaml.safe_load(files["alertmanager/alertmanager.yml"])
    interval = config["time_intervals"][0]["time_intervals"][0]
    interval.update(
        weekdays=[hours["weekdays"]],
        times=[{"start_time": hours["start"], "end_time": hours["end"]}],
        location=hours["timezone"],
    )
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    checked, _ = config_for_amtool(path, tool_version("amtool"), tmp_path)
    accepted = subprocess.run([amtool, "check-config", str(checked)], capture_output=True).returncode == 0
    assert ours == accepted, (
        f"stackgen {'accepts' if ours else 'refuses'}, amtool {'accepts' if accepted else 'refuses'}"
    )


def test_log_alerts_escalate_like_metric_alerts(rendered: Path, default_model) -> None:  # type: ignore[no-untyped-def]
    """Each Loki rule of an escalating severity has one rule per level: the same LogQL, held
    for the alert's `for` plus the level's delay, with the labels Alertmanager routes by; amtool
    sends each to that level's receivers. Other severities do not escalate."""
    from stackgen.durations import parse_duration

    groups = yaml.safe_load((rendered / "loki/rules/fake/logs.rules.yml").read_text())["groups"]
    rules = [r for g in groups for r in g["rules"]]
    alerts = [r for r in rules if "escalation_level" not in r["labels"]]
    escalations = [r for r in rules if "escalation_level" in r["labels"]]
    escalating = [r for r in alerts if r["labels"]["severity"] in default_model.routing.escalation_severities]
    assert escalating, "the default spec has critical log alerts (ApplicationPanic)"
    assert len(escalations) == len(escalating) * len(default_model.routing.escalation)
    for alert in escalating:
        mine = [
            r
            for r in escalations
            if r["labels"]["escalated_alertname"] == alert["alert"]
            and r["labels"].get("service") == alert["labels"].get("service")
        ]
        assert [r["labels"]["escalation_level"] for r in mine] == [
            str(level.level) for level in default_model.routing.escalation
        ]
        for rule, level in zip(mine, default_model.routing.escalation, strict=True):
            assert rule["expr"] == alert["expr"]
            assert parse_duration(rule["for"]) == parse_duration(alert.get("for", "0s")) + level.after
            assert rule["alert"] == f"EscalationLevel{level.level}"
            labels = {k: v for k, v in rule["labels"].items() if k != "escalated_alertname"}
            receivers = expected_receivers(default_model.routing, {"alertname": rule["alert"], **labels})
            assert amtool_receivers(
                rendered / "alertmanager/alertmanager.yml", {"alertname": rule["alert"], **labels}
            ) == (",".join(receivers))
            assert receivers == list(level.receivers)
