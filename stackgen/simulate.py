"""`stackgen simulate --scenario FILE`: an incident end to end, on the real engines.

A scenario names incidents (SLO, start, duration, error ratio). stackgen synthesises the SLIs'
series for them after a warm-up of steady traffic (so every window reads a full history),
evaluates the rendered rule files over them with promtool (the SLO rules and the stack's
escalation rules, exactly as rendered), and reads back from the engine when each alert
fired and stopped: ALERTS{alertstate="firing"} through subqueries, whose values promtool
prints exactly. Each firing alert's labels go through the rendered routing with
`amtool config routes test`; inhibition applies the rendered inhibit_rules to the firing
spans. The timeline is printed, and `expect:` entries make it a test: exit 1 when one fails.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from stackgen import conventions as cv
from stackgen.durations import format_duration, parse_duration
from stackgen.errors import StackgenError, ToolMissingError, UsageError
from stackgen.model import SLO, Spec
from stackgen.render.common import yaml_text
from stackgen.render.rule_groups import group_sizes
from stackgen.render.rule_tests import Scenario, at, input_series


class ScenarioError(UsageError):
    """A scenario file that cannot be simulated: where and what to do."""


@dataclass(frozen=True)
class Incident:
    slo: SLO
    start: int  # seconds after the scenario's start (the warm-up comes before)
    duration: int
    error: Decimal


@dataclass(frozen=True)
class Expectation:
    index: int
    alert: str | None
    slo: str | None  # service/slo
    receiver: str | None
    fires: bool
    within: int | None  # seconds after the first incident's start
    text: str


@dataclass
class Span:
    """One alert's firing, as the engine evaluated it (seconds from the scenario's start)."""

    labels: dict[str, str]
    first: int
    last: int
    evaluations: int
    receivers: list[str] = field(default_factory=list)
    inhibited_by: str | None = None

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")

    def continuous(self, interval: int) -> bool:
        return self.evaluations == (self.last - self.first) // interval + 1


@dataclass
class Result:
    spans: list[Span]
    failures: list[str]
    warmup: int
    end: int
    interval: int
    incidents: list[tuple[int, int]] = field(default_factory=list)  # (start, stop) of each
    replayed: bool = False  # real history from a Prometheus, not a scenario


def _duration(value: Any, where: str) -> int:
    try:
        return parse_duration(str(value))
    except ValueError as err:
        raise ScenarioError(f"{where}: {err}") from None


def _ratio(value: Any, where: str) -> Decimal:
    text = str(value).strip()
    try:
        ratio = Decimal(text[:-1]) / 100 if text.endswith("%") else Decimal(text)
    except InvalidOperation:
        raise ScenarioError(f"{where}: {value!r} is no error ratio: write 14% or 0.14") from None
    if not 0 < ratio <= 1:
        raise ScenarioError(f"{where}: an error ratio is in (0, 100%], not {value!r}")
    return ratio


def load_scenario(path: Path, spec: Spec) -> tuple[str, int, list[Incident], list[Expectation]]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ScenarioError(f"{path}: cannot read the scenario: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("incidents"), list) or not data["incidents"]:
        raise ScenarioError(f"{path}: a scenario is a mapping with incidents: [{{slo, start, duration, errors}}, ...]")
    slos = {f"{s.service}/{s.name}": s for s in spec.slos}
    incidents = []
    for i, raw in enumerate(data["incidents"]):
        where = f"{path}: incidents[{i}]"
        if not isinstance(raw, dict) or set(raw) - {"slo", "start", "duration", "errors"}:
            raise ScenarioError(f"{where}: give slo, start, duration and errors (nothing else)")
        slo = slos.get(str(raw.get("slo")))
        if slo is None:
            raise ScenarioError(f"{where}.slo: {raw.get('slo')!r} is no SLO of the spec; one of {', '.join(slos)}")
        incidents.append(
            Incident(
                slo,
                0 if str(raw.get("start", "0s")) in ("0", "0s") else _duration(raw["start"], f"{where}.start"),
                _duration(raw.get("duration"), f"{where}.duration"),
                _ratio(raw.get("errors"), f"{where}.errors"),
            )
        )
    end = max(i.start + i.duration for i in incidents)
    end = _duration(data["duration"], f"{path}: duration") if "duration" in data else end + 3600
    expectations = []
    for i, raw in enumerate(data.get("expect") or []):
        where = f"{path}: expect[{i}]"
        if (
            not isinstance(raw, dict)
            or not ({"alert", "receiver"} & set(raw))
            or set(raw)
            - {
                "alert",
                "slo",
                "receiver",
                "fires",
                "within",
            }
        ):
            raise ScenarioError(f"{where}: name an alert or a receiver, with fires (default true) and within")
        if raw.get("slo") is not None and raw["slo"] not in slos:
            raise ScenarioError(f"{where}.slo: {raw['slo']!r} is no SLO of the spec")
        if raw.get("receiver") is not None and raw["receiver"] not in {r.name for r in spec.receivers}:
            raise ScenarioError(f"{where}.receiver: {raw['receiver']!r} is no receiver of the spec")
        within = _duration(raw["within"], f"{where}.within") if "within" in raw else None
        fires = bool(raw.get("fires", True))
        what = raw.get("alert") or f"a notification to {raw.get('receiver')}"
        text = f"{what}{' (' + raw['slo'] + ')' if raw.get('slo') else ''} " + (
            f"fires within {format_duration(within)}" if fires and within else "fires" if fires else "never fires"
        )
        expectations.append(Expectation(i, raw.get("alert"), raw.get("slo"), raw.get("receiver"), fires, within, text))
    return str(data.get("name", path.stem)), end, incidents, expectations


def warmup_for(incidents: list[Incident]) -> int:
    """Steady traffic first, as long as the longest alerting window read, so each window is
    full when the incident starts (the math assumes it)."""
    return max(max(tier.long_window for tier in i.slo.tiers) for i in incidents)


GOT = re.compile(r"^\s*got:\s*(.*)$")
# One sample of a "got:" list: {labels} value, samples joined by ", ".
SAMPLE = re.compile(r'(\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\})\s+([-+0-9.eE]+|NaN|[-+]Inf)')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
QUERY = re.compile(r'^\s*expr: "(.*)", time: ')


def _unquote(text: str) -> str:
    """A Go-quoted label value's content (promtool prints labels %q-style)."""
    return re.sub(r'\\(["\\n])', lambda m: "\n" if m.group(1) == "n" else m.group(1), text)


