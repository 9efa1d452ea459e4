"""docker-compose.yml: every component with healthchecks, ordering, limits and secure defaults."""

from __future__ import annotations

from typing import Any

from stackgen import conventions as cv
from stackgen.durations import format_duration
from stackgen.model import GRAFANA_PASSWORD_SECRET, Spec
from stackgen.render.alert_state import EXPORTER_DIR
from stackgen.render.alert_state import PORT as alert_state_port
from stackgen.render.common import header, yaml_document
from stackgen.render.prometheus import OPTIONAL_JOBS
from stackgen.versions import HEALTHCHECK

COMPOSE_FILE = "docker-compose.yml"

HOME_DASHBOARD = "/var/lib/grafana/dashboards/SLOs/stackgen-slo-overview.json"

# (cpus, memory) limits per service: sized for a small single-host stack.
LIMITS = {
    "prometheus": ("2", "2g"),
    "alertmanager": ("0.5", "256m"),
    "grafana": ("1", "512m"),
    "loki": ("2", "2g"),
    "promtail": ("0.5", "256m"),
    "alloy": ("1", "512m"),
    "node-exporter": ("0.25", "128m"),
    "cadvisor": ("0.5", "256m"),
}


def healthcheck(name: str, path: str = "/") -> dict[str, Any] | None:
    """A healthcheck the image can run (versions.HEALTHCHECK), or None for an image that
    ships nothing but its binary (FROM scratch): Prometheus' `up` watches that one."""
    port = cv.COMPONENTS[name]
    tool = HEALTHCHECK[name]
    if tool == "wget":
        test = ["CMD", "wget", "-qO-", f"http://127.0.0.1:{port}{path}"]
    elif tool == "bash":
        test = ["CMD", "bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}"]
    elif tool == "self":
        test = ["CMD", "/usr/bin/loki", "-health"]
    else:
        return None
    return {
        "test": test,
        "interval": "15s",
        "timeout": "5s",
        "retries": 5,
        "start_period": "30s" if tool == "self" else "20s",
    }


def _set_healthcheck(service: dict[str, Any], name: str, path: str = "/") -> None:
    check = healthcheck(name, path)
    if check is not None:
        service["healthcheck"] = check


BLACKBOX_DIR = "/etc/blackbox_exporter"
# Where each exporter's settings go: environment variables and flags its README documents.
EXPORTER_PATHS = {"postgres-exporter": "/", "redis-exporter": "/", "blackbox-exporter": "/-/healthy"}


def exporter_service(spec: Spec, name: str) -> dict[str, Any]:
    """An exporter or the Pushgateway, configured from the spec's exporters: section."""
    service = _base(spec, name, [])
    exporter = spec.exporter(name)
    assert exporter is not None
    settings = dict(exporter.settings)
    secrets = spec.secrets_of(name)
    if name == "postgres-exporter":
        # postgres_exporter builds postgresql://user:pass@URI itself, escaping both.
        env = {"DATA_SOURCE_URI": settings["uri"]}
        if "user" in settings:
            env["DATA_SOURCE_USER"] = settings["user"]
        if "password_file" in settings:
            env["DATA_SOURCE_PASS_FILE"] = cv.secret_path(spec.stack, settings["password_file"])
        service["environment"] = env
        service["user"] = "65534:65534"
    elif name == "redis-exporter":
        env = {"REDIS_ADDR": settings["address"]}
        if "user" in settings:
            env["REDIS_USER"] = settings["user"]
        if "password_file" in settings:
            # redis_exporter reads a JSON map {"<address>": "<password>"} from this file.
            env["REDIS_PASSWORD_FILE"] = cv.secret_path(spec.stack, settings["password_file"])
        service["environment"] = env  # runs as the image's uid 59000
    elif name == "nginx-exporter":
        service["command"] = [f"--nginx.scrape-uri={settings['scrape_uri']}"]  # image's uid 1001
    elif name == "blackbox-exporter":
        service["command"] = [f"--config.file={BLACKBOX_DIR}/blackbox.yml"]
        service["volumes"] = [f"./blackbox:{BLACKBOX_DIR}:ro"]
        service["user"] = "65534:65534"  # the image would run as root; no module here needs it
    elif name == "pushgateway":
        interval = settings.get("persistence_interval", "5m")
        # Pushed metrics survive a restart: batch jobs push once and are gone.
        service["command"] = ["--persistence.file=/pushgateway/metrics.db", f"--persistence.interval={interval}"]
        service["volumes"] = ["pushgateway-data:/pushgateway"]
        service["user"] = "65534:65534"
    if secrets:
        service["secrets"] = secrets
    ports = _ports(spec, name) if name in ("pushgateway", "blackbox-exporter") else []
    if ports:
        service["ports"] = ports
    _set_healthcheck(service, name, EXPORTER_PATHS.get(name, "/-/healthy"))
    return service


