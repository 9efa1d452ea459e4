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

import itertools
import math
import re
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import promql_parser
import yaml

from stackgen import conventions as cv
from stackgen import promql
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
    """One phase of an SLO's traffic: from start for duration, this error ratio (for a latency
    SLI, the share slower than its threshold) at this multiple of the steady traffic."""

    slo: SLO
    start: int  # seconds after the scenario's start (the warm-up comes before)
    duration: int
    error: Decimal
    traffic: Decimal = Decimal(1)
    latency: str = ""  # "p50 80ms, p99 2s": how a latency distribution became `error`


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
    incidents: list[tuple[int, int, str]] = field(default_factory=list)  # (start, stop, service/slo) of each
    replayed: bool = False  # real history from a Prometheus, not a scenario
    # Burn rate (window's error ratio / budget) per SLO and window, sampled along the timeline,
    # as the engine recorded it: {"api/error-rate": {"5m": [(t, burn), ...]}}.
    burn: dict[str, dict[str, list[tuple[int, float]]]] = field(default_factory=dict)
    thresholds: dict[str, list[tuple[str, float]]] = field(default_factory=dict)  # per SLO: (tier, burn rate)


def _duration(value: Any, where: str) -> int:
    try:
        return parse_duration(str(value))
    except ValueError as err:
        raise ScenarioError(f"{where}: {err}") from None


def _ratio(value: Any, where: str, zero: bool = False) -> Decimal:
    text = str(value).strip()
    try:
        ratio = Decimal(text[:-1]) / 100 if text.endswith("%") else Decimal(text)
    except InvalidOperation:
        raise ScenarioError(f"{where}: {value!r} is no ratio: write 14% or 0.14") from None
    if ratio > 1 or ratio < 0 or (ratio == 0 and not zero):
        raise ScenarioError(f"{where}: an error ratio is in {'[' if zero else '('}0, 100%], not {value!r}")
    return ratio


def _traffic(value: Any, where: str) -> Decimal:
    text = str(value).strip()
    try:
        factor = Decimal(text[:-1]) / 100 if text.endswith("%") else Decimal(text.removesuffix("x"))
    except InvalidOperation:
        raise ScenarioError(f"{where}: {value!r} is no traffic multiple: write 300% or 3x") from None
    if not 0 < factor <= 1000:
        raise ScenarioError(f"{where}: traffic is a multiple of the steady traffic in (0, 1000x], not {value!r}")
    return factor


Z99 = 2.3263478740408408  # the standard normal's 99th percentile


def slower_than(threshold: Decimal, p50: float, p99: float) -> Decimal:
    """The share of requests slower than the threshold, for latencies log-normally distributed
    with these median and 99th percentile (seconds), to 6 digits."""
    mu, sigma = math.log(p50), (math.log(p99) - math.log(p50)) / Z99
    share = 0.5 * math.erfc((math.log(float(threshold)) - mu) / (sigma * math.sqrt(2)))
    return Decimal(f"{share:.6f}")


INCIDENT_KEYS = {"slo", "start", "duration", "errors", "traffic", "latency"}


