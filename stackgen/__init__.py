"""stackgen: render a Prometheus / Alertmanager / Grafana / Loki stack from one SLO spec."""

__version__ = "0.1.0"
