"""`stackgen up` / `down`: docker compose on the rendered output, health watched with the Docker SDK."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from stackgen.errors import StackgenError, UsageError


class DockerUnavailable(StackgenError):
    exit_code = 1


def _client() -> Any:
    try:
        import docker

        client = docker.from_env()
        client.ping()
        return client
    except Exception as err:  # docker raises many kinds; all mean "no engine here"
        raise DockerUnavailable(
            f"no Docker engine is reachable ({err.__class__.__name__}); start Docker or set DOCKER_HOST. "
            "On a host without Docker, render with --target host and run the binaries directly."
        ) from None


def _compose_file(out: Path) -> Path:
    path = out / "docker-compose.yml"
    if not path.exists():
        raise UsageError(f"{path} not found; run `stackgen render --out {out}` first")
    return path


def _compose(out: Path, *args: str) -> None:
    if shutil.which("docker") is None:
        raise DockerUnavailable("the docker CLI is not installed")
    proc = subprocess.run(["docker", "compose", "-f", str(_compose_file(out)), *args], cwd=out)
    if proc.returncode != 0:
        raise StackgenError(f"docker compose {' '.join(args)} failed (exit {proc.returncode})")


def compose_up(out: Path, timeout: int, echo: Callable[[str], None]) -> None:
    compose = yaml.safe_load(_compose_file(out).read_text())
    if "GRAFANA_ADMIN_PASSWORD" not in os.environ and not (out / ".env").exists():
        raise UsageError(
            "set GRAFANA_ADMIN_PASSWORD (or create .env from .env.example): Grafana has no default password"
        )
    client = _client()
    _compose(out, "up", "-d")
    project = compose["name"]
    expected = set(compose["services"])
    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        containers = client.containers.list(all=True, filters={"label": f"com.docker.compose.project={project}"})
        states = {}
        for container in containers:
            service = container.labels.get("com.docker.compose.service", container.name)
            health = container.attrs.get("State", {}).get("Health", {}).get("Status", container.status)
            states[service] = health
        waiting = sorted(s for s in expected if states.get(s) != "healthy")
        echo(
            f"healthy {len(expected) - len(waiting)}/{len(expected)}"
            + (f"; waiting for {', '.join(waiting)}" if waiting else "")
        )
        if not waiting:
            break
        if any(states.get(s) == "unhealthy" or states.get(s) == "exited" for s in waiting):
            bad = [s for s in waiting if states.get(s) in ("unhealthy", "exited")]
            raise StackgenError(f"{', '.join(bad)} failed: `docker compose -f {out}/docker-compose.yml logs {bad[0]}`")
        time.sleep(3)
    else:
        raise StackgenError(f"not healthy after {timeout}s: {states}")
    for name, service in sorted(compose["services"].items()):
        for port in service.get("ports", []):
            host, published, _ = str(port).rsplit(":", 2)
            echo(f"  {name}: http://{'localhost' if host in ('127.0.0.1', '0.0.0.0') else host}:{published}")


def compose_down(out: Path, echo: Callable[[str], None]) -> None:
    _client()
    _compose(out, "down")
    echo("stack stopped; data volumes kept (docker compose down -v removes them)")
