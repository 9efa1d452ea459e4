"""Hostile input and output safety: injection carried as data, secrets never written, atomic
output under SIGKILL, resource limits, and property tests over generated specs."""

from __future__ import annotations

import copy
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stackgen.errors import SpecError
from stackgen.model import build_model
from stackgen.render import render_all
from stackgen.spec import load_spec_text
from stackgen.writer import existing_files, write_tree
from tests.conftest import DEFAULT_SPEC, ROOT, require_tool

FUZZ = int(os.environ.get("STACKGEN_FUZZ_EXAMPLES", "0"))
E2E_SPEC = ROOT / "tests/e2e/spec.yaml"

HOSTILE = [
    "quote \" and ' inside",
    "new\nline: injected\n- item",
    '{{ .Labels.severity }} and {{ template "x" . }}',
    "}} closes {{",
    "${HOME} and $$HOME and $(id)",
    "# not a comment",
    "key: value",
    "&anchor *alias !!python/object:os.system",
    "RTL \u202e zero\u200bwidth emoji \U0001f525 ℝ∂",
    "back\\slash \\n \\\\",
    "x" * 1000,
]


def base_spec() -> dict[str, Any]:
    return yaml.safe_load(E2E_SPEC.read_text())


def render(spec: dict[str, Any]) -> dict[str, str]:
    return render_all(build_model(load_spec_text(yaml.safe_dump(spec, allow_unicode=True))))


def structure(files: dict[str, str]) -> dict[str, Any]:
    """The shape of the stack: files, rule names per group, receivers, compose services."""
    shape: dict[str, Any] = {"files": sorted(files)}
    for path, text in files.items():
        if path.endswith(".rules.yml"):
            shape[path] = [
                (g["name"], [r.get("alert") or r.get("record") for r in g["rules"]])
                for g in yaml.safe_load(text)["groups"]
            ]
    shape["receivers"] = [r["name"] for r in yaml.safe_load(files["alertmanager/alertmanager.yml"])["receivers"]]
    shape["services"] = sorted(yaml.safe_load(files["docker-compose.yml"])["services"])
    shape["jobs"] = [j["job_name"] for j in yaml.safe_load(files["prometheus/prometheus.yml"])["scrape_configs"]]
    return shape


def hostile_spec(value: str) -> dict[str, Any]:
    spec = base_spec()
    service = spec["services"][0]
    service["description"] = value
    service["labels"] = {"note": value}
    slo = service["slos"][0]
    slo["description"] = value
    slo["alerting"]["labels"] = {"owner_note": value}
    spec["scrape_jobs"][0]["labels"] = {"note": value}
    spec["logs"]["sources"] = [
        {"name": "files", "type": "file", "paths": ["/var/log/app.log"], "service": "app", "labels": {"note": value}}
    ]
    spec["logs"]["alerts"] = {
        "custom": [
            {
                "name": "Custom",
                "expr": 'sum(rate({service="app"}[5m])) > 1',
                "severity": "warning",
                "service": "app",
                "summary": value,
            }
        ]
    }
    return spec


def untemplate(text: str) -> str:
    return text.replace('{{ "{{" }}', "{{").replace('{{ "}}" }}', "}}")


@pytest.mark.parametrize("value", HOSTILE, ids=[repr(v[:20]) for v in HOSTILE])
def test_hostile_text_is_data_in_every_artifact(value: str) -> None:
    clean = render(hostile_spec("plain"))
    files = render(hostile_spec(value))
    assert structure(files) == structure(clean)  # no extra keys, rules, receivers, services
    prom = yaml.safe_load(files["prometheus/prometheus.yml"])
    assert prom["scrape_configs"][0]["static_configs"][0]["labels"]["note"] == value
    rules = yaml.safe_load(files["prometheus/rules/app/errors.rules.yml"])["groups"][0]["rules"]
    burn = next(r for r in rules if r.get("alert") == "SLOBurnRate1m")
    assert untemplate(burn["labels"]["note"]) == value and untemplate(burn["labels"]["owner_note"]) == value
    assert untemplate(burn["annotations"]["description"]).endswith("SLO: " + value)
    assert "{{ .Labels" not in burn["annotations"]["description"].replace('{{ "{{" }}', "")
    loki_rules = yaml.safe_load(files["loki/rules/fake/logs.rules.yml"])["groups"]
    custom = next(r for g in loki_rules for r in g["rules"] if r["alert"] == "Custom")
    assert untemplate(custom["annotations"]["summary"]) == value
    promtail = yaml.safe_load(files["promtail/promtail.yml"])
    assert promtail["scrape_configs"][0]["static_configs"][0]["labels"]["note"] == value
    literal = re.search(r'"note" = ("(?:[^"\\]|\\.)*")', files["alloy/config.alloy"])
    assert literal and json.loads(literal.group(1)) == value
    runbook = files["runbooks/app-errors.md"]
    assert "\n" not in value or value.replace("\n", " ") in runbook or "<" in value
    for path, text in files.items():  # user text never escapes a comment line
        if path.endswith((".yml", ".yaml")):
            yaml.safe_load(text)