def _incident(raw: Any, where: str, slos: dict[str, SLO]) -> Incident:
    if not isinstance(raw, dict) or set(raw) - INCIDENT_KEYS or "slo" not in raw or "duration" not in raw:
        raise ScenarioError(
            f"{where}: give slo, start, duration, and errors (or latency: {{p50, p99}}) and/or traffic; nothing else"
        )
    slo = slos.get(str(raw.get("slo")))
    if slo is None:
        raise ScenarioError(f"{where}.slo: {raw.get('slo')!r} is no SLO of the spec; one of {', '.join(slos)}")
    start = 0 if str(raw.get("start", "0s")) in ("0", "0s") else _duration(raw["start"], f"{where}.start")
    duration = _duration(raw["duration"], f"{where}.duration")
    traffic = _traffic(raw["traffic"], f"{where}.traffic") if "traffic" in raw else Decimal(1)
    if "latency" in raw:
        if "errors" in raw:
            raise ScenarioError(f"{where}: give errors or latency, not both")
        latency = raw["latency"]
        if slo.sli.kind != "latency" or slo.sli.threshold is None:
            raise ScenarioError(f"{where}.latency: {raw['slo']} has a {slo.sli.kind} SLI: give errors instead")
        if not isinstance(latency, dict) or set(latency) != {"p50", "p99"}:
            raise ScenarioError(f"{where}.latency: give p50 and p99, e.g. {{p50: 80ms, p99: 1.5s}}")
        p50, p99 = (_seconds(latency[k], f"{where}.latency.{k}") for k in ("p50", "p99"))
        if not 0 < p50 < p99:
            raise ScenarioError(f"{where}.latency: p99 must be above p50, both above 0")
        error = slower_than(slo.sli.threshold, p50, p99)
        note = f"p50 {latency['p50']}, p99 {latency['p99']}: {num_percent(error)} slower than {slo.sli.threshold}s"
        return Incident(slo, start, duration, error, traffic, note)
    if "errors" not in raw and "traffic" not in raw:
        raise ScenarioError(f"{where}: give errors, latency or traffic")
    error = _ratio(raw.get("errors", 0), f"{where}.errors", zero="traffic" in raw)
    return Incident(slo, start, duration, error, traffic)


def _seconds(value: Any, where: str) -> float:
    """A latency: 80ms, 1.5s, 2m, or a number of seconds."""
    text = str(value).strip()
    match = re.fullmatch(r"([0-9]*\.?[0-9]+)(ms|s|m)?", text)
    if not match:
        raise ScenarioError(f"{where}: {value!r} is no latency: write 80ms, 1.5s or 0.08")
    return float(match[1]) * {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[match[2]]


@dataclass(frozen=True)
class RawSeries:
    """Input given as is, in promtool's notation, one value per `every` from the scenario's start."""

    series: str
    values: list[float | None]  # None: no sample
    every: int


def _raw_series(raw: Any, where: str) -> RawSeries:
    if not isinstance(raw, dict) or set(raw) - {"series", "values", "every"} or not {"series", "values"} <= set(raw):
        raise ScenarioError(f"{where}: give series, values (promtool's notation) and optionally every (default 1m)")
    text = str(raw["series"])
    try:
        parsed = promql_parser.parse(text)
    except ValueError as err:
        raise ScenarioError(f"{where}.series: {text!r} is no series: {err}") from None
    if type(parsed).__name__ != "VectorSelector" or not getattr(parsed, "name", None):
        raise ScenarioError(f'{where}.series: write a metric name with labels, e.g. queue_depth{{job="api"}}')
    every = _duration(raw.get("every", "1m"), f"{where}.every")
    try:
        values = expand_values(str(raw["values"]))
    except ValueError as err:
        raise ScenarioError(f"{where}.values: {err}") from None
    return RawSeries(text, values, every)


def expand_values(text: str) -> list[float | None]:
    """promtool's input notation ("1 2x3 5+1x2 _x2", promql.SERIES_VALUE) as one value per
    sample; None for `_`. `a+bxn` is a followed by n more samples rising by b; `axn` is n+1
    samples of a; `_xn` is n gaps (checked against promtool: "1 _x3 5" puts 5 at the fourth
    step)."""
    out: list[float | None] = []
    for token in text.split():
        match = promql.SERIES_VALUE.match(token)
        if not match:
            raise ValueError(f"{token!r} is not promtool notation (1, 2x3, 5+1x2, _x4)")
        if match["stale"]:
            raise ValueError("stale markers are not supported in scenarios: leave a gap with _")
        if match["first"] is None:  # gaps
            n = int(match["gaps"]) if match["gaps"] is not None else 1
            if len(out) + n > 1_000_000:
                raise ValueError("more than 1,000,000 values")
            out += [None] * n
            continue
        a = float(match["first"])
        b = float(match["step"]) * (1 if match["sign"] == "+" else -1) if match["sign"] else 0.0
        if not (math.isfinite(a) and math.isfinite(b)):
            raise ValueError(f"{token!r}: Inf and NaN are not supported in scenarios")
        n = int(match["count"] or match["repeat"] or 0)
        if len(out) + n > 1_000_000:
            raise ValueError("more than 1,000,000 values")
        out += [a + b * i for i in range(n + 1)]
    if not out:
        raise ValueError("no values")
    return out


def load_scenario(path: Path, spec: Spec) -> tuple[str, int, list[Incident], list[RawSeries], list[Expectation]]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ScenarioError(f"{path}: cannot read the scenario: {err}") from None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("incidents", []), list)
        or not isinstance(data.get("series", []), list)
        or not (data.get("incidents") or data.get("series"))
    ):
        raise ScenarioError(
            f"{path}: a scenario is a mapping with incidents: [{{slo, start, duration, errors}}, ...] "
            "and/or series: [{series, values}, ...]"
        )
    slos = {f"{s.service}/{s.name}": s for s in spec.slos}
    incidents = [_incident(raw, f"{path}: incidents[{i}]", slos) for i, raw in enumerate(data.get("incidents") or [])]
    for slo in dict.fromkeys(i.slo for i in incidents):
        mine = sorted((i for i in incidents if i.slo == slo), key=lambda i: i.start)
        for a, b in itertools.pairwise(mine):
            if b.start < a.start + a.duration:
                raise ScenarioError(
                    f"{path}: incidents of {slo.service}/{slo.name} overlap ({_t(a.start)} for "
                    f"{format_duration(a.duration)}, then {_t(b.start)}): give one phase per time"
                )
    raw_series = [_raw_series(raw, f"{path}: series[{i}]") for i, raw in enumerate(data.get("series") or [])]
    ends = [i.start + i.duration for i in incidents] + [len(s.values) * s.every for s in raw_series]
    end = _duration(data["duration"], f"{path}: duration") if "duration" in data else max(ends) + 3600
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
    return str(data.get("name", path.stem)), end, incidents, raw_series, expectations


