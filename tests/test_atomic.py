"""Crash-safe output: `stackgen render` SIGKILLed at seeded moments before its commit point
leaves exactly the old tree; after it, no file is torn (each holds its old or its new bytes)
and recover(), which every render runs first, completes exactly the new tree (file set and
bytes, user files included). The next render succeeds and removes every staging directory.

Two kinds of kill points:
- exact: a wrapper runs the real CLI with the writer's file operations reporting each step
  (every staged file, flush, the commit rename, every file moved in, the cleanup) over a pipe
  and waiting for a go; the test SIGKILLs at a seeded step, so kills land before, at and
  after the commit;
- timed: the plain CLI killed at seeded wall-clock moments across its run.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackgen import writer
from stackgen.errors import UsageError
from stackgen.model import build_model
from stackgen.render import render_all
from stackgen.spec import load_spec
from stackgen.writer import COMMIT, MARKER, STAGING, manifest, recover, write_tree
from tests.conftest import ROOT

E2E_SPEC = ROOT / "tests/e2e/spec.yaml"
SEED = 20260807
EXACT_KILLS = 30
TIMED_KILLS = 14
USER_FILES = {"notes/keep.txt": b"my notes\n", "secrets/pagerduty_key": b"not-a-real-key\n"}

WRAPPER = textwrap.dedent(
    """
    import os, shutil, sys
    from pathlib import Path

    from stackgen import writer

    events, acks = int(sys.argv[1]), int(sys.argv[2])

    def step(name):
        os.write(events, (name + "\\n").encode())
        if os.read(acks, 1) != b"k":
            os._exit(3)

    def staged(path):
        return ".stackgen-" in str(path)

    write_bytes, write_text = Path.write_bytes, Path.write_text

    def wb(self, data):
        n = write_bytes(self, data)
        if staged(self):
            step("staged " + self.name)
        return n

    def wt(self, data, *a, **k):
        n = write_text(self, data, *a, **k)
        if staged(self):
            step("staged " + self.name)
        return n

    Path.write_bytes, Path.write_text = wb, wt
    write_file = writer._write_file

    def wf(path, body):
        write_file(path, body)
        if staged(path):
            step("staged " + os.path.basename(path))

    writer._write_file = wf

    def around(module, name):
        original = getattr(module, name)

        def wrapped(*args, **kwargs):
            step("before " + name)
            result = original(*args, **kwargs)
            step("after " + name)
            return result

        setattr(module, name, wrapped)

    for module, name in [
        (writer, "_flush"),
        (writer, "_roll_forward"),
        (writer, "_prune"),
        (writer, "_recover"),
        (os, "rename"),
        (os, "replace"),
    ]:
        around(module, name)
    rmtree = shutil.rmtree

    def rm(path, *a, **k):
        step("rmtree " + Path(path).name.split("-")[1])
        return rmtree(path, *a, **k)

    shutil.rmtree = rm
    sys.argv = ["stackgen", "render", "--spec", sys.argv[3], "--out", sys.argv[4]]
    from stackgen.cli import main

    main()
    """
)


def big_spec(slos: int) -> str:
    spec = yaml.safe_load(E2E_SPEC.read_text())
    template = spec["services"][0]
    spec["services"] = [
        {**template, "name": f"svc-{s}", "slos": [{**template["slos"][0], "name": f"slo-{k}"} for k in range(5)]}
        for s in range(slos // 5)
    ]
    return yaml.safe_dump(spec)


def tree(root: Path) -> dict[str, bytes]:
    """Every file under root (the marker included, a render in progress not), or {} when root
    is absent."""
    if not root.exists():
        return {}
    files = {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}
    return {rel: p.read_bytes() for rel, p in files.items() if rel.split("/")[0] not in (STAGING, COMMIT)}


class Rig:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.out = tmp / "work" / "output"
        self.out.parent.mkdir()
        self.wrapper = tmp / "wrapper.py"
        self.wrapper.write_text(WRAPPER)
        self.specs = {"small": tmp / "small.yaml", "big": tmp / "big.yaml"}
        self.specs["small"].write_text(E2E_SPEC.read_text())
        self.specs["big"].write_text(big_spec(60))
        self.files = {k: render_all(build_model(load_spec(p))) for k, p in self.specs.items()}
        # The exact bytes of each complete tree, user files carried, marker included.
        self.expected: dict[str, dict[str, bytes]] = {}
        for name, files in self.files.items():
            ref = tmp / f"ref-{name}"
            write_tree(files, ref)
            for rel, data in USER_FILES.items():
                (ref / rel).parent.mkdir(parents=True, exist_ok=True)
                (ref / rel).write_bytes(data)
            write_tree(files, ref)  # a second render keeps them: that is the steady state
            self.expected[name] = tree(ref)
        assert self.expected["small"][MARKER] != self.expected["big"][MARKER]

    def state(self, allow_absent: bool = False) -> str:
        on_disk = tree(self.out)
        if allow_absent and not on_disk:
            return "absent"
        matches = [name for name, want in self.expected.items() if on_disk == want]
        if not matches:
            for name, want in self.expected.items():
                extra, missing = set(on_disk) - set(want), set(want) - set(on_disk)
                changed = [r for r in set(on_disk) & set(want) if on_disk[r] != want[r]]
                print(f"vs {name}: {len(extra)} extra, {len(missing)} missing, {len(changed)} changed")
        assert matches, "output is neither the old tree nor the new one"
        return matches[0]

    def leftovers(self) -> list[str]:
        beside = [p.name for p in self.out.parent.iterdir() if p.name.startswith(".stackgen-")]
        inside = [p.name for p in (self.out / STAGING, self.out / COMMIT) if p.exists()]
        return sorted(beside + inside)

    def untorn(self, old: str, new: str) -> None:
        """Mid-commit, every visible file holds its old bytes or its new ones."""
        for rel, data in tree(self.out).items():
            assert data in (self.expected[old].get(rel), self.expected[new].get(rel)), rel

    def finish(self, name: str) -> None:
        """A following render (in-process, the same code as the CLI) succeeds and cleans up."""
        write_tree(self.files[name], self.out)
        for rel, data in USER_FILES.items():
            if not (self.out / rel).exists():
                (self.out / rel).parent.mkdir(parents=True, exist_ok=True)
                (self.out / rel).write_bytes(data)
                write_tree(self.files[name], self.out)
        assert self.state() == name
        assert self.leftovers() == [], self.leftovers()

    def run_exact(self, name: str, kill_at: int | None) -> tuple[list[str], bool]:
        """Run the instrumented CLI; SIGKILL when step number kill_at is reported."""
        ev_r, ev_w = os.pipe()
        ack_r, ack_w = os.pipe()
        child = subprocess.Popen(
            [sys.executable, str(self.wrapper), str(ev_w), str(ack_r), str(self.specs[name]), str(self.out)],
            pass_fds=(ev_w, ack_r),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        os.close(ev_w)
        os.close(ack_r)
        steps: list[str] = []
        killed = False
        with os.fdopen(ev_r, "rb") as events, os.fdopen(ack_w, "wb", buffering=0) as acks:
            for line in events:
                steps.append(line.decode().strip())
                if kill_at is not None and len(steps) == kill_at:
                    child.send_signal(signal.SIGKILL)
                    killed = True
                    break
                acks.write(b"k")
        _, err = child.communicate(timeout=120)
        if not killed:
            assert child.returncode == 0, err.decode()
        return steps, killed


@pytest.mark.slow
def test_sigkill_at_every_kind_of_moment_leaves_old_or_new_tree(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rng = random.Random(SEED)
    log: list[str] = []

    # First render into a missing directory: killed, the target is absent or complete.
    steps, _ = rig.run_exact("small", None)
    first_steps = len(steps)
    shutil_rm = __import__("shutil").rmtree
    for k in sorted(rng.sample(range(1, first_steps + 1), 3)):
        shutil_rm(rig.out, ignore_errors=True)
        _, killed = rig.run_exact("small", k)
        state = rig.state(allow_absent=True)
        assert state in ("absent", "small")
        log.append(f"first render, step {k}/{first_steps} ({steps[k - 1]}): {state}")
        rig.finish("small")

    # The steady state: the user's files are in the output and get carried over.
    for rel, data in USER_FILES.items():
        (rig.out / rel).parent.mkdir(parents=True, exist_ok=True)
        (rig.out / rel).write_bytes(data)
    rig.finish("small")

    # Step counts of a full run each way, then exact kills spread over them: a third over all
    # steps, a third over the few rare ones (flushes, the commit rename, roll-forward, cleanup),
    # a third over moving files in and pruning (many, but the window where the tree is mixed).
    profiles = {}
    for target in ("big", "small"):
        profiles[target], _ = rig.run_exact(target, None)
        assert rig.state() == target

    def kind(step: str) -> str:
        if step.startswith("staged "):
            return "staged"
        return "moves" if step.split()[-1] in ("replace", "_prune") else "rare"

    def step_kind(step: str) -> str:
        return step.split()[0] + " " + step.split()[-1] if not step.startswith("staged") else "staged file"

    draws = {
        t: {c: [i + 1 for i, s in enumerate(p) if kind(s) == c] for c in ("rare", "moves")} for t, p in profiles.items()
    }
    kinds_seen: set[str] = set()
    before_commit = after_commit = 0
    for n in range(EXACT_KILLS - 3):
        current = rig.state()
        target = "small" if current == "big" else "big"
        steps = profiles[target]
        if n % 3 == 1:
            # Rare steps: each kind (a flush, the commit rename, roll-forward, cleanup) is hit
            # before any repeats, so the sample covers them whatever the tree sizes are.
            unseen = [i for i in draws[target]["rare"] if step_kind(steps[i - 1]) not in kinds_seen]
            k = rng.choice(unseen or draws[target]["rare"])
        elif n % 3 == 2:
            k = rng.choice(draws[target]["moves"])
        else:
            k = rng.randint(1, len(steps))
        seen_steps, killed = rig.run_exact(target, k)
        last = seen_steps[-1]
        kinds_seen.add(step_kind(last))
        # The commit point is the rename of the staging directory to .stackgen-commit.
        if "after rename" not in seen_steps:
            before_commit += 1
            state = rig.state()
            log.append(f"{current}->{target}, step {k}/{len(steps)} ({last}): {state}, killed={killed}")
            assert state == current, log[-1]
            if rng.random() < 0.5:
                rig.finish(target)
            # else: leave the staging debris to the next killed run: its recover() must cope
            continue
        after_commit += 1
        rig.untorn(current, target)
        pending = (rig.out / COMMIT).is_dir()
        assert pending or rig.state() == target
        if rng.random() < 0.5:
            recover(rig.out)  # what every render does first
        else:
            rig.finish(target)
        state = rig.state()
        log.append(f"{current}->{target}, step {k}/{len(steps)} ({last}): committed, pending={pending}, {state}")
        assert state == target, log[-1]
        assert rig.leftovers() == [], rig.leftovers()
    assert before_commit and after_commit, (before_commit, after_commit)
    assert any(s.endswith(" replace") for s in kinds_seen), kinds_seen
    assert any(s.startswith("rmtree") for s in kinds_seen), kinds_seen

    # Timed kills of the plain CLI between the two trees.
    durations = {}
    for name in ("big", "small"):
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "stackgen", "render", "--spec", str(rig.specs[name]), "--out", str(rig.out)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        durations[name] = time.monotonic() - started
        rig.state()
    landed = 0
    seen = set()
    for _ in range(TIMED_KILLS):
        current = rig.state()
        target = "small" if current == "big" else "big"
        child = subprocess.Popen(
            [sys.executable, "-m", "stackgen", "render", "--spec", str(rig.specs[target]), "--out", str(rig.out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        fraction = rng.choice([rng.uniform(0.3, 1.0), rng.uniform(0.75, 1.05)])
        time.sleep(durations[target] * fraction)
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            landed += 1
        child.wait()
        if (rig.out / COMMIT).is_dir():  # killed while moving files in: the next run finishes it
            rig.untorn(current, target)
            recover(rig.out)
            assert rig.state() == target
            state = "committed, finished by recover"
        else:
            state = rig.state()
        seen.add(state)
        log.append(f"timed {current}->{target} at {fraction:.2f} of {durations[target]:.2f}s: {state}")
    rig.finish("small")
    print("\n" + "\n".join(log))
    print(
        f"kill points: {EXACT_KILLS} exact (step kinds: {sorted(kinds_seen)}), "
        f"{TIMED_KILLS} timed ({landed} landed before the render finished); states seen {sorted(seen)}"
    )
    assert landed >= TIMED_KILLS // 3


def test_a_directory_stackgen_does_not_own_is_never_replaced(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "precious.txt").write_text("x")
    proc = subprocess.run(
        [sys.executable, "-m", "stackgen", "render", "--spec", str(E2E_SPEC), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "refusing to write into it" in proc.stderr
    assert tree(out) == {"precious.txt": b"x"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".stackgen-")]


def test_user_files_are_kept_and_reported(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args: list[Any] = [sys.executable, "-m", "stackgen", "render", "--spec", str(E2E_SPEC), "--out", str(out)]
    subprocess.run(args, check=True, capture_output=True, timeout=120)
    (out / "notes.md").write_text("mine")
    (out / "secrets" / "hook_token").write_text("t0ken")
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    assert "notes.md is not generated by stackgen; kept as is" in proc.stderr
    assert "hook_token" not in proc.stderr  # secrets/ is the user's: kept silently
    assert (out / "notes.md").read_text() == "mine" and (out / "secrets/hook_token").read_text() == "t0ken"


def _stats(root: Path) -> dict[str, tuple[int, int]]:
    return {
        p.relative_to(root).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()
    }


def test_an_up_to_date_output_is_not_touched(tmp_path: Path) -> None:
    files = render_all(build_model(load_spec(E2E_SPEC)))
    out = tmp_path / "output"
    write_tree(files, out)
    before = _stats(out)
    time.sleep(0.01)  # a rewrite would show in mtime_ns
    write_tree(files, out)
    assert _stats(out) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".stackgen-")]


def test_a_changed_render_replaces_only_changed_files_and_keeps_directories(tmp_path: Path) -> None:
    files = render_all(build_model(load_spec(E2E_SPEC)))
    out = tmp_path / "output"
    write_tree(files, out)
    before = _stats(out)
    folders = {p: p.stat().st_ino for p in [out, *out.rglob("*")] if p.is_dir()}
    rules = next(p for p in files if p.startswith("prometheus/rules/") and p.endswith(".rules.yml"))
    runbook = next(p for p in files if p.startswith("runbooks/"))
    (out / runbook).write_text("hand-edited\n")  # a generated file edited in place is restored
    changed = {**files, rules: files[rules] + "# changed\n"}
    write_tree(changed, out)
    after = _stats(out)
    assert tree(out) == {**{p: t.encode() for p, t in changed.items()}, MARKER: (out / MARKER).read_bytes()}
    assert (out / runbook).read_text() == files[runbook]
    assert after[rules][0] != before[rules][0]
    same = [p for p in files if p not in (rules, runbook)]
    assert all(after[p] == before[p] for p in same), "unchanged files are not touched"
    assert {p: p.stat().st_ino for p in folders} == folders, "every directory is kept"
    assert rig_leftovers(out) == []


def rig_leftovers(out: Path) -> list[str]:
    beside = [p.name for p in out.parent.iterdir() if p.name.startswith(".stackgen-")]
    return beside + [p.name for p in (out / STAGING, out / COMMIT) if p.exists()]


def test_a_running_container_sees_the_new_files_after_a_render(tmp_path: Path) -> None:
    """docker compose bind-mounts ./prometheus, ./loki, ...: a mount holds the directory, not
    its path. An open directory descriptor is the same thing: after a render that changes,
    adds and removes rule files, reading through it gives the new tree (a reload works)."""
    spec = yaml.safe_load(E2E_SPEC.read_text())
    out = tmp_path / "output"
    write_tree(render_all(build_model(load_spec(E2E_SPEC))), out)
    mounts = {name: os.open(out / name, os.O_RDONLY | os.O_DIRECTORY) for name in ("prometheus", "loki", "grafana")}
    try:
        spec["services"][0]["slos"][0]["objective"] = 99.5  # changes that service's rules and tests
        extra = {**spec["services"][0], "name": "brand-new"}
        spec["services"] = [*spec["services"][1:], extra]  # the first service's files go away
        changed_spec = tmp_path / "changed.yaml"
        changed_spec.write_text(yaml.safe_dump(spec))
        files = render_all(build_model(load_spec(changed_spec)))
        write_tree(files, out)
        for name, fd in mounts.items():
            seen = {}
            for dirpath, _, filenames, dirfd in os.fwalk(".", dir_fd=fd):
                for filename in filenames:
                    with open(os.open(filename, os.O_RDONLY, dir_fd=dirfd), "rb") as handle:
                        seen[f"{name}/{os.path.normpath(os.path.join(dirpath, filename))}"] = handle.read()
            want = {rel: text.encode() for rel, text in files.items() if rel.startswith(name + "/")}
            assert seen == want, name
    finally:
        for fd in mounts.values():
            os.close(fd)


def test_every_config_mount_in_compose_is_a_directory_the_writer_keeps(tmp_path: Path) -> None:
    """A file bind mount would pin the old file (a render replaces it by rename): only
    directories are mounted from the output."""
    files = render_all(build_model(load_spec(E2E_SPEC)))
    compose = yaml.safe_load(files["docker-compose.yml"])
    sources = [
        volume.split(":")[0] for service in compose["services"].values() for volume in service.get("volumes", [])
    ]
    local = sorted(s[2:] for s in sources if s.startswith("./"))
    assert local, "the compose file mounts configs from the output"
    for source in local:
        assert any(rel.startswith(source + "/") for rel in files), f"{source} is not a generated directory"
        assert source not in files, f"{source} is a file mount"


def test_a_path_a_rename_cannot_write_is_refused_before_anything_changes(tmp_path: Path) -> None:
    files = render_all(build_model(load_spec(E2E_SPEC)))
    out = tmp_path / "output"
    write_tree(files, out)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.rmtree(out / "loki")
    (out / "loki").symlink_to(elsewhere)  # writes through it would land outside the output
    before = tree(out)
    args = [sys.executable, "-m", "stackgen", "render", "--spec", str(E2E_SPEC), "--out", str(out)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "not a plain directory" in proc.stderr and "Traceback" not in proc.stderr
    assert tree(out) == before and list(elsewhere.iterdir()) == [] and rig_leftovers(out) == []
    (out / "loki").unlink()
    first = next(rel for rel in files if rel.startswith("runbooks/"))
    (out / first).unlink()
    (out / first).mkdir()  # a directory where a generated file goes
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "is a directory" in proc.stderr


def test_the_output_directory_keeps_its_mode_and_a_new_one_follows_the_umask(tmp_path: Path) -> None:
    files = render_all(build_model(load_spec(E2E_SPEC)))
    out = tmp_path / "output"
    mask = os.umask(0o022)
    try:
        write_tree(files, out)
        assert out.stat().st_mode & 0o777 == 0o755
        out.chmod(0o750)
        write_tree({**files, "README.md": files["README.md"] + "\n"}, out)
        assert out.stat().st_mode & 0o777 == 0o750
    finally:
        os.umask(mask)


def test_an_interrupted_commit_is_reported_by_check_and_finished_by_render(tmp_path: Path) -> None:
    files = render_all(build_model(load_spec(E2E_SPEC)))
    out = tmp_path / "output"
    write_tree(files, out)
    readme = files["README.md"] + "more\n"
    (out / COMMIT).mkdir()
    (out / COMMIT / "README.md").write_text(readme)  # as a render killed right after its commit leaves it
    (out / COMMIT / MARKER).write_text((out / MARKER).read_text())  # with its staged marker, moved in last
    args = [sys.executable, "-m", "stackgen", "render", "--spec", str(E2E_SPEC), "--out", str(out)]
    proc = subprocess.run([*args, "--check"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "interrupted" in proc.stderr
    recover(out)
    assert (out / "README.md").read_text() == readme and not (out / COMMIT).exists()


def test_a_sibling_outputs_staging_is_left_alone(tmp_path: Path) -> None:
    files = render_all(build_model(load_spec(E2E_SPEC)))
    sibling = tmp_path / ".stackgen-new-abc123xy-prod-out"  # prod-out's render in progress
    sibling.mkdir()
    write_tree(files, tmp_path / "out")
    assert sibling.is_dir()
    assert write_tree({}, tmp_path / "empty") == []  # an empty render into a new directory


def test_a_hand_edited_marker_never_deletes_outside_the_output(tmp_path: Path) -> None:
    files = render_all(build_model(load_spec(E2E_SPEC)))
    out = tmp_path / "output"
    write_tree(files, out)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    marker = out / MARKER
    # A commit that slipped these into the marker: a render treats them as "no longer generated".
    marker.write_text(marker.read_text() + "../victim.txt\n" + f"{victim}\n" + "runbooks/../../victim.txt\n")
    write_tree({**files, "README.md": files["README.md"] + "\n"}, out)
    assert victim.read_text() == "precious"
    # Nor the user's secrets, the marker itself, or a render in progress.
    (out / "secrets" / "pagerduty_key").write_text("k")
    marker.write_text(marker.read_text() + "secrets/pagerduty_key\n" + f"{MARKER}\n" + f"{COMMIT}/README.md\n")
    write_tree(files, out)
    assert (out / "secrets" / "pagerduty_key").read_text() == "k" and (out / "README.md").read_text() == files[
        "README.md"
    ]
    assert MARKER not in manifest(out) and (out / MARKER).is_file()


def test_a_symlinked_directory_never_leads_a_removal_outside(tmp_path: Path) -> None:
    files = render_all(build_model(load_spec(E2E_SPEC)))
    out = tmp_path / "output"
    write_tree(files, out)
    runbooks = sorted(rel for rel in files if rel.startswith("runbooks/"))
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(out / "runbooks", elsewhere)
    shutil.rmtree(out / "runbooks")
    (out / "runbooks").symlink_to(elsewhere)
    fewer = {rel: text for rel, text in files.items() if rel != runbooks[0]}  # that runbook is no longer generated
    write_tree(fewer, out)
    assert (elsewhere / runbooks[0].split("/")[1]).exists()


def test_a_removed_file_that_became_a_directory_is_kept_and_renders_go_on(tmp_path: Path) -> None:
    files = render_all(build_model(load_spec(E2E_SPEC)))
    out = tmp_path / "output"
    write_tree(files, out)
    gone = sorted(rel for rel in files if rel.startswith("runbooks/"))[0]
    (out / gone).unlink()
    (out / gone).mkdir()  # the user made a directory where a generated file was
    (out / gone / "mine.md").write_text("mine")
    fewer = {rel: text for rel, text in files.items() if rel != gone}
    assert write_tree(fewer, out) == [f"{gone}/mine.md"]
    assert (out / gone / "mine.md").read_text() == "mine" and rig_leftovers(out) == []
    changed = {**fewer, "README.md": files["README.md"] + "more\n"}
    assert write_tree(changed, out) == [f"{gone}/mine.md"]  # the next render is not wedged
    assert (out / "README.md").read_text() == changed["README.md"]


def test_a_failure_while_moving_files_in_is_a_usage_error_and_the_next_render_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = render_all(build_model(load_spec(E2E_SPEC)))
    out = tmp_path / "output"
    write_tree(files, out)
    changed = {**files, "README.md": files["README.md"] + "more\n"}
    replace = os.replace

    def refuse(src: Any, dst: Any) -> None:
        if Path(dst).name == "README.md":
            raise PermissionError(13, "Permission denied", str(dst))
        replace(src, dst)

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(UsageError, match=r"README.md: Permission denied\. The render is committed"):
        write_tree(changed, out)
    monkeypatch.setattr(os, "replace", replace)
    write_tree(changed, out)
    assert tree(out) == {**{p: t.encode() for p, t in changed.items()}, MARKER: (out / MARKER).read_bytes()}
    assert rig_leftovers(out) == []


def test_a_render_killed_while_cleaning_up_never_deletes_a_file_put_back_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = render_all(build_model(load_spec(E2E_SPEC)))
    out = tmp_path / "output"
    write_tree(files, out)
    gone = sorted(rel for rel in files if rel.startswith("runbooks/"))[0]
    rmtree = shutil.rmtree

    def killed(path: Any, *args: Any, **kwargs: Any) -> None:
        if Path(path).name == COMMIT:
            raise KeyboardInterrupt  # as a SIGKILL just before the commit directory goes
        rmtree(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        write_tree({rel: text for rel, text in files.items() if rel != gone}, out)
    monkeypatch.setattr(shutil, "rmtree", rmtree)
    assert (out / COMMIT).is_dir() and not (out / gone).exists()
    (out / gone).parent.mkdir(parents=True, exist_ok=True)  # pruned when that was its only file
    (out / gone).write_text("the user's own file now\n")
    recover(out)
    assert (out / gone).read_text() == "the user's own file now\n" and rig_leftovers(out) == []


def test_a_file_can_become_a_directory_and_back_between_renders(tmp_path: Path) -> None:
    out = tmp_path / "output"
    write_tree({"x/a.yml": "1\n", "b": "2\n", "c/d/e.yml": "3\n"}, out)
    write_tree({"x": "3\n", "b/c.yml": "4\n", "c/d/e.yml": "3\n"}, out)
    assert {k: v for k, v in tree(out).items() if k != MARKER} == {"x": b"3\n", "b/c.yml": b"4\n", "c/d/e.yml": b"3\n"}
    write_tree({"c": "5\n"}, out)
    assert {k: v for k, v in tree(out).items() if k != MARKER} == {"c": b"5\n"}
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "c"]
    # Not when the user's own file is in the way: that directory is refused, nothing changes.
    write_tree({"d/e.yml": "6\n"}, out)
    (out / "d" / "mine.txt").write_text("mine")
    before = tree(out)
    with pytest.raises(UsageError, match="is a directory"):
        write_tree({"d": "7\n"}, out)
    assert tree(out) == before and rig_leftovers(out) == []


def test_a_users_file_where_a_new_file_is_generated_is_refused_not_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "output"
    write_tree({"a.yml": "1\n"}, out)
    (out / "b.yml").write_text("mine\n")
    with pytest.raises(UsageError, match="was not written by stackgen"):
        write_tree({"a.yml": "2\n", "b.yml": "generated\n"}, out)
    assert (out / "b.yml").read_text() == "mine\n" and (out / "a.yml").read_text() == "1\n"
    (out / "b.yml").write_text("generated\n")  # the same bytes are adopted
    write_tree({"a.yml": "2\n", "b.yml": "generated\n"}, out)
    assert "b.yml" in (out / MARKER).read_text().splitlines()


def test_a_changed_file_keeps_the_mode_it_had(tmp_path: Path) -> None:
    out = tmp_path / "output"
    write_tree({"alertmanager/alertmanager.yml": "1\n"}, out)
    (out / "alertmanager/alertmanager.yml").chmod(0o640)
    write_tree({"alertmanager/alertmanager.yml": "2\n"}, out)
    assert (out / "alertmanager/alertmanager.yml").stat().st_mode & 0o777 == 0o640


def test_two_renders_into_one_output_take_turns(tmp_path: Path) -> None:
    """A second render waits for the first: its recovery would otherwise delete the first one's
    staging, and two roll-forwards would mix files of both specs."""
    out = tmp_path / "work" / "output"
    out.parent.mkdir()
    wrapper = tmp_path / "wrapper.py"
    wrapper.write_text(WRAPPER)
    specs = {"small": tmp_path / "small.yaml", "big": tmp_path / "big.yaml"}
    specs["small"].write_text(E2E_SPEC.read_text())
    specs["big"].write_text(big_spec(20))
    small = render_all(build_model(load_spec(specs["small"])))
    write_tree(small, out)
    ev_r, ev_w = os.pipe()
    ack_r, ack_w = os.pipe()
    first = subprocess.Popen(
        [sys.executable, str(wrapper), str(ev_w), str(ack_r), str(specs["big"]), str(out)],
        pass_fds=(ev_w, ack_r),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    os.close(ev_w)
    os.close(ack_r)
    with os.fdopen(ev_r, "rb") as events, os.fdopen(ack_w, "wb", buffering=0) as acks:
        while not next(events).startswith(b"staged "):
            acks.write(b"k")
        # The first render is paused half-way through staging its files.
        second = subprocess.Popen(
            [sys.executable, "-m", "stackgen", "render", "--spec", str(specs["small"]), "--out", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        with pytest.raises(subprocess.TimeoutExpired):
            second.wait(timeout=8)  # it renders in about a second when nothing holds it back
        acks.write(b"k")
        for _ in events:
            acks.write(b"k")
    assert first.wait(timeout=120) == 0, first.stderr.read().decode() if first.stderr else ""
    assert second.wait(timeout=120) == 0, second.stderr.read().decode() if second.stderr else ""
    assert tree(out) == {**{p: t.encode() for p, t in small.items()}, MARKER: (out / MARKER).read_bytes()}
    assert rig_leftovers(out) == []


def test_a_broken_marker_or_out_path_is_a_clear_error(tmp_path: Path) -> None:
    args = [sys.executable, "-m", "stackgen", "render", "--spec", str(E2E_SPEC), "--out"]
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    proc = subprocess.run([*args, str(dangling)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "symlink to nothing" in proc.stderr and "Traceback" not in proc.stderr
    out = tmp_path / "output"
    subprocess.run([*args, str(out)], check=True, capture_output=True, timeout=120)
    (out / MARKER).write_bytes(b"\xff\xfe not utf-8\n")
    proc = subprocess.run([*args, str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "is not UTF-8 text" in proc.stderr and "Traceback" not in proc.stderr
    (out / MARKER).unlink()
    (out / MARKER).mkdir()
    proc = subprocess.run([*args, str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "is not a plain file" in proc.stderr and "Traceback" not in proc.stderr


LAYOUT_OLD = {"x/a.yml": "1\n", "b": "2\n", "c/d/e.yml": "3\n", "loki/config.yml": "4\n"}
LAYOUT_NEW = {"x": "5\n", "b/c.yml": "6\n", "c": "7\n", "loki/loki.yml": "4\n"}


class Interrupted(BaseException):
    pass


def test_a_layout_change_interrupted_at_every_step_is_finished_by_recover(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files become directories and back, a directory's only file is renamed: interrupted at
    each filesystem step (in-process, as a SIGKILL there), the tree is the old one or, after
    recover(), exactly the new one; never a render that is stuck."""
    operations = ("unlink", "rmdir", "replace", "rename", "mkdir")
    originals = {name: getattr(os, name) for name in operations}
    total = None
    k = 1
    outcomes: dict[str, int] = {}
    while total is None or k <= total:
        out = tmp_path / f"out{k}"
        write_tree(LAYOUT_OLD, out)
        calls = 0

        def counting(name: str, stop: int = k) -> Any:
            def op(*args: Any, **kwargs: Any) -> Any:
                nonlocal calls
                calls += 1
                if calls == stop:
                    raise Interrupted
                return originals[name](*args, **kwargs)

            return op

        for name in operations:
            monkeypatch.setattr(os, name, counting(name))
        try:
            write_tree(LAYOUT_NEW, out)
            finished = True
        except Interrupted:
            finished = False
        finally:
            for name in operations:
                monkeypatch.setattr(os, name, originals[name])
        if finished:
            total = calls
            break
        recover(out)
        got = {rel: data for rel, data in tree(out).items() if rel != MARKER}
        old = {rel: text.encode() for rel, text in LAYOUT_OLD.items()}
        new = {rel: text.encode() for rel, text in LAYOUT_NEW.items()}
        state = "old" if got == old else "new" if got == new else f"neither: {sorted(got)}"
        assert state in ("old", "new"), f"interrupted at step {k}: {state}"
        assert rig_leftovers(out) == []
        write_tree(LAYOUT_NEW, out)  # and the next render is not stuck
        outcomes[state] = outcomes.get(state, 0) + 1
        k += 1
    print(f"{total} steps; interrupted renders ended as {outcomes}")
    assert outcomes.get("old") and outcomes.get("new"), outcomes