def _ports(spec: Spec, name: str) -> list[str]:
    bind = dict(spec.stack.publish).get(name, "127.0.0.1")
    if bind == "none":
        return []
    return [f"{bind}:{cv.port_of(spec.stack, name)}:{cv.COMPONENTS[name]}"]


# Run as root for what they read: the log agents (Docker socket, host logs) and cAdvisor
# (cgroups, Docker's state); they keep Docker's default capabilities.
ROOT_SERVICES = frozenset({"promtail", "alloy", "cadvisor"})
READ_ONLY_SERVICES = frozenset(
    {
        "alert-state-exporter",
        "prometheus",
        "alertmanager",
        "loki",
        "node-exporter",
        "pushgateway",
        "blackbox-exporter",
        "postgres-exporter",
        "redis-exporter",
        "nginx-exporter",
    }
)


# Two networks. `observability` is the one your services join: on it are only what must
# reach them or be reached by them (Prometheus scrapes them; exporters and probes talk to
# them; batch jobs push to the Pushgateway). Alertmanager, Loki, Grafana, the log agent and
# the host exporters sit on `stack` alone, so no service of yours can reach their APIs.
NETWORKS = {
    "prometheus": ["stack", "observability"],
    "pushgateway": ["observability"],
    "blackbox-exporter": ["observability"],
    "postgres-exporter": ["observability"],
    "redis-exporter": ["observability"],
    "nginx-exporter": ["observability"],
}


def _base(spec: Spec, name: str, depends: list[str]) -> dict[str, Any]:
    service: dict[str, Any] = {"image": spec.stack.image(name), "restart": "unless-stopped"}
    if depends:
        service["depends_on"] = {d: {"condition": "service_healthy"} for d in depends}
    cpus, memory = LIMITS.get(name, ("0.25", "128m"))
    service["deploy"] = {"resources": {"limits": {"cpus": cpus, "memory": memory}}}
    service["security_opt"] = ["no-new-privileges:true"]
    if name not in ROOT_SERVICES:
        service["cap_drop"] = ["ALL"]  # they run as an unprivileged user and need no capability
    if name in READ_ONLY_SERVICES:
        # Static Go binaries that write only to their data volume: nothing else may change.
        service["read_only"] = True
        service["tmpfs"] = ["/tmp"]
    service["networks"] = NETWORKS.get(name, ["stack"])
    return service


