"""The model's types: frozen dataclasses the renderers read. Nothing here knows YAML."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from stackgen import slo_math
from stackgen.durations import format_duration
from stackgen.versions import IMAGES

Pairs = tuple[tuple[str, Any], ...]

# stackgen's own alerts use these three; a spec may add more (emergency, high, ...).
BUILTIN_SEVERITIES = ("critical", "warning", "info")
# Categories stackgen's own alerts use; a spec may add more (infrastructure, search, ...).
BUILTIN_CATEGORIES = ("slo", "security", "budget", "logs", "platform")
# The two impact classes an alert can claim on the status page.
IMPACTS = ("outage", "degraded")


@dataclass(frozen=True)
class Tier:
    """One multi-window burn-rate alert of an SLO, with its numbers resolved."""

    severity: str  # page | ticket
    long_window: int
    short_window: int
    burn_rate: Decimal
    budget_share: Decimal  # f as a fraction (0.02)
    alert_severity: str = ""  # the alert's severity label; "" = critical for a page, warning for a ticket

    def __post_init__(self) -> None:
        if not self.alert_severity:
            object.__setattr__(self, "alert_severity", "critical" if self.severity == "page" else "warning")

    @property
    def impact(self) -> str:
        """Status-page impact class: a page means users see an outage, a ticket a degradation."""
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
    threshold_checked: bool = False  # latency: the spec listed the buckets and the threshold is one


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
    status_page: bool = True  # its alerts carry an impact label (the status page hears of them)
    group_by: tuple[str, ...] = ()  # one SLO per value of these labels (windows, budget, alerts)
    max_groups: int = 0  # with group_by: more groups than this fire SLOGroupsOverLimit

    @property
    def budget(self) -> Decimal:
        return slo_math.error_budget(self.objective)

    @property
    def id(self) -> str:
        return f"{self.service}-{self.name}"

    @functools.cached_property  # renderers ask for these per window and per test case
    def windows(self) -> tuple[int, ...]:
        """Every window any rule of this SLO needs, sorted, the period included."""
        seen = {self.period}
        for tier in self.tiers:
            seen.update((tier.long_window, tier.short_window))
        return tuple(sorted(seen))

    @functools.cached_property
    def page_windows(self) -> frozenset[int]:
        return frozenset(w for t in self.tiers if t.severity == "page" for w in (t.long_window, t.short_window))

    def rollup_windows(self, base_window: int) -> frozenset[int]:
        """Windows read from hourly rollups (slo_math.rollup_windows): the ticket tiers' long
        windows and the period, in the default tiers."""
        return slo_math.rollup_windows(self.windows, self.page_windows, base_window)


@dataclass(frozen=True)
class Service:
    """A component of the user's system: its SLOs (possibly none: a component that only logs
    or only has plain alerts), the scrape jobs whose `up` says it is running, its labels."""

    name: str
    team: str
    description: str
    jobs: tuple[str, ...]
    labels: tuple[tuple[str, str], ...]
    slos: tuple[SLO, ...]
    status_page: bool = True  # its ServiceDown and SLO alerts reach the status page


@dataclass(frozen=True)
class TLS:
    """Client TLS for a scrape: file names under the secrets directory, and checks."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    server_name: str | None = None
    insecure_skip_verify: bool = False


@dataclass(frozen=True)
class ScrapeJob:
    name: str
    targets: tuple[str, ...]
    interval: int | None
    timeout: int | None
    metrics_path: str
    scheme: str
    labels: tuple[tuple[str, str], ...]
    bearer_token_file: str | None = None
    basic_auth: tuple[str, str] | None = None  # (username, password file)
    tls: TLS | None = None
    honor_labels: bool = False

    def secret_settings(self) -> dict[str, str]:
        """Setting -> secret file name, for the credentials this job sends."""
        settings = {"bearer_token_file": self.bearer_token_file}
        if self.basic_auth:
            settings["basic_auth.password_file"] = self.basic_auth[1]
        if self.tls:
            settings.update({f"tls.{k}": getattr(self.tls, k) for k in ("ca_file", "cert_file", "key_file")})
        return {k: v for k, v in settings.items() if v}


@dataclass(frozen=True)
class Probe:
    """Blackbox probes of one kind against targets: a scrape job named after the probe, so
    `probe_success{job="<name>"}` is what an availability SLI selects."""

    name: str
    module: str
    targets: tuple[str, ...]
    interval: int | None
    labels: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Exporter:
    """An exporter the stack runs next to the user's system (component name, e.g.
    postgres-exporter) with its settings; secret files are named, never inlined."""

    component: str
    settings: Pairs = ()
    key: str = ""  # its key under exporters: (postgres, redis, ...)

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.settings).get(key, default)


@dataclass(frozen=True)
class SecretUse:
    """One secret file read by one component for one purpose (a setting)."""

    file: str
    component: str  # the compose service that mounts it
    purpose: str  # the setting it fills: routing_key_file, tls.ca_file, password_file, ...
    user: str  # who reads it, for people: "receiver pagerduty-oncall", "scrape job api"
    path: tuple[str | int, ...]  # where the spec names it


