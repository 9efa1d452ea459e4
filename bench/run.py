"""`make bench`: render speed and memory against a serialisation floor, and cold start.

Each measurement runs in a fresh process; peak memory is the child's max RSS. Ratios come
from the same run, so they hold across machines; absolute times do not.
"""

from __future__ import annotations

import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from synth import synthetic_spec

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
SIZES = (10, 100, 1000)

CHILD = r"""
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
                  "bytes": sum(len(v) for v in files.values()),
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

FLOOR = r"""
import json, sys, time, yaml
from pathlib import Path
from stackgen.pipeline import load_model
from stackgen.render import render_all
files = render_all(load_model(Path(sys.argv[1]), None))
data = {}
for path, text in files.items():  # the same output as plain data
    if path.endswith(".json"):
        data[path] = json.loads(text)
    else:
        data[path] = yaml.safe_load(text) if path.endswith(".yml") else text
dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
t0 = time.perf_counter()
for path, value in data.items():
    if path.endswith(".json"):
        json.dumps(value, indent=2)
    elif path.endswith(".yml"):
        yaml.dump(value, Dumper=dumper, sort_keys=False, width=1000)
print(json.dumps({"floor": time.perf_counter() - t0}))
"""


def run_child(code: str, *args: str) -> dict[str, float]:
    proc = subprocess.run([PY, "-c", code, *args], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def wall(argv: list[str], runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    lines = [
        f"# stackgen benchmarks ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"Python {platform.python_version()}, {cores} cores)",
        "",
    ]
    lines += [
        "## B1: render",
        "",
        "| SLOs | files | MB out | load s | render s | write s | total s | "
        "s per 100 SLOs | peak RSS MB | floor s | render/floor |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for n in SIZES:
            spec = Path(tmp) / f"spec{n}" / "slos.yaml"
            spec.parent.mkdir()
            spec.write_text(synthetic_spec(n))
            r = run_child(CHILD, str(spec), str(Path(tmp) / f"out{n}"))
            floor = run_child(FLOOR, str(spec))["floor"]
            total = r["load"] + r["render"] + r["write"]
            lines.append(
                f"| {n} | {int(r['files'])} | {r['bytes'] / 1e6:.1f} | {r['load']:.2f} | {r['render']:.2f} | "
                f"{r['write']:.2f} | {total:.2f} | {100 * total / n:.2f} | {r['rss_mb']:.0f} | "
                f"{floor:.2f} | {r['render'] / floor:.1f}x |"
            )
    help_s = wall([str(Path(PY).parent / "stackgen"), "--help"])
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
        "B2 (rule evaluation cost in a real Prometheus) is not implemented yet: see the README.",
    ]
    text = "\n".join(lines) + "\n"
    out = ROOT / "bench/results/latest.md"
    out.write_text(text)
    print(text)
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
