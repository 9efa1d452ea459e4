"""services: and their SLOs -> Service, SLO, Tier, SLI (the burn-rate math is slo_math's)."""

from __future__ import annotations

import re
from collections import Counter
from decimal import Decimal
from typing import Any

from stackgen import promql, slo_math
from stackgen.durations import format_duration
from stackgen.model.base import BuilderBase, Path_, pairs
from stackgen.model.types import SLI, SLO, Service, Stack, Tier

# Labels stackgen sets on SLO series and alerts; routing, inhibition and dashboards read them.
RESERVED_LABELS = frozenset(
    {
        "service",
        "slo",
        "team",
        "severity",
        "tier",
        "category",
        "alertname",
        "long_window",
        "short_window",
        "impact",
        "escalation_level",
        "slo_hour",  # conventions.LABEL_HOUR and LABEL_EVENTS: the tags of the base series
        "slo_events",  # the period reads for its current hour
    }
)


class SLOBuilder(BuilderBase):
    def build_services(
        self,
        raw: list[dict[str, Any]],
        defaults: dict[str, Any],
        stack: Stack,
        job_names: set[str],
        severities: tuple[str, ...],
    ) -> tuple[Service, ...]:
        self.unique(raw, ("services",), "service")
        default_period = self.duration(defaults.get("period"), ("slo_defaults", "period"), 30 * 86400)
        default_tiers = defaults.get("tiers")
        out = []
        for i, svc in enumerate(raw):
            p: Path_ = ("services", i)
            for key in svc.get("labels", {}):
                if key in RESERVED_LABELS:  # service labels go on every alert of the service, too
                    self.fail((*p, "labels", key), f"{key!r} is set by stackgen; pick another label name")
            for j, job in enumerate(svc.get("jobs", [])):
                if job not in job_names:
                    self.fail((*p, "jobs", j), f"scrape job {job!r} is not defined under scrape_jobs or probes")
            self.unique(svc.get("slos", []), (*p, "slos"), "SLO")
            slos = tuple(
                self.build_slo(s, (*p, "slos", k), svc, default_period, default_tiers, stack, severities)
                for k, s in enumerate(svc.get("slos", []))
            )
            out.append(
                Service(
                    svc["name"],
                    svc["team"],
                    svc.get("description", ""),
                    tuple(svc.get("jobs", [])),
                    pairs(svc.get("labels")),
                    slos,
                    status_page=bool(svc.get("status_page", True)),
                )
            )
        return tuple(out)

    def build_slo(
        self,
        raw: dict[str, Any],
        p: Path_,
        svc: dict[str, Any],
        default_period: int,
        default_tiers: list[dict[str, Any]] | None,
        stack: Stack,
        severities: tuple[str, ...],
    ) -> SLO:
        period = self.duration(raw.get("period"), (*p, "period"), default_period)
        alerting = raw.get("alerting", {})
        tiers_raw = alerting.get("tiers") or default_tiers
        tiers_path: Path_ = (*p, "alerting", "tiers")
        context = ""
        if not alerting.get("tiers") and default_tiers:
            # The tiers come from slo_defaults: say so there, naming the SLO they fail for.
            tiers_path = ("slo_defaults", "tiers")
            context = f"for SLO {svc['name']}/{raw['name']} (objective {raw['objective']}%): "
        if slo_math.dec(raw["objective"]) < 1:
            self.fail(
                (*p, "objective"),
                f"objectives are percent: {raw['objective']} means {raw['objective']}%, "
                f"did you mean {slo_math.num(slo_math.dec(raw['objective']) * 100)}?",
            )
        budget = slo_math.error_budget(slo_math.dec(raw["objective"]))
        tiers = (
            self.build_tiers(tiers_raw, tiers_path, period, stack, budget, severities, context)
            if slo_math.dec(raw["objective"]) >= 1
            else ()  # reported above; every tier would also "never fire"
        )
        sli = self.build_sli(raw["sli"], (*p, "sli"))
        for key in alerting.get("labels", {}):
            if key in RESERVED_LABELS:
                self.fail(
                    (*p, "alerting", "labels", key),
                    f"{key!r} is set by stackgen; pick another label name",
                )
        budget_low = alerting.get("budget_low_percent", 25)
        group_by = tuple(raw.get("group_by", ()))
        self.check_grouping(raw, p, sli, group_by)
        return SLO(
            service=svc["name"],
            team=svc["team"],
            name=raw["name"],
            objective=slo_math.dec(raw["objective"]),
            period=period,
            description=raw.get("description", ""),
            sli=sli,
            tiers=tiers,
            labels=pairs(alerting.get("labels")),
            runbook_url=alerting.get("runbook_url"),
            budget_low=slo_math.tidy(slo_math.dec(budget_low) / 100),
            status_page=bool(svc.get("status_page", True)),
            group_by=group_by,
            max_groups=int(raw.get("max_groups", 0)) if group_by else 0,
        )

    def check_grouping(self, raw: dict[str, Any], p: Path_, sli: SLI, group_by: tuple[str, ...]) -> None:
        if "max_groups" in raw and not group_by:
            self.fail((*p, "max_groups"), "max_groups only applies with group_by")
        if not group_by:
            return
        if "max_groups" not in raw:
            self.fail(
                (*p, "group_by"),
                "say how many groups to expect with max_groups (e.g. max_groups: 50): each group is a "
                "set of series and alerts, and more than that fires SLOGroupsOverLimit",
            )
        for i, label in enumerate(group_by):
            if label in RESERVED_LABELS or label.startswith("__") or label == "le":
                self.fail(
                    (*p, "group_by", i),
                    f"{label!r} cannot group an SLO: "
                    + (
                        "stackgen sets it on SLO series and alerts" if label in RESERVED_LABELS else "it is not a group"
                    ),
                )
        if sli.kind == "raw":
            self.fail(
                (*p, "group_by"),
                "a raw error_ratio query decides its own labels; write an events or latency SLI to group it",
            )

    def build_tiers(
        self,
        raw: list[dict[str, Any]] | None,
        p: Path_,
        period: int,
        stack: Stack,
        budget: Decimal,
        severities: tuple[str, ...],
        context: str = "",
    ) -> tuple[Tier, ...]:
        specs: list[tuple[slo_math.TierSpec, Path_]] = []
        alert_severities: dict[Path_, str] = {}
        if raw is None:
            specs = [(t, p) for t in slo_math.DEFAULT_TIERS]
        else:
            for i, t in enumerate(raw):
                tp: Path_ = (*p, i)
                long_w = self.duration(t["long_window"], (*tp, "long_window"), 3600)
                short_w = self.duration(t["short_window"], (*tp, "short_window"), 300) if "short_window" in t else None
                if ("budget_percent" in t) == ("burn_rate" in t):
                    self.fail(tp, context + "give exactly one of budget_percent or burn_rate")
                if "alert_severity" in t:
                    self.check_severity(t["alert_severity"], (*tp, "alert_severity"), severities)
                    alert_severities[tp] = t["alert_severity"]
                specs.append(
                    (
                        slo_math.TierSpec(
                            t["severity"],
                            long_w,
                            short_w,
                            budget_percent=slo_math.dec(t["budget_percent"]) if "budget_percent" in t else None,
                            burn_rate=slo_math.dec(t["burn_rate"]) if "burn_rate" in t else None,
                        ),
                        tp,
                    )
                )
        tiers = []
        for spec, tp in specs:
            long_w = spec.long_window
            short_w = spec.short_window or max(long_w // 12, stack.base_window)
            base = format_duration(stack.base_window)
            for which, window in (("long_window", long_w), ("short_window", short_w)):
                if window % stack.base_window:
                    derived = which == "short_window" and spec.short_window is None
                    nearest = format_duration(max(stack.base_window, window // stack.base_window * stack.base_window))
                    self.fail(
                        tp,
                        context
                        + f"{which} {format_duration(window)}"
                        + (" (long_window / 12, as no short_window is given)" if derived else "")
                        + f" is not a whole multiple of the base window {base} (stack.evaluation_interval)"
                        + (f"; set short_window, e.g. {nearest}" if derived else ""),
                    )
            if short_w >= long_w:
                self.fail(tp, context + "short_window must be shorter than long_window")
            if long_w > period:
                self.fail(
                    tp,
                    context
                    + f"long_window {format_duration(long_w)} is longer than the SLO period {format_duration(period)}",
                )
            if spec.burn_rate is not None:
                rate = spec.burn_rate
            elif period >= slo_math.KEEP_BUDGET_SHARE_FROM or raw is not None:
                rate = slo_math.burn_rate_for((spec.budget_percent or Decimal(0)) / 100, period, long_w)
            else:
                # Short periods keep the reference (30d) burn rate: see SHORT_PERIOD_POLICY.
                rate = slo_math.burn_rate_for(
                    (spec.budget_percent or Decimal(0)) / 100, slo_math.REFERENCE_PERIOD, long_w
                )
            share = slo_math.budget_share_for(rate, period, long_w)
            if rate * budget >= 1:
                self.fail(
                    tp,
                    context + f"this tier can never fire: burn rate {slo_math.num(rate)} x error budget "
                    f"{slo_math.num(budget)} needs more than 100% errors; lower the burn rate "
                    "(or budget_percent), or override alerting.tiers for this SLO",
                )
            tiers.append(Tier(spec.severity, long_w, short_w, rate, share, alert_severities.get(tp, "")))
        longs = Counter(t.long_window for t in tiers)
        if any(n > 1 for n in longs.values()):
            self.fail(p, "each tier needs its own long_window (alerts are named after it)")
        return tuple(sorted(tiers, key=lambda t: t.long_window))

    def build_sli(self, raw: dict[str, Any], p: Path_) -> SLI:
        kind, body = next(iter(raw.items()))
        bp: Path_ = (*p, kind)
        if kind == "events":
            if ("bad" in body) == ("good" in body):
                self.fail(bp, "give exactly one of bad or good, plus total")
            for key in ("bad", "good", "total"):
                if key in body:
                    self.check_query(body[key], (*bp, key))
            return SLI(kind, bad=body.get("bad"), good=body.get("good"), total=body["total"])
        if kind == "latency":
            selector = body.get("selector", "")
            err = promql.matchers_error(selector)
            if err:
                self.fail((*bp, "selector"), f"does not parse: {err}")
            threshold = slo_math.dec(body["threshold"])
            if threshold > 60:
                # Histograms are in seconds (Prometheus' base unit); 100 is almost always 100 ms,
                # and would make every request good.
                self.fail(
                    (*bp, "threshold"),
                    f"{threshold} seconds is longer than a minute: thresholds are in seconds, "
                    f"did you mean {format(threshold / 1000, 'f')} ({threshold} ms)?",
                )
            buckets = [slo_math.dec(b) for b in body.get("buckets", [])]
            if buckets and threshold not in buckets:
                self.fail(
                    (*bp, "threshold"),
                    f"{threshold} is not a bucket boundary of {body['histogram']} "
                    f"({', '.join(str(b) for b in buckets)}); pick one of them",
                )
            return SLI(
                kind,
                histogram=body["histogram"],
                selector=selector,
                threshold=threshold,
                native=bool(body.get("native", False)),
                threshold_checked=bool(buckets) or bool(body.get("native", False)),
            )
        if kind == "availability":
            selector = body.get("selector", "")
            err = promql.matchers_error(selector)
            if err:
                self.fail((*bp, "selector"), f"does not parse: {err}")
            return SLI(kind, metric=body["metric"], selector=selector)
        query = body["error_ratio"]
        if promql.WINDOW_PLACEHOLDER not in query:
            self.fail(
                (*bp, "error_ratio"),
                "needs a {{window}} placeholder where the range goes, e.g. [{{window}}]",
            )
        self.check_query(query, (*bp, "error_ratio"))
        return SLI("raw", error_ratio=query)

    def check_query(self, expr: str, path: Path_) -> None:
        if re.search(r"\{\{\s*\.window\s*\}\}", expr):
            self.fail(path, "Sloth's {{.window}} is written {{window}} here (no dot)")
            return
        text = expr.replace(promql.WINDOW_PLACEHOLDER, "5m")
        err = promql.parse_error(expr, window=True)
        if err:
            self.fail(path, f"PromQL does not parse: {err}")
        elif "#" in promql.outside_strings(expr):
            self.fail(
                path, "no comments (#) here: stackgen splices the query into rules, where one would swallow the rest"
            )
        elif promql.WINDOW_PLACEHOLDER not in expr and not promql.is_vector_selector(expr):
            self.fail(
                path,
                'must be a counter selector (e.g. http_requests_total{code=~"5.."}) or a '
                "query with a {{window}} placeholder",
            )
        elif promql.regex_error(text):
            self.fail(path, str(promql.regex_error(text)))
