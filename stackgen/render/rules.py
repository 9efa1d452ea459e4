"""Prometheus rule files: SLO recording and burn-rate alert rules per service, stack rules."""

from __future__ import annotations

import re
from typing import Any, TypeVar

from stackgen import conventions as cv
from stackgen import promql, slo_math
from stackgen.durations import format_duration
from stackgen.model import SLO, Alert, Routing, Service, Spec, Stack, Tier
from stackgen.render import test_shapes
from stackgen.render.common import header, yaml_list
from stackgen.render.sli import bad_and_total, sum_by
from stackgen.slo_math import num

# What an escalation is about: "for api / error-rate", leaving out labels the source lacks.
# After ESCALATED, which names the SLO already: the service of a plain alert.
ESCALATION_SUBJECT_PLAIN = "{{ if not $labels.slo }}{{ with $labels.service }} for {{ . }}{{ end }}{{ end }}"
SERVICE_DOWN_FOR = 120
T = TypeVar("T")
MAX_GROUP_RULES = 20  # Mimir's default per-group cap; Prometheus has none, but big groups hurt.
ABSENT_FOR = 600
BUDGET_LOW_FOR = 900


def template_safe(text: str) -> str:
    """User text inside an annotation, escaped so Prometheus' templating prints it verbatim."""
    return re.sub(r"\{\{|\}\}", lambda m: '{{ "' + m.group(0) + '" }}', text)


def window_range(window: int) -> str:
    """Range for sum_over_time over base samples: one second short of the window, so it holds
    exactly window/B samples in Prometheus 2 (closed ranges) and 3 (left-open ranges)."""
    return format_duration(window - 1)


def group_text(slo: SLO) -> str:
    """' (route={{ $labels.route }})' in alert text of a grouped SLO: which group burns."""
    if not slo.group_by:
        return ""
    return " (" + ", ".join(f"{label}={{{{ $labels.{label} }}}}" for label in slo.group_by) + ")"


def slo_labels(slo: SLO) -> dict[str, str]:
    return {cv.LABEL_SERVICE: slo.service, cv.LABEL_SLO: slo.name, cv.LABEL_TEAM: slo.team}


def budget_query(slo: SLO) -> str:
    selector = cv.BUDGET_REMAINING + cv.slo_matchers(slo)
    shown = "{{ . | first | value | humanizePercentage }}{{ else }}unknown{{ end }}"
    if not slo.group_by:
        return "{{ with query `" + selector + "` }}" + shown
    # The alert's own group: its label values go into the query (Go's %q quotes like PromQL).
    selector = selector[:-1] + "".join(f", {label}=%q" for label in slo.group_by) + "}"
    values = " ".join(f"$labels.{label}" for label in slo.group_by)
    return "{{ with printf `" + selector + "` " + values + " | query }}" + shown


