"""Alertmanager's view of each alert, as Prometheus metrics: is it silenced, is it inhibited.

Prometheus knows what fires (ALERTS) but not what Alertmanager does with it; Grafana's
Alertmanager data source cannot feed a panel. This exporter reads Alertmanager's
/api/v2/alerts at every scrape and exposes, per alert, with the alert's own labels:

    stackgen_alert_silenced{alertname="...", ...}   1 when a silence mutes it, else 0
    stackgen_alert_inhibited{alertname="...", ...}  1 when an inhibition rule mutes it, else 0
    stackgen_alertmanager_up                        1 when Alertmanager answered this scrape

The escalation rules read stackgen_alert_silenced (a silence stops an escalation chain) and
the service dashboards' "firing now" table shows both. The alert's `job` and `instance`
labels are exposed as `alert_job` and `alert_instance`; prometheus.yml's relabelling puts
them back in place of the exporter's own target labels, so each series has exactly the
labels of its ALERTS series (minus alertstate). Labels Prometheus adds to every alert it
sends (its external labels, EXTERNAL_LABELS) are left out for the same reason.

Standard library only: `stackgen render` copies this file into the output, and the stack runs
it with a stock Python image (or the host's python3). Settings, from the environment:
    ALERTMANAGER_URL   Alertmanager's base URL (default http://alertmanager:9093)
    LISTEN_ADDRESS     host:port to serve /metrics on (default 0.0.0.0:9097)
    EXTERNAL_LABELS    comma-separated label names to leave out (default: stack)
"""

from __future__ import annotations

import json
import os
import re
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_PATH = "/api/v2/alerts?active=true&silenced=true&inhibited=true&unprocessed=true"
TIMEOUT_SECONDS = 5.0
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# The alert's labels that Prometheus would overwrite with the exporter's target labels.
MOVED = {"job": "alert_job", "instance": "alert_instance"}

HELP = (
    "# HELP stackgen_alertmanager_up 1 when Alertmanager's alerts API answered this scrape.\n"
    "# TYPE stackgen_alertmanager_up gauge\n"
    "stackgen_alertmanager_up {up}\n"
    "# HELP stackgen_alert_silenced 1 when a silence mutes this alert in Alertmanager, else 0.\n"
    "# TYPE stackgen_alert_silenced gauge\n"
    "{silenced}"
    "# HELP stackgen_alert_inhibited 1 when an inhibition rule mutes this alert in Alertmanager, else 0.\n"
    "# TYPE stackgen_alert_inhibited gauge\n"
    "{inhibited}"
)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(alert_labels: dict[str, Any], leave_out: frozenset[str]) -> str | None:
    """The alert's labels in exposition syntax, or None when one cannot be a Prometheus label
    name (such an alert cannot be matched to its ALERTS series anyway)."""
    parts = []
    for name in sorted(alert_labels):
        if name in leave_out:
            continue
        if not LABEL_NAME.fullmatch(name) or name.startswith("__"):
            return None
        parts.append(f'{MOVED.get(name, name)}="{_escape(str(alert_labels[name]))}"')
    return "{" + ",".join(parts) + "}"


def exposition(alerts: list[dict[str, Any]] | None, leave_out: frozenset[str]) -> str:
    """The metrics page for Alertmanager's answer (None: it did not answer)."""
    silenced: list[str] = []
    inhibited: list[str] = []
    seen: set[str] = set()
    for alert in alerts or []:
        labels = _labels(alert.get("labels") or {}, leave_out)
        if labels is None or labels in seen:
            continue
        seen.add(labels)
        status = alert.get("status") or {}
        silenced.append(f"stackgen_alert_silenced{labels} {1 if status.get('silencedBy') else 0}\n")
        inhibited.append(f"stackgen_alert_inhibited{labels} {1 if status.get('inhibitedBy') else 0}\n")
    return HELP.format(up=0 if alerts is None else 1, silenced="".join(silenced), inhibited="".join(inhibited))


def fetch_alerts(base_url: str) -> list[dict[str, Any]] | None:
    try:
        with urllib.request.urlopen(base_url.rstrip("/") + API_PATH, timeout=TIMEOUT_SECONDS) as response:
            data = json.load(response)
    except (OSError, ValueError, urllib.error.URLError) as err:
        print(f"alert-state-exporter: {base_url}: {err}", file=sys.stderr, flush=True)
        return None
    return data if isinstance(data, list) else None


def handler(base_url: str, leave_out: frozenset[str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                body = exposition(fetch_alerts(base_url), leave_out).encode()
                content_type = "text/plain; version=0.0.4; charset=utf-8"
            elif self.path in ("/", "/-/healthy"):
                body = b"alert-state-exporter: metrics at /metrics\n"
                content_type = "text/plain; charset=utf-8"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per scrape would drown the errors

    return Handler


def main() -> None:
    base_url = os.environ.get("ALERTMANAGER_URL", "http://alertmanager:9093")
    host, _, port = os.environ.get("LISTEN_ADDRESS", "0.0.0.0:9097").rpartition(":")
    leave_out = frozenset(n for n in os.environ.get("EXTERNAL_LABELS", "stack").split(",") if n)
    server = ThreadingHTTPServer((host or "0.0.0.0", int(port)), handler(base_url, leave_out))
    print(f"alert-state-exporter: reading {base_url}, serving {host or '0.0.0.0'}:{port}/metrics", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
