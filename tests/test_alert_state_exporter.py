"""The alert-state exporter (stackgen/alert_state_exporter.py, rendered into
alert-state-exporter/exporter.py): what it exposes for Alertmanager's answer, over HTTP
against a stand-in Alertmanager, and that the rendered copy runs on its own.

tests/test_e2e_native.py runs the rendered copy between the real Alertmanager and Prometheus
(a silence reaches the escalation rules and the dashboard); the generated promtool test of the
stack rules proves the escalation math on its series."""

from __future__ import annotations

import ast
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from stackgen import alert_state_exporter as exporter
from stackgen.render.alert_state import EXPORTER_FILE
from tests.conftest import require_tool

TRICKY = 'quote " backslash \\ newline \n end'


def alert(
    labels: dict[str, str], silenced: bool = False, inhibited: bool = False, muted: bool = False
) -> dict[str, Any]:
    """An alert as Alertmanager's /api/v2/alerts lists it (mutedBy: Alertmanager 0.28+, a time
    interval of its route)."""
    return {
        "labels": labels,
        "annotations": {"summary": "x"},
        "fingerprint": "0123456789abcdef",
        "status": {
            "state": "suppressed" if silenced or inhibited or muted else "active",
            "silencedBy": ["5f2a"] if silenced else [],
            "inhibitedBy": ["9c1d"] if inhibited else [],
            "mutedBy": ["business-hours"] if muted else [],
        },
    }


def series(page: str, metric: str) -> list[str]:
    return [line for line in page.splitlines() if line.startswith(metric + "{")]


def test_each_alert_is_exposed_with_its_own_labels_and_state() -> None:
    page = exporter.exposition(
        [
            alert(
                {"alertname": "SLOBurnRate1h", "service": "checkout-api", "slo": "error-rate", "stack": "prod"}, True
            ),
            alert({"alertname": "DiskFull", "job": "node-exporter", "instance": "db-1:9100"}, inhibited=True),
            alert({"alertname": "Watchdog"}, muted=True),
        ],
    )
    assert "stackgen_alertmanager_up 1\n" in page
    # Every label as Alertmanager has it (the `stack` Prometheus added too: queries ignore it).
    assert series(page, "stackgen_alert_silenced") == [
        'stackgen_alert_silenced{alertname="SLOBurnRate1h",service="checkout-api",slo="error-rate",stack="prod"} 1',
        'stackgen_alert_silenced{alertname="DiskFull",alert_instance="db-1:9100",alert_job="node-exporter"} 0',
        'stackgen_alert_silenced{alertname="Watchdog"} 0',
    ]
    assert [line.rsplit(" ", 1)[1] for line in series(page, "stackgen_alert_inhibited")] == ["0", "1", "0"]
    assert [line.rsplit(" ", 1)[1] for line in series(page, "stackgen_alert_muted")] == ["0", "0", "1"]


def test_no_answer_from_alertmanager_breaks_the_page() -> None:
    """Whatever Alertmanager's JSON holds, the page parses: odd items are left out, an alert
    already labelled alert_job would write that label twice (Prometheus would then reject the
    whole page, every silence with it), so it is left out too."""
    page = exporter.exposition(
        [
            "not an alert",
            {"labels": "x"},
            {"labels": {"alertname": "A", "job": "j", "alert_job": "k"}},
            {"labels": {"alertname": "B"}, "status": "odd"},
            {"labels": {"alertname": "C", "n": 3}},
        ]
    )
    assert series(page, "stackgen_alert_silenced") == [
        'stackgen_alert_silenced{alertname="B"} 0',
        'stackgen_alert_silenced{alertname="C",n="3"} 0',
    ]


def test_label_values_are_escaped_as_the_text_format_requires() -> None:
    page = exporter.exposition([alert({"alertname": "A", "summary": TRICKY, "team": "équipe"})])
    (line,) = series(page, "stackgen_alert_silenced")
    assert (
        line
        == 'stackgen_alert_silenced{alertname="A",summary="quote \\" backslash \\\\ newline \\n end",team="équipe"} 0'
    )


def test_an_alert_with_a_label_name_prometheus_cannot_hold_is_left_out() -> None:
    """Its series could not match its ALERTS series: the table says unknown, nothing breaks."""
    page = exporter.exposition(
        [
            alert({"alertname": "A", "région": "eu"}),
            alert({"alertname": "B", "__hidden": "x"}),
            alert({"alertname": "C"}),
        ],
    )
    assert series(page, "stackgen_alert_silenced") == ['stackgen_alert_silenced{alertname="C"} 0']


def test_alertmanager_down_is_up_0_and_no_alert() -> None:
    page = exporter.exposition(None)
    assert "stackgen_alertmanager_up 0\n" in page
    assert not series(page, "stackgen_alert_silenced") and not series(page, "stackgen_alert_inhibited")