def recording_rules(spec: Spec, slo: SLO) -> list[dict[str, Any]]:
    stack = spec.stack
    bad, total = bad_and_total(slo.sli, stack.base_window, slo.group_by)
    sel = cv.slo_matchers(slo)
    total_of = sum_by(slo.group_by)  # every window rule: one series, or one per group
    rules: list[dict[str, Any]] = [
        {"record": cv.bad_rate(stack), "expr": bad, "labels": slo_labels(slo)},
        {"record": cv.total_rate(stack), "expr": total, "labels": slo_labels(slo)},
    ]
    rolled = slo.rollup_windows(stack.base_window)
    if rolled:
        hour = window_range(slo_math.ROLLUP_STEP)
        for record, source in (
            (cv.bad_rollup(stack), cv.bad_rate(stack)),
            (cv.total_rollup(stack), cv.total_rate(stack)),
        ):
            # The last hour's base samples, summed: windows of whole hours add up one per hour.
            rules.append(
                {
                    "record": record,
                    "expr": f"{total_of}(sum_over_time({source}{sel}[{hour}]))",
                    "labels": slo_labels(slo),
                }
            )
    if slo.period in rolled:
        # Both base rates tagged with the hour they belong to, numbered by the hour mark that
        # ends it (mod 24): a sample on a mark closes the hour before, as the rollup read at
        # that mark holds it. The period adds this hour so far to the rollups. One rule for
        # both: an SLO's rules fit Mimir's 20 per group.
        events = cv.LABEL_EVENTS

        def this_eval(series: str) -> str:
            return f"{total_of}(sum_over_time({series}{sel}[{window_range(stack.base_window)}]))"

        rules.append(
            {
                "record": cv.events_by_hour(stack),
                # This evaluation's base samples only (a range one second short of B, not the
                # 5m lookback, which would count a sample again when the next one is missing),
                # summed: one series per group even while a renamed team's old series lingers.
                "expr": f'(\n  label_replace({this_eval(cv.bad_rate(stack))}, "{events}", "bad", "", "")\nor\n'
                f'  label_replace({this_eval(cv.total_rate(stack))}, "{events}", "total", "", "")\n)\n'
                f"* on () group_left ({cv.LABEL_HOUR})\n"
                f'count_values("{cv.LABEL_HOUR}", ceil(vector(time()) / {slo_math.ROLLUP_STEP}) % 24)',
                "labels": slo_labels(slo),
            }
        )
    for window in slo.windows:
        if window in rolled:
            # One rollup per hour of the window, read at the hours' marks (a subquery step is
            # aligned to the clock): the window ends at the last whole hour.
            rng = f"{window_range(window)}:{format_duration(slo_math.ROLLUP_STEP)}"
            bad_series, total_series = cv.bad_rollup(stack), cv.total_rollup(stack)
        else:
            rng = window_range(window)
            bad_series, total_series = cv.bad_rate(stack), cv.total_rate(stack)
        bad_sum = f"{total_of}(sum_over_time({bad_series}{sel}[{rng}]))"
        total_sum = f"{total_of}(sum_over_time({total_series}{sel}[{rng}]))"
        if window == slo.period and window in rolled:
            bad_sum = _to_the_minute(bad_sum, "bad", stack, slo)
            total_sum = _to_the_minute(total_sum, "total", stack, slo)
        rules.append(
            {
                "record": cv.error_ratio(window),
                # Ratio of sums; "> 0" drops quiet windows (no NaN, no page). sum() drops the
                # labels the series carry, so renaming the team leaves one series, not two.
                "expr": f"{bad_sum}\n/\n({total_sum} > 0)",
                # Labels repeat the series' own: they make each rule distinct to promtool's linter.
                "labels": slo_labels(slo),
            }
        )
    rules.append(
        {
            "record": cv.BUDGET_REMAINING,
            "expr": f"1 - {cv.error_ratio(slo.period)}{sel} / {num(slo.budget)}",
            "labels": slo_labels(slo),
        }
    )
    return rules


def _to_the_minute(rolled_sum: str, events: str, stack: Stack, slo: SLO) -> str:
    """The period's sum from the hourly rollups (which end at the last hour mark), plus the
    base samples of this hour so far, minus those of the same minutes one period ago (which
    the oldest rollup holds but the period no longer does): the exact sum over the period.
    Each part is 0, not empty, when it has no samples (before the first hour mark, on the hour,
    before a period of data), so the budget is exact from the first base sample on."""
    sel = cv.slo_matchers(slo)[:-1] + f', {cv.LABEL_EVENTS}="{events}"}}'
    by_hour = cv.events_by_hour(stack)
    hour = cv.LABEL_HOUR
    by = ", ".join((*slo.group_by, hour))
    total_of = sum_by(slo.group_by)
    step, last_hour = slo_math.ROLLUP_STEP, window_range(slo_math.ROLLUP_STEP)

    def hour_id(now: str) -> str:  # the number of the hour `now` is in, as the tags count
        return f'count_values("{hour}", (floor({now} / {step}) + 1) % 24)'

    this_hour = (
        f"{total_of}(sum by ({by}) (sum_over_time({by_hour}{sel}[{last_hour}]))"
        f" and on ({hour}) {hour_id('vector(time())')})"
    )
    period_ago = (
        f"{total_of}(sum by ({by}) (sum_over_time({by_hour}{sel}[{last_hour}] offset {format_duration(slo.period)}))"
        f" and on ({hour}) {hour_id(f'(vector(time()) - {slo.period})')})"
    )
    # 0 for each group, read from one sample per group (not from the rollups again).
    base = cv.bad_rate(stack) if events == "bad" else cv.total_rate(stack)
    zero = f"{total_of}({base}{cv.slo_matchers(slo)}) * 0" if slo.group_by else "vector(0)"
    return f"(\n  ({rolled_sum} or {zero})\n  + ({this_hour} or {zero})\n  - ({period_ago} or {zero})\n)"


