"""Injection corpus: hostile text in every free-text field is carried as data, or rejected at
load by a documented rule.

Carried means, for every artifact it lands in (Prometheus config and rules, generated
promtool tests, alertmanager.yml, Loki config and rules, Promtail, Alloy, Grafana JSON,
runbooks): the artifact parses, has exactly the structure it has for a plain value (same
files, keys, list lengths, rules, receivers, services; same Markdown blocks; same Alloy
tokens), and the text reads back identical: as YAML/JSON data, as Alloy string literals, as
the text Prometheus/Loki templating prints, as the text a Markdown renderer shows. promtool
proves the templating part: it evaluates the generated alerts and expects the raw text.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from markdown_it import MarkdownIt

from stackgen.errors import SpecError
from stackgen.model import build_model
from stackgen.render import render_all
from stackgen.spec import load_spec_text
from tests.conftest import DEFAULT_SPEC, ROOT, require_tool

Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
E2E_SPEC = ROOT / "tests/e2e/spec.yaml"

# Hostile text. Every entry fits every free-text field (<= 100 characters, no control
# characters but tab and newline); longer and control-character text is tested below.
CORPUS = [
    "quote \" and ' inside",
    "new\nline: injected\n- item\n  key: v",
    '{{ .Labels.severity }} and {{ template "x" . }}',
    "}} closes {{",
    "{{- /* trim */ -}} {{ $value }} {{ humanize 1 }}",
    '{{ "{{" }} pre-escaped {{ "}}" }}',
    "${HOME} and $$HOME and $(id) and $VAR",
    "# not a comment",
    "key: value",
    "- list item",
    "&anchor *alias !!python/object:os.system <<: *x",
    "!!binary aGVsbG8=",
    "---\n...\n%YAML 1.2",
    "RTL \u202e txet zero\u200bwidth \ufeffbom 🔥 ℝ∂ 𝔘 \u0301",
    "line\u2028sep\u2029para",
    'back\\slash \\n \\\\ \\" \\u0041',
    "`code` *em* _u_ [link](javascript:alert(1)) ![i](x) <script>alert(1)</script> &amp; &#65;",
    "\ttab\tinside",
    "'single' \"double\" `back`",
    "  leading and trailing spaces  ",
    '"}, {"job": "x',
    '", "__path__" = "/etc/shadow" //',
    "*/ // /* # ;",
    "|\n>\n|-",
    "%s %d %v %n {0} {name} {{}} %(x)s",
    "null",
    "true",
    "~",
    "y",
    "n",
    "1e3",
    "0o17",
    "0x1F",
    ".nan",
    "2024-01-01",
    "-1",
    "1986. A year",
    "=== setext",
]

MARK = "zq{}xmarkerqz"


def base_spec() -> dict[str, Any]:
    spec = yaml.safe_load(DEFAULT_SPEC.read_text())
    spec["services"][0]["slos"][1].setdefault("alerting", {})
    spec["logs"]["pipeline"] = {"timestamp_format": "RFC3339Nano"}
    return spec


# Free-text fields: (id, path in the spec, limit, extra rule). The rule returns None when
# the loader must accept the value, else the message it must give.
def _no_braces(v: str) -> str | None:
    return "Go template" if "{{" in v or "}}" in v else None


def _path_rule(v: str) -> str | None:
    return None if re.fullmatch(r"\S*", v) else "is not valid"  # the schema: ^/[^\s]*$


FIELDS: list[tuple[str, tuple[str | int, ...], int, Callable[[str], str | None] | None]] = [
    ("service.description", ("services", 0, "description"), 2000, None),
    ("service.labels", ("services", 0, "labels", "note"), 1024, None),
    ("slo.description", ("services", 0, "slos", 1, "description"), 2000, None),
    ("slo.alerting.labels", ("services", 0, "slos", 1, "alerting", "labels", "owner_note"), 1024, None),
    ("scrape_job.labels", ("scrape_jobs", 0, "labels", "note"), 1024, None),
    ("receiver.description", ("receivers", 2, "description"), 2000, None),
    ("log_source.file.labels", ("logs", "sources", 1, "labels", "note"), 1024, None),
    ("log_source.journal.labels", ("logs", "sources", 2, "labels", "note"), 1024, None),
    ("log_source.file.path", ("logs", "sources", 1, "paths", 0), 10_000, _path_rule),
    ("log_alert.summary", ("logs", "alerts", "custom", 0, "summary"), 2000, None),
    ("redaction.replace", ("logs", "redaction", "patterns", 0, "replace"), 100, _no_braces),
    ("pipeline.timestamp_format", ("logs", "pipeline", "timestamp_format"), 100, None),
]
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def accepted(field: tuple[Any, ...], value: str) -> bool:
    _, _, limit, rule = field
    return len(value) <= limit and not CONTROL.search(value) and (rule is None or rule(value) is None)


def put(spec: dict[str, Any], path: tuple[str | int, ...], value: Any) -> None:
    node: Any = spec
    for part in path[:-1]:
        node = node.setdefault(part, {}) if isinstance(part, str) else node[part]
    node[path[-1]] = value


# Log file paths are absolute: the text goes after this prefix (clean and hostile alike).
PREFIX = {"log_source.file.path": "/var/log/"}


def render(spec: dict[str, Any]) -> dict[str, str]:
    return render_all(build_model(load_spec_text(yaml.safe_dump(spec, allow_unicode=True))))


def planted(values: dict[str, str]) -> dict[str, Any]:
    """The base spec with each field holding values[id], or its own marker."""
    spec = base_spec()
    for i, (fid, path, _, _) in enumerate(FIELDS):
        put(spec, path, PREFIX.get(fid, "") + values.get(fid, MARK.format(i)))
    return spec


CLEAN: dict[str, str] = {}


def clean_files() -> dict[str, str]:
    if not CLEAN:
        CLEAN.update(render(planted({})))
    return CLEAN


# ---- decoding what each artifact means


def untemplate(text: str) -> str:
    """What Prometheus/Loki templating prints for template_safe() text: {{ "{{" }} -> {{."""
    out, i = [], 0
    tokens = {'{{ "{{" }}': "{{", '{{ "}}" }}': "}}"}
    while i < len(text):
        for token, plain in tokens.items():
            if text.startswith(token, i):
                out.append(plain)
                i += len(token)
                break
        else:
            assert not text.startswith(("{{", "}}"), i) or True
            out.append(text[i])
            i += 1
    return "".join(out)


def md_plain(value: str) -> str:
    """What a Markdown renderer shows for one-line user text (documented: newlines become
    spaces, surrounding whitespace is dropped)."""
    return value.replace("\r", " ").replace("\n", " ").strip()


def templated(rel: str, path: tuple[Any, ...]) -> bool:
    """Alert labels and annotations in rule files are Go templates to Prometheus and Loki."""
    return (
        rel.startswith(("prometheus/rules/", "loki/rules/"))
        and len(path) >= 6
        and path[0] == "groups"
        and path[4] in ("labels", "annotations")
    )


def expected_for(clean: str, values: dict[str, str], norm: Callable[[str], str] = lambda s: s) -> str:
    for i, (fid, _, _, _) in enumerate(FIELDS):
        if fid in values:
            clean = clean.replace(MARK.format(i), norm(values[fid]))
    return clean


def compare_tree(rel: str, clean: Any, hostile: Any, values: dict[str, str], path: tuple[Any, ...] = ()) -> int:
    """Same shape; every string reads back as the clean string with markers replaced.
    Returns how many strings carried user text."""
    assert type(clean) is type(hostile), f"{rel}:{path}: {type(clean).__name__} became {type(hostile).__name__}"
    if isinstance(clean, dict):
        assert list(clean) == list(hostile), f"{rel}:{path}: keys changed {list(clean)} -> {list(hostile)}"
        return sum(compare_tree(rel, clean[k], hostile[k], values, (*path, k)) for k in clean)
    if isinstance(clean, list):
        assert len(clean) == len(hostile), f"{rel}:{path}: list length changed"
        return sum(
            compare_tree(rel, c, h, values, (*path, i)) for i, (c, h) in enumerate(zip(clean, hostile, strict=True))
        )
    if not isinstance(clean, str):
        assert clean == hostile, f"{rel}:{path}"
        return 0
    if "xmarkerqz" not in clean:
        assert clean == hostile, f"{rel}:{path}: changed without user text"
        return 0
    if rel.startswith("grafana/dashboards/") and path[-2:] == ("options", "content"):
        # A text panel's Markdown (the runbook dashboards): checked as the .md files are.
        assert md_shape(clean) == md_shape(hostile), f"{rel}:{path}: Markdown structure changed"
        for c, h in zip(md_texts(clean), md_texts(hostile), strict=True):
            assert h == expected_for(c, values, md_plain), f"{rel}:{path}:\n got  {h!r}"
        return 1
    want = expected_for(clean, values)
    got = untemplate(hostile) if templated(rel, path) else hostile
    if templated(rel, path):  # no action opens but stackgen's own: user braces are all escaped
        bare = hostile.replace('{{ "{{" }}', "").replace('{{ "}}" }}', "")
        assert bare.count("{{") == clean.count("{{"), f"{rel}:{path}: user text opens a template action"
    if rel.startswith("grafana/dashboards/") and path[-1] == "description" and len(got) == 500:
        assert want.startswith(got), f"{rel}:{path}"  # documented: dashboard descriptions cut at 500
    else:
        assert got == want, f"{rel}:{path}:\n got  {got!r}\n want {want!r}"
    return 1


# Go's YAML libraries (Prometheus, Alertmanager, Loki, Promtail) resolve some plain scalars
# PyYAML reads as text into other types: yaml.v2 reads y/n as bools, both read 1e3 as a float.
GO_SPECIAL = {"y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false", "False"}
GO_SPECIAL |= {"FALSE", "on", "On", "ON", "off", "Off", "OFF", "", "~", "null", "Null", "NULL", "<<"}
GO_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")


def go_reads_as_text(value: str) -> bool:
    if value in GO_SPECIAL or value.lower() in (".nan", ".inf", "+.inf", "-.inf"):
        return False
    if not value or value[0] not in "+-.0123456789":
        return True
    plain = value.replace("_", "")
    if GO_FLOAT.fullmatch(plain) or re.match(r"\d{4}-\d{1,2}-\d{1,2}", value):
        return False
    return not re.fullmatch(r"[-+]?(0[xX][0-9a-fA-F]+|0[oO]?[0-7]+|0[bB][01]+|[0-9]+)", plain)


def check_yaml_events(rel: str, text: str) -> None:
    """No aliases, anchors or tags in output; no plain text scalar Go would retype."""
    resolver = yaml.resolver.Resolver()
    for event in yaml.parse(text, Loader=Loader):
        assert not isinstance(event, yaml.AliasEvent), rel
        if isinstance(event, yaml.NodeEvent):
            assert event.anchor is None, rel
        if isinstance(event, yaml.ScalarEvent):
            assert event.tag is None, (rel, event.tag)
            if not event.style and event.implicit[0]:  # plain (libyaml says "", PyYAML None)
                tag = resolver.resolve(yaml.ScalarNode, event.value, (True, False))
                if tag == "tag:yaml.org,2002:str":
                    assert go_reads_as_text(event.value), f"{rel}: plain {event.value!r} is not text to Go"


MD = MarkdownIt("commonmark")


def md_shape(text: str) -> list[tuple[Any, ...]]:
    out = []
    for tok in MD.parse(text):
        out.append((tok.type, tok.tag, tok.nesting, tok.level))
        for child in tok.children or []:
            out.append(("  " + child.type, child.tag, child.nesting))
    return out


def md_texts(text: str) -> list[str]:
    return ["".join(c.content for c in tok.children or []) for tok in MD.parse(text) if tok.type == "inline"]


ALLOY_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')


def alloy_split(text: str) -> tuple[str, list[str]]:
    """Alloy source -> (source with every string literal replaced by "", decoded literals)."""
    body = "\n".join(line for line in text.split("\n") if not line.lstrip().startswith("//"))
    literals = [json.loads(m.group(0)) for m in ALLOY_STRING.finditer(body)]
    return ALLOY_STRING.sub('""', body), literals


def compare_artifacts(clean: dict[str, str], hostile: dict[str, str], values: dict[str, str]) -> dict[str, int]:
    """Check every file; returns {file: strings carrying user text}."""
    assert sorted(clean) == sorted(hostile), "the set of files changed"
    carried: dict[str, int] = {}
    for rel, text in hostile.items():
        ctext = clean[rel]
        if rel.endswith((".yml", ".yaml")):
            check_yaml_events(rel, text)
            carried[rel] = compare_tree(rel, yaml.load(ctext, Loader=Loader), yaml.load(text, Loader=Loader), values)
        elif rel.endswith(".json"):
            carried[rel] = compare_tree(rel, json.loads(ctext), json.loads(text), values)
        elif rel.endswith(".alloy"):
            cskel, cstrings = alloy_split(ctext)
            hskel, hstrings = alloy_split(text)
            assert cskel == hskel, "Alloy tokens outside string literals changed"
            n = 0
            for c, h in zip(cstrings, hstrings, strict=True):
                assert h == expected_for(c, values), (c, h)
                n += "xmarkerqz" in c
            carried[rel] = n
        elif rel.endswith(".md"):
            assert md_shape(ctext) == md_shape(text), f"{rel}: Markdown structure changed"
            n = 0
            for c, h in zip(md_texts(ctext), md_texts(text), strict=True):
                assert h == expected_for(c, values, md_plain), (
                    f"{rel}:\n got  {h!r}\n want {expected_for(c, values, md_plain)!r}"
                )
                n += "xmarkerqz" in c
            carried[rel] = n
        else:
            assert text == ctext, f"{rel}: user text landed in a file with no parser check"
    return carried


def test_every_marker_lands_in_a_checked_artifact() -> None:
    """Where each free-text field ends up; every landing file has a parse-back check."""
    files = clean_files()
    landing = {
        fid: sorted(rel for rel, text in files.items() if MARK.format(i) in text) for i, (fid, *_) in enumerate(FIELDS)
    }
    for fid, rels in landing.items():
        for rel in rels:
            assert rel.endswith((".yml", ".yaml", ".json", ".alloy", ".md")), (fid, rel)
            assert rel != "docker-compose.yml", f"{fid} lands in compose: escape $ as $$ there"
    must = {
        "service.description": "grafana/dashboards/",
        "service.labels": "prometheus/rules/api/",
        "slo.description": "runbooks/api/error-rate.md",
        "slo.alerting.labels": "prometheus/rules/api/error-rate.rules.yml",
        "scrape_job.labels": "prometheus/prometheus.yml",
        "log_source.file.labels": "alloy/config.alloy",
        "log_source.journal.labels": "promtail/promtail.yml",
        "log_source.file.path": "promtail/promtail.yml",
        "log_alert.summary": "loki/rules/fake/logs.rules.yml",
        "redaction.replace": "alloy/config.alloy",
        "pipeline.timestamp_format": "promtail/promtail.yml",
    }
    for fid, prefix in must.items():
        assert any(rel.startswith(prefix) for rel in landing[fid]), (fid, landing[fid])
    print("\nlanding sites: " + "; ".join(f"{k} -> {len(v)} files" for k, v in landing.items()))


@pytest.mark.parametrize("value", CORPUS, ids=[f"{i:02d}-{v[:16]!r}" for i, v in enumerate(CORPUS)])
def test_hostile_text_is_carried_as_data(value: str) -> None:
    values = {fid: value for fid, *rest in FIELDS if accepted((fid, *rest), value)}  # type: ignore[arg-type]
    rejected = [f for f in FIELDS if f[0] not in values]
    spec = planted(values)
    hostile = render(spec)
    assert render(spec) == hostile  # deterministic
    carried = compare_artifacts(clean_files(), hostile, values)
    assert sum(carried.values()) >= 10, carried
    for fid, path, _, rule in rejected:  # the rest is rejected, located, by its rule
        spec = planted({fid: value})
        with pytest.raises(SpecError) as err:
            render(spec)
        where = ".".join(str(p) for p in path)
        assert any(re.match(r"^slos\.yaml:\d+: ", str(p)) for p in err.value.problems)
        assert any(p.path.replace("[", ".").replace("]", "") == where for p in err.value.problems), (fid, err.value)
        assert rule is not None and any(re.search(rule(value) or "$^", p.message) for p in err.value.problems)


# ---- limits and control characters in free text


@pytest.mark.parametrize("fid,path,limit,rule", FIELDS, ids=[f[0] for f in FIELDS])
def test_free_text_at_and_over_its_limit(fid: str, path: tuple[str | int, ...], limit: int, rule: Any) -> None:
    if limit > 2000:
        pytest.skip("no length limit but the spec size")
    at = ("é🔥 {{x}} " * limit)[:limit] if rule is None else ("é🔥 x " * limit)[:limit]
    files = render(planted({fid: at}))
    compare_artifacts(clean_files(), files, {fid: at})
    with pytest.raises(SpecError) as err:
        render(planted({fid: at + "x"}))
    assert [str(p) for p in err.value.problems if f"is longer than {limit} characters" in p.message], err.value


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\r", "\x7f", "\x85", "\x9b", "\x08"])
def test_control_characters_are_rejected_everywhere(char: str) -> None:
    """Written as a YAML escape (the only way most of them get into a YAML file)."""
    text = yaml.safe_dump(planted({}), allow_unicode=True)
    for i, (fid, path, _, _) in enumerate(FIELDS):
        marker = PREFIX.get(fid, "") + MARK.format(i)
        assert text.count(marker) == 1
        broken = text.replace(marker, '"' + PREFIX.get(fid, "") + f'before\\x{ord(char):02x}[31mafter"')
        with pytest.raises(SpecError) as err:
            build_model(load_spec_text(broken))
        where = ".".join(str(p) for p in path)
        assert any(
            "control character" in p.message and p.line > 0 and p.path.replace("[", ".").replace("]", "") == where
            for p in err.value.problems
        ), (fid, str(err.value))


# ---- names and other fields with a documented pattern


RESTRICTED: list[tuple[str, tuple[str | int, ...]]] = [
    ("stack.name", ("stack", "name")),
    ("service.name", ("services", 0, "name")),
    ("service.team", ("services", 0, "team")),
    ("slo.name", ("services", 0, "slos", 0, "name")),
    ("receiver.name", ("receivers", 0, "name")),
    ("scrape_job.name", ("scrape_jobs", 0, "name")),
    ("scrape_job.target", ("scrape_jobs", 0, "targets", 0)),
    ("scrape_job.metrics_path", ("scrape_jobs", 2, "metrics_path")),
    ("log_source.name", ("logs", "sources", 0, "name")),
    ("log_alert.name", ("logs", "alerts", "custom", 0, "name")),
    ("slack.channel", ("receivers", 4, "channel")),
    ("email.to", ("receivers", 10, "to")),
    ("email.from", ("receivers", 10, "from")),
    ("email.auth_username", ("receivers", 10, "auth_username")),
    ("opsgenie.team", ("receivers", 3, "team")),
    ("secret_file", ("receivers", 0, "routing_key_file")),
    ("webhook.url", ("receivers", 13, "url")),
    ("stack.grafana_url", ("stack", "grafana_url")),
    ("stack.runbook_base_url", ("stack", "runbook_base_url")),
    ("slo.runbook_url", ("services", 0, "slos", 1, "alerting", "runbook_url")),
    ("stack.secrets_dir", ("stack", "secrets_dir")),
    ("stack.data_dir", ("stack", "data_dir")),
    ("latency.histogram", ("services", 0, "slos", 2, "sli", "latency", "histogram")),
    ("business_hours.timezone", ("routing", "business_hours", "timezone")),
    ("storage.bucket", ("logs", "storage", "bucket")),
]


# One value per kind of trouble (the full corpus x 25 fields costs 40 s for nothing more).
NAME_CORPUS = [CORPUS[i] for i in (0, 1, 2, 6, 7, 8, 10, 13, 15, 16, 19, 21, 25, 28, 30)] + ["Upper", "a b", "x" * 200]


def test_hostile_text_in_named_fields_is_rejected_by_its_pattern() -> None:
    schema_text = (ROOT / "stackgen/spec/slos.schema.json").read_text()
    assert '"pattern": "^[a-z][a-z0-9-]{0,29}$"' in schema_text  # the documented name rule
    rejected = accepted_names = 0
    for fid, path in RESTRICTED:
        for value in NAME_CORPUS:
            spec = planted({})
            if fid == "storage.bucket":
                spec["logs"]["storage"] = {"type": "s3", "bucket": "b-1"}
            put(spec, path, value)
            where = ".".join(str(p) for p in path)
            try:
                build_model(load_spec_text(yaml.safe_dump(spec, allow_unicode=True)))
                problems = []
            except SpecError as err:
                problems = [p for p in err.problems if p.path.replace("[", ".").replace("]", "") == where]
            if problems:
                assert all(re.match(r"^slos\.yaml:\d+: ", str(p)) and p.line > 0 for p in problems)
                rejected += 1
            else:
                # Only plain words pass the patterns (a renamed service may still break references).
                assert re.fullmatch(r"[A-Za-z0-9._~:/?#@!&()*+,;=% -]*", value), (fid, value)
                assert not re.search(r"[\"'{}$\n\\`<>]", value), (fid, value)
                accepted_names += 1
    print(f"\nrestricted fields: {rejected} hostile values rejected, {accepted_names} plain ones accepted")
    assert rejected > len(RESTRICTED) * len(NAME_CORPUS) * 3 // 4


def test_label_keys_and_team_keys_are_names() -> None:
    for value in ["a b", "__name__", "x\ny", "{{x}}", "é", "a-b", "1a"]:
        spec = planted({})
        spec["services"][0]["labels"] = {value: "v"}
        with pytest.raises(SpecError) as err:
            render(spec)
        assert any(p.path == "services[0].labels" and repr(value) in p.message for p in err.value.problems), err.value
        if value == "a-b":  # a fine team name
            continue
        spec = planted({})
        spec["routing"]["teams"][value] = {"warning": ["slack-alerts"]}
        with pytest.raises(SpecError) as err:
            render(spec)
        assert any(p.path == "routing.teams" and repr(value) in p.message for p in err.value.problems), err.value


def test_yaml_keyword_names_stay_text() -> None:
    """Names that are YAML 1.1 keywords or numbers to Go (y, n, on, null, true) stay strings."""
    for name in ["y", "n", "on", "off", "yes", "no", "null", "true", "nan", "inf"]:
        spec = planted({})
        spec["services"][1]["name"] = name
        spec["services"][1]["slos"][0]["name"] = name
        spec["routing"]["teams"][name] = spec["routing"]["teams"].pop(spec["services"][1]["team"])
        spec["services"][1]["team"] = name
        files = render(spec)
        for rel, text in files.items():
            if rel.endswith((".yml", ".yaml")):
                check_yaml_events(rel, text)
        rules = yaml.safe_load(files[f"prometheus/rules/{name}/{name}.rules.yml"])
        assert {r["labels"]["service"] for r in rules["groups"][0]["rules"]} == {name}


# ---- templating: promtool prints user text verbatim


PROM_TEXT_FIELDS = {
    "slo.description": ("services", 0, "slos", 0, "description"),
    "service.labels": ("services", 0, "labels", "note"),
    "slo.alerting.labels": ("services", 0, "slos", 0, "alerting", "labels", "owner_note"),
}


def ascii_yaml(data: Any) -> str:
    """JSON (valid YAML) with every non-ASCII character as a YAML \\u/\\U escape, so Go reads
    the exact code points without any YAML emitter in the way (JSON's surrogate pairs are
    not YAML)."""

    def esc(m: re.Match[str]) -> str:
        code = ord(m.group(0))
        return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"

    return re.sub(r"[^\x00-\x7f]", esc, json.dumps(data, ensure_ascii=False))


@pytest.mark.tools
def test_promtool_prints_user_templates_verbatim(tmp_path: Path) -> None:
    """For every corpus value: the generated SLOBurnRate1m alert (e2e spec, 100% errors)
    fires with exp_labels and exp_annotations holding the raw text, and a custom log alert's
    summary as stackgen writes it prints the raw text through the same (Prometheus) template
    engine the Loki ruler uses. Expected values are JSON in the test file, so Go reads them
    without PyYAML's emitter in the way."""
    promtool = require_tool("promtool")
    tests = []
    for i, value in enumerate(CORPUS):
        spec = yaml.safe_load(E2E_SPEC.read_text())
        spec["services"][0]["slos"][0]["alerting"]["labels"] = {}
        for path in PROM_TEXT_FIELDS.values():
            put(spec, path, value)
        spec["logs"]["alerts"] = {
            "custom": [
                {"name": "Custom", "expr": 'sum(rate({service="app"}[5m])) > 1', "severity": "info", "summary": value}
            ]
        }
        files = render(spec)
        case = tmp_path / f"c{i}"
        for rel in ("prometheus/rules/app/errors.rules.yml", "loki/rules/fake/logs.rules.yml"):
            (case / rel).parent.mkdir(parents=True, exist_ok=True)
            (case / rel).write_text(files[rel])
        rule = next(
            r
            for g in yaml.safe_load(files["prometheus/rules/app/errors.rules.yml"])["groups"]
            for r in g["rules"]
            if r.get("alert") == "SLOBurnRate1m"
        )
        prefix = rule["annotations"]["description"].split(" SLO: ", 1)[0]
        assert value.strip() == "" or "xmarkerqz" not in prefix
        # 100% errors: short-window burn 1/0.01 = 100. The 1d period is exact from the first
        # sample: every sample so far is bad, so the budget left is 1 - 1/0.01 = -9900%.
        budget = re.search(r"\{\{ with query .*?\{\{ end \}\}", prefix)
        assert budget
        description = prefix.replace('{{ $value | printf "%.1f" }}', "100.0").replace(budget.group(0), "-9900%")
        labels = {
            "service": "app",
            "slo": "errors",
            "team": "e2e",
            "severity": "critical",
            "tier": "page",
            "category": "slo",
            "long_window": "1m",
            "short_window": "12s",
            "impact": "outage",
            "note": value,
            "owner_note": value,
        }
        annotations = {k: v for k, v in rule["annotations"].items() if k != "description"}
        annotations["description"] = description + " SLO: " + value
        summary = yaml.safe_load(files["loki/rules/fake/logs.rules.yml"])["groups"][-1]["rules"][-1]["annotations"][
            "summary"
        ]
        (case / "loki-as-prom.rules.yml").write_text(
            ascii_yaml(
                {
                    "groups": [
                        {
                            "name": "g",
                            "rules": [
                                {"alert": "LokiSummary", "expr": "vector(1)", "annotations": {"summary": summary}}
                            ],
                        }
                    ]
                }
            )
        )
        test = {
            "rule_files": ["prometheus/rules/app/errors.rules.yml", "loki-as-prom.rules.yml"],
            "evaluation_interval": "4s",
            "tests": [
                {
                    "interval": "2s",
                    "input_series": [
                        {"series": 'app_requests_total{code="500", job="app"}', "values": "0+10x200"},
                    ],
                    "alert_rule_test": [
                        {
                            "eval_time": "2m",
                            "alertname": "SLOBurnRate1m",
                            "exp_alerts": [{"exp_labels": labels, "exp_annotations": annotations}],
                        },
                        {
                            "eval_time": "1m",
                            "alertname": "LokiSummary",
                            "exp_alerts": [{"exp_labels": {}, "exp_annotations": {"summary": value}}],
                        },
                    ],
                }
            ],
        }
        (case / "test.yml").write_text(ascii_yaml(test))
        tests.append(str(case / "test.yml"))
    proc = subprocess.run([promtool, "test", "rules", *tests], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    print(f"\npromtool: {len(tests)} corpus values printed verbatim in labels and annotations")


@pytest.mark.tools
def test_promtool_catches_an_unescaped_template(tmp_path: Path) -> None:
    """The check above can fail: the same test with the escaping undone does."""
    promtool = require_tool("promtool")
    rules = {
        "groups": [
            {"name": "g", "rules": [{"alert": "A", "expr": "vector(1)", "annotations": {"summary": "{{ 1 }}x"}}]}
        ]
    }
    (tmp_path / "r.yml").write_text(json.dumps(rules))
    test = {
        "rule_files": ["r.yml"],
        "tests": [
            {
                "alert_rule_test": [
                    {"eval_time": "1m", "alertname": "A", "exp_alerts": [{"exp_annotations": {"summary": "{{ 1 }}x"}}]}
                ]
            }
        ],
    }
    (tmp_path / "t.yml").write_text(json.dumps(test))
    proc = subprocess.run(
        [promtool, "test", "rules", str(tmp_path / "t.yml")], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0


# ---- interpolation: compose, Grafana provisioning, Prometheus external labels


def test_no_user_text_reaches_interpolated_files() -> None:
    """docker compose interpolates ${VAR} and $VAR (escape: $$); Grafana expands $VAR in
    provisioning files; Prometheus expands external_labels. With every free-text field holding
    "${HOME} $VAR", none of these files has a `$` but the documented GRAFANA_ADMIN_USER."""
    value = "${HOME} and $VAR and $$X"
    files = render(planted({fid: value for fid, *rest in FIELDS if accepted((fid, *rest), value)}))  # type: ignore[arg-type]
    compose = files["docker-compose.yml"]
    assert re.findall(r"\$+\{?[A-Za-z_]*", compose) == ["${GRAFANA_ADMIN_USER"], re.findall(r"\$\S*", compose)
    for rel, text in files.items():
        if rel.startswith("grafana/provisioning/"):
            assert "$" not in text, rel
    labels = yaml.safe_load(files["prometheus/prometheus.yml"])["global"]["external_labels"]
    assert not any("$" in v for v in labels.values())


def test_anchors_and_tags_in_the_spec_do_not_reach_the_output() -> None:
    """A spec may use anchors, aliases and merge keys; the output never does, and text that
    looks like them is quoted data (checked in every YAML file)."""
    text = DEFAULT_SPEC.read_text().replace(
        "  - name: search\n    team: search\n", "  - &svc\n    name: search\n    team: search\n", 1
    )
    text = text.replace("slo_defaults:\n", "x_defaults: &d {period: 30d}\nslo_defaults:\n", 1)
    with pytest.raises(SpecError):  # unknown top-level key, even as an anchor holder
        build_model(load_spec_text(text))
    text = DEFAULT_SPEC.read_text().replace("slo_defaults:\n  period: 30d", "slo_defaults: &d\n  period: 30d", 1)
    text = text.replace("        period: 28d\n", "        <<: *d\n", 1)
    files = render_all(build_model(load_spec_text(text)))
    for rel, body in files.items():
        if rel.endswith((".yml", ".yaml")):
            check_yaml_events(rel, body)


def test_corpus_counts() -> None:
    cases = len(CORPUS) * len(FIELDS)
    print(
        f"\ninjection corpus: {len(CORPUS)} values x {len(FIELDS)} free-text fields = {cases} cases; "
        f"{len(NAME_CORPUS)} values x {len(RESTRICTED)} named fields"
    )
    assert copy.deepcopy(CORPUS) == CORPUS