@pytest.mark.tools
def test_user_templates_print_verbatim_in_prometheus(tmp_path: Path) -> None:
    """promtool evaluates the generated alert tests, whose expected labels and description
    are the raw hostile text: Prometheus prints it, it does not run it."""
    promtool = require_tool("promtool")
    value = '{{ .Labels.severity }} }}{{ ${X} " \' # : {{ template "x" . }}'
    out = tmp_path / "out"
    write_tree(render(hostile_spec(value)), out)
    test = "tests/app/errors.test.yml"
    assert (
        value
        in yaml.safe_load((out / "prometheus" / test).read_text())["tests"][0]["alert_rule_test"][1]["exp_alerts"][0][
            "exp_labels"
        ].values()
    )
    proc = subprocess.run(
        [promtool, "test", "rules", test], cwd=out / "prometheus", capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("services", 0, "name"), 'app"x'),
        (("services", 0, "name"), "App"),
        (("services", 0, "slos", 0, "name"), "a\nb"),
        (("receivers", 0, "name"), "{{x}}"),
        (("stack", "name"), "a b"),
        (("scrape_jobs", 0, "name"), "x:y"),
        (("services", 0, "labels"), {"__name__": "x"}),
        (("stack", "grafana_url"), "http://x/${HOME}"),
        (("receivers", 0, "url"), "http://user:pass@example.com/"),
    ],
)
def test_names_outside_the_documented_pattern_are_rejected(path: tuple[Any, ...], value: Any) -> None:
    spec = base_spec()
    node = spec
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(SpecError) as err:
        build_model(load_spec_text(yaml.safe_dump(spec)))
    assert all(re.match(r"^slos\.yaml:\d+: ", str(p)) for p in err.value.problems)


# ---- Secrets


def test_planted_secrets_never_reach_the_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    planted = {f"STACKGEN_PLANTED_{i}": f"s3cr3t-{i}-{random.Random(i).getrandbits(64):x}" for i in range(6)}
    for key, value in planted.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("GRAFANA_ADMIN_PASSWORD", planted["STACKGEN_PLANTED_0"])
    out = tmp_path / "out"
    spec = DEFAULT_SPEC.read_text()
    write_tree(render_all(build_model(load_spec_text(spec))), out)
    secret_files = {}
    for i, name in enumerate(("pagerduty_oncall_key", "slack_webhook_url", "smtp_password", "statuspage_token")):
        value = f"file-secret-{i}-{random.Random(100 + i).getrandbits(64):x}"
        (out / "secrets" / name).write_text(value)
        secret_files[name] = value
    write_tree(render_all(build_model(load_spec_text(spec))), out)  # render again with secrets present
    values = list(planted.values()) + list(secret_files.values())
    found = [
        (rel, v)
        for rel, data in existing_files(out).items()
        if not rel.startswith("secrets/")
        for v in values
        if v.encode() in data
    ]
    assert found == [], found
    assert len(values) == 10
    for name, value in secret_files.items():  # the user's secret files survive a render untouched
        assert (out / "secrets" / name).read_text() == value


# ---- Atomic output


