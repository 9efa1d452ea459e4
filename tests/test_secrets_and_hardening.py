"""No secret in any rendered file; inline secrets rejected with a hint to the *_file form;
the rendered stack's security properties (tested as properties, not exact strings).
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackgen.errors import SpecError
from stackgen.model import build_model
from stackgen.render import render_all
from stackgen.spec import load_spec_text
from tests.conftest import DEFAULT_SPEC

RNG = random.Random(8)
# Environment variables a stack's operator plausibly has set while rendering.
ENV_SECRETS = [
    "GRAFANA_ADMIN_PASSWORD",
    "GRAFANA_ADMIN_USER",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "SLACK_WEBHOOK_URL",
    "PAGERDUTY_ROUTING_KEY",
    "OPSGENIE_API_KEY",
    "SMTP_PASSWORD",
    "STACKGEN_TOKEN",
    "GF_SECURITY_ADMIN_PASSWORD",
    "HTTP_PROXY",
]


def secret(tag: str) -> str:
    return f"S3CR3T-{tag}-{RNG.getrandbits(80):020x}"


def forms(value: str) -> set[str]:
    """The value and the encodings a leak could take."""
    return {
        value,
        json.dumps(value)[1:-1],
        urllib.parse.quote(value, safe=""),
        base64.b64encode(value.encode()).decode().rstrip("="),
        value.lower(),
    }


def leaks(root: Path, values: list[str], skip: tuple[str, ...]) -> list[tuple[str, str]]:
    found = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if not path.is_file() or rel.startswith(skip):
            continue
        data = path.read_bytes().decode("utf-8", "replace")
        found += [(rel, v) for v in values for f in forms(v) if f in data]
    return found


def spec_variant(target: str, agent: str, secrets_dir: Path | None) -> str:
    spec = yaml.safe_load(DEFAULT_SPEC.read_text())
    spec["stack"]["target"] = target
    spec["logs"]["agent"] = agent
    if secrets_dir is not None:
        spec["stack"]["secrets_dir"] = str(secrets_dir)
    spec["logs"]["storage"] = {"type": "s3", "bucket": "logs-bucket", "endpoint": "minio:9000"}  # creds from env
    return yaml.safe_dump(spec)


def secret_file_names(spec_text: str) -> list[str]:
    model = build_model(load_spec_text(spec_text))
    return [*sorted({use.file for use in model.secret_uses()}), "grafana_admin_password"]


@pytest.mark.parametrize(("target", "agent"), [("docker", "promtail"), ("docker", "alloy"), ("host", "promtail")])
def test_planted_secrets_never_reach_the_output(tmp_path: Path, target: str, agent: str) -> None:
    secrets_dir = tmp_path / "etc-secrets"
    secrets_dir.mkdir()
    spec = tmp_path / "slos.yaml"
    spec.write_text(spec_variant(target, agent, secrets_dir if target == "host" else None))
    out = tmp_path / "output"
    env = dict(os.environ)
    planted: dict[str, str] = {}
    for name in ENV_SECRETS:
        planted[f"env:{name}"] = env[name] = secret(name)
    env["GRAFANA_ADMIN_USER"] = planted["env:GRAFANA_ADMIN_USER"]
    cmd = [sys.executable, "-m", "stackgen", "render", "--spec", str(spec), "--out", str(out)]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    # Secret files where the stack reads them: output/secrets/ (docker) and secrets_dir (host),
    # plus a .env next to the compose file; then render again with all of them present.
    for name in secret_file_names(spec.read_text()):
        for where in (out / "secrets", secrets_dir):
            value = secret(f"file-{where.name}-{name}")
            (where / name).write_text(value + "\n")
            planted[f"{where.name}/{name}"] = value
    planted["output/.env"] = secret("dotenv")
    (out / ".env").write_text(f"GRAFANA_ADMIN_PASSWORD={planted['output/.env']}\n")
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    values = list(planted.values())
    # The user's own files (secrets/*, .env) are theirs; everything stackgen wrote is scanned.
    user_files = (*tuple(f"secrets/{n}" for n in secret_file_names(spec.read_text())), ".env")
    found = leaks(out, values, skip=user_files)
    found += [("stdout/stderr", v) for v in values for p in (first, second) if v in p.stdout + p.stderr]
    assert found == [], found
    for name in secret_file_names(spec.read_text()):  # the secret files survive, untouched
        assert (out / "secrets" / name).read_text() == planted[f"secrets/{name}"] + "\n"
    # The scanner itself finds a planted value when one is there.
    (out / "prometheus" / "leak-probe.yml").write_text(f"x: {json.dumps(values[3])}\n")
    assert leaks(out, values, skip=user_files) == [("prometheus/leak-probe.yml", values[3])]
    # Secrets are referenced by path only.
    am = yaml.safe_load((out / "alertmanager/alertmanager.yml").read_text())
    refs = [
        v
        for r in am["receivers"]
        for cfg in r.values()
        if isinstance(cfg, list)
        for c in cfg
        for k, v in _walk(c)
        if k.endswith("_file")
    ]
    base = "/run/secrets/" if target == "docker" else f"{secrets_dir}/"
    assert refs and all(str(v).startswith(base) for v in refs), refs
    print(f"\nsecrets ({target}/{agent}): {len(values)} planted, {len(found)} found in output")


def _walk(node: Any) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    if isinstance(node, dict):
        for k, v in node.items():
            out.append((str(k), v))
            out += _walk(v)
    elif isinstance(node, list):
        for v in node:
            out += _walk(v)
    return out


INLINE = {
    "pagerduty": ["routing_key", "service_key"],
    "slack": ["api_url", "webhook_url"],
    "email": ["auth_password", "password"],
    "opsgenie": ["api_key"],
    "webhook": ["credentials", "token"],
}


@pytest.mark.parametrize("kind", sorted(INLINE))
def test_inline_secrets_are_rejected_with_a_hint_to_the_file_form(kind: str) -> None:
    spec = yaml.safe_load(DEFAULT_SPEC.read_text())
    index = next(i for i, r in enumerate(spec["receivers"]) if r["type"] == kind)
    for key in INLINE[kind]:
        bad = yaml.safe_load(DEFAULT_SPEC.read_text())
        bad["receivers"][index][key] = "hunter2-inline"
        with pytest.raises(SpecError) as err:
            build_model(load_spec_text(yaml.safe_dump(bad)))
        hits = [p for p in err.value.problems if p.path == f"receivers[{index}].{key}"]
        assert hits and all(re.search(r"inline secret .* use|_file", p.message) for p in hits), str(err.value)
        assert all(p.line > 0 for p in hits)
        assert "hunter2-inline" not in str(err.value)  # the error does not echo the secret


@pytest.mark.parametrize(
    "path",
    [("stack", "grafana_url"), ("stack", "runbook_base_url"), ("receivers", 13, "url")],
)
def test_credentials_in_urls_are_rejected(path: tuple[Any, ...]) -> None:
    spec = yaml.safe_load(DEFAULT_SPEC.read_text())
    node: Any = spec
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = "https://admin:hunter2@grafana.example.com/"
    with pytest.raises(SpecError) as err:
        build_model(load_spec_text(yaml.safe_dump(spec)))
    assert any(p.path.endswith(str(path[-1])) for p in err.value.problems), str(err.value)


# ---- hardening of the rendered stack


def compose_of(mutate: Any = None) -> dict[str, Any]:
    spec = yaml.safe_load(DEFAULT_SPEC.read_text())
    if mutate:
        mutate(spec)
    files = render_all(build_model(load_spec_text(yaml.safe_dump(spec))))
    return yaml.safe_load(files["docker-compose.yml"])


def published(service: dict[str, Any]) -> list[tuple[str | None, str]]:
    """(host address, host port) of every published port, short or long syntax."""
    out = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            out.append((port.get("host_ip"), str(port.get("published"))))
            continue
        parts = str(port).rsplit(":", 2)
        out.append((parts[0], parts[1]) if len(parts) == 3 else (None, parts[0]))
    return out


def without_publish(spec: dict[str, Any]) -> None:
    spec["stack"].pop("publish", None)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (without_publish, {}),
        (None, {"grafana": "0.0.0.0"}),  # slos.yaml asks for Grafana on the network
        (lambda s: s["stack"].update(publish={"prometheus": "none", "loki": "0.0.0.0"}), {"loki": "0.0.0.0"}),
    ],
)
def test_ports_bind_loopback_unless_the_spec_asks(mutate: Any, expected: dict[str, str]) -> None:
    services = compose_of(mutate)["services"]
    for name, service in services.items():
        for host, port in published(service):
            assert host is not None, f"{name} publishes {port} on every interface (no host address)"
            assert host == expected.get(name, "127.0.0.1"), (name, host)
    if mutate is not None and expected.get("loki"):
        assert not published(services["prometheus"])


def test_grafana_has_no_default_credentials_or_anonymous_admin() -> None:
    for mutate in (None, without_publish):
        compose = compose_of(mutate)
        grafana = compose["services"]["grafana"]
        env = grafana.get("environment", {})
        if isinstance(env, list):
            env = dict(item.split("=", 1) for item in env)
        assert "GF_SECURITY_ADMIN_PASSWORD" not in env  # never a literal password
        password_file = env.get("GF_SECURITY_ADMIN_PASSWORD__FILE", "")
        assert password_file.startswith("/run/secrets/")
        secret_name = password_file.rsplit("/", 1)[1]
        assert secret_name in grafana.get("secrets", [])
        source = compose["secrets"][secret_name]
        assert set(source) <= {"file", "environment"} and "content" not in source  # no literal
        assert str(env.get("GF_AUTH_ANONYMOUS_ENABLED", "")).lower() == "false"
        assert str(env.get("GF_AUTH_ANONYMOUS_ORG_ROLE", "Viewer")) != "Admin"
        assert str(env.get("GF_USERS_ALLOW_SIGN_UP", "")).lower() == "false"
        assert str(env.get("GF_AUTH_BASIC_ENABLED", "true")).lower() in ("true", "false")
        # No default value for the password anywhere in the compose file (${X:-default}).
        text = yaml.safe_dump(compose)
        assert not re.search(r"\$\{GRAFANA_ADMIN_PASSWORD:?-", text)
        assert "admin:admin" not in text


def test_env_example_has_no_default_password() -> None:
    files = render_all(build_model(load_spec_text(DEFAULT_SPEC.read_text())))
    lines = dict(line.split("=", 1) for line in files[".env.example"].splitlines() if line and not line.startswith("#"))
    assert lines["GRAFANA_ADMIN_PASSWORD"] == ""


def test_config_mounts_are_read_only_and_nothing_is_privileged() -> None:
    for mutate in (
        None,
        lambda s: s["logs"].update(agent="alloy"),
        lambda s: s["stack"].update(optional_services=["pushgateway", "blackbox-exporter"]),
    ):
        compose = compose_of(mutate)
        named = set(compose.get("volumes", {}))
        for name, service in compose["services"].items():
            assert not service.get("privileged"), name
            assert not set(service.get("cap_add", [])) & {"ALL", "SYS_ADMIN", "NET_ADMIN"}, name
            assert service.get("network_mode") != "host", name
            assert any(str(o).startswith("no-new-privileges") for o in service.get("security_opt", [])), name
            for volume in service.get("volumes", []):
                if isinstance(volume, dict):
                    source, read_only = volume.get("source", ""), bool(volume.get("read_only"))
                else:
                    source, _, rest = str(volume).partition(":")
                    read_only = rest.split(":")[-1].split(",")[0] == "ro" if ":" in rest else False
                if source in named:
                    continue  # data volumes are written by the service
                assert read_only, f"{name}: {volume} is a host or config mount and not read-only"


def test_loki_auth_enabled_is_stated_with_its_reason() -> None:
    files = render_all(build_model(load_spec_text(DEFAULT_SPEC.read_text())))
    text = files["loki/loki.yml"]
    config = yaml.safe_load(text)
    assert isinstance(config.get("auth_enabled"), bool), "auth_enabled must be written, not defaulted"
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("auth_enabled:"))
    reason = " ".join(line for line in lines[max(0, at - 4) : at] if line.startswith("#"))
    assert "auth_enabled" in reason and len(reason) > 60, reason  # a comment that explains it
    if config["auth_enabled"] is False:  # no tenant auth: Loki must not be on the network by default
        compose = compose_of(without_publish)
        assert all(host == "127.0.0.1" for host, _ in published(compose["services"]["loki"]))


def test_prometheus_lifecycle_api_is_off_unless_asked() -> None:
    compose = compose_of(lambda s: s["stack"].pop("lifecycle_api", None))
    assert "--web.enable-lifecycle" not in compose["services"]["prometheus"]["command"]
    compose = compose_of(lambda s: s["stack"].update(lifecycle_api=True))
    assert "--web.enable-lifecycle" in compose["services"]["prometheus"]["command"]


def test_host_target_listens_on_loopback() -> None:
    spec = yaml.safe_load(DEFAULT_SPEC.read_text())
    spec["stack"]["target"] = "host"
    files = render_all(build_model(load_spec_text(yaml.safe_dump(spec))))
    loki = yaml.safe_load(files["loki/loki.yml"])
    # Every listener, gRPC too (an unset address is every interface); the ring advertises
    # the loopback address the gRPC listener has (checked with Loki 3.7 built from source:
    # ready, queries answered, 13 rules loaded).
    assert loki["server"]["http_listen_address"] == loki["server"]["grpc_listen_address"] == "127.0.0.1"
    assert loki["common"]["instance_addr"] == "127.0.0.1"
    promtail = yaml.safe_load(files["promtail/promtail.yml"])
    assert promtail["server"]["http_listen_address"] == promtail["server"]["grpc_listen_address"] == "127.0.0.1"
    prom = yaml.safe_load(files["prometheus/prometheus.yml"])
    targets = [
        t
        for job in prom["scrape_configs"]
        if job["job_name"] in ("prometheus", "alertmanager")
        for s in job["static_configs"]
        for t in s["targets"]
    ]
    assert targets and all(t.startswith("127.0.0.1:") for t in targets)


def test_containers_drop_capabilities_and_write_only_their_volumes(default_files: dict[str, str]) -> None:
    services = yaml.safe_load(default_files["docker-compose.yml"])["services"]
    for name, service in services.items():
        if name in ("promtail", "alloy", "cadvisor"):  # root, for the Docker socket and host state
            assert "cap_drop" not in service
            continue
        assert service["cap_drop"] == ["ALL"], name
    for name in ("prometheus", "alertmanager", "loki", "node-exporter"):
        assert services[name]["read_only"] is True and services[name]["tmpfs"] == ["/tmp"], name
    # A single Alertmanager: its gossip port is not opened at all.
    assert "--cluster.listen-address=" in services["alertmanager"]["command"]
    # cAdvisor gets the Docker socket, not the whole of /var/run.
    assert not any(v.startswith("/var/run:") for v in services["cadvisor"]["volumes"])
