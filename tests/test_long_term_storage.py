"""stack.long_term_storage: remote write with tenant and credentials from files, Grafana reading
the store, and (evaluate: ruler) the SLO rules as ruler namespace files that fit the ruler's
limits, with the SLO period free of local retention."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import DEFAULT_SPEC, ROOT, require_tool
from typer.testing import CliRunner

from stackgen.cli import app
from stackgen.errors import LimitExceeded
from stackgen.pipeline import load_model, render_spec
from stackgen.render import render_all, ruler
from stackgen.writer import write_tree

FAST = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MIMIR = {
    "kind": "mimir",
    "remote_write_url": "https://mimir.example.com/api/v1/push",
    "query_url": "https://mimir.example.com/prometheus",
    "tenant": "shop-prod",
    "basic_auth": {"username": "shop", "password_file": "mimir_password"},
}


def spec_with(tmp_path: Path, storage: dict[str, Any], **stack: Any) -> Path:
    data = yaml.safe_load(DEFAULT_SPEC.read_text())
    data["stack"]["long_term_storage"] = storage
    data["stack"].update(stack)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def ruler_spec(tmp_path: Path, **storage: Any) -> Path:
    """The default spec in ruler mode: escalation runs on the local ALERTS, so it goes. A plain
    alert's description keeps a blank line (a block scalar's blank line is rule text too)."""
    data = yaml.safe_load(DEFAULT_SPEC.read_text())
    data["stack"]["long_term_storage"] = {**MIMIR, "evaluate": "ruler", **storage}
    data["routing"].pop("escalation", None)
    data["alerts"][0]["description"] = "Orders pile up.\n\nCheck the worker,\nthen the payment provider."
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_remote_write_passes_promtool_with_credentials_from_files(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "mimir_password").write_text("not-a-real-password\n")
    spec = spec_with(tmp_path, MIMIR, target="host", secrets_dir=str(secrets), data_dir=str(tmp_path / "data"))
    files = render_spec(spec)
    config = yaml.safe_load(files["prometheus/prometheus.yml"])
    (write,) = config["remote_write"]
    assert write["url"] == MIMIR["remote_write_url"]
    assert write["headers"] == {"X-Scope-OrgID": "shop-prod"}
    assert write["basic_auth"] == {"username": "shop", "password_file": f"{secrets}/mimir_password"}
    assert "not-a-real-password" not in "".join(files.values())
    out = tmp_path / "out"
    write_tree(files, out)
    # Without --syntax-only: promtool reads the password file and the rule files.
    proc = subprocess.run(
        [promtool, "check", "config", "prometheus/prometheus.yml"], cwd=out, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("kind", "header"), [("mimir", "X-Scope-OrgID"), ("cortex", "X-Scope-OrgID"), ("thanos", "THANOS-TENANT")]
)
def test_tenant_header_per_store_on_writes_and_grafana_reads(tmp_path: Path, kind: str, header: str) -> None:
    storage = {**MIMIR, "kind": kind, "bearer_token_file": "lts_token"}
    del storage["basic_auth"]
    files = render_spec(spec_with(tmp_path, storage))
    (write,) = yaml.safe_load(files["prometheus/prometheus.yml"])["remote_write"]
    assert write["headers"] == {header: "shop-prod"}
    assert write["authorization"] == {"type": "Bearer", "credentials_file": "/run/secrets/lts_token"}
    datasources = yaml.safe_load(files["grafana/provisioning/datasources/datasources.yml"])["datasources"]
    prometheus = next(d for d in datasources if d["uid"] == "stackgen-prometheus")
    assert prometheus["url"] == MIMIR["query_url"]
    assert prometheus["jsonData"]["httpHeaderName1"] == header
    assert prometheus["secureJsonData"] == {"httpHeaderValue1": "shop-prod"}
    # The token is mounted into Prometheus only, and named in secrets/README.md.
    compose = yaml.safe_load(files["docker-compose.yml"])
    assert "lts_token" in compose["services"]["prometheus"]["secrets"]
    assert all("lts_token" not in s.get("secrets", []) for n, s in compose["services"].items() if n != "prometheus")
    assert "`lts_token`" in files["secrets/README.md"]


def test_ruler_mode_moves_service_rules_to_namespace_files(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    files = render_spec(ruler_spec(tmp_path))
    config = yaml.safe_load(files["prometheus/prometheus.yml"])
    assert config["rule_files"] == ["rules/*.rules.yml"]  # the stack's own rules stay local
    namespaces = {p: t for p, t in files.items() if p.startswith("mimir/rules/")}
    assert sorted(namespaces) == ["mimir/rules/api.yaml", "mimir/rules/search.yaml", "mimir/rules/webhooks.yaml"]
    total_groups = 0
    for path, text in namespaces.items():
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
        assert len(docs) == 1 and set(docs[0]) == {"namespace", "groups"}  # mimirtool's strict format
        service = path.rsplit("/", 1)[1].removesuffix(".yaml")
        assert docs[0]["namespace"] == service
        # The rule files' rules, in order (an SLO's before its dashboard's), each group reading
        # 1m behind now (remote-written samples arrive late).
        assert all(group.pop("query_offset") == "1m" for group in docs[0]["groups"])
        assert [r for g in docs[0]["groups"] for r in g["rules"]] == service_rules(files, service)
        for group in docs[0]["groups"]:
            assert len(group["rules"]) <= 20, group["name"]  # Mimir's default per-group limit
        total_groups += len(docs[0]["groups"])
        # promtool checks the groups as the ruler will load them (promtool 2.42 predates query_offset).
        rules = tmp_path / f"{service}.rules.yml"
        rules.write_text(yaml.safe_dump({"groups": docs[0]["groups"]}, sort_keys=False))
        proc = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert total_groups <= 70  # Mimir's default groups per tenant


def service_rules(files: dict[str, str], service: str) -> list[dict[str, Any]]:
    paths = sorted(
        (p for p in files if p.startswith(f"prometheus/rules/{service}/") and p.endswith(".rules.yml")),
        key=lambda p: p.replace(".dashboard.", ".~."),
    )
    return [r for p in paths for g in yaml.load(files[p], Loader=FAST)["groups"] for r in g["rules"]]


def rule_lines(groups_text: str) -> list[str]:
    """The rule lines of rule groups' text: no comments, group names or settings."""
    return [
        line
        for line in groups_text.splitlines()
        if line.strip() and not line.lstrip().startswith("#") and line.startswith(("  - ", "    "))
    ]


