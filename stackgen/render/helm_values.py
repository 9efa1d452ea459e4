"""helm/: values for the community charts that run the kubernetes target's components.

kube-prometheus-stack (Prometheus Operator, Prometheus, Alertmanager, Grafana, node-exporter),
Loki (grafana-community/helm-charts loki, single binary), Alloy (grafana/alloy, a DaemonSet
reading pod logs) and prometheus-blackbox-exporter when the spec probes. Each sets
fullnameOverride so the services have the names conventions.address gives them.
"""

from __future__ import annotations

from typing import Any

import yaml

from stackgen import conventions as cv
from stackgen.durations import format_duration
from stackgen.model import Spec
from stackgen.render import alert_state, loki
from stackgen.render.alloy import kubernetes_config
from stackgen.render.common import header, yaml_document
from stackgen.render.k8s_objects import alertmanager_config_secret, block, document, file_text, metadata

HELM = "helm"


def selector(spec: Spec) -> dict[str, Any]:
    assert spec.stack.kubernetes is not None
    return {"matchLabels": dict(spec.stack.kubernetes.labels)}


def remote_write(spec: Spec) -> list[dict[str, Any]]:
    storage = spec.stack.long_term_storage
    if not storage:
        return []
    secret = cv.k8s_secret_name(spec.stack, "prometheus")
    item: dict[str, Any] = {"url": storage.remote_write_url, "name": storage.kind}
    if storage.tenant:
        item["headers"] = {storage.tenant_header: storage.tenant}
    if storage.bearer_token_file:
        item["authorization"] = {"type": "Bearer", "credentials": {"name": secret, "key": storage.bearer_token_file}}
    if storage.basic_auth:
        from stackgen.render.kubernetes import usernames_secret

        password_file = storage.basic_auth[1]
        item["basicAuth"] = {
            "username": {"name": usernames_secret(spec), "key": f"{password_file}.username"},
            "password": {"name": secret, "key": password_file},
        }
    return [item]


