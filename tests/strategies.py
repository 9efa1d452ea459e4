"""Hypothesis strategies: valid stackgen specs built from parts, and invalid mutations of them.

Generating whole specs from the JSON Schema mostly yields specs that fail the model's
cross-field checks (tiers longer than the period, dangling receivers, ...), so a valid spec
is assembled here from valid parts: every SLI kind, default and custom tiers, every receiver
type, routing by severity/category/team with escalation, watchdog and status page, both
targets, every log source type, redaction and custom log alerts. hypothesis-jsonschema
draws the leaf strings (free text, label names) from the shipped schema's own definitions.
(Its object strategy fails with this hypothesis version, so no object comes from it.)

`invalid_case()` takes a valid spec and breaks it in one way, returning the spec and where
the error must be reported (`Expect`).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from stackgen.model import RESERVED_LABELS
from stackgen.spec.loader import CONTROL_CHARS, SCHEMA_PATH
from stackgen.versions import IMAGES

SCHEMA = json.loads(SCHEMA_PATH.read_text())
DEFS = SCHEMA["$defs"]
# The digest part of stack.images' pattern (the image part must name what stackgen renders).
DIGEST_PATTERN = re.search(
    r"@(sha256:[^$]+)\$$", DEFS["stack"]["properties"]["images"]["additionalProperties"]["pattern"]
).group(1)  # type: ignore[union-attr]
RESERVED = RESERVED_LABELS
DAY = 86400
UNITS = (("d", DAY), ("h", 3600), ("m", 60), ("s", 1))


def dur(seconds: int) -> str:
    """Seconds as a Prometheus duration, written independently of stackgen.durations."""
    out = ""
    for unit, size in UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            out += f"{count}{unit}"
    return out


def _clean(text: str) -> str:
    return CONTROL_CHARS.sub("", text)


def from_pattern(pattern: str) -> st.SearchStrategy[str]:
    """Strings from a schema pattern in full (every character and length it allows): names
    reach PromQL, LogQL, file names and uids, so no friendly subset may stand in for them."""
    return st.from_regex(pattern.removeprefix("^").removesuffix("$"), fullmatch=True)


names = from_pattern(DEFS["name"]["pattern"])
# Receivers get a "-<index>" suffix below: keep room for it under the 63-character cap.
receiver_names = from_pattern(DEFS["receiver_name"]["pattern"]).map(lambda s: s[:58])
job_names = from_pattern(DEFS["job_name"]["pattern"])
severity_names = from_pattern(DEFS["severity_name"]["pattern"]).filter(lambda s: s != "none")
category_names = from_pattern(DEFS["category_name"]["pattern"])
alert_names = from_pattern(DEFS["alert_name"]["pattern"]).map(lambda s: "Plain" + s[:50])
# Free text straight from the schema's "text" definition (any Unicode); the loader's one
# extra rule (no control characters but tab and newline) is applied on top.
text = from_schema(DEFS["text"]).map(_clean).map(lambda s: s[:300])
label_names = from_schema({"type": "string", "pattern": DEFS["labels"]["propertyNames"]["pattern"]}).filter(
    lambda k: len(k) <= 63 and k not in RESERVED
)
label_values = from_schema(DEFS["labels"]["additionalProperties"]).map(_clean).map(lambda s: s[:200])
labels = st.dictionaries(label_names, label_values, max_size=3)
# PromQL string contents: printable, with quotes and backslashes escaped for the selector.
promql_values = st.text(
    st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_characters="\x7f"), max_size=12
).map(_clean)
metric_names = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)
secret_files = st.from_regex(r"[a-z][a-z0-9_.-]{0,20}", fullmatch=True)
urls = st.sampled_from(["https://hooks.example.com/a", "http://127.0.0.1:9999/x?y=1&z=2", "https://e.example/p;q=(1)"])


def pq(value: str) -> str:
    """A PromQL double-quoted string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@st.composite
def selectors(draw: st.DrawFn, job: str | None = None) -> str:
    """Label matchers in braces; every string escaped as PromQL wants."""
    matchers = []
    if job is not None:
        matchers.append(f"job={pq(job)}")
    for name in draw(st.lists(st.from_regex(r"[a-z][a-z_]{0,8}", fullmatch=True), max_size=2, unique=True)):
        if name == "job" or name == "le":
            continue
        op = draw(st.sampled_from(["=", "!=", "=~", "!~"]))
        value = (
            draw(promql_values) if op in ("=", "!=") else draw(st.sampled_from(["5..", "2..|3..", "(a|b)", ".*x.*"]))
        )
        matchers.append(f"{name}{op}{pq(value)}")
    if not matchers:
        return draw(st.sampled_from(["", "{}"])) if job is None else "{}"
    return "{" + draw(st.sampled_from([", ", ","])).join(matchers) + "}"


@st.composite
def sli(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["events", "events-window", "latency", "native", "availability", "raw"]))
    metric = draw(metric_names)
    sel = draw(selectors(job=draw(names)))
    if kind == "events":
        part = draw(st.sampled_from(["bad", "good"]))
        extra = '{code=~"5.."}' if part == "bad" else '{code!~"5.."}'
        return {"events": {part: f"{metric}_total{extra}", "total": f"{metric}_total{sel}"}}
    if kind == "events-window":
        return {
            "events": {
                "bad": f"sum(rate({metric}_errors_total{sel}[{{{{window}}}}]))",
                "total": f"sum(rate({metric}_total{sel}[{{{{window}}}}]))",
            }
        }
    if kind in ("latency", "native"):
        buckets = sorted(set(draw(st.lists(st.sampled_from([0.005, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10]), min_size=1))))
        body: dict[str, Any] = {"histogram": f"{metric}_seconds", "threshold": draw(st.sampled_from(buckets))}
        if sel != "{}" or draw(st.booleans()):
            body["selector"] = sel
        if kind == "native":
            body["native"] = True
        elif draw(st.booleans()):
            body["buckets"] = buckets
        return {"latency": body}
    if kind == "availability":
        return {"availability": {"metric": draw(st.sampled_from(["up", "probe_success"])), "selector": sel}}
    return {"raw": {"error_ratio": f"1 - avg(avg_over_time({metric}_ok{sel}[{{{{window}}}}]))"}}