def _labels(text: str) -> dict[str, str]:
    return {k: _unquote(v) for k, v in LABEL.findall(text)}


def incident_series(spec: Spec, incidents: list[Incident], end: int) -> tuple[list[dict[str, str]], int, int]:
    """Synthesised input series for the incidents: (series, warm-up, input step)."""
    base = spec.stack.base_window
    step = base // 2 if base % 2 == 0 else base
    warmup = warmup_for(incidents)
    total = warmup + end
    series: list[dict[str, str]] = []
    for slo in dict.fromkeys(i.slo for i in incidents):
        mine = [i for i in incidents if i.slo == slo]
        if len(mine) > 1:
            raise ScenarioError(f"one incident per SLO for now: {slo.service}/{slo.name} has {len(mine)}")
        (incident,) = mine
        onset = warmup + incident.start
        sc = Scenario(step=step, end=total, onset=onset, stop=onset + incident.duration, error=incident.error)
        made = input_series(slo, sc)
        if made is None:
            raise ScenarioError(
                f"SLO {slo.service}/{slo.name}: its SLI's series cannot be synthesised (custom PromQL); "
                "simulate the SLOs with events, latency or availability SLIs"
            )
        series += made
    return series, warmup, step


def evaluate(
    spec: Spec,
    files: dict[str, str],
    slos: list[SLO],
    series: list[dict[str, str]],
    timing: tuple[int, int, int],
    work: Path,
) -> list[Span]:
    """Run the SLOs' rule files and the stack's over input series in promtool; the firing
    spans. timing: (warm-up before the timeline, the timeline's length, input step)."""
    warmup, end, step = timing
    base = spec.stack.base_window
    total = warmup + end
    rule_files = [*sorted({cv.rules_file(slo) for slo in slos}), cv.STACK_RULES]
    for path, text in files.items():
        if path.startswith(("prometheus/", "alertmanager/")):
            target = work / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    order = [name for f in rule_files for name, _ in group_sizes(files[f])]
    # Only the scenario itself is read back: the warm-up is steady traffic, and a 3d range
    # of ALERTS at every evaluation exceeds promtool's query sample limit.
    window = f"{at(end + base)}:{at(base)}"
    firing = 'ALERTS{alertstate="firing"}'
    queries = {
        "first": f"min_over_time(timestamp({firing})[{window}])",
        "last": f"max_over_time(timestamp({firing})[{window}])",
        "count": f"count_over_time({firing}[{window}])",
    }
    doc = {
        "rule_files": [f"../{f.removeprefix('prometheus/')}" for f in rule_files],
        "evaluation_interval": at(base),
        "group_eval_order": order,
        "tests": [
            {
                "interval": at(step),
                "input_series": series,
                "promql_expr_test": [{"expr": q, "eval_time": at(total), "exp_samples": []} for q in queries.values()],
            }
        ],
    }
    test = work / "prometheus/simulate/scenario.test.yml"
    test.parent.mkdir(parents=True, exist_ok=True)
    test.write_text(yaml_text(doc))
    try:
        proc = subprocess.run(
            ["promtool", "test", "rules", str(test.relative_to(work / "prometheus"))],
            cwd=work / "prometheus",
            capture_output=True,
            text=True,
            timeout=3600,
        )
    except FileNotFoundError:
        raise ToolMissingError("promtool is not installed: simulate evaluates the rules with it") from None
    if "no file match" in proc.stderr or "no file match" in proc.stdout:
        raise StackgenError(f"promtool did not find the rendered rule files: {proc.stderr.strip()[:500]}")
    values: dict[str, dict[tuple[tuple[str, str], ...], float]] = {k: {} for k in queries}
    current = None
    names = {q: k for k, q in queries.items()}
    for line in (proc.stdout + "\n" + proc.stderr).splitlines():  # promtool reports failures on stderr
        match = QUERY.match(line)
        if match:
            current = names.get(_unquote(match.group(1)))
            continue
        got = GOT.match(line)
        if got and current:
            for sample in SAMPLE.finditer(got.group(1)):
                labels = _labels(sample.group(1))
                labels.pop("__name__", None)
                values[current][tuple(sorted(labels.items()))] = float(sample.group(2))
    if not any(values.values()):  # Watchdog always fires: no sample means promtool did not run
        raise StackgenError(f"promtool could not run the scenario: {(proc.stderr or proc.stdout)[-2000:]}")
    spans = []
    for key, first in values["first"].items():
        labels = dict(key)
        labels.pop("alertstate", None)
        spans.append(
            Span(labels, int(first) - warmup, int(values["last"][key]) - warmup, int(values["count"].get(key, 0)))
        )
    return sorted(spans, key=lambda s: (s.first, s.name, sorted(s.labels.items())))


