"""Parse LogQL with Grafana's grammar (@grafana/lezer-logql) through one node process per batch."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

TOOL = Path(__file__).resolve().parent.parent / "tools" / "logql"


def parse_logql(exprs: list[str]) -> list[dict[str, Any]]:
    """For each expression: {"ok": bool, "error": str, "pos": int, "labels": [stream label names]}."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not installed: the LogQL parser runs on Node.js")
    if not (TOOL / "node_modules" / "@grafana" / "lezer-logql").is_dir():
        raise RuntimeError(f"LogQL parser not installed: run `make test-deps` (npm ci --prefix {TOOL})")
    proc = subprocess.run(
        [node, str(TOOL / "parse.mjs")], input=json.dumps(exprs), capture_output=True, text=True, timeout=120, cwd=TOOL
    )
    if proc.returncode != 0:
        raise RuntimeError(f"LogQL parser failed: {proc.stderr.strip()}")
    results: list[dict[str, Any]] = json.loads(proc.stdout)
    return results