def thousand_slo_spec(tmp_path: Path, **limits: int) -> Path:
    sys.path.insert(0, str(ROOT / "bench"))
    from synth import synthetic_spec  # type: ignore[import-not-found]

    data = yaml.safe_load(synthetic_spec(1000))
    data["routing"].pop("escalation", None)  # escalation reads the local ALERTS: refused with a ruler
    data["stack"]["long_term_storage"] = {**MIMIR, "evaluate": "ruler", "ruler_limits": limits}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.slow
def test_ruler_groups_are_packed_to_fit_the_limits_at_1000_slos(tmp_path: Path) -> None:
    """1,000 SLOs over 200 services: a namespace per service cannot fit 70 groups, so every
    service's groups share one namespace, packed in order up to the per-group limit; with
    Mimir's defaults nothing fits, and the error says which limits would."""
    promtool = require_tool("promtool")
    path = thousand_slo_spec(tmp_path, rules_per_group=1000, groups_per_tenant=70)
    spec = load_model(path, None)
    files = render_all(spec)
    namespaces = {p: t for p, t in files.items() if p.startswith("mimir/rules/")}
    assert list(namespaces) == ["mimir/rules/_all-services.yaml"]
    text = namespaces["mimir/rules/_all-services.yaml"]
    # Read as text (36,000 rules): each group's size, and every rule line once, in order.
    sizes = [chunk.count("\n  - record:") + chunk.count("\n  - alert:") for chunk in text.split("\n- name: ")[1:]]
    assert len(sizes) <= 70 and max(sizes) <= 1000, sizes
    names = re.findall(r"^- name: (.*)$", text, flags=re.M)
    assert len(set(names)) == len(names)
    assert re.findall(r"^  query_offset: (.*)$", text, flags=re.M) == ["1m"] * len(names)
    sources = [
        p
        for s in spec.services
        for p in sorted(
            (p for p in files if p.startswith(f"prometheus/rules/{s.name}/")),
            key=lambda p: p.replace(".dashboard.", ".~."),
        )
    ]
    expected = [line for p in sources for line in rule_lines(files[p].partition("\ngroups:\n")[2])]
    assert len(expected) > 30000 * 3
    assert rule_lines(text.partition("\ngroups:\n")[2]) == expected  # every rule once, in order, verbatim
    # promtool checks the groups as the ruler loads them (promtool 2.42 predates query_offset).
    rules = tmp_path / "all.rules.yml"
    rules.write_text(re.sub(r"^(namespace|  query_offset): .*\n", "", text, flags=re.M))
    proc = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"SUCCESS: {sum(sizes)} rules found" in proc.stdout

    def with_limits(rules_per_group: int, groups_per_tenant: int) -> dict[str, str]:
        storage = dataclasses.replace(
            spec.stack.long_term_storage, rules_per_group=rules_per_group, groups_per_tenant=groups_per_tenant
        )
        return ruler.render(
            dataclasses.replace(spec, stack=dataclasses.replace(spec.stack, long_term_storage=storage)), files
        )

    with pytest.raises(LimitExceeded) as refused:  # Mimir's defaults
        with_limits(20, 70)
    assert refused.value.path == ("stack", "long_term_storage", "ruler_limits")
    found = re.search(
        r"allows 70\. Raise ruler_max_rule_groups_per_tenant to (\d+), or ruler_max_rules_per_rule_group to (\d+),",
        refused.value.message,
    )
    assert found, refused.value.message
    # Either raise is enough, and the suggested per-group limit is the smallest that fits.
    assert with_limits(20, int(found[1])) and with_limits(int(found[2]), 70)
    with pytest.raises(LimitExceeded):
        with_limits(int(found[2]) - 1, 70)
    # Where a namespace per service fits, each service keeps its own.
    assert len(with_limits(1000, 200)) == 200