def route(spans: list[Span], config: Path, work: Path) -> None:
    """Receivers of each span's labels, from the rendered routing tree (amtool)."""
    from stackgen.validate import config_for_amtool, tool_version

    checked, _ = config_for_amtool(config, tool_version("amtool"), work)
    cache: dict[tuple[tuple[str, str], ...], list[str]] = {}
    for span in spans:
        key = tuple(sorted(span.labels.items()))
        if key not in cache:
            argv = ["amtool", "config", "routes", "test", f"--config.file={checked}"]
            argv += [f"{k}={v}" for k, v in key]
            try:
                proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
            except FileNotFoundError:
                raise ToolMissingError("amtool is not installed: simulate routes alerts with it") from None
            if proc.returncode != 0:
                raise StackgenError(f"amtool config routes test failed: {proc.stderr.strip()}")
            cache[key] = [r for r in proc.stdout.strip().split(",") if r]
        span.receivers = cache[key]


MATCHER = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*$')


def _matches(matchers: list[str], labels: dict[str, str]) -> bool:
    for text in matchers:
        found = MATCHER.match(text)
        if not found:
            raise StackgenError(f"simulate cannot read the inhibition matcher {text!r}")
        name, op, value = found.groups()
        actual = labels.get(name, "")
        value = _unquote(value)
        ok = {
            "=": actual == value,
            "!=": actual != value,
            "=~": re.fullmatch(value, actual) is not None,
            "!~": re.fullmatch(value, actual) is None,
        }[op]
        if not ok:
            return False
    return True