@pytest.mark.tools
@pytest.mark.parametrize("answer", ["alerts", "empty", "down"])
def test_promtool_accepts_the_page(answer: str, tmp_path: Path) -> None:
    """promtool check metrics parses the exposition (exit 1 on a format error) and lints it
    (exit 3: no HELP, a counter without _total, ...)."""
    promtool = require_tool("promtool")
    alerts = {
        "alerts": [
            alert({"alertname": "A", "summary": TRICKY, "team": "équipe", "job": "j", "instance": "i:1"}, True),
            alert({"alertname": "B"}, inhibited=True, muted=True),
            {"labels": {"alertname": "C", "job": "j", "alert_job": "k"}},
        ],
        "empty": [],
        "down": None,
    }[answer]
    page = exporter.exposition(alerts)
    result = subprocess.run([promtool, "check", "metrics"], input=page, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.tools
def test_a_page_promtool_refuses_is_caught() -> None:
    """The check above can fail: an unescaped quote is a parse error."""
    promtool = require_tool("promtool")
    page = 'stackgen_alert_silenced{alertname="a"b"} 1\n'
    result = subprocess.run([promtool, "check", "metrics"], input=page, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FakeAlertmanager:
    """Answers /api/v2/alerts with `alerts` (truncated: a body shorter than its Content-Length),
    and records each request's path."""

    def __init__(self, alerts: list[dict[str, Any]]) -> None:
        self.alerts = alerts
        self.truncated = False
        self.paths: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.paths.append(self.path)
                body = json.dumps(fake.alerts).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body) + (100 if fake.truncated else 0)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def alertmanager() -> Iterator[FakeAlertmanager]:
    fake = FakeAlertmanager([alert({"alertname": "DiskFull", "instance": "db-1:9100"}, True)])
    yield fake
    fake.close()


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, "", ""


def test_the_rendered_exporter_serves_alertmanagers_answer(
    alertmanager: FakeAlertmanager, default_files: dict[str, str], tmp_path: Path
) -> None:
    """The copy in output/, run by itself as the stack runs it (python -I, no stackgen)."""
    script = tmp_path / "exporter.py"
    script.write_text(default_files[EXPORTER_FILE])
    port = free_port()
    env = {"ALERTMANAGER_URL": alertmanager.url + "/", "LISTEN_ADDRESS": f"127.0.0.1:{port}"}
    proc = subprocess.Popen(
        [sys.executable, "-I", str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                status = get(f"http://127.0.0.1:{port}/-/healthy")[0]
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "the exporter did not start"
                time.sleep(0.2)
        assert status == 200
        status, content_type, page = get(f"http://127.0.0.1:{port}/metrics")
        assert (status, content_type) == (200, "text/plain; version=0.0.4; charset=utf-8")
        assert series(page, "stackgen_alert_silenced") == [
            'stackgen_alert_silenced{alertname="DiskFull",alert_instance="db-1:9100"} 1'
        ]
        # Every state at once: active, silenced, inhibited and not yet processed alerts.
        assert alertmanager.paths == [exporter.API_PATH]
        assert get(f"http://127.0.0.1:{port}/nothing")[0] == 404
        alertmanager.truncated = True  # the connection drops mid-answer: up 0, no traceback
        status, _, page = get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200 and "stackgen_alertmanager_up 0" in page
        alertmanager.truncated = False
        alertmanager.close()  # Alertmanager goes away: up 0, the scrape still answers
        status, _, page = get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200 and "stackgen_alertmanager_up 0" in page
    finally:
        proc.terminate()
        output = proc.communicate(timeout=10)[0].decode()
    assert "Traceback" not in output
    assert f"reading {alertmanager.url}/" in output


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.0.0.0:9097", ("0.0.0.0", 9097, socket.AF_INET)),
        (":9097", ("0.0.0.0", 9097, socket.AF_INET)),
        ("[::]:9097", ("::", 9097, socket.AF_INET6)),
        ("[::1]:19097", ("::1", 19097, socket.AF_INET6)),
    ],
)
def test_listen_addresses_of_both_families(text: str, expected: tuple[str, int, int]) -> None:
    assert exporter.listen_address(text) == expected


def test_the_exporter_listens_on_ipv6(alertmanager: FakeAlertmanager) -> None:
    """An IPv6-only cluster scrapes the sidecar at the pod's IPv6 address."""
    with socket.socket(socket.AF_INET6) as probe:
        try:
            probe.bind(("::1", 0))
        except OSError:
            pytest.skip("no IPv6 loopback on this machine")
        port = probe.getsockname()[1]
    env = {"ALERTMANAGER_URL": alertmanager.url, "LISTEN_ADDRESS": f"[::1]:{port}"}
    proc = subprocess.Popen([sys.executable, "-I", exporter.__file__], env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                status, _, page = get(f"http://[::1]:{port}/metrics")
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "the exporter did not start"
                time.sleep(0.2)
        assert status == 200 and "stackgen_alert_silenced{" in page
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_exporter_needs_nothing_but_the_standard_library() -> None:
    """The stack runs it with a stock Python image or the host's python3."""
    tree = ast.parse(Path(exporter.__file__).read_text())
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    } | {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert imported and imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


def test_the_rendered_copy_is_the_module_under_a_header(default_files: dict[str, str]) -> None:
    text = default_files[EXPORTER_FILE]
    head, _, body = text.partition("\n\n")
    assert body == Path(exporter.__file__).read_text()
    assert head.startswith("# Generated by stackgen") and all(line.startswith("#") for line in head.splitlines())
    compile(text, EXPORTER_FILE, "exec")