def warmup_for(incidents: list[Incident], slos: list[SLO] | None = None) -> int:
    """Steady traffic first, as long as the longest alerting window read, so each window is
    full when the incident starts (the math assumes it). Raw series alone need none."""
    read = [i.slo for i in incidents] + list(slos or [])
    return max((max(tier.long_window for tier in slo.tiers) for slo in read), default=0)


GOT = re.compile(r"^\s*got:\s*(.*)$")
# One sample of a "got:" list: {labels} value, samples joined by ", ".
SAMPLE = re.compile(r'(\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\})\s+([-+0-9.eE]+|NaN|[-+]Inf)')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
QUERY = re.compile(r'^\s*expr: "(.*)", time: ([0-9a-z]+)')


def _unquote(text: str) -> str:
    """A Go-quoted label value's content (promtool prints labels %q-style)."""
    return re.sub(r'\\(["\\n])', lambda m: "\n" if m.group(1) == "n" else m.group(1), text)


def _labels(text: str) -> dict[str, str]:
    return {k: _unquote(v) for k, v in LABEL.findall(text)}


def incident_series(
    spec: Spec, incidents: list[Incident], raw: list[RawSeries], end: int, slos: list[SLO]
) -> tuple[list[dict[str, str]], int, int]:
    """Synthesised input series for the incidents, and the raw series as given: (series,
    warm-up, input step). The warm-up is as long as the longest alert window of `slos`."""
    base = spec.stack.base_window
    step = base // 2 if base % 2 == 0 else base
    warmup = warmup_for(incidents, slos)
    warmup -= warmup % step
    total = warmup + end
    series: list[dict[str, str]] = []
    for slo in dict.fromkeys(i.slo for i in incidents):
        phases = tuple(
            (warmup + i.start, warmup + i.start + i.duration, i.error, i.traffic) for i in incidents if i.slo == slo
        )
        sc = Scenario(step=step, end=total, onset=0, stop=0, error=Decimal(0), phases=phases)
        made = input_series(slo, sc)
        if made is None:
            raise ScenarioError(
                f"SLO {slo.service}/{slo.name}: its SLI's series cannot be synthesised (custom PromQL): "
                "give its raw series under series: instead"
            )
        series += made
    for given in raw:
        if given.every % step:
            raise ScenarioError(f"series {given.series}: every must be a multiple of {at(step)} (the input step)")
        # Held at its first value through the warm-up; each value repeated to the input step.
        first = given.values[0]
        values = [first] * (warmup // step) + [v for v in given.values for _ in range(max(1, given.every // step))]
        series.append({"series": given.series, "values": compress(values[: total // step + 1])})
    return series, warmup, step


def compress(values: list[float | None]) -> str:
    """Values in promtool's notation, runs of equal steps written as `a+bxn`, gaps as `_xn`."""
    out: list[str] = []
    i = 0
    while i < len(values):
        v = values[i]
        j = i + 1
        if v is None:
            while j < len(values) and values[j] is None:
                j += 1
            out.append("_" if j - i == 1 else f"_x{j - i}")
        else:
            nxt = values[j] if j < len(values) else None
            step = (nxt - v) if nxt is not None else 0.0
            while j < len(values) and values[j] is not None and values[j] == v + step * (j - i):
                j += 1
            n = j - i - 1
            text = _g(v)
            out.append(text if n == 0 else f"{text}{'+' if step >= 0 else '-'}{_g(abs(step))}x{n}")
        i = j
    return " ".join(out)


def _g(value: float) -> str:
    """A value as promtool reads it: plain decimals (no exponent), shortest exact form."""
    return format(Decimal(repr(value)).normalize(), "f")


def sli_metrics(slo: SLO) -> set[str]:
    """Metric names the SLO's base rules read (custom PromQL included)."""
    sli = slo.sli
    names: set[str] = set()
    for text in (sli.bad, sli.good, sli.total, sli.error_ratio):
        if text:
            try:
                names.update(node.name for node in promql.selector_nodes(text) if node.name)
            except ValueError:
                continue
    if sli.histogram:
        names |= {f"{sli.histogram}_bucket", f"{sli.histogram}_count"}
    if sli.metric:
        names.add(sli.metric)
    return names


def plain_rule_files(files: dict[str, str]) -> list[str]:
    """Rule files of plain alerts and alert packs: what raw series can make fire."""
    return sorted(
        p
        for p in files
        if p.startswith("prometheus/rules/")
        and p.endswith(".yml")
        and p != cv.STACK_RULES
        and (p.count("/") == 2 or p.rsplit("/", 1)[1].startswith("_"))
    )


BURN_POINTS = 120  # burn-rate samples along the timeline, per SLO


def evaluate(
    spec: Spec,
    files: dict[str, str],
    slos: list[SLO],
    series: list[dict[str, str]],
    timing: tuple[int, int, int],
    work: Path,
    extra_rule_files: list[str] | None = None,
) -> tuple[list[Span], dict[str, dict[str, list[tuple[int, float]]]]]:
    """Run the SLOs' rule files and the stack's over input series in promtool: the firing
    spans, and each SLO's burn rate per window along the timeline. timing: (warm-up before
    the timeline, the timeline's length, input step)."""
    warmup, end, step = timing
    base = spec.stack.base_window
    total = warmup + end
    rule_files = [*sorted({cv.rules_file(slo) for slo in slos}), cv.STACK_RULES, *(extra_rule_files or [])]
    rule_files = list(dict.fromkeys(rule_files))
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
    checks = [{"expr": q, "eval_time": at(total), "exp_samples": []} for q in queries.values()]
    # Burn rates: every window's recorded ratio, sampled along the timeline (promtool prints
    # what a query returned when it differs from the expected: nothing is expected).
    every = max(base, -(-end // BURN_POINTS) // base * base)
    ratios = {
        slo: f'{{__name__=~"slo:sli_error:ratio_rate.+", service="{slo.service}", slo="{slo.name}"}}' for slo in slos
    }
    for expr in ratios.values():
        checks += [{"expr": expr, "eval_time": at(warmup + t), "exp_samples": []} for t in range(0, end + 1, every)]
    # The stack itself is healthy in a scenario: the alert-state exporter answers throughout
    # (else AlertStateUnknown would fire in every replay).
    healthy = f"1x{total // step}"
    exporter_up = promql.selector("up", promql.equals("job", cv.ALERT_STATE_JOB))
    series = [
        *series,
        {"series": exporter_up, "values": healthy},
        {"series": "stackgen_alertmanager_up", "values": healthy},
    ]
    doc = {
        "rule_files": [f"../{f.removeprefix('prometheus/')}" for f in rule_files],
        "evaluation_interval": at(base),
        "group_eval_order": order,
        "tests": [{"interval": at(step), "input_series": series, "promql_expr_test": checks}],
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
    burn: dict[str, dict[str, list[tuple[int, float]]]] = {}
    by_ratio = {expr: slo for slo, expr in ratios.items()}
    current: str | None = None
    slo_now: SLO | None = None
    when = 0
    names = {q: k for k, q in queries.items()}
    for line in (proc.stdout + "\n" + proc.stderr).splitlines():  # promtool reports failures on stderr
        match = QUERY.match(line)
        if match:
            expr = _unquote(match.group(1))
            current, slo_now = names.get(expr), by_ratio.get(expr)
            when = parse_duration(match.group(2)) - warmup if match.group(2) else 0
            continue
        got = GOT.match(line)
        if got and current:
            for sample in SAMPLE.finditer(got.group(1)):
                labels = _labels(sample.group(1))
                labels.pop("__name__", None)
                values[current][tuple(sorted(labels.items()))] = float(sample.group(2))
        elif got and slo_now is not None:
            for sample in SAMPLE.finditer(got.group(1)):
                name = _labels(sample.group(1)).get("__name__", "")
                window = name.removeprefix("slo:sli_error:ratio_rate")
                curves = burn.setdefault(f"{slo_now.service}/{slo_now.name}", {})
                curves.setdefault(window, []).append((when, float(sample.group(2)) / float(slo_now.budget)))
    if not any(values.values()):  # Watchdog always fires: no sample means promtool did not run
        raise StackgenError(f"promtool could not run the scenario: {(proc.stderr or proc.stdout)[-2000:]}")
    spans = []
    for key, first in values["first"].items():
        labels = dict(key)
        labels.pop("alertstate", None)
        spans.append(
            Span(labels, int(first) - warmup, int(values["last"][key]) - warmup, int(values["count"].get(key, 0)))
        )
    for curves in burn.values():
        for points in curves.values():
            points.sort()
    return sorted(spans, key=lambda s: (s.first, s.name, sorted(s.labels.items()))), burn


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
    starts: dict[str, int] = {}
    for incident in incidents:  # an SLO's first incident
        starts.setdefault(f"{incident.slo.service}/{incident.slo.name}", incident.start)
    for expect in expectations:
        onset = starts.get(expect.slo or "", min(starts.values(), default=0))
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
    name, end, incidents, raw, expectations = load_scenario(scenario, spec)
    described = []
    for i in incidents:
        what = i.latency or f"{num_percent(i.error)} errors"
        traffic = "" if i.traffic == 1 else f" at {_traffic_text(i.traffic)} traffic"
        described.append(
            f"incident: {i.slo.service}/{i.slo.name} at {what}{traffic} from {_t(i.start)} for "
            f"{format_duration(i.duration)}"
        )
    # SLOs whose SLI reads a raw series of the scenario (custom PromQL included) are evaluated too.
    fed = {m for given in raw for m in [given.series.split("{", 1)[0].strip()]}
    slos = list(dict.fromkeys([i.slo for i in incidents] + [s for s in spec.slos if sli_metrics(s) & fed]))
    described += [f"series: {given.series} ({len(given.values)} values, one per {at(given.every)})" for given in raw]
    with tempfile.TemporaryDirectory(prefix="stackgen-simulate-") as tmp:
        work = Path(tmp)
        series, warmup, step = incident_series(spec, incidents, raw, end, slos)
        spans, burn = evaluate(
            spec, files, slos, series, (warmup, end, step), work, plain_rule_files(files) if raw else []
        )
        spans = routed(spec, files, spans, work)
    result = Result(spans, check(expectations, spans, incidents), warmup, end, spec.stack.base_window)
    result.incidents = [(i.start, i.start + i.duration, f"{i.slo.service}/{i.slo.name}") for i in incidents]
    result.burn = burn
    result.thresholds = tier_thresholds(slos)
    return name, described, result


def tier_thresholds(slos: list[SLO]) -> dict[str, list[tuple[str, float]]]:
    """Each SLO's tiers and burn-rate thresholds, as the picture labels them."""
    return {
        f"{slo.service}/{slo.name}": [(f"{t.severity} {t.long}/{t.short}", float(t.burn_rate)) for t in slo.tiers]
        for slo in slos
    }


def _traffic_text(factor: Decimal) -> str:
    return f"{(factor * 100).normalize():f}%"


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


WINDOW_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")


def svg(name: str, result: Result) -> str:
    """The timeline as an SVG: a bar per alert from its first firing to when it stops (colour
    by severity, grey when inhibited), the incidents shaded, receivers beside each bar; under
    it, per SLO, the burn rate of each window as the engine recorded it (log scale) against
    each tier's threshold."""
    from xml.sax.saxutils import escape

    left, width, row, top, panel = 260, 640, 26, 40, 170
    end = result.end

    def x(t: int) -> float:
        return left + width * max(0, min(t, end)) / end

    rows = row * max(1, len(result.spans))
    height = top + rows + 40 + (panel + 30) * len(result.burn)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 420}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        f"<title>stackgen simulate: {escape(name)}</title>",
        f'<text x="10" y="20" font-size="14" font-weight="bold">Scenario {escape(name)}</text>',
    ]
    for start, stop, _ in result.incidents:
        parts.append(
            f'<rect x="{x(start):.1f}" y="{top - 10}" width="{x(stop) - x(start):.1f}" '
            f'height="{rows + 10}" fill="#f2cc0c" fill-opacity="0.25"/>'
        )
    for i, span in enumerate(result.spans):
        y = top + i * row
        stop = end if span.last + result.interval > end else span.last + result.interval
        colour = "#999999" if span.inhibited_by else SEVERITY_COLOURS.get(span.labels.get("severity", ""), "#5a5a5a")
        about = ", ".join(v for v in (span.labels.get("slo"), span.labels.get("tier")) if v)
        label = span.name + (f" ({about})" if about else "")
        note = ", ".join(span.receivers) + (f" (inhibited by {span.inhibited_by})" if span.inhibited_by else "")
        parts += [
            f'<text x="10" y="{y + 16}">{escape(label)}</text>',
            f'<rect x="{x(span.first):.1f}" y="{y + 4}" width="{max(2.0, x(stop) - x(span.first)):.1f}" '
            f'height="{row - 8}" fill="{colour}"><title>{escape(_t(span.first))} to {escape(_t(stop))}</title></rect>',
            f'<text x="{left + width + 10}" y="{y + 16}">{escape(note)}</text>',
        ]
    axis = top + rows + 8
    parts += _axis(axis, end, x)
    for k, (slo, curves) in enumerate(sorted(result.burn.items())):
        y = axis + 40 + k * (panel + 30)
        for start, stop, which in result.incidents:
            if which == slo:
                parts.append(
                    f'<rect x="{x(start):.1f}" y="{y}" width="{x(stop) - x(start):.1f}" height="{panel}" '
                    'fill="#f2cc0c" fill-opacity="0.25"/>'
                )
        parts += _burn_panel(slo, curves, result.thresholds.get(slo, []), y, panel, x)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _axis(y: int, end: int, x: Callable[[int], float]) -> list[str]:
    from xml.sax.saxutils import escape

    out = [f'<line x1="{x(0)}" y1="{y}" x2="{x(end)}" y2="{y}" stroke="#333"/>']
    # Round steps, at most 10 ticks: +15m, +30m, ... rather than +18m45s.
    step = next((s for s in TICK_STEPS if end // s <= 10), TICK_STEPS[-1] * (end // TICK_STEPS[-1] // 10 + 1))
    for t in range(0, end + 1, step):
        out.append(f'<text x="{x(t):.1f}" y="{y + 16}" text-anchor="middle">{escape(_t(t))}</text>')
    return out


TICK_STEPS = (60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def _burn_panel(
    slo: str,
    curves: dict[str, list[tuple[int, float]]],
    thresholds: list[tuple[str, float]],
    top: int,
    height: int,
    x: Callable[[int], float],
) -> list[str]:
    """One SLO's burn rate per window (log scale, 0.1x at the bottom) and its tiers' thresholds."""
    from xml.sax.saxutils import escape

    peak = max([v for points in curves.values() for _, v in points] + [r for _, r in thresholds] + [1.0])
    low, high = math.log10(0.1), math.log10(peak * 1.5)

    def y(burn: float) -> float:
        return top + height - height * (math.log10(max(burn, 0.1)) - low) / (high - low)

    right = x(10**12)
    out = [
        f'<text x="10" y="{top + 12}" font-weight="bold">burn rate, {escape(slo)}</text>',
        f'<text x="10" y="{top + 28}" fill="#555">error ratio / budget, log</text>',
        f'<rect x="{x(0)}" y="{top}" width="{right - x(0):.1f}" height="{height}" fill="none" stroke="#ccc"/>',
    ]
    for value in (0.1, 1, 10, 100, 1000):
        if value <= peak * 1.5:
            out.append(f'<text x="{x(0) - 6}" y="{y(value) + 4:.1f}" text-anchor="end" fill="#555">{value:g}x</text>')
    for label, rate in thresholds:
        out += [
            f'<line x1="{x(0)}" y1="{y(rate):.1f}" x2="{right:.1f}" y2="{y(rate):.1f}" stroke="#d44a3a" '
            'stroke-dasharray="4 3" stroke-width="1"/>',
            f'<text x="{right + 6:.1f}" y="{y(rate) + 4:.1f}" fill="#d44a3a">{escape(label)} &gt; {rate:g}x</text>',
        ]
    windows = sorted(curves, key=parse_duration)
    for i, window in enumerate(windows):
        colour = WINDOW_COLOURS[i % len(WINDOW_COLOURS)]
        points = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in curves[window])
        out += [
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.5">'
            f"<title>{escape(window)} window</title></polyline>",
            f'<text x="{10 + (i % 4) * 60}" y="{top + 48 + (i // 4) * 16}" fill="{colour}">{escape(window)}</text>',
        ]
    return out


# --- Replay ----------------------------------------------------------------------------------


def raw_selectors(slo: SLO) -> list[str] | None:
    """The raw series an SLO's base rules read, as selectors to fetch."""
    sli = slo.sli
    if sli.kind == "events":
        return [text for text in (sli.total, sli.bad, sli.good) if text]
    if sli.kind == "latency" and not sli.native and sli.histogram:
        return [f"{sli.histogram}_bucket{sli.selector or ''}", f"{sli.histogram}_count{sli.selector or ''}"]
    if sli.kind == "availability" and sli.metric:
        return [f"{sli.metric}{sli.selector or ''}"]
    if sli.kind == "raw" and not sli.native:
        # Custom PromQL: every series of each metric it reads (its own matchers are inside
        # the expression, which the replayed rules apply).
        return sorted(sli_metrics(slo)) or None
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
        raise UsageError(
            "no SLO of the spec reads series stackgen can replay (native histograms have no promtool input notation)"
        )
    base = spec.stack.base_window
    step = spec.stack.scrape_interval
    warmup = max(max(t.long_window for t in slo.tiers) for slo in slos)
    first = start - warmup
    first -= first % step
    series = [s for slo in slos for s in fetched_series(api, raw_selectors(slo) or [], first, stop, step)]
    notes = [f"replayed {len(series)} series of {len(slos)} SLO(s) from {api.base}"]
    notes += [f"skipped (native histograms: no promtool input notation): {', '.join(skipped)}"] if skipped else []
    end = stop - start
    with tempfile.TemporaryDirectory(prefix="stackgen-replay-") as tmp:
        work = Path(tmp)
        spans, burn = evaluate(spec, files, slos, series, (start - first, end, step), work)
        spans = routed(spec, files, spans, work)
    result = Result(spans, [], start - first, end, base, replayed=True, burn=burn)
    result.thresholds = tier_thresholds(slos)
    return notes, result
