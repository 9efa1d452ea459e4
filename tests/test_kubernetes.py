"""stack.target: kubernetes: every object validates against the pinned schema of its kind, and
carries exactly the artifacts the other targets' checks verify (rule groups, alertmanager.yml,
dashboards, Loki rules, redaction); the Helm values select and name what the objects are."""

from __future__ import annotations

import copy
import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from conftest import DEFAULT_SPEC, ROOT, require_tool
from typer.testing import CliRunner

from stackgen.cli import app
from stackgen.pipeline import render_spec
from stackgen.writer import write_tree

SCHEMAS = ROOT / "tests/schemas/kubernetes"
# kind -> pinned schema (tests/schemas/kubernetes/SOURCE.md says where each comes from).
SCHEMA_FILES = {
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule-monitoring-v1.json",
    ("monitoring.coreos.com/v1alpha1", "ScrapeConfig"): "scrapeconfig-monitoring-v1alpha1.json",
    ("monitoring.coreos.com/v1", "Probe"): "probe-monitoring-v1.json",
    ("v1", "ConfigMap"): "configmap-v1.json",
    ("v1", "Secret"): "secret-v1.json",
    ("v1", "Namespace"): "namespace-v1.json",
}
EXAMPLE = ROOT / "examples/every-sli-kind.yaml"
SEEDS = sorted((ROOT / "examples/seeds").glob("*.yaml"))
# Seeds with the cAdvisor pack: the kubelet serves container metrics on Kubernetes.
SEEDS_WITH_CADVISOR = {"000-cloudmon-reporter.yaml", "004-clipper.yaml"}


def validator(api_version: str, kind: str) -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMAS / SCHEMA_FILES[(api_version, kind)]).read_text())
    return jsonschema.validators.validator_for(schema)(schema, format_checker=jsonschema.FormatChecker())


def objects(files: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (path, doc)
        for path, text in sorted(files.items())
        if path.startswith("kubernetes/")
        for doc in yaml.safe_load_all(text)
        if doc is not None
    ]


def k8s(spec: Path) -> dict[str, str]:
    return render_spec(spec, "kubernetes")