@dataclass(frozen=True)
class Receiver:
    name: str
    type: str
    description: str
    settings: Pairs

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.settings).get(key, default)


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
    # Severities whose alerts escalate (ALERTS{severity=~...}); critical unless the spec says.
    escalation_severities: tuple[str, ...] = ("critical",)
    # Status-page value of each impact class (outage, degraded): seed 000's dashboard wants 2 / 1.
    impact_values: tuple[tuple[str, str], ...] = (("degraded", "degraded"), ("outage", "outage"))
    # (label matchers, receivers per severity): routing.labels, checked before categories and teams.
    label_routes: tuple[tuple[tuple[tuple[str, str], ...], tuple[tuple[str, tuple[str, ...]], ...]], ...] = ()

    def severity(self, name: str) -> SeverityRoute:
        return next(s for s in self.severities if s.severity == name)

    @property
    def severity_names(self) -> tuple[str, ...]:
        return tuple(s.severity for s in self.severities)

    def impact(self, impact_class: str) -> str:
        return dict(self.impact_values)[impact_class]


@dataclass(frozen=True)
class LogSource:
    name: str
    type: str  # docker | file | journal
    paths: tuple[str, ...]
    service: str | None
    labels: tuple[tuple[str, str], ...]
    format: str = "json"  # json | logfmt | text | regex
    cri: bool = False  # lines wrapped by the container runtime (Kubernetes CRI)
    regex: str | None = None  # format regex: named groups level, ts, ...


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


# Labels the log agents (Promtail and Alloy, as rendered) set on every stream they can.
AGENT_LABELS = ("service", "container", "compose_project", "level", "job", "unit", "host", "source")


@dataclass(frozen=True)
class Logs:
    agent: str
    retention: int
    retention_overrides: tuple[tuple[str, int, int], ...]  # selector, period, priority
    storage_type: str
    storage: Pairs
    ingestion: Pairs
    sources: tuple[LogSource, ...]
    pipeline: tuple[tuple[str, str], ...]
    redaction: tuple[RedactionPattern, ...]
    builtin_alerts: tuple[tuple[str, Pairs], ...]
    custom_alerts: tuple[LogAlert, ...]
    redaction_builtins: tuple[str, ...] = ()  # names switched on, in stackgen's order

    @property
    def stream_labels(self) -> set[str]:
        """Every label a stream of this stack can carry: the agents' own, `filename` on file
        sources, `stream` where CRI lines are unwrapped, and the sources' own labels."""
        return stream_labels(self.sources)


def stream_labels(sources: tuple[LogSource, ...] | list[LogSource]) -> set[str]:
    labels = set(AGENT_LABELS)
    for source in sources:
        labels.update(k for k, _ in source.labels)
        if source.type == "file":
            labels.add("filename")
        if source.cri:
            labels.add("stream")
    return labels


@dataclass(frozen=True)
class ExpectedAlert:
    """One alert a test expects: the labels the expression gives it (stackgen adds its own)
    and, when an annotation prints it, its $value."""

    labels: tuple[tuple[str, str], ...]
    value: Decimal | None = None


@dataclass(frozen=True)
class AlertCheck:
    eval_time: int
    alerts: tuple[ExpectedAlert, ...]


@dataclass(frozen=True)
class AlertTest:
    """promtool's own test shape for one plain alert: input series and expected alerts."""

    interval: int
    input_series: tuple[tuple[str, str], ...]  # (series, values in promtool notation)
    checks: tuple[AlertCheck, ...]


@dataclass(frozen=True)
class Alert:
    """A plain alert rule (not derived from an SLO): PromQL for Prometheus or LogQL for the
    Loki ruler, labelled, routed, inhibited and escalated like every other alert."""

    name: str
    engine: str  # prometheus | loki
    expr: str
    for_: int
    severity: str
    category: str
    service: str | None
    team: str | None
    impact: str | None  # outage | degraded: also goes to the status page
    summary: str
    description: str
    runbook_url: str | None
    labels: tuple[tuple[str, str], ...]
    tests: tuple[AlertTest, ...]
    pack: str | None = None  # the alert pack it came from, if any


@dataclass(frozen=True)
class Kubernetes:
    """Where the kubernetes target's objects go, and the labels the operator selects them by."""

    namespace: str
    release: str  # kube-prometheus-stack fullnameOverride: <release>-prometheus, <release>-alertmanager
    labels: tuple[tuple[str, str], ...]

    @classmethod
    def default(cls, stack_name: str) -> Kubernetes:
        # A label value ends with a letter or digit and holds at most 63 characters; a stack
        # name may end with "-" (kube-prometheus-stack trims it from the fullname the same way).
        return cls("monitoring", chart_fullname(stack_name), (("stackgen.dev/stack", stack_name[:63].rstrip("-_.")),))


