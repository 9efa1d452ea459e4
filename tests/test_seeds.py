"""The five systems stackgen is for (../shared/seeds): each has a spec in examples/seeds/ that
expresses what its document asks of monitoring. Each renders, passes `stackgen validate`,
and loads into a real Prometheus and Alertmanager (Debian's, on 127.0.0.1) that evaluate
every rule with zero failures; its LogQL parses; and the requirements are in the output."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackgen.pipeline import render_spec
from stackgen.validate import config_for_amtool, tool_version
from stackgen.writer import write_tree
from tests.conftest import ROOT, require_tool
from tests.support.logql import parse_logql

SEEDS = sorted((ROOT / "examples/seeds").glob("*.yaml"))
IDS = [seed.stem for seed in SEEDS]


def test_there_is_a_spec_per_seed_system() -> None:
    assert [s.stem[:3] for s in SEEDS] == ["000", "001", "002", "003", "004"]


@pytest.fixture(scope="module")
def renders() -> dict[str, dict[str, str]]:
    return {seed.stem: render_spec(seed) for seed in SEEDS}


@pytest.mark.tools
@pytest.mark.parametrize("seed", SEEDS, ids=IDS)
def test_seed_renders_and_passes_validate(seed: Path, tmp_path: Path) -> None:
    require_tool("promtool")
    require_tool("amtool")
    out = tmp_path / "out"
    render = [sys.executable, "-m", "stackgen", "render", "--spec", str(seed), "--out", str(out)]
    assert subprocess.run(render, capture_output=True, text=True).returncode == 0
    proc = subprocess.run(
        [sys.executable, "-m", "stackgen", "validate", "--spec", str(seed), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " 0 failed" in proc.stdout


@pytest.mark.parametrize("seed", SEEDS, ids=IDS)
def test_seed_logql_parses(seed: Path, renders: dict[str, dict[str, str]]) -> None:
    rules = yaml.safe_load(renders[seed.stem]["loki/rules/fake/logs.rules.yml"])
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert exprs
    bad = [(e, r["error"]) for e, r in zip(exprs, parse_logql(exprs), strict=True) if not r["ok"]]
    assert not bad


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        body = response.read()
    return json.loads(body) if body.startswith(b"{") or body.startswith(b"[") else body


class Running:
    """A seed's host-profile render, run by Debian's prometheus and alertmanager."""

    def __init__(self, seed: Path, root: Path, binaries: dict[str, str], amtool: tuple[int, ...] | None) -> None:
        self.seed = seed
        self.root = root
        spec = yaml.safe_load(seed.read_text())
        self.prom, self.am = free_port(), free_port()
        # Only where it runs changes: host profile, free ports, this test's directories.
        spec["stack"].update(
            target="host",
            ports={"prometheus": self.prom, "alertmanager": self.am},
            secrets_dir=str(root / "secrets"),
            data_dir=str(root / "data"),
        )
        # The host profile scrapes no cAdvisor, so its pack is refused there; its rules are
        # checked by promtool in `stackgen validate` above.
        spec.get("alert_packs", {}).pop("cadvisor", None)
        changed = root / seed.name
        changed.write_text(yaml.safe_dump(spec, sort_keys=False))
        out = root / "out"
        write_tree(render_spec(changed), out)
        self.rendered_rules = sum(
            len(group["rules"])
            for path in (out / "prometheus/rules").rglob("*.rules.yml")
            for group in yaml.safe_load(path.read_text())["groups"]
        )
        # The secret files the config names exist here (empty): Prometheus reads them per scrape.
        (root / "secrets").mkdir()
        for job in yaml.safe_load((out / "prometheus/prometheus.yml").read_text())["scrape_configs"]:
            for key in ("authorization", "basic_auth", "tls_config"):
                for field, path in (job.get(key) or {}).items():
                    if field.endswith("_file"):
                        Path(path).write_text("")
        am_config, self.am_notes = config_for_amtool(out / "alertmanager/alertmanager.yml", amtool, root)
        self.logs = root / "logs"
        self.logs.mkdir()
        self.procs = [
            subprocess.Popen(
                [
                    binaries["prometheus"],
                    "--config.file=prometheus.yml",
                    f"--storage.tsdb.path={root / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.prom}",
                ],
                cwd=out / "prometheus",
                stdout=(self.logs / "prometheus.log").open("wb"),
                stderr=subprocess.STDOUT,
            ),
            subprocess.Popen(
                [
                    binaries["prometheus-alertmanager"],
                    f"--config.file={am_config}",
                    f"--storage.path={root / 'am'}",
                    f"--web.listen-address=127.0.0.1:{self.am}",
                    "--cluster.listen-address=",
                ],
                stdout=(self.logs / "alertmanager.log").open("wb"),
                stderr=subprocess.STDOUT,
            ),
        ]

    def rules(self) -> list[dict[str, Any]]:
        data = get(f"http://127.0.0.1:{self.prom}/api/v1/rules")["data"]["groups"]
        return data  # type: ignore[no-any-return]

    def evaluated(self) -> bool:
        groups = self.rules()
        return bool(groups) and all(not g["lastEvaluation"].startswith("0001-") for g in groups)

    def failures(self) -> float:
        url = f"http://127.0.0.1:{self.prom}/api/v1/query?query=sum(prometheus_rule_evaluation_failures_total)"
        return float(get(url)["data"]["result"][0]["value"][1])

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted(self.logs.iterdir()))


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Running]]:
    binaries = {name: require_tool(name) for name in ("prometheus", "prometheus-alertmanager")}
    amtool = tool_version("amtool")
    stacks: dict[str, Running] = {}
    try:
        for seed in SEEDS:
            stacks[seed.stem] = Running(seed, tmp_path_factory.mktemp(seed.stem), binaries, amtool)
        # Every group evaluates within one evaluation interval (1m) of start; all run at once.
        deadline = time.monotonic() + 150
        pending = dict(stacks)
        while pending and time.monotonic() < deadline:
            for name, stack in list(pending.items()):
                try:
                    if stack.evaluated():
                        del pending[name]
                except (OSError, ValueError, KeyError):
                    pass
            time.sleep(1)
        assert not pending, "never evaluated all rule groups: " + "; ".join(s.tail() for s in pending.values())
        yield stacks
    finally:
        for stack in stacks.values():
            stack.stop()


@pytest.mark.e2e
@pytest.mark.tools
@pytest.mark.parametrize("seed", SEEDS, ids=IDS)
def test_seed_loads_and_evaluates_every_rule_in_a_real_prometheus(seed: Path, running: dict[str, Running]) -> None:
    stack = running[seed.stem]
    rules = [rule for group in stack.rules() for rule in group["rules"]]
    assert len(rules) == stack.rendered_rules, stack.tail()
    unhealthy = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    assert not unhealthy, unhealthy
    assert stack.failures() == 0, stack.tail()
    status = get(f"http://127.0.0.1:{stack.am}/api/v2/status")
    assert status["config"]["original"], stack.tail()
    assert get(f"http://127.0.0.1:{stack.am}/-/ready") is not None


# ---- What each document asks, found in what stackgen rendered for it


def load(files: dict[str, str], path: str) -> Any:
    return yaml.safe_load(files[path])


def alert_rules(files: dict[str, str]) -> dict[str, dict[str, Any]]:
    out = {}
    for path, text in files.items():
        if path.endswith(".rules.yml") and (path.startswith("prometheus/rules/") or path.startswith("loki/rules/")):
            for group in yaml.safe_load(text)["groups"]:
                for rule in group["rules"]:
                    if "alert" in rule:
                        out.setdefault(rule["alert"], rule)
    return out


def routing_case(files: dict[str, str], **labels: str) -> list[str]:
    cases = load(files, "alertmanager/routing-tests.yml")["cases"]
    match = [c for c in cases if all(c["labels"].get(k) == v for k, v in labels.items())]
    assert match, labels
    return match[0]["receivers"]  # type: ignore[no-any-return]


def test_000_status_dashboard_gets_impact_1_and_2(renders: dict[str, dict[str, str]]) -> None:
    files = renders["000-cloudmon-reporter"]
    am = load(files, "alertmanager/alertmanager.yml")
    status = am["route"]["routes"][0]
    assert status["receiver"] == "status-dashboard" and status["matchers"][0] == 'impact=~"1|2"'
    hook = next(r for r in am["receivers"] if r["name"] == "status-dashboard")["webhook_configs"][0]
    assert hook["http_config"]["authorization"]["credentials_file"] == "/run/secrets/status_dashboard_jwt"
    assert hook["timeout"] == "10s"
    public = {
        r["alert"]: r
        for g in load(files, "prometheus/rules/public-api/availability.rules.yml")["groups"]
        for r in g["rules"]
        if "alert" in r
    }
    assert public["SLOBurnRate1h"]["labels"]["impact"] == "2" and public["SLOBurnRate1d"]["labels"]["impact"] == "1"
    # The reporter's own alerts stay off the customer-facing dashboard.
    reporter = load(files, "prometheus/rules/reporter/incident-delivery.rules.yml")["groups"][0]["rules"]
    assert not any("impact" in r.get("labels", {}) for r in reporter)
    rules = alert_rules(files)
    for name in ("ReporterNotPolling", "ReporterMetricsAbsent", "ReporterJwtFailures", "ReporterCannotStart"):
        assert name in rules, name
    jobs = {j["job_name"]: j for j in load(files, "prometheus/prometheus.yml")["scrape_configs"]}
    assert jobs["pushgateway"]["honor_labels"] is True
    # Rust tracing text: the level comes from the line's level word.
    stages = load(files, "promtail/promtail.yml")["scrape_configs"][0]["pipeline_stages"]
    assert "regex" in stages[0] and "(?P<level>" in stages[0]["regex"]["expression"]


def test_001_health_endpoint_is_probed_and_slo_measured(renders: dict[str, dict[str, str]]) -> None:
    files = renders["001-decoy-reporter"]
    jobs = {j["job_name"]: j for j in load(files, "prometheus/prometheus.yml")["scrape_configs"]}
    assert jobs["reporter-health"]["static_configs"][0]["targets"] == ["http://k3s-node:30080/health"]
    assert jobs["reporter-health"]["params"] == {"module": ["http_2xx"]}
    rules = alert_rules(files)
    assert rules["ServiceDown"]["expr"] == 'max(probe_success{job="reporter-health"}) == 0'
    assert rules["ProbesBlind"]["expr"] == 'up{job="reporter-health"} == 0'
    assert "60 * 1024 * 1024" in rules["ReporterNearMemoryLimit"]["expr"]
    # "No line matched" has no series to compare: absence is what can fire.
    assert rules["ReporterCleanupStalled"]["expr"].startswith("absent_over_time(")
    kubelet = jobs["kubelet-cadvisor"]
    assert kubelet["metrics_path"] == "/metrics/cadvisor" and "credentials_file" in kubelet["authorization"]
    pod_logs = load(files, "promtail/promtail.yml")["scrape_configs"][0]
    assert pod_logs["static_configs"][0]["labels"]["__path__"] == "/var/log/pods/*_reporter-*/reporter/*.log"
    assert "cri" in pod_logs["pipeline_stages"][0]


def test_002_burn_rates_2_5_10_with_their_severities(renders: dict[str, dict[str, str]]) -> None:
    files = renders["002-sre-monitor"]
    rules = alert_rules(files)
    burn = {name: (r["labels"]["severity"], r["expr"]) for name, r in rules.items() if name.startswith("SLOBurnRate")}
    assert burn["SLOBurnRate1h"][0] == "emergency" and "> 10\n" in burn["SLOBurnRate1h"][1]
    assert burn["SLOBurnRate6h"][0] == "critical" and "> 5\n" in burn["SLOBurnRate6h"][1]
    assert burn["SLOBurnRate1d"][0] == "warning" and "> 2\n" in burn["SLOBurnRate1d"][1]
    am = load(files, "alertmanager/alertmanager.yml")
    email = next(r for r in am["receivers"] if r["name"] == "email-sre")["email_configs"][0]
    assert email["to"] == "team@ai-core.dev, oncall@ai-core.dev"
    assert routing_case(files, severity="emergency", category="slo") == ["sre-webhook", "slack-alerts", "email-sre"]
    escalation = load(files, "prometheus/rules/stack.rules.yml")["groups"]
    assert not any(g["name"] == "stackgen:escalation" for g in escalation)  # no levels defined
    compose = load(files, "docker-compose.yml")
    assert compose["services"]["postgres-exporter"]["environment"]["DATA_SOURCE_PASS_FILE"].startswith("/run/secrets/")


def test_003_scrapes_behind_bearer_auth_and_uses_its_severities(renders: dict[str, dict[str, str]]) -> None:
    files = renders["003-observability-service"]
    job = load(files, "prometheus/prometheus.yml")["scrape_configs"][0]
    assert job["authorization"] == {"type": "Bearer", "credentials_file": "/run/secrets/starter_metrics_token"}
    assert job["metrics_path"] == "/api/v1/monitoring/metrics/prometheus" and job["scheme"] == "https"
    compose = load(files, "docker-compose.yml")
    assert compose["services"]["prometheus"]["secrets"] == ["starter_ca.pem", "starter_metrics_token"]
    assert "starter_metrics_token" not in compose["services"]["alertmanager"].get("secrets", [])
    rules = alert_rules(files)
    assert rules["HighCpuUsage"]["expr"] == 'cpu_usage{job="starter-api"} > 80' and rules["HighCpuUsage"]["for"] == "5m"
    assert rules["HighCpuUsage"]["labels"]["severity"] == "high"
    assert routing_case(files, severity="high", category="platform") == ["pagerduty-backend", "slack-incidents"]
    stack = load(files, "prometheus/rules/stack.rules.yml")
    escalation = next(g for g in stack["groups"] if g["name"] == "stackgen:escalation")["rules"][0]
    assert 'severity=~"critical|high"' in escalation["expr"]


def test_004_clipper_alert_sets_and_escalation(renders: dict[str, dict[str, str]]) -> None:
    files = renders["004-clipper"]
    rules = alert_rules(files)
    background = [n for n in rules if n.startswith("BackgroundJob")]
    assert len(background) == 9, background
    for name in (
        "HostHighCpuUsage",
        "HostHighMemoryUsage",
        "HostDiskSpaceLow",
        "HostDiskSpaceCritical",
        "PostgresDown",
        "PostgresTooManyConnections",
        "RedisDown",
        "RedisHighMemoryUsage",
        "TLSCertificateExpiresSoon",
        "SemanticSearchHighLatency",
        "WebhookDeadLetterItems",
        "SqlInjectionAttempt",
        "RedisConnectionErrors",
        "AuthFailureSpike",
        "ApplicationPanic",
        "DatabaseConnectionErrors",
    ):
        assert name in rules, name
    assert rules["ServiceDown"]["expr"] == 'max(up{job="clipper-backend"}) == 0'
    assert routing_case(files, severity="critical", category="slo") == [
        "pagerduty-slo",
        "slack-incidents",
        "email-oncall",
    ]
    assert routing_case(files, severity="critical", category="security") == ["pagerduty-security", "slack-security"]
    assert routing_case(files, severity="info", category="budget") == ["slack-incidents"]
    levels = [c for c in load(files, "alertmanager/routing-tests.yml")["cases"] if "escalation_level" in c["labels"]]
    assert {c["labels"]["escalation_level"]: c["receivers"][0] for c in levels} == {
        "2": "pagerduty-lead",
        "3": "email-eng-manager",
        "4": "email-leadership",
    }
    loki = load(files, "loki/loki.yml")
    assert loki["limits_config"]["retention_period"] == "90d" and loki["compactor"]["compaction_interval"] == "10m"
    compose = load(files, "docker-compose.yml")["services"]
    assert {"postgres-exporter", "redis-exporter", "nginx-exporter", "node-exporter", "cadvisor"} <= set(compose)