def services(spec: Spec) -> dict[str, dict[str, Any]]:
    stack = spec.stack
    out: dict[str, dict[str, Any]] = {}

    prom = _base(spec, "prometheus", ["alertmanager"])
    command = [
        "--config.file=/etc/prometheus/prometheus.yml",
        "--storage.tsdb.path=/prometheus",
        f"--storage.tsdb.retention.time={format_duration(stack.metrics_retention)}",
        f"--web.external-url={cv.external_url(stack, 'prometheus')}",
        # Links use the external URL's path (a reverse proxy's /prometheus); the API stays at /,
        # where Grafana, the healthcheck and the other components reach it.
        "--web.route-prefix=/",
    ]
    if stack.lifecycle_api:
        command.append("--web.enable-lifecycle")
    prom.update(
        command=command,
        user="65534:65534",
        volumes=["./prometheus:/etc/prometheus:ro", "prometheus-data:/prometheus"],
        ports=_ports(spec, "prometheus"),
        healthcheck=healthcheck("prometheus", "/-/ready"),
    )
    scrape_secrets = spec.secrets_of("prometheus")
    if scrape_secrets:
        prom["secrets"] = scrape_secrets  # the scrape jobs' tokens, passwords and certificates
    out["prometheus"] = prom

    am = _base(spec, "alertmanager", [])
    secret_names = spec.secrets_of("alertmanager")
    am.update(
        command=[
            "--config.file=/etc/alertmanager/alertmanager.yml",
            "--storage.path=/alertmanager",
            # One Alertmanager: no gossip cluster, so its cluster port (9094) is not open at all.
            "--cluster.listen-address=",
            # Every notification links back here ("silence", "view in Alertmanager").
            f"--web.external-url={cv.external_url(stack, 'alertmanager')}",
            # Without it a path in that URL would move the API too: Prometheus' alerts would 404.
            "--web.route-prefix=/",
        ],
        user="65534:65534",
        volumes=["./alertmanager:/etc/alertmanager:ro", "alertmanager-data:/alertmanager"],
        ports=_ports(spec, "alertmanager"),
        healthcheck=healthcheck("alertmanager", "/-/ready"),
    )
    if secret_names:
        am["secrets"] = secret_names
    out["alertmanager"] = am

    loki = _base(spec, "loki", ["alertmanager"])
    loki.update(
        command=["-config.file=/etc/loki/loki.yml"],
        user="10001:10001",
        volumes=[
            "./loki:/etc/loki:ro",
            "loki-data:/loki",
        ],
        ports=_ports(spec, "loki"),
        healthcheck=healthcheck("loki"),
    )
    out["loki"] = loki

    agent = spec.logs.agent
    log_agent = _base(spec, agent, ["loki"])
    # The agent reads the Docker socket (read-only; still root-equivalent, so it is the one
    # service that runs as root) and the host's log files.
    mounts = [
        "/var/run/docker.sock:/var/run/docker.sock:ro",
        "/var/log:/var/log:ro",
        "/etc/machine-id:/etc/machine-id:ro",
    ]
    if agent == "promtail":
        log_agent.update(
            command=["-config.file=/etc/promtail/promtail.yml"],
            volumes=[
                "./promtail:/etc/promtail:ro",
                *mounts,
                "promtail-data:/var/lib/promtail",
            ],
            healthcheck=healthcheck("promtail"),
        )
    else:
        log_agent.update(
            command=[
                "run",
                "--server.http.listen-addr=0.0.0.0:12345",
                "--storage.path=/var/lib/alloy",
                "/etc/alloy/config.alloy",
            ],
            volumes=[
                "./alloy:/etc/alloy:ro",
                *mounts,
                "alloy-data:/var/lib/alloy",
            ],
            healthcheck=healthcheck("alloy"),
        )
    out[agent] = log_agent

    grafana = _base(spec, "grafana", ["prometheus", "loki", "alertmanager"])
    grafana.update(
        user="472",
        environment={
            "GF_SECURITY_ADMIN_USER": "${GRAFANA_ADMIN_USER:-admin}",
            "GF_SECURITY_ADMIN_PASSWORD__FILE": f"/run/secrets/{GRAFANA_PASSWORD_SECRET}",
            "GF_AUTH_ANONYMOUS_ENABLED": "false",
            "GF_USERS_ALLOW_SIGN_UP": "false",
            "GF_SECURITY_DISABLE_GRAVATAR": "true",
            "GF_ANALYTICS_REPORTING_ENABLED": "false",
            "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH": HOME_DASHBOARD,
            "GF_SERVER_ROOT_URL": stack.grafana_url,
        },
        secrets=[GRAFANA_PASSWORD_SECRET],
        volumes=[
            "./grafana/provisioning:/etc/grafana/provisioning:ro",
            "./grafana/dashboards:/var/lib/grafana/dashboards:ro",
            "grafana-data:/var/lib/grafana",
        ],
        ports=_ports(spec, "grafana"),
        healthcheck=healthcheck("grafana", "/api/health"),
    )
    out["grafana"] = grafana

    node = _base(spec, "node-exporter", [])
    node.update(
        command=["--path.rootfs=/host"],
        user="65534:65534",
        pid="host",
        volumes=["/:/host:ro,rslave"],
        healthcheck=healthcheck("node-exporter", "/metrics"),
    )
    out["node-exporter"] = node

    cadvisor = _base(spec, "cadvisor", [])
    # Not privileged: some per-container disk metrics are missing without it (documented).
    cadvisor.update(
        volumes=[
            "/:/rootfs:ro",
            "/var/run/docker.sock:/var/run/docker.sock:ro",  # the socket, not all of /var/run
            "/sys:/sys:ro",
            "/var/lib/docker/:/var/lib/docker:ro",
        ],
        healthcheck=healthcheck("cadvisor", "/healthz"),
    )
    out["cadvisor"] = cadvisor

    alert_state = _base(spec, "alert-state-exporter", ["alertmanager"])
    alert_state.update(
        command=["python", "/app/exporter.py"],
        user="65534:65534",
        environment={
            "ALERTMANAGER_URL": f"http://{cv.address(stack, 'alertmanager')}",
            "LISTEN_ADDRESS": f"0.0.0.0:{alert_state_port}",
            "PYTHONDONTWRITEBYTECODE": "1",
        },
        volumes=[f"./{EXPORTER_DIR}:/app:ro"],
        healthcheck=healthcheck("alert-state-exporter", "/-/healthy"),
    )
    out["alert-state-exporter"] = alert_state

    for name in OPTIONAL_JOBS:
        if spec.runs(name):
            out[name] = exporter_service(spec, name)
    for service in out.values():
        if "ports" in service and not service["ports"]:
            del service["ports"]
    return out


