"""alerts: and alert_packs: -> Alert (plain PromQL or LogQL alert rules with their tests)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from stackgen import alert_templates, logql, promql
from stackgen.model.base import BuilderBase, Path_, pairs
from stackgen.model.slos import RESERVED_LABELS
from stackgen.model.types import Alert, AlertCheck, AlertTest, ExpectedAlert, Service

# Alert names stackgen's own rules use: routing, inhibition and escalation key on them.
RESERVED_ALERT_NAMES = re.compile(
    r"^(Watchdog|ServiceDown|SLOMetricsAbsent|SLOErrorBudgetLow|SLOBurnRate[0-9].*|EscalationLevel[0-9]+|"
    r"PrometheusRuleEvaluationFailures|AlertmanagerNotificationsFailing|LogErrorRateHigh|AuthFailureSpike|"
    r"ApplicationPanic|DatabaseConnectionErrors)$"
)


def values_problem(values: str) -> str | None:
    for token in str(values).split():
        if not promql.SERIES_VALUE.match(token):
            return (
                f"{token!r} is not promtool series notation (e.g. '0+10x30', '1 1 0', '_x5', 'stale'; "
                "see promtool's unit-testing docs)"
            )
    return None


class AlertsBuilder(BuilderBase):
    def build_alerts(
        self,
        raw: list[dict[str, Any]],
        services: tuple[Service, ...],
        severities: tuple[str, ...],
        path: Path_ = ("alerts",),
        pack: str | None = None,
        pack_team: str | None = None,
        log_labels: set[str] | None = None,
    ) -> list[Alert]:
        log_labels = log_labels or set()
        by_name = {s.name: s for s in services}
        out = []
        for i, a in enumerate(raw):
            p: Path_ = (*path, i)
            if RESERVED_ALERT_NAMES.match(a["name"]):
                self.fail((*p, "name"), f"{a['name']!r} is the name of one of stackgen's own alerts; pick another")
            if ("expr" in a) == ("logql" in a):
                self.fail(p, "give exactly one of expr (PromQL, for Prometheus) or logql (for the Loki ruler)")
            engine = "loki" if "logql" in a else "prometheus"
            expr = str(a.get("expr") or a.get("logql") or "").strip()
            if engine == "prometheus":
                err = promql.parse_error(expr) or promql.regex_error(expr)
                if err:
                    self.fail((*p, "expr"), f"PromQL does not parse: {err}" if "RE2" not in err else err)
            else:
                for problem in logql.problems(expr, log_labels):
                    self.fail((*p, "logql"), f"LogQL: {problem}")
            self.check_severity(a["severity"], (*p, "severity"), severities)
            service = by_name.get(a.get("service", ""))
            if a.get("service") and service is None:
                self.fail((*p, "service"), f"service {a['service']!r} is not defined under services")
            team = a.get("team") or (service.team if service else pack_team)
            for key in a.get("labels", {}):
                if key in RESERVED_LABELS:
                    self.fail((*p, "labels", key), f"{key!r} is set by stackgen; pick another label name")
            for key in ("summary", "description"):
                err = alert_templates.problem(a.get(key, ""))
                if err:
                    self.fail((*p, key), err)
            tests = tuple(self.build_alert_tests(a, p, engine))
            out.append(
                Alert(
                    name=a["name"],
                    engine=engine,
                    expr=expr,
                    for_=self.duration(a.get("for"), (*p, "for"), 0, allow_zero=True),
                    severity=a["severity"],
                    category=a.get("category", "platform"),
                    service=a.get("service"),
                    team=team,
                    impact=a.get("impact"),
                    summary=a["summary"],
                    description=a.get("description", ""),
                    runbook_url=a.get("runbook_url"),
                    labels=pairs(a.get("labels")),
                    tests=tests,
                    pack=pack,
                )
            )
        return out

    def build_alert_tests(self, a: dict[str, Any], p: Path_, engine: str) -> list[AlertTest]:
        tests = []
        prints_value = any(alert_templates.uses_value(a.get(k, "")) for k in ("summary", "description"))
        for t, raw in enumerate(a.get("tests", [])):
            tp: Path_ = (*p, "tests", t)
            if engine != "prometheus":
                self.fail(tp, "promtool cannot run LogQL: tests are for expr (PromQL) alerts only")
                continue
            series = []
            for s, item in enumerate(raw["input_series"]):
                sp: Path_ = (*tp, "input_series", s)
                if not promql.is_vector_selector(item["series"]):
                    self.fail((*sp, "series"), 'must be a series such as node_load1{instance="a"}')
                err = values_problem(item["values"])
                if err:
                    self.fail((*sp, "values"), err)
                series.append((item["series"], str(item["values"])))
            checks = []
            for c, check in enumerate(raw["expect"]):
                cp: Path_ = (*tp, "expect", c)
                expected = []
                for e, alert in enumerate(check.get("alerts", [])):
                    if prints_value and "value" not in alert:
                        self.fail(
                            (*cp, "alerts", e),
                            "the summary or description prints {{ $value }}: give the value this alert has",
                        )
                    value = alert.get("value")
                    expected.append(
                        ExpectedAlert(
                            pairs({k: str(v) for k, v in alert.get("labels", {}).items()}),
                            Decimal(repr(value))
                            if isinstance(value, float)
                            else None
                            if value is None
                            else Decimal(value),
                        )
                    )
                checks.append(AlertCheck(self.duration(check["eval_time"], (*cp, "eval_time"), 0), tuple(expected)))
            tests.append(
                AlertTest(self.duration(raw.get("interval"), (*tp, "interval"), 60), tuple(series), tuple(checks))
            )
        return tests