def big_spec(slos: int) -> str:
    spec = base_spec()
    template = spec["services"][0]
    spec["services"] = []
    for s in range(slos // 5):
        service = copy.deepcopy(template)
        service["name"] = f"svc-{s}"
        service["slos"] = []
        for k in range(5):
            slo = copy.deepcopy(template["slos"][0])
            slo["name"] = f"slo-{k}"
            service["slos"].append(slo)
        spec["services"].append(service)
    return yaml.safe_dump(spec)


def test_sigkill_at_random_moments_leaves_old_or_new_tree(tmp_path: Path) -> None:
    (tmp_path / "small").mkdir()
    (tmp_path / "big").mkdir()
    specs = {"small": tmp_path / "small/slos.yaml", "big": tmp_path / "big/slos.yaml"}
    specs["small"].write_text(E2E_SPEC.read_text())
    specs["big"].write_text(big_spec(100))
    trees = {
        name: {k: v.encode() for k, v in render_all(build_model(load_spec_text(p.read_text()))).items()}
        for name, p in specs.items()
    }
    out = tmp_path / "out"
    write_tree(render_all(build_model(load_spec_text(specs["small"].read_text()))), out)

    def state() -> str:
        on_disk = existing_files(out)
        matches = [name for name, tree in trees.items() if on_disk == tree]
        assert matches, "output is neither the old tree nor the new one"
        return matches[0]

    durations = {}
    for name in ("big", "small"):  # time each render as a whole process
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "stackgen", "render", "--spec", str(specs[name]), "--out", str(out)],
            capture_output=True,
            timeout=120,
        )
        durations[name] = time.monotonic() - started
        assert proc.returncode == 0 and state() == name
    rng = random.Random(20261122)
    kills = outcomes = 0
    seen = set()
    for _ in range(30):
        current = state()
        target = "small" if current == "big" else "big"
        child = subprocess.Popen(
            [sys.executable, "-m", "stackgen", "render", "--spec", str(specs[target]), "--out", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Kill points spread over the run, most near the end, where the tree is written and swapped.
        time.sleep(
            durations[target] * rng.choice([rng.uniform(0.05, 0.9), rng.uniform(0.8, 1.05), rng.uniform(0.9, 1.0), 3.0])
        )  # 3.0: some renders finish, so both trees are seen
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            kills += 1
        child.wait()
        seen.add(state())
        outcomes += 1
    assert kills >= 10, f"only {kills} kills landed; the render was too fast to interrupt"
    assert seen == {"small", "big"}, "both trees should be seen over the run"
    # A later render succeeds and leaves no staging directory behind.
    write_tree(render_all(build_model(load_spec_text(specs["small"].read_text()))), out)
    assert state() == "small"
    assert not list(tmp_path.glob(".stackgen-*"))
    print(f"{kills} SIGKILLs over {outcomes} renders; states seen: {sorted(seen)}")


# ---- Resource limits


def test_multi_megabyte_spec_fails_fast(tmp_path: Path) -> None:
    spec = tmp_path / "slos.yaml"
    spec.write_text(DEFAULT_SPEC.read_text() + "#" + "x" * (5 * 1024 * 1024) + "\n")
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "stackgen", "render", "--spec", str(spec), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "the limit is" in proc.stderr
    assert time.monotonic() - started < 5


def test_a_thousand_slos_still_render() -> None:  # timing figures: make bench
    started = time.monotonic()
    files = render_all(build_model(load_spec_text(big_spec(1000))))
    elapsed = time.monotonic() - started
    assert sum(1 for p in files if p.endswith("/errors.test.yml") or p.startswith("prometheus/rules/svc-")) >= 1000
    print(f"1000 SLOs: {len(files)} files in {elapsed:.1f}s")


# ---- Property tests

names = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True)
free_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)


@st.composite
def sli_strategy(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["events", "latency", "availability", "raw"]))
    metric = draw(st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True))
    job = draw(names)
    if kind == "events":
        part = draw(st.sampled_from(["bad", "good"]))
        return {
            "events": {part: f'{metric}_total{{job="{job}", code=~"5.."}}', "total": f'{metric}_total{{job="{job}"}}'}
        }
    if kind == "latency":
        buckets = sorted(set(draw(st.lists(st.sampled_from([0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5]), min_size=1))))
        return {
            "latency": {
                "histogram": metric,
                "selector": f'{{job="{job}"}}',
                "threshold": draw(st.sampled_from(buckets)),
                "buckets": buckets,
                "native": draw(st.booleans()),
            }
        }
    if kind == "availability":
        return {
            "availability": {"metric": draw(st.sampled_from(["up", "probe_success"])), "selector": f'{{job="{job}"}}'}
        }
    return {"raw": {"error_ratio": f"1 - avg(avg_over_time({metric}[{{{{window}}}}]))"}}


