"""`stackgen pin-images`: ask each image's registry which digest its tag points at now, and
print the `stack.images` block that pins docker-compose.yml to those digests.

A tag can be moved; a digest cannot. stackgen cannot know digests when it is built (no
registry is reachable from there), so the user reads them once, where a registry is
reachable, reviews them like any other change, and commits them in the spec. This speaks
the registry HTTP API (distribution spec): HEAD on the tag's manifest, the anonymous bearer
token dance when the registry asks for one (Docker Hub, ghcr.io), and the digest from
`Docker-Content-Digest`, else the sha256 of the manifest's bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

import yaml

from stackgen.errors import UsageError
from stackgen.versions import IMAGES, registry_and_repository, tag_of

# The manifest kinds a multi-architecture tag can point at; the index digest is the one
# that works on every architecture.
ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
# Registry hosts whose API lives elsewhere than https://<host>.
API_BASE = {"docker.io": "https://registry-1.docker.io"}
DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")


def parse_endpoints(values: list[str]) -> dict[str, str]:
    """--registry HOST=URL, e.g. docker.io=https://mirror.example.com: where to ask for HOST's images."""
    endpoints = {}
    for value in values:
        host, sep, url = value.partition("=")
        if not sep or not host or not re.match(r"^https?://[^/\s]+", url):
            raise UsageError(f"--registry takes HOST=URL, e.g. docker.io=https://mirror.example.com, not {value!r}")
        endpoints[host] = url.rstrip("/")
    return endpoints


def compose_images(compose_text: str) -> dict[str, str]:
    """component -> image of every component docker-compose.yml runs."""
    services = yaml.safe_load(compose_text)["services"]
    return {name: svc["image"].split("@", 1)[0] for name, svc in sorted(services.items()) if name in IMAGES}


class Registry:
    def __init__(self, endpoints: Mapping[str, str], timeout: float = 20.0) -> None:
        self.endpoints = dict(endpoints)
        self.timeout = timeout
        self.tokens: dict[str, str] = {}  # scope -> bearer token, reused within one run

    def digest(self, image: str) -> str:
        registry, repository = registry_and_repository(image)
        base = self.endpoints.get(registry) or API_BASE.get(registry) or f"https://{registry}"
        url = f"{base}/v2/{repository}/manifests/{urllib.parse.quote(tag_of(image), safe='')}"
        scope = f"repository:{repository}:pull"
        headers = {"Accept": ACCEPT}
        for method in ("HEAD", "GET"):  # GET only when HEAD gives no digest header
            answer, body = self._ask(image, url, method, headers, scope)
            digest = answer.get("Docker-Content-Digest", "")
            if not digest and method == "GET":
                digest = "sha256:" + hashlib.sha256(body).hexdigest()
            if digest:
                if not DIGEST.match(digest):
                    raise UsageError(f"{image}: {url} answered digest {digest!r}, not sha256:<64 hex digits>")
                return digest
        raise AssertionError("unreachable")

    def _ask(
        self, image: str, url: str, method: str, headers: dict[str, str], scope: str
    ) -> tuple[Mapping[str, str], bytes]:
        for attempt in (1, 2):
            auth = {"Authorization": f"Bearer {self.tokens[scope]}"} if scope in self.tokens else {}
            request = urllib.request.Request(url, method=method, headers={**headers, **auth})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return response.headers, response.read() if method == "GET" else b""
            except urllib.error.HTTPError as err:
                challenge = err.headers.get("WWW-Authenticate", "")
                if err.code == 401 and attempt == 1 and challenge.lower().startswith("bearer "):
                    self.tokens[scope] = self._token(image, challenge, scope)
                    continue
                hint = " (no such repository or tag?)" if err.code == 404 else ""
                raise UsageError(f"{image}: {method} {url}: HTTP {err.code}{hint}") from None
            except (urllib.error.URLError, OSError) as err:
                reason = getattr(err, "reason", err)
                raise UsageError(
                    f"{image}: cannot reach {url}: {reason}; run `stackgen pin-images` where the registry is "
                    "reachable, or point --registry HOST=URL at a mirror"
                ) from None
        raise UsageError(f"{image}: {url} refused the token it issued (HTTP 401 twice)")

    def _token(self, image: str, challenge: str, scope: str) -> str:
        """The anonymous pull token the registry's challenge points at."""
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        realm = params.pop("realm", "")
        if not realm.startswith(("https://", "http://")):
            raise UsageError(f"{image}: the registry's token challenge has no usable realm: {challenge!r}")
        query = urllib.parse.urlencode({"service": params.get("service", ""), "scope": params.get("scope", scope)})
        try:
            with urllib.request.urlopen(f"{realm}?{query}", timeout=self.timeout) as response:
                answer: dict[str, Any] = json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError) as err:
            raise UsageError(f"{image}: cannot get a pull token from {realm}: {getattr(err, 'reason', err)}") from None
        token = answer.get("token") or answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise UsageError(f"{image}: {realm} gave no token")
        return token


def images_block(pins: dict[str, str], spec_name: str) -> str:
    lines = [
        f"# stack.images for {spec_name}: paste under `stack:` (replacing any images: there). Each tag's",
        "# digest as its registry answered `stackgen pin-images` just now; review the change like code.",
        "images:",
    ]
    lines += [f"  {component}: {image}" for component, image in sorted(pins.items())]
    return "\n".join(lines) + "\n"


def pin(compose_text: str, registry: Registry) -> dict[str, str]:
    """component -> image@digest for every image docker-compose.yml runs."""
    return {component: f"{image}@{registry.digest(image)}" for component, image in compose_images(compose_text).items()}
