"""kubernetes/ and helm/: the stack for the Prometheus Operator (stack.target: kubernetes).

The components come from the community Helm charts users install them with
(kube-prometheus-stack, grafana/loki, grafana/alloy, prometheus-blackbox-exporter): stackgen
writes their values (helm/) and the objects they read (kubernetes/). Every object carries the
rendered artifacts unchanged (rule groups, alertmanager.yml, dashboards, Loki rules), so what
promtool, amtool and the unit tests checked is what the cluster runs.

Why the `alertmanager.yaml` Secret and not AlertmanagerConfig objects: the operator adds a
namespace matcher to every AlertmanagerConfig route and inhibit rule, so the routing tree and
inhibition amtool tested would not be the one that runs; the Secret is that file verbatim.
Why ScrapeConfig and not ServiceMonitor: the spec names its scrape targets as host:port, which
ScrapeConfig's static configs take as they are; a ServiceMonitor needs a Service to select.
"""

from __future__ import annotations

import json
from typing import Any

from stackgen import conventions as cv
from stackgen.durations import format_duration
from stackgen.model import Probe, ScrapeJob, Spec
from stackgen.render import alert_state
from stackgen.render.blackbox import BLACKBOX_CONFIG
from stackgen.render.common import yaml_text
from stackgen.render.grafana import datasources_config
from stackgen.render.k8s_objects import (
    alertmanager_config_secret,
    block,
    document,
    file_text,
    metadata,
    object_name,
)
from stackgen.render.prometheus import ALERT_STATE_RELABEL
from stackgen.render.rule_groups import group_items, service_rule_files, stack_rule_files

DIR = "kubernetes"
HELM = "helm"
# kubectl's client-side apply keeps a copy of each object in an annotation capped at 256 KiB;
# a PrometheusRule is split before it gets there (server-side apply has no such cap).
MAX_OBJECT_BYTES = 200 * 1024
# Components run from their own prometheus-community chart (helm_values) and scraped by a
# ScrapeConfig named like the component, as prometheus.yml names their jobs.
CHART_COMPONENTS = ("pushgateway", "postgres-exporter", "redis-exporter", "nginx-exporter")

# The files the kubernetes target keeps: what the checks read (rules and their tests,
# alertmanager.yml and its routing tests), runbooks, and what this module writes. Everything
# else (compose, prometheus.yml, Loki/Promtail/Alloy/Grafana provisioning) is the charts' job.
KEEP = ("prometheus/rules/", "prometheus/tests/", "alertmanager/", "runbooks/", "mimir/", f"{DIR}/", f"{HELM}/")


def keeps(path: str) -> bool:
    return path.startswith(KEEP)


# --- PrometheusRule -------------------------------------------------------------------------


def rule_objects(spec: Spec, name: str, note: str, paths: list[str], files: dict[str, str]) -> list[str]:
    """PrometheusRule objects carrying the groups of paths, split so none outgrows client-side apply."""
    chunks: list[list[str]] = [[]]
    size = 0
    for path in paths:
        items = f"# From {path.removeprefix('prometheus/')}\n" + group_items(files[path])
        if chunks[-1] and size + len(items) > MAX_OBJECT_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(items)
        size += len(items)
    docs = []
    for i, chunk in enumerate(chunks):
        part = name if len(chunks) == 1 else f"{name}.{i + 1}"
        obj = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": metadata(spec, part)}
        docs.append(document(note, obj, "spec:\n  groups:\n" + block("".join(chunk), 2)))
    return docs


def rule_object_name(spec: Spec, *parts: str) -> str:
    """<stack>.stack, <stack>.service.<name> (parts .1, .2, ...): spec names hold no ".", so
    the stack's rules, a service called "stack" and a split part never share a name."""
    return ".".join(object_name(part) for part in (spec.stack.name, *parts))


