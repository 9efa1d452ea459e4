"""`stackgen validate`: the real tools judge the rendered output."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stackgen.errors import StackgenError, UsageError

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


def missing_secret_files(config: Path) -> list[str]:
    """Credential files prometheus.yml names that are not on this machine. promtool refuses a
    config whose credential files it cannot stat; Prometheus reads them at every scrape, so
    they only need to exist where the stack runs."""
    data = yaml.safe_load(config.read_text()) or {}
    named = []
    for job in data.get("scrape_configs", []):
        named.append((job.get("authorization") or {}).get("credentials_file"))
        named.append((job.get("basic_auth") or {}).get("password_file"))
        named += [(job.get("tls_config") or {}).get(k) for k in ("ca_file", "cert_file", "key_file")]
    return sorted({n for n in named if n and not (config.parent / n).exists()})


Report = Callable[[Result], None]


@dataclass
class Job:
    """One independent check. cost: how long it runs, relative to the others (a unit-test
    file's size: the alerts tests are the long ones), so the longest start first."""

    run: Callable[[], list[Result]]
    cost: int = 0


def _silent(result: Result) -> None:
    del result


def unit_test_files(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out / "prometheus")) for p in (out / "prometheus/tests").rglob("*.test.yml"))


def promtool_jobs(out: Path) -> list[Job]:
    """promtool's checks of OUT, one job each: config, rules, every unit-test file."""
    jobs: list[Job] = []
    config = out / "prometheus/prometheus.yml"
    if config.exists():  # the kubernetes target has none: the operator writes it
        jobs.append(Job(lambda: [_check_config(out, config)]))
    rule_files = sorted(str(p.relative_to(out)) for p in (out / "prometheus/rules").rglob("*.rules.yml"))
    if rule_files:
        argv = ["promtool", "check", "rules", *rule_files]
        jobs.append(Job(lambda: [_run(f"promtool check rules ({len(rule_files)} files)", argv, cwd=out)]))
    for test in unit_test_files(out):
        jobs.append(Job(functools.partial(_unit_test, out, test), (out / "prometheus" / test).stat().st_size))
    return jobs


def _unit_test(out: Path, test: str) -> list[Result]:
    return [_run(f"promtool test rules {test}", ["promtool", "test", "rules", test], cwd=out / "prometheus")]


def _check_config(out: Path, config: Path) -> Result:
    missing = missing_secret_files(config)
    argv = ["promtool", "check", "config", *(["--syntax-only"] if missing else []), "prometheus/prometheus.yml"]
    result = _run("promtool check config prometheus/prometheus.yml", argv, cwd=out)
    if missing and result.status == "ok":
        result.detail = (
            f"syntax and references only: {len(missing)} secret file(s) are not on this machine "
            f"({', '.join(missing)}); Prometheus reads them where it runs"
        )
    return result


def _drop_webhook_timeouts(data: dict[str, Any]) -> int:
    dropped = 0
    for receiver in data.get("receivers", []):
        for webhook in receiver.get("webhook_configs", []):
            dropped += webhook.pop("timeout", None) is not None
    return dropped


# Settings the pinned Alertmanager reads that an older amtool (Debian's 0.25) rejects as
# unknown fields: (where, the first version that has it, remove them from a config -> count).
NEWER_THAN_AMTOOL: tuple[tuple[str, tuple[int, ...], Callable[[dict[str, Any]], int]], ...] = (
    ("webhook_configs[].timeout", (0, 28, 0), _drop_webhook_timeouts),
)


def tool_version(tool: str) -> tuple[int, ...] | None:
    """`amtool --version` -> (0, 25, 0)."""
    if shutil.which(tool) is None:
        return None
    proc = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=60)
    match = re.search(r"version (\d+)\.(\d+)\.(\d+)", proc.stdout + proc.stderr)
    return tuple(int(x) for x in match.groups()) if match else None


def config_for_amtool(config: Path, version: tuple[int, ...] | None, scratch: Path) -> tuple[Path, list[str]]:
    """The config amtool can judge: as rendered, or, for an amtool older than a setting the
    pinned Alertmanager has, a copy without that setting (named in the notes, so the result
    says what amtool did not see). The schema checked those settings' values already."""
    if version is None:
        return config, []
    data = yaml.safe_load(config.read_text())
    notes = []
    for where, since, drop in NEWER_THAN_AMTOOL:
        if version < since:
            dropped = drop(data)
            if dropped:
                notes.append(
                    f"{where} ({dropped}x) not shown to amtool {'.'.join(map(str, version))}, which predates it "
                    f"(Alertmanager {'.'.join(map(str, since))}+; the stack runs a newer one)"
                )
    if not notes:
        return config, []
    copy = scratch / "alertmanager.yml"
    copy.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return copy, notes


def amtool_results(out: Path) -> list[Result]:
    with tempfile.TemporaryDirectory() as scratch:
        return _amtool_results(out, Path(scratch))


def _amtool_results(out: Path, scratch: Path) -> list[Result]:
    config, notes = config_for_amtool(out / "alertmanager/alertmanager.yml", tool_version("amtool"), scratch)
    results = [
        _run(
            "amtool check-config alertmanager/alertmanager.yml",
            ["amtool", "check-config", str(config)],
        )
    ]
    if notes and results[0].status == "ok":
        results[0].detail = "; ".join(notes)
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
        return Result(
            name, "missing", "check-jsonschema is not installed (it is a dependency of stackgen: reinstall it)"
        )
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


def run_all(spec: Path, out: Path, report: Report = _silent) -> list[Result]:
    """Every check, each reported as soon as it is known. The checks are independent and
    CPU-bound (promtool's unit tests most of all): they run on every core, longest first (a
    unit-test file's size stands for its length), and are returned in their listed order."""
    kubernetes = (out / "kubernetes").is_dir()
    if not (out / "prometheus/prometheus.yml").exists() and not kubernetes:
        raise UsageError(f"{out} holds no rendered stack; run `stackgen render --spec {spec} --out {out}` first")
    # amtool runs once per routing case, one call after another: start it first, beside the
    # longest unit test, so that it never ends the run alone.
    jobs = [*promtool_jobs(out), Job(lambda: amtool_results(out), cost=2**62)]
    if not kubernetes:
        jobs += [Job(lambda: [compose_result(out)]), Job(lambda: [dashboards_result(out)])]
    jobs.append(Job(lambda: [_matches_spec(spec, out, kubernetes)]))
    done: dict[int, list[Result]] = {}
    errors: list[StackgenError] = []  # e.g. a spec that no longer loads: raised once all else is reported
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        order = sorted(range(len(jobs)), key=lambda i: -jobs[i].cost)
        futures = {pool.submit(jobs[i].run): i for i in order}
        try:
            for future in as_completed(futures):
                try:
                    done[futures[future]] = future.result()
                except StackgenError as err:
                    errors.append(err)
                    done[futures[future]] = []
                for result in done[futures[future]]:
                    report(result)
        except BaseException:  # a bug or Ctrl-C: do not start the queued checks
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    if errors:
        raise errors[0]
    return [result for i in range(len(jobs)) for result in done[i]]


def _matches_spec(spec: Path, out: Path, kubernetes: bool) -> Result:
    from stackgen.pipeline import render_spec
    from stackgen.writer import compare

    diff = compare(render_spec(spec, "kubernetes" if kubernetes else None), out)
    if diff.clean:
        return Result(f"{out} matches {spec}", "ok")
    return Result(
        f"{out} matches {spec}",
        "fail",
        f"{len(diff.changed)} differ, {len(diff.missing)} missing, {len(diff.extra)} extra: run `stackgen render`",
    )
