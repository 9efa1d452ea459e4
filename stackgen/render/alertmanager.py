"""alertmanager.yml (receivers, severity/category/team routing, escalation, inhibition) and
the routing test matrix that amtool checks it against."""

from __future__ import annotations

from typing import Any

from stackgen import conventions as cv
from stackgen import promql
from stackgen.durations import format_duration
from stackgen.model import Receiver, Routing, SeverityRoute, Spec
from stackgen.render.common import comment, header, yaml_document, yaml_text

BUSINESS_HOURS = "business-hours"
ROUTING_TESTS = "alertmanager/routing-tests.yml"


def _m(name: str, value: str, op: str = "=") -> str:
    """An Alertmanager matcher, always double-quoted (older amtool mis-parses some bare
    values). Its own syntax: only backslash and the quote are escaped."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{name}{op}"{escaped}"'


def _any_of(name: str, values: list[str] | tuple[str, ...]) -> str:
    """A matcher for any of the values, each matched literally (RE2, anchored)."""
    if len(values) == 1:
        return _m(name, values[0])
    return _m(name, "|".join(promql.quote_meta(v) for v in values), "=~")


def receiver_config(spec: Spec, receiver: Receiver) -> dict[str, Any]:
    stack = spec.stack

    def secret(key: str) -> str:
        return cv.secret_path(stack, str(receiver.get(key)), "alertmanager")

    out: dict[str, Any] = {"name": receiver.name}
    if receiver.type == "pagerduty":
        out["pagerduty_configs"] = [
            {
                "routing_key_file": secret("routing_key_file"),
                "severity": receiver.get("severity", "critical"),
                "send_resolved": True,
                "description": '{{ template "pagerduty.default.description" . }}',
                "details": {
                    "runbook": "{{ .CommonAnnotations.runbook_url }}",
                    "dashboard": "{{ .CommonAnnotations.dashboard_url }}",
                },
            }
        ]
    elif receiver.type == "slack":
        out["slack_configs"] = [
            {
                "api_url_file": secret("api_url_file"),
                "channel": receiver.get("channel"),
                "send_resolved": True,
                "title": '{{ template "slack.default.title" . }}',
                "text": "{{ range .Alerts }}*{{ .Annotations.summary }}*\n{{ .Annotations.description }}\n"
                "Runbook: {{ .Annotations.runbook_url }}\n{{ end }}",
            }
        ]
    elif receiver.type == "email":
        config: dict[str, Any] = {
            "to": receiver.get("to"),
            "from": receiver.get("from"),
            "smarthost": receiver.get("smarthost"),
            "send_resolved": True,
        }
        if receiver.get("auth_username"):
            config["auth_username"] = receiver.get("auth_username")
        if receiver.get("auth_password_file"):
            config["auth_password_file"] = secret("auth_password_file")
        out["email_configs"] = [config]
    elif receiver.type == "opsgenie":
        config = {"api_key_file": secret("api_key_file"), "send_resolved": True}
        if receiver.get("team"):
            config["responders"] = [{"name": receiver.get("team"), "type": "team"}]
        out["opsgenie_configs"] = [config]
    else:
        config = {"url": receiver.get("url"), "send_resolved": receiver.get("send_resolved", True)}
        if receiver.get("timeout"):
            # Alertmanager 0.28+ (the stack runs 0.34); without it a slow endpoint holds the
            # notification until the group interval ends.
            config["timeout"] = receiver.get("timeout")
        if receiver.get("credentials_file"):
            config["http_config"] = {
                "authorization": {"type": "Bearer", "credentials_file": secret("credentials_file")}
            }
        out["webhook_configs"] = [config]
    return out


def _fan_out(receivers: tuple[str, ...]) -> dict[str, Any]:
    """One route that notifies every receiver: children matching everything, `continue` on all
    but the last (a route has a single receiver)."""
    if len(receivers) == 1:
        return {"receiver": receivers[0]}
    return {
        "receiver": receivers[0],
        "routes": [
            {"receiver": name, **({"continue": True} if i < len(receivers) - 1 else {})}
            for i, name in enumerate(receivers)
        ],
    }


def _severity_route(route: SeverityRoute, receivers: tuple[str, ...], routing: Routing) -> dict[str, Any]:
    node: dict[str, Any] = {"matchers": [_m("severity", route.severity)]}
    node.update(_fan_out(receivers))
    node["group_wait"] = format_duration(route.group_wait) if route.group_wait else "0s"
    node["group_interval"] = format_duration(route.group_interval)
    node["repeat_interval"] = format_duration(route.repeat_interval)
    if route.business_hours_only and routing.business_hours:
        node["active_time_intervals"] = [BUSINESS_HOURS]
    return node


def _override_routes(
    routing: Routing,
    match: tuple[tuple[str, str], ...],
    per_severity: tuple[tuple[str, tuple[str, ...]], ...],
) -> dict[str, Any]:
    sevs = [s for s, _ in per_severity]
    matcher = _any_of("severity", sevs)
    return {
        "matchers": [*(_m(label, value) for label, value in match), matcher],
        "routes": [_severity_route(routing.severity(sev), receivers, routing) for sev, receivers in per_severity],
    }


def route_tree(spec: Spec) -> dict[str, Any]:
    routing = spec.routing
    routes: list[dict[str, Any]] = []
    if routing.watchdog_receiver:
        routes.append(
            {
                "matchers": [_m("alertname", cv.ALERT_WATCHDOG)],
                "receiver": routing.watchdog_receiver,
                "group_wait": "0s",
                "group_interval": "1m",
                "repeat_interval": format_duration(routing.watchdog_repeat),
            }
        )
    if routing.status_page_receiver:
        impacts = [value for _, value in routing.impact_values]
        routes.append(
            {
                "matchers": [_any_of("impact", impacts), 'escalation_level=""'],
                "receiver": routing.status_page_receiver,
                "group_by": ["service", "slo", "impact"],
                "continue": True,
            }
        )
    for level in routing.escalation:
        node = {
            "matchers": [_m("escalation_level", str(level.level))],
            **_fan_out(level.receivers),
            "group_wait": "0s",
            "repeat_interval": format_duration(routing.severity("critical").repeat_interval),
        }
        routes.append(node)
    for match, per_severity in routing.label_routes:
        routes.append(_override_routes(routing, match, per_severity))
    for category, per_severity in routing.categories:
        routes.append(_override_routes(routing, (("category", category),), per_severity))
    for team, per_severity in routing.teams:
        routes.append(_override_routes(routing, (("team", team),), per_severity))
    for sev in routing.severities:
        routes.append(_severity_route(sev, sev.receivers, routing))
    return {
        "receiver": routing.default_receiver,
        "group_by": list(routing.group_by),
        "group_wait": "30s",
        "group_interval": "5m",
        "repeat_interval": "12h",
        "routes": routes,
    }


def expected_receivers(routing: Routing, labels: dict[str, str]) -> list[str]:
    """Who is notified for an alert with these labels, from the spec's precedence rules
    (watchdog; status page; escalation level; category; team; severity; default).

    Written independently of route_tree() so that amtool checks one against the other.
    """
    if labels.get("alertname") == cv.ALERT_WATCHDOG and routing.watchdog_receiver:
        return [routing.watchdog_receiver]
    out: list[str] = []
    if (
        routing.status_page_receiver
        and labels.get("impact") in {value for _, value in routing.impact_values}
        and not labels.get("escalation_level")
    ):
        out.append(routing.status_page_receiver)
    level = labels.get("escalation_level")
    if level:
        match = [lv for lv in routing.escalation if str(lv.level) == level]
        return out + (list(match[0].receivers) if match else [routing.default_receiver])
    severity = labels.get("severity", "")
    for matchers, per_severity in routing.label_routes:
        if all(labels.get(k) == v for k, v in matchers) and severity in dict(per_severity):
            return out + list(dict(per_severity)[severity])
    for scope, label in ((routing.categories, "category"), (routing.teams, "team")):
        for value, per_severity in scope:
            if labels.get(label) == value and severity in dict(per_severity):
                return out + list(dict(per_severity)[severity])
    if severity in routing.severity_names:
        return out + list(routing.severity(severity).receivers)
    return [*out, routing.default_receiver]


def routing_cases(spec: Spec) -> list[dict[str, Any]]:
    """The test matrix: every severity x category x team, each escalation level, the watchdog,
    ServiceDown and every plain alert with an impact (the status page)."""
    cases: list[dict[str, Any]] = []
    teams = [*list(spec.teams), "unowned"]
    routing = spec.routing
    for severity in routing.severity_names:
        for category in spec.categories:
            for team in teams:
                labels = {
                    "alertname": "StackgenRoutingTest",
                    "severity": severity,
                    "category": category,
                    "team": team,
                    "service": "svc",
                }
                if category == "slo" and severity in ("critical", "warning"):
                    labels["tier"] = "page" if severity == "critical" else "ticket"
                    labels["impact"] = routing.impact("outage" if severity == "critical" else "degraded")
                cases.append({"name": f"{severity} {category} alert of team {team}", "labels": labels})
    for match, per_severity in routing.label_routes:
        for severity, _ in per_severity:
            labels = {"alertname": "StackgenRoutingTest", "severity": severity, "category": "slo", **dict(match)}
            shown = ", ".join(f"{k}={v}" for k, v in match)
            cases.append({"name": f"{severity} alert with {shown}", "labels": labels})
            cases.append(
                {
                    "name": f"{severity} alert with {shown} but another {match[0][0]}",
                    "labels": {**labels, match[0][0]: match[0][1] + "-other"},
                }
            )
    for level in spec.routing.escalation:
        for team in teams:
            cases.append(
                {
                    "name": f"escalation level {level.level} of a page for team {team}",
                    "labels": {
                        "alertname": f"EscalationLevel{level.level}",
                        "severity": "critical",
                        "category": "slo",
                        "tier": "page",
                        "team": team,
                        "impact": routing.impact("outage"),
                        "escalation_level": str(level.level),
                    },
                }
            )
    for service in spec.services:
        if service.jobs:
            down = {"impact": routing.impact("outage")} if service.status_page else {}
            cases.append(
                {
                    "name": f"{cv.ALERT_SERVICE_DOWN} of {service.name}",
                    "labels": {
                        "alertname": cv.ALERT_SERVICE_DOWN,
                        "severity": "critical",
                        "category": "platform",
                        "service": service.name,
                        "team": service.team,
                        **down,
                    },
                }
            )
    for alert in spec.alerts:
        if alert.impact or alert.pack is None:
            labels = {"alertname": alert.name, "severity": alert.severity, "category": alert.category}
            labels.update({k: v for k, v in (("service", alert.service), ("team", alert.team)) if v})
            if alert.impact:
                labels["impact"] = routing.impact(alert.impact)
            cases.append({"name": f"plain alert {alert.name}", "labels": labels})
    cases.append(
        {
            "name": "watchdog",
            "labels": {"alertname": cv.ALERT_WATCHDOG, "severity": "none", "category": "platform"},
        }
    )
    cases.append({"name": "alert without severity", "labels": {"alertname": "Unlabelled"}})
    for case in cases:
        case["receivers"] = expected_receivers(spec.routing, case["labels"])
    return cases


def inhibit_rules() -> list[tuple[str, dict[str, Any]]]:
    return [
        (
            "A firing page-tier burn alert silences the ticket-tier alerts of the same SLO.",
            {
                "source_matchers": [_m("category", "slo"), _m("tier", "page")],
                "target_matchers": [_m("category", "slo"), _m("tier", "ticket")],
                "equal": ["service", "slo"],
            },
        ),
        (
            "A service that is down gets one page, not one per SLO.",
            {
                "source_matchers": [_m("alertname", cv.ALERT_SERVICE_DOWN)],
                "target_matchers": [_m("category", "slo")],
                "equal": ["service"],
            },
        ),
    ]


def routing_summary(spec: Spec) -> str:
    """A plain-text table of who gets notified, for the file's readers."""
    routing = spec.routing
    lines = ["Who is notified (first match wins; the status page also gets every alert with an impact label):"]
    if routing.watchdog_receiver:
        lines.append(f"  Watchdog -> {routing.watchdog_receiver} (dead-man's switch)")
    for level in routing.escalation:
        lines.append(
            f"  critical still firing after {format_duration(level.after)} -> level {level.level}: "
            f"{', '.join(level.receivers)}"
        )
    for match, per in routing.label_routes:
        shown = " ".join(f"{k}={v}" for k, v in match)
        for sev, receivers in per:
            lines.append(f"  {shown} severity={sev} -> {', '.join(receivers)}")
    for category, per in routing.categories:
        for sev, receivers in per:
            lines.append(f"  category={category} severity={sev} -> {', '.join(receivers)}")
    for team, per in routing.teams:
        for sev, receivers in per:
            lines.append(f"  team={team} severity={sev} -> {', '.join(receivers)}")
    for sev_route in routing.severities:
        hours = " (business hours only)" if sev_route.business_hours_only and routing.business_hours else ""
        lines.append(f"  severity={sev_route.severity} -> {', '.join(sev_route.receivers)}{hours}")
    lines.append(f"  anything else -> {routing.default_receiver}")
    return "\n".join(lines)


