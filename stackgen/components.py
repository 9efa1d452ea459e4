"""The components a rendered stack can run: docker host name -> default port. The model reads it
(scrape job names it reserves), conventions (addresses), the renderers (services, scrapes)."""

from __future__ import annotations

COMPONENT_PORTS: dict[str, int] = {
    "prometheus": 9090,
    "alertmanager": 9093,
    "grafana": 3000,
    "loki": 3100,
    "promtail": 9080,
    "alloy": 12345,
    "node-exporter": 9100,
    "cadvisor": 8080,
    "pushgateway": 9091,
    "blackbox-exporter": 9115,
    "postgres-exporter": 9187,
    "redis-exporter": 9121,
    "nginx-exporter": 9113,
    "alert-state-exporter": 9097,
}
