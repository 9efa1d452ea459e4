"""The validated model: frozen dataclasses built from a loaded spec, with cross-field checks.

Nothing here knows YAML; renderers only ever see these types.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import PurePath
from typing import Any

from stackgen import promql, slo_math
from stackgen.durations import format_duration, parse_duration
from stackgen.errors import Problem, SpecError
from stackgen.spec.loader import LoadedSpec

Path_ = tuple[str | int, ...]

SEVERITIES = ("critical", "warning", "info")
MAX_DURATION = 100 * 365 * 86400
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
    }
)
CATEGORIES = ("slo", "security", "budget", "logs", "platform")
# Alertmanager receiver fields that hold a secret file name in the spec.
SECRET_FIELDS = (
    "routing_key_file",
    "api_url_file",
    "auth_password_file",
    "api_key_file",
    "credentials_file",
)


@dataclass(frozen=True)
class Tier:
    """One multi-window burn-rate alert of an SLO, with its numbers resolved."""

    severity: str  # page | ticket
    long_window: int
    short_window: int
    burn_rate: Decimal
    budget_share: Decimal  # f as a fraction (0.02)

    @property
    def alert_severity(self) -> str:
        return "critical" if self.severity == "page" else "warning"

    @property
    def impact(self) -> str:
        """Status-page impact: a page means users see an outage, a ticket a degradation."""
        return "outage" if self.severity == "page" else "degraded"

    @property
    def long(self) -> str:
        return format_duration(self.long_window)

    @property
    def short(self) -> str:
        return format_duration(self.short_window)


@dataclass(frozen=True)
class SLI:
    kind: str  # events | latency | availability | raw
    bad: str | None = None
    good: str | None = None
    total: str | None = None
    histogram: str | None = None
    selector: str = ""
    threshold: Decimal | None = None
    native: bool = False
    metric: str | None = None  # availability: up | probe_success
    error_ratio: str | None = None  # raw


@dataclass(frozen=True)
class SLO:
    service: str
    team: str
    name: str
    objective: Decimal  # percent
    period: int
    description: str
    sli: SLI
    tiers: tuple[Tier, ...]
    labels: tuple[tuple[str, str], ...] = ()
    runbook_url: str | None = None
    budget_low: Decimal = Decimal("0.25")

    @property
    def budget(self) -> Decimal:
        return slo_math.error_budget(self.objective)

    @property
    def id(self) -> str:
        return f"{self.service}-{self.name}"

    @property
    def windows(self) -> tuple[int, ...]:
        """Every window any rule of this SLO needs, sorted, the period included."""
        seen = {self.period}
        for tier in self.tiers:
            seen.update((tier.long_window, tier.short_window))
        return tuple(sorted(seen))


@dataclass(frozen=True)
class Service:
    name: str
    team: str
    description: str
    jobs: tuple[str, ...]
    labels: tuple[tuple[str, str], ...]
    slos: tuple[SLO, ...]


@dataclass(frozen=True)
class ScrapeJob:
    name: str
    targets: tuple[str, ...]
    interval: int | None
    timeout: int | None
    metrics_path: str
    scheme: str
    labels: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Receiver:
    name: str
    type: str
    description: str
    settings: tuple[tuple[str, Any], ...]

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.settings).get(key, default)

    @property
    def secret_files(self) -> tuple[str, ...]:
        return tuple(str(v) for k, v in self.settings if k in SECRET_FIELDS)


@dataclass(frozen=True)
class SeverityRoute:
    severity: str
    receivers: tuple[str, ...]
    group_wait: int
    group_interval: int
    repeat_interval: int
    business_hours_only: bool


@dataclass(frozen=True)
class EscalationLevel:
    level: int
    after: int
    receivers: tuple[str, ...]


@dataclass(frozen=True)
class BusinessHours:
    timezone: str
    weekdays: str
    start: str
    end: str


@dataclass(frozen=True)
class Routing:
    default_receiver: str
    group_by: tuple[str, ...]
    severities: tuple[SeverityRoute, ...]
    categories: tuple[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]], ...]
    teams: tuple[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]], ...]
    escalation: tuple[EscalationLevel, ...]
    business_hours: BusinessHours | None
    watchdog_receiver: str | None
    watchdog_repeat: int
    status_page_receiver: str | None

    def severity(self, name: str) -> SeverityRoute:
        return next(s for s in self.severities if s.severity == name)


@dataclass(frozen=True)
class LogSource:
    name: str
    type: str  # docker | file | journal
    paths: tuple[str, ...]
    service: str | None
    labels: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class LogAlert:
    name: str
    expr: str
    for_: int
    severity: str
    category: str
    service: str | None
    summary: str


@dataclass(frozen=True)
class RedactionPattern:
    name: str
    regex: str
    replace: str


@dataclass(frozen=True)
class Logs:
    agent: str
    retention: int
    retention_overrides: tuple[tuple[str, int, int], ...]  # selector, period, priority
    storage_type: str
    storage: tuple[tuple[str, Any], ...]
    ingestion: tuple[tuple[str, Any], ...]
    sources: tuple[LogSource, ...]
    pipeline: tuple[tuple[str, str], ...]
    redaction: tuple[RedactionPattern, ...]
    builtin_alerts: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]
    custom_alerts: tuple[LogAlert, ...]


@dataclass(frozen=True)
class Stack:
    name: str
    target: str
    scrape_interval: int
    evaluation_interval: int
    metrics_retention: int
    grafana_url: str
    runbook_base_url: str | None
    lifecycle_api: bool
    publish: tuple[tuple[str, str], ...]
    ports: tuple[tuple[str, int], ...]
    secrets_dir: str
    data_dir: str
    optional_services: tuple[str, ...]

    @property
    def base_window(self) -> int:
        """The SLO base window B: event rates are recorded over it at every evaluation.

        B equals the evaluation interval, so consecutive base samples tile time exactly
        and sum_over_time over them is a true ratio of sums.
        """
        return self.evaluation_interval


@dataclass(frozen=True)
class Spec:
    stack: Stack
    scrape_jobs: tuple[ScrapeJob, ...]
    services: tuple[Service, ...]
    receivers: tuple[Receiver, ...]
    routing: Routing
    logs: Logs
    source_file: str = field(default="slos.yaml", compare=False)

    @property
    def slos(self) -> tuple[SLO, ...]:
        return tuple(slo for service in self.services for slo in service.slos)

    @property
    def teams(self) -> tuple[str, ...]:
        return tuple(sorted({s.team for s in self.services}))

    def receiver(self, name: str) -> Receiver:
        return next(r for r in self.receivers if r.name == name)


def _pairs(mapping: dict[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((mapping or {}).items()))


class _Builder:
    """Turns schema-valid data into the model, collecting every cross-field problem."""

    def __init__(self, spec: LoadedSpec) -> None:
        self.spec = spec
        self.problems: list[Problem] = []

    def fail(self, path: Path_, message: str) -> None:
        self.problems.append(self.spec.problem(path, message))

    def duration(self, value: str | None, path: Path_, default: int) -> int:
        if value is None:
            return default
        try:
            seconds = parse_duration(value)
        except ValueError as err:
            self.fail(path, str(err))
            return default
        if seconds > MAX_DURATION:
            # Prometheus durations are int64 nanoseconds: past ~292y they overflow.
            self.fail(path, f"{value!r} is longer than 100y; no window, period or retention needs that")
            return default
        return seconds

    def unique(self, items: list[dict[str, Any]], path: Path_, what: str) -> None:
        counts = Counter(item.get("name") for item in items)
        for index, item in enumerate(items):
            if counts[item.get("name")] > 1:
                self.fail(
                    (*path, index, "name"),
                    f"duplicate {what} name {item.get('name')!r}; names must be unique",
                )

    def build(self) -> Spec:
        data = self.spec.data
        stack = self.build_stack(data["stack"])
        jobs = self.build_jobs(data.get("scrape_jobs", []), stack)
        receivers = self.build_receivers(data["receivers"])
        names = {r.name for r in receivers}
        routing = self.build_routing(data["routing"], names, receivers)
        services = self.build_services(data["services"], data.get("slo_defaults", {}), stack, jobs)
        logs = self.build_logs(data.get("logs", {}), {s.name for s in services})
        if self.problems:
            raise SpecError(self.problems)
        return Spec(
            stack,
            jobs,
            services,
            receivers,
            routing,
            logs,
            source_file=PurePath(self.spec.file).name.replace("\n", " "),
        )

    def build_stack(self, raw: dict[str, Any]) -> Stack:
        p: Path_ = ("stack",)
        scrape = self.duration(raw.get("scrape_interval"), (*p, "scrape_interval"), 15)
        evaluation = self.duration(raw.get("evaluation_interval"), (*p, "evaluation_interval"), 60)
        if evaluation < 2 * scrape:
            self.fail(
                (*p, "evaluation_interval"),
                "must be at least twice scrape_interval: it is also the SLO base window, and a "
                "rate() over it needs two scrapes",
            )
        # Every port on 127.0.0.1 unless the spec asks for more (slos.yaml opens Grafana).
        publish: dict[str, str] = dict(raw.get("publish", {}))
        return Stack(
            name=raw["name"],
            target=raw.get("target", "docker"),
            scrape_interval=scrape,
            evaluation_interval=evaluation,
            metrics_retention=self.duration(raw.get("metrics_retention"), (*p, "metrics_retention"), 15 * 86400),
            grafana_url=raw.get("grafana_url", "http://localhost:3000").rstrip("/"),
            runbook_base_url=(raw["runbook_base_url"].rstrip("/") if raw.get("runbook_base_url") else None),
            lifecycle_api=bool(raw.get("lifecycle_api", False)),
            publish=_pairs(publish),
            ports=_pairs(raw.get("ports")),
            secrets_dir=raw.get("secrets_dir", "/etc/stackgen/secrets"),
            data_dir=raw.get("data_dir", "/var/lib/stackgen"),
            optional_services=tuple(sorted(raw.get("optional_services", []))),
        )

    def build_jobs(self, raw: list[dict[str, Any]], stack: Stack) -> tuple[ScrapeJob, ...]:
        self.unique(raw, ("scrape_jobs",), "scrape job")
        jobs = []
        for i, job in enumerate(raw):
            p: Path_ = ("scrape_jobs", i)
            interval = self.duration(job.get("interval"), (*p, "interval"), 0) or None
            timeout = self.duration(job.get("timeout"), (*p, "timeout"), 0) or None
            if timeout and timeout > (interval or stack.scrape_interval):
                self.fail((*p, "timeout"), "must not exceed the scrape interval")
            if interval and stack.evaluation_interval < 2 * interval:
                self.fail(
                    (*p, "interval"),
                    "SLO rules rate over the evaluation interval, which must be at "
                    "least twice every scrape interval; scrape more often or raise "
                    "stack.evaluation_interval",
                )
            jobs.append(
                ScrapeJob(
                    job["name"],
                    tuple(job["targets"]),
                    interval,
                    timeout,
                    job.get("metrics_path", "/metrics"),
                    job.get("scheme", "http"),
                    _pairs(job.get("labels")),
                )
            )
        return tuple(jobs)

    def build_receivers(self, raw: list[dict[str, Any]]) -> tuple[Receiver, ...]:
        self.unique(raw, ("receivers",), "receiver")
        out = []
        for item in raw:
            settings = {k: v for k, v in item.items() if k not in ("name", "type", "description")}
            out.append(Receiver(item["name"], item["type"], item.get("description", ""), _pairs(settings)))
        return tuple(out)

    def check_receivers(self, names: list[str] | str, path: Path_, known: set[str]) -> tuple[str, ...]:
        """A list of receiver names, or one name (reported at path itself, not path[0])."""
        single = isinstance(names, str)
        names = [names] if isinstance(names, str) else names
        for i, name in enumerate(names):
            if name not in known:
                self.fail(
                    path if single else (*path, i),
                    f"receiver {name!r} is not defined under receivers: "
                    f"define it or use one of {', '.join(sorted(known))}",
                )
        return tuple(names)

    def build_routing(self, raw: dict[str, Any], known: set[str], receivers: tuple[Receiver, ...]) -> Routing:
        p: Path_ = ("routing",)
        self.check_receivers(raw["default_receiver"], (*p, "default_receiver"), known)
        severities = []
        defaults = {
            "critical": (10, 300, 3600),
            "warning": (30, 300, 4 * 3600),
            "info": (60, 600, 24 * 3600),
        }
        for sev in SEVERITIES:
            r = raw["severities"][sev]
            sp: Path_ = (*p, "severities", sev)
            wait, interval, repeat = defaults[sev]
            severities.append(
                SeverityRoute(
                    sev,
                    self.check_receivers(r["receivers"], (*sp, "receivers"), known),
                    self.duration(r.get("group_wait"), (*sp, "group_wait"), wait),
                    self.duration(r.get("group_interval"), (*sp, "group_interval"), interval),
                    self.duration(r.get("repeat_interval"), (*sp, "repeat_interval"), repeat),
                    bool(r.get("business_hours_only", False)),
                )
            )
            if r.get("business_hours_only") and "business_hours" not in raw:
                self.fail(
                    (*sp, "business_hours_only"),
                    "needs routing.business_hours (weekdays, start, end)",
                )

        def per_severity(block: dict[str, Any], path: Path_) -> tuple[tuple[str, tuple[str, ...]], ...]:
            return tuple(
                (sev, self.check_receivers(block[sev], (*path, sev), known)) for sev in SEVERITIES if sev in block
            )

        categories = tuple(
            (c, per_severity(raw["categories"][c], (*p, "categories", c)))
            for c in CATEGORIES
            if c in raw.get("categories", {})
        )
        teams = tuple((t, per_severity(v, (*p, "teams", t))) for t, v in sorted(raw.get("teams", {}).items()))
        escalation = []
        levels = raw.get("escalation", [])
        previous_after = 0
        for i, level in enumerate(sorted(levels, key=lambda x: x["level"])):
            ep: Path_ = (*p, "escalation", levels.index(level))
            after = self.duration(level["after"], (*ep, "after"), 900)
            if after <= previous_after:
                self.fail((*ep, "after"), "each escalation level must wait longer than the one before")
            previous_after = after
            escalation.append(
                EscalationLevel(
                    level["level"],
                    after,
                    self.check_receivers(level["receivers"], (*ep, "receivers"), known),
                )
            )
            del i
        if len({lv["level"] for lv in levels}) != len(levels):
            self.fail((*p, "escalation"), "escalation levels must be unique")
        hours = None
        if "business_hours" in raw:
            bh = raw["business_hours"]
            hours = BusinessHours(bh.get("timezone", "UTC"), bh["weekdays"], bh["start"], bh["end"])
            if bh["start"] >= bh["end"]:
                self.fail((*p, "business_hours", "end"), "must be after start")
        watchdog = raw.get("watchdog", {})
        if watchdog:
            self.check_receivers(watchdog["receiver"], (*p, "watchdog", "receiver"), known)
        status = raw.get("status_page", {})
        if status:
            self.check_receivers(status["receiver"], (*p, "status_page", "receiver"), known)
            kind = next((r.type for r in receivers if r.name == status["receiver"]), "webhook")
            if kind != "webhook":
                self.fail((*p, "status_page", "receiver"), f"must be a webhook receiver, not {kind}")
        return Routing(
            default_receiver=raw["default_receiver"],
            group_by=tuple(raw.get("group_by", ["alertname", "service", "slo"])),
            severities=tuple(severities),
            categories=categories,
            teams=teams,
            escalation=tuple(escalation),
            business_hours=hours,
            watchdog_receiver=watchdog.get("receiver"),
            watchdog_repeat=self.duration(watchdog.get("repeat_interval"), (*p, "watchdog", "repeat_interval"), 60),
            status_page_receiver=status.get("receiver"),
        )

    def build_services(
        self,
        raw: list[dict[str, Any]],
        defaults: dict[str, Any],
        stack: Stack,
        jobs: tuple[ScrapeJob, ...],
    ) -> tuple[Service, ...]:
        self.unique(raw, ("services",), "service")
        job_names = {j.name for j in jobs}
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
                    self.fail((*p, "jobs", j), f"scrape job {job!r} is not defined under scrape_jobs")
            self.unique(svc["slos"], (*p, "slos"), "SLO")
            slos = tuple(
                self.build_slo(s, (*p, "slos", k), svc, default_period, default_tiers, stack)
                for k, s in enumerate(svc["slos"])
            )
            out.append(
                Service(
                    svc["name"],
                    svc["team"],
                    svc.get("description", ""),
                    tuple(svc.get("jobs", [])),
                    _pairs(svc.get("labels")),
                    slos,
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
    ) -> SLO:
        period = self.duration(raw.get("period"), (*p, "period"), default_period)
        alerting = raw.get("alerting", {})
        tiers_raw = alerting.get("tiers") or default_tiers
        tiers_path: Path_ = (*p, "alerting", "tiers")
        budget = slo_math.error_budget(slo_math.dec(raw["objective"]))
        tiers = self.build_tiers(tiers_raw, tiers_path, period, stack, budget)
        sli = self.build_sli(raw["sli"], (*p, "sli"))
        for key in alerting.get("labels", {}):
            if key in RESERVED_LABELS:
                self.fail(
                    (*p, "alerting", "labels", key),
                    f"{key!r} is set by stackgen; pick another label name",
                )
        budget_low = alerting.get("budget_low_percent", 25)
        return SLO(
            service=svc["name"],
            team=svc["team"],
            name=raw["name"],
            objective=slo_math.dec(raw["objective"]),
            period=period,
            description=raw.get("description", ""),
            sli=sli,
            tiers=tiers,
            labels=_pairs(alerting.get("labels")),
            runbook_url=alerting.get("runbook_url"),
            budget_low=slo_math.tidy(slo_math.dec(budget_low) / 100),
        )

    def build_tiers(
        self, raw: list[dict[str, Any]] | None, p: Path_, period: int, stack: Stack, budget: Decimal
    ) -> tuple[Tier, ...]:
        specs: list[tuple[slo_math.TierSpec, Path_]] = []
        if raw is None:
            specs = [(t, p) for t in slo_math.DEFAULT_TIERS]
        else:
            for i, t in enumerate(raw):
                tp: Path_ = (*p, i)
                long_w = self.duration(t["long_window"], (*tp, "long_window"), 3600)
                short_w = self.duration(t["short_window"], (*tp, "short_window"), 300) if "short_window" in t else None
                if ("budget_percent" in t) == ("burn_rate" in t):
                    self.fail(tp, "give exactly one of budget_percent or burn_rate")
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
            if short_w % stack.base_window or long_w % stack.base_window:
                self.fail(
                    tp,
                    f"windows must be whole multiples of the base window "
                    f"{format_duration(stack.base_window)} (stack.evaluation_interval)",
                )
            if short_w >= long_w:
                self.fail(tp, "short_window must be shorter than long_window")
            if long_w > period:
                self.fail(
                    tp,
                    f"long_window {format_duration(long_w)} is longer than the SLO period {format_duration(period)}",
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
                    f"this tier can never fire: burn rate {slo_math.num(rate)} x error budget "
                    f"{slo_math.num(budget)} needs more than 100% errors; lower the burn rate "
                    "(or budget_percent), or override alerting.tiers for this SLO",
                )
            tiers.append(Tier(spec.severity, long_w, short_w, rate, share))
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
        text = expr.replace(promql.WINDOW_PLACEHOLDER, "5m")
        err = promql.parse_error(text)
        if err:
            self.fail(path, f"PromQL does not parse: {err}")
        elif promql.WINDOW_PLACEHOLDER not in expr and not promql.is_vector_selector(expr):
            self.fail(
                path,
                'must be a counter selector (e.g. http_requests_total{code=~"5.."}) or a '
                "query with a {{window}} placeholder",
            )

    def build_logs(self, raw: dict[str, Any], services: set[str]) -> Logs:
        p: Path_ = ("logs",)
        retention = self.duration(raw.get("retention"), (*p, "retention"), 90 * 86400)
        if retention % 86400:
            self.fail(
                (*p, "retention"),
                "Loki retention works in whole days (24h index periods); use e.g. 90d",
            )
        overrides = []
        for i, o in enumerate(raw.get("retention_overrides", [])):
            period = self.duration(o["period"], (*p, "retention_overrides", i, "period"), 7 * 86400)
            if period % 86400:
                self.fail((*p, "retention_overrides", i, "period"), "must be whole days")
            overrides.append((o["selector"], period, int(o.get("priority", 1))))
        storage = dict(raw.get("storage", {"type": "filesystem"}))
        stype = storage.pop("type")
        if stype != "filesystem" and "bucket" not in storage:
            self.fail((*p, "storage"), f"{stype} storage needs a bucket")
        sources = []
        self.unique(raw.get("sources", []), (*p, "sources"), "log source")
        for i, s in enumerate(raw.get("sources", [])):
            if s["type"] == "file" and "paths" not in s:
                self.fail((*p, "sources", i), "file sources need paths")
            sources.append(
                LogSource(
                    s["name"],
                    s["type"],
                    tuple(s.get("paths", [])),
                    s.get("service"),
                    _pairs(s.get("labels")),
                )
            )
        if not raw.get("sources"):
            sources = [LogSource("docker", "docker", (), None, ())]
        redaction_raw = raw.get("redaction", {"builtin": ["passwords", "tokens", "api_keys", "emails"]})
        patterns = []
        for i, pat in enumerate(redaction_raw.get("patterns", [])):
            err = re2_incompatibility(pat["regex"])
            if err:
                self.fail((*p, "redaction", "patterns", i, "regex"), err)
            if re.search(r"\{\{|\}\}", pat.get("replace", "")):
                # Promtail and Alloy run `replace` as a Go template per match: {{ .Value }} would put
                # the secret back, and a template that does not parse silently skips the redaction.
                self.fail(
                    (*p, "redaction", "patterns", i, "replace"),
                    "'{{' and '}}' are not allowed: the log agents run replace as a Go template",
                )
            patterns.append(RedactionPattern(pat["name"], pat["regex"], pat.get("replace", "<redacted>")))
        builtin = tuple(redaction_raw.get("builtin", []))
        alerts_raw = raw.get("alerts", {})
        for key in ("error_rate", "auth_failures", "panics", "db_errors"):
            if "for" in alerts_raw.get(key, {}):  # the Loki renderer parses it: check it here
                self.duration(alerts_raw[key]["for"], (*p, "alerts", key, "for"), 300)
        builtin_alerts = tuple(
            (k, _pairs(alerts_raw.get(k, {})))
            for k in ("error_rate", "auth_failures", "panics", "db_errors")
            if alerts_raw.get(k, {}).get("enabled", True)
        )
        custom = []
        for i, a in enumerate(alerts_raw.get("custom", [])):
            if a.get("service") and a["service"] not in services:
                self.fail(
                    (*p, "alerts", "custom", i, "service"),
                    f"service {a['service']!r} is not defined",
                )
            custom.append(
                LogAlert(
                    a["name"],
                    a["expr"].strip(),
                    self.duration(a.get("for"), (*p, "alerts", "custom", i, "for"), 0),
                    a["severity"],
                    a.get("category", "logs"),
                    a.get("service"),
                    a["summary"],
                )
            )
        return Logs(
            agent=raw.get("agent", "promtail"),
            retention=retention,
            retention_overrides=tuple(overrides),
            storage_type=stype,
            storage=_pairs(storage),
            ingestion=_pairs(raw.get("ingestion")),
            sources=tuple(sources),
            pipeline=_pairs(raw.get("pipeline")),
            redaction=tuple(builtin_redactions(builtin)) + tuple(patterns),
            builtin_alerts=builtin_alerts,
            custom_alerts=tuple(custom),
        )


def re2_incompatibility(pattern: str) -> str | None:
    """Reject regexes Go's RE2 (Promtail, Alloy) cannot run, with the reason."""
    if re.search(r"\(\?[=!]|\(\?<[=!]", pattern):
        return "lookahead/lookbehind is not supported by RE2 (Promtail and Alloy are Go); rewrite without it"
    if re.search(r"\\[1-9]", pattern):
        return "backreferences are not supported by RE2; rewrite without them"
    try:
        compiled = re.compile(pattern)
    except re.error as err:
        return f"regex does not compile: {err}"
    if compiled.groups == 0:
        return "needs a capture group: the replace stage replaces what the group captures"
    return None