@st.composite
def tiers(draw: st.DrawFn, period: int, base: int, budget: Decimal) -> list[dict[str, Any]]:
    """1-4 tiers that can fire: windows multiples of the base window, long <= period,
    distinct long windows, burn rate x budget < 1."""
    longs = [
        w for w in (300, 600, 1800, 3600, 7200, 6 * 3600, 12 * 3600, DAY, 3 * DAY) if w <= period and w % base == 0
    ]
    chosen = draw(st.lists(st.sampled_from(longs), min_size=1, max_size=4, unique=True))
    out = []
    for long_w in chosen:
        shorts = [s for s in range(base, long_w, base) if long_w % s == 0 and s * 3 <= long_w][:12] or [base]
        short_w = draw(st.sampled_from(shorts))
        tier: dict[str, Any] = {"severity": draw(st.sampled_from(["page", "ticket"])), "long_window": dur(long_w)}
        # The model's default short window is long/12 (at least B): usable only on the grid.
        default_ok = (long_w // 12) % base == 0 and max(long_w // 12, base) < long_w
        if not default_ok or draw(st.booleans()):
            tier["short_window"] = dur(short_w)
        # 0.5 <= burn rate < 1 / budget (at or above 1 / budget the model says it never fires).
        ceiling = Decimal(1) / budget * Decimal("0.9")
        if draw(st.booleans()):
            rate = min(Decimal(draw(st.sampled_from(["0.5", "1", "2", "3", "6", "10", "14.4"]))), ceiling)
            tier["burn_rate"] = float(round(rate, 2))
        else:
            # r = f * T / L, so f = r * L / T (percent)
            lowest = Decimal(100) * long_w / period / 2
            f = min(max(Decimal(draw(st.sampled_from(["1", "2", "5", "10"]))), lowest), lowest * 2 * ceiling)
            tier["budget_percent"] = float(round(f, 6))
        out.append(tier)
    return out


@st.composite
def slo(draw: st.DrawFn, stack: dict[str, Any]) -> dict[str, Any]:
    base = _seconds(stack.get("evaluation_interval", "1m"))
    objective = draw(st.sampled_from([90, 95, 98, 99, 99.5, 99.9, 99.95, 99.99]))
    period_s = draw(st.sampled_from([7 * DAY, 14 * DAY, 28 * DAY, 30 * DAY]))
    budget = (Decimal(100) - Decimal(str(objective))) / 100
    out: dict[str, Any] = {"name": draw(names), "objective": objective, "sli": draw(sli())}
    if draw(st.booleans()):
        out["period"] = dur(period_s)
    else:
        period_s = 30 * DAY  # slo_defaults.period below is 30d when present
    if draw(st.booleans()):
        out["description"] = draw(text)
    alerting: dict[str, Any] = {}
    if objective < 95 or base == 120 or draw(st.booleans()):
        alerting["tiers"] = draw(tiers(period_s, base, budget))
    if draw(st.booleans()):
        alerting["labels"] = draw(labels)
    if draw(st.booleans()):
        alerting["runbook_url"] = draw(urls)
    if draw(st.booleans()):
        alerting["budget_low_percent"] = draw(st.sampled_from([0, 10, 25, 50, 100]))
    if alerting:
        out["alerting"] = alerting
    return out


def _seconds(text_: str) -> int:
    return sum(int(n) * dict(UNITS)[u] for n, u in re.findall(r"(\d+)([dhms])", text_))


@st.composite
def receivers(draw: st.DrawFn) -> list[dict[str, Any]]:
    kinds = draw(
        st.lists(st.sampled_from(["pagerduty", "slack", "email", "opsgenie", "webhook"]), min_size=1, max_size=6)
    )
    kinds.append("webhook")  # one webhook at least: the status page needs one
    out = []
    for i, kind in enumerate(kinds):
        r: dict[str, Any] = {"name": f"{draw(receiver_names)}-{i}", "type": kind}
        if kind == "pagerduty":
            # A secret file serves one purpose: each kind gets its own names.
            r["routing_key_file"] = "pd-" + draw(secret_files)
            if draw(st.booleans()):
                r["severity"] = draw(st.sampled_from(["critical", "error", "warning", "info"]))
        elif kind == "slack":
            r["channel"] = draw(st.from_regex(r"[#@][A-Za-z0-9._-]{1,20}", fullmatch=True))
            # A Slack incoming webhook posts to one channel: one file per receiver (the model
            # refuses a file shared across channels).
            r["api_url_file"] = f"slack{i}-" + draw(secret_files)
        elif kind == "email":
            to: Any = draw(st.sampled_from(["oncall+x@example.com", ["a@example.com", "b.c@example.org"]]))
            r.update(to=to, smarthost="smtp.example.com:587")
            r["from"] = "am@example.com"
            if draw(st.booleans()):
                r.update(auth_username="am@example.com", auth_password_file="smtp-" + draw(secret_files))
        elif kind == "opsgenie":
            r["api_key_file"] = "og-" + draw(secret_files)
            if draw(st.booleans()):
                r["team"] = draw(st.from_regex(r"[A-Za-z0-9 ._-]{1,20}", fullmatch=True))
        else:
            r["url"] = draw(urls)
            if draw(st.booleans()):
                r["credentials_file"] = "hook-" + draw(secret_files)
            if draw(st.booleans()):
                r["send_resolved"] = draw(st.booleans())
            if draw(st.booleans()):
                r["timeout"] = draw(st.sampled_from(["10s", "30s", "1m"]))
        if draw(st.booleans()):
            r["description"] = draw(text)
        out.append(r)
    return out


@st.composite
def routing(draw: st.DrawFn, pool: list[dict[str, Any]], teams: list[str]) -> dict[str, Any]:
    all_names = [r["name"] for r in pool]
    webhooks = [r["name"] for r in pool if r["type"] == "webhook"]
    pick = st.lists(st.sampled_from(all_names), min_size=1, max_size=3, unique=True)
    out: dict[str, Any] = {"default_receiver": draw(st.sampled_from(all_names)), "severities": {}}
    hours = draw(st.booleans())
    extra = draw(
        st.lists(severity_names.filter(lambda s: s not in ("critical", "warning", "info")), max_size=2, unique=True)
    )
    for sev in ("critical", "warning", "info", *extra):
        route: dict[str, Any] = {"receivers": draw(pick)}
        for key in ("group_wait", "group_interval", "repeat_interval"):
            if draw(st.booleans()):
                route[key] = draw(st.sampled_from(["10s", "1m", "5m", "1h", "4h"]))
        if hours and sev != "critical" and draw(st.booleans()):
            route["business_hours_only"] = True
        out["severities"][sev] = route
    if hours:
        out["business_hours"] = {
            "timezone": draw(st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"])),
            "weekdays": draw(st.sampled_from(["monday:friday", "monday", "tuesday:saturday"])),
            "start": "09:00",
            "end": draw(st.sampled_from(["17:30", "18:00", "24:00"])),
        }
    if draw(st.booleans()):
        out["group_by"] = draw(st.lists(st.sampled_from(["alertname", "service", "slo", "team"]), unique=True))
    per_sev = st.dictionaries(st.sampled_from(["critical", "warning", "info", *extra]), pick, min_size=1)
    if draw(st.booleans()):
        cats = draw(
            st.lists(
                st.one_of(st.sampled_from(["slo", "security", "budget", "logs", "platform"]), category_names),
                unique=True,
                max_size=3,
            )
        )
        out["categories"] = {c: draw(per_sev) for c in cats}
    if draw(st.booleans()):
        out["escalation_severities"] = draw(st.lists(st.sampled_from(["critical", *extra]), min_size=1, unique=True))
    if teams and draw(st.booleans()):
        chosen = draw(st.lists(st.sampled_from(teams), unique=True, min_size=1))
        out["teams"] = {t: draw(per_sev) for t in chosen}
    if draw(st.booleans()):
        levels = draw(st.lists(st.integers(2, 9), min_size=1, max_size=3, unique=True))
        afters = sorted(
            draw(
                st.lists(
                    st.sampled_from([300, 900, 1800, 3600, 7200]),
                    min_size=len(levels),
                    max_size=len(levels),
                    unique=True,
                )
            )
        )
        out["escalation"] = [
            {"level": level, "after": dur(after), "receivers": draw(pick)}
            for level, after in zip(sorted(levels), afters, strict=True)
        ]
    if draw(st.booleans()):
        out["watchdog"] = {"receiver": draw(st.sampled_from(all_names))}
        if draw(st.booleans()):
            out["watchdog"]["repeat_interval"] = draw(st.sampled_from(["1m", "5m"]))
    if draw(st.booleans()):
        out["status_page"] = {"receiver": draw(st.sampled_from(webhooks))}
        if draw(st.booleans()):
            values = draw(
                st.lists(st.from_regex(r"[A-Za-z0-9._-]{1,8}", fullmatch=True), min_size=2, max_size=2, unique=True)
            )
            out["status_page"]["impact"] = {"outage": values[0], "degraded": values[1]}
    return out


@st.composite
def logs(draw: st.DrawFn, services: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if draw(st.booleans()):
        out["agent"] = draw(st.sampled_from(["promtail", "alloy"]))
    if draw(st.booleans()):
        out["retention"] = draw(st.sampled_from(["1d", "30d", "90d", "2w"]))
    if draw(st.booleans()):
        out["retention_overrides"] = [
            {"selector": '{level="debug"}', "period": "7d"},
            {"selector": f'{{service="{draw(st.sampled_from(services))}"}}', "period": "1d", "priority": 2},
        ][: draw(st.integers(1, 2))]
    storage = draw(st.sampled_from(["filesystem", "s3", "gcs", None]))
    if storage:
        out["storage"] = {"type": storage}
        if storage != "filesystem":
            out["storage"]["bucket"] = "logs-bucket"
        if storage == "s3" and draw(st.booleans()):
            out["storage"].update(endpoint="minio:9000", region="eu-west-1", insecure=True)
    if draw(st.booleans()):
        out["ingestion"] = {"rate_mb": 4, "burst_mb": 8, "max_label_names_per_series": 20}
    sources = []
    for i, kind in enumerate(draw(st.lists(st.sampled_from(["docker", "file", "journal"]), max_size=3))):
        source: dict[str, Any] = {"name": f"src-{i}", "type": kind}
        if kind == "file" or (kind == "journal" and draw(st.booleans())):
            if kind == "file":
                source["paths"] = draw(
                    st.lists(st.from_regex(r"/var/log/[a-z]{1,8}/\*\.log", fullmatch=True), min_size=1, max_size=2)
                )
            source["service"] = draw(st.sampled_from(services))
        if kind != "docker" and draw(st.booleans()):
            source["labels"] = draw(labels)
        fmt = draw(st.sampled_from([None, "json", "logfmt", "text", "regex"]))
        if fmt:
            source["format"] = fmt
        if fmt == "regex":
            source["regex"] = r"^(?P<ts>\S+) \[(?P<level>[A-Za-z]+)\]"
        if draw(st.booleans()):
            source["cri"] = True
        sources.append(source)
    if sources:
        out["sources"] = sources
    if draw(st.booleans()):
        out["pipeline"] = {"timestamp_field": "time", "level_field": "severity", "timestamp_format": "RFC3339"}
    if draw(st.booleans()):
        red: dict[str, Any] = {
            "builtin": draw(
                st.lists(st.sampled_from(["passwords", "tokens", "api_keys", "emails", "credit_cards"]), unique=True)
            )
        }
        if draw(st.booleans()):
            replace = draw(text.filter(lambda s: "{{" not in s and "}}" not in s).map(lambda s: s[:100]))
            red["patterns"] = [{"name": "ids", "regex": r"id=([0-9a-f]{8})", "replace": replace}]
        out["redaction"] = red
    alerts: dict[str, Any] = {}
    for key in ("error_rate", "auth_failures", "panics", "db_errors"):
        if draw(st.booleans()):
            alerts[key] = draw(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "per_second": st.sampled_from([0.1, 1, 5]),
                        "for": st.sampled_from(["1m", "10m"]),
                        "severity": st.sampled_from(["critical", "warning", "info"]),
                        "enabled": st.booleans(),
                    },
                )
            )
    if draw(st.booleans()):
        custom = []
        for i in range(draw(st.integers(1, 2))):
            alert: dict[str, Any] = {
                "name": f"Custom{i}Alert",
                "expr": f'sum(rate({{service="{draw(st.sampled_from(services))}"}} |= "timeout" [5m])) > 1',
                "severity": draw(st.sampled_from(["critical", "warning", "info"])),
                "summary": draw(text),
            }
            if draw(st.booleans()):
                alert["service"] = draw(st.sampled_from(services))
            if draw(st.booleans()):
                alert["category"] = draw(st.sampled_from(["logs", "security", "platform"]))
            if draw(st.booleans()):
                alert["for"] = "5m"
            custom.append(alert)
        alerts["custom"] = custom
    if alerts:
        out["alerts"] = alerts
    return out


@st.composite
def valid_spec(draw: st.DrawFn) -> dict[str, Any]:
    """A spec the loader and the model accept: the property tests check that it renders into
    configs the real tools accept."""
    scrape = draw(st.sampled_from([5, 10, 15, 30]))
    # 2m does not divide the default tiers' 5m short window: those specs need custom tiers.
    evaluation = draw(st.sampled_from([e for e in (30, 60, 120) if e >= 2 * scrape]))
    stack: dict[str, Any] = {
        "name": draw(names),
        "target": draw(st.sampled_from(["docker", "host"])),
        "scrape_interval": dur(scrape),
        "evaluation_interval": dur(evaluation),
    }
    if draw(st.booleans()):
        stack["metrics_retention"] = draw(st.sampled_from(["30d", "35d", "1y"]))  # >= the longest period
    if draw(st.booleans()):
        stack["grafana_url"] = "https://grafana.example.com:3000"
    if draw(st.booleans()):
        stack["runbook_base_url"] = "https://git.example.com/o/r/-/blob/main/runbooks"
    if draw(st.booleans()):
        stack["lifecycle_api"] = draw(st.booleans())
    components = ["prometheus", "alertmanager", "grafana", "loki", "pushgateway", "blackbox-exporter"]
    if draw(st.booleans()):
        stack["publish"] = draw(
            st.dictionaries(st.sampled_from(components), st.sampled_from(["127.0.0.1", "0.0.0.0", "none"]), max_size=3)
        )
    if draw(st.booleans()):
        which = draw(
            st.lists(st.sampled_from(["prometheus", "alertmanager", "grafana", "loki"]), unique=True, min_size=1)
        )
        ports = draw(st.lists(st.integers(20000, 29999), min_size=len(which), max_size=len(which), unique=True))
        stack["ports"] = dict(zip(which, ports, strict=True))
    if draw(st.booleans()):
        # The exporters that scrape something need their target: they come from exporters: below.
        stack["optional_services"] = draw(st.lists(st.sampled_from(["pushgateway", "blackbox-exporter"]), unique=True))
    if stack["target"] == "host" and draw(st.booleans()):
        stack.update(secrets_dir="/etc/stackgen/secrets", data_dir="/srv/stackgen")
    if draw(st.booleans()):
        # Digest pins (stack.images): a digest from the schema's own pattern, on the image
        # stackgen renders or a mirror's copy of it.
        pinned = draw(st.lists(st.sampled_from(sorted(IMAGES)), unique=True, max_size=4))
        digests = st.from_regex(DIGEST_PATTERN, fullmatch=True)
        mirror = st.sampled_from(["", "mirror.example.com/", "registry.internal:5000/hub/"])
        stack["images"] = {c: f"{draw(mirror)}{IMAGES[c]}@{draw(digests)}" for c in pinned}

    jobs = []
    names_drawn = draw(st.lists(job_names, max_size=5, unique=True))
    probe_names, job_list = names_drawn[3:], names_drawn[:3]
    for i, job_name in enumerate(job_list):
        job: dict[str, Any] = {"name": job_name, "targets": [f"host-{i}.example:{9100 + i}"]}
        auth = draw(st.sampled_from([None, "bearer", "basic"]))
        if auth == "bearer":
            job["bearer_token_file"] = "0scrape-" + draw(secret_files)  # receivers' names start with a letter
        elif auth == "basic":
            job["basic_auth"] = {"username": "prometheus", "password_file": "0scrape-pw-" + draw(secret_files)}
        if auth and draw(st.booleans()):
            job["allow_plain_http_credentials"] = True
        elif auth or draw(st.booleans()):
            job["scheme"] = "https"
            if draw(st.booleans()):
                job["tls"] = {"ca_file": "scrape-ca.pem", "server_name": "host.example"}
                if draw(st.booleans()):
                    job["tls"].update(cert_file="scrape-cert.pem", key_file="scrape-key.pem")
        if draw(st.booleans()):
            job["honor_labels"] = True
        if draw(st.booleans()):
            job["interval"] = dur(draw(st.sampled_from([s for s in (5, 10, 15, 30) if evaluation >= 2 * s])))
        if draw(st.booleans()):
            job["timeout"] = dur(min(scrape, _seconds(job.get("interval", "1h"))))
        if draw(st.booleans()):
            job["metrics_path"] = "/internal/metrics"
        if draw(st.booleans()):
            job["labels"] = draw(labels)
        jobs.append(job)
    probes = []
    for probe_name in probe_names:
        module = draw(st.sampled_from(["http_2xx", "http_2xx_tls", "tcp_connect", "tcp_tls"]))
        target = "https://status.example.com/health" if module.startswith("http") else "db.example:5432"
        probes.append({"name": probe_name, "module": module, "targets": [target]})

    teams = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    services = []
    for i, svc_name in enumerate(draw(st.lists(names, min_size=1, max_size=3, unique=True))):
        svc: dict[str, Any] = {"name": svc_name, "team": draw(st.sampled_from(teams))}
        # Some components only log or only have plain alerts: no SLOs at all.
        slos = draw(st.lists(slo(stack), min_size=0 if i else 1, max_size=3, unique_by=lambda s: s["name"]))
        if slos or draw(st.booleans()):
            svc["slos"] = slos
        if draw(st.booleans()):
            svc["description"] = draw(text)
        job_pool = [j["name"] for j in jobs] + [p["name"] for p in probes]
        if job_pool and draw(st.booleans()):
            svc["jobs"] = draw(st.lists(st.sampled_from(job_pool), unique=True, min_size=1))
        if draw(st.booleans()):
            svc["labels"] = draw(labels)
        del i
        services.append(svc)
    pool = draw(receivers())
    spec: dict[str, Any] = {"version": "stackgen/v1", "stack": stack}
    if jobs:
        spec["scrape_jobs"] = jobs
    if probes:
        spec["probes"] = probes
    if draw(st.booleans()):
        spec["exporters"] = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "postgres": st.just(
                        {"uri": "db:5432/app?sslmode=disable", "user": "exp", "password_file": "pg-pw"}
                    ),
                    "redis": st.just({"address": "redis://cache:6379", "password_file": "redis-pw.json"}),
                    "nginx": st.just({"scrape_uri": "http://web:8080/nginx_status"}),
                    "pushgateway": st.just({"persistence_interval": "1m"}),
                    "blackbox": st.just({}),
                },
            )
        )
    spec["slo_defaults"] = {"period": "30d"}
    spec["services"] = services
    spec["receivers"] = pool
    spec["routing"] = draw(routing(pool, sorted({s["team"] for s in services})))
    spec["logs"] = draw(logs([s["name"] for s in services]))
    severities = list(spec["routing"]["severities"])
    alerts = draw(plain_alerts([s["name"] for s in services], [j["name"] for j in jobs], severities))
    if "status_page" not in spec["routing"]:
        for alert in alerts:  # an impact needs a status page to go to
            alert.pop("impact", None)
    if alerts:
        spec["alerts"] = alerts
    # A pack needs the component it watches: node always, cAdvisor on docker, the others when run.
    runs = set(spec.get("exporters", {})) | ({"blackbox"} if probes else set())
    runs |= {"pushgateway" if s == "pushgateway" else "blackbox" for s in stack.get("optional_services", [])}
    allowed = ["node", *(["cadvisor"] if stack["target"] == "docker" else []), *sorted(runs)]
    if draw(st.booleans()):
        packs = draw(st.lists(st.sampled_from(allowed), unique=True, max_size=3))
        spec["alert_packs"] = {
            p: ({"team": draw(st.sampled_from(teams))} if draw(st.booleans()) else {}) for p in packs
        }
    return spec