def yaml_spec(tmp_path: Path, data: dict[str, Any], name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def default_k8s() -> dict[str, str]:
    return k8s(DEFAULT_SPEC)


@pytest.fixture(scope="module")
def default_docker() -> dict[str, str]:
    return render_spec(DEFAULT_SPEC)


def auth_spec(tmp_path: Path) -> Path:
    """The default spec with scrape jobs that authenticate every way a job can."""
    data = yaml.safe_load(DEFAULT_SPEC.read_text())
    data["scrape_jobs"] += [
        {
            "name": "billing_api",
            "targets": ["billing.internal:443"],
            "scheme": "https",
            "bearer_token_file": "billing_token",
            "tls": {
                "ca_file": "billing_ca.pem",
                "cert_file": "billing.crt",
                "key_file": "billing.key",
                "server_name": "billing.internal",
            },
            "interval": "30s",
            "timeout": "10s",
            "honor_labels": True,
        },
        {
            "name": "ledger",
            "targets": ["ledger-0.ledger:9443", "ledger-1.ledger:9443"],
            "scheme": "https",
            "metrics_path": "/internal/metrics",
            "basic_auth": {"username": "prom", "password_file": "ledger_password"},
            "labels": {"tier": "db"},
        },
    ]
    return yaml_spec(tmp_path, data)


@pytest.mark.parametrize(
    "spec",
    [DEFAULT_SPEC, EXAMPLE, *(s for s in SEEDS if s.name not in SEEDS_WITH_CADVISOR)],
    ids=lambda p: p.name,
)
def test_every_object_validates_against_its_kinds_schema(spec: Path, tmp_path: Path) -> None:
    files = k8s(spec)
    docs = objects(files)
    kinds = {(d["apiVersion"], d["kind"]) for _, d in docs}
    assert ("monitoring.coreos.com/v1", "PrometheusRule") in kinds
    assert ("v1", "Secret") in kinds and ("v1", "ConfigMap") in kinds
    names: set[tuple[str, str]] = set()
    for path, doc in docs:
        errors = list(validator(doc["apiVersion"], doc["kind"]).iter_errors(doc))
        assert not errors, f"{path} {doc['kind']}/{doc['metadata'].get('name')}: {[e.message for e in errors[:3]]}"
        key = (doc["kind"], doc["metadata"]["name"])
        assert key not in names, f"two {key[0]} objects named {key[1]}"
        names.add(key)


def test_scrape_configs_with_credentials_validate(tmp_path: Path) -> None:
    files = k8s(auth_spec(tmp_path))
    configs = {d["spec"]["jobName"]: d for _, d in objects(files) if d["kind"] == "ScrapeConfig"}
    for doc in configs.values():
        assert not list(validator(doc["apiVersion"], "ScrapeConfig").iter_errors(doc))
    billing = configs["billing_api"]["spec"]
    secret = "shop-prometheus-secrets"
    assert billing["authorization"]["credentials"] == {"name": secret, "key": "billing_token"}
    assert billing["tlsConfig"]["ca"] == {"secret": {"name": secret, "key": "billing_ca.pem"}}
    assert billing["tlsConfig"]["keySecret"] == {"name": secret, "key": "billing.key"}
    assert billing["honorLabels"] is True and billing["scrapeTimeout"] == "10s"
    ledger = configs["ledger"]["spec"]
    assert ledger["basicAuth"]["password"] == {"name": secret, "key": "ledger_password"}
    users = next(d for _, d in objects(files) if d["metadata"]["name"] == "shop-basic-auth-usernames")
    assert ledger["basicAuth"]["username"] == {"name": "shop-basic-auth-usernames", "key": "ledger_password.username"}
    assert users["stringData"] == {"ledger_password.username": "prom"}
    assert ledger["staticConfigs"] == [
        {"targets": ["ledger-0.ledger:9443", "ledger-1.ledger:9443"], "labels": {"tier": "db"}}
    ]
    assert ledger["metricsPath"] == "/internal/metrics"
    # The Helm values mount that Secret into Prometheus, and secrets/README.md names its keys.
    values = yaml.safe_load(files["helm/kube-prometheus-stack.values.yaml"])
    assert values["prometheus"]["prometheusSpec"]["secrets"] == [secret]
    for key in ("billing_token", "billing_ca.pem", "billing.key", "ledger_password"):
        assert f"| `{secret}` | `{key}` |" in files["secrets/README.md"]
    # Probe objects validate too (the schema check above covers the demo's probes).


def test_job_names_survive_so_sli_selectors_match(default_k8s: dict[str, str], default_model) -> None:  # type: ignore[no-untyped-def]
    """The operator names a ScrapeConfig's job scrapeConfig/<ns>/<name> unless jobName is set:
    every SLI and ServiceDown rule selects job="<spec job>"."""
    jobs = {d["spec"]["jobName"] for _, d in objects(default_k8s) if d["kind"] in ("ScrapeConfig", "Probe")}
    assert {j.name for j in default_model.scrape_jobs} | {p.name for p in default_model.probes} <= jobs


def rule_file_groups(files: dict[str, str], paths: list[str]) -> list[dict[str, Any]]:
    return [g for p in paths for g in yaml.safe_load(files[p])["groups"]]


def test_prometheus_rules_carry_exactly_the_rendered_groups(
    default_k8s: dict[str, str], default_docker: dict[str, str]
) -> None:
    """Every group of prometheus/rules/ is in exactly one PrometheusRule, unchanged, and the
    rule files are the docker target's (so the generated unit tests cover what the cluster runs)."""
    rule_paths = sorted(p for p in default_k8s if p.startswith("prometheus/rules/"))
    assert {p: default_k8s[p] for p in rule_paths} == {
        p: t for p, t in default_docker.items() if p.startswith("prometheus/rules/")
    }
    assert {p: default_k8s[p] for p in default_k8s if p.startswith("prometheus/tests/")} == {
        p: t for p, t in default_docker.items() if p.startswith("prometheus/tests/")
    }
    carried = [g for _, d in objects(default_k8s) if d["kind"] == "PrometheusRule" for g in d["spec"]["groups"]]
    expected = rule_file_groups(default_k8s, rule_paths)
    key = lambda g: g["name"]  # noqa: E731
    assert sorted(carried, key=key) == sorted(expected, key=key)
    assert len({g["name"] for g in carried}) == len(carried)


def test_prometheus_rule_groups_pass_promtool(default_k8s: dict[str, str], tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    written = []
    for _, doc in objects(default_k8s):
        if doc["kind"] == "PrometheusRule":
            target = tmp_path / f"{doc['metadata']['name']}.yml"
            target.write_text(yaml.safe_dump({"groups": doc["spec"]["groups"]}, sort_keys=False))
            written.append(str(target))
    proc = subprocess.run([promtool, "check", "rules", *written], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("SUCCESS") == len(written)


def test_large_service_is_split_below_the_apply_limit(tmp_path: Path) -> None:
    """90 SLOs on one service: the PrometheusRule is split into parts, each small enough for
    client-side apply (and below the operator's 0.5 MiB per object), none lost."""
    data = yaml.safe_load(DEFAULT_SPEC.read_text())
    api = next(s for s in data["services"] if s["name"] == "api")
    template = next(s for s in api["slos"] if s["name"] == "error-rate")
    for i in range(90):
        slo = copy.deepcopy(template)
        slo["name"] = f"route-{i:03d}-errors"
        api["slos"].append(slo)
    files = k8s(yaml_spec(tmp_path, data))
    text = files["kubernetes/prometheusrules/api.yaml"]
    docs = [d for d in yaml.safe_load_all(text) if d]
    assert len(docs) > 2
    names = [d["metadata"]["name"] for d in docs]
    assert names == [f"shop.service.api.{i + 1}" for i in range(len(docs))]
    for doc in docs:
        # What kubectl's client-side apply keeps in its last-applied annotation, capped at 256 KiB.
        assert len(json.dumps(doc, separators=(",", ":")).encode()) < 256 * 1024
    carried = [g["name"] for d in docs for g in d["spec"]["groups"]]
    api_paths = sorted(p for p in files if p.startswith("prometheus/rules/api/"))
    assert carried == [g["name"] for g in rule_file_groups(files, api_paths)]


def test_rule_object_names_never_collide(tmp_path: Path) -> None:
    """A service called "stack", or one named like a split part, keeps its own object."""
    data = yaml.safe_load(DEFAULT_SPEC.read_text())
    search = next(s for s in data["services"] if s["name"] == "search")
    search["name"] = "stack"
    files = k8s(yaml_spec(tmp_path, data))
    names = [d["metadata"]["name"] for _, d in objects(files) if d["kind"] == "PrometheusRule"]
    assert len(names) == len(set(names)) and {"shop.stack", "shop.service.stack"} <= set(names)


def test_long_stack_names_follow_the_charts_cut(tmp_path: Path) -> None:
    """kube-prometheus-stack cuts its fullname to 26 characters: every address uses the cut name."""
    data = yaml.safe_load(DEFAULT_SPEC.read_text())
    data["stack"]["name"] = "payments-platform-observabil"  # 28 characters; the 26th is "-"
    files = k8s(yaml_spec(tmp_path, data))
    release = yaml.safe_load(files["helm/kube-prometheus-stack.values.yaml"])["fullnameOverride"]
    assert release == "payments-platform-observab"
    (ds,) = [d for _, d in objects(files) if "grafana_datasource" in d["metadata"]["labels"]]
    urls = {d["uid"]: d["url"] for d in yaml.safe_load(next(iter(ds["data"].values())))["datasources"]}
    assert urls["stackgen-alertmanager"] == "http://payments-platform-observab-alertmanager.monitoring.svc:9093"
    too_long = {**data["stack"], "kubernetes": {"release": "a" * 27}}
    result = CliRunner().invoke(
        app,
        [
            "render",
            "--spec",
            str(yaml_spec(tmp_path, {**data, "stack": too_long}, "long.yaml")),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 2 and "stack.kubernetes.release" in result.output


def test_thanos_ruler_on_kubernetes_is_refused(tmp_path: Path) -> None:
    data = yaml.safe_load(DEFAULT_SPEC.read_text())
    data["routing"].pop("escalation", None)
    data["stack"]["long_term_storage"] = {
        "kind": "thanos",
        "remote_write_url": "https://receive.example.com/api/v1/receive",
        "query_url": "https://query.example.com",
        "evaluate": "ruler",
    }
    spec = yaml_spec(tmp_path, data)
    result = CliRunner().invoke(
        app, ["render", "--spec", str(spec), "--out", str(tmp_path / "o"), "--target", "kubernetes"]
    )
    assert result.exit_code == 2 and "a ThanosRuler reads PrometheusRule objects" in result.output
    assert CliRunner().invoke(app, ["render", "--spec", str(spec), "--out", str(tmp_path / "d")]).exit_code == 0


def test_alertmanager_secret_is_the_amtool_checked_file(default_k8s: dict[str, str], tmp_path: Path) -> None:
    amtool = require_tool("amtool")
    (secret,) = [d for _, d in objects(default_k8s) if d["kind"] == "Secret"]
    assert secret["stringData"]["alertmanager.yaml"] == default_k8s["alertmanager/alertmanager.yml"]
    values = yaml.safe_load(default_k8s["helm/kube-prometheus-stack.values.yaml"])
    am = values["alertmanager"]["alertmanagerSpec"]
    assert am["useExistingSecret"] is True and am["configSecret"] == secret["metadata"]["name"]
    config = yaml.safe_load(secret["stringData"]["alertmanager.yaml"])
    mounted = f"/etc/alertmanager/secrets/{am['secrets'][0]}/"
    files_named = [
        v
        for r in config["receivers"]
        for cfgs in r.values()
        if isinstance(cfgs, list)
        for c in cfgs
        for k, v in _walk(c)
        if k.endswith("_file")
    ]
    assert files_named and all(f.startswith(mounted) for f in files_named), files_named
    path = tmp_path / "alertmanager.yml"
    path.write_text(secret["stringData"]["alertmanager.yaml"])
    from stackgen.validate import config_for_amtool, tool_version

    checked, _ = config_for_amtool(path, tool_version("amtool"), tmp_path)
    proc = subprocess.run([amtool, "check-config", str(checked)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _walk(node: Any, key: str = "") -> list[tuple[str, Any]]:
    if isinstance(node, dict):
        return [kv for k, v in node.items() for kv in _walk(v, k)]
    if isinstance(node, list):
        return [kv for v in node for kv in _walk(v, key)]
    return [(key, node)]


def test_grafana_config_maps_carry_every_dashboard_and_the_datasources(
    default_k8s: dict[str, str], default_docker: dict[str, str]
) -> None:
    maps = [
        d
        for _, d in objects(default_k8s)
        if d["kind"] == "ConfigMap" and "grafana_dashboard" in d["metadata"]["labels"]
    ]
    carried = {(d["metadata"]["annotations"]["grafana_folder"], k): v for d in maps for k, v in d["data"].items()}
    # cAdvisor runs only in the compose stack; on Kubernetes the kubelet serves container metrics.
    expected = {
        (p.split("/")[2], p.rsplit("/", 1)[1]): t
        for p, t in default_docker.items()
        if p.startswith("grafana/dashboards/") and p != "grafana/dashboards/Stack/stackgen-containers.json"
    }
    assert carried == expected
    (ds,) = [d for _, d in objects(default_k8s) if "grafana_datasource" in d["metadata"]["labels"]]
    datasources = yaml.safe_load(next(iter(ds["data"].values())))["datasources"]
    urls = {d["uid"]: d["url"] for d in datasources}
    assert urls == {
        "stackgen-prometheus": "http://shop-prometheus.monitoring.svc:9090",
        "stackgen-loki": "http://loki-gateway.monitoring.svc:80",
        "stackgen-alertmanager": "http://shop-alertmanager.monitoring.svc:9093",
    }
    sidecar = yaml.safe_load(default_k8s["helm/kube-prometheus-stack.values.yaml"])["grafana"]["sidecar"]
    # The chart's own datasources would take the same names (Grafana matches them by name).
    assert sidecar["datasources"]["defaultDatasourceEnabled"] is False
    assert sidecar["datasources"]["alertmanager"]["enabled"] is False
    assert sidecar["dashboards"]["label"] == "grafana_dashboard" and sidecar["dashboards"]["labelValue"] == "1"
    assert sidecar["dashboards"]["folderAnnotation"] == "grafana_folder"
    assert all(d["metadata"]["labels"]["grafana_dashboard"] == "1" for d in maps)
    assert ds["metadata"]["labels"][sidecar["datasources"]["label"]] == sidecar["datasources"]["labelValue"]


def test_loki_rules_and_alloy_config(default_k8s: dict[str, str], default_docker: dict[str, str]) -> None:
    docs = {d["metadata"]["name"]: d for _, d in objects(default_k8s) if d["kind"] == "ConfigMap"}
    rules = docs["shop-loki-rules"]
    loki_values = yaml.safe_load(default_k8s["helm/loki.values.yaml"])
    assert rules["metadata"]["labels"][loki_values["sidecar"]["rules"]["label"]] == "1"
    assert loki_values["sidecar"]["rules"]["labelValue"] == "1"
    # The single tenant's directory under the ruler's storage directory.
    ruler = loki_values["loki"]["rulerConfig"]
    assert loki_values["sidecar"]["rules"]["folder"] == ruler["storage"]["local"]["directory"] + "/fake"
    assert ruler["alertmanager_url"] == "http://shop-alertmanager.monitoring.svc:9093"
    expected = {p.rsplit("/", 1)[1]: t for p, t in default_docker.items() if p.startswith("loki/rules/")}
    assert rules["data"] == expected
    # Alloy: its ConfigMap is the one the chart mounts; pod logs CRI-parsed; the same redaction.
    alloy_values = yaml.safe_load(default_k8s["helm/alloy.values.yaml"])
    cm = alloy_values["alloy"]["configMap"]
    config = docs[cm["name"]]["data"][cm["key"]]
    assert cm["create"] is False and alloy_values["alloy"]["mounts"]["varlog"] is True
    assert alloy_values["controller"]["type"] == "daemonset"
    assert 'discovery.kubernetes "pods"' in config and "stage.cri {" in config and '"/var/log/pods/*$1/*.log"' in config
    assert "http://loki-gateway.monitoring.svc:80/loki/api/v1/push" in config
    docker_alloy = default_docker["alloy/config.alloy"]
    redact = docker_alloy[
        docker_alloy.index('loki.process "redact"') : docker_alloy.index(
            "\n}\n", docker_alloy.index('loki.process "redact"')
        )
    ]
    assert redact in config


def test_helm_values_select_every_object(default_k8s: dict[str, str]) -> None:
    values = yaml.safe_load(default_k8s["helm/kube-prometheus-stack.values.yaml"])["prometheus"]["prometheusSpec"]
    selectors = {"PrometheusRule": "ruleSelector", "ScrapeConfig": "scrapeConfigSelector", "Probe": "probeSelector"}
    for _, doc in objects(default_k8s):
        if doc["kind"] in selectors:
            wanted = values[selectors[doc["kind"]]]["matchLabels"]
            assert wanted.items() <= doc["metadata"]["labels"].items(), doc["metadata"]["name"]
            assert values[selectors[doc["kind"]] + "NilUsesHelmValues"] is False
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "monitoring"
    assert values["evaluationInterval"] == "1m" and values["retention"] == "30d"


def test_probes_reach_the_blackbox_release(tmp_path: Path) -> None:
    files = k8s(EXAMPLE)
    probes = [d for _, d in objects(files) if d["kind"] == "Probe"]
    assert probes
    release = yaml.safe_load(files["helm/prometheus-blackbox-exporter.values.yaml"])
    for probe in probes:
        assert probe["spec"]["prober"]["url"] == f"{release['fullnameOverride']}.monitoring.svc:9115"
        assert probe["spec"]["module"] in release["config"]["modules"]
    gateway = yaml.safe_load(files["helm/prometheus-pushgateway.values.yaml"])
    (scrape,) = [d for _, d in objects(files) if d["kind"] == "ScrapeConfig" and d["spec"]["jobName"] == "pushgateway"]
    assert scrape["spec"]["staticConfigs"][0]["targets"] == [f"{gateway['fullnameOverride']}.monitoring.svc:9091"]
    assert scrape["spec"]["honorLabels"] is True


def test_namespace_labels_and_release_are_configurable(tmp_path: Path) -> None:
    data = yaml.safe_load(DEFAULT_SPEC.read_text())
    data["stack"]["target"] = "kubernetes"
    data["stack"]["kubernetes"] = {
        "namespace": "observability",
        "release": "kps",
        "labels": {"team.example.com/owner": "sre"},
    }
    files = render_spec(yaml_spec(tmp_path, data))
    assert "docker-compose.yml" not in files and "prometheus/prometheus.yml" not in files
    for _, doc in objects(files):
        assert doc["metadata"]["labels"]["team.example.com/owner"] == "sre"
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "observability"
    values = yaml.safe_load(files["helm/kube-prometheus-stack.values.yaml"])
    assert values["fullnameOverride"] == "kps"
    assert values["prometheus"]["prometheusSpec"]["ruleSelector"] == {"matchLabels": {"team.example.com/owner": "sre"}}
    assert "http://kps-alertmanager.observability.svc:9093" in files["helm/loki.values.yaml"]


def test_cadvisor_pack_is_refused_with_a_location(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["render", "--spec", str(ROOT / "examples/seeds/004-clipper.yaml"), "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--target", "kubernetes"])
    assert result.exit_code == 2
    assert "004-clipper.yaml:402: alert_packs.cadvisor: the cadvisor pack watches cadvisor" in result.output
    assert "only the docker target runs cAdvisor (this is kubernetes)" in result.output
    assert not out.exists()


def test_exporters_run_from_their_charts_with_secrets() -> None:
    """Seed 002 (on Kubernetes, with a PostgreSQL exporter) and a spec with every exporter:
    each chart's values carry the spec's settings, its password is a key of the component's
    Secret, and a ScrapeConfig named like the compose job scrapes the chart's Service."""
    files = k8s(ROOT / "examples/seeds/002-sre-monitor.yaml")
    values = yaml.safe_load(files["helm/prometheus-postgres-exporter.values.yaml"])
    datasource = values["config"]["datasource"]
    assert (datasource["host"], datasource["port"], datasource["database"]) == ("postgres", "5432", "ai_core_testing")
    assert datasource["user"] == "postgres_exporter" and datasource["sslmode"] == "disable"
    assert datasource["passwordSecret"] == {
        "name": "ai-core-postgres-exporter-secrets",
        "key": "postgres_exporter_password",
    }
    assert values["service"]["port"] == 9187 and values["serviceMonitor"]["enabled"] is False
    (scrape,) = [
        d for _, d in objects(files) if d["kind"] == "ScrapeConfig" and d["spec"]["jobName"] == "postgres-exporter"
    ]
    target = f"{values['fullnameOverride']}.monitoring.svc:{values['service']['port']}"
    assert scrape["spec"]["staticConfigs"][0]["targets"] == [target]
    assert "| `ai-core-postgres-exporter-secrets` | `postgres_exporter_password` |" in files["secrets/README.md"]
    data = yaml.safe_load((ROOT / "examples/seeds/004-clipper.yaml").read_text())
    data["alert_packs"].pop("cadvisor")
    path = Path(tempfile.mkdtemp()) / "clipper.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    files = k8s(path)
    redis = yaml.safe_load(files["helm/prometheus-redis-exporter.values.yaml"])
    assert redis["redisAddress"] == "redis://redis:6379"
    assert redis["auth"] == {
        "enabled": True,
        "redisPasswordFile": {"secret": {"name": "clipper-redis-exporter-secrets", "key": "redis_exporter_passwords"}},
    }
    nginx = yaml.safe_load(files["helm/prometheus-nginx-exporter.values.yaml"])
    assert nginx["nginxServer"] == "http://nginx:80/nginx_status"
    jobs = {d["spec"]["jobName"] for _, d in objects(files) if d["kind"] == "ScrapeConfig"}
    assert {"postgres-exporter", "redis-exporter", "nginx-exporter"} <= jobs
    for _, doc in objects(files):
        assert not list(validator(doc["apiVersion"], doc["kind"]).iter_errors(doc))


def test_render_and_validate_kubernetes_output_from_the_cli(tmp_path: Path) -> None:
    """`stackgen render --target kubernetes` works on the default spec, and --check then sees
    no drift; the docker output of the same spec is not touched by the option."""
    out = tmp_path / "k8s"
    runner = CliRunner()
    result = runner.invoke(app, ["render", "--spec", str(DEFAULT_SPEC), "--out", str(out), "--target", "kubernetes"])
    assert result.exit_code == 0, result.output
    assert (out / "kubernetes/prometheusrules/api.yaml").is_file()
    check = runner.invoke(
        app, ["render", "--spec", str(DEFAULT_SPEC), "--out", str(out), "--target", "kubernetes", "--check"]
    )
    assert check.exit_code == 0, check.output
    assert "helm upgrade --install shop prometheus-community/kube-prometheus-stack" in (out / "README.md").read_text()
    write_tree(render_spec(DEFAULT_SPEC), tmp_path / "docker")
    assert (tmp_path / "docker/docker-compose.yml").is_file()


SPEC_SCHEMA = json.loads((ROOT / "stackgen/spec/slos.schema.json").read_text())
STACK_PROPS = SPEC_SCHEMA["$defs"]["stack"]["properties"]


def _schema_strings(schema: dict[str, Any]) -> Any:
    from hypothesis import strategies as st

    return st.from_regex(schema["pattern"], fullmatch=True)


def kubernetes_settings() -> Any:
    """stack.kubernetes and stack.long_term_storage drawn from the schema's own patterns."""
    from hypothesis import strategies as st

    k8s_props = STACK_PROPS["kubernetes"]["properties"]
    labels = st.dictionaries(
        st.from_regex(k8s_props["labels"]["propertyNames"]["pattern"], fullmatch=True).filter(
            lambda k: len(k.rsplit("/", 1)[-1]) <= 63 and not k.startswith("app.kubernetes.io/managed-by")
        ),
        _schema_strings(k8s_props["labels"]["additionalProperties"]),
        min_size=1,
        max_size=3,
    )
    kubernetes = st.fixed_dictionaries(
        {},
        optional={
            "namespace": _schema_strings(k8s_props["namespace"]),
            "release": _schema_strings(k8s_props["release"]),
            "labels": labels,
        },
    )
    lts_props = STACK_PROPS["long_term_storage"]["properties"]
    storage = st.fixed_dictionaries(
        {
            "kind": st.sampled_from(lts_props["kind"]["enum"]),
            "remote_write_url": st.just("https://lts.example.com/api/v1/push"),
            "query_url": st.just("https://lts.example.com/prometheus"),
        },
        optional={"tenant": _schema_strings(lts_props["tenant"]), "bearer_token_file": st.just("lts-token")},
    )
    return st.tuples(kubernetes, st.none() | storage)


def test_generated_specs_render_valid_kubernetes_objects() -> None:
    """Generated specs (the property tests' strategy, minus the cAdvisor pack)
    with namespace, release, labels and tenant drawn from the schema's patterns: every object
    validates, names are unique, and the PrometheusRules carry the rule files' groups."""
    from hypothesis import HealthCheck, Phase, given, settings
    from strategies import valid_spec

    from stackgen.model import build_model
    from stackgen.render import render_all
    from stackgen.spec import load_spec_text

    seen = {"examples": 0, "objects": 0}

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],  # a failure prints its spec; shrinking one takes minutes
    )
    @given(valid_spec(), kubernetes_settings())
    def render_one(spec: dict[str, Any], extra: tuple[dict[str, Any], dict[str, Any] | None]) -> None:
        kubernetes, storage = extra
        spec = copy.deepcopy(spec)
        spec.get("alert_packs", {}).pop("cadvisor", None)  # the kubelet serves container metrics
        spec["stack"].update(target="kubernetes", kubernetes=kubernetes)
        if storage:
            spec["stack"]["long_term_storage"] = storage
        files = render_all(build_model(load_spec_text(yaml.safe_dump(spec, sort_keys=False))))
        docs = objects(files)
        names = set()
        for path, doc in docs:
            errors = list(validator(doc["apiVersion"], doc["kind"]).iter_errors(doc))
            assert not errors, f"{path}: {[e.message for e in errors[:3]]}\n{yaml.safe_dump(spec)}"
            assert (doc["kind"], doc["metadata"]["name"]) not in names
            names.add((doc["kind"], doc["metadata"]["name"]))
        carried = sorted(g["name"] for _, d in docs if d["kind"] == "PrometheusRule" for g in d["spec"]["groups"])
        rule_paths = [p for p in files if p.startswith("prometheus/rules/")]
        assert carried == sorted(g["name"] for g in rule_file_groups(files, rule_paths))
        seen["examples"] += 1
        seen["objects"] += len(docs)

    render_one()
    assert seen["examples"] >= 20, seen


def test_alloy_config_references_resolve(tmp_path: Path) -> None:
    """Every component the Kubernetes Alloy config refers to (x.y.NAME.receiver/.output/
    .targets) is declared, every declared pipeline is fed, and per-source pods are kept or
    dropped on the service label: a pod of a service with its own source reaches exactly one
    pipeline."""
    import re

    files = k8s(DEFAULT_SPEC)
    (cm,) = [d for _, d in objects(files) if d["metadata"]["name"].endswith("-alloy-config")]
    config = cm["data"]["config.alloy"]
    declared = set(re.findall(r'^([a-z_.]+) "([a-z0-9_]+)" \{', config, re.M))
    referenced = set(
        re.findall(
            r"\b((?:loki|discovery|local)\.[a-z_.]+?)\.([a-z0-9_]+)\.(?:receiver|output|targets|rules)\b", config
        )
    )
    assert referenced and referenced <= declared, referenced - declared
    fed = {name for kind, name in referenced if kind == "loki.process"}
    assert {name for kind, name in declared if kind == "loki.process"} == fed
    keeps = re.findall(r'regex\s+= "([^"]*)"\n\s+action\s+= "(keep|drop)"', config)
    own = [r for r, a in keeps if a == "keep"]
    (rest,) = [r for r, a in keeps if a == "drop"]
    assert own and set(rest.split("|")) == set(own)


def test_the_alert_state_exporter_runs_beside_alertmanager(default_k8s: dict[str, str]) -> None:
    """The sidecar reads its Alertmanager on the pod's loopback, runs the code of the ConfigMap
    stackgen writes (the module under a header), and the ScrapeConfig reaches its port in the
    operator's Alertmanager pod, relabelled as prometheus.yml does."""
    from stackgen import alert_state_exporter
    from stackgen.render.prometheus import ALERT_STATE_RELABEL

    values = yaml.safe_load(default_k8s["helm/kube-prometheus-stack.values.yaml"])
    release = values["fullnameOverride"]
    am_spec = values["alertmanager"]["alertmanagerSpec"]
    (container,) = am_spec["containers"]
    (volume,) = am_spec["volumes"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["ALERTMANAGER_URL"] == "http://127.0.0.1:9093"
    assert "readinessProbe" not in container  # it would take Alertmanager out of its Service
    port = int(env["LISTEN_ADDRESS"].rsplit(":", 1)[1])
    assert container["ports"] == [{"name": "alert-state", "containerPort": port}]
    assert container["volumeMounts"][0]["name"] == volume["name"] and container["command"][-1].startswith("/app/")
    assert container["securityContext"]["readOnlyRootFilesystem"] and container["securityContext"]["runAsNonRoot"]
    (config_map,) = [d for _, d in objects(default_k8s) if d["kind"] == "ConfigMap" and "exporter.py" in d["data"]]
    assert config_map["metadata"]["name"] == volume["configMap"]["name"]
    head, _, body = config_map["data"]["exporter.py"].partition("\n\n")
    assert body == Path(alert_state_exporter.__file__).read_text() and "sidecar" in head
    (scrape,) = [
        d for _, d in objects(default_k8s) if d["kind"] == "ScrapeConfig" and "alert-state" in d["spec"]["jobName"]
    ]
    target = f"alertmanager-{release}-alertmanager-0.alertmanager-operated.monitoring.svc:{port}"
    assert scrape["spec"]["staticConfigs"] == [{"targets": [target]}]
    relabel = scrape["spec"]["metricRelabelings"]
    assert [r.get("targetLabel") for r in relabel] == [r.get("target_label") for r in ALERT_STATE_RELABEL]
    assert [r.get("sourceLabels") for r in relabel] == [r.get("source_labels") for r in ALERT_STATE_RELABEL]
    assert "alert-state-exporter/exporter.py" not in default_k8s  # the ConfigMap carries it
