"""Images pinned by digest: `stack.images` in the spec, and `stackgen pin-images`, which reads
each tag's digest from its registry. The registries here are a fake one on 127.0.0.1 that
speaks the distribution API the way Docker Hub, ghcr.io and quay.io do (a bearer-token
challenge for the first two, anonymous reads for quay.io, and one that answers HEAD without
a digest header), so every request stackgen makes is checked."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jsonschema
import pytest
import yaml
from check_jsonschema.builtin_schemas import get_builtin_schema  # type: ignore[import-untyped]
from typer.testing import CliRunner

from stackgen.cli import app
from stackgen.versions import IMAGES, registry_and_repository, tag_of
from tests.conftest import DEFAULT_SPEC

DEFAULT_COMPONENTS = {
    "prometheus",
    "alertmanager",
    "grafana",
    "loki",
    "promtail",
    "node-exporter",
    "cadvisor",
    "alert-state-exporter",
}


def manifest(host: str, repository: str, tag: str) -> bytes:
    return json.dumps({"schemaVersion": 2, "of": f"{host}/{repository}:{tag}"}, sort_keys=True).encode()


def digest_of(host: str, repository: str, tag: str) -> str:
    return "sha256:" + hashlib.sha256(manifest(host, repository, tag)).hexdigest()


class FakeRegistries:
    """One HTTP server standing in for several registry hosts: /<host>/v2/... and /<host>/token."""

    TOKEN_HOSTS = frozenset({"docker.io", "ghcr.io"})
    NO_HEAD_DIGEST = frozenset({"quay.io"})  # answers HEAD without Docker-Content-Digest: the client must GET and hash

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str]] = []  # (method, path, Authorization)
        registries = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                self.answer(send_body=False)

            def do_GET(self) -> None:
                self.answer(send_body=True)

            def answer(self, send_body: bool) -> None:
                registries.requests.append((self.command, self.path, self.headers.get("Authorization", "")))
                host, _, rest = self.path.lstrip("/").partition("/")
                url = urllib.parse.urlparse(rest)
                if url.path == "token":
                    scope = urllib.parse.parse_qs(url.query)["scope"][0]
                    self.reply(200, json.dumps({"token": f"token-for-{scope}"}).encode(), {})
                    return
                match = re.fullmatch(r"v2/(.+)/manifests/([^/]+)", url.path)
                if not match:
                    self.reply(404, b"{}", {})
                    return
                repository, tag = match.group(1), urllib.parse.unquote(match.group(2))
                scope = f"repository:{repository}:pull"
                if host in registries.TOKEN_HOSTS and self.headers.get("Authorization") != f"Bearer token-for-{scope}":
                    realm = f"http://127.0.0.1:{registries.port}/{host}/token"
                    challenge = f'Bearer realm="{realm}",service="{host}",scope="{scope}"'
                    self.reply(401, b"{}", {"WWW-Authenticate": challenge})
                    return
                if "index.v1+json" not in self.headers.get("Accept", ""):
                    self.reply(406, b"{}", {})  # a multi-arch tag needs the index media types
                    return
                body = manifest(host, repository, tag)
                headers = {"Content-Type": "application/vnd.oci.image.index.v1+json"}
                if host not in registries.NO_HEAD_DIGEST:
                    headers["Docker-Content-Digest"] = digest_of(host, repository, tag)
                self.reply(200, body if send_body else b"", headers, length=len(body))

            def reply(self, code: int, body: bytes, headers: dict[str, str], length: int | None = None) -> None:
                self.send_response(code)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.end_headers()
                if body:
                    self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]

    def endpoints(self, hosts: set[str]) -> list[str]:
        return [arg for host in sorted(hosts) for arg in ("--registry", f"{host}=http://127.0.0.1:{self.port}/{host}")]


@pytest.fixture
def registries() -> Iterator[FakeRegistries]:
    fake = FakeRegistries()
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.server.shutdown()


def spec_with(tmp_path: Path, images: dict[str, str] | None = None, **stack: object) -> Path:
    data = yaml.safe_load(DEFAULT_SPEC.read_text())
    data["stack"].update(stack)
    if images is not None:
        data["stack"]["images"] = images
    path = tmp_path / "slos.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_pin_images_reads_each_digest_from_its_registry(tmp_path: Path, registries: FakeRegistries) -> None:
    spec = spec_with(tmp_path)
    hosts = {registry_and_repository(IMAGES[c])[0] for c in DEFAULT_COMPONENTS}
    assert hosts == {"docker.io", "ghcr.io"}
    result = CliRunner().invoke(app, ["pin-images", "--spec", str(spec), *registries.endpoints(hosts)])
    assert result.exit_code == 0, result.output
    block = yaml.safe_load(result.stdout)["images"]
    assert set(block) == DEFAULT_COMPONENTS
    for component, pinned in block.items():
        host, repository = registry_and_repository(IMAGES[component])
        assert pinned == f"{IMAGES[component]}@{digest_of(host, repository, tag_of(IMAGES[component]))}"
    # The token dance: a challenge, a token for exactly that repository, then the HEAD with it.
    heads = [r for r in registries.requests if r[0] == "HEAD"]
    assert any(auth == "" for _, _, auth in heads)  # first try without a token
    assert all(auth.startswith("Bearer token-for-repository:") for _, path, auth in heads if auth)
    assert not [r for r in registries.requests if r[0] == "GET" and "/v2/" in r[1]]  # HEAD was enough

    # Pasted under stack:, the block pins docker-compose.yml, which still passes the compose spec.
    pinned_spec = spec_with(tmp_path, images=block)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["render", "--spec", str(pinned_spec), "--out", str(out)])
    assert result.exit_code == 0, result.output
    compose = yaml.safe_load((out / "docker-compose.yml").read_text())
    assert {name: svc["image"] for name, svc in compose["services"].items() if name in block} == block
    schema = get_builtin_schema("vendor.compose-spec")
    assert not list(jsonschema.validators.validator_for(schema)(schema).iter_errors(compose))


def test_a_registry_that_gives_no_digest_header_is_hashed(tmp_path: Path, registries: FakeRegistries) -> None:
    """quay.io's postgres-exporter: the digest is the sha256 of the manifest bytes (GET)."""
    data = yaml.safe_load(DEFAULT_SPEC.read_text())
    data["exporters"] = {"postgres": {"uri": "postgres:5432/app?sslmode=disable", "password_file": "pg_password"}}
    spec = tmp_path / "slos.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    hosts = {"docker.io", "ghcr.io", "quay.io"}
    result = CliRunner().invoke(app, ["pin-images", "--spec", str(spec), *registries.endpoints(hosts)])
    assert result.exit_code == 0, result.output
    pinned = yaml.safe_load(result.stdout)["images"]["postgres-exporter"]
    _, repository = registry_and_repository(IMAGES["postgres-exporter"])
    assert pinned.endswith("@" + digest_of("quay.io", repository, tag_of(IMAGES["postgres-exporter"])))
    assert any(r[0] == "GET" and "/quay.io/v2/" in r[1] for r in registries.requests)


