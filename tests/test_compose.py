"""docker-compose.yml: every reference resolves, secure defaults hold, and the stack's own
configs point at services and ports the compose file defines."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from typer.testing import CliRunner

from stackgen.cli import app
from stackgen.model import build_model
from stackgen.render import render_all
from stackgen.spec import load_spec_text
from tests.conftest import DEFAULT_SPEC


def compose(files: dict[str, str]) -> dict:  # type: ignore[type-arg]
    return yaml.safe_load(files["docker-compose.yml"])


def container_ports(service: str) -> set[int]:
    from stackgen.conventions import COMPONENTS

    return {COMPONENTS[service]} if service in COMPONENTS else set()


def listening(service: dict[str, Any], port: int | None) -> int | None:
    """The port a service configured by LISTEN_ADDRESS listens on (else `port`, as asked)."""
    address = service.get("environment", {}).get("LISTEN_ADDRESS")
    return int(address.rsplit(":", 1)[1]) if address else port


def test_every_bind_mount_exists_in_the_output(default_files: dict[str, str]) -> None:
    for name, service in compose(default_files)["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                rel = source[2:]
                assert rel in default_files or any(p.startswith(rel + "/") for p in default_files), (name, volume)


def check_urls(files: dict[str, str]) -> list[str]:
    """Every URL a config uses to reach another component -> (service, port) the compose file
    defines, on a network the calling service is on too."""
    services = compose(files)["services"]
    agent = "alloy" if "alloy" in services else "promtail"
    urls: list[tuple[str, str]] = []  # (calling service, url)
    prom = yaml.safe_load(files["prometheus/prometheus.yml"])
    urls += [
        ("prometheus", "http://" + t)
        for am in prom["alerting"]["alertmanagers"]
        for c in am["static_configs"]
        for t in c["targets"]
    ]
    # The stack's own components (scrape jobs named like their services), and the exporter
    # every probe job is sent to.
    urls += [
        ("prometheus", "http://" + t)
        for job in prom["scrape_configs"]
        if job["job_name"] in services
        for c in job["static_configs"]
        for t in c["targets"]
    ]
    urls += [
        ("prometheus", "http://" + r["replacement"])
        for job in prom["scrape_configs"]
        for r in job.get("relabel_configs", [])
        if r.get("target_label") == "__address__"
    ]
    datasources = yaml.safe_load(files["grafana/provisioning/datasources/datasources.yml"])["datasources"]
    urls += [("grafana", d["url"]) for d in datasources]
    if agent == "promtail":
        urls += [("promtail", c["url"]) for c in yaml.safe_load(files["promtail/promtail.yml"])["clients"]]
    else:
        urls += [("alloy", u) for u in re.findall(r'url = "([^"]+)"', files["alloy/config.alloy"])]
    urls.append(("loki", yaml.safe_load(files["loki/loki.yml"])["ruler"]["alertmanager_url"]))
    urls.append(("alert-state-exporter", services["alert-state-exporter"]["environment"]["ALERTMANAGER_URL"]))
    problems = []
    for caller, url in urls:
        parsed = urlparse(url)
        host, port = parsed.hostname, parsed.port
        if host not in services:
            problems.append(f"{url}: no service {host!r}")
        elif port not in container_ports(str(host)) or port != listening(services[str(host)], port):
            problems.append(f"{url}: {host} does not listen on {port}")
        elif not set(services[caller]["networks"]) & set(services[str(host)]["networks"]):
            problems.append(f"{url}: {caller} and {host} share no network")
    return problems


@pytest.mark.parametrize("spec", ["slos.yaml", "examples/every-sli-kind.yaml", "examples/seeds/004-clipper.yaml"])
def test_every_url_points_at_a_defined_service_and_port(spec: str) -> None:
    from stackgen.pipeline import render_spec
    from tests.conftest import ROOT

    assert check_urls(render_spec(ROOT / spec, "docker")) == []


def test_your_services_reach_only_prometheus_and_the_exporters(default_files: dict[str, str]) -> None:
    """On `observability` (the network your services join): no Alertmanager, Loki, Grafana or
    log agent API; the stack's own components talk on `stack`."""
    services = compose(default_files)["services"]
    on_yours = {name for name, s in services.items() if "observability" in s["networks"]}
    assert on_yours <= {"prometheus", "pushgateway", "blackbox-exporter"} | {
        n for n in services if n.endswith("-exporter") and n not in ("node-exporter",)
    }
    assert "prometheus" in on_yours
    assert not on_yours & {"alertmanager", "loki", "grafana", "promtail", "alloy", "node-exporter", "cadvisor"}


def test_network_check_can_fail(default_files: dict[str, str]) -> None:
    broken = dict(default_files)
    data = compose(broken)
    data["services"]["loki"]["networks"] = ["observability"]
    broken["docker-compose.yml"] = yaml.safe_dump(data)
    assert any("share no network" in p for p in check_urls(broken))


def test_url_check_can_fail(default_files: dict[str, str]) -> None:
    broken = dict(default_files)
    broken["promtail/promtail.yml"] = broken["promtail/promtail.yml"].replace("loki:3100", "loki:3101")
    assert any("loki does not listen on 3101" in p for p in check_urls(broken))


