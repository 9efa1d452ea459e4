"""alert-state-exporter/exporter.py: the exporter that tells Prometheus which alerts
Alertmanager silences or inhibits (stackgen/alert_state_exporter.py, copied with a header).

Why a file of ours and not an image of someone else's: it is 100 lines of standard library
that the test suite runs against a real Alertmanager and Prometheus; the compose file runs it
with a stock Python image, the host profile with the host's python3, the kubernetes target as
a sidecar of the Alertmanager pod."""

from __future__ import annotations

from pathlib import Path

from stackgen import alert_state_exporter
from stackgen.components import COMPONENT_PORTS
from stackgen.model import Spec
from stackgen.render.common import header

EXPORTER_DIR = "alert-state-exporter"
EXPORTER_FILE = f"{EXPORTER_DIR}/exporter.py"


PORT = COMPONENT_PORTS["alert-state-exporter"]


def how_to_run(spec: Spec) -> str:
    if spec.stack.target == "docker":
        return "Run: docker compose runs it (service alert-state-exporter)."
    if spec.stack.target == "kubernetes":
        return (
            "Run: a sidecar of the Alertmanager pod (helm/kube-prometheus-stack.values.yaml), from the ConfigMap "
            "in kubernetes/alert-state-exporter.yaml."
        )
    return (
        "Run: ALERTMANAGER_URL=http://127.0.0.1:<alertmanager port> LISTEN_ADDRESS=127.0.0.1:<its port> "
        "python3 exporter.py (Python 3.9+, standard library only)."
    )


def exporter_text(spec: Spec) -> str:
    head = header(
        spec.source_file,
        "Exposes Alertmanager's silenced/inhibited/muted state of each alert to Prometheus "
        "(stackgen_alert_silenced, stackgen_alert_inhibited, stackgen_alert_muted): escalations stop while the alert "
        "they escalate is silenced, and the service dashboards show it. " + how_to_run(spec),
    )
    return head + Path(alert_state_exporter.__file__).read_text(encoding="utf-8")


def render(spec: Spec) -> dict[str, str]:
    """The file compose mounts and the host runs; on Kubernetes a ConfigMap carries it."""
    if spec.stack.target == "kubernetes":
        return {}
    return {EXPORTER_FILE: exporter_text(spec)}