def burn_alert(stack: Stack, routing: Routing, slo: SLO, tier: Tier, extra_labels: dict[str, str]) -> dict[str, Any]:
    sel = cv.slo_matchers(slo)
    b = num(slo.budget)
    r = num(tier.burn_rate)
    share = slo_math.tidy(tier.budget_share * 100)
    period = format_duration(slo.period)
    description = (
        f"The {slo.name} SLO of {slo.service} (objective {slo.objective}% over {period}) is burning its "
        f'error budget {{{{ $value | printf "%.1f" }}}}x as fast as sustainable over the last {tier.short}, '
        f"and faster than {r}x over the last {tier.long} too. At {r}x, {num(share)}% of the {period} budget is "
        f"gone within {tier.long}. Budget left: {budget_query(slo)}."
    )
    if slo.description:
        description += " SLO: " + template_safe(slo.description)
    return {
        "alert": cv.burn_alert_name(tier),
        # $value is the short-window burn rate: it says whether the burn is still going on.
        "expr": f"(\n  {cv.error_ratio(tier.short_window)}{sel} / {b} > {r}\nand\n"
        f"  {cv.error_ratio(tier.long_window)}{sel} / {b} > {r}\n)",
        "labels": {
            **slo_labels(slo),
            "severity": tier.alert_severity,
            "tier": tier.severity,
            "category": "slo",
            "long_window": tier.long,
            "short_window": tier.short,
            # The status page hears of it (unless the service keeps off it).
            **({"impact": routing.impact(tier.impact)} if slo.status_page else {}),
            **extra_labels,
        },
        "annotations": {
            "summary": f"{slo.service} {slo.name}{group_text(slo)}: error budget burning over {r}x "
            f"({tier.long}/{tier.short} windows, {tier.severity})",
            "description": description,
            "runbook_url": cv.runbook_url(stack, slo),
            "dashboard_url": cv.dashboard_url(stack, slo),
        },
    }


def alert_rules(spec: Spec, service: Service, slo: SLO) -> list[dict[str, Any]]:
    # Prometheus templates alert labels too: user values are escaped to print verbatim.
    extra = {k: template_safe(v) for k, v in service.labels}
    extra.update({k: template_safe(v) for k, v in slo.labels})
    sel = cv.slo_matchers(slo)
    rules = [burn_alert(spec.stack, spec.routing, slo, tier, extra) for tier in slo.tiers]
    watched = cv.bad_rate(spec.stack) if slo.sli.kind == "raw" else cv.total_rate(spec.stack)
    rules.append(
        {
            "alert": cv.ALERT_ABSENT,
            "expr": f"absent({watched}{sel})",
            "for": format_duration(ABSENT_FOR),
            "labels": {**slo_labels(slo), "severity": "warning", "category": "slo", **extra},
            "annotations": {
                "summary": f"{slo.service} {slo.name}: SLI metrics are missing, the SLO is not being evaluated",
                "description": f"No {watched} series for {slo.service}/{slo.name} for {format_duration(ABSENT_FOR)}: "
                f"the SLI's source metrics vanished (target down, renamed metric, broken "
                f"relabelling). Burn-rate alerts for this SLO cannot fire until it is back.",
                "runbook_url": cv.runbook_url(spec.stack, slo),
                "dashboard_url": cv.dashboard_url(spec.stack, slo),
            },
        }
    )
    rules.append(
        {
            "alert": cv.ALERT_BUDGET_LOW,
            "expr": f"{cv.BUDGET_REMAINING}{sel} < {num(slo.budget_low)}",
            "for": format_duration(BUDGET_LOW_FOR),
            "labels": {**slo_labels(slo), "severity": "info", "category": "budget", **extra},
            "annotations": {
                "summary": f"{slo.service} {slo.name}{group_text(slo)}: less than {num(slo.budget_low * 100)}% "
                "of the error budget left",
                "description": f"{{{{ $value | humanizePercentage }}}} of the {format_duration(slo.period)} "
                f"error budget is left. Consider slowing risky changes to {slo.service}.",
                "runbook_url": cv.runbook_url(spec.stack, slo),
                "dashboard_url": cv.dashboard_url(spec.stack, slo),
            },
        }
    )
    if slo.group_by:
        labels = ", ".join(slo.group_by)
        rules.append(
            {
                "alert": cv.ALERT_GROUPS_OVER_LIMIT,
                "expr": f"count({cv.total_rate(spec.stack)}{sel}) > {slo.max_groups}",
                "for": format_duration(BUDGET_LOW_FOR),
                "labels": {**slo_labels(slo), "severity": "warning", "category": "slo", **extra},
                "annotations": {
                    "summary": f"{slo.service} {slo.name}: {{{{ $value }}}} groups by {labels}, more than the "
                    f"{slo.max_groups} the spec expects",
                    "description": f"Each value of {labels} is its own SLO: its own series, windows and alerts. "
                    f"Every group is still evaluated, but rule cost and alert volume grow with them. If the "
                    f"label carries unbounded values (ids, raw paths), aggregate it away in the SLI; if the "
                    f"groups are real, raise max_groups.",
                    "runbook_url": cv.runbook_url(spec.stack, slo),
                    "dashboard_url": cv.dashboard_url(spec.stack, slo),
                },
            }
        )
    return rules


