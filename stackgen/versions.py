"""Pinned images: the one place versions live (see README "Pinned versions"), and what each
image ships that a healthcheck can run (read off each project's Dockerfile at that tag)."""

IMAGES = {
    "prometheus": "prom/prometheus:v3.14.0",
    "alertmanager": "prom/alertmanager:v0.34.0",
    "grafana": "grafana/grafana:13.2.0",
    "loki": "grafana/loki:3.7.6",
    "promtail": "grafana/promtail:3.6.11",
    "alloy": "grafana/alloy:v1.18.1",
    "node-exporter": "prom/node-exporter:v1.12.1",
    "cadvisor": "ghcr.io/google/cadvisor:v0.60.5",
    "pushgateway": "prom/pushgateway:v1.11.3",
    "blackbox-exporter": "prom/blackbox-exporter:v0.28.0",
    "postgres-exporter": "quay.io/prometheuscommunity/postgres-exporter:v0.20.1",
    # The -alpine variant: the default tag is FROM scratch (no wget for a healthcheck).
    "redis-exporter": "oliver006/redis_exporter:v1.88.0-alpine",
    "nginx-exporter": "nginx/nginx-prometheus-exporter:1.5.3",
    # Runs stackgen/alert_state_exporter.py (standard library only), mounted read-only.
    "alert-state-exporter": "python:3.13-alpine",
}

# How a compose healthcheck can probe each image:
#   wget  busybox or Alpine wget (prom/* busybox images, cAdvisor and Grafana on Alpine)
#   bash  bash's /dev/tcp (Promtail on Debian, Alloy on Ubuntu: no wget or curl)
#   self  the binary's own check (Loki 3.7: `loki -health`; the image is distroless)
#   none  nothing to run (FROM scratch: nginx-prometheus-exporter); Prometheus' `up` watches it
HEALTHCHECK = {
    "prometheus": "wget",
    "alertmanager": "wget",
    "grafana": "wget",
    "loki": "self",
    "promtail": "bash",
    "alloy": "bash",
    "node-exporter": "wget",
    "cadvisor": "wget",
    "pushgateway": "wget",
    "blackbox-exporter": "wget",
    "postgres-exporter": "wget",
    "redis-exporter": "wget",
    "nginx-exporter": "none",
    "alert-state-exporter": "wget",  # python:*-alpine has busybox
}


def registry_and_repository(image: str) -> tuple[str, str]:
    """("registry host", "repository path") of an image reference without tag or digest, as
    Docker reads it: the first part is a host when it holds a "." or ":" or is localhost;
    otherwise the image is on Docker Hub, where a one-part name lives under library/."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return "docker.io", name if "/" in name else f"library/{name}"


def tag_of(image: str) -> str:
    last = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"