@st.composite
def spec_strategy(draw: st.DrawFn) -> dict[str, Any]:
    spec = yaml.safe_load(DEFAULT_SPEC.read_text())
    services = []
    for s, name in enumerate(draw(st.lists(names, min_size=1, max_size=3, unique=True))):
        slos = []
        for slo_name in draw(st.lists(names, min_size=1, max_size=3, unique=True)):
            slo: dict[str, Any] = {
                "name": slo_name,
                "objective": draw(st.sampled_from([95, 99, 99.5, 99.9, 99.95])),
                "period": draw(st.sampled_from(["7d", "28d", "30d"])),
                "description": draw(free_text),
                "sli": draw(sli_strategy()),
                "alerting": {"labels": {"note": draw(free_text)}},
            }
            slos.append(slo)
        services.append(
            {
                "name": f"{name}{s}",
                "team": draw(st.sampled_from(["storefront", "search", "ops"])),
                "labels": {"tier": draw(free_text)},
                "slos": slos,
            }
        )
    spec["services"] = services
    spec["logs"]["alerts"] = {}  # the default's custom log alert names a service that is gone
    return spec


def invalid_mutations(spec: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    spec = copy.deepcopy(spec)
    slo = rng.choice(rng.choice(spec["services"])["slos"])
    mutation = rng.randrange(8)
    if mutation == 0:
        del spec[rng.choice(["version", "stack", "services", "receivers", "routing"])]
    elif mutation == 1:
        slo["objective"] = rng.choice([100, 0, -1, 101.5, "high"])
    elif mutation == 2:
        slo[rng.choice(["bogus", "objectiv", "sla"])] = 1
    elif mutation == 3:
        spec["routing"]["severities"]["critical"]["receivers"] = ["nobody"]
    elif mutation == 4:
        slo["period"] = rng.choice(["30days", "0s", "1.5d", ""])
    elif mutation == 5:
        slo["sli"] = {"events": {"bad": "rate(x[", "total": "x"}}
    elif mutation == 6:
        spec["stack"] = rng.choice([[], "x", None, 3])
    else:
        slo["sli"] = {}
    return spec


EXAMPLES = FUZZ or 100


@pytest.mark.tools
def test_valid_generated_specs_render_and_pass_the_tools(tmp_path: Path) -> None:
    promtool, amtool = require_tool("promtool"), require_tool("amtool")
    outs: list[Path] = []

    @settings(
        max_examples=EXAMPLES, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(spec_strategy())
    def render_one(spec: dict[str, Any]) -> None:
        files = render(spec)
        out = tmp_path / f"s{len(outs)}"
        for rel, text in files.items():
            if rel.startswith(("prometheus/", "alertmanager/")):
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                (out / rel).write_text(text)
        outs.append(out)

    render_one()
    assert len(outs) >= min(EXAMPLES, 20)
    configs = [str(o / "prometheus/prometheus.yml") for o in outs]
    proc = subprocess.run([promtool, "check", "config", *configs], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    proc = subprocess.run(
        [amtool, "check-config", *(str(o / "alertmanager/alertmanager.yml") for o in outs)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    print(f"property: {len(outs)} generated specs rendered; promtool check config (incl. rules) and amtool passed")


def test_mutated_specs_exit_2_with_locations() -> None:
    base = yaml.safe_load(DEFAULT_SPEC.read_text())
    rng = random.Random(7)
    cases = max(FUZZ, 300)
    for _ in range(cases):
        spec = invalid_mutations(base, rng)
        try:
            build_model(load_spec_text(yaml.safe_dump(spec)))
        except SpecError as err:
            assert err.problems
            assert all(re.match(r"^slos\.yaml:\d+: ", str(p)) for p in err.problems), err
        else:
            pytest.fail(f"mutation accepted: {spec}")
    print(f"mutations: {cases} invalid specs rejected with located messages")
