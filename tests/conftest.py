"""Shared fixtures: the default spec rendered once, tool lookup that fails loudly in CI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stackgen.pipeline import load_model, render_spec
from stackgen.writer import write_tree

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPEC = ROOT / "slos.yaml"
SHARED = ROOT.parent / "shared"


def require_tool(name: str) -> str:
    """Path of a validator; in CI (STACKGEN_REQUIRE_TOOLS=1) a missing tool is a failure, not a skip."""
    path = shutil.which(name)
    if path:
        return path
    if os.environ.get("STACKGEN_REQUIRE_TOOLS") == "1" or os.environ.get("CI"):
        pytest.fail(f"{name} is not installed: run `make test-deps` (Debian prometheus/prometheus-alertmanager)")
    pytest.skip(f"{name} not installed (run `make test-deps`)")


@pytest.fixture(scope="session")
def default_files() -> dict[str, str]:
    return render_spec(DEFAULT_SPEC)


@pytest.fixture(scope="session")
def default_model():  # type: ignore[no-untyped-def]
    return load_model(DEFAULT_SPEC, None)


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory, default_files: dict[str, str]) -> Path:
    out = tmp_path_factory.mktemp("render") / "output"
    write_tree(default_files, out)
    return out


def load_yaml(text: str) -> object:
    return yaml.safe_load(text)


def spec_dict() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load(DEFAULT_SPEC.read_text())


@pytest.fixture(scope="session")
def validate_run(rendered: Path) -> subprocess.CompletedProcess[str]:
    """`stackgen validate` on the default render, once: it runs every generated promtool test."""
    require_tool("promtool")
    require_tool("amtool")
    return subprocess.run(
        [sys.executable, "-m", "stackgen", "validate", "--spec", str(DEFAULT_SPEC), "--out", str(rendered)],
        capture_output=True,
        text=True,
        timeout=3600,
    )