def info_rules(slo: SLO) -> list[dict[str, Any]]:
    """Series dashboards read: burn rates, objective, budget, period, alert thresholds."""
    sel = cv.slo_matchers(slo)
    labels = slo_labels(slo)
    rules: list[dict[str, Any]] = [
        {
            "record": cv.burn_rate(w),
            "expr": f"{cv.error_ratio(w)}{sel} / {num(slo.budget)}",
            "labels": labels,
        }
        for w in slo.windows
    ]
    rules.append({"record": cv.SLI_PERIOD, "expr": f"1 - {cv.error_ratio(slo.period)}{sel}", "labels": labels})
    rules.append({"record": cv.OBJECTIVE, "expr": f"vector({num(slo.objective / 100)})", "labels": labels})
    rules.append({"record": cv.ERROR_BUDGET, "expr": f"vector({num(slo.budget)})", "labels": labels})
    rules.append({"record": cv.PERIOD, "expr": f"vector({slo.period})", "labels": labels})
    for tier in slo.tiers:
        rules.append(
            {
                "record": cv.TIER_THRESHOLD,
                "expr": f"vector({num(tier.burn_rate)})",
                "labels": {
                    **labels,
                    "tier": tier.severity,
                    "long_window": tier.long,
                    "short_window": tier.short,
                },
            }
        )
    return rules


def slo_header(spec: Spec, slo: SLO) -> str:
    base = format_duration(spec.stack.base_window)
    tiers = ", ".join(f"{t.severity} {t.long}/{t.short} > {num(t.burn_rate)}x" for t in slo.tiers)
    return (
        f"SLO {slo.service}/{slo.name}: {slo.objective}% over {format_duration(slo.period)} "
        f"(error budget {num(slo.budget)}), SLI kind {slo.sli.kind}. Bad and total event rates are "
        f"recorded every {base} over {base}; every window is a ratio of sums of those two series. "
        f"Ranges are one second short of each window (e.g. [59m59s] for 1h) so they hold exactly "
        f"window/{base} base samples in Prometheus 2 (closed ranges) and 3 (left-open ranges). "
        f"Alerts: {tiers}." + rollup_note(spec, slo) + group_note(slo)
    )


def group_note(slo: SLO) -> str:
    if not slo.group_by:
        return ""
    return (
        f" One SLO per value of {', '.join(slo.group_by)}: every series and alert keeps it; more than "
        f"{slo.max_groups} groups fire {cv.ALERT_GROUPS_OVER_LIMIT}."
    )