def test_a_mirror_copy_pins_too(tmp_path: Path) -> None:
    image = f"mirror.internal:5000/hub/{IMAGES['grafana']}@sha256:{'c' * 64}"
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["render", "--spec", str(spec_with(tmp_path, images={"grafana": image})), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert f"image: {image}\n" in (out / "docker-compose.yml").read_text()


@pytest.mark.parametrize(
    ("images", "stack", "says"),
    [
        ({"prometheus": f"prom/prometheus:v3.0.0@sha256:{'a' * 64}"}, {}, "is not the image stackgen renders"),
        ({"prometheus": f"someone/prometheus:{tag_of(IMAGES['prometheus'])}@sha256:{'a' * 64}"}, {}, "is not the"),
        ({"prometheus": IMAGES["prometheus"]}, {}, "@sha256:<64 lowercase hex digits>"),  # a tag is no pin
        ({"prometheus": f"{IMAGES['prometheus']}@sha256:{'A' * 64}"}, {}, "@sha256:<64 lowercase hex digits>"),
        ({"cadvisor-typo": f"{IMAGES['cadvisor']}@sha256:{'a' * 64}"}, {}, "cadvisor-typo"),
    ],
)
def test_bad_pins_are_located(tmp_path: Path, images: dict[str, str], stack: dict[str, str], says: str) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["render", "--spec", str(spec_with(tmp_path, images, **stack)), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "stack.images" in result.output and says in result.output, result.output
    assert "Traceback" not in result.output and not out.exists()


def test_pins_on_the_kubernetes_target_are_noted_not_refused(tmp_path: Path) -> None:
    """The same spec renders for compose and, with --target kubernetes, for the charts."""
    sidecar = f"{IMAGES['alert-state-exporter']}@sha256:{'b' * 64}"
    spec = spec_with(
        tmp_path, images={"grafana": f"{IMAGES['grafana']}@sha256:{'a' * 64}", "alert-state-exporter": sidecar}
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["render", "--spec", str(spec), "--out", str(out), "--target", "kubernetes"])
    assert result.exit_code == 0, result.output
    assert "stack.images pins docker-compose.yml and the alert-state exporter's sidecar only" in result.output
    assert not (out / "docker-compose.yml").exists()
    # The one container stackgen itself adds to a chart's pod runs the pinned image.
    values = yaml.safe_load((out / "helm/kube-prometheus-stack.values.yaml").read_text())
    assert values["alertmanager"]["alertmanagerSpec"]["containers"][0]["image"] == sidecar
    result = CliRunner().invoke(app, ["pin-images", "--spec", str(spec_with(tmp_path, target="kubernetes"))])
    assert result.exit_code == 2 and "nothing to pin" in result.output, result.output


def test_pin_images_fails_clearly_without_a_registry(tmp_path: Path) -> None:
    spec = spec_with(tmp_path)
    dead = ["--registry", "docker.io=http://127.0.0.1:9", "--registry", "ghcr.io=http://127.0.0.1:9"]
    result = CliRunner().invoke(app, ["pin-images", "--spec", str(spec), *dead])
    assert result.exit_code == 2, result.output
    assert "cannot reach http://127.0.0.1:9/v2/" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(app, ["pin-images", "--spec", str(spec), "--registry", "docker.io"])
    assert result.exit_code == 2 and "--registry takes HOST=URL" in result.output


def test_the_schema_lists_every_pinned_component() -> None:
    schema = json.loads((Path(__file__).parent.parent / "stackgen/spec/slos.schema.json").read_text())
    assert set(schema["$defs"]["stack"]["properties"]["images"]["propertyNames"]["enum"]) == set(IMAGES)


@pytest.mark.parametrize("image", sorted(IMAGES.values()))
def test_registry_and_repository_as_docker_reads_them(image: str) -> None:
    host, repository = registry_and_repository(f"{image}@sha256:{'0' * 64}")
    assert f"{host}/{repository}:{tag_of(image)}".endswith(image) or host == "docker.io"
    assert registry_and_repository("redis") == ("docker.io", "library/redis")
    assert registry_and_repository("localhost:5000/a/b:1") == ("localhost:5000", "a/b")