def test_ruler_mode_frees_the_period_from_local_retention(tmp_path: Path) -> None:
    runner = CliRunner()
    local = spec_with(tmp_path, MIMIR, metrics_retention="7d")
    result = runner.invoke(app, ["render", "--spec", str(local), "--out", str(tmp_path / "a")])
    assert result.exit_code == 2 and "metrics_retention: 7d is shorter than the 30d period" in result.output
    data = yaml.safe_load(ruler_spec(tmp_path).read_text())
    data["stack"]["metrics_retention"] = "7d"
    (tmp_path / "ruler.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    result = runner.invoke(app, ["render", "--spec", str(tmp_path / "ruler.yaml"), "--out", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    assert "--storage.tsdb.retention.time=7d" in (tmp_path / "b/docker-compose.yml").read_text()


@pytest.mark.parametrize(
    ("periods", "kept"),
    [
        ({}, "30d"),  # the spec's default period (slo_defaults) and its 7d and 28d SLOs: the longest
        ({"slo_defaults": "7d", "webhooks": "7d"}, "15d"),  # every period shorter: Prometheus' own 15d stays
        ({"api": "90d"}, "90d"),  # one longer SLO sets it
    ],
)
def test_without_metrics_retention_prometheus_keeps_the_longest_period(
    tmp_path: Path, periods: dict[str, str], kept: str
) -> None:
    """Leaving metrics_retention out never computes a budget from part of its period: the
    stack keeps the longest SLO period (at least Prometheus' default 15d), in compose and in
    the kubernetes target's Prometheus values."""
    data = yaml.safe_load(DEFAULT_SPEC.read_text())
    del data["stack"]["metrics_retention"]
    if "slo_defaults" in periods:
        data["slo_defaults"]["period"] = periods["slo_defaults"]
    for service in data["services"]:
        if service["name"] in periods:  # its first SLO
            service["slos"][0]["period"] = periods[service["name"]]
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    model = load_model(path, None)
    assert max(slo.period for slo in model.slos) <= model.stack.metrics_retention
    assert f"--storage.tsdb.retention.time={kept}" in render_spec(path)["docker-compose.yml"]
    values = yaml.safe_load(render_spec(path, "kubernetes")["helm/kube-prometheus-stack.values.yaml"])
    assert values["prometheus"]["prometheusSpec"]["retention"] == kept


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"rules_per_group": 10}, "rules; the mimir ruler allows 10 per group. Raise ruler_max_rules_per_rule_group"),
        ({"groups_per_tenant": 5}, "for tenant shop-prod, packed up to 20 rules each; the mimir ruler allows 5. Raise"),
    ],
)
def test_ruler_limits_are_located_errors(tmp_path: Path, limits: dict[str, int], message: str) -> None:
    spec = ruler_spec(tmp_path, ruler_limits=limits)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["render", "--spec", str(spec), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "spec.yaml:" in result.output and "stack.long_term_storage.ruler_limits" in result.output
    assert message in result.output
    assert "Traceback" not in result.output and not out.exists()


def test_ruler_mode_refuses_escalation_it_could_not_see(tmp_path: Path) -> None:
    spec = spec_with(tmp_path, {**MIMIR, "evaluate": "ruler"})
    result = CliRunner().invoke(app, ["render", "--spec", str(spec), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert (
        "stack.long_term_storage.evaluate: escalation levels are rules over the local Prometheus' ALERTS"
        in result.output
    )


def test_credentials_over_plain_http_are_refused(tmp_path: Path) -> None:
    storage = {**MIMIR, "remote_write_url": "http://mimir.example.com/api/v1/push"}
    result = CliRunner().invoke(
        app, ["render", "--spec", str(spec_with(tmp_path, storage)), "--out", str(tmp_path / "o")]
    )
    assert (
        result.exit_code == 2
        and "stack.long_term_storage.remote_write_url: credentials over plain http" in result.output
    )


def test_kubernetes_remote_write_reads_the_prometheus_secret(tmp_path: Path) -> None:
    files = render_spec(spec_with(tmp_path, MIMIR), "kubernetes")
    spec = yaml.safe_load(files["helm/kube-prometheus-stack.values.yaml"])["prometheus"]["prometheusSpec"]
    (write,) = spec["remoteWrite"]
    assert write["headers"] == {"X-Scope-OrgID": "shop-prod"}
    assert write["basicAuth"] == {
        "username": {"name": "shop-basic-auth-usernames", "key": "mimir_password.username"},
        "password": {"name": "shop-prometheus-secrets", "key": "mimir_password"},
    }
    assert spec["secrets"] == ["shop-prometheus-secrets"]
