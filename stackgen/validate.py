"""`stackgen validate`: the real tools judge the rendered output."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from stackgen.errors import UsageError

TOOL_HINT = "not installed: on Debian/Ubuntu `apt-get install prometheus prometheus-alertmanager` (or `make test-deps`)"


@dataclass
class Result:
    name: str
    status: str  # ok | fail | missing
    detail: str = ""


def _run(name: str, argv: list[str], cwd: Path | None = None) -> Result:
    if shutil.which(argv[0]) is None:
        return Result(name, "missing", f"{argv[0]} {TOOL_HINT}")
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=900)
    if proc.returncode == 0:
        return Result(name, "ok")
    output = (proc.stdout + proc.stderr).strip().splitlines()
    return Result(name, "fail", " | ".join(output[-12:]))


def promtool_results(out: Path) -> list[Result]:
    results = [
        _run(
            "promtool check config prometheus/prometheus.yml",
            ["promtool", "check", "config", "prometheus/prometheus.yml"],
            cwd=out,
        )
    ]
    rule_files = sorted(str(p.relative_to(out)) for p in (out / "prometheus/rules").rglob("*.rules.yml"))
    if rule_files:
        results.append(
            _run(
                f"promtool check rules ({len(rule_files)} files)",
                ["promtool", "check", "rules", *rule_files],
                cwd=out,
            )
        )
    tests = sorted(str(p.relative_to(out / "prometheus")) for p in (out / "prometheus/tests").rglob("*.test.yml"))

    def unit(test: str) -> Result:
        return _run(f"promtool test rules {test}", ["promtool", "test", "rules", test], cwd=out / "prometheus")

    # Unit tests are CPU-bound and independent: run them on every core.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results += pool.map(unit, tests)
    return results


def amtool_results(out: Path) -> list[Result]:
    config = out / "alertmanager/alertmanager.yml"
    results = [
        _run(
            "amtool check-config alertmanager/alertmanager.yml",
            ["amtool", "check-config", str(config)],
        )
    ]
    if results[0].status != "ok":
        return results
    matrix = out / "alertmanager/routing-tests.yml"
    if matrix.exists():
        cases = yaml.safe_load(matrix.read_text())["cases"]
        failures = []
        for case in cases:
            labels = [f"{k}={v}" for k, v in case["labels"].items()]
            argv = [
                "amtool",
                "config",
                "routes",
                "test",
                f"--config.file={config}",
                f"--verify.receivers={','.join(case['receivers'])}",
                *labels,
            ]
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
            if proc.returncode != 0:
                failures.append(f"{case['name']}: expected {','.join(case['receivers'])}, got {proc.stdout.strip()}")
        name = f"amtool config routes test ({len(cases)} cases)"
        results.append(Result(name, "fail", "; ".join(failures[:5])) if failures else Result(name, "ok"))
    return results


def compose_result(out: Path) -> Result:
    name = "docker-compose.yml against the compose-spec schema"
    try:
        import jsonschema
        from check_jsonschema.builtin_schemas import get_builtin_schema  # type: ignore[import-untyped]
    except ImportError:
        return Result(name, "missing", "check-jsonschema is not installed (pip install 'stackgen[test]')")
    schema = get_builtin_schema("vendor.compose-spec")
    data = yaml.safe_load((out / "docker-compose.yml").read_text())
    errors = sorted(
        jsonschema.validators.validator_for(schema)(schema).iter_errors(data),
        key=lambda e: list(e.path),
    )
    if errors:
        return Result(
            name,
            "fail",
            "; ".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:5]),
        )
    return Result(name, "ok")


def dashboards_result(out: Path) -> Result:
    name = "Grafana dashboards are JSON with unique panel ids"
    problems = []
    for path in sorted((out / "grafana/dashboards").rglob("*.json")):
        data = json.loads(path.read_text())
        ids = [p.get("id") for p in data.get("panels", [])]
        if len(ids) != len(set(ids)):
            problems.append(f"{path.name}: duplicate panel ids")
    return Result(name, "fail", "; ".join(problems)) if problems else Result(name, "ok")


def run_all(spec: Path, out: Path) -> list[Result]:
    if not (out / "prometheus/prometheus.yml").exists():
        raise UsageError(f"{out} holds no rendered stack; run `stackgen render --spec {spec} --out {out}` first")
    results = [
        *promtool_results(out),
        *amtool_results(out),
        compose_result(out),
        dashboards_result(out),
    ]
    from stackgen.pipeline import render_spec
    from stackgen.writer import compare

    diff = compare(render_spec(spec), out)
    results.append(
        Result(f"{out} matches {spec}", "ok")
        if diff.clean
        else Result(
            f"{out} matches {spec}",
            "fail",
            f"{len(diff.changed)} differ, {len(diff.missing)} missing, {len(diff.extra)} extra: run `stackgen render`",
        )
    )
    return results
