"""`stackgen import openslo FILE...`: OpenSLO v1 documents (SLO, SLI, AlertPolicy,
AlertCondition, DataSource, Service) -> stackgen services, written as commented YAML.

What carries over: each SLO (one per objective) with its service, name, description,
objective (target or targetPercent), rolling period, and a ratio SLI whose metric source is
Prometheus-compatible (inline or through a DataSource) as an events SLI: a selector stays a
selector, `sum(<selector>)` becomes the selector (stackgen sums), `sum(rate(<selector>[5m]))`
gets a {{window}} placeholder. Burn-rate alert conditions become tiers (lookbackWindow ->
long_window, threshold -> burn_rate, severity page-like -> page, else ticket).

What does not, said in a comment where it stood: time-slice budgeting (stackgen budgets
events, i.e. Occurrences), calendar-aligned windows (imported as rolling), alertAfter,
alertWhen* flags and notification targets (routing is per severity and team here), gauges
(counter: false), threshold metrics and queries for other metric sources. Those SLIs are
written with placeholder series and a TODO naming the source query, so the spec loads and
SLOMetricsAbsent says so until you replace them. Composite SLOs stop the import with their
location.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import promql_parser

from stackgen.durations import format_duration
from stackgen.errors import Problem, SpecError
from stackgen.importers import Imported, _field, _path_text, _q, _where, read_documents, stackgen_name
from stackgen.slo_math import num

KINDS = ("SLO", "SLI", "AlertPolicy", "AlertCondition", "DataSource", "Service", "AlertNotificationTarget")
PROMETHEUS_TYPES = {"prometheus", "thanos", "mimir", "cortex", "victoriametrics"}
PAGE_SEVERITIES = {"page", "critical", "sev1", "sev-1", "p1", "high", "urgent", "emergency"}
# OpenSLO duration shorthand units -> seconds (a month as 30d, a quarter 90d, a year 365d).
UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "M": 30 * 86400, "Q": 90 * 86400, "Y": 365 * 86400}


@dataclass
class Doc:
    body: dict[str, Any]
    file: str
    where: tuple[Any, ...]
    line: Any  # path -> line

    @property
    def name(self) -> str:
        return str((self.body.get("metadata") or {}).get("name", ""))

    @property
    def spec(self) -> dict[str, Any]:
        spec = self.body.get("spec")
        return spec if isinstance(spec, dict) else {}


class Importer:
    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.docs: dict[str, dict[str, Doc]] = {kind: {} for kind in KINDS}

    def fail(self, doc: Doc, path: tuple[Any, ...], message: str) -> None:
        full = (*doc.where, *path)
        self.problems.append(Problem(doc.file, doc.line(full), _path_text(full), message))

    def read(self, paths: list[Path]) -> None:
        for path in paths:
            documents, lines = read_documents(path)
            line = functools.partial(_where, lines)
            for index, body in documents:
                doc = Doc(body if isinstance(body, dict) else {}, str(path), (index,), line)
                if doc.body.get("apiVersion") != "openslo/v1":
                    self.fail(doc, (), "not an OpenSLO v1 document: expected apiVersion: openslo/v1")
                    continue
                kind = doc.body.get("kind")
                if kind not in KINDS:
                    self.fail(doc, ("kind",), f"unknown OpenSLO kind {kind!r} (one of {', '.join(KINDS)})")
                    continue
                self.docs[kind][doc.name] = doc

    # ---- SLOs ------------------------------------------------------------------------------

    def services(self) -> list[Imported]:
        by_service: dict[str, Imported] = {}
        for doc in self.docs["SLO"].values():
            spec = doc.spec
            service_ref = str(spec.get("service") or "")
            if not service_ref:
                self.fail(doc, ("spec",), "an OpenSLO SLO names its service (spec.service)")
                continue
            name = stackgen_name(service_ref)
            out = by_service.get(name)
            if out is None:
                out = by_service[name] = self.service_head(name, service_ref, doc)
            self.slo(out, doc)
        return list(by_service.values())

    def service_head(self, name: str, ref: str, doc: Doc) -> Imported:
        out = Imported(name)
        service = self.docs["Service"].get(ref)
        labels = _labels((service or doc).body.get("metadata", {}).get("labels"))
        team = labels.get("team") or labels.get("owner")
        out.lines.append(f"  # Imported from OpenSLO: service {ref!r} ({doc.file}).")
        out.lines.append(f"  - name: {name}")
        if service and service.spec.get("description"):
            out.lines.append(f"    description: {_q(str(service.spec['description']))}")
        if team:
            out.lines.append(
                f"    team: {stackgen_name(team)}  # from the OpenSLO label {'team' if 'team' in labels else 'owner'}"
            )
        else:
            out.lines.append(
                "    team: unowned  # TODO: OpenSLO names no team (no team or owner label): set the owning team"
            )
        out.lines.append("    slos:")
        return out

    def slo(self, out: Imported, doc: Doc) -> None:
        spec = doc.spec
        objectives = spec.get("objectives") or []
        if not objectives:
            self.fail(doc, ("spec",), "an OpenSLO SLO needs objectives")
            return
        for i, objective in enumerate(objectives):
            if isinstance(objective, dict) and ("indicator" in objective or "indicatorRef" in objective):
                self.fail(
                    doc,
                    ("spec", "objectives", i),
                    "a composite SLO (an indicator per objective) has no stackgen equivalent: "
                    "write one SLO per indicator",
                )
                return
        sli_doc, sli_path = self.indicator(doc)
        for i, objective in enumerate(objectives):
            base = stackgen_name(doc.name or "slo")
            suffix = stackgen_name(str(objective.get("displayName") or i + 1)) if len(objectives) > 1 else ""
            name = f"{base[: 29 - len(suffix)]}-{suffix}".strip("-") if suffix else base
            original = doc.name + (f", objective {objective.get('displayName') or i + 1!r}" if suffix else "")
            out.lines.append(f"      - name: {name}" + (f"  # OpenSLO: {original!r}" if name != doc.name else ""))
            percent = self.objective(doc, objective, ("spec", "objectives", i))
            out.lines.append(f"        objective: {percent}")
            out.lines += self.period(doc)
            description = spec.get("description") or (doc.body.get("metadata") or {}).get("displayName")
            if description:
                out.lines.append(f"        description: {_q(str(description))}")
            out.lines += self.sli(sli_doc, sli_path, name, objective)
            out.lines += self.alerting(doc)
            method = spec.get("budgetingMethod", "Occurrences")
            if method != "Occurrences":
                slices = ", ".join(
                    f"{k} {objective[k]}" for k in ("timeSliceTarget", "timeSliceWindow") if k in objective
                )
                out.lines.append(
                    f"        # Not carried over from OpenSLO: budgetingMethod {method}"
                    + (f" ({slices})" if slices else "")
                    + "; stackgen budgets events (a ratio of counts, OpenSLO's Occurrences)."
                )

    def objective(self, doc: Doc, objective: dict[str, Any], path: tuple[Any, ...]) -> str:
        if "targetPercent" in objective:
            return num(Decimal(str(objective["targetPercent"])))
        if "target" in objective:
            return num(Decimal(str(objective["target"])) * 100)
        self.fail(doc, path, "an objective needs target or targetPercent")
        return "99"

    def period(self, doc: Doc) -> list[str]:
        windows = doc.spec.get("timeWindow") or []
        if not windows:
            return ["        period: 30d  # OpenSLO gave no timeWindow: stackgen's default"]
        window = windows[0] if isinstance(windows[0], dict) else {}
        seconds = _duration(str(window.get("duration", "")))
        if seconds is None:
            self.fail(
                doc, ("spec", "timeWindow", 0, "duration"), f"not an OpenSLO duration: {window.get('duration')!r}"
            )
            return []
        if seconds < 86400:
            hint = " (OpenSLO's month is 1M; 1m is a minute)" if str(window.get("duration")).endswith("m") else ""
            self.fail(
                doc,
                ("spec", "timeWindow", 0, "duration"),
                f"{window.get('duration')} is shorter than a day{hint}: an SLO period in stackgen is 1d or more",
            )
            return []
        text = format_duration(seconds)
        note = f"  # OpenSLO: {window.get('duration')}" if str(window.get("duration")) != text else ""
        calendar = window.get("calendar") or (window.get("isRolling") is False)
        if calendar:
            start = (window.get("calendar") or {}).get("startTime", "")
            zone = (window.get("calendar") or {}).get("timeZone", "")
            where = " ".join(str(x) for x in (start, zone) if x)
            note = (
                f"  # OpenSLO: calendar-aligned {window.get('duration')}"
                + (f" from {where}" if where else "")
                + "; stackgen windows roll, so this is a rolling window of the same length"
            )
        return [f"        period: {text}{note}"]

    def indicator(self, doc: Doc) -> tuple[Doc | None, tuple[Any, ...]]:
        spec = doc.spec
        if isinstance(spec.get("indicator"), dict):
            return doc, ("spec", "indicator")
        ref = spec.get("indicatorRef")
        if ref and ref in self.docs["SLI"]:
            return self.docs["SLI"][ref], ()
        self.fail(
            doc,
            ("spec", "indicatorRef" if ref else "indicator"),
            f"the SLI {ref!r} is not among the documents given" if ref else "an SLO needs indicator or indicatorRef",
        )
        return None, ()

    def sli(self, doc: Doc | None, path: tuple[Any, ...], slo_name: str, objective: dict[str, Any]) -> list[str]:
        if doc is None:
            return self.placeholder(slo_name, "its SLI is missing", [])
        body: Any = doc.body
        for key in path:
            body = body.get(key) if isinstance(body, dict) else None
        spec = (body or {}).get("spec") or {}
        ratio = spec.get("ratioMetric")
        if isinstance(ratio, dict):
            sources = [(k, ratio[k]) for k in ("good", "bad", "total") if isinstance(ratio.get(k), dict)]
            queries = [(k, self.query(doc, source)) for k, source in sources]
            shown = [f"{k}: {q!r}" for k, (q, _) in queries]
            if "raw" in ratio:
                return self.placeholder(
                    slo_name, "a raw (precomputed) ratio metric", [f"raw: {self.query(doc, ratio['raw'])[0]!r}"]
                )
            if ratio.get("counter") is False:
                return self.placeholder(slo_name, "counter: false (gauges of events)", shown)
            reasons = [reason for _, (_, reason) in queries if reason]
            if reasons or len(queries) != 2 or queries[-1][0] != "total":
                return self.placeholder(slo_name, reasons[0] if reasons else "it is not good/bad over total", shown)
            lines = ["        sli:", "          events:"]
            for key, (query, _) in queries:
                lines += _field("            ", key, query)
            return lines
        if isinstance(spec.get("thresholdMetric"), dict):
            query, _ = self.query(doc, spec["thresholdMetric"])
            op, value = objective.get("op"), objective.get("value")
            return self.placeholder(
                slo_name,
                f"a threshold metric ({op} {value}) is a gauge compared per sample; stackgen counts events: "
                "for latency write a latency SLI on a histogram with threshold = a bucket boundary",
                [f"thresholdMetric: {query!r}"],
            )
        return self.placeholder(slo_name, "the SLI has neither ratioMetric nor thresholdMetric", [])

    def query(self, doc: Doc, metric: dict[str, Any]) -> tuple[str, str]:
        """(stackgen query, why it cannot be used or ""), from a metricSource."""
        inner = metric.get("metricSource")
        source: dict[str, Any] = inner if isinstance(inner, dict) else metric
        kind = str(source.get("type") or "")
        ref = source.get("metricSourceRef")
        if ref and ref in self.docs["DataSource"]:
            kind = kind or str(self.docs["DataSource"][ref].spec.get("type") or "")
        query = str((source.get("spec") or {}).get("query") or "").strip()
        if kind.lower() not in PROMETHEUS_TYPES:
            return query, f"metric source type {kind or 'unknown'!r} is not Prometheus"
        return _promql(query)

    def placeholder(self, slo_name: str, reason: str, sources: list[str]) -> list[str]:
        metric = "openslo_todo_" + re.sub(r"[^a-z0-9]+", "_", slo_name)
        lines = [f"        # TODO(import): the SLI could not be carried over: {reason}."]
        for source in sources:
            lines.append(f"        # OpenSLO source: {source}")
        lines += [
            "        # Until these placeholder series are replaced, SLOMetricsAbsent fires for this SLO.",
            "        sli:",
            "          events:",
            f"            bad: {metric}_bad_total",
            f"            total: {metric}_total",
        ]
        return lines

    def alerting(self, doc: Doc) -> list[str]:
        policies = doc.spec.get("alertPolicies") or []
        tiers: list[str] = []
        notes: list[str] = []
        seen: set[int] = set()
        for i, entry in enumerate(policies):
            policy = self.resolve(doc, entry, "AlertPolicy", "alertPolicyRef", ("spec", "alertPolicies", i))
            if policy is None:
                continue
            pdoc, pbody, ppath = policy
            pspec = pbody.get("spec") or {}
            flags = [k for k in ("alertWhenNoData", "alertWhenResolved") if pspec.get(k)]
            if flags:
                notes.append(f"{', '.join(flags)} (SLOMetricsAbsent covers no data; receivers send resolved)")
            if pspec.get("notificationTargets"):
                notes.append("notificationTargets (stackgen routes by severity and team: see routing)")
            for j, entry2 in enumerate(pspec.get("conditions") or []):
                found = self.resolve(pdoc, entry2, "AlertCondition", "conditionRef", (*ppath, "spec", "conditions", j))
                if found is None:
                    continue
                cdoc, cbody, cpath = found
                tier = self.tier(cdoc, cbody, cpath, seen, notes)
                if tier:
                    tiers.append(tier)
        lines = []
        if tiers:
            lines += ["        alerting:", "          tiers:", *tiers]
        elif not policies:
            lines.append("        # OpenSLO gave no alert policy: stackgen's default tiers (the workbook's) apply.")
        for note in dict.fromkeys(notes):
            lines.append(f"        # Not carried over from OpenSLO: {note}.")
        return lines

    def resolve(
        self, doc: Doc, entry: Any, kind: str, ref_key: str, path: tuple[Any, ...]
    ) -> tuple[Doc, dict[str, Any], tuple[Any, ...]] | None:
        """An inline object or a reference to a document of `kind`: (its doc, body, path)."""
        if isinstance(entry, dict) and entry.get(ref_key):
            target = self.docs[kind].get(entry[ref_key])
            if target is None:
                self.fail(doc, (*path, ref_key), f"the {kind} {entry[ref_key]!r} is not among the documents given")
                return None
            return target, target.body, ()
        if isinstance(entry, dict) and isinstance(entry.get("spec"), dict):
            return doc, entry, path
        self.fail(doc, path, f"expected an inline {kind} or {ref_key}")
        return None

    def tier(
        self, doc: Doc, body: dict[str, Any], path: tuple[Any, ...], seen: set[int], notes: list[str]
    ) -> str | None:
        spec = body.get("spec") or {}
        condition = spec.get("condition") or {}
        at = (*path, "spec", "condition")
        if condition.get("kind", "burnrate") != "burnrate":
            self.fail(doc, (*at, "kind"), f"alert condition kind {condition.get('kind')!r}: only burnrate exists")
            return None
        window = _duration(str(condition.get("lookbackWindow", "")))
        if window is None or window < 120:
            self.fail(doc, (*at, "lookbackWindow"), "a burn-rate condition needs a lookbackWindow of 2m or more")
            return None
        if window in seen:
            notes.append(f"a second condition on the {condition.get('lookbackWindow')} window (one tier per window)")
            return None
        seen.add(window)
        threshold = condition.get("threshold")
        if not isinstance(threshold, int | float) or threshold <= 0:
            self.fail(doc, (*at, "threshold"), "a burn-rate condition needs a positive threshold")
            return None
        if condition.get("op") in ("lt", "lte"):
            notes.append(f"op {condition['op']} (a burn-rate alert fires above its threshold: read as gt)")
        if condition.get("alertAfter"):
            notes.append(f"alertAfter {condition['alertAfter']} (the short window keeps blips from alerting)")
        severity = "page" if str(spec.get("severity", "")).lower() in PAGE_SEVERITIES else "ticket"
        short = max(60, window // 12 // 60 * 60)
        name = body.get("metadata", {}).get("name") or ""
        return (
            f"            - {{severity: {severity}, long_window: {format_duration(window)}, "
            f"short_window: {format_duration(short)}, "
            f"burn_rate: {_q(threshold)}}}  # OpenSLO {name or 'condition'}: severity {spec.get('severity')!r}"
        )


def _labels(raw: Any) -> dict[str, str]:
    if isinstance(raw, dict):
        return {str(k): str(v[0] if isinstance(v, list) and v else v) for k, v in raw.items()}
    return {}


def _duration(text: str) -> int | None:
    match = re.fullmatch(r"(\d+)([mhdwMQY])", text.strip())
    return int(match.group(1)) * UNITS[match.group(2)] if match else None


_RANGE = re.compile(r"\[[0-9smhdwy]+\]")


def _promql(query: str) -> tuple[str, str]:
    """A Prometheus query as stackgen's events SLI takes it: a selector, or a query with a
    {{window}} placeholder. ("", reason) when it is neither."""
    try:
        node: Any = promql_parser.parse(query)
    except ValueError as err:
        return query, f"the query does not parse as PromQL: {err}"
    kind = type(node).__name__
    if kind == "VectorSelector":
        return query, ""
    if kind == "AggregateExpr" and str(node.op).lower().endswith("sum") and not node.modifier:
        inner = type(node.expr).__name__
        if inner == "VectorSelector":
            return str(node.expr), ""  # stackgen sums the selector's rate itself
    ranges = _RANGE.findall(query)
    if ranges and len(set(ranges)) == 1:
        return _RANGE.sub("[{{window}}]", query), ""
    return query, "the query is neither a selector nor a rate over one range"


def import_openslo(paths: list[Path]) -> list[Imported]:
    """Every service of the OpenSLO SLOs in paths; SpecError (located) on what cannot be
    carried over."""
    importer = Importer()
    importer.read(paths)
    services = importer.services() if not importer.problems else []
    if not importer.docs["SLO"] and not importer.problems:
        importer.problems.append(Problem(str(paths[0]), 0, "", "no OpenSLO SLO among the documents given"))
    if importer.problems:
        raise SpecError(importer.problems)
    return services