def published(service: dict) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [tuple(str(p).rsplit(":", 2)[:2]) for p in service.get("ports", [])]  # type: ignore[misc]


def test_host_ports_unique_and_only_grafana_beyond_loopback(default_files: dict[str, str]) -> None:
    services = compose(default_files)["services"]
    seen: dict[str, str] = {}
    for name, service in services.items():
        for host, port in published(service):
            assert port not in seen, f"{name} and {seen[port]} both publish {port}"
            seen[port] = name
            assert host == ("0.0.0.0" if name == "grafana" else "127.0.0.1"), (name, host)
    assert "3000" in seen


def test_every_service_is_hardened(default_files: dict[str, str]) -> None:
    services = compose(default_files)["services"]
    for name, service in services.items():
        assert "healthcheck" in service and service["healthcheck"]["test"], name
        assert service["restart"] == "unless-stopped", name
        limits = service["deploy"]["resources"]["limits"]
        assert limits["cpus"] and limits["memory"], name
        assert not service.get("privileged"), name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert ":" in service["image"] and not service["image"].endswith(":latest"), name
        for volume in service.get("volumes", []):
            if volume.startswith("./"):
                assert volume.endswith(":ro"), (name, volume)  # configs are read-only
        for dependency in service.get("depends_on", {}).values():
            assert dependency == {"condition": "service_healthy"}, name


def test_depends_on_has_no_cycles(default_files: dict[str, str]) -> None:
    services = compose(default_files)["services"]
    graph = {name: set(s.get("depends_on", {})) for name, s in services.items()}
    assert all(dep in services for deps in graph.values() for dep in deps)
    done: set[str] = set()
    while graph:
        ready = [n for n, deps in graph.items() if deps <= done]
        assert ready, f"cycle among {sorted(graph)}"
        for n in ready:
            done.add(n)
            del graph[n]


def test_grafana_has_no_default_credentials(default_files: dict[str, str]) -> None:
    grafana = compose(default_files)["services"]["grafana"]
    env = grafana["environment"]
    assert "GF_SECURITY_ADMIN_PASSWORD" not in env
    assert env["GF_SECURITY_ADMIN_PASSWORD__FILE"].startswith("/run/secrets/")
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false" and env["GF_USERS_ALLOW_SIGN_UP"] == "false"
    home = env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"].removeprefix("/var/lib/grafana/dashboards/")
    assert f"grafana/dashboards/{home}" in default_files
    assert "GRAFANA_ADMIN_PASSWORD=" in default_files[".env.example"]


def variant(old: str, new: str, extra: str = "") -> dict[str, str]:
    text = DEFAULT_SPEC.read_text()
    assert old in text
    return render_all(build_model(load_spec_text(text.replace(old, new) + extra)))


def test_lifecycle_api_only_when_asked(default_files: dict[str, str]) -> None:
    command = compose(default_files)["services"]["prometheus"]["command"]
    assert "--web.enable-lifecycle" not in command
    assert "--storage.tsdb.retention.time=30d" in command
    on = compose(variant("lifecycle_api: false", "lifecycle_api: true"))["services"]["prometheus"]["command"]
    assert "--web.enable-lifecycle" in on


EXPORTERS = (
    "\nexporters:\n"
    "  postgres: {uri: 'db:5432/app?sslmode=disable', user: exporter, password_file: pg-password}\n"
    "  redis: {address: 'redis://cache:6379', password_file: redis-passwords}\n"
    "  nginx: {scrape_uri: 'http://web:8080/nginx_status'}\n"
    "  pushgateway: {persistence_interval: 1m}\n"
    "probes:\n"
    "  - {name: status-page, module: http_2xx_tls, targets: ['https://status.example.com/health']}\n"
)


def test_optional_services(default_files: dict[str, str]) -> None:
    files = variant(
        "  lifecycle_api: false",
        "  lifecycle_api: false\n  optional_services: [pushgateway, blackbox-exporter]",
    )
    services = compose(files)["services"]
    assert {"pushgateway", "blackbox-exporter"} <= set(services)
    jobs = {j["job_name"] for j in yaml.safe_load(files["prometheus/prometheus.yml"])["scrape_configs"]}
    assert {"pushgateway", "blackbox-exporter"} <= jobs
    assert check_urls(files) == []


