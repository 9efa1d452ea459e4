"""`stackgen check --prometheus URL` against a real Prometheus (Debian's), started natively on
the host-profile render of a spec, scraping a metrics endpoint served here, with history
backfilled by `promtool tsdb create-blocks-from openmetrics`.

A correct spec passes (exit 0); a spec with each mistake that renders cleanly but makes an
SLO wrong fails (exit 1) with a row naming it: a misspelt bad metric, a threshold that is
no bucket boundary, a selector matching nothing, a job with no target up, a job the server
does not scrape, a retention shorter than a period.
"""

from __future__ import annotations

import copy
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import pytest
import yaml

from stackgen.live import le_values, parse_retention, vector_selectors
from stackgen.pipeline import render_spec
from stackgen.writer import write_tree
from tests.conftest import require_tool

pytestmark = [pytest.mark.e2e, pytest.mark.tools]

METRICS = b"""# TYPE http_requests_total counter
http_requests_total{code="200"} 1000
http_requests_total{code="503"} 3
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.1"} 800
http_request_duration_seconds_bucket{le="0.25"} 950
http_request_duration_seconds_bucket{le="0.5"} 990
http_request_duration_seconds_bucket{le="+Inf"} 1000
http_request_duration_seconds_sum 120
http_request_duration_seconds_count 1000
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Exporter(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(METRICS)

    def log_message(self, *args: Any) -> None:
        pass


def good_spec(exporter: int, prom: int, root: Path) -> dict[str, Any]:
    return {
        "version": "stackgen/v1",
        "stack": {
            "name": "live",
            "target": "host",
            "scrape_interval": "1s",
            "evaluation_interval": "5s",
            "metrics_retention": "7d",
            "ports": {"prometheus": prom, "alertmanager": free_port(), "node-exporter": free_port()},
            "data_dir": str(root / "data"),
            "secrets_dir": str(root / "secrets"),
        },
        "scrape_jobs": [{"name": "shop-api", "targets": [f"127.0.0.1:{exporter}"]}],
        "services": [
            {
                "name": "shop-api",
                "team": "shop",
                "jobs": ["shop-api"],
                "slos": [
                    {
                        "name": "errors",
                        "objective": 99.5,
                        "period": "7d",
                        "sli": {
                            "events": {
                                "bad": 'http_requests_total{job="shop-api", code=~"5.."}',
                                "total": 'http_requests_total{job="shop-api"}',
                            }
                        },
                    },
                    {
                        # Errors only in history (backfilled two days ago), none now: still fine.
                        "name": "payments",
                        "objective": 99,
                        "period": "7d",
                        "sli": {
                            "events": {
                                "bad": 'sum(rate(payment_errors_total{job="shop-api"}[{{window}}]))',
                                "total": 'sum(rate(http_requests_total{job="shop-api"}[{{window}}]))',
                            }
                        },
                    },
                    {
                        "name": "latency",
                        "objective": 95,
                        "period": "7d",
                        "sli": {
                            "latency": {
                                "histogram": "http_request_duration_seconds",
                                "selector": '{job="shop-api"}',
                                "threshold": 0.25,
                            }
                        },
                    },
                    {
                        "name": "up",
                        "objective": 99,
                        "period": "7d",
                        "sli": {"availability": {"metric": "up", "selector": '{job="shop-api"}'}},
                    },
                ],
            }
        ],
        "receivers": [{"name": "hook", "type": "webhook", "url": "http://127.0.0.1:9/alerts"}],
        "routing": {
            "default_receiver": "hook",
            "severities": {
                "critical": {"receivers": ["hook"]},
                "warning": {"receivers": ["hook"]},
                "info": {"receivers": ["hook"]},
            },
        },
        "logs": {"retention": "7d"},
    }


def backfill(tsdb: Path) -> None:
    """payment_errors_total{job="shop-api"} two days ago, for an hour: history only."""
    start = int(time.time()) - 2 * 86400
    lines = ["# TYPE payment_errors counter"]
    lines += [f'payment_errors_total{{job="shop-api"}} {i} {start + 60 * i}' for i in range(60)]
    source = tsdb.parent / "history.om"
    source.write_text("\n".join(lines) + "\n# EOF\n")
    subprocess.run(
        [require_tool("promtool"), "tsdb", "create-blocks-from", "openmetrics", str(source), str(tsdb)],
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    binary = require_tool("prometheus")
    root = tmp_path_factory.mktemp("live")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Exporter)
    Thread(target=server.serve_forever, daemon=True).start()
    prom = free_port()
    spec = good_spec(server.server_address[1], prom, root)
    # The server also scrapes a worker that never answers (a closed port).
    served = copy.deepcopy(spec)
    served["scrape_jobs"].append({"name": "shop-worker", "targets": [f"127.0.0.1:{free_port()}"]})
    spec_file = root / "slos.yaml"
    spec_file.write_text(yaml.safe_dump(served, sort_keys=False))
    out = root / "out"
    write_tree(render_spec(spec_file), out)
    tsdb = root / "tsdb"
    backfill(tsdb)
    log = (root / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            "--config.file=prometheus.yml",
            f"--storage.tsdb.path={tsdb}",
            "--storage.tsdb.retention.time=7d",
            f"--web.listen-address=127.0.0.1:{prom}",
        ],
        cwd=out / "prometheus",
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{prom}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # scraped (1s interval) and the backfilled block loaded
            try:
                query = "/api/v1/query?query=count(up%7Bjob%3D%22shop-api%22%7D%3D%3D1)"
                with urllib.request.urlopen(url + query, timeout=2) as response:
                    if b'"value"' in response.read():
                        break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("Prometheus never scraped the exporter: " + (root / "prometheus.log").read_text()[-2000:])
        yield {"url": url, "spec": spec, "served": served, "root": root}
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        server.shutdown()


def run_check(live: dict[str, Any], spec: dict[str, Any], *extra: str) -> subprocess.CompletedProcess[str]:
    path = live["root"] / f"spec-{os.urandom(4).hex()}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    args = [sys.executable, "-m", "stackgen", "check", "--prometheus", live["url"], "--spec", str(path), *extra]
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def rows(output: str) -> list[list[str]]:
    return [line.split(None, 3) for line in output.splitlines()[1:-1]]


def test_a_correct_spec_passes(live: dict[str, Any]) -> None:
    proc = run_check(live, live["spec"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = rows(proc.stdout)
    assert all(r[0] == "ok" for r in found), proc.stdout
    checks = {(r[1], r[2]) for r in found}
    # Every SLI role and the job were asked about, and history counts for bad selectors.
    assert ("shop-api/payments", "bad") in checks and ("shop-api/latency", "threshold") in checks
    assert ("job", "shop-api") in checks
    assert "in the last 7d: payment_errors_total" in proc.stdout


def mistakes(spec: dict[str, Any]) -> dict[str, Any]:
    bad = copy.deepcopy(spec)
    slos = bad["services"][0]["slos"]
    slos[0]["sli"]["events"]["bad"] = 'http_request_total{job="shop-api", code=~"5.."}'  # misspelt
    slos[2]["sli"]["latency"]["threshold"] = 0.2  # not a bucket
    slos[3]["sli"]["availability"]["selector"] = '{job="shop_api"}'  # underscore for hyphen
    slos[1]["period"] = "30d"  # longer than the server's 7d retention
    bad["stack"]["metrics_retention"] = "30d"
    bad["scrape_jobs"].append({"name": "checkout", "targets": ["127.0.0.1:9"]})  # not scraped by this server
    return bad


def test_each_mistake_is_a_failing_line(live: dict[str, Any]) -> None:
    proc = run_check(live, mistakes(live["spec"]))
    print(proc.stdout)  # the table, as users see it (pytest -s)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    failing = {(r[1], r[2].split()[0]): r[3] for r in rows(proc.stdout) if r[0] == "FAIL"}
    assert "http_request_total" in failing[("shop-api/errors", "bad")]
    assert "always met and never pages" in failing[("shop-api/errors", "bad")]
    assert "0.2s is no le" in failing[("shop-api/latency", "threshold")]
    assert "nearest: 0.1, 0.25" in failing[("shop-api/latency", "threshold")]
    assert "reads nothing" in failing[("shop-api/up", "up")]
    assert "retention 1w is shorter than the period of shop-api/payments (30d)" in failing[("prometheus", "retention")]
    assert "scrapes no target of this job" in failing[("job", "checkout")]
    assert len(failing) == 5, proc.stdout


def test_a_job_whose_targets_are_down_fails(live: dict[str, Any]) -> None:
    proc = run_check(live, live["served"])
    assert proc.returncode == 1, proc.stdout + proc.stderr
    failing = {(r[1], r[2]): r[3] for r in rows(proc.stdout) if r[0] == "FAIL"}
    assert list(failing) == [("job", "shop-worker")], proc.stdout
    assert "0 of 1 up" in failing[("job", "shop-worker")]


def test_unreachable_server_and_bad_token_file_exit_2(live: dict[str, Any], tmp_path: Path) -> None:
    proc = run_check({**live, "url": f"http://127.0.0.1:{free_port()}"}, live["spec"])
    assert proc.returncode == 2 and "cannot reach Prometheus" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_check(live, live["spec"], "--bearer-token-file", str(tmp_path / "missing"))
    assert proc.returncode == 2 and "--bearer-token-file" in proc.stderr and "Traceback" not in proc.stderr
    token = tmp_path / "token"
    token.write_text("s3cret\n")  # Prometheus without auth ignores it; the header must not break anything
    assert run_check(live, live["spec"], "--bearer-token-file", str(token)).returncode == 0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15d", 15 * 86400), ("30d or 512MiB", 30 * 86400), ("1w2d", 9 * 86400), ("512MiB", None), ("", None)],
)
def test_retention_as_runtimeinfo_writes_it(text: str, seconds: int | None) -> None:
    assert parse_retention(text) == seconds


def test_selectors_are_found_inside_any_query() -> None:
    expr = 'sum(rate(a{x="1"}[{{window}}])) / (sum(rate(b[5m])) + histogram_quantile(0.9, rate(c_bucket[1m])))'
    assert vector_selectors(expr) == ['a{x="1"}', "b{}", "c_bucket{}"]
    assert [str(v) for v in le_values(["0.1", "+Inf", "1", "0.25", "1e-3"])] == ["0.001", "0.1", "0.25", "1"]
