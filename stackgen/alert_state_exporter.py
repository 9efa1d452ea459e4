"""Alertmanager's view of each alert, as Prometheus metrics: is it silenced, is it inhibited.

Prometheus knows what fires (ALERTS) but not what Alertmanager does with it; Grafana's
Alertmanager data source cannot feed a panel. This exporter reads Alertmanager's
/api/v2/alerts at every scrape and exposes, per alert, with the alert's own labels:

    stackgen_alert_silenced{alertname="...", ...}   1 when a silence mutes it, else 0
    stackgen_alert_inhibited{alertname="...", ...}  1 when an inhibition rule mutes it, else 0
    stackgen_alert_muted{alertname="...", ...}      1 when its route's time interval mutes it
                                                    (Alertmanager 0.28+ says so), else 0
    stackgen_alertmanager_up                        1 when Alertmanager answered this scrape

The escalation rules read stackgen_alert_silenced (a silence stops an escalation chain) and
the service dashboards' "firing now" table shows all three. The alert's `job` and `instance`
labels are exposed as `alert_job` and `alert_instance`; prometheus.yml's relabelling puts
them back in place of the exporter's own target labels, so each series has the labels of its
ALERTS series (but alertstate, and the external labels Prometheus adds to what it sends,
which the queries ignore). An alert that cannot be written so (a label name Prometheus cannot
hold, or a label already named alert_job or alert_instance) is left out: its state reads
unknown. Whatever Alertmanager answers, the page stays valid: a bad answer is up 0.

Standard library only: `stackgen render` copies this file into the output, and the stack runs
it with a stock Python image (or the host's python3). Settings, from the environment:
    ALERTMANAGER_URL   Alertmanager's base URL (default http://alertmanager:9093)
    LISTEN_ADDRESS     host:port to serve /metrics on (default 0.0.0.0:9097; [::]:9097 for IPv6)
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_PATH = "/api/v2/alerts?active=true&silenced=true&inhibited=true&unprocessed=true"
TIMEOUT_SECONDS = 5.0
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# The alert's labels that Prometheus would overwrite with the exporter's target labels.
MOVED = {"job": "alert_job", "instance": "alert_instance"}
MOVED_TO = frozenset(MOVED.values())

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
    "# HELP stackgen_alert_muted 1 when its route's time interval mutes this alert in Alertmanager, else 0.\n"
    "# TYPE stackgen_alert_muted gauge\n"
    "{muted}"
)
# metric -> the status field that lists what mutes the alert that way
STATES = {"silenced": "silencedBy", "inhibited": "inhibitedBy", "muted": "mutedBy"}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(alert_labels: Any) -> str | None:
    """The alert's labels in exposition syntax, or None when they cannot be written so that
    the series matches the alert's ALERTS series."""
    if not isinstance(alert_labels, dict) or MOVED_TO & alert_labels.keys():
        return None
    parts = []
    for name in sorted(alert_labels):
        if not isinstance(name, str) or not LABEL_NAME.fullmatch(name) or name.startswith("__"):
            return None
        parts.append(f'{MOVED.get(name, name)}="{_escape(str(alert_labels[name]))}"')
    return "{" + ",".join(parts) + "}"


def exposition(alerts: list[Any] | None) -> str:
    """The metrics page for Alertmanager's answer (None: it did not answer usably)."""
    lines: dict[str, list[str]] = {metric: [] for metric in STATES}
    seen: set[str] = set()
    for alert in alerts or []:
        if not isinstance(alert, dict):
            continue
        labels = _labels(alert.get("labels"))
        if labels is None or labels in seen:
            continue
        seen.add(labels)
        status = alert.get("status")
        status = status if isinstance(status, dict) else {}
        for metric, field in STATES.items():
            lines[metric].append(f"stackgen_alert_{metric}{labels} {1 if status.get(field) else 0}\n")
    return HELP.format(up=0 if alerts is None else 1, **{metric: "".join(found) for metric, found in lines.items()})


def fetch_alerts(base_url: str) -> list[Any] | None:
    try:
        with urllib.request.urlopen(base_url.rstrip("/") + API_PATH, timeout=TIMEOUT_SECONDS) as response:
            data = json.load(response)
    except Exception as err:
        print(f"alert-state-exporter: {base_url}: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
        return None
    return data if isinstance(data, list) else None


def handler(base_url: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                body = exposition(fetch_alerts(base_url)).encode()
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


def listen_address(text: str) -> tuple[str, int, socket.AddressFamily]:
    """host:port, [v6 host]:port or :port -> (host, port, address family)."""
    host, _, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        return host[1:-1], int(port), socket.AF_INET6
    return host or "0.0.0.0", int(port), socket.AF_INET6 if ":" in host else socket.AF_INET


def main() -> None:
    base_url = os.environ.get("ALERTMANAGER_URL", "http://alertmanager:9093")
    host, port, family = listen_address(os.environ.get("LISTEN_ADDRESS", "0.0.0.0:9097"))

    class Server(ThreadingHTTPServer):
        address_family = family

    server = Server((host, port), handler(base_url))
    print(f"alert-state-exporter: reading {base_url}, serving {host} port {port} /metrics", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
