"""`make bench` B1: render speed and memory against a serialisation floor, and cold start.

Every measurement runs in fresh processes. Ratios come from the same run, so they hold
across machines; absolute times do not.

- CLI wall: `stackgen render --spec S --out O` into an output it rendered before (the CI and
  GitOps case), median of RUNS, peak RSS of the largest process (wait4).
- Phases: import, load (YAML + schema + model), render, atomic write, timed in one process.
- Floor: the same output data dumped by the serialisers stackgen uses (block_yaml, orjson),
  and by PyYAML's C dumper / json.dumps for reference; render / floor is the cost of
  computing the output beyond writing it out.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from synth import synthetic_spec

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
STACKGEN = str(Path(PY).parent / "stackgen")
SIZES = (10, 100, 1000)
RUNS = 5  # per measurement; this VM's speed swings by a third between runs, medians of 3 did too

LIST_FILES = r"""
import json, sys
from pathlib import Path
from stackgen.pipeline import render_spec
print(json.dumps(render_spec(Path(sys.argv[1]))))
"""

PHASES = r"""
import json, resource, sys, time
from pathlib import Path
t0 = time.perf_counter()
from stackgen.pipeline import load_model
from stackgen.render import render_all
from stackgen.writer import write_tree
t1 = time.perf_counter()
model = load_model(Path(sys.argv[1]), None)
t2 = time.perf_counter()
files = render_all(model)
t3 = time.perf_counter()
write_tree(files, Path(sys.argv[2]))
t4 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "load": t2 - t1, "render": t3 - t2, "write": t4 - t3, "files": len(files),
                  "bytes": sum(len(v.encode()) for v in files.values())}))
"""

FLOOR = r"""
import json, sys, time, yaml
from pathlib import Path
from stackgen.pipeline import load_model
from stackgen.render import render_all
from stackgen.render.common import json_text, pyyaml_text, stdlib_json_text, yaml_text
files = render_all(load_model(Path(sys.argv[1]), None))
data = []  # the same output as plain data
for path, text in files.items():
    if path.endswith(".json"):
        data.append(("json", json.loads(text)))
    elif path.endswith(".yml"):
        data.append(("yaml", yaml.load(text, Loader=yaml.CSafeLoader)))
def timed(dump_yaml, dump_json):
    t0 = time.perf_counter()
    for kind, value in data:
        (dump_json if kind == "json" else dump_yaml)(value)
    return time.perf_counter() - t0
print(json.dumps({"floor": timed(yaml_text, json_text), "reference": timed(pyyaml_text, stdlib_json_text)}))
"""


def run_json(code: str, *args: str) -> dict[str, float]:
    proc = subprocess.run([PY, "-c", code, *args], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def median_json(runs: list[dict[str, float]]) -> dict[str, float]:
    """Each key's median over several runs."""
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def timed_process(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS MB of the largest process in the tree) for one command."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    return wall, usage.ru_maxrss / 1024


def cli_render(spec: Path, out_dirs: list[Path], jobs: str | None = None, prepare: Any = None) -> tuple[float, float]:
    """Median wall and peak RSS of `stackgen render` into each of out_dirs in turn."""
    env = dict(os.environ)
    if jobs:
        env["STACKGEN_JOBS"] = jobs
    runs = []
    for i, out in enumerate(out_dirs):
        if prepare:
            prepare(i)
        runs.append(timed_process([STACKGEN, "render", "--spec", str(spec), "--out", str(out)], env))
    return statistics.median(w for w, _ in runs), max(m for _, m in runs)


def create_files(root: Path, files: dict[str, bytes]) -> float:
    """The disk floor: creating the same files with plain writes, nothing else."""
    started = time.perf_counter()
    for rel, body in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    os.sync()
    return time.perf_counter() - started


def wall(argv: list[str], runs: int = 7) -> float:
    return statistics.median(timed_process(argv)[0] for _ in range(runs))


def compile_bytecode() -> None:
    """Measure stackgen as installed: pip writes .pyc files on install, but `make` installs it
    editable, and where PYTHONDONTWRITEBYTECODE is set (this machine) Python would compile
    every stackgen module again on every run (~50 ms of each start)."""
    import compileall

    compileall.compile_dir(ROOT / "stackgen", quiet=1)