def prometheus_rules(spec: Spec, files: dict[str, str]) -> dict[str, str]:
    storage = spec.stack.long_term_storage
    out = {}
    stack_paths = stack_rule_files(files)
    out[f"{DIR}/prometheusrules/_stack.yaml"] = file_text(
        spec,
        "The stack's own rules (watchdog, service down, self-monitoring, escalation) and alert packs.",
        rule_objects(spec, rule_object_name(spec, "stack"), "Groups of " + ", ".join(stack_paths), stack_paths, files),
    )
    if storage and storage.in_ruler:
        return out  # the service rules run in the long-term store's ruler (mimir/rules/)
    for service in spec.services:
        paths = service_rule_files(files, service.name)
        if paths:
            out[f"{DIR}/prometheusrules/{service.name}.yaml"] = file_text(
                spec,
                f"SLO and alert rules of service {service.name} (team {service.team}): the groups of "
                f"prometheus/rules/{service.name}/, unit-tested in prometheus/tests/{service.name}/.",
                rule_objects(
                    spec, rule_object_name(spec, "service", service.name), f"Service {service.name}", paths, files
                ),
            )
    return out


# --- ScrapeConfig and Probe -----------------------------------------------------------------


def secret_key(spec: Spec, component: str, file: str) -> dict[str, str]:
    """A reference to one key of the component's Secret (the key is the spec's file name)."""
    return {"name": cv.k8s_secret_name(spec.stack, component), "key": file}


def scrape_config(spec: Spec, job: ScrapeJob) -> dict[str, Any]:
    # jobName keeps job="<name>": the SLI selectors and ServiceDown match on it.
    body: dict[str, Any] = {"jobName": job.name}
    if job.honor_labels:
        body["honorLabels"] = True
    if job.interval:
        body["scrapeInterval"] = format_duration(job.interval)
    if job.timeout:
        body["scrapeTimeout"] = format_duration(job.timeout)
    body["metricsPath"] = job.metrics_path
    body["scheme"] = job.scheme.upper()
    static: dict[str, Any] = {"targets": list(job.targets)}
    if job.labels:
        static["labels"] = dict(job.labels)
    body["staticConfigs"] = [static]
    if job.bearer_token_file:
        body["authorization"] = {
            "type": "Bearer",
            "credentials": secret_key(spec, "prometheus", job.bearer_token_file),
        }
    if job.basic_auth:
        password_file = job.basic_auth[1]
        body["basicAuth"] = {
            "username": {"name": usernames_secret(spec), "key": f"{password_file}.username"},
            "password": secret_key(spec, "prometheus", password_file),
        }
    if job.tls:
        tls: dict[str, Any] = {}
        if job.tls.ca_file:
            tls["ca"] = {"secret": secret_key(spec, "prometheus", job.tls.ca_file)}
        if job.tls.cert_file and job.tls.key_file:
            tls["cert"] = {"secret": secret_key(spec, "prometheus", job.tls.cert_file)}
            tls["keySecret"] = secret_key(spec, "prometheus", job.tls.key_file)
        if job.tls.server_name:
            tls["serverName"] = job.tls.server_name
        if job.tls.insecure_skip_verify:
            tls["insecureSkipVerify"] = True
        body["tlsConfig"] = tls
    return {
        "apiVersion": "monitoring.coreos.com/v1alpha1",
        "kind": "ScrapeConfig",
        "metadata": metadata(spec, object_name(spec.stack.name, job.name)),
        "spec": body,
    }


def probe_object(spec: Spec, probe: Probe) -> dict[str, Any]:
    body: dict[str, Any] = {
        "jobName": probe.name,
        "module": probe.module,
        "prober": {"url": cv.address(spec.stack, "blackbox-exporter"), "path": "/probe"},
    }
    if probe.interval:
        body["interval"] = format_duration(probe.interval)
    static: dict[str, Any] = {"static": list(probe.targets)}
    if probe.labels:
        static["labels"] = dict(probe.labels)
    body["targets"] = {"staticConfig": static}
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "Probe",
        "metadata": metadata(spec, object_name(spec.stack.name, probe.name)),
        "spec": body,
    }


def alert_state_target(spec: Spec) -> str:
    """The sidecar in the Alertmanager pod: the operator names the StatefulSet alertmanager-<the
    Alertmanager's name> and its governing headless Service alertmanager-operated."""
    stack = spec.stack
    pod = f"alertmanager-{cv.k8s_service(stack, 'alertmanager')}-0"
    return f"{pod}.alertmanager-operated.{cv.k8s_namespace(stack)}.svc:{alert_state.PORT}"