@st.composite
def plain_alerts(draw: st.DrawFn, services: list[str], jobs: list[str], severities: list[str]) -> list[dict[str, Any]]:
    """Plain alerts on the spec's own jobs (names drawn from the schema's pattern, hyphens and
    all), some with a promtool test whose expected labels carry the job name back."""
    out = []
    for name in draw(st.lists(alert_names, max_size=3, unique=True)):
        alert: dict[str, Any] = {"name": name, "severity": draw(st.sampled_from(severities))}
        job = draw(st.sampled_from(jobs)) if jobs and draw(st.booleans()) else None
        if job is None and draw(st.booleans()):
            alert["logql"] = (
                f'sum(count_over_time({{service={pq(draw(st.sampled_from(services)))}}} |= "timeout" [5m])) > 3'
            )
        else:
            selector = f"up{{job={pq(job)}}}" if job else 'up{job="any"}'
            alert["expr"] = f"{selector} == 0"
        alert["summary"] = draw(
            st.sampled_from(["{{ $labels.job }} is down ({{ $value }})", "Target down", "{{ $value | humanize }} down"])
        )
        if draw(st.booleans()):
            alert["description"] = draw(text.filter(lambda s: "{{" not in s and "}}" not in s))
        if draw(st.booleans()):
            alert["for"] = "5m"
        if draw(st.booleans()):
            alert["service"] = draw(st.sampled_from(services))
        if draw(st.booleans()):
            alert["category"] = draw(category_names)
        if draw(st.booleans()):
            alert["impact"] = draw(st.sampled_from(["outage", "degraded"]))
        if draw(st.booleans()):
            alert["labels"] = draw(labels)
        if "expr" in alert and draw(st.booleans()):
            series_job = job or "any"
            alert["tests"] = [
                {
                    "input_series": [{"series": f'up{{job={pq(series_job)}, instance="i-1"}}', "values": "0x30"}],
                    "expect": [
                        {"eval_time": "20m", "alerts": [{"labels": {"job": series_job, "instance": "i-1"}, "value": 0}]}
                    ],
                }
            ]
        out.append(alert)
    return out