def render(spec: Spec) -> dict[str, str]:
    routing = spec.routing
    sections: list[tuple[str | None, dict[str, Any]]] = []
    emails = [r for r in spec.receivers if r.type == "email"]
    if emails:
        sections.append(
            (
                "SMTP defaults; each email receiver sets its own smarthost and sender.",
                {"global": {"smtp_require_tls": True}},
            )
        )
    if routing.business_hours:
        bh = routing.business_hours
        sections.append(
            (
                "Business hours: routes marked business_hours_only notify only inside them.",
                {
                    "time_intervals": [
                        {
                            "name": BUSINESS_HOURS,
                            "time_intervals": [
                                {
                                    "weekdays": [bh.weekdays],
                                    "times": [{"start_time": bh.start, "end_time": bh.end}],
                                    "location": bh.timezone,
                                }
                            ],
                        }
                    ]
                },
            )
        )
    sections.append((routing_summary(spec), {"route": route_tree(spec)}))
    sections.append(
        (
            "Inhibition: " + " ".join(note for note, _ in inhibit_rules()),
            {"inhibit_rules": [rule for _, rule in inhibit_rules()]},
        )
    )
    sections.append(
        (
            "Receivers. Secrets are read from files at run time (see secrets/README.md); none is written here.",
            {"receivers": [receiver_config(spec, r) for r in spec.receivers]},
        )
    )
    head = header(
        spec.source_file,
        f"Alertmanager for stack {spec.stack.name}. Routing is tested by "
        f"{ROUTING_TESTS.split('/')[-1]} (amtool config routes test).",
    )
    tests_head = header(
        spec.source_file,
        "Routing test matrix: for each label set, the receivers the spec "
        "says must be notified, in order. `stackgen validate` and `make test` "
        "run each through `amtool config routes test --verify.receivers`.",
    )
    return {
        "alertmanager/alertmanager.yml": yaml_document(head, sections),
        ROUTING_TESTS: tests_head + comment("") + yaml_text({"cases": routing_cases(spec)}),
    }
