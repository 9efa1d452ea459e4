"""B3: `stackgen validate` on the default spec, then and now, in one run on this machine.

"Then" is the code the validate-speed issue was measured on (commit a77ef8b, 2026-11-30: an
alerts test per SLO replaying 3 days for the 100% outage too), checked out with `git
worktree` and run from this venv with PYTHONPATH pointing at it; "now" is this tree. Each
renders slos.yaml into a fresh directory and validates it (wall time of `stackgen validate`
only). Also, for each: its promtool checks run one at a time (config, rules, every unit-test
file), the serial run the issue compares against.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
THEN = "a77ef8b"


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return took


def validate(tree: Path, work: Path) -> tuple[float, Path]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = work / "out"
    spec = tree / "slos.yaml"
    timed([sys.executable, "-m", "stackgen", "render", "--spec", str(spec), "--out", str(out)], env, tree)
    return timed([sys.executable, "-m", "stackgen", "validate", "--spec", str(spec), "--out", str(out)], env, tree), out


def serial(out: Path) -> float:
    """A validate run's promtool checks one at a time: config, rules, each unit-test file (not amtool)."""
    prometheus = out / "prometheus"
    tests = sorted(str(p.relative_to(prometheus)) for p in (prometheus / "tests").rglob("*.test.yml"))
    rules = sorted(str(p.relative_to(prometheus)) for p in (prometheus / "rules").rglob("*.yml"))
    total = timed(["promtool", "check", "config", "--syntax-only", "prometheus.yml"], dict(os.environ), prometheus)
    total += timed(["promtool", "check", "rules", *rules], dict(os.environ), prometheus)
    for test in tests:
        total += timed(["promtool", "test", "rules", test], dict(os.environ), prometheus)
    return total


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="stackgen-b3-") as tmp:
        then_tree = Path(tmp) / "then"
        subprocess.run(["git", "worktree", "add", "--detach", str(then_tree), THEN], cwd=ROOT, check=True,
                       capture_output=True)  # fmt: skip
        try:
            (Path(tmp) / "a").mkdir()
            (Path(tmp) / "b").mkdir()
            then, then_out = validate(then_tree, Path(tmp) / "a")
            then_one_by_one = serial(then_out)
            now, out = validate(ROOT, Path(tmp) / "b")
            one_by_one = serial(out)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(then_tree)], cwd=ROOT, capture_output=True)
    text = (
        "\n## B3: `stackgen validate` on the default spec, then and now\n\n"
        f"Wall time of `stackgen validate` after a fresh render, {os.cpu_count()} cores, one run each:\n\n"
        "| code | validate s |\n|---|---|\n"
        f"| then: {THEN} (an alerts test per SLO, each replaying 3 days twice) | {then:.1f} |\n"
        f"| then, its promtool checks one at a time | {then_one_by_one:.1f} |\n"
        f"| now: an alerts test per SLO shape, the 100% outage after 6h, rolled-up windows evaluated hourly, "
        f"every check on every core, longest first | **{now:.1f}** |\n"
        f"| now, its promtool checks one at a time | {one_by_one:.1f} |\n\n"
        f"Then / now: **{then / now:.1f}x**; then one at a time / now: **{then_one_by_one / now:.1f}x**. "
        f"Serial / parallel today: {one_by_one / now:.1f}x.\n"
    )
    results = ROOT / "bench/results/latest.md"
    results.write_text(results.read_text() + text)  # after B1 and B2
    print(text)


if __name__ == "__main__":
    main()
