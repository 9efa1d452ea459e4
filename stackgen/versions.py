"""Pinned images: the one place versions live (see README "Pinned versions")."""

IMAGES = {
    "prometheus": "prom/prometheus:v3.14.0",
    "alertmanager": "prom/alertmanager:v0.34.0",
    "grafana": "grafana/grafana:13.2.0",
    "loki": "grafana/loki:3.7.6",
    "promtail": "grafana/promtail:3.6.11",
    "alloy": "grafana/alloy:v1.18.1",
    "node-exporter": "prom/node-exporter:v1.12.1",
    "cadvisor": "ghcr.io/google/cadvisor:v0.60.5",
    "pushgateway": "prom/pushgateway:v1.11.1",
    "blackbox-exporter": "prom/blackbox-exporter:v0.27.0",
    "postgres-exporter": "quay.io/prometheuscommunity/postgres-exporter:v0.17.1",
    "redis-exporter": "oliver006/redis_exporter:v1.74.0",
    "nginx-exporter": "nginx/nginx-prometheus-exporter:1.4.2",
}