def chart_fullname(name: str) -> str:
    """kube-prometheus-stack's fullname: the override cut to 26 characters, one trailing "-"
    dropped (its _helpers.tpl: trunc 26 | trimSuffix "-"); its services carry this prefix."""
    cut = name[:26]
    return cut[:-1] if cut.endswith("-") else cut


@dataclass(frozen=True)
class LongTermStorage:
    """Remote write to Mimir, Cortex or Thanos Receive, and where its ruler evaluates."""

    kind: str  # mimir | cortex | thanos
    remote_write_url: str
    query_url: str
    tenant: str | None
    bearer_token_file: str | None
    basic_auth: tuple[str, str] | None  # (username, password file)
    evaluate: str  # prometheus | ruler
    rules_per_group: int
    groups_per_tenant: int
    query_offset: int = 60  # seconds the ruler reads behind now: remote-written samples arrive late

    @property
    def tenant_header(self) -> str:
        """The header that names the tenant: Thanos Receive's default, or Cortex's and Mimir's."""
        return "THANOS-TENANT" if self.kind == "thanos" else "X-Scope-OrgID"

    @property
    def in_ruler(self) -> bool:
        return self.evaluate == "ruler"


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
    external_urls: tuple[tuple[str, str], ...] = ()  # component -> URL users open (prometheus, alertmanager)
    kubernetes: Kubernetes | None = None  # set for the kubernetes target (defaults filled in)
    long_term_storage: LongTermStorage | None = None
    images: tuple[tuple[str, str], ...] = ()  # component -> digest-pinned image (stack.images)

    def image(self, component: str) -> str:
        """The image docker-compose.yml runs: the spec's digest pin, else the pinned tag."""
        return dict(self.images).get(component) or IMAGES[component]

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
    alerts: tuple[Alert, ...] = ()
    probes: tuple[Probe, ...] = ()
    exporters: tuple[Exporter, ...] = ()

    @property
    def slos(self) -> tuple[SLO, ...]:
        return tuple(slo for service in self.services for slo in service.slos)

    @property
    def teams(self) -> tuple[str, ...]:
        teams = {s.team for s in self.services} | {a.team for a in self.alerts if a.team}
        return tuple(sorted(teams))

    @property
    def categories(self) -> tuple[str, ...]:
        """Every category an alert can carry: stackgen's own, routed ones, plain alerts'."""
        seen = dict.fromkeys(BUILTIN_CATEGORIES)
        seen.update(dict.fromkeys(c for c, _ in self.routing.categories))
        seen.update(dict.fromkeys(a.category for a in self.alerts))
        seen.update(dict.fromkeys(a.category for a in self.logs.custom_alerts))
        return tuple(seen)

    def receiver(self, name: str) -> Receiver:
        return next(r for r in self.receivers if r.name == name)

    def exporter(self, component: str) -> Exporter | None:
        return next((e for e in self.exporters if e.component == component), None)

    def runs(self, component: str) -> bool:
        """Whether an optional component (exporter, pushgateway, blackbox) is part of the stack."""
        return self.exporter(component) is not None

    def prometheus_alerts(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if a.engine == "prometheus")

    def loki_alerts(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if a.engine == "loki")

    def secret_uses(self) -> tuple[SecretUse, ...]:
        """Every secret file the stack reads: by whom, for what, named where in the spec. The
        one list the model's checks, the compose mounts and secrets/README.md all read."""
        uses = []
        for i, receiver in enumerate(self.receivers):
            for key, value in receiver.settings:
                if key.endswith("_file"):
                    uses.append(
                        SecretUse(str(value), "alertmanager", key, f"receiver {receiver.name}", ("receivers", i, key))
                    )
        for i, job in enumerate(self.scrape_jobs):
            for key, value in job.secret_settings().items():
                path: tuple[str | int, ...] = ("scrape_jobs", i, *key.split("."))
                uses.append(SecretUse(value, "prometheus", key, f"scrape job {job.name}", path))
        storage = self.stack.long_term_storage
        if storage and storage.bearer_token_file:
            where: tuple[str | int, ...] = ("stack", "long_term_storage", "bearer_token_file")
            purpose = "remote_write.bearer_token_file"
            uses.append(SecretUse(storage.bearer_token_file, "prometheus", purpose, "remote write", where))
        if storage and storage.basic_auth:
            where = ("stack", "long_term_storage", "basic_auth", "password_file")
            uses.append(
                SecretUse(storage.basic_auth[1], "prometheus", "remote_write.password_file", "remote write", where)
            )
        for exporter in self.exporters:
            for key, value in exporter.settings:
                if key.endswith("_file"):
                    uses.append(
                        SecretUse(
                            str(value), exporter.component, key, exporter.component, ("exporters", exporter.key, key)
                        )
                    )
        return tuple(uses)

    def secrets_of(self, component: str) -> list[str]:
        """The secret files one compose service mounts: its own, no one else's."""
        return sorted({u.file for u in self.secret_uses() if u.component == component})
