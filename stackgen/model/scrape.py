"""stack:, scrape_jobs:, probes: and exporters: -> Stack, ScrapeJob, Probe, Exporter."""

from __future__ import annotations

from typing import Any

from stackgen.components import COMPONENT_PORTS
from stackgen.model.base import BuilderBase, Path_, pairs
from stackgen.model.types import TLS, Exporter, Kubernetes, LongTermStorage, Probe, ScrapeJob, Stack
from stackgen.versions import IMAGES, registry_and_repository, tag_of

# Scrape jobs the stack writes for its own components (prometheus.yml) are named like them.
STACK_JOB_NAMES = frozenset(COMPONENT_PORTS)
# exporters: key -> the component it runs.
EXPORTER_COMPONENTS = {
    "postgres": "postgres-exporter",
    "redis": "redis-exporter",
    "nginx": "nginx-exporter",
    "blackbox": "blackbox-exporter",
    "pushgateway": "pushgateway",
}
# What an exporter cannot start without: (setting, what it is).
EXPORTER_REQUIRED = {
    "postgres": ("uri", "where the database listens, e.g. postgres:5432/app?sslmode=disable"),
    "redis": ("address", "where Redis listens, e.g. redis://redis:6379"),
    "nginx": ("scrape_uri", "nginx's stub_status URL, e.g. http://nginx:8080/nginx_status"),
}
EXPORTER_KEYS = {component: key for key, component in EXPORTER_COMPONENTS.items()}
PROBE_MODULES = ("http_2xx", "http_2xx_tls", "tcp_connect", "tcp_tls")


