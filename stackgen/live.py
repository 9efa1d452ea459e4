"""`stackgen check --prometheus URL`: ask a running Prometheus whether the spec's SLIs will
measure anything. A render cannot know what series exist; these mistakes render cleanly
and make an SLO silently wrong:

- a total (or histogram, or availability metric) selector that matches no series: the SLO
  reads nothing;
- a bad (or good) selector that never matched within the period: `or vector(0)` makes the
  SLO always perfect (a misspelt metric never pages) - or, for good, always failing;
- a latency threshold that is no `le` of the histogram: no bucket matches, every request
  counts as slow, and the SLO pages as soon as traffic flows;
- a scrape job of the spec with no target up;
- a retention shorter than an SLO's period: the long windows and the budget read less
  history than they claim.

Read-only: only GET on /api/v1/{series,labels,label/le/values,targets,status/runtimeinfo}.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from stackgen import promql
from stackgen.durations import format_duration, parse_duration
from stackgen.errors import UsageError
from stackgen.model import SLO, Spec
from stackgen.promql import join_matchers

NOW_WINDOW = 600  # "matches series now": seen in the last 10 minutes


@dataclass(frozen=True)
class Finding:
    subject: str  # service/slo, a scrape job, or the server
    check: str
    status: str  # ok | FAIL | warn
    detail: str


class PrometheusAPI:
    """The few read-only endpoints the checks need, with an optional bearer token."""

    def __init__(self, url: str, bearer_token_file: Path | None = None, timeout: float = 15) -> None:
        if not re.match(r"^https?://", url):
            raise UsageError(f"--prometheus must be an http(s) URL, e.g. http://127.0.0.1:9090, not {url!r}")
        self.base = url.rstrip("/")
        self.timeout = timeout
        self.headers = {"Accept": "application/json"}
        if bearer_token_file is not None:
            try:
                token = bearer_token_file.read_text().strip()
            except OSError as err:
                raise UsageError(f"{bearer_token_file}: {err.strerror}; --bearer-token-file names a file") from None
            self.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, params: list[tuple[str, str]] | None = None) -> Any:
        url = f"{self.base}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
        request = urllib.request.Request(url, headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")[:300]
            raise UsageError(f"{self.base}{path}: HTTP {err.code} {detail}".strip()) from None
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            raise UsageError(f"cannot reach Prometheus at {self.base}: {reason}") from None
        if body.get("status") != "success":
            raise UsageError(f"{self.base}{path}: {body.get('error', body)}")
        return body["data"]

    def series(self, selector: str, lookback: int) -> list[dict[str, str]]:
        end = time.time()
        params = [("match[]", selector), ("start", f"{end - lookback:.3f}"), ("end", f"{end:.3f}")]
        return list(self.get("/api/v1/series", params))

    def label_values(self, label: str, selector: str, lookback: int) -> list[str]:
        end = time.time()
        params = [("match[]", selector), ("start", f"{end - lookback:.3f}"), ("end", f"{end:.3f}")]
        return list(self.get(f"/api/v1/label/{label}/values", params))


def vector_selectors(expr: str) -> list[str]:
    """Every series selector in a PromQL expression ({{window}} filled in), as text."""
    return sorted({str(node) for node in promql.selector_nodes(expr)})


def parse_retention(text: str) -> int | None:
    """Seconds in runtimeinfo's storageRetention ("15d", "30d or 512MiB"); None if only a
    size limits it."""
    try:
        return parse_duration(text.split(" or ")[0].strip())
    except ValueError:
        return None


def le_values(values: list[str]) -> list[Decimal]:
    out = []
    for value in values:
        try:
            number = Decimal(value)
        except InvalidOperation:
            continue  # +Inf
        if number.is_finite():
            out.append(number)
    return sorted(out)


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


class LiveCheck:
    def __init__(self, spec: Spec, api: PrometheusAPI) -> None:
        self.spec = spec
        self.api = api
        self.findings: list[Finding] = []
        self.retention: int | None = None

    def add(self, subject: str, check: str, ok: bool, detail: str, warn: bool = False) -> None:
        self.findings.append(Finding(subject, check, "ok" if ok else "warn" if warn else "FAIL", detail))

    def run(self) -> list[Finding]:
        self.check_retention()
        for slo in self.spec.slos:
            self.check_slo(slo)
        self.check_targets()
        return self.findings

    def check_retention(self) -> None:
        info = self.api.get("/api/v1/status/runtimeinfo")
        text = str(info.get("storageRetention", ""))
        self.retention = parse_retention(text)
        longest = max((slo.period for slo in self.spec.slos), default=0)
        if self.retention is None:
            self.add("prometheus", "retention", True, f"{text or 'unknown'}: no time limit", warn=True)
            return
        short = [slo for slo in self.spec.slos if slo.period > self.retention]
        if short:
            names = ", ".join(f"{s.service}/{s.name} ({format_duration(s.period)})" for s in short[:5])
            self.add(
                "prometheus",
                "retention covers every SLO period",
                False,
                f"retention {text} is shorter than the period of {names}: "
                "the period window and the budget read less history than they claim; "
                "raise --storage.tsdb.retention.time",
            )
        else:
            self.add(
                "prometheus",
                "retention covers every SLO period",
                True,
                f"retention {text} >= longest period {format_duration(longest)}",
            )

    def lookback(self, slo: SLO) -> int:
        return min(slo.period, self.retention) if self.retention else slo.period

    def present(self, subject: str, role: str, selector: str, lookback: int, consequence: str) -> bool:
        """Whether selector matched any series within lookback; records the finding."""
        found = self.api.series(selector, lookback)
        when = "now" if lookback == NOW_WINDOW else f"in the last {format_duration(lookback)}"
        if found:
            self.add(
                subject, f"{role} matches series", True, f"{_plural(len(found), 'series', 'series')} {when}: {selector}"
            )
            return True
        self.add(subject, f"{role} matches series", False, f"{selector} matched no series {when}: {consequence}")
        return False

    def check_slo(self, slo: SLO) -> None:
        subject = f"{slo.service}/{slo.name}"
        sli = slo.sli
        ever = self.lookback(slo)
        reads_nothing = "the SLO reads nothing (check the metric name and labels)"
        if sli.kind == "events":
            assert sli.total is not None
            for selector in vector_selectors(sli.total):
                self.present(subject, "total", selector, NOW_WINDOW, reads_nothing)
            if sli.bad is not None:
                for selector in vector_selectors(sli.bad):
                    self.present(
                        subject,
                        "bad",
                        selector,
                        ever,
                        "`or vector(0)` counts that as no errors, so this SLO is always met and never "
                        "pages: is the metric or a label misspelt?",
                    )
            if sli.good is not None:
                for selector in vector_selectors(sli.good):
                    self.present(
                        subject, "good", selector, ever, "every event counts as bad, so this SLO pages on any traffic"
                    )
        elif sli.kind == "latency":
            assert sli.histogram is not None and sli.threshold is not None
            if sli.native:
                selector = f"{sli.histogram}{join_matchers(sli.selector)}"
                self.present(subject, "histogram", selector, NOW_WINDOW, reads_nothing)
                return
            count = f"{sli.histogram}_count{join_matchers(sli.selector)}"
            if not self.present(subject, "histogram", count, NOW_WINDOW, reads_nothing):
                return
            bucket = f"{sli.histogram}_bucket{join_matchers(sli.selector)}"
            boundaries = le_values(self.api.label_values("le", bucket, NOW_WINDOW))
            if sli.threshold in boundaries:
                self.add(subject, "threshold is a bucket boundary", True, f'le="{sli.threshold}" exists')
            else:
                below = [b for b in boundaries if b < sli.threshold]
                above = [b for b in boundaries if b > sli.threshold]
                near = ", ".join(str(b) for b in ([below[-1]] if below else []) + ([above[0]] if above else []))
                self.add(
                    subject,
                    "threshold is a bucket boundary",
                    False,
                    f"{sli.threshold}s is no le of {sli.histogram} "
                    f"({_plural(len(boundaries), 'boundary', 'boundaries')}"
                    + (f"; nearest: {near}" if near else "")
                    + "): no bucket matches, every request counts as slow and the SLO pages on any traffic",
                )
        elif sli.kind == "availability":
            selector = f"{sli.metric}{join_matchers(sli.selector)}"
            self.present(subject, sli.metric or "availability", selector, NOW_WINDOW, reads_nothing)
        else:
            assert sli.error_ratio is not None
            for selector in vector_selectors(sli.error_ratio):
                self.present(subject, "error_ratio", selector, NOW_WINDOW, reads_nothing)

    def check_targets(self) -> None:
        data = self.api.get("/api/v1/targets", [("state", "active")])
        by_job: dict[str, list[dict[str, Any]]] = {}
        for target in data.get("activeTargets", []):
            by_job.setdefault(target.get("labels", {}).get("job", ""), []).append(target)
        jobs = [job.name for job in self.spec.scrape_jobs] + [probe.name for probe in self.spec.probes]
        for job in jobs:
            targets = by_job.get(job, [])
            up = [t for t in targets if t.get("health") == "up"]
            if not targets:
                self.add(
                    f"job {job}",
                    "targets up",
                    False,
                    "this Prometheus scrapes no target of this job: is it running the rendered prometheus.yml?",
                )
            elif not up:
                errors = sorted({t.get("lastError") or t.get("health", "") for t in targets})
                self.add(f"job {job}", "targets up", False, f"0 of {len(targets)} up: {'; '.join(errors)[:200]}")
            elif len(up) < len(targets):
                down = [t.get("scrapeUrl", "") for t in targets if t.get("health") != "up"]
                self.add(
                    f"job {job}",
                    "targets up",
                    True,
                    f"{len(up)} of {len(targets)} up; down: {', '.join(down)[:200]}",
                    warn=True,
                )
            else:
                self.add(f"job {job}", "targets up", True, f"{len(up)} of {len(targets)} up")


def table(findings: list[Finding]) -> str:
    rows = [("RESULT", "SUBJECT", "CHECK", "DETAIL")] + [(f.status, f.subject, f.check, f.detail) for f in findings]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join("  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3] for r in rows)


def failed(findings: list[Finding]) -> int:
    return sum(f.status == "FAIL" for f in findings)