def rollup_note(spec: Spec, slo: SLO) -> str:
    rolled = sorted(slo.rollup_windows(spec.stack.base_window))
    if not rolled:
        return ""
    names = ", ".join(format_duration(w) for w in rolled)
    return (
        f" The {names} windows add up hourly sums of the base series (*{cv.ROLLUP_SUFFIX}), read at each "
        "whole hour: they cost one sample per hour of window instead of one per "
        f"{format_duration(spec.stack.base_window)}, and end at the last whole hour, so a ticket may lag by up "
        "to 1h. The period (the budget) is exact to the minute: it adds this hour so far from the base rates "
        f"tagged with their hour (*{cv.EVENTS_BY_HOUR.format(base='')[len('slo:sli_events:rate') :]}) and takes off "
        "the same minutes one period ago. Page windows are exact."
    )


def slo_rule_count(spec: Spec, slo: SLO) -> int:
    """How many rules recording_rules and alert_rules make for the SLO, without making them:
    base rates (2), hourly rollups (2, when a window is read from them, and the hour-tagged
    base rates when the period is), a ratio per window,
    the budget; a burn alert per tier, the no-data and budget alerts, the group limit alert."""
    windows = slo.rollup_windows(spec.stack.base_window)
    rolled = (2 if windows else 0) + (1 if slo.period in windows else 0)
    return 2 + rolled + len(slo.windows) + 1 + len(slo.tiers) + 2 + (1 if slo.group_by else 0)


def slo_group_names(spec: Spec, slo: SLO) -> list[str]:
    """The names of the SLO's rule groups (what unit tests list), without rendering them."""
    name = f"slo:{slo.service}:{slo.name}"
    return [name] if slo_rule_count(spec, slo) <= MAX_GROUP_RULES else [f"{name}:sli", f"{name}:alerts"]


def slo_rule_groups(spec: Spec, service: Service, slo: SLO) -> list[tuple[str | None, dict[str, Any]]]:
    """The SLO's recordings and alerts, in one group where they fit (alerts then see this
    cycle's ratios: rules in a group run in order)."""
    recordings = recording_rules(spec, slo)
    alerts = alert_rules(spec, service, slo)
    assert len(recordings) + len(alerts) == slo_rule_count(spec, slo), "slo_rule_count is out of date"
    names = slo_group_names(spec, slo)
    if len(names) == 1:
        return [(slo_header(spec, slo), {"name": names[0], "rules": recordings + alerts})]
    sli, alerting = names
    return [
        (slo_header(spec, slo), {"name": sli, "rules": recordings}),
        ("Alerts read the ratios recorded above (up to one evaluation later).", {"name": alerting, "rules": alerts}),
    ]


def slo_rules(spec: Spec, service: Service, slo: SLO) -> str:
    groups = slo_rule_groups(spec, service, slo)
    from stackgen.render.rule_tests import has_hourly_test  # rule_tests renders from this module

    covering = test_shapes.representative(spec, slo)  # None: untestable, its own no-data test
    rep = covering or slo
    tests = cv.alerts_test_file(rep).removeprefix("prometheus/")
    if covering is not None and has_hourly_test(spec, rep):
        tests += " and " + cv.hourly_test_file(rep).removeprefix("prometheus/")
    if rep is not slo:
        tests = (
            f"{cv.recording_test_file(slo).removeprefix('prometheus/')}; the alerts, being those of "
            f"{rep.service}/{rep.name} but for names (same shape), in {tests}"
        )
    head = header(
        spec.source_file,
        f"SLO {slo.service}/{slo.name} (team {slo.team}): recording rules and burn-rate alerts. Unit tests: {tests}",
    )
    return head + yaml_list("groups", groups)


def info_group_name(slo: SLO) -> str:
    return f"slo:{slo.service}:{slo.name}:dashboard"


def info_file(spec: Spec, slo: SLO) -> str:
    head = header(
        spec.source_file,
        f"Dashboard series for SLO {slo.service}/{slo.name}: burn rate per window, "
        "objective, budget, period and alert thresholds. Alerts do not read these.",
    )
    group = {"name": info_group_name(slo), "rules": info_rules(slo)}
    return head + yaml_list("groups", [(None, group)])


# Alertmanager's silences, per alert, from the alert-state exporter: the labels of the alert's
# ALERTS series but alertstate, plus those Prometheus adds when sending (ignored).
SILENCED = "stackgen_alert_silenced == 1"


def unsilenced(alerts: str) -> str:
    """`alerts` (ALERTS series) but those Alertmanager silences. Without the exporter's series
    (it is down, or the alert has not reached Alertmanager yet) every alert counts."""
    return f"{alerts} unless {cv.MATCHING_SENT_ALERTS} ({SILENCED})"