def main() -> None:
    compile_bytecode()
    cores = len(os.sched_getaffinity(0))
    ram = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    lines = [
        f"# stackgen benchmarks ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"Python {platform.python_version()}, {cores} cores)",
        "",
        "## B1: render",
        "",
        f"`stackgen render` wall time, median of {RUNS} runs, each in a fresh process (peak RSS: the largest",
        "process of the render). Fresh = into a new directory; one SLO changed = re-render after the",
        "objective of one SLO changed (only changed files are staged and renamed in); unchanged =",
        "re-render of the same spec (nothing is written). RAM = a tmpfs output, so the disk is out of",
        "the measurement; disk = this machine's ext4 volume. stackgen's modules are byte-compiled first,",
        "as `pip install` does.",
        "",
        "| SLOs | files | MB out | fresh, RAM s | fresh, disk s | one SLO changed, disk s | unchanged s | "
        "s per 100 SLOs (fresh, RAM) | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    phases_lines = [
        "",
        "Phases of a fresh render, timed inside one process, medians of 3 (write into RAM where available); floor =",
        "dumping the same output data with stackgen's serialisers (block_yaml, orjson), PyYAML's C",
        "dumper + json.dumps for reference:",
        "",
        "| SLOs | import s | load s | render s | write s | floor s | render / floor | PyYAML+json s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory(dir=ram) as ram_tmp:
        base, ram_base = Path(tmp), Path(ram_tmp)
        for n in SIZES:
            spec = base / f"spec{n}" / "slos.yaml"
            spec.parent.mkdir()
            text = synthetic_spec(n)
            spec.write_text(text)
            fresh_ram, rss = cli_render(spec, [ram_base / f"fresh{n}-{i}" for i in range(RUNS)])
            fresh_disk, rss_disk = cli_render(spec, [base / f"fresh{n}-{i}" for i in range(RUNS)])
            other = text.replace("objective: 99.5", "objective: 99.4", 1)
            changed, rss_changed = cli_render(
                spec,
                [base / f"fresh{n}-0"] * RUNS,
                prepare=lambda i, spec=spec, text=text, other=other: spec.write_text(other if i % 2 == 0 else text),
            )
            spec.write_text(text)
            unchanged, _ = cli_render(spec, [base / f"fresh{n}-1"] * RUNS)
            r = median_json([run_json(PHASES, str(spec), str(ram_base / f"phases{n}-{i}")) for i in range(3)])
            floor = median_json([run_json(FLOOR, str(spec)) for _ in range(3)])
            rows[f"fresh{n}"] = fresh_ram
            lines.append(
                f"| {n} | {int(r['files'])} | {r['bytes'] / 1e6:.1f} | **{fresh_ram:.2f}** | {fresh_disk:.2f} | "
                f"{changed:.2f} | {unchanged:.2f} | {100 * fresh_ram / n:.2f} | {max(rss, rss_disk, rss_changed):.0f} |"
            )
            phases_lines.append(
                f"| {n} | {r['import']:.2f} | {r['load']:.2f} | {r['render']:.2f} | {r['write']:.2f} | "
                f"{floor['floor']:.2f} | {r['render'] / floor['floor']:.1f}x | {floor['reference']:.2f} |"
            )
            if n == max(SIZES):
                files = run_json(LIST_FILES, str(spec))
                disk_floor = create_files(base / "floor", {k: v.encode() for k, v in files.items()})
        spec = base / f"spec{max(SIZES)}" / "slos.yaml"
        single, single_rss = cli_render(spec, [ram_base / f"single-{i}" for i in range(RUNS)], jobs="1")
        varied = base / "varied" / "slos.yaml"
        varied.parent.mkdir()
        varied.write_text(synthetic_spec(max(SIZES), varied=True))
        varied_s, varied_rss = cli_render(varied, [ram_base / f"varied-{i}" for i in range(RUNS)])
    lines += phases_lines
    lines += [
        "",
        f"| {max(SIZES):,} SLOs, fresh render into RAM | `stackgen render` s | peak RSS MB |",
        "|---|---|---|",
        f"| default: per-service files rendered by {cores} processes (stackgen's and forked workers) | {rows[f'fresh{max(SIZES)}']:.2f} | "
        f"{rss:.0f} |",
        f"| one process (`STACKGEN_JOBS=1`) | {single:.2f} | {single_rss:.0f} |",
        f"| every SLO its own objective (the synthetic spec repeats 5 shapes) | {varied_s:.2f} | {varied_rss:.0f} |",
        "",
        f"Growth: {rows['fresh1000'] / rows['fresh100']:.1f}x the time for 10x the SLOs (100 -> 1,000). "
        f"Worker processes: {single / rows['fresh1000']:.2f}x faster than one process. Disk floor: "
        f"creating the same {len(files):,} files with plain writes takes {disk_floor:.2f} s on this volume.",
    ]
    help_s = wall([STACKGEN, "--help"])
    pass_s = wall([PY, "-c", "pass"])
    lines += [
        "",
        "## Cold start",
        "",
        "| command | median of 7 |",
        "|---|---|",
        f"| `stackgen --help` | {help_s * 1000:.0f} ms |",
        f"| `python -c pass` | {pass_s * 1000:.0f} ms |",
        f"| ratio | {help_s / pass_s:.1f}x |",
        "",
        "Targets (issue 9): 1,000 SLOs under 2 s and 300 MB; `--help` under 0.3 s.",
        "",
    ]
    text = "\n".join(lines)
    out = ROOT / "bench/results/latest.md"
    out.write_text(text)
    print(text)
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
