"""logs: -> Logs (storage, retention, sources and their formats, redaction, log alerts)."""

from __future__ import annotations

import re
from typing import Any

from stackgen import logql, promql
from stackgen.model.base import BuilderBase, Path_, pairs
from stackgen.model.redaction import builtin_names, builtin_patterns, re2_incompatibility
from stackgen.model.types import LogAlert, Logs, LogSource, RedactionPattern, stream_labels


class LogsBuilder(BuilderBase):
    def build_logs(self, raw: dict[str, Any], services: set[str], severities: tuple[str, ...]) -> Logs:
        p: Path_ = ("logs",)
        retention = self.duration(raw.get("retention"), (*p, "retention"), 90 * 86400)
        if retention % 86400:
            self.fail(
                (*p, "retention"),
                "Loki retention works in whole days (24h index periods); use e.g. 90d",
            )
        overrides = []
        for i, o in enumerate(raw.get("retention_overrides", [])):
            period = self.duration(o["period"], (*p, "retention_overrides", i, "period"), 7 * 86400)
            if period % 86400:
                self.fail((*p, "retention_overrides", i, "period"), "must be whole days")
            err = promql.matchers_error(o["selector"])
            if err:
                self.fail(
                    (*p, "retention_overrides", i, "selector"), f'a stream selector such as {{level="debug"}}: {err}'
                )
            overrides.append((o["selector"], period, int(o.get("priority", 1))))
        storage = dict(raw.get("storage", {"type": "filesystem"}))
        stype = storage.pop("type")
        if stype != "filesystem" and "bucket" not in storage:
            self.fail((*p, "storage"), f"{stype} storage needs a bucket")
        sources = []
        default_format = raw.get("format", "json")
        self.unique(raw.get("sources", []), (*p, "sources"), "log source")
        for i, s in enumerate(raw.get("sources", [])):
            sp: Path_ = (*p, "sources", i)
            if s["type"] == "file" and "paths" not in s:
                self.fail(sp, "file sources need paths")
            if s.get("service") and s["service"] not in services:
                self.fail((*sp, "service"), f"service {s['service']!r} is not defined under services")
            fmt = s.get("format", default_format)
            cri = bool(s.get("cri", False))
            if fmt == "cri":  # CRI-wrapped JSON, the usual Kubernetes case
                fmt, cri = "json", True
            if (fmt == "regex") != ("regex" in s):
                self.fail(sp, "format: regex goes with a regex (named groups: level, ts), and only with it")
            if "regex" in s:
                err = re2_incompatibility(s["regex"], need_group=False)
                if err:
                    self.fail((*sp, "regex"), err)
                elif not re.search(r"\(\?P<(level|ts)>", s["regex"]):
                    self.fail((*sp, "regex"), "name the groups stackgen reads: (?P<level>...) and/or (?P<ts>...)")
            sources.append(
                LogSource(
                    s["name"],
                    s["type"],
                    tuple(s.get("paths", [])),
                    s.get("service"),
                    pairs(s.get("labels")),
                    format=fmt,
                    cri=cri,
                    regex=s.get("regex"),
                )
            )
        if not raw.get("sources"):
            cri = default_format == "cri"
            sources = [LogSource("docker", "docker", (), None, (), format="json" if cri else default_format, cri=cri)]
        redaction_raw = raw.get("redaction", {})
        patterns = []
        for i, pat in enumerate(redaction_raw.get("patterns", [])):
            err = re2_incompatibility(pat["regex"])
            if err:
                self.fail((*p, "redaction", "patterns", i, "regex"), err)
            if re.search(r"\{\{|\}\}", pat.get("replace", "")):
                # Promtail and Alloy run `replace` as a Go template per match: {{ .Value }} would put
                # the secret back, and a template that does not parse silently skips the redaction.
                self.fail(
                    (*p, "redaction", "patterns", i, "replace"),
                    "'{{' and '}}' are not allowed: the log agents run replace as a Go template",
                )
            patterns.append(RedactionPattern(pat["name"], pat["regex"], pat.get("replace", "<redacted>")))
        builtin = builtin_names(redaction_raw.get("builtin"))
        alerts_raw = raw.get("alerts", {})
        for key in ("error_rate", "auth_failures", "panics", "db_errors"):
            if "for" in alerts_raw.get(key, {}):  # the Loki renderer parses it: check it here
                self.duration(alerts_raw[key]["for"], (*p, "alerts", key, "for"), 300)
            if "severity" in alerts_raw.get(key, {}):
                self.check_severity(alerts_raw[key]["severity"], (*p, "alerts", key, "severity"), severities)
        builtin_alerts = tuple(
            (k, pairs(alerts_raw.get(k, {})))
            for k in ("error_rate", "auth_failures", "panics", "db_errors")
            if alerts_raw.get(k, {}).get("enabled", True)
        )
        custom = []
        for i, a in enumerate(alerts_raw.get("custom", [])):
            self.check_severity(a["severity"], (*p, "alerts", "custom", i, "severity"), severities)
            if a.get("service") and a["service"] not in services:
                self.fail(
                    (*p, "alerts", "custom", i, "service"),
                    f"service {a['service']!r} is not defined",
                )
            for problem in logql.problems(a["expr"], stream_labels(sources)):
                self.fail((*p, "alerts", "custom", i, "expr"), f"LogQL: {problem}")
            custom.append(
                LogAlert(
                    a["name"],
                    a["expr"].strip(),
                    self.duration(a.get("for"), (*p, "alerts", "custom", i, "for"), 0),
                    a["severity"],
                    a.get("category", "logs"),
                    a.get("service"),
                    a["summary"],
                )
            )
        return Logs(
            agent=raw.get("agent", "promtail"),
            retention=retention,
            retention_overrides=tuple(overrides),
            storage_type=stype,
            storage=pairs(storage),
            ingestion=pairs(raw.get("ingestion")),
            sources=tuple(sources),
            pipeline=pairs(raw.get("pipeline")),
            redaction=tuple(builtin_patterns(builtin)) + tuple(patterns),
            redaction_builtins=builtin,
            builtin_alerts=builtin_alerts,
            custom_alerts=tuple(custom),
        )