def escalation_source(spec: Spec) -> str:
    """The firing alerts that escalate: of the escalating severities, never an escalation, not
    silenced. One chain per incident: an SLO's tiers (an outage fires both page tiers) are one
    series per SLO, so its levels page each person once; any other alert is its own chain. A
    silence is the acknowledgement: while every firing alert of the chain is silenced it does
    not run; when the silence ends, the chain starts again from its first level."""
    severity = promql.any_of("severity", spec.routing.escalation_severities)
    firing = f'alertstate="firing", {severity}, escalation_level=""'
    per_slo = "service, slo, team, severity, category, alertstate"
    of_slos = unsilenced(f'ALERTS{{{firing}, slo!=""}}')
    others = unsilenced(f'ALERTS{{{firing}, slo=""}}')
    return f"max by ({per_slo}) ({of_slos})\nor ({others})"


# What an escalation names: the SLO (all its firing tiers), or the alert.
ESCALATED = "{{ with $labels.slo }}SLO {{ $labels.service }}/{{ . }}{{ else }}{{ $labels.alertname }}{{ end }}"
ESCALATED_LABEL = "{{ with $labels.slo }}{{ $labels.service }}/{{ . }}{{ else }}{{ $labels.alertname }}{{ end }}"


def escalation_rules(spec: Spec) -> list[tuple[str | None, dict[str, Any]]]:
    rules = []
    for level in spec.routing.escalation:
        after = format_duration(level.after)
        rules.append(
            {
                "alert": f"EscalationLevel{level.level}",
                # The escalating severities only, and never an escalation of an escalation.
                "expr": escalation_source(spec),
                "for": after,
                "labels": {
                    "escalation_level": str(level.level),
                    "escalated_alertname": ESCALATED_LABEL,
                },
                "annotations": {
                    "summary": f"Escalation to level {level.level}: {ESCALATED} has been firing for {after}",
                    "description": f"{ESCALATED}{ESCALATION_SUBJECT_PLAIN} is still firing after {after}; "
                    f"level {level.level} is notified.",
                },
            }
        )
    if not rules:
        return []
    return [
        (
            "Escalation: Alertmanager has no timed escalation, so each level is an alert on ALERTS that "
            f"fires when a {'/'.join(spec.routing.escalation_severities)} alert has been firing for the level's "
            "delay; routing sends it on. A silence in Alertmanager acknowledges: a silenced alert (the "
            "alert-state exporter's stackgen_alert_silenced) does not escalate, and escalates from the "
            "first level again if it is still firing when the silence ends.",
            {"name": "stackgen:escalation", "rules": rules},
        )
    ]


def health_metric(spec: Spec, job: str) -> str:
    """What says a job's targets are up: `up` for a scrape job, `probe_success` for a probe
    (its `up` is only the blackbox exporter answering)."""
    return "probe_success" if any(p.name == job for p in spec.probes) else "up"


def service_down_expr(spec: Spec, service: Service) -> str:
    by_metric: dict[str, list[str]] = {}
    for job in service.jobs:
        by_metric.setdefault(health_metric(spec, job), []).append(job)
    parts = [promql.selector(metric, promql.any_of("job", jobs)) for metric, jobs in sorted(by_metric.items())]
    return f"max({' or '.join(parts)}) == 0"


PROBES_BLIND = "ProbesBlind"
PROBES_BLIND_FOR = 300


def probes_blind_rule(spec: Spec) -> dict[str, Any]:
    """A probe job's `up` is the blackbox exporter answering: when it does not, probe_success
    is gone and a probe-based ServiceDown or availability SLO cannot fire."""
    jobs = [p.name for p in spec.probes]
    return {
        "alert": PROBES_BLIND,
        "expr": f"{promql.selector('up', promql.any_of('job', jobs))} == 0",
        "for": format_duration(PROBES_BLIND_FOR),
        "labels": {"severity": "warning", "category": "platform"},
        "annotations": {
            "summary": "Probe job {{ $labels.job }} cannot run: the blackbox exporter does not answer",
            "description": "Without it there is no probe_success, so the services and SLOs that rely on "
            "this probe cannot alert. Check the blackbox-exporter container.",
        },
    }


