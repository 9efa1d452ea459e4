"""Logs: Loki, Promtail and Alloy configs, LogQL alerts parsed by Grafana's grammar, and
redaction regexes run with RE2 semantics over a corpus of log lines."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from stackgen.model import build_model
from stackgen.pipeline import render_spec
from stackgen.render.promtail import STREAM_LABELS
from stackgen.spec import load_spec_text
from tests.conftest import DEFAULT_SPEC, ROOT
from tests.support.logql import parse_logql

EXAMPLE = ROOT / "examples/every-sli-kind.yaml"


def loki(files: dict[str, str]) -> dict:  # type: ignore[type-arg]
    return yaml.safe_load(files["loki/loki.yml"])


def test_loki_is_a_retaining_tsdb_v13_single_binary(default_files: dict[str, str]) -> None:
    config = loki(default_files)
    assert config["auth_enabled"] is False
    assert "auth_enabled is stated, not defaulted" in default_files["loki/loki.yml"]
    schema = config["schema_config"]["configs"][0]
    assert (schema["store"], schema["schema"], schema["index"]["period"]) == ("tsdb", "v13", "24h")
    compactor = config["compactor"]
    assert compactor["retention_enabled"] is True
    assert compactor["delete_request_store"] == schema["object_store"] == "filesystem"
    limits = config["limits_config"]
    assert limits["retention_period"] == "90d"  # compliance: the default spec keeps logs 90 days
    assert limits["retention_stream"] == [{"selector": '{level="debug"}', "priority": 1, "period": "7d"}]
    assert limits["ingestion_rate_mb"] > 0 and limits["per_stream_rate_limit"].endswith("MB")
    assert config["analytics"]["reporting_enabled"] is False


def test_loki_ruler_reads_the_tenant_directory_and_alerts_alertmanager(default_files: dict[str, str]) -> None:
    config = loki(default_files)
    ruler = config["ruler"]
    assert ruler["alertmanager_url"] == "http://alertmanager:9093"
    rules_dir = ruler["storage"]["local"]["directory"]
    assert rules_dir == config["common"]["storage"]["filesystem"]["rules_directory"]
    # auth_enabled: false -> tenant "fake"; the compose file mounts ./loki at /etc/loki, so the
    # rules directory inside the container is ./loki/rules of the output.
    assert "loki/rules/fake/logs.rules.yml" in default_files
    compose = yaml.safe_load(default_files["docker-compose.yml"])
    assert "./loki:/etc/loki:ro" in compose["services"]["loki"]["volumes"]
    assert rules_dir == "/etc/loki/rules"


@pytest.mark.parametrize("storage", ["s3", "gcs"])
def test_object_storage_option(storage: str) -> None:
    text = DEFAULT_SPEC.read_text().replace(
        "  retention: 90d ", f"  storage: {{type: {storage}, bucket: shop-logs, region: eu-west-1}}\n  retention: 90d "
    )
    files = render_spec_text(text)
    config = loki(files)
    assert config["schema_config"]["configs"][0]["object_store"] == storage
    assert config["compactor"]["delete_request_store"] == storage
    bucket = (
        config["common"]["storage"]["s3"]["bucketnames"]
        if storage == "s3"
        else config["common"]["storage"]["gcs"]["bucket_name"]
    )
    assert bucket == "shop-logs"
    assert "secret" not in files["loki/loki.yml"].lower().replace("secret_access_key", "")


def render_spec_text(text: str) -> dict[str, str]:
    from stackgen.render import render_all

    return render_all(build_model(load_spec_text(text)))


def test_promtail_pipeline(default_files: dict[str, str]) -> None:
    config = yaml.safe_load(default_files["promtail/promtail.yml"])
    assert config["clients"] == [{"url": "http://loki:3100/loki/api/v1/push"}]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    docker = jobs["containers"]
    assert docker["docker_sd_configs"][0]["host"] == "unix:///var/run/docker.sock"
    targets = {r["target_label"]: r for r in docker["relabel_configs"]}
    assert targets["container"]["source_labels"] == ["__meta_docker_container_name"]
    assert targets["container"]["regex"] == "/(.*)"
    assert targets["service"]["source_labels"] == ["__meta_docker_container_label_com_docker_compose_service"]
    assert jobs["app-files"]["static_configs"][0]["labels"]["__path__"] == "/var/log/shop/*.log"
    assert "journal" in jobs["journal"]
    for job in jobs.values():
        stages = [next(iter(stage)) for stage in job["pipeline_stages"]]
        # Parse, lower-case the level, label, timestamp, then redaction.
        assert stages[:4] == ["json", "template", "labels", "timestamp"]
        assert set(stages[4:]) == {"replace"}
        assert job["pipeline_stages"][0]["json"]["expressions"] == {
            "level": "level || lvl || severity || levelname || Level || Severity",
            "ts": "ts",
        }
        assert job["pipeline_stages"][1]["template"] == {
            "source": "level",
            "template": "{{ if .Value }}{{ ToLower .Value }}{{ end }}",
        }
        labels = job["pipeline_stages"][2]["labels"]
        assert set(labels) == {"level"}  # only low-cardinality fields become labels


def test_alloy_config_matches_promtail(default_files: dict[str, str]) -> None:
    alloy = default_files["alloy/config.alloy"]
    promtail = yaml.safe_load(default_files["promtail/promtail.yml"])
    assert 'url = "http://loki:3100/loki/api/v1/push"' in alloy
    for component in (
        "discovery.docker",
        "loki.source.docker",
        "local.file_match",
        "loki.source.file",
        "loki.source.journal",
        "loki.process",
        "stage.json",
        "stage.labels",
        "stage.timestamp",
        "stage.replace",
        "loki.write",
    ):
        assert component in alloy, component
    # One loki.process per source, all ending in one redaction stage with Promtail's redactions.
    jobs = promtail["scrape_configs"]
    assert alloy.count("loki.process ") == len(jobs) + 1
    assert alloy.count("forward_to = [loki.process.redact.receiver]") == len(jobs)
    replaces = [s["replace"] for s in jobs[0]["pipeline_stages"] if "replace" in s]
    assert alloy.count("stage.replace {") == len(replaces)
    # Outside string literals and comments, blocks and objects balance.
    code = re.sub(r'"(?:[^"\\]|\\.)*"', '""', alloy)
    code = re.sub(r"//[^\n]*", "", code)
    assert code.count("{") == code.count("}") and code.count("[") == code.count("]")
    # References point at components defined in the file.
    for ref in re.findall(r"= (?:\[)?((?:discovery|loki|local)\.[a-z_.]+)\.(?:targets|output|rules|receiver)", alloy):
        kind, _, label = ref.rpartition(".")
        assert re.search(rf'^{re.escape(kind)} "{re.escape(label)}" {{', alloy, re.M), ref


def test_compose_runs_the_agent_the_spec_picks() -> None:
    files = render_spec(EXAMPLE)  # logs.agent: alloy
    compose = yaml.safe_load(files["docker-compose.yml"])
    assert "alloy" in compose["services"] and "promtail" not in compose["services"]


def all_logql(files: dict[str, str]) -> list[str]:
    exprs = []
    for group in yaml.safe_load(files["loki/rules/fake/logs.rules.yml"])["groups"]:
        exprs += [rule["expr"] for rule in group["rules"]]
    for path, text in files.items():
        if path.startswith("grafana/dashboards/") and path.endswith(".json"):
            import json

            def walk(node: object) -> None:
                if isinstance(node, dict):
                    ds = node.get("datasource")
                    if isinstance(ds, dict) and ds.get("type") == "loki" and isinstance(node.get("expr"), str):
                        exprs.append(node["expr"])
                    for value in node.values():
                        walk(value)
                elif isinstance(node, list):
                    for value in node:
                        walk(value)

            walk(json.loads(text))
    return exprs


@pytest.mark.parametrize("spec", [DEFAULT_SPEC, EXAMPLE], ids=["slos.yaml", "every-sli-kind"])
def test_every_logql_expression_parses_and_uses_agent_labels(spec: Path) -> None:
    exprs = all_logql(render_spec(spec))
    assert len(exprs) >= 4
    results = parse_logql(
        [
            e.replace("$service", "api").replace("$__auto", "1m").replace("$__interval", "1m").replace("$__range", "1h")
            for e in exprs
        ]
    )
    for expr, result in zip(exprs, results, strict=True):
        assert result["ok"], (expr, result)
        assert set(result["labels"]) <= set(STREAM_LABELS), (expr, result["labels"])


def test_logql_parser_rejects_broken_expressions() -> None:
    results = parse_logql(['sum(rate({service="api"}[5m])', "{service=}", 'rate({a="b"})'])
    assert [r["ok"] for r in results] == [False, False, False]


def test_log_alerts_carry_routing_labels(default_files: dict[str, str], default_model) -> None:  # type: ignore[no-untyped-def]
    rules = [r for g in yaml.safe_load(default_files["loki/rules/fake/logs.rules.yml"])["groups"] for r in g["rules"]]
    names = {r["alert"] for r in rules}
    assert {
        "LogErrorRateHigh",
        "AuthFailureSpike",
        "ApplicationPanic",
        "DatabaseConnectionErrors",
        "PaymentDeclineSpike",
    } <= names
    team_of = {s.name: s.team for s in default_model.services}
    for rule in rules:
        assert rule["labels"]["severity"] in ("critical", "warning", "info")
        assert rule["labels"]["team"] == team_of[rule["labels"]["service"]]
    assert next(r for r in rules if r["alert"] == "AuthFailureSpike")["labels"]["category"] == "security"


# ---- Redaction: the corpus is in test_redaction.py; here, what load time refuses.


def test_redaction_rejects_patterns_re2_cannot_run() -> None:
    from stackgen.errors import SpecError

    text = DEFAULT_SPEC.read_text().replace(
        "regex: 'customer_id=(cus_[A-Za-z0-9]{14})'", "regex: '(?<=customer_id=)(cus_[A-Za-z0-9]{14})'"
    )
    with pytest.raises(SpecError, match="lookahead/lookbehind is not supported by RE2"):
        build_model(load_spec_text(text))


# Go's regexp (RE2) and Python's re disagree both ways; the load-time judge is RE2's.
@pytest.mark.parametrize(
    ("regex", "refused"),
    [
        (r"(secret)\z", None),  # Go: end of text; Python's re refuses \z
        (r"(?U)(a+)", None),  # ungreedy flag: Go only
        (r"(\pL+)=x", None),  # Unicode class: Go only
        (r"(secret)\Z", "RE2 .* refuses it: invalid escape sequence"),  # Python only
        (r"(a*+)", "RE2 .* refuses it: bad repetition operator"),  # possessive: neither Go nor RE2
        (r"(a{1001})", "RE2 .* refuses it: invalid repetition size"),
        (r"(\C)", r"\\C \(any byte\) is not supported by Go"),  # C++ RE2 has it, Go does not
        (r"(a)\1", "backreferences are not supported by RE2"),
        (r"(?=a)(b)", "lookahead/lookbehind"),
        (r"no group", "needs a capture group"),
    ],
)
def test_redaction_regexes_are_judged_by_re2(regex: str, refused: str | None) -> None:
    from stackgen.errors import SpecError

    spec = yaml.safe_load(DEFAULT_SPEC.read_text())
    spec["logs"]["redaction"]["patterns"] = [{"name": "mine", "regex": regex}]
    if refused is None:
        build_model(load_spec_text(yaml.safe_dump(spec)))
    else:
        with pytest.raises(SpecError, match=refused) as err:
            build_model(load_spec_text(yaml.safe_dump(spec)))
        assert "logs.redaction.patterns[0].regex" in str(err.value)


def test_host_profile_ruler_reads_the_rendered_rules(tmp_path: Path) -> None:
    """Run from output/ (the documented working directory), Loki's ruler finds the rules
    stackgen wrote: log alerts load right after render, with no copy step."""
    spec = yaml.safe_load(DEFAULT_SPEC.read_text())
    spec["stack"]["target"] = "host"
    files = render_spec_text(yaml.safe_dump(spec))
    config = yaml.safe_load(files["loki/loki.yml"])
    directory = config["ruler"]["storage"]["local"]["directory"]
    assert not directory.startswith("/")
    assert config["common"]["storage"]["filesystem"]["rules_directory"] == directory
    # The ruler reads <directory>/<tenant>/*.yml: tenant "fake" with auth_enabled: false.
    assert config["auth_enabled"] is False
    assert f"{directory}/fake/logs.rules.yml" in files
    assert config["ruler"]["external_url"] == spec["stack"].get("grafana_url", "http://localhost:3000")
    datasources = yaml.safe_load(files["grafana/provisioning/datasources/datasources.yml"])["datasources"]
    assert config["ruler"]["datasource_uid"] == next(d["uid"] for d in datasources if d["type"] == "loki")


# ---- Structure: no Loki/Promtail binary here, so configs are checked against schemas the
# project maintains from the documented configuration reference (tests/schemas/).

SCHEMAS = ROOT / "tests/schemas"


def schema_errors(schema_file: str, data: object) -> list[str]:
    import json

    import jsonschema

    schema = json.loads((SCHEMAS / schema_file).read_text())
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in jsonschema.Draft202012Validator(schema).iter_errors(data)
    ]


@pytest.mark.parametrize("spec", [DEFAULT_SPEC, EXAMPLE], ids=["slos.yaml", "every-sli-kind"])
def test_loki_and_promtail_match_the_documented_reference(spec: Path) -> None:
    files = render_spec(spec)
    assert schema_errors("loki-3.7.schema.json", yaml.safe_load(files["loki/loki.yml"])) == []
    assert schema_errors("promtail-3.6.schema.json", yaml.safe_load(files["promtail/promtail.yml"])) == []


def test_schema_check_catches_a_misspelt_key(default_files: dict[str, str]) -> None:
    config = yaml.safe_load(default_files["loki/loki.yml"])
    config["compactor"]["retention_enable"] = True
    assert any("retention_enable" in e for e in schema_errors("loki-3.7.schema.json", config))