def inhibit(spans: list[Span], config: dict[str, Any], interval: int) -> None:
    """Alertmanager drops a target's notifications while a source matching the same rule (and
    equal on its labels) fires: a span whose start falls inside such a source's span is marked."""
    for target in spans:
        for rule in config.get("inhibit_rules") or []:
            if not _matches(rule.get("target_matchers", []), target.labels):
                continue
            for source in spans:
                if source is target or not _matches(rule.get("source_matchers", []), source.labels):
                    continue
                if any(source.labels.get(k, "") != target.labels.get(k, "") for k in rule.get("equal", [])):
                    continue
                # A source that stopped and fired again may have been quiet when the target began.
                if source.first <= target.first <= source.last and source.continuous(interval):
                    target.inhibited_by = source.name
                    break
            if target.inhibited_by:
                break


def check(expectations: list[Expectation], spans: list[Span], incidents: list[Incident]) -> list[str]:
    """Each expectation against the spans; `within` counts from the start of the named SLO's
    incident, or of the first incident."""
    failures = []
    starts = {f"{i.slo.service}/{i.slo.name}": i.start for i in incidents}
    for expect in expectations:
        onset = starts.get(expect.slo or "", min(starts.values()))
        hits = [
            s
            for s in spans
            if (expect.alert is None or s.name == expect.alert)
            and (expect.slo is None or f"{s.labels.get('service')}/{s.labels.get('slo')}" == expect.slo)
            and (expect.receiver is None or (expect.receiver in s.receivers and not s.inhibited_by))
        ]
        if expect.fires:
            if not hits:
                failures.append(f"expect[{expect.index}] {expect.text}: it never did")
            elif expect.within is not None and min(s.first for s in hits) - onset > expect.within:
                late = min(s.first for s in hits) - onset
                failures.append(f"expect[{expect.index}] {expect.text}: first at {_t(late)}")
        elif hits:
            failures.append(
                f"expect[{expect.index}] {expect.text}: it did, at {_t(min(s.first for s in hits) - onset)}"
            )
    return failures


def routed(spec: Spec, files: dict[str, str], spans: list[Span], work: Path) -> list[Span]:
    """The spans without the Watchdog (always firing, by design), with their receivers and
    inhibitions from the rendered alertmanager.yml."""
    spans = [s for s in spans if s.name != cv.ALERT_WATCHDOG]
    if spans:
        route(spans, work / "alertmanager/alertmanager.yml", work)
    inhibit(spans, yaml.safe_load(files["alertmanager/alertmanager.yml"]), spec.stack.base_window)
    return spans


def simulate(spec: Spec, files: dict[str, str], scenario: Path) -> tuple[str, list[str], Result]:
    name, end, incidents, expectations = load_scenario(scenario, spec)
    described = [
        f"incident: {i.slo.service}/{i.slo.name} at {num_percent(i.error)} errors from {_t(i.start)} for "
        f"{format_duration(i.duration)}"
        for i in incidents
    ]
    with tempfile.TemporaryDirectory(prefix="stackgen-simulate-") as tmp:
        work = Path(tmp)
        series, warmup, step = incident_series(spec, incidents, end)
        slos = list(dict.fromkeys(i.slo for i in incidents))
        spans = routed(spec, files, evaluate(spec, files, slos, series, (warmup, end, step), work), work)
    result = Result(spans, check(expectations, spans, incidents), warmup, end, spec.stack.base_window)
    result.incidents = [(i.start, i.start + i.duration) for i in incidents]
    return name, described, result