def stack_rules(spec: Spec) -> str:
    groups: list[tuple[str | None, dict[str, Any]]] = []
    health: list[dict[str, Any]] = [
        {
            "alert": cv.ALERT_WATCHDOG,
            "expr": "vector(1)",
            "labels": {"severity": "none", "category": "platform"},
            "annotations": {
                "summary": "Always firing: proves the alerting pipeline works end to end",
                "description": "This alert always fires. The dead-man's switch receiver expects it; when it "
                "stops arriving, Prometheus, Alertmanager or the path between them is broken.",
            },
        }
    ]
    for service in spec.services:
        if not service.jobs:
            continue
        health.append(
            {
                "alert": cv.ALERT_SERVICE_DOWN,
                "expr": service_down_expr(spec, service),
                "for": format_duration(SERVICE_DOWN_FOR),
                "labels": {
                    "severity": "critical",
                    "category": "platform",
                    "service": service.name,
                    "team": service.team,
                    # Users see an outage: the status page hears of it even though the
                    # service's SLO alerts are inhibited meanwhile.
                    **({"impact": spec.routing.impact("outage")} if service.status_page else {}),
                },
                "annotations": {
                    "summary": f"{service.name} is down: no target of job(s) {', '.join(service.jobs)} answers",
                    "description": f"Every target of {service.name} has failed its scrapes (or probes) for 2m. Its "
                    "SLO alerts are inhibited while this fires.",
                },
            }
        )
    if spec.probes:
        health.append(probes_blind_rule(spec))
    groups.append(
        (
            "Stack health: the Watchdog (dead-man's switch) and one ServiceDown alert per service.",
            {"name": "stackgen:health", "rules": health},
        )
    )
    groups.append(
        (
            "The monitoring stack watching itself.",
            {
                "name": "stackgen:meta",
                "rules": [
                    {
                        "alert": "PrometheusRuleEvaluationFailures",
                        "expr": "increase(prometheus_rule_evaluation_failures_total[5m]) > 0",
                        "for": "5m",
                        "labels": {"severity": "warning", "category": "platform"},
                        "annotations": {
                            "summary": "Prometheus fails to evaluate rules: SLO alerts may be blind",
                            "description": "{{ $value }} rule evaluation failures in the last 5m "
                            "({{ $labels.rule_group }}).",
                        },
                    },
                    alert_state_unknown_rule(),
                    {
                        "alert": "AlertmanagerNotificationsFailing",
                        "expr": "increase(alertmanager_notifications_failed_total[5m]) > 0",
                        "for": "5m",
                        "labels": {"severity": "warning", "category": "platform"},
                        "annotations": {
                            "summary": "Alertmanager cannot deliver notifications via {{ $labels.integration }}",
                            "description": "{{ $value }} failed notifications in the last 5m: check the receiver's "
                            "secret file and endpoint.",
                        },
                    },
                ],
            },
        )
    )
    groups.extend(escalation_rules(spec))
    head = header(spec.source_file, "Stack-wide rules: watchdog, service-down, self-monitoring, escalation.")
    return head + yaml_list("groups", groups)


ALERT_STATE_UNKNOWN_FOR = 5 * 60


def alert_state_unknown_rule() -> dict[str, Any]:
    """Silences stop escalations only while Prometheus hears of them: say so when it cannot."""
    job = promql.equals("job", cv.ALERT_STATE_JOB)
    return {
        "alert": cv.ALERT_STATE_UNKNOWN,
        "expr": f"max(stackgen_alertmanager_up) == 0\nor max(up{{{job}}}) == 0\nor absent(up{{{job}}})",
        "for": format_duration(ALERT_STATE_UNKNOWN_FOR),
        "labels": {"severity": "warning", "category": "platform"},
        "annotations": {
            "summary": "Prometheus does not know which alerts Alertmanager silences: escalations ignore silences",
            "description": "The alert-state exporter is down or cannot read Alertmanager's API. Until it is back, "
            "escalation levels fire for silenced alerts and the dashboards show each alert's Alertmanager "
            "state as unknown.",
        },
    }