# ---- Invalid specs: one mutation of a valid spec, and where its error must point.


@dataclass
class Expect:
    """The mutation and where the loader must report it (`path` as the message prints it)."""

    kind: str
    path: tuple[str | int, ...]
    message: str  # a regex the message must match

    def spec_path(self) -> str:
        out = ""
        for part in self.path:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
        return out


def _mappings(node: Any, path: tuple[str | int, ...] = ()) -> list[tuple[tuple[str | int, ...], dict[str, Any]]]:
    out: list[tuple[tuple[str | int, ...], dict[str, Any]]] = []
    if isinstance(node, dict):
        out.append((path, node))
        for k, v in node.items():
            out.extend(_mappings(v, (*path, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.extend(_mappings(v, (*path, i)))
    return out


def _get(spec: dict[str, Any], path: tuple[str | int, ...]) -> Any:
    node: Any = spec
    for part in path:
        node = node[part]
    return node


# Keys a mapping at a path must have; dropping one must be reported at that mapping.
REQUIRED = {
    (): ["version", "stack", "services", "receivers", "routing"],
    ("stack",): ["name"],
    ("services", "*"): ["name", "team"],
    ("services", "*", "slos", "*"): ["name", "objective", "sli"],
    ("receivers", "*"): ["name", "type"],
    ("routing",): ["severities", "default_receiver"],
    ("routing", "severities"): ["critical", "warning", "info"],
    ("routing", "severities", "*"): ["receivers"],
    ("services", "*", "slos", "*", "alerting", "tiers", "*"): ["severity", "long_window"],
    ("logs", "sources", "*"): ["name", "type"],
    ("logs", "alerts", "custom", "*"): ["name", "expr", "severity", "summary"],
}


def _shape(path: tuple[str | int, ...]) -> tuple[str, ...]:
    """The REQUIRED key of a path: list indexes and severity names become '*'."""
    shape = ["*" if isinstance(p, int) else p for p in path]
    if shape[:2] == ["routing", "severities"] and len(shape) == 3:
        shape[2] = "*"
    return tuple(shape)


def _durations(spec: dict[str, Any]) -> list[tuple[str | int, ...]]:
    keys = {
        "scrape_interval",
        "evaluation_interval",
        "metrics_retention",
        "interval",
        "timeout",
        "period",
        "long_window",
        "short_window",
        "group_wait",
        "group_interval",
        "repeat_interval",
        "after",
        "retention",
        "for",
    }
    return [(*p, k) for p, m in _mappings(spec) for k in m if k in keys and isinstance(m[k], str)]


MUTATIONS = (
    "drop-required",
    "wrong-type",
    "out-of-range",
    "unknown-key",
    "inline-secret",
    "dangling-receiver",
    "bad-duration",
    "bad-promql",
    "bad-name",
    "duplicate-name",
    "cross-field",
)


@st.composite
def invalid_case(draw: st.DrawFn, forced_kind: str | None = None) -> tuple[dict[str, Any], Expect]:
    spec = copy.deepcopy(draw(valid_spec()))
    kind = forced_kind or draw(st.sampled_from(MUTATIONS))
    services = spec["services"]
    si = draw(st.sampled_from([i for i, svc in enumerate(services) if svc.get("slos")]))
    ki = draw(st.integers(0, len(services[si]["slos"]) - 1))
    slo_path: tuple[str | int, ...] = ("services", si, "slos", ki)
    slo_ = _get(spec, slo_path)

    if kind == "drop-required":
        candidates = [(p, k) for p, m in _mappings(spec) for k in REQUIRED.get(_shape(p), []) if k in m]
        path, key = draw(st.sampled_from(candidates))
        del _get(spec, path)[key]
        return spec, Expect(kind, path, f"missing required key '{key}'")
    if kind == "wrong-type":
        target, value = draw(
            st.sampled_from(
                [
                    ((*slo_path, "objective"), "high"),
                    ((*slo_path, "objective"), [99]),
                    ((*slo_path, "name"), 7),
                    (("services", si, "slos"), {"name": "x"}),
                    (("services", si, "team"), None),
                    (("stack",), []),
                    (("stack", "lifecycle_api"), "yes"),
                    (("receivers",), "pagerduty"),
                    (("routing", "severities", "critical", "receivers"), "a"),
                    ((*slo_path, "sli"), ["events"]),
                    (("services", si, "labels"), ["a", "b"]),
                    (("logs",), True),
                ]
            )
        )
        _get(spec, target[:-1])[target[-1]] = value
        return spec, Expect(kind, target, r"must be ")
    if kind == "out-of-range":
        target, value, msg = draw(
            st.sampled_from(
                [
                    ((*slo_path, "objective"), 100, "must be below 100"),
                    ((*slo_path, "objective"), 0, "must be above 0"),
                    ((*slo_path, "objective"), -5.5, "must be above 0"),
                    ((*slo_path, "objective"), 100.01, "must be below 100"),
                    (("stack", "ports"), {"grafana": 80}, "must be at least 1024"),
                    (("stack", "ports"), {"loki": 70000}, "must be at most 65535"),
                    (("logs", "ingestion"), {"max_label_names_per_series": 0}, "must be at least 1"),
                ]
            )
        )
        _get(spec, target[:-1])[target[-1]] = value
        if isinstance(value, dict):
            target = (*target, next(iter(value)))
        return spec, Expect(kind, target, msg)
    if kind in ("unknown-key", "inline-secret"):
        # Mappings whose keys are the user's own names (labels, teams, severities, categories).
        open_keys = ("labels", "teams", "publish", "ports", "severities", "categories")
        mappings = [(p, m) for p, m in _mappings(spec) if not (p and p[-1] in open_keys)]
        mappings = [(p, m) for p, m in mappings if not (len(p) >= 2 and p[-2] in ("teams", "categories"))]
        path, mapping = draw(st.sampled_from(mappings))
        if kind == "inline-secret":
            path, mapping = draw(st.sampled_from([(("receivers", i), r) for i, r in enumerate(spec["receivers"])]))
            key = draw(st.sampled_from(["routing_key", "api_key", "password", "token", "webhook_url", "api_url"]))
            mapping[key] = "s3cr3t"
            return spec, Expect(kind, (*path, key), r"inline secret .* is not allowed; .*_file")
        key = draw(st.sampled_from(["bogus", "objectiv", "Name", "x-extra"]))
        mapping[key] = 1
        return spec, Expect(kind, (*path, key), f"unknown key '{key}'")
    if kind == "dangling-receiver":
        routing_ = spec["routing"]
        places: list[tuple[str | int, ...]] = [
            ("routing", "default_receiver"),
            ("routing", "severities", "info", "receivers", 0),
        ]
        if "escalation" in routing_:
            places.append(("routing", "escalation", 0, "receivers", 0))
        if "watchdog" in routing_:
            places.append(("routing", "watchdog", "receiver"))
        if "status_page" in routing_:
            places.append(("routing", "status_page", "receiver"))
        for team, per in routing_.get("teams", {}).items():
            sev = next(iter(per))
            places.append(("routing", "teams", team, sev, 0))
        target = draw(st.sampled_from(places))
        _get(spec, target[:-1])[target[-1]] = "nobody-here"
        return spec, Expect(kind, target, "receiver 'nobody-here' is not defined")
    if kind == "bad-duration":
        target = draw(st.sampled_from(_durations(spec)))
        value = draw(st.sampled_from(["30days", "1h30", "-5m", "0s", "1.5h", "", "5 m", "101y", "1d1d"]))
        _get(spec, target[:-1])[target[-1]] = value
        return spec, Expect(kind, target, r"duration|positive|longer than 100y|not valid")
    if kind == "bad-promql":
        body_kind, body = next(iter(slo_["sli"].items()))
        if body_kind == "events":
            key = draw(st.sampled_from(sorted(body)))
            body[key] = draw(st.sampled_from(["rate(x[", "x{", "sum by (a) (", "x{a=~'('}"]))
            return spec, Expect(kind, (*slo_path, "sli", "events", key), "does not parse|PromQL")
        if body_kind == "raw":
            body["error_ratio"] = draw(st.sampled_from(["1 - avg(x[{{window}}]", "x[5m]"]))
            return spec, Expect(kind, (*slo_path, "sli", "raw", "error_ratio"), "does not parse|window")
        body["selector"] = draw(st.sampled_from(['{job="a"', 'job="a"', '{job=~"("}', '{job="a",,}']))
        return spec, Expect(kind, (*slo_path, "sli", body_kind, "selector"), "does not parse|braces")
    if kind == "bad-name":
        target = draw(
            st.sampled_from(
                [
                    (*slo_path, "name"),
                    ("services", si, "name"),
                    ("services", si, "team"),
                    ("stack", "name"),
                    ("receivers", 0, "name"),
                ]
            )
        )
        too_long = "x" * (64 if target[0] == "receivers" else 31)
        value = draw(st.sampled_from(["Upper", "has space", 'quo"te', "a\nb", too_long, "-lead", "{{x}}", "ünï"]))
        _get(spec, target[:-1])[target[-1]] = value
        return spec, Expect(kind, target, "is not valid|is longer")
    if kind == "duplicate-name":
        choices = []
        if len(services[si]["slos"]) > 1:
            choices.append(("services", si, "slos"))
        if len(services) > 1:
            choices.append(("services",))
        if len(spec["receivers"]) > 1:
            choices.append(("receivers",))
        if len(spec.get("scrape_jobs", [])) > 1:
            choices.append(("scrape_jobs",))
        if not choices:
            services[si]["slos"].append(copy.deepcopy(slo_))
            return spec, Expect(
                kind, ("services", si, "slos", len(services[si]["slos"]) - 1, "name"), "duplicate SLO name"
            )
        where = draw(st.sampled_from(choices))
        items = _get(spec, where)
        items[1]["name"] = items[0]["name"]
        return spec, Expect(kind, (*where, 1, "name"), "duplicate .* name")
    # cross-field: the schema passes, the model must catch it
    case = draw(
        st.sampled_from(
            [
                "tier-longer-than-period",
                "short-not-shorter",
                "eval-too-short",
                "hours-missing",
                "job-undefined",
                "threshold-not-bucket",
                "raw-no-window",
                "both-bad-good",
                "retention-days",
                "s3-no-bucket",
                "file-no-paths",
                "lookahead",
                "replace-template",
                "reserved-label",
                "never-fires",
                "custom-alert-service",
                "status-page-not-webhook",
            ]
        )
    )
    alerting = slo_.setdefault("alerting", {})
    if case == "tier-longer-than-period":
        slo_["period"] = "7d"
        alerting["tiers"] = [{"severity": "page", "long_window": "8d", "short_window": "1h", "burn_rate": 1}]
        return spec, Expect(kind, (*slo_path, "alerting", "tiers", 0), "longer than the SLO period")
    if case == "short-not-shorter":
        alerting["tiers"] = [{"severity": "page", "long_window": "1h", "short_window": "1h", "burn_rate": 2}]
        return spec, Expect(kind, (*slo_path, "alerting", "tiers", 0), "short_window must be shorter")
    if case == "eval-too-short":
        spec["stack"]["scrape_interval"] = "1m"
        spec["stack"]["evaluation_interval"] = "1m"
        return spec, Expect(kind, ("stack", "evaluation_interval"), "at least twice scrape_interval")
    if case == "hours-missing":
        spec["routing"].pop("business_hours", None)
        spec["routing"]["severities"]["warning"]["business_hours_only"] = True
        return spec, Expect(
            kind, ("routing", "severities", "warning", "business_hours_only"), "needs routing.business_hours"
        )
    if case == "job-undefined":
        services[si]["jobs"] = ["no-such-job"]
        return spec, Expect(kind, ("services", si, "jobs", 0), "is not defined under scrape_jobs")
    if case == "threshold-not-bucket":
        slo_["sli"] = {"latency": {"histogram": "h_seconds", "threshold": 0.3, "buckets": [0.1, 0.5]}}
        return spec, Expect(kind, (*slo_path, "sli", "latency", "threshold"), "not a bucket boundary")
    if case == "raw-no-window":
        slo_["sli"] = {"raw": {"error_ratio": "1 - avg(avg_over_time(x[5m]))"}}
        return spec, Expect(kind, (*slo_path, "sli", "raw", "error_ratio"), "placeholder")
    if case == "both-bad-good":
        slo_["sli"] = {"events": {"bad": "x_total", "good": "y_total", "total": "z_total"}}
        return spec, Expect(kind, (*slo_path, "sli", "events"), "exactly one of bad or good")
    if case == "retention-days":
        spec["logs"]["retention"] = "36h"
        return spec, Expect(kind, ("logs", "retention"), "whole days")
    if case == "s3-no-bucket":
        spec["logs"]["storage"] = {"type": "s3"}
        return spec, Expect(kind, ("logs", "storage"), "needs a bucket")
    if case == "file-no-paths":
        spec["logs"]["sources"] = [{"name": "f", "type": "file"}]
        return spec, Expect(kind, ("logs", "sources", 0), "need paths")
    if case == "lookahead":
        spec["logs"]["redaction"] = {"patterns": [{"name": "p", "regex": "(?=x)(y)"}]}
        return spec, Expect(kind, ("logs", "redaction", "patterns", 0, "regex"), "RE2")
    if case == "replace-template":
        spec["logs"]["redaction"] = {"patterns": [{"name": "p", "regex": "k=(\\w+)", "replace": "{{ .Value }}"}]}
        return spec, Expect(kind, ("logs", "redaction", "patterns", 0, "replace"), "Go template")
    if case == "reserved-label":
        key = draw(st.sampled_from(sorted(RESERVED)))
        if draw(st.booleans()):
            alerting["labels"] = {key: "x"}
            return spec, Expect(kind, (*slo_path, "alerting", "labels", key), "is set by stackgen")
        services[si]["labels"] = {key: "x"}
        return spec, Expect(kind, ("services", si, "labels", key), "is set by stackgen")
    if case == "never-fires":
        slo_["objective"] = 90
        alerting["tiers"] = [{"severity": "page", "long_window": "1h", "short_window": "5m", "burn_rate": 14.4}]
        return spec, Expect(kind, (*slo_path, "alerting", "tiers", 0), "can never fire")
    if case == "custom-alert-service":
        spec["logs"].setdefault("alerts", {})["custom"] = [
            {
                "name": "X",
                "expr": 'sum(rate({a="b"}[5m])) > 1',
                "severity": "info",
                "summary": "s",
                "service": "zz-none",
            }
        ]
        return spec, Expect(kind, ("logs", "alerts", "custom", 0, "service"), "is not defined")
    kinds = {r["name"]: r["type"] for r in spec["receivers"]}
    other = next((n for n, t in kinds.items() if t != "webhook"), None)
    if other is None:
        spec["receivers"].append({"name": "pd-x", "type": "pagerduty", "routing_key_file": "k"})
        other = "pd-x"
    spec["routing"]["status_page"] = {"receiver": other}
    return spec, Expect(kind, ("routing", "status_page", "receiver"), "must be a webhook receiver")