def test_a_directory_whose_only_file_is_renamed_keeps_its_inode(tmp_path: Path) -> None:
    out = tmp_path / "output"
    write_tree(LAYOUT_OLD, out)
    held = os.open(out / "loki", os.O_RDONLY | os.O_DIRECTORY)  # as a bind mount holds it
    try:
        write_tree(LAYOUT_NEW, out)
        assert sorted(os.listdir(held)) == ["loki.yml"]
    finally:
        os.close(held)


def test_an_empty_out_directory_recovers_from_a_killed_first_render(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "volume"
    out.mkdir()  # an existing empty --out, e.g. a mounted volume: rendered in place

    def killed(path: Any, *args: Any, **kwargs: Any) -> None:
        raise Interrupted

    from stackgen import writer

    monkeypatch.setattr(writer, "_roll_forward", killed)  # right after the commit point
    with pytest.raises(Interrupted):
        write_tree(LAYOUT_NEW, out)
    monkeypatch.undo()
    assert [p.name for p in out.iterdir()] == [COMMIT]
    write_tree(LAYOUT_NEW, out)
    assert {rel: data for rel, data in tree(out).items() if rel != MARKER} == {
        rel: text.encode() for rel, text in LAYOUT_NEW.items()
    }


def test_a_removed_file_replaced_by_a_directory_is_skipped_where_unlink_says_eperm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """POSIX lets unlink(2) of a directory fail with EPERM (macOS, BSDs), not Linux's EISDIR."""
    out = tmp_path / "output"
    write_tree({"f": "1\n", "b": "2\n"}, out)
    (out / "f").unlink()
    (out / "f").mkdir()
    (out / "f" / "mine.txt").write_text("mine")
    unlink = os.unlink

    def posix_unlink(path: Any, *args: Any, **kwargs: Any) -> None:
        if os.path.isdir(path) and not os.path.islink(path):
            raise PermissionError(1, "Operation not permitted", str(path))
        unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", posix_unlink)
    assert write_tree({"b": "3\n"}, out) == ["f/mine.txt"]
    assert (out / "f" / "mine.txt").read_text() == "mine" and rig_leftovers(out) == []


def test_without_syncfs_only_stackgens_own_files_are_flushed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fsync fallback must not open the user's files: a secret a container made
    unreadable would otherwise stop every render after its commit point."""
    from stackgen import writer

    out = tmp_path / "output"
    write_tree({"a/x.yml": "1\n", "b": "2\n"}, out)
    (out / "secrets").mkdir()
    (out / "secrets" / "db").write_text("s3cret")
    opened = os.open
    monkeypatch.setattr(writer, "_syncfs", lambda fd: False)

    def guarded_open(path: Any, *args: Any, **kwargs: Any) -> int:
        if "secrets" in str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return opened(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded_open)
    write_tree({"a/y.yml": "3\n", "b": "4\n"}, out)
    monkeypatch.undo()
    assert {rel: data for rel, data in tree(out).items() if rel != MARKER} == {
        "a/y.yml": b"3\n",
        "b": b"4\n",
        "secrets/db": b"s3cret",
    }


def test_a_symlink_loop_where_a_removed_file_was_does_not_stop_renders(tmp_path: Path) -> None:
    out = tmp_path / "output"
    write_tree({"a/x.yml": "1\n", "b": "2\n"}, out)
    shutil.rmtree(out / "a")
    (out / "a").symlink_to("a")  # a -> a: every path through it is ELOOP
    write_tree({"b": "3\n"}, out)
    assert (out / "b").read_text() == "3\n" and (out / "a").is_symlink() and rig_leftovers(out) == []


def test_render_says_what_it_wrote_and_when_nothing_changed(tmp_path: Path) -> None:
    out = tmp_path / "output"
    args = [sys.executable, "-m", "stackgen", "render", "--spec", str(E2E_SPEC), "--out", str(out)]
    first = subprocess.run(args, capture_output=True, text=True, timeout=120)
    count = len(render_all(build_model(load_spec(E2E_SPEC))))
    assert first.returncode == 0 and f"rendered {count} files into {out}/: {count} written" in first.stdout
    again = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "already up to date" in again.stdout and "nothing written" in again.stdout
    (out / "README.md").write_text("edited\n")
    third = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert f"rendered {count} files into {out}/: 1 written" in third.stdout


@pytest.mark.parametrize(
    ("errno_", "words"),
    [(28, "no space left on the device"), (30, "read-only file system"), (13, "permission denied")],
    ids=["ENOSPC", "EROFS", "EACCES"],
)
def test_a_disk_that_refuses_writes_is_a_usage_error_and_the_output_is_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, errno_: int, words: str
) -> None:
    out = tmp_path / "output"
    write_tree(LAYOUT_OLD, out)
    before = tree(out)
    real = writer._write_file

    def refuse(path: str, body: bytes) -> None:
        if STAGING in Path(path).parts:
            raise OSError(errno_, os.strerror(errno_), path)
        real(path, body)

    monkeypatch.setattr(writer, "_write_file", refuse)
    with pytest.raises(UsageError, match=f"(?i){words}.*not committed"):
        write_tree(LAYOUT_NEW, out)
    monkeypatch.undo()
    assert tree(out) == before
    write_tree(LAYOUT_NEW, out)  # the next render cleans up and goes through
    assert {rel: data for rel, data in tree(out).items() if rel != MARKER} == {
        rel: text.encode() for rel, text in LAYOUT_NEW.items()
    }


def test_an_out_path_under_a_file_is_refused_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    args = [sys.executable, "-m", "stackgen", "render", "--spec", str(E2E_SPEC), "--out", str(tmp_path / "file/out")]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "is a file" in proc.stderr and "Traceback" not in proc.stderr
