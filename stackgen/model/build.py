"""build_model(): a loaded spec -> the validated Spec, every section by its own builder."""

from __future__ import annotations

import dataclasses
import difflib
import functools
from importlib import resources
from pathlib import PurePath
from typing import Any

import yaml

from stackgen.durations import format_duration
from stackgen.errors import SpecError
from stackgen.model.alerts import AlertsBuilder
from stackgen.model.logs import LogsBuilder
from stackgen.model.routing import RoutingBuilder
from stackgen.model.scrape import ScrapeBuilder
from stackgen.model.slos import SLOBuilder
from stackgen.model.types import Alert, SecretUse, Service, Spec, Stack
from stackgen.spec.loader import LoadedSpec

# The Grafana admin password: read by Grafana only, named by stackgen (compose secret).
GRAFANA_PASSWORD_SECRET = "grafana_admin_password"
# Each pack and the component it watches.
PACK_COMPONENTS = {
    "node": "node-exporter",
    "cadvisor": "cadvisor",
    "postgres": "postgres-exporter",
    "redis": "redis-exporter",
    "nginx": "nginx-exporter",
    "blackbox": "blackbox-exporter",
    "pushgateway": "pushgateway",
}
PACKS = tuple(PACK_COMPONENTS)


@functools.cache
def pack_alerts(name: str) -> list[dict[str, Any]]:
    """A shipped alert pack: alert entries in the spec's own format (stackgen/packs/<name>.yaml)."""
    text = resources.files("stackgen").joinpath("packs", f"{name}.yaml").read_text()
    alerts: list[dict[str, Any]] = yaml.safe_load(text)["alerts"]
    return alerts