def plain_alert_rule(spec: Spec, alert: Alert) -> dict[str, Any]:
    """A plain alert as a Prometheus (or Loki ruler) rule: the spec's expression with the
    labels routing and inhibition read, and annotations (the spec's templates run as written:
    the loader allowed only $value and $labels forms)."""
    service = next((s for s in spec.services if s.name == alert.service), None)
    # The service's labels, then the alert's own (they win), then stackgen's (reserved names).
    labels: dict[str, str] = {k: template_safe(v) for k, v in (*(service.labels if service else ()), *alert.labels)}
    labels.update(severity=alert.severity, category=alert.category)
    if alert.service:
        labels["service"] = alert.service
    if alert.team:
        labels["team"] = alert.team
    if alert.impact:
        labels["impact"] = spec.routing.impact(alert.impact)
    annotations = {"summary": alert.summary}
    if alert.description:
        annotations["description"] = alert.description
    annotations["runbook_url"] = cv.alert_runbook_url(spec.stack, alert)
    if alert.service:
        annotations["dashboard_url"] = f"{spec.stack.grafana_url}/d/{cv.service_dashboard_uid(alert.service)}"
    rule: dict[str, Any] = {"alert": alert.name, "expr": alert.expr}
    if alert.for_:
        rule["for"] = format_duration(alert.for_)
    rule["labels"] = labels
    rule["annotations"] = annotations
    return rule


def chunked(items: list[T]) -> list[list[T]]:
    """Rule groups of at most MAX_GROUP_RULES rules, in order."""
    return [items[start : start + MAX_GROUP_RULES] for start in range(0, len(items), MAX_GROUP_RULES)]


def plain_groups(spec: Spec, stem: str, alerts: list[Alert]) -> list[tuple[str | None, dict[str, Any]]]:
    """Groups of at most MAX_GROUP_RULES rules (Mimir's cap), in spec order."""
    groups: list[tuple[str | None, dict[str, Any]]] = []
    chunks = chunked(alerts)
    for number, chunk in enumerate(chunks, start=1):
        name = f"alerts:{stem.replace('/_alerts', '').lstrip('_')}" + (f":{number}" if len(chunks) > 1 else "")
        note = "Plain alerts: " + ", ".join(a.name for a in chunk) + "."
        groups.append((note, {"name": name, "rules": [plain_alert_rule(spec, a) for a in chunk]}))
    return groups


def plain_alerts_by_file(spec: Spec, alerts: tuple[Alert, ...]) -> dict[str, list[Alert]]:
    by_stem: dict[str, list[Alert]] = {}
    for alert in alerts:
        by_stem.setdefault(cv.alert_file_stem(alert), []).append(alert)
    return by_stem


def plain_rules_files(spec: Spec, alerts: tuple[Alert, ...]) -> dict[str, str]:
    files = {}
    for stem, chunk in plain_alerts_by_file(spec, alerts).items():
        where = (
            f"alert pack {chunk[0].pack}"
            if chunk[0].pack
            else (f"service {chunk[0].service}" if chunk[0].service else "no service")
        )
        test = cv.plain_test_file(stem).removeprefix("prometheus/")
        tested = sum(1 for a in chunk if a.tests)
        head = header(
            spec.source_file,
            f"Plain alerts of {where}: the spec's own PromQL with stackgen's routing labels "
            f"(severity, category, team, service, impact). {tested} of {len(chunk)} have unit tests"
            + (f" in {test}." if tested else "."),
        )
        files[cv.plain_rules_file(stem)] = head + yaml_list("groups", plain_groups(spec, stem, chunk))
    return files


def render_stack(spec: Spec) -> dict[str, str]:
    files = {cv.STACK_RULES: stack_rules(spec)}
    files.update(plain_rules_files(spec, tuple(a for a in spec.prometheus_alerts() if not a.service)))
    return files


def render_service(spec: Spec, service: Service) -> dict[str, str]:
    files = {}
    for slo in service.slos:
        files[cv.rules_file(slo)] = slo_rules(spec, service, slo)
        files[cv.info_rules_file(slo)] = info_file(spec, slo)
    files.update(
        plain_rules_files(spec, tuple(a for a in spec.prometheus_alerts() if a.service == service.name and not a.pack))
    )
    return files


def render(spec: Spec) -> dict[str, str]:
    files = render_stack(spec)
    for service in spec.services:
        files.update(render_service(spec, service))
    return files