def alert_state_sidecar(spec: Spec) -> dict[str, Any]:
    """The alert-state exporter beside Alertmanager in its pod (it reads 127.0.0.1:9093), its
    code from the ConfigMap of kubernetes/alert-state-exporter.yaml; locked down like the
    compose service: nobody, read-only root, no capability."""
    from stackgen.render.kubernetes import alert_state_config_map_name

    volume = "alert-state-exporter"
    container = {
        "name": "alert-state-exporter",
        "image": spec.stack.image("alert-state-exporter"),
        "command": ["python", "/app/exporter.py"],
        "env": [
            {"name": "ALERTMANAGER_URL", "value": f"http://127.0.0.1:{cv.COMPONENTS['alertmanager']}"},
            {"name": "LISTEN_ADDRESS", "value": f"0.0.0.0:{alert_state.PORT}"},
            {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
        ],
        "ports": [{"name": "alert-state", "containerPort": alert_state.PORT}],
        "volumeMounts": [{"name": volume, "mountPath": "/app", "readOnly": True}],
        # Liveness, not readiness: a readiness failure would take Alertmanager out of its Service.
        "livenessProbe": {"httpGet": {"path": "/-/healthy", "port": alert_state.PORT}},
        "resources": {"limits": {"cpu": "250m", "memory": "128Mi"}, "requests": {"cpu": "10m", "memory": "32Mi"}},
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65534,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    return {
        "containers": [container],
        "volumes": [{"name": volume, "configMap": {"name": alert_state_config_map_name(spec)}}],
    }


def kube_prometheus_stack(spec: Spec) -> str:
    stack = spec.stack
    storage = stack.long_term_storage
    prometheus_spec: dict[str, Any] = {
        "scrapeInterval": format_duration(stack.scrape_interval),
        "evaluationInterval": format_duration(stack.evaluation_interval),
        "retention": format_duration(stack.metrics_retention),
        "externalUrl": cv.external_url(stack, "prometheus"),
        "externalLabels": {"stack": stack.name},
        # Select stackgen's objects by their labels, whatever the Helm release is called.
        "ruleSelectorNilUsesHelmValues": False,
        "ruleSelector": selector(spec),
        "scrapeConfigSelectorNilUsesHelmValues": False,
        "scrapeConfigSelector": selector(spec),
        "probeSelectorNilUsesHelmValues": False,
        "probeSelector": selector(spec),
    }
    if spec.secrets_of("prometheus"):
        prometheus_spec["secrets"] = [cv.k8s_secret_name(stack, "prometheus")]
    if storage:
        prometheus_spec["remoteWrite"] = remote_write(spec)
    alertmanager_spec: dict[str, Any] = {
        "useExistingSecret": True,
        "configSecret": alertmanager_config_secret(spec),
        "externalUrl": cv.external_url(stack, "alertmanager"),
    }
    if spec.secrets_of("alertmanager"):
        alertmanager_spec["secrets"] = [cv.k8s_secret_name(stack, "alertmanager")]
    alertmanager_spec.update(alert_state_sidecar(spec))
    grafana: dict[str, Any] = {
        # stackgen's dashboards and datasources (kubernetes/grafana.yaml) replace the chart's.
        "defaultDashboardsEnabled": False,
        "admin": {
            "existingSecret": f"{stack.name}-grafana-admin",
            "userKey": "admin-user",
            "passwordKey": "admin-password",
        },
        "grafana.ini": {
            "server": {"root_url": stack.grafana_url},
            "analytics": {"reporting_enabled": False},
            "users": {"allow_sign_up": False},
        },
        "sidecar": {
            "dashboards": {
                "enabled": True,
                "label": "grafana_dashboard",
                "labelValue": "1",
                "searchNamespace": cv.k8s_namespace(stack),
                "folderAnnotation": "grafana_folder",
                "provider": {"foldersFromFilesStructure": True},
            },
            "datasources": {
                "enabled": True,
                "label": "grafana_datasource",
                "labelValue": "1",
                # The chart's own Prometheus and Alertmanager datasources would share names with
                # stackgen's, and Grafana matches provisioned datasources by name.
                "defaultDatasourceEnabled": False,
                "alertmanager": {"enabled": False},
            },
        },
    }
    sections: list[tuple[str | None, dict[str, Any]]] = [
        (
            "Names: services are <release>-prometheus and <release>-alertmanager.",
            {"fullnameOverride": cv.k8s_release(stack)},
        ),
        (
            "stackgen renders its own rules and routing; the chart's default rules would page on their own "
            "terms, so they are off.",
            {"defaultRules": {"create": False}},
        ),
        (
            "Prometheus: cadence (the evaluation interval is the SLO base window), retention, and the "
            "PrometheusRule/ScrapeConfig/Probe objects of kubernetes/ by their labels."
            + (" Every sample is also written to long-term storage." if storage else ""),
            {"prometheus": {"prometheusSpec": prometheus_spec}},
        ),
        (
            "Alertmanager reads kubernetes/alertmanager-config.yaml (the amtool-checked alertmanager.yml) "
            "and mounts its receivers' secret files at /etc/alertmanager/secrets/<Secret>/. Beside it in its pod, "
            "the alert-state exporter tells Prometheus which alerts are silenced (escalations stop) or inhibited.",
            {"alertmanager": {"alertmanagerSpec": alertmanager_spec}},
        ),
        (
            f"Grafana: admin from the Secret {stack.name}-grafana-admin (see secrets/README.md); dashboards and "
            "datasources from the ConfigMaps in kubernetes/grafana.yaml.",
            {"grafana": grafana},
        ),
    ]
    return yaml_document(
        header(spec.source_file, "Values for prometheus-community/kube-prometheus-stack (helm upgrade --install)."),
        sections,
    )


def loki_values(spec: Spec) -> str:
    limits = loki.limits(spec)
    sections: list[tuple[str | None, dict[str, Any]]] = [
        ("Names: the gateway service is loki-gateway (port 80).", {"fullnameOverride": "loki"}),
        ("One Loki process on a filesystem volume, like the compose stack.", {"deploymentMode": "SingleBinary"}),
        (
            "Loki itself: single tenant (fake), filesystem storage, tsdb schema v13, retention by the "
            "compactor, the ruler sending to the stack's Alertmanager.",
            {
                "loki": {
                    "auth_enabled": False,
                    "commonConfig": {"replication_factor": 1},
                    "storage": {"type": "filesystem"},
                    "schemaConfig": {
                        "configs": [
                            {
                                "from": "2024-04-01",
                                "store": "tsdb",
                                "object_store": "filesystem",
                                "schema": "v13",
                                "index": {"prefix": "index_", "period": "24h"},
                            }
                        ]
                    },
                    "limits_config": limits,
                    "compactor": {"retention_enabled": True, "delete_request_store": "filesystem"},
                    "rulerConfig": {
                        "alertmanager_url": f"http://{cv.address(spec.stack, 'alertmanager')}",
                        "enable_alertmanager_v2": True,
                        "external_url": spec.stack.grafana_url,
                        "datasource_uid": cv.DS_LOKI,
                        "enable_api": True,
                        "rule_path": "/tmp/rules",
                        "storage": {"type": "local", "local": {"directory": "/rules"}},
                    },
                }
            },
        ),
        (
            "The rules sidecar writes the ConfigMap of kubernetes/loki-rules.yaml (label loki_rule) where the "
            "ruler reads the single tenant's rules.",
            {"sidecar": {"rules": {"enabled": True, "label": "loki_rule", "labelValue": "1", "folder": "/rules/fake"}}},
        ),
        (
            "No other deployment mode's pods, and none of the chart's extras a single binary does not "
            "need (memcached caches asking for gigabytes, the canary, helm tests).",
            {
                "singleBinary": {"replicas": 1},
                "read": {"replicas": 0},
                "write": {"replicas": 0},
                "backend": {"replicas": 0},
                "chunksCache": {"enabled": False},
                "resultsCache": {"enabled": False},
                "lokiCanary": {"enabled": False},
                "test": {"enabled": False},
            },
        ),
    ]
    return yaml_document(
        header(spec.source_file, "Values for the Loki chart (grafana-community/helm-charts loki)."), sections
    )


def alloy_values(spec: Spec) -> str:
    sections: list[tuple[str | None, dict[str, Any]]] = [
        ("Names.", {"fullnameOverride": f"{spec.stack.name}-alloy"}),
        ("One agent per node.", {"controller": {"type": "daemonset"}}),
        (
            "The config is kubernetes/alloy-config.yaml's ConfigMap (not the chart's: its content would go "
            "through Helm's tpl); pod logs are read from the node's /var/log/pods.",
            {
                "alloy": {
                    "configMap": {"create": False, "name": f"{spec.stack.name}-alloy-config", "key": "config.alloy"},
                    "mounts": {"varlog": True},
                }
            },
        ),
    ]
    return yaml_document(header(spec.source_file, "Values for grafana/alloy (log agent DaemonSet)."), sections)


def blackbox_values(spec: Spec, blackbox_config: str) -> str:
    modules = yaml.safe_load(blackbox_config)["modules"]
    sections: list[tuple[str | None, dict[str, Any]]] = [
        (
            "Names: the Probe objects' prober is <release>-blackbox-exporter:9115.",
            {"fullnameOverride": cv.k8s_service(spec.stack, "blackbox-exporter")},
        ),
        (
            "The modules the spec's probes use (as blackbox/blackbox.yml on the other targets).",
            {"config": {"modules": modules}},
        ),
    ]
    return yaml_document(
        header(spec.source_file, "Values for prometheus-community/prometheus-blackbox-exporter."), sections
    )


def alloy_config_map(spec: Spec) -> dict[str, str]:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata(spec, f"{spec.stack.name}-alloy-config")}
    note = "The log agent's config: every pod's log on the node, CRI-parsed, redacted, pushed to Loki."
    tail = "data:\n  config.alloy: |\n" + block(kubernetes_config(spec), 4)
    return {"kubernetes/alloy-config.yaml": file_text(spec, note, [document(None, obj, tail)])}


def exporter_values(spec: Spec) -> dict[str, list[tuple[str | None, dict[str, Any]]]]:
    """The settings of each chart-run component, from the spec's exporters: section (the same
    settings the compose file passes as environment); secret files are keys of the component's
    Secret."""
    out: dict[str, list[tuple[str | None, dict[str, Any]]]] = {}
    for component in ("pushgateway", "postgres-exporter", "redis-exporter", "nginx-exporter"):
        exporter = spec.exporter(component)
        if exporter is None:
            continue
        settings = dict(exporter.settings)
        secret = cv.k8s_secret_name(spec.stack, component)
        values: list[tuple[str | None, dict[str, Any]]] = []
        if component == "pushgateway":
            values.append((None, {"service": {"port": 9091}}))
        elif component == "postgres-exporter":
            # uri is host[:port][/database][?params], as the compose target's DATA_SOURCE_URI.
            address, _, query = settings["uri"].partition("?")
            hostport, _, database = address.partition("/")
            host, _, port = hostport.partition(":")
            params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
            datasource: dict[str, Any] = {
                "host": host,
                "port": port or "5432",
                "database": database,
                "sslmode": params.pop("sslmode", "disable"),
            }
            if params:
                datasource["extraParams"] = "&".join(f"{k}={v}" for k, v in params.items())
            if "user" in settings:
                datasource["user"] = settings["user"]
            if "password_file" in settings:
                datasource["passwordSecret"] = {"name": secret, "key": settings["password_file"]}
            values.append(
                (
                    "The database, as exporters.postgres says; the password from the Secret. The Service "
                    "listens on the exporter's own port (the chart's default is 80).",
                    {"config": {"datasource": datasource}, "service": {"port": 9187}},
                )
            )
        elif component == "redis-exporter":
            auth: dict[str, Any] = {"enabled": "password_file" in settings}
            if "password_file" in settings:
                # A JSON map {"<address>": "<password>"}, as REDIS_PASSWORD_FILE in compose.
                auth["redisPasswordFile"] = {"secret": {"name": secret, "key": settings["password_file"]}}
            if "user" in settings:
                auth["redisUser"] = settings["user"]
            values.append(("Redis, as exporters.redis says.", {"redisAddress": settings["address"], "auth": auth}))
        else:
            values.append(("nginx's stub_status, as exporters.nginx says.", {"nginxServer": settings["scrape_uri"]}))
        out[component] = values
    return out


def render(spec: Spec, blackbox_config: str | None) -> dict[str, str]:
    out = {
        f"{HELM}/kube-prometheus-stack.values.yaml": kube_prometheus_stack(spec),
        f"{HELM}/loki.values.yaml": loki_values(spec),
        f"{HELM}/alloy.values.yaml": alloy_values(spec),
    }
    if blackbox_config:
        out[f"{HELM}/prometheus-blackbox-exporter.values.yaml"] = blackbox_values(spec, blackbox_config)
    for component, values in exporter_values(spec).items():
        out[f"{HELM}/prometheus-{component}.values.yaml"] = yaml_document(
            header(spec.source_file, f"Values for prometheus-community/prometheus-{component}."),
            [
                (
                    f"Names: kubernetes/scraping.yaml scrapes {cv.address(spec.stack, component)}; the chart's own "
                    "ServiceMonitor stays off so it is not scraped twice.",
                    {
                        "fullnameOverride": cv.k8s_service(spec.stack, component),
                        "serviceMonitor": {"enabled": False},
                    },
                ),
                *values,
            ],
        )
    out.update(alloy_config_map(spec))
    return out
