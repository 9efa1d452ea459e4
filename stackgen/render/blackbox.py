"""blackbox/blackbox.yml: the probe modules the spec's probes use (blackbox_exporter)."""

from __future__ import annotations

from typing import Any

from stackgen.model import Spec
from stackgen.render.common import header, yaml_document

BLACKBOX_CONFIG = "blackbox/blackbox.yml"

# Every module a probe may name (model.PROBE_MODULES), as blackbox_exporter's own example
# config writes them. IPv4 first: Docker networks are IPv4 unless configured otherwise.
MODULES: dict[str, tuple[str, dict[str, Any]]] = {
    "http_2xx": (
        "HTTP GET answered with a 2xx.",
        {"prober": "http", "timeout": "5s", "http": {"preferred_ip_protocol": "ip4"}},
    ),
    "http_2xx_tls": (
        "HTTP GET answered with a 2xx over TLS; probe_ssl_earliest_cert_expiry says when the certificate ends.",
        {"prober": "http", "timeout": "5s", "http": {"preferred_ip_protocol": "ip4", "fail_if_not_ssl": True}},
    ),
    "tcp_connect": (
        "A TCP connection is accepted.",
        {"prober": "tcp", "timeout": "5s", "tcp": {"preferred_ip_protocol": "ip4"}},
    ),
    "tcp_tls": (
        "A TLS handshake over TCP succeeds (databases, brokers); certificate expiry as for http_2xx_tls.",
        {"prober": "tcp", "timeout": "5s", "tcp": {"preferred_ip_protocol": "ip4", "tls": True}},
    ),
}


def render(spec: Spec) -> dict[str, str]:
    if not spec.runs("blackbox-exporter"):
        return {}
    used = sorted({p.module for p in spec.probes}) or ["http_2xx"]
    modules = {name: MODULES[name][1] for name in used}
    notes = " ".join(f"{name}: {MODULES[name][0]}" for name in used)
    head = header(
        spec.source_file,
        "blackbox_exporter modules used by the spec's probes (prometheus.yml has a job per probe). "
        "ICMP is not offered: it needs CAP_NET_RAW.",
    )
    return {BLACKBOX_CONFIG: yaml_document(head, [(notes, {"modules": modules})])}