class Builder(ScrapeBuilder, SLOBuilder, RoutingBuilder, LogsBuilder, AlertsBuilder):
    """Turns schema-valid data into the model, collecting every cross-field problem."""

    def build(self) -> Spec:
        data = self.spec.data
        stack = self.build_stack(data["stack"])
        jobs = self.build_jobs(data.get("scrape_jobs", []), stack)
        probes = self.build_probes(data.get("probes", []), stack, {j.name for j in jobs})
        exporters = self.build_exporters(data.get("exporters", {}), data["stack"].get("optional_services", []), probes)
        receivers = self.build_receivers(data["receivers"])
        routing = self.build_routing(data["routing"], {r.name for r in receivers}, receivers)
        severities = routing.severity_names
        storage = stack.long_term_storage
        if storage and storage.in_ruler and storage.kind == "thanos" and stack.target == "kubernetes":
            self.fail(
                ("stack", "long_term_storage", "evaluate"),
                "on Kubernetes a ThanosRuler reads PrometheusRule objects, which stackgen does not render "
                "apart from Prometheus' yet: use evaluate: prometheus, or Mimir/Cortex for the ruler",
            )
        if stack.long_term_storage and stack.long_term_storage.in_ruler and routing.escalation:
            self.fail(
                ("stack", "long_term_storage", "evaluate"),
                "escalation levels are rules over the local Prometheus' ALERTS series, which never sees the "
                "alerts the ruler fires: drop routing.escalation (let your pager escalate) or use evaluate: "
                "prometheus",
            )
        services = self.build_services(
            data["services"],
            data.get("slo_defaults", {}),
            stack,
            {j.name for j in jobs} | {p.name for p in probes},
            severities,
        )
        stack = self.check_retention(stack, services, data["stack"])
        logs = self.build_logs(data.get("logs", {}), {s.name for s in services}, severities)
        alerts = self.build_all_alerts(data, services, severities, logs.stream_labels)
        spec = Spec(
            stack,
            jobs,
            services,
            receivers,
            routing,
            logs,
            source_file=PurePath(self.spec.file).name.replace("\n", " "),
            alerts=tuple(alerts),
            probes=probes,
            exporters=exporters,
        )
        self.check_secrets(spec)
        self.check_team_routes(spec)
        self.check_packs(spec, data.get("alert_packs", {}))
        self.check_impacts(spec, data.get("alerts", []))
        if self.problems:
            raise SpecError(self.problems)
        return spec

    def build_all_alerts(
        self,
        data: dict[str, Any],
        services: tuple[Service, ...],
        severities: tuple[str, ...],
        log_labels: set[str],
    ) -> list[Alert]:
        """The spec's alerts, then each enabled pack's (an alert of the spec replaces a pack
        alert of the same name, so a threshold is tuned by copying the alert)."""
        own = self.build_alerts(data.get("alerts", []), services, severities, log_labels=log_labels)
        names = {a.name for a in own}
        seen: dict[str, int] = {}
        for i, a in enumerate(data.get("alerts", [])):
            if a["name"] in seen:
                self.fail(("alerts", i, "name"), f"duplicate alert name {a['name']!r} (also alerts[{seen[a['name']]}])")
            seen.setdefault(a["name"], i)
        packed: list[Alert] = []
        for name, settings in data.get("alert_packs", {}).items():
            settings = settings or {}
            raw = [
                a for a in pack_alerts(name) if a["name"] not in names and a["name"] not in settings.get("exclude", [])
            ]
            for j, excluded in enumerate(settings.get("exclude", [])):
                if excluded not in {a["name"] for a in pack_alerts(name)}:
                    self.fail(("alert_packs", name, "exclude", j), f"the {name} pack has no alert {excluded!r}")
            packed += self.build_alerts(
                raw, services, severities, path=("alert_packs", name), pack=name, pack_team=settings.get("team")
            )
        return own + packed

    def check_secrets(self, spec: Spec) -> None:
        """A secret file serves one component for one purpose: the file Grafana reads its admin
        password from must not become a webhook's bearer token, nor a scrape job's token an
        SMTP password. (Several receivers may share one SMTP password: same component, same
        purpose.)"""
        first: dict[str, SecretUse] = {}
        for use in spec.secret_uses():
            if use.file == GRAFANA_PASSWORD_SECRET:
                self.fail(use.path, f"{use.file!r} is Grafana's admin password; give this a file of its own")
                continue
            earlier = first.setdefault(use.file, use)
            if (earlier.component, earlier.purpose) != (use.component, use.purpose):
                self.fail(
                    use.path,
                    f"secret file {use.file!r} is also {earlier.user}'s ({earlier.purpose}): give {use.user} "
                    f"({use.purpose}) a file of its own (a secret is mounted only into the one component and "
                    "purpose it serves)",
                )

    def check_retention(self, stack: Stack, services: tuple[Service, ...], raw: dict[str, Any]) -> Stack:
        """Every SLO reads its whole period of base series: Prometheus must keep that long.
        Without metrics_retention the stack keeps 15d, or the longest period when longer."""
        slos = [slo for service in services for slo in service.slos]
        if not slos:
            return stack
        longest = max(slos, key=lambda slo: slo.period)
        if stack.long_term_storage and stack.long_term_storage.in_ruler:
            return stack  # the long-term store's ruler reads the period; local retention only feeds it
        if "metrics_retention" not in raw:
            return dataclasses.replace(stack, metrics_retention=max(stack.metrics_retention, longest.period))
        if stack.metrics_retention < longest.period:
            self.fail(
                ("stack", "metrics_retention"),
                f"{format_duration(stack.metrics_retention)} is shorter than the {format_duration(longest.period)} "
                f"period of SLO {longest.service}/{longest.name}: its budget would be computed from the "
                f"data kept; keep at least {format_duration(longest.period)}",
            )
        return stack

    def check_packs(self, spec: Spec, packs: dict[str, Any]) -> None:
        """A pack watches a component the stack runs; without it none of its alerts can fire
        (not even the one saying the exporter is down: there is no `up` series)."""
        for name in packs:
            component = PACK_COMPONENTS[name]
            docker_only = component == "cadvisor" and spec.stack.target != "docker"
            if docker_only or (component not in ("node-exporter", "cadvisor") and not spec.runs(component)):
                how = (
                    f"only the docker target runs cAdvisor (this is {spec.stack.target})"
                    if docker_only
                    else f"add exporters.{name} (or probes, for blackbox) so the stack runs {component}"
                )
                self.fail(
                    ("alert_packs", name), f"the {name} pack watches {component}, which this stack does not run: {how}"
                )

    def check_impacts(self, spec: Spec, raw_alerts: list[dict[str, Any]]) -> None:
        if spec.routing.status_page_receiver:
            return
        for i, alert in enumerate(raw_alerts):
            if "impact" in alert:
                self.fail(("alerts", i, "impact"), "an impact goes to the status page: set routing.status_page first")

    def check_team_routes(self, spec: Spec) -> None:
        owners = set(spec.teams)
        for team, _ in spec.routing.teams:
            if team not in owners:
                close = difflib.get_close_matches(team, sorted(owners), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; teams are: {', '.join(sorted(owners))}"
                self.fail(
                    ("routing", "teams", team),
                    f"no service or alert belongs to team {team!r}, so this route never matches{hint}",
                )


def build_model(spec: LoadedSpec) -> Spec:
    """The validated model of a loaded spec; raises SpecError listing every problem."""
    return Builder(spec).build()