class ScrapeBuilder(BuilderBase):
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
        effective = {**COMPONENT_PORTS, **raw.get("ports", {})}
        for component, port in sorted(raw.get("ports", {}).items()):
            clash = sorted(c for c, q in effective.items() if q == port and c != component)
            if clash:
                self.fail(
                    (*p, "ports", component),
                    f"port {port} is also {', '.join(clash)}'s: two components cannot listen on one port",
                )
        return Stack(
            name=raw["name"],
            target=raw.get("target", "docker"),
            scrape_interval=scrape,
            evaluation_interval=evaluation,
            metrics_retention=self.duration(raw.get("metrics_retention"), (*p, "metrics_retention"), 15 * 86400),
            grafana_url=raw.get("grafana_url", "http://localhost:3000").rstrip("/"),
            runbook_base_url=(raw["runbook_base_url"].rstrip("/") if raw.get("runbook_base_url") else None),
            lifecycle_api=bool(raw.get("lifecycle_api", False)),
            publish=pairs(publish),
            ports=pairs(raw.get("ports")),
            secrets_dir=raw.get("secrets_dir", "/etc/stackgen/secrets"),
            data_dir=raw.get("data_dir", "/var/lib/stackgen"),
            external_urls=tuple(
                (component, raw[f"{component}_url"].rstrip("/"))
                for component in ("prometheus", "alertmanager")
                if raw.get(f"{component}_url")
            ),
            kubernetes=self.build_kubernetes(raw),
            long_term_storage=self.build_long_term_storage(raw.get("long_term_storage"), (*p, "long_term_storage")),
            images=self.build_images(raw),
        )

    def build_images(self, raw: dict[str, Any]) -> tuple[tuple[str, str], ...]:
        """stack.images: digest pins of the very images stackgen renders (the healthchecks and
        config formats are those of that version), from their registry or a mirror of it."""
        images: dict[str, str] = raw.get("images") or {}
        for component, image in sorted(images.items()):
            want = IMAGES[component]
            repository = registry_and_repository(image)[1]
            want_repository = registry_and_repository(want)[1]
            same_repository = repository == want_repository or repository.endswith("/" + want_repository)
            if not same_repository or tag_of(image) != tag_of(want):
                self.fail(
                    ("stack", "images", component),
                    f"{image.split('@')[0]} is not the image stackgen renders for {component} ({want}); pin "
                    f"that one's digest ({want}@sha256:...; `stackgen pin-images` prints it), or a mirror's "
                    f"copy of it (<mirror>/{want_repository}:{tag_of(want)}@sha256:...)",
                )
        return pairs(images)

    def build_kubernetes(self, raw: dict[str, Any]) -> Kubernetes | None:
        settings = raw.get("kubernetes")
        if raw.get("target") != "kubernetes" and settings is None:
            return None
        default = Kubernetes.default(raw["name"])
        settings = settings or {}
        return Kubernetes(
            namespace=settings.get("namespace", default.namespace),
            release=settings.get("release", default.release),
            labels=pairs(settings["labels"]) if settings.get("labels") else default.labels,
        )

    def build_long_term_storage(self, raw: dict[str, Any] | None, p: Path_) -> LongTermStorage | None:
        if raw is None:
            return None
        if "bearer_token_file" in raw and "basic_auth" in raw:
            self.fail(p, "give one of bearer_token_file or basic_auth: a remote write sends one Authorization header")
        for key in ("remote_write_url", "query_url"):
            credentials = "bearer_token_file" in raw or "basic_auth" in raw
            if credentials and raw[key].startswith("http://") and "://127.0.0.1" not in raw[key]:
                self.fail((*p, key), "credentials over plain http can be read by anyone on the path: use https://")
        limits = raw.get("ruler_limits", {})
        basic = raw.get("basic_auth")
        return LongTermStorage(
            kind=raw["kind"],
            remote_write_url=raw["remote_write_url"],
            query_url=raw["query_url"].rstrip("/"),
            tenant=raw.get("tenant"),
            bearer_token_file=raw.get("bearer_token_file"),
            basic_auth=(basic["username"], basic["password_file"]) if basic else None,
            evaluate=raw.get("evaluate", "prometheus"),
            # Mimir's defaults (pkg/util/validation/limits.go); Cortex and Thanos set none.
            rules_per_group=limits.get("rules_per_group", 20),
            groups_per_tenant=limits.get("groups_per_tenant", 70),
            query_offset=self.duration(raw.get("query_offset"), (*p, "query_offset"), 60),
        )

    def check_interval(self, interval: int | None, path: Path_, stack: Stack) -> None:
        if interval and stack.evaluation_interval < 2 * interval:
            self.fail(
                path,
                "SLO rules rate over the evaluation interval, which must be at "
                "least twice every scrape interval; scrape more often or raise "
                "stack.evaluation_interval",
            )

    def build_jobs(self, raw: list[dict[str, Any]], stack: Stack) -> tuple[ScrapeJob, ...]:
        self.unique(raw, ("scrape_jobs",), "scrape job")
        jobs = []
        for i, job in enumerate(raw):
            p: Path_ = ("scrape_jobs", i)
            if job["name"] in STACK_JOB_NAMES:
                self.fail(
                    (*p, "name"),
                    f"{job['name']!r} is the scrape job of the stack's own {job['name']}; pick another name",
                )
            interval = self.duration(job.get("interval"), (*p, "interval"), 0) or None
            timeout = self.duration(job.get("timeout"), (*p, "timeout"), 0) or None
            if timeout and timeout > (interval or stack.scrape_interval):
                self.fail((*p, "timeout"), "must not exceed the scrape interval")
            self.check_interval(interval, (*p, "interval"), stack)
            auth = [k for k in ("bearer_token_file", "basic_auth") if k in job]
            if len(auth) > 1:
                self.fail(p, "give one of bearer_token_file or basic_auth: a scrape sends one Authorization header")
            basic = job.get("basic_auth")
            tls_raw = job.get("tls")
            tls = None
            if tls_raw is not None:
                if ("cert_file" in tls_raw) != ("key_file" in tls_raw):
                    self.fail((*p, "tls"), "a client certificate needs both cert_file and key_file")
                tls = TLS(
                    ca_file=tls_raw.get("ca_file"),
                    cert_file=tls_raw.get("cert_file"),
                    key_file=tls_raw.get("key_file"),
                    server_name=tls_raw.get("server_name"),
                    insecure_skip_verify=bool(tls_raw.get("insecure_skip_verify", False)),
                )
                if job.get("scheme", "http") != "https":
                    self.fail((*p, "tls"), "TLS settings need scheme: https")
            if auth and job.get("scheme", "http") != "https" and not job.get("allow_plain_http_credentials"):
                self.fail(
                    (*p, auth[0]),
                    "credentials over plain http can be read by anyone on the path: use scheme: https, "
                    "or set allow_plain_http_credentials: true for a private network",
                )
            jobs.append(
                ScrapeJob(
                    job["name"],
                    tuple(job["targets"]),
                    interval,
                    timeout,
                    job.get("metrics_path", "/metrics"),
                    job.get("scheme", "http"),
                    pairs(job.get("labels")),
                    bearer_token_file=job.get("bearer_token_file"),
                    basic_auth=(basic["username"], basic["password_file"]) if basic else None,
                    tls=tls,
                    honor_labels=bool(job.get("honor_labels", False)),
                )
            )
        return tuple(jobs)

    def build_probes(self, raw: list[dict[str, Any]], stack: Stack, job_names: set[str]) -> tuple[Probe, ...]:
        self.unique(raw, ("probes",), "probe")
        probes = []
        for i, probe in enumerate(raw):
            p: Path_ = ("probes", i)
            if probe["name"] in job_names or probe["name"] in STACK_JOB_NAMES:
                self.fail(
                    (*p, "name"),
                    f"{probe['name']!r} is already a scrape job: a probe is scraped as a job of its own name",
                )
            interval = self.duration(probe.get("interval"), (*p, "interval"), 0) or None
            self.check_interval(interval, (*p, "interval"), stack)
            module = probe.get("module", "http_2xx")
            for j, target in enumerate(probe["targets"]):
                is_url = target.startswith(("http://", "https://"))
                if module.startswith("http") and not is_url:
                    self.fail((*p, "targets", j), f"an {module} probe needs a URL (https://host/path)")
                if module.startswith("tcp") and is_url:
                    self.fail((*p, "targets", j), f"a {module} probe needs host:port, not a URL")
                if module == "http_2xx_tls" and not target.startswith("https://"):
                    self.fail((*p, "targets", j), "http_2xx_tls checks a certificate: the URL must be https://")
            probes.append(Probe(probe["name"], module, tuple(probe["targets"]), interval, pairs(probe.get("labels"))))
        return tuple(probes)

    def build_exporters(
        self, raw: dict[str, Any], optional: list[str], probes: tuple[Probe, ...]
    ) -> tuple[Exporter, ...]:
        """exporters: (with settings) plus stack.optional_services (names only; the three
        that scrape something need exporters.<name> to know where it is)."""
        by_component: dict[str, Exporter] = {}
        for key, settings in raw.items():
            component = EXPORTER_COMPONENTS[key]
            by_component[component] = Exporter(component, pairs(settings), key)
        for i, component in enumerate(optional):
            if component in by_component:
                continue
            key = EXPORTER_KEYS[component]
            if key in EXPORTER_REQUIRED:
                setting, what = EXPORTER_REQUIRED[key]
                self.fail(
                    ("stack", "optional_services", i),
                    f"{component} needs to know what to scrape: set exporters.{key}.{setting} ({what})",
                )
                continue
            by_component[component] = Exporter(component, key=key)
        if probes and "blackbox-exporter" not in by_component:
            by_component["blackbox-exporter"] = Exporter("blackbox-exporter", key="blackbox")
        return tuple(by_component[c] for c in sorted(by_component))