def test_exporters_are_configured_with_their_targets_and_secret_files() -> None:
    files = variant("  lifecycle_api: false", "  lifecycle_api: false", extra=EXPORTERS)
    services = compose(files)["services"]
    pg = services["postgres-exporter"]
    assert pg["environment"] == {
        "DATA_SOURCE_URI": "db:5432/app?sslmode=disable",
        "DATA_SOURCE_USER": "exporter",
        "DATA_SOURCE_PASS_FILE": "/run/secrets/pg-password",
    }
    assert pg["secrets"] == ["pg-password"] and "pg-password" not in services["alertmanager"].get("secrets", [])
    redis = services["redis-exporter"]
    assert redis["environment"]["REDIS_ADDR"] == "redis://cache:6379"
    assert redis["environment"]["REDIS_PASSWORD_FILE"] == "/run/secrets/redis-passwords"
    assert services["nginx-exporter"]["command"] == ["--nginx.scrape-uri=http://web:8080/nginx_status"]
    # FROM scratch: nothing a healthcheck could run; Prometheus' up watches it instead.
    assert "healthcheck" not in services["nginx-exporter"]
    assert "pushgateway-data:/pushgateway" in services["pushgateway"]["volumes"]
    assert "--persistence.file=/pushgateway/metrics.db" in services["pushgateway"]["command"]
    prom = yaml.safe_load(files["prometheus/prometheus.yml"])
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    assert jobs["pushgateway"]["honor_labels"] is True
    probe = jobs["status-page"]
    assert probe["metrics_path"] == "/probe" and probe["params"] == {"module": ["http_2xx_tls"]}
    assert probe["relabel_configs"][-1] == {"target_label": "__address__", "replacement": "blackbox-exporter:9115"}
    blackbox = yaml.safe_load(files["blackbox/blackbox.yml"])
    assert blackbox["modules"]["http_2xx_tls"]["http"]["fail_if_not_ssl"] is True
    assert "./blackbox:/etc/blackbox_exporter:ro" in services["blackbox-exporter"]["volumes"]
    assert check_urls(files) == []


def test_an_exporter_without_a_target_is_a_located_error(tmp_path: Path) -> None:
    spec = tmp_path / "slos.yaml"
    spec.write_text(
        DEFAULT_SPEC.read_text().replace(
            "  lifecycle_api: false", "  lifecycle_api: false\n  optional_services: [postgres-exporter]"
        )
    )
    proc = subprocess.run(
        [sys.executable, "-m", "stackgen", "render", "--spec", str(spec), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert (
        "stack.optional_services[0]: postgres-exporter needs to know what to scrape: set exporters.postgres.uri"
        in proc.stderr
    )


def test_host_profile_uses_loopback_and_paths() -> None:
    files = variant("  target: docker ", "  target: host ")
    prom = yaml.safe_load(files["prometheus/prometheus.yml"])
    assert prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:9093"]
    am = yaml.safe_load(files["alertmanager/alertmanager.yml"])
    key = am["receivers"][0]["pagerduty_configs"][0]["routing_key_file"]
    assert key.startswith("/etc/stackgen/secrets/")


def test_up_without_docker_engine_fails_clearly(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from stackgen.pipeline import render_spec
    from stackgen.writer import write_tree

    out = tmp_path / "out"
    write_tree(render_spec(DEFAULT_SPEC), out)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    monkeypatch.setenv("GRAFANA_ADMIN_PASSWORD", "x")
    result = CliRunner().invoke(app, ["up", "--out", str(out)])
    assert result.exit_code == 1
    assert "no Docker engine is reachable" in result.output
    assert "Traceback" not in result.output


@pytest.mark.docker
def test_docker_compose_up_smoke(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Where a Docker engine and the images are available: `stackgen up` brings it up healthy."""
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as err:
        pytest.skip(f"no Docker engine reachable ({err.__class__.__name__}): smoke test not run")
    from stackgen.pipeline import render_spec
    from stackgen.writer import write_tree

    out = tmp_path / "out"
    write_tree(render_spec(DEFAULT_SPEC), out)
    env = {"GRAFANA_ADMIN_PASSWORD": "smoke-test-only"}
    import os

    os.environ.update(env)
    for name in {use.file for use in build_model(load_spec_text(DEFAULT_SPEC.read_text())).secret_uses()}:
        (out / "secrets" / name).write_text("placeholder\n")
    try:
        result = CliRunner().invoke(app, ["up", "--out", str(out), "--timeout", "600"])
        assert result.exit_code == 0, result.output
    finally:
        CliRunner().invoke(app, ["down", "--out", str(out)])


def test_prometheus_and_alertmanager_links_point_where_users_open_them() -> None:
    """--web.external-url: notifications and alert links must not name a container hostname."""
    spec = yaml.safe_load(DEFAULT_SPEC.read_text())
    compose = yaml.safe_load(render_all(build_model(load_spec_text(yaml.safe_dump(spec))))["docker-compose.yml"])
    assert "--web.external-url=http://localhost:9093" in compose["services"]["alertmanager"]["command"]
    assert "--web.external-url=http://localhost:9090" in compose["services"]["prometheus"]["command"]
    spec["stack"].update(alertmanager_url="https://alerts.example.com/", prometheus_url="https://prom.example.com")
    compose = yaml.safe_load(render_all(build_model(load_spec_text(yaml.safe_dump(spec))))["docker-compose.yml"])
    assert "--web.external-url=https://alerts.example.com" in compose["services"]["alertmanager"]["command"]
    assert "--web.external-url=https://prom.example.com" in compose["services"]["prometheus"]["command"]
    # A path in those URLs (a reverse proxy's /alertmanager) moves the links only: the API stays
    # at /, where Prometheus sends alerts and the healthchecks look (tests/test_e2e_native.py
    # runs both binaries so).
    for name in ("alertmanager", "prometheus"):
        assert "--web.route-prefix=/" in compose["services"][name]["command"]