def render(spec: Spec) -> dict[str, str]:
    svc = services(spec)
    volumes = sorted(
        {v.split(":")[0] for s in svc.values() for v in s.get("volumes", []) if not v.startswith(("./", "/"))}
    )
    secret_names = sorted(
        {name for s in svc.values() for name in s.get("secrets", []) if name != GRAFANA_PASSWORD_SECRET}
    )
    secrets: dict[str, Any] = {name: {"file": f"./secrets/{name}"} for name in secret_names}
    secrets[GRAFANA_PASSWORD_SECRET] = {"environment": "GRAFANA_ADMIN_PASSWORD"}
    head = header(
        spec.source_file,
        f"The {spec.stack.name} observability stack. Start: `stackgen up` or "
        "`docker compose up -d` (set GRAFANA_ADMIN_PASSWORD first; see .env.example). "
        "Reload Prometheus config: `docker compose kill -s HUP prometheus`.",
    )
    text = yaml_document(
        head,
        [
            (
                f"Project name, so volumes and containers are prefixed with {spec.stack.name}.",
                {"name": spec.stack.name},
            ),
            (
                "Services. Only Grafana is published beyond 127.0.0.1 unless the spec says otherwise.",
                {"services": svc},
            ),
            (
                "Data lives in named volumes; configs are mounted read-only from this directory, as"
                " directories: `stackgen render` updates the files in them in place, so a reload"
                " (SIGHUP) sees them.",
                {"volumes": {v: {} for v in volumes}},
            ),
            (
                "Networks: `stack` joins the stack's own components; `observability` is the one your "
                "services join (Prometheus, the exporters and the Pushgateway are on it; Alertmanager, "
                "Loki and Grafana are not).",
                {"networks": {"stack": {}, "observability": {}}},
            ),
            (
                "Secrets are files under ./secrets/ (not committed) or environment variables.",
                {"secrets": secrets},
            ),
        ],
    )
    return {COMPOSE_FILE: text}