def num_percent(ratio: Decimal) -> str:
    return f"{(ratio * 100).normalize():f}%"


def _t(seconds: int) -> str:
    return ("-" if seconds < 0 else "+") + format_duration(abs(seconds)) if seconds else "0s"


def timeline(name: str, incidents_text: list[str], result: Result) -> str:
    rows = [("time", "alert", "slo / tier / severity", "level", "receivers", "inhibited by", "stops")]
    for span in result.spans:
        labels = span.labels
        what = "/".join(
            x
            for x in (
                f"{labels.get('service', '')}/{labels.get('slo', '')}".strip("/"),
                labels.get("tier", ""),
                labels.get("severity", ""),
            )
            if x
        )
        stops = (
            "still firing"
            if span.last + result.interval > result.end
            else _t(span.last + result.interval) + ("" if span.continuous(result.interval) else " (intermittent)")
        )
        rows.append(
            (
                _t(span.first),
                span.name,
                what,
                labels.get("escalation_level", ""),
                ", ".join(span.receivers) or "-",
                span.inhibited_by or "",
                stops,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    if result.replayed:
        lines = [f"{name}: times from --from (the server's history from {format_duration(result.warmup)} before it)"]
    else:
        lines = [f"scenario {name}: times from its start (after {format_duration(result.warmup)} of steady traffic)"]
    lines += [f"  {text}" for text in incidents_text]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    if not result.spans:
        lines.append("(no alert fired)")
    for failure in result.failures:
        lines.append(f"FAIL {failure}")
    if not result.failures and not result.replayed:
        lines.append("every expectation met")
    return "\n".join(lines) + "\n"


SEVERITY_COLOURS = {"critical": "#d44a3a", "warning": "#e0a31d", "info": "#3274d9"}


def svg(name: str, result: Result) -> str:
    """The timeline as an SVG: a bar per alert from its first firing to when it stops (colour
    by severity, grey when inhibited), the incidents shaded, receivers beside each bar."""
    from xml.sax.saxutils import escape

    left, width, row, top = 260, 640, 26, 40
    end = result.end

    def x(t: int) -> float:
        return left + width * max(0, min(t, end)) / end

    height = top + row * max(1, len(result.spans)) + 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 420}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        f"<title>stackgen simulate: {escape(name)}</title>",
        f'<text x="10" y="20" font-size="14" font-weight="bold">Scenario {escape(name)}</text>',
    ]
    for start, stop in result.incidents:
        parts.append(
            f'<rect x="{x(start):.1f}" y="{top - 10}" width="{x(stop) - x(start):.1f}" '
            f'height="{row * max(1, len(result.spans)) + 10}" fill="#f2cc0c" fill-opacity="0.25"/>'
        )
    for i, span in enumerate(result.spans):
        y = top + i * row
        stop = end if span.last + result.interval > end else span.last + result.interval
        colour = "#999999" if span.inhibited_by else SEVERITY_COLOURS.get(span.labels.get("severity", ""), "#5a5a5a")
        label = span.name + (
            f" ({span.labels['slo']}, {span.labels.get('tier', '')})" if span.labels.get("slo") else ""
        )
        note = ", ".join(span.receivers) + (f" (inhibited by {span.inhibited_by})" if span.inhibited_by else "")
        parts += [
            f'<text x="10" y="{y + 16}">{escape(label)}</text>',
            f'<rect x="{x(span.first):.1f}" y="{y + 4}" width="{max(2.0, x(stop) - x(span.first)):.1f}" '
            f'height="{row - 8}" fill="{colour}"><title>{escape(_t(span.first))} to {escape(_t(stop))}</title></rect>',
            f'<text x="{left + width + 10}" y="{y + 16}">{escape(note)}</text>',
        ]
    axis = top + row * max(1, len(result.spans)) + 8
    parts.append(f'<line x1="{left}" y1="{axis}" x2="{left + width}" y2="{axis}" stroke="#333"/>')
    ticks = 8
    for k in range(ticks + 1):
        t = end * k // ticks
        parts.append(f'<text x="{x(t):.1f}" y="{axis + 16}" text-anchor="middle">{escape(_t(t))}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


# --- Replay ----------------------------------------------------------------------------------


def raw_selectors(slo: SLO) -> list[str] | None:
    """The raw series an SLO's base rules read, as selectors to fetch; None for custom PromQL."""
    sli = slo.sli
    if sli.kind == "events":
        return [text for text in (sli.total, sli.bad, sli.good) if text]
    if sli.kind == "latency" and not sli.native and sli.histogram:
        return [f"{sli.histogram}_bucket{sli.selector or ''}", f"{sli.histogram}_count{sli.selector or ''}"]
    if sli.kind == "availability" and sli.metric:
        return [f"{sli.metric}{sli.selector or ''}"]
    return None


def _quote(value: str) -> str:
    """A label value inside "...", escaped as PromQL reads it."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def series_text(metric: dict[str, str]) -> str:
    name = metric.get("__name__", "")
    labels = ", ".join(f'{k}="{_quote(v)}"' for k, v in sorted(metric.items()) if k != "__name__")
    return f"{name}{{{labels}}}"


MAX_POINTS = 10_000


def fetched_series(api: Any, selectors: list[str], start: int, end: int, step: int) -> list[dict[str, str]]:
    """Each selector's series between start and end at the input step, as promtool input
    series: one value per step, `_` where the server has none."""
    steps = (end - start) // step + 1
    out: dict[str, list[str]] = {}
    for selector in selectors:
        # Prometheus answers at most 11,000 points per series and query: ask in pieces.
        for first in range(0, steps, MAX_POINTS):
            last = min(steps, first + MAX_POINTS) - 1
            params = [
                ("query", selector),
                ("start", str(start + first * step)),
                ("end", str(start + last * step)),
                ("step", f"{step}s"),
            ]
            for result in api.get("/api/v1/query_range", params)["result"]:
                values = out.setdefault(series_text(result["metric"]), ["_"] * steps)
                for t, v in result["values"]:
                    values[(round(float(t)) - start) // step] = v
    return [{"series": name, "values": " ".join(values)} for name, values in sorted(out.items())]


def replay(spec: Spec, files: dict[str, str], api: Any, start: int, stop: int) -> tuple[list[str], Result]:
    """The rules of the spec over the SLIs' real history between start and stop (epoch
    seconds), with as much history before start as the longest alert window (what the server has)."""
    slos = [slo for slo in spec.slos if raw_selectors(slo)]
    skipped = [f"{slo.service}/{slo.name}" for slo in spec.slos if not raw_selectors(slo)]
    if not slos:
        raise UsageError("no SLO of the spec reads raw series stackgen can fetch (all are custom PromQL)")
    base = spec.stack.base_window
    step = spec.stack.scrape_interval
    warmup = max(max(t.long_window for t in slo.tiers) for slo in slos)
    first = start - warmup
    first -= first % step
    series = [s for slo in slos for s in fetched_series(api, raw_selectors(slo) or [], first, stop, step)]
    notes = [f"replayed {len(series)} series of {len(slos)} SLO(s) from {api.base}"]
    notes += [f"skipped (custom PromQL): {', '.join(skipped)}"] if skipped else []
    end = stop - start
    with tempfile.TemporaryDirectory(prefix="stackgen-replay-") as tmp:
        work = Path(tmp)
        spans = evaluate(spec, files, slos, series, (start - first, end, step), work)
        spans = routed(spec, files, spans, work)
    return notes, Result(spans, [], start - first, end, base, replayed=True)