# Built-in PII redactions. Each regex captures exactly the secret part; the log agent
# replaces the captured text. RE2 syntax (checked with google-re2 in tests).
BUILTIN_REDACTIONS: dict[str, tuple[RedactionPattern, ...]] = {
    "passwords": (
        RedactionPattern(
            "passwords",
            r'(?i)(?:password|passwd|pwd)["\']?\s*[:=]\s*["\']?([^\s"\'&,;}]+)',
            "<redacted>",
        ),
    ),
    "tokens": (
        RedactionPattern("bearer-tokens", r"(?i)bearer\s+([A-Za-z0-9._~+/=-]{8,})", "<redacted>"),
        RedactionPattern(
            "tokens",
            r'(?i)(?:token|secret|session)["\']?\s*[:=]\s*["\']?([^\s"\'&,;}]+)',
            "<redacted>",
        ),
    ),
    "api_keys": (
        RedactionPattern(
            "api-keys",
            r'(?i)(?:api[_-]?key|apikey|access[_-]?key)["\']?\s*[:=]\s*["\']?([^\s"\'&,;}]+)',
            "<redacted>",
        ),
    ),
    "emails": (RedactionPattern("emails", r"([A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})", "<email>"),),
    # Card numbers as written: 16 digits, or groups of four; not any long number (ms timestamps).
    "credit_cards": (RedactionPattern("credit-cards", r"\b((?:[0-9]{4}[ -]){3}[0-9]{1,7}|[0-9]{16})\b", "<card>"),),
}


def builtin_redactions(names: tuple[str, ...]) -> list[RedactionPattern]:
    out: list[RedactionPattern] = []
    for name in names:
        out.extend(BUILTIN_REDACTIONS[name])
    return out


def build_model(spec: LoadedSpec) -> Spec:
    """The validated model of a loaded spec; raises SpecError listing every problem."""
    return _Builder(spec).build()
