"""Edges of input and output a red team found: bytes that are not UTF-8 located by line, a
spec name that would end an HTML comment, `--check` that never reads the user's secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import DEFAULT_SPEC


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stackgen", *args], capture_output=True, text=True, timeout=120)


def test_bytes_that_are_not_utf8_are_located_by_line(tmp_path: Path) -> None:
    spec = tmp_path / "slos.yaml"
    spec.write_bytes(b"version: stackgen/v1\nstack:\n  name: caf\xe9\n")
    proc = run("render", "--spec", str(spec), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{spec}:3: not UTF-8 text (column 12, byte 39)" in proc.stderr


def test_a_spec_name_cannot_end_the_html_comment_of_a_runbook(tmp_path: Path) -> None:
    spec = tmp_path / "a-->b.yaml"
    spec.write_text(DEFAULT_SPEC.read_text())
    out = tmp_path / "o"
    assert run("render", "--spec", str(spec), "--out", str(out)).returncode == 0
    for doc in [*out.glob("runbooks/**/*.md"), out / "README.md", out / "secrets/README.md"]:
        first = doc.read_text().splitlines()[0]
        assert first.startswith("<!-- ") and first.endswith(" -->") and first.count("--") == 2, (doc, first)


def test_check_never_reads_the_users_secrets(tmp_path: Path) -> None:
    """A FIFO in secrets/ would block any read: --check must finish without opening it."""
    out = tmp_path / "o"
    assert run("render", "--spec", str(DEFAULT_SPEC), "--out", str(out)).returncode == 0
    os.mkfifo(out / "secrets" / "pagerduty_oncall_key")
    (out / "secrets" / "smtp_password").write_text("hunter2\n")
    proc = run("render", "--spec", str(DEFAULT_SPEC), "--out", str(out), "--check")
    assert proc.returncode == 0, proc.stderr
    assert "hunter2" not in proc.stdout + proc.stderr


def test_spec_read_is_bounded(tmp_path: Path) -> None:
    proc = run("render", "--spec", "/dev/zero", "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "the limit is 4194304" in proc.stderr