def alert_state_scrape_config(spec: Spec) -> dict[str, Any]:
    relabel = [
        {
            {"source_labels": "sourceLabels", "target_label": "targetLabel"}.get(key, key): value
            for key, value in rule.items()
        }
        for rule in ALERT_STATE_RELABEL
    ]
    return {
        "apiVersion": "monitoring.coreos.com/v1alpha1",
        "kind": "ScrapeConfig",
        "metadata": metadata(spec, alert_state_config_map_name(spec)),
        "spec": {
            "jobName": cv.ALERT_STATE_JOB,  # AlertStateUnknown reads up{job="alert-state-exporter"}
            "metricsPath": "/metrics",
            "scheme": "HTTP",
            "staticConfigs": [{"targets": [alert_state_target(spec)]}],
            "metricRelabelings": relabel,
        },
    }


def alert_state_config_map(spec: Spec) -> dict[str, str]:
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(spec, alert_state_config_map_name(spec)),
    }
    tail = "data:\n  exporter.py: |\n" + block(alert_state.exporter_text(spec), 4)
    note = (
        "The alert-state exporter's code, mounted read-only into its sidecar of the Alertmanager pod "
        "(helm/kube-prometheus-stack.values.yaml): stackgen_alert_silenced and stackgen_alert_inhibited per alert."
    )
    return {f"{DIR}/alert-state-exporter.yaml": file_text(spec, note, [document(None, obj, tail)])}


def alert_state_config_map_name(spec: Spec) -> str:
    """The ConfigMap's name, and the ScrapeConfig's (another kind)."""
    return object_name(spec.stack.name, cv.ALERT_STATE_JOB)


def usernames_secret(spec: Spec) -> str:
    return object_name(spec.stack.name, "basic-auth-usernames")


def basic_auth_users(spec: Spec) -> dict[str, str]:
    """<password file>.username -> the spec's user name, for every basic-auth user Prometheus
    sends (scrape jobs, remote write)."""
    users = {f"{job.basic_auth[1]}.username": job.basic_auth[0] for job in spec.scrape_jobs if job.basic_auth}
    storage = spec.stack.long_term_storage
    if storage and storage.basic_auth:
        users[f"{storage.basic_auth[1]}.username"] = storage.basic_auth[0]
    return dict(sorted(users.items()))


def scraping(spec: Spec) -> dict[str, str]:
    docs = []
    users = basic_auth_users(spec)
    if users:
        # The operator reads basic-auth user names from a Secret; they are no secret, so
        # stackgen writes this one (the passwords stay in the Secret you create).
        obj = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": metadata(spec, usernames_secret(spec)),
            "type": "Opaque",
            "stringData": users,
        }
        docs.append(document("Basic-auth user names (from the spec) for scrape jobs and remote write", obj))
    for job in spec.scrape_jobs:
        owners = [s.name for s in spec.services if job.name in s.jobs]
        note = f"Scrape job {job.name}" + (f" (service {', '.join(owners)})" if owners else "")
        docs.append(document(note, scrape_config(spec, job)))
    for probe in spec.probes:
        docs.append(document(f"Probe {probe.name}: blackbox {probe.module}", probe_object(spec, probe)))
    for component in CHART_COMPONENTS:
        if spec.runs(component):
            # Pushed series keep the pusher's job/instance labels, as in prometheus.yml.
            job = ScrapeJob(
                component,
                (cv.address(spec.stack, component),),
                None,
                None,
                "/metrics",
                "http",
                (),
                honor_labels=component == "pushgateway",
            )
            note = f"The {component} (helm/prometheus-{component}.values.yaml)"
            docs.append(document(note, scrape_config(spec, job)))
    docs.append(
        document(
            "The alert-state exporter, a sidecar of the Alertmanager pod (kubernetes/alert-state-exporter.yaml): "
            "its series get the alert's own job and instance back, so each matches its ALERTS series.",
            alert_state_scrape_config(spec),
        )
    )
    return {
        f"{DIR}/scraping.yaml": file_text(
            spec,
            "The spec's scrape jobs (ScrapeConfig) and blackbox probes (Probe); credentials are keys of "
            f"the Secret {cv.k8s_secret_name(spec.stack, 'prometheus')} (see secrets/README.md).",
            docs,
        )
    }


