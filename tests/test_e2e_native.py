"""End to end on this machine: Debian's prometheus, alertmanager and node-exporter run the
host-profile render on 127.0.0.1; a synthetic target starts failing and a page-tier SLO
alert must arrive at a webhook receiver with the right labels."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from stackgen.pipeline import load_model, render_spec
from stackgen.render import grafana, rules
from stackgen.writer import write_tree
from tests.conftest import ROOT, require_tool

pytestmark = [pytest.mark.e2e, pytest.mark.tools]

SPEC = ROOT / "tests/e2e/spec.yaml"
TARGET_PORT, HOOK_PORT = 18080, 18081
PROM, AM, NODE, AM_STATE = 19090, 19093, 19100, 19097
DEADLINE = 150  # seconds for the whole chain; well under the 5 minutes the issue allows


class Target:
    """A service exporting a request counter; `errors` is the share of failing requests."""

    def __init__(self) -> None:
        self.ok = 0
        self.failed = 0
        self.errors = 0.0
        self.lock = threading.Lock()

    def tick(self) -> None:
        with self.lock:
            failed = round(100 * self.errors)
            self.failed += failed
            self.ok += 100 - failed

    def metrics(self) -> bytes:
        with self.lock:
            return (
                "# TYPE app_requests_total counter\n"
                f'app_requests_total{{code="200"}} {self.ok}\n'
                f'app_requests_total{{code="500"}} {self.failed}\n'
            ).encode()


def serve(port: int, handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def wait_for(what: str, check, timeout: float) -> object:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < end:
        try:
            last = check()
            if last:
                return last
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[dict[str, object]]:
    binaries = {
        name: require_tool(name) for name in ("prometheus", "prometheus-alertmanager", "prometheus-node-exporter")
    }
    busy = [p for p in (TARGET_PORT, HOOK_PORT, PROM, AM, NODE, AM_STATE) if not port_free(p)]
    assert not busy, f"ports in use: {busy}"
    out = tmp_path / "out"
    write_tree(render_spec(SPEC, "host"), out)

    target = Target()
    received: list[dict] = []  # type: ignore[type-arg]

    class TargetHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            target.tick()
            body = target.metrics()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    class HookHandler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    servers = [serve(TARGET_PORT, TargetHandler), serve(HOOK_PORT, HookHandler)]
    procs: list[subprocess.Popen[bytes]] = []
    logs = tmp_path / "logs"
    logs.mkdir()
    try:
        commands = {
            "alertmanager": [
                binaries["prometheus-alertmanager"],
                f"--config.file={out / 'alertmanager/alertmanager.yml'}",
                f"--storage.path={tmp_path / 'am'}",
                f"--web.listen-address=127.0.0.1:{AM}",
                "--cluster.listen-address=",
                # As the compose file runs it: links under a proxy's path, the API at /.
                "--web.external-url=https://ops.example.com/alertmanager",
                "--web.route-prefix=/",
            ],
            "node-exporter": [binaries["prometheus-node-exporter"], f"--web.listen-address=127.0.0.1:{NODE}"],
            "prometheus": [
                binaries["prometheus"],
                f"--config.file={out / 'prometheus/prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{PROM}",
                "--web.external-url=https://ops.example.com/prometheus",
                "--web.route-prefix=/",
            ],
            # The rendered copy, with the settings its header gives for the host profile.
            "alert-state-exporter": [sys.executable, "-I", str(out / "alert-state-exporter/exporter.py")],
        }
        environments = {
            "alert-state-exporter": {
                "ALERTMANAGER_URL": f"http://127.0.0.1:{AM}",
                "LISTEN_ADDRESS": f"127.0.0.1:{AM_STATE}",
                "PATH": os.environ.get("PATH", ""),
            }
        }
        for name, argv in commands.items():
            procs.append(
                subprocess.Popen(
                    argv,
                    stdout=(logs / f"{name}.log").open("wb"),
                    stderr=subprocess.STDOUT,
                    env=environments.get(name),
                )
            )
        yield {"target": target, "received": received, "logs": logs}
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for server in servers:
            server.shutdown()
            server.server_close()


def prom_query(expr: str) -> list[dict]:  # type: ignore[type-arg]
    url = f"http://127.0.0.1:{PROM}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())["data"]["result"]  # type: ignore[no-any-return]


def test_page_alert_travels_to_the_receiver(stack: dict[str, object]) -> None:
    shutil.which("prometheus")
    started = time.monotonic()
    target: Target = stack["target"]  # type: ignore[assignment]
    received: list[dict] = stack["received"]  # type: ignore[assignment,type-arg]
    try:
        wait_for(
            "Prometheus and Alertmanager to be ready",
            lambda: all(
                urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2).status == 200
                for port in (PROM, AM)
            ),
            30,
        )
        # Healthy traffic first: the SLO's base series must exist before the incident.
        wait_for("the SLO base series", lambda: prom_query('slo:sli_total_events:rate4s{slo="errors"} > 0'), 40)
        assert wait_for("node-exporter to be scraped", lambda: prom_query('up{job="node-exporter"} == 1'), 30)
        target.errors = 1.0  # the incident: every request fails

        def page() -> dict | None:  # type: ignore[type-arg]
            for message in received:
                for alert in message.get("alerts", []):
                    if alert["labels"].get("alertname") == "SLOBurnRate1m" and alert["status"] == "firing":
                        return alert  # type: ignore[no-any-return]
            return None

        alert = wait_for("SLOBurnRate1m at the webhook", page, DEADLINE - (time.monotonic() - started))
    except AssertionError:
        logs: Path = stack["logs"]  # type: ignore[assignment]
        for log in sorted(logs.iterdir()):
            print(f"--- {log.name}\n{log.read_text()[-3000:]}")
        raise
    labels = alert["labels"]  # type: ignore[index]
    assert labels["service"] == "app" and labels["slo"] == "errors" and labels["team"] == "e2e"
    assert (labels["severity"], labels["tier"], labels["category"]) == ("critical", "page", "slo")
    assert (labels["long_window"], labels["short_window"]) == ("1m", "12s")
    assert "runbook_url" in alert["annotations"] and "burning its error budget" in alert["annotations"]["description"]
    print(f"page received {time.monotonic() - started:.1f}s after start")
    replay_agrees_with_prometheus(stack)
    silence_reaches_prometheus(stack)


def silence_reaches_prometheus(stack: dict[str, object]) -> None:
    """The alert-state exporter between the real Alertmanager and Prometheus: the firing page
    alert's stackgen_alert_silenced series has exactly its ALERTS labels (but alertstate) and
    reads 0; after a silence in Alertmanager it reads 1, the dashboard's firing-now query
    says "silenced", and the escalation rules' source no longer holds the SLO."""
    model = load_model(SPEC, "host")
    alert = 'alertname="SLOBurnRate1m", slo="errors"'
    table = grafana.firing_with_alertmanager_state('service="app"')
    escalating = rules.escalation_source(model)

    def state() -> str:
        rows = [r for r in prom_query(table) if r["metric"].get("alertname") == "SLOBurnRate1m"]
        return rows[0]["metric"][grafana.ALERTMANAGER_STATE] if rows else ""

    try:
        (own,) = prom_query(f'ALERTS{{{alert}, alertstate="firing"}}')
        (seen,) = wait_for("the exporter's series", lambda: prom_query(f"stackgen_alert_silenced{{{alert}}} == 0"), 30)  # type: ignore[misc]
        expected = {k: v for k, v in own["metric"].items() if k not in ("__name__", "alertstate")}
        # The labels of the alert's ALERTS series, and the stack label Prometheus added when sending.
        assert {k: v for k, v in seen["metric"].items() if k != "__name__"} == {**expected, "stack": "e2e"}
        assert wait_for("the table to say notifying", lambda: state() == "notifying", 20)
        assert any(r["metric"].get("slo") == "errors" for r in prom_query(escalating))
        silence = {
            "matchers": [
                {"name": "alertname", "value": "SLOBurnRate1m", "isRegex": False},
                {"name": "service", "value": "app", "isRegex": False},
            ],
            "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60)),
            "endsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600)),
            "createdBy": "test_e2e_native",
            "comment": "on it",
        }
        request = urllib.request.Request(
            f"http://127.0.0.1:{AM}/api/v2/silences",
            data=json.dumps(silence).encode(),
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(request, timeout=5).close()
        wait_for("the silence in Prometheus", lambda: prom_query(f"stackgen_alert_silenced{{{alert}}} == 1"), 30)
        assert wait_for("the table to say silenced", lambda: state() == "silenced", 20)
        # The page tier is silenced; the SLO escalates only while another of its tiers is not.
        others = prom_query('ALERTS{slo="errors", alertstate="firing", severity="critical"}')
        assert {r["metric"]["alertname"] for r in others} == {"SLOBurnRate1m"}  # the spec's one page tier
        assert wait_for(
            "the SLO to leave the escalation source",
            lambda: not any(r["metric"].get("slo") == "errors" for r in prom_query(escalating)),
            20,
        )
        # An alert with its own job and instance (the Loki ruler's, another Prometheus'): the
        # relabelling puts them back in place of the exporter's target labels.
        disk = {"alertname": "DiskFull", "job": "node-exporter", "instance": "db-1:9100", "severity": "warning"}
        request = urllib.request.Request(
            f"http://127.0.0.1:{AM}/api/v2/alerts",
            data=json.dumps([{"labels": disk}]).encode(),
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(request, timeout=5).close()
        rows = wait_for(
            "the posted alert's series",
            lambda: len(found := prom_query('{__name__=~"stackgen_alert_.+", alertname="DiskFull"}')) == 3 and found,
            30,
        )
        # Every state's series (silenced, inhibited, muted) gets them back.
        assert sorted(r["metric"].pop("__name__") for r in rows) == [  # type: ignore[union-attr]
            "stackgen_alert_inhibited",
            "stackgen_alert_muted",
            "stackgen_alert_silenced",
        ]
        assert all(r["metric"] == disk for r in rows), rows  # type: ignore[union-attr]
        print("silence: exporter, dashboard table and escalation source agree")
    except AssertionError:
        logs: Path = stack["logs"]  # type: ignore[assignment]
        print((logs / "alert-state-exporter.log").read_text()[-3000:])
        raise


def replay_agrees_with_prometheus(stack: dict[str, object]) -> None:
    """`stackgen simulate --prometheus` over this Prometheus' own history: the page alert the
    replay finds fires when Prometheus' own ALERTS says it did (within two evaluations: the
    replay reads the series resampled at the scrape interval)."""
    end = int(time.time()) + 1
    begin = end - 180
    evaluation = 4  # tests/e2e/spec.yaml's evaluation_interval
    url = f"http://127.0.0.1:{PROM}/api/v1/query_range?" + urllib.parse.urlencode(
        {"query": 'ALERTS{alertname="SLOBurnRate1m", alertstate="firing"}', "start": begin, "end": end, "step": "1s"}
    )
    with urllib.request.urlopen(url, timeout=5) as response:
        (own,) = json.loads(response.read())["data"]["result"]
    fired_at = int(float(own["values"][0][0]))
    out = subprocess.run(
        [
            str(ROOT / ".venv/bin/stackgen") if (ROOT / ".venv/bin/stackgen").exists() else "stackgen",
            "simulate",
            "--spec",
            str(SPEC),
            "--prometheus",
            f"http://127.0.0.1:{PROM}",
            "--from",
            str(begin),
            "--to",
            str(end),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    rows = [line.split() for line in out.stdout.splitlines() if "SLOBurnRate1m" in line]
    assert rows, out.stdout
    offset = rows[0][0]  # "+1m23s": seconds after --from
    replayed = begin + parse_offset(offset)
    assert abs(replayed - fired_at) <= 2 * evaluation, (out.stdout, fired_at - begin)
    assert "hook" in rows[0]  # routed to the webhook receiver, as the live Alertmanager did
    print(f"replay: SLOBurnRate1m at {offset}; Prometheus itself: +{fired_at - begin}s")


def parse_offset(text: str) -> int:
    from stackgen.durations import parse_duration

    return 0 if text == "0s" else parse_duration(text.lstrip("+"))


RELOAD_PORT = 19190


def test_a_rerender_reaches_a_running_prometheus_on_reload(tmp_path: Path) -> None:
    """The compose file bind-mounts ./prometheus; a bind mount holds that directory, not its
    path. A Prometheus whose working directory is out/prometheus (config and rule globs
    relative to it) holds the directory the same way. After a render that adds an SLO, a
    SIGHUP must load the new rules: the render updated the files inside that directory."""
    binary = require_tool("prometheus")
    assert port_free(RELOAD_PORT), f"port {RELOAD_PORT} in use"
    spec = yaml.safe_load(SPEC.read_text())
    out = tmp_path / "out"
    write_tree(render_spec(SPEC, "host"), out)
    log = tmp_path / "prometheus.log"
    argv = [
        binary,
        "--config.file=prometheus.yml",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{RELOAD_PORT}",
    ]
    proc = subprocess.Popen(argv, cwd=out / "prometheus", stdout=log.open("wb"), stderr=subprocess.STDOUT)

    def api(path: str) -> dict:  # type: ignore[type-arg]
        with urllib.request.urlopen(f"http://127.0.0.1:{RELOAD_PORT}{path}", timeout=5) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    def slos_loaded() -> set[str]:
        groups = api("/api/v1/rules")["data"]["groups"]
        return {rule["labels"].get("slo", "") for group in groups for rule in group["rules"] if "labels" in rule}

    try:
        assert "errors" in wait_for("the first rules", slos_loaded, 30)  # type: ignore[operator]
        strict = {**spec["services"][0]["slos"][0], "name": "errors-strict", "objective": 99.9}
        spec["services"][0]["slos"].append(strict)
        changed = tmp_path / "changed.yaml"
        changed.write_text(yaml.safe_dump(spec))
        write_tree(render_spec(changed, "host"), out)
        proc.send_signal(signal.SIGHUP)
        wait_for("the new SLO's rules after SIGHUP", lambda: "errors-strict" in slos_loaded(), 30)
        assert api("/api/v1/status/runtimeinfo")["data"]["reloadConfigSuccess"] is True
    except AssertionError:
        print(log.read_text()[-3000:])
        raise
    finally:
        proc.terminate()
        proc.wait(timeout=10)