# --- Alertmanager, Grafana, Loki ------------------------------------------------------------


def alertmanager(spec: Spec, files: dict[str, str]) -> dict[str, str]:
    obj = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(spec, alertmanager_config_secret(spec)),
        "type": "Opaque",
    }
    note = (
        "alertmanager/alertmanager.yml verbatim (amtool-checked), as the Alertmanager's configSecret. "
        "It holds no secret: receivers read theirs from files of the Secret "
        f"{cv.k8s_secret_name(spec.stack, 'alertmanager')}."
    )
    tail = "stringData:\n  alertmanager.yaml: |\n" + block(files["alertmanager/alertmanager.yml"], 4)
    return {f"{DIR}/alertmanager-config.yaml": file_text(spec, note, [document(None, obj, tail)])}


def dashboard_name(spec: Spec, path: str) -> str:
    return object_name(spec.stack.name, "dashboard", path.rsplit("/", 1)[1].removesuffix(".json"))


def grafana(spec: Spec, files: dict[str, str]) -> dict[str, str]:
    docs = []
    for path in sorted(p for p in files if p.startswith("grafana/dashboards/") and p.endswith(".json")):
        folder = path.split("/")[2]
        title = json.loads(files[path]).get("title", "")
        obj = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": metadata(
                spec,
                dashboard_name(spec, path),
                labels={"grafana_dashboard": "1"},
                annotations={"grafana_folder": folder},
            ),
        }
        key = path.rsplit("/", 1)[1]
        docs.append(
            document(f"Dashboard {title!r} (folder {folder})", obj, f"data:\n  {key}: |\n" + block(files[path], 4))
        )
    datasources = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(spec, object_name(spec.stack.name, "datasources"), labels={"grafana_datasource": "1"}),
    }
    ds_text = yaml_text(datasources_config(spec))
    docs.insert(
        0,
        document(
            "Grafana datasources with the fixed uids the dashboards reference",
            datasources,
            "data:\n  stackgen-datasources.yaml: |\n" + block(ds_text, 4),
        ),
    )
    return {
        f"{DIR}/grafana.yaml": file_text(
            spec,
            "Grafana datasources and dashboards as ConfigMaps for the Grafana sidecar (labels grafana_datasource "
            "and grafana_dashboard; folder from the grafana_folder annotation). Apply with --server-side: "
            "large dashboards outgrow client-side apply's 256 KiB annotation.",
            docs,
        )
    }


def loki_rules(spec: Spec, files: dict[str, str]) -> dict[str, str]:
    paths = sorted(p for p in files if p.startswith("loki/rules/"))
    if not paths:
        return {}
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(spec, object_name(spec.stack.name, "loki-rules"), labels={"loki_rule": "1"}),
    }
    tail = "data:\n" + "".join(f"  {p.rsplit('/', 1)[1]}: |\n" + block(files[p], 4) for p in paths)
    note = "Loki ruler rules (LogQL alerts and their escalation levels) for the Loki chart's rules sidecar."
    return {f"{DIR}/loki-rules.yaml": file_text(spec, note, [document(None, obj, tail)])}


def namespace(spec: Spec) -> dict[str, str]:
    meta = metadata(spec, cv.k8s_namespace(spec.stack))
    del meta["namespace"]  # a Namespace is in none
    obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}
    note = "The namespace every object and Helm release of the stack lives in."
    return {f"{DIR}/namespace.yaml": file_text(spec, note, [document(None, obj)])}


def render(spec: Spec, files: dict[str, str]) -> dict[str, str]:
    if spec.stack.target != "kubernetes":
        return {}
    out: dict[str, str] = {}
    for part in (
        namespace(spec),
        prometheus_rules(spec, files),
        scraping(spec),
        alertmanager(spec, files),
        alert_state_config_map(spec),
    ):
        out.update(part)
    out.update(grafana(spec, files))
    out.update(loki_rules(spec, files))
    from stackgen.render import helm_values

    out.update(helm_values.render(spec, files.get(BLACKBOX_CONFIG)))
    return out
