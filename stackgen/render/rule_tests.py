"""promtool unit tests generated next to the rules: they prove each alert's timing and each
recording rule's value with the numbers of SLO-MATH.md.

Every expected time and value here comes from the formulas (detection time
L * r * b / e + B/2, ratio of sums, budget left 1 - ratio/b) applied to a synthetic
scenario, never from rendering and copying output. Timelines are aligned to the base
window B (= evaluation interval), and input samples come every B/2, so that rate() and the
one-second-short sum_over_time ranges give the same values in Prometheus 2 and 3.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

import promql_parser

from stackgen import alert_templates, promql, slo_math
from stackgen import conventions as cv
from stackgen.durations import format_duration
from stackgen.model import SLI, SLO, Alert, Routing, Service, Spec, Stack, Tier
from stackgen.promql import WINDOW_PLACEHOLDER
from stackgen.render import rules as rule_render
from stackgen.render import test_shapes
from stackgen.render.common import header, yaml_text
from stackgen.slo_math import num

COUNTER_START = Decimal(1000)  # counters start high: no reset/zero-clamp corner cases
EVENTS_PER_STEP = Decimal(100)  # total events per input step
ABOVE = Decimal("1.1")  # "just above" = 10% above the threshold error ratio
ABOVE_FALLBACKS = (Decimal("1.12"), Decimal("1.15"), Decimal("1.2"))
BELOW = Decimal("0.9")


def at(seconds: int) -> str:
    return format_duration(seconds) if seconds else "0s"


# ----------------------------------------------------------------------------------------
# Synthesising series that match the SLI's selectors


def _regex_example(pattern: str) -> str | None:
    """A short string fully matching pattern (simple regexes only), or None."""
    import re._parser as sre  # type: ignore[import-not-found]

    def build(parsed: Any) -> str:
        out = []
        for op, arg in parsed:
            name = str(op)
            if name == "LITERAL":
                out.append(chr(arg))
            elif name == "ANY":
                out.append("0")
            elif name == "IN":
                out.append(_from_set(arg))
            elif name == "BRANCH":
                out.append(build(arg[1][0]))
            elif name == "SUBPATTERN":
                out.append(build(arg[-1]))
            elif name in ("MAX_REPEAT", "MIN_REPEAT"):
                low, _high, sub = arg
                out.append(build(sub) * low)
            elif name == "AT":
                continue
            else:
                raise ValueError(name)
        return "".join(out)

    def _from_set(items: Any) -> str:
        for op, arg in items:
            name = str(op)
            if name == "LITERAL":
                return chr(arg)
            if name == "RANGE":
                return chr(arg[0])
            if name == "CATEGORY":
                return {"CATEGORY_DIGIT": "0", "CATEGORY_WORD": "a", "CATEGORY_SPACE": " "}.get(str(arg), "a")
            if name == "NEGATE":
                return "\x01"
        return "a"

    try:
        candidate = build(sre.parse(pattern))
    except (ValueError, re.error, TypeError, IndexError):
        return None
    return candidate if re.fullmatch(pattern, candidate) else None


def _satisfies(value: str, op: str, target: str) -> bool:
    if op == "Equal":
        return value == target
    if op == "NotEqual":
        return value != target
    if op == "Re":
        return re.fullmatch(target, value) is not None
    return re.fullmatch(target, value) is None


def _pick(op: str, target: str) -> str | None:
    if op == "Equal":
        return target
    if op == "Re":
        return _regex_example(target)
    for candidate in ("stackgen_test", "200", "ok", "x", ""):
        if _satisfies(candidate, op, target):
            return candidate
    return None


def _violate(op: str, target: str) -> str | None:
    opposite = {"Equal": "NotEqual", "NotEqual": "Equal", "Re": "NotRe", "NotRe": "Re"}[op]
    return _pick(opposite, target)


@dataclass(frozen=True)
class Selector:
    metric: str
    matchers: tuple[tuple[str, str, str], ...]  # (label, op, value)


@functools.lru_cache(maxsize=4096)  # every scenario of an SLO parses the same selectors
def parse_selector(text: str) -> Selector | None:
    try:
        node: Any = promql_parser.parse(text)
    except ValueError:
        return None
    if type(node).__name__ != "VectorSelector" or not node.name:
        return None
    matchers = tuple(
        (m.name, str(m.op).split(".")[-1], m.value) for m in node.matchers.matchers if m.name != "__name__"
    )
    return Selector(node.name, matchers)


_RATED_QUERY = re.compile(
    r"^\s*(?:sum\s*\(\s*)?(?:rate|increase)\s*\(\s*(?P<selector>.+?)\s*\[\s*\{\{window\}\}\s*\]\s*\)\s*\)?\s*$",
    re.DOTALL,
)


def counter_selector(text: str) -> Selector | None:
    """The counter behind an events SLI: a selector, or sum(rate(<selector>[{{window}}]))."""
    if WINDOW_PLACEHOLDER in text:
        match = _RATED_QUERY.match(text)
        if not match or text.count("(") != text.count(")"):
            return None
        return parse_selector(match.group("selector"))
    return parse_selector(text)


def labels_for(*selectors: Selector, avoid: Selector | None = None) -> dict[str, str] | None:
    """Labels matching every selector's matchers and (if given) not matching `avoid`."""
    found = _labels_for(selectors, avoid)
    return None if found is None else dict(found)


@functools.lru_cache(maxsize=4096)  # every scenario of an SLO asks for the same labels
def _labels_for(selectors: tuple[Selector, ...], avoid: Selector | None) -> tuple[tuple[str, str], ...] | None:
    labels: dict[str, str] = {}
    for selector in selectors:
        for name, op, value in selector.matchers:
            if name in labels:
                if not _satisfies(labels[name], op, value):
                    return None
                continue
            picked = _pick(op, value)
            if picked is None:
                return None
            if picked:
                labels[name] = picked
    if avoid is not None:
        extra = [m for m in avoid.matchers if not all(_satisfies(labels.get(m[0], ""), m[1], m[2]) for _ in [0])]
        if extra:
            return tuple(labels.items())  # already outside avoid
        for name, op, value in avoid.matchers:
            bad = _violate(op, value)
            if bad is None:
                continue
            trial = {**labels, name: bad} if bad else {k: v for k, v in labels.items() if k != name}
            if all(_satisfies(trial.get(n, ""), o, v) for s in selectors for n, o, v in s.matchers):
                return tuple(trial.items())
        return None
    return tuple(labels.items())


def series_name(metric: str, labels: dict[str, str]) -> str:
    return promql.selector(metric, *(promql.equals(k, v) for k, v in sorted(labels.items())))


# ----------------------------------------------------------------------------------------
# Scenarios: error ratio as a function of time, turned into input series


@dataclass
class Scenario:
    """Errors at ratio `error` for input steps ending in (onset, stop]; zero otherwise."""

    step: int
    end: int
    onset: int
    stop: int
    error: Decimal
    # Optional traffic shape: (period seconds, busy seconds, busy multiplier) for day/night.
    busy: tuple[int, int, int] | None = None
    traffic_factor: dict[int, int] = field(default_factory=dict)
    # Optional phases (`stackgen simulate`): (start, stop, error ratio, traffic multiplier) for
    # input steps ending in (start, stop]; they replace onset/stop/error where they apply.
    phases: tuple[tuple[int, int, Decimal, Decimal], ...] = ()
    # The base rules' range when the test evaluates less often than the spec does (hourly
    # tests of the day-long windows): a base sample then covers this much, not B. 0: B.
    rng: int = 0

    def steps(self) -> int:
        return self.end // self.step

    def _phase(self, t: int) -> tuple[int, int, Decimal, Decimal] | None:
        return next((p for p in self.phases if p[0] < t <= p[1]), None)

    def error_at(self, t: int) -> Decimal:
        phase = self._phase(t)
        if phase is not None:
            return phase[2]
        return self.error if self.onset < t <= self.stop else Decimal(0)

    def traffic_at(self, t: int) -> int | Decimal:
        phase = self._phase(t)
        if phase is not None:
            return phase[3]
        if self.busy is None:
            return 1
        period, busy, factor = self.busy
        return factor if ((t - self.step) % period) < busy else 1


Runs = list[tuple[int, Decimal]]  # (steps, value per step)


def _merge(runs_: Runs) -> Runs:
    out: Runs = []
    for count, value in runs_:
        if count <= 0:
            continue
        if out and out[-1][1] == value:
            out[-1] = (out[-1][0] + count, value)
        else:
            out.append((count, value))
    return out


def _counter(increments: Runs) -> str:
    """promtool notation for a counter starting at COUNTER_START, rising by each run's increment per step."""
    parts = [str(COUNTER_START)]
    value = COUNTER_START
    for count, inc in _merge(increments):
        parts.append(f"{_n(value + inc)}+{_n(inc)}x{count - 1}")
        value += inc * count
    return " ".join(parts)


def _gauge(values: Runs) -> str:
    return " ".join(f"{_n(value)}x{count - 1}" for count, value in _merge(values))


def _n(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def runs(sc: Scenario) -> list[tuple[int, int | Decimal, Decimal]]:
    """(steps, traffic, error ratio) runs over steps 1..N, computed from the scenario's
    breakpoints rather than step by step (a 3d scenario has 8640 steps)."""
    total = sc.steps()
    points = {1, total + 1}
    for t in (sc.onset, sc.stop, *(edge for phase in sc.phases for edge in phase[:2])):
        points.add(t // sc.step + 1)
    if sc.busy is not None:
        period, busy, _ = sc.busy
        for start in range(0, sc.end + period, period):
            points.update({start // sc.step + 1, (start + busy) // sc.step + 1})
    edges = sorted(p for p in points if 1 <= p <= total + 1)
    out: list[tuple[int, int | Decimal, Decimal]] = []
    for first, nxt in itertools.pairwise(edges):
        t = first * sc.step
        value = (nxt - first, sc.traffic_at(t), sc.error_at(t))
        if out and out[-1][1:] == value[1:]:
            out[-1] = (out[-1][0] + value[0], *value[1:])
        else:
            out.append(value)
    return out


GROUP_CANDIDATES = ("a", "b", "c", "checkout", "search", "0", "1", "x", "y")


def sli_selectors(sli: SLI) -> list[Selector] | None:
    if sli.kind == "events":
        found = [counter_selector(text) for text in (sli.total, sli.bad, sli.good) if text]
    elif sli.kind == "latency":
        found = [parse_selector(f"x{sli.selector or '{}'}")]
    elif sli.kind == "availability":
        found = [parse_selector(f"{sli.metric}{sli.selector or '{}'}")]
    else:
        return None
    return None if any(f is None for f in found) else [f for f in found if f is not None]


def group_labels(slo: SLO, count: int = 2) -> tuple[dict[str, str], ...] | None:
    """`count` groups of a grouped SLO, label values every selector of the SLI accepts; the
    first is the one that burns in a scenario, the others stay healthy. ({},) ungrouped."""
    if not slo.group_by:
        return ({},)
    return _group_labels(slo.sli, slo.group_by, count)


@functools.lru_cache(maxsize=1024)
def _group_labels(sli: SLI, group_by: tuple[str, ...], count: int) -> tuple[dict[str, str], ...] | None:
    selectors = sli_selectors(sli)
    if selectors is None:
        return None
    groups: list[dict[str, str]] = [{} for _ in range(count)]
    for label in group_by:
        rules = [(op, value) for sel in selectors for name, op, value in sel.matchers if name == label]
        picked = [v for op, value in rules if (v := _pick(op, value))]
        options = (*GROUP_CANDIDATES, *picked, *(f"g{i}" for i in range(count)))
        fits = list(dict.fromkeys(c for c in options if all(_satisfies(c, op, value) for op, value in rules)))
        if len(fits) < count:
            return None
        for group, value in zip(groups, fits, strict=False):
            group[label] = value
    return tuple(groups)


def input_series(slo: SLO, sc: Scenario, groups: int = 2) -> list[dict[str, str]] | None:
    """Input series for a scenario, or None when the SLI's selectors cannot be synthesised. A
    grouped SLO gets its first group through the scenario and the others with no errors."""
    found = group_labels(slo, groups if slo.group_by else 2)
    if found is None:
        return None
    series = _input_series(slo, sc, found[0])
    if series is None or not slo.group_by:
        return series
    calm = dataclasses.replace(sc, error=Decimal(0), phases=tuple((a, b, Decimal(0), x) for a, b, _, x in sc.phases))
    for other in found[1:]:
        more = _input_series(slo, calm, other)
        if more is None:
            return None
        series += more
    return series


def burning_group(slo: SLO) -> dict[str, str]:
    """The group labels of the group that burns in a scenario ({} for an ungrouped SLO)."""
    found = group_labels(slo)
    assert found is not None
    return found[0]


def _input_series(slo: SLO, sc: Scenario, group: dict[str, str]) -> list[dict[str, str]] | None:
    def named(metric: str, labels: dict[str, str]) -> str:
        return series_name(metric, {**labels, **group})  # every series carries the group's labels

    segments = runs(sc)
    total_inc: Runs = [(n, EVENTS_PER_STEP * traffic) for n, traffic, _ in segments]
    bad_inc: Runs = [(n, EVENTS_PER_STEP * traffic * error) for n, traffic, error in segments]
    good_inc: Runs = [(n, EVENTS_PER_STEP * traffic * (1 - error)) for n, traffic, error in segments]
    sli = slo.sli
    if sli.kind == "events":
        total_sel = counter_selector(sli.total or "")
        part_text = sli.bad if sli.bad is not None else sli.good
        part_sel = counter_selector(part_text or "")
        if total_sel is None or part_sel is None:
            return None
        part_inc = bad_inc if sli.bad is not None else good_inc
        rest_inc = good_inc if sli.bad is not None else bad_inc
        if part_sel.metric != total_sel.metric:
            part_labels = labels_for(part_sel)
            total_labels = labels_for(total_sel)
            if part_labels is None or total_labels is None:
                return None
            return [
                {"series": named(part_sel.metric, part_labels), "values": _counter(part_inc)},
                {"series": named(total_sel.metric, total_labels), "values": _counter(total_inc)},
            ]
        inside = labels_for(total_sel, part_sel)
        outside = labels_for(total_sel, avoid=part_sel)
        if inside is None or outside is None or inside == outside:
            return None
        if any(inside.get(label) != outside.get(label) for label in group):
            return None  # bad and good differ in a group label: no group has both
        return [
            {"series": named(total_sel.metric, inside), "values": _counter(part_inc)},
            {"series": named(total_sel.metric, outside), "values": _counter(rest_inc)},
        ]
    if sli.kind == "latency" and not sli.native:
        selector = parse_selector(f"x{sli.selector or '{}'}")
        labels = labels_for(selector) if selector else None
        if labels is None or sli.histogram is None or sli.threshold is None:
            return None
        threshold = format(sli.threshold.normalize(), "f")
        # Integral thresholds are written as Prometheus 3 does ("1.0"); the rule matches both.
        le = f"{threshold}.0" if "." not in threshold else threshold
        return [
            {"series": named(f"{sli.histogram}_bucket", {**labels, "le": le}), "values": _counter(good_inc)},
            {"series": named(f"{sli.histogram}_bucket", {**labels, "le": "+Inf"}), "values": _counter(total_inc)},
            {"series": named(f"{sli.histogram}_count", labels), "values": _counter(total_inc)},
        ]
    if sli.kind == "availability":
        selector = parse_selector(f"{sli.metric}{sli.selector or '{}'}")
        labels = labels_for(selector) if selector else None
        if labels is None or sli.metric is None or sc.busy is not None:
            return None
        values: Runs = [(1, Decimal(1))] + [(n, 1 - error) for n, _, error in segments]
        return [{"series": named(sli.metric, labels), "values": _gauge(values)}]
    return None


def testable(slo: SLO) -> bool:
    probe = Scenario(step=30, end=120, onset=60, stop=120, error=Decimal("0.5"))
    return input_series(slo, probe) is not None


def first_base_sample(slo: SLO, base: int) -> int:
    """The first evaluation that records a base sample: rate() needs two samples, the
    availability sample counts need one."""
    return 0 if slo.sli.kind == "availability" else base


# ----------------------------------------------------------------------------------------
# Expected values from SLO-MATH.md


def humanize_percentage(value: Fraction | float) -> str:
    """Prometheus' humanizePercentage: Go's fmt.Sprintf("%.4g%%", v*100) (Python's %g agrees)."""
    return f"{float(value) * 100:.4g}%"


def _safe_format(value: Fraction, fmt: str) -> bool:
    """True when float rounding noise (1e-9 relative) cannot change the formatted text."""
    x = float(value)
    delta = abs(x) * 1e-9 + 1e-15
    return fmt.format(x - delta) == fmt.format(x + delta)


def rolled(slo: SLO, base: int) -> frozenset[int]:
    return slo.rollup_windows(base)


def window_end(slo: SLO, window: int, t: int, base: int) -> int:
    """The last base sample a window's rule holds at evaluation time t: t itself, or, for a
    window read from hourly rollups, the last whole hour (the rollups are read at the hours),
    except the period, which adds this hour so far (rules._to_the_minute)."""
    if window in rolled(slo, base) and window != slo.period:
        return t - t % slo_math.ROLLUP_STEP
    return t


def window_ratio(slo: SLO, sc: Scenario, t: int, window: int, base: int) -> Fraction | None:
    """Error ratio over a window: a ratio of sums of the base samples it holds (SLO-MATH.md).
    The base sample at time s covers (s - B, s]; a window ending at t holds those in (t - W, t].
    None when it holds none (the rule records nothing)."""
    return exact_window_ratio(slo, sc, window_end(slo, window, t, base), window, base)


def exact_window_ratio(slo: SLO, sc: Scenario, t: int, window: int, base: int) -> Fraction | None:
    """window_ratio for a window that ends exactly at t (no hourly rollup)."""
    start = max(first_base_sample(slo, base), t - window + base)
    if t < start:
        return None
    if sc.busy is None and not sc.phases and "error_at" not in vars(sc):
        # Constant traffic: count grid samples instead of walking them (renders stay fast).
        # The sample at t=0 (availability only) sees one scrape of B/step.
        return _constant_ratio(start, t, base, sc.step, sc.rng or base, sc.onset, sc.stop, sc.error)
    bad = Fraction(0)
    total = Fraction(0)
    for sample in range(start, t + 1, base):
        weight = Fraction(sc.traffic_at(sample))
        if sample == 0:
            # The availability sample at t=0 sees one scrape instead of B/step.
            weight *= Fraction(sc.step, sc.rng or base)
        total += weight
        bad += weight * Fraction(sc.error_at(sample))
    return bad / total


@functools.lru_cache(maxsize=1 << 14)  # SLOs of the same shape ask the same questions
def _constant_ratio(
    start: int, t: int, base: int, step: int, rng: int, onset: int, stop: int, error: Decimal
) -> Fraction:
    lo = max(start, onset + 1, 1)
    hi = min(t, stop)
    errors = 0 if hi < lo else hi // base - (lo - 1) // base
    share = _fraction(error)
    # errors * error / samples, as one fraction (Fraction arithmetic is the cost here): the
    # samples are (t - start) / B + 1, or t / B plus the one scrape of B/step at t=0.
    if start > 0:
        return Fraction(errors * share.numerator, share.denominator * ((t - start) // base + 1))
    return Fraction(errors * share.numerator * rng, share.denominator * ((t // base) * rng + step))


@functools.lru_cache(maxsize=1024)
def _fraction(value: Decimal) -> Fraction:
    return Fraction(value)


def budget_left(slo: SLO, sc: Scenario, t: int, base: int) -> Fraction | None:
    """1 - ratio(period) / b; None before the period's window holds a sample."""
    ratio = window_ratio(slo, sc, t, slo.period, base)
    return None if ratio is None else 1 - ratio / _fraction(slo.budget)


def short_burn(slo: SLO, tier: Tier, sc: Scenario, t: int, base: int) -> Fraction:
    """The alert's $value: the short window's burn rate, ratio / b."""
    ratio = window_ratio(slo, sc, t, tier.short_window, base)
    assert ratio is not None, "a firing alert's short window holds samples"
    return ratio / _fraction(slo.budget)


@functools.lru_cache(maxsize=1024)
def detection(tier: Tier, budget: Decimal, error: Decimal, base: int) -> Fraction:
    """SLO-MATH.md: L * r * b / e + B/2."""
    return Fraction(tier.long_window) * Fraction(tier.burn_rate) * Fraction(budget) / Fraction(error) + Fraction(
        base, 2
    )


def alert_labels(spec: Spec, service: Service, slo: SLO, tier: Tier) -> dict[str, str]:
    return {**dict(_alert_labels(spec.stack, spec.routing, service.labels, slo, tier)), **burning_group(slo)}


def _group_untemplate(slo: SLO, text: str) -> str:
    """Alert text of a grouped SLO names the burning group: fill in its label values."""
    for label, value in burning_group(slo).items():
        text = text.replace(f"{{{{ $labels.{label} }}}}", value)
    return text


@functools.lru_cache(maxsize=1024)  # several scenarios per tier expect the same labels
def _alert_labels(
    stack: Stack, routing: Routing, service_labels: tuple[tuple[str, str], ...], slo: SLO, tier: Tier
) -> tuple[tuple[str, str], ...]:
    rule = rule_render.burn_alert(stack, routing, slo, tier, {**dict(service_labels), **dict(slo.labels)})
    return tuple((k, str(v)) for k, v in rule["labels"].items())


def expected_annotations(spec: Spec, slo: SLO, tier: Tier, burn: Fraction, budget: Fraction | None) -> dict[str, str]:
    """The rule's annotations with its two templated values replaced by the expected ones."""
    annotations = dict(_burn_annotations(spec.stack, spec.routing, slo, tier))
    description = annotations["description"]
    description = description.replace('{{ $value | printf "%.1f" }}', f"{float(burn):.1f}")
    left = "unknown" if budget is None else humanize_percentage(budget)  # the template's "else" branch
    description = description.replace(rule_render.budget_query(slo), left)
    annotations["description"] = _untemplate(description)
    return {k: _group_untemplate(slo, v) for k, v in annotations.items()}


@functools.lru_cache(maxsize=1024)
def _burn_annotations(stack: Stack, routing: Routing, slo: SLO, tier: Tier) -> tuple[tuple[str, str], ...]:
    return tuple(rule_render.burn_alert(stack, routing, slo, tier, {})["annotations"].items())


def _untemplate(text: str) -> str:
    """What Prometheus prints for template_safe() text: the escaped braces come out verbatim."""
    return text.replace('{{ "{{" }}', "{{").replace('{{ "}}" }}', "}}")


# ----------------------------------------------------------------------------------------
# Test groups


def hourly(spec: Spec, slo: SLO, tier: Tier) -> bool:
    """A tier whose long window is read from hourly rollups, and whose windows are whole hours,
    is tested with hourly evaluations: its rules are the same, it only moves at the hour marks
    anyway, and a 3d window then takes 80 evaluations instead of 4,700. Its errors start and
    stop at hour marks, so each hourly base sample (the last B of its hour) stands for the hour."""
    hour = slo_math.ROLLUP_STEP
    return (
        tier.long_window in rolled(slo, spec.stack.base_window)
        and tier.long_window % hour == 0
        and tier.short_window % hour == 0
        and hourly_grid(spec, slo)
    )


def hourly_times(slo: SLO, tier: Tier, sc: Scenario, onset: int, base: int) -> tuple[int, int]:
    """(last quiet hour, first firing hour) of a tier evaluated hourly, from the ratios of sums
    its windows hold at each hour; the quiet check steps back an hour where a ratio sits within
    float noise of the threshold. It must agree with SLO-MATH.md's L*r*b/e to within 2h."""
    threshold = Fraction(tier.burn_rate) * _fraction(slo.budget)
    t = first_over_threshold(slo, tier, sc, onset, base, window_ratio)
    quiet = t - base
    if _near(threshold, [window_ratio(slo, sc, quiet, w, base) for w in (tier.long_window, tier.short_window)]):
        quiet -= base
    formula = Fraction(tier.long_window) * threshold / _fraction(sc.error)
    assert abs(t - onset - formula) <= 2 * base, f"{slo.id} {tier.long}: {t - onset}s against L*r*b/e {formula}"
    return quiet, t


def tier_groups(
    spec: Spec, service: Service, slo: SLO, tier: Tier, every: int | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """Just above the threshold it fires when predicted and stops after the errors stop; just
    below it never fires. every: the test's evaluation interval (default the spec's B)."""
    real = spec.stack.base_window
    base = every or real
    step = real // 2 if real % 2 == 0 else real
    threshold = tier.burn_rate * slo.budget
    name = cv.burn_alert_name(tier)
    labels = alert_labels(spec, service, slo, tier)
    groups = []

    error = _above(threshold, slo.budget)
    expect = detection(tier, slo.budget, error, base)
    # Clean traffic first, long enough that the long window is full when the alert is due
    # (the formula assumes a full window of good events before the onset).
    onset = _ceil_to(Fraction(tier.long_window) * (1 - Fraction(threshold) / Fraction(error)), base) + base
    t_quiet, t_fire = alert_times(slo, tier, onset, expect, base)
    sc = Scenario(step=step, end=0, onset=onset, stop=t_fire, error=error, rng=real)
    if every:
        # Hourly evaluations see every sample the rules see: the first firing hour is exact.
        t_quiet, t_fire = hourly_times(slo, tier, sc, onset, base)
        sc.stop = t_fire
    t_fire = _stable_check_time(slo, tier, sc, t_fire, base)
    t_stopped = stopped_by(slo, tier, t_fire, base)
    stops = "errors stop then, so it stops within the short window plus B, by"
    if every:
        # The exact hour it stops: the first whose windows no longer both hold a ratio over
        # the threshold (an alert that lingers, e.g. keep_firing_for, fails here).
        t_stopped = first_not_over(slo, tier, sc, t_fire, base)
        stops = "errors stop then; it stops at the first hour the windows' ratios of sums allow,"
    sc.end = t_stopped + base
    series = input_series(slo, sc)
    assert series is not None
    tests: list[dict[str, Any]] = [
        {"eval_time": at(t_quiet), "alertname": name, "exp_alerts": []},
        {
            "eval_time": at(t_fire),
            "alertname": name,
            "exp_alerts": [
                {
                    "exp_labels": labels,
                    "exp_annotations": expected_annotations(
                        spec, slo, tier, short_burn(slo, tier, sc, t_fire, base), budget_left(slo, sc, t_fire, base)
                    ),
                }
            ],
        },
        {"eval_time": at(t_stopped), "alertname": name, "exp_alerts": []},
    ]
    note = (
        f"{name} ({tier.severity} {tier.long}/{tier.short} > {num(tier.burn_rate)}x), just above the threshold: "
        f"error ratio {num(error)} ({num(error / threshold)} x {num(threshold)}) from {at(onset)}. Predicted detection "
        f"L*r*b/e + B/2 = {float(expect):.0f}s after onset{lag_note(slo, tier, base)}: not firing at {at(t_quiet)}, "
        f"firing at {at(t_fire)}; {stops} {at(t_stopped)}."
    )
    groups.append((note, {"name": note, "interval": at(step), "input_series": series, "alert_rule_test": tests}))

    below = threshold * BELOW
    # Errors from the start: both windows hold exactly the below-threshold ratio as soon as
    # they have samples, so a short run proves the comparison.
    checks = [tier.short_window + 2 * base, 2 * tier.short_window + 2 * base]
    sc = Scenario(step=step, end=checks[-1] + base, onset=0, stop=checks[-1] + base, error=below, rng=real)
    series = input_series(slo, sc)
    assert series is not None
    note = (
        f"{name}, just below the threshold: error ratio {num(below)} (0.9 x {num(threshold)}) from the "
        f"start never fires."
    )
    groups.append(
        (
            note,
            {
                "name": note,
                "interval": at(step),
                "input_series": series,
                "alert_rule_test": [{"eval_time": at(t), "alertname": name, "exp_alerts": []} for t in checks],
            },
        )
    )
    return groups


def outage_history(slo: SLO, base: int) -> int:
    """Clean traffic before the full-outage test: the longest window read exactly (every page
    tier's long window, every short window). Windows read from hourly rollups (days long) are
    only part full then: their timing is outage_due's, and their full-window timing is the
    "just above" tests' (which replay the whole window)."""
    exact = [t.long_window for t in slo.tiers if t.long_window not in rolled(slo, base)]
    return max([*exact, *(t.short_window for t in slo.tiers)])


def outage_due(slo: SLO, tier: Tier, sc: Scenario, base: int) -> Fraction:
    """When errors from sc.onset after sc.onset of clean traffic push both of a tier's windows
    over its threshold, in seconds after onset, + B/2 as in SLO-MATH.md's L*r*b/e + B/2 (which
    it equals when the long window was full of clean traffic): with H of history the long
    window holds H clean and D bad, so it fires near D = r*b*H/(e - r*b) instead of L*r*b/e."""
    if tier.long_window <= sc.onset:
        return detection(tier, slo.budget, sc.error, base)
    t = first_over_threshold(slo, tier, sc, sc.onset, base, exact_window_ratio)
    return Fraction(t - sc.onset) - Fraction(base, 2)


Ratio = Callable[[SLO, Scenario, int, int, int], Fraction | None]


def first_over_threshold(slo: SLO, tier: Tier, sc: Scenario, onset: int, base: int, ratio: Ratio) -> int:
    """The first evaluation after onset (on the base grid) where both of the tier's windows,
    as `ratio` reads them, hold an error ratio over its threshold; within two long windows.

    With constant traffic and errors from onset to stop, a window ending by stop only trades
    clean samples for bad ones as it slides, so both ratios only rise until stop: there the
    first such evaluation is found by bisection (a 3d tier at 1m would scan thousands of
    evaluations). Anything else, and past stop, is scanned in order."""
    threshold = Fraction(tier.burn_rate) * _fraction(slo.budget)

    def over(t: int) -> bool:
        for window in (tier.long_window, tier.short_window):
            value = ratio(slo, sc, t, window, base)
            if value is None or value <= threshold:
                return False
        return True

    first, end = onset + base, onset + 2 * tier.long_window + base
    # On the base grid only: _constant_ratio counts grid samples, and a window ending off the
    # grid would read a full window of errors one sample short.
    constant = sc.busy is None and not sc.phases and "error_at" not in vars(sc)
    if constant and onset == sc.onset and onset % base == 0:
        # The last evaluation (on the grid from `first`) whose windows end by stop.
        rising_until = first + (min(sc.stop, end - base) - first) // base * base
        if rising_until >= first and over(rising_until):
            lo, hi = first, rising_until  # over(hi); the answer is the first grid time in [lo, hi] that is over
            while lo < hi:
                mid = lo + (hi - lo) // (2 * base) * base
                if over(mid):
                    hi = mid
                else:
                    lo = mid + base
            return lo
        first = max(first, rising_until + base)
    for t in range(first, end, base):
        if over(t):
            return t
    raise AssertionError(f"{slo.id} {tier.long}: the errors never cross the threshold")


def _near(threshold: Fraction, ratios: list[Fraction | None]) -> bool:
    """A ratio within float noise of the threshold: which side Prometheus sees is not known."""
    return any(r is not None and abs(r - threshold) <= threshold * Fraction(1, 10**9) for r in ratios)


def first_not_over(slo: SLO, tier: Tier, sc: Scenario, start: int, base: int) -> int:
    """The first evaluation after `start` where the tier's windows no longer both hold an error
    ratio over its threshold (window_ratio); one later when a ratio there sits within float
    noise of the threshold (the ratios only fall once the errors have stopped)."""
    threshold = Fraction(tier.burn_rate) * _fraction(slo.budget)
    for t in range(start + base, start + 2 * tier.long_window + 2 * base, base):
        ratios = [window_ratio(slo, sc, t, w, base) for w in (tier.long_window, tier.short_window)]
        if not all(r is not None and r > threshold for r in ratios):
            return t + base if _near(threshold, ratios) else t
    raise AssertionError(f"{slo.id} {tier.long}: the alert never stops")


def full_outage_group(spec: Spec, service: Service, slo: SLO) -> tuple[str, dict[str, Any]]:
    """100% errors after clean traffic as long as every exactly-read window: every tier fires
    when predicted (L * r * b + B/2; a part-full rollup window by outage_due) and stops within
    its short window plus B once errors stop."""
    base = spec.stack.base_window
    step = base // 2 if base % 2 == 0 else base
    onset = outage_history(slo, base)
    error = Decimal(1)
    probe = Scenario(step=step, end=0, onset=onset, stop=10**12, error=error)
    due = {t: outage_due(slo, t, probe, base) for t in slo.tiers}
    times = {t: alert_times(slo, t, onset, due[t], base) for t in slo.tiers}
    stop = max(fire for _, fire in times.values())
    sc = Scenario(step=step, end=0, onset=onset, stop=stop, error=error)
    stop = max(_stable_check_time(slo, t, sc, stop, base) for t in slo.tiers)
    sc.stop = stop
    # A tier tested hourly stops in its hourly test (after its "just above" errors): watching
    # a 3d ticket's 6h short window drain here would double this test's length.
    stop_checked = [t for t in slo.tiers if not hourly(spec, slo, t)]
    sc.end = max([stop + base, *(stopped_by(slo, t, stop, base) + base for t in stop_checked)])
    series = input_series(slo, sc)
    assert series is not None
    tests: list[dict[str, Any]] = []
    lines = []
    for tier in slo.tiers:
        name = cv.burn_alert_name(tier)
        t_quiet, t_fire = times[tier]
        labels = alert_labels(spec, service, slo, tier)
        if t_quiet > onset:
            tests.append({"eval_time": at(t_quiet), "alertname": name, "exp_alerts": []})
        for t in (t_fire, stop):
            tests.append(
                {
                    "eval_time": at(t),
                    "alertname": name,
                    "exp_alerts": [
                        {
                            "exp_labels": labels,
                            "exp_annotations": expected_annotations(
                                spec, slo, tier, short_burn(slo, tier, sc, t, base), budget_left(slo, sc, t, base)
                            ),
                        }
                    ],
                }
            )
        if tier in stop_checked:
            tests.append({"eval_time": at(stopped_by(slo, tier, stop, base)), "alertname": name, "exp_alerts": []})
        part = f" (its {tier.long} window holds the {at(onset)} before it)" if tier.long_window > onset else ""
        lines.append(f"{name} due {float(due[tier]):.0f}s after onset{part}{lag_note(slo, tier, base)}")
    note = f"100% errors from {at(onset)} to {at(stop)}: " + ", ".join(lines) + "; "
    hourly_file = cv.hourly_test_file(slo).removeprefix("prometheus/tests/")
    if len(stop_checked) == len(slo.tiers):
        note += "each stops within its short window plus B after the errors stop."
    elif stop_checked:
        note += (
            ", ".join(cv.burn_alert_name(t) for t in stop_checked)
            + " stop within the short window plus B after the errors stop (the others, tested hourly, in "
            + f"{hourly_file})."
        )
    else:
        note += f"each stops, tested hourly, in {hourly_file}."
    group: dict[str, Any] = {"name": note, "interval": at(step), "input_series": series, "alert_rule_test": tests}
    if rolled(slo, base) and onset >= slo_math.ROLLUP_STEP + 2 * base:
        # The clean hour before the onset: each rollup sums one hour of base samples.
        group["promql_expr_test"] = [rollup_count_check(spec, slo, sc, onset)]
        note += f" At {at(onset)}, each hourly rollup sums {slo_math.ROLLUP_STEP // base} base samples."
        group["name"] = note
    return (note, group)


def rollup_count_group(spec: Spec, slo: SLO) -> tuple[str, dict[str, Any]]:
    """An hour and two base windows of steady traffic, then rollup_count_check: for SLOs whose
    100% case starts too early to hold a clean hour (every exact window under an hour)."""
    base = spec.stack.base_window
    step = base // 2 if base % 2 == 0 else base
    t = slo_math.ROLLUP_STEP + 2 * base
    sc = Scenario(step=step, end=t, onset=0, stop=0, error=Decimal(0))
    series = input_series(slo, sc)
    assert series is not None
    note = f"Steady traffic for {at(t)}: each hourly rollup sums {slo_math.ROLLUP_STEP // base} base samples."
    check = rollup_count_check(spec, slo, sc, t)
    return (note, {"name": note, "interval": at(step), "input_series": series, "promql_expr_test": [check]})


def alert_times(slo: SLO, tier: Tier, onset: int, due: Fraction, base: int) -> tuple[int, int]:
    """(an evaluation where the alert surely has not fired yet, one where it surely has) for
    errors from `onset` that SLO-MATH.md says are detected `due` seconds later: one base window
    either side. A long window read from hourly rollups only moves at the hours, so both move
    to the hour marks around them: a ticket may fire up to 1h later than the formula."""
    quiet = onset + _floor_to(due - base, base)
    fire = onset + _ceil_to(due + base, base)
    if tier.long_window in rolled(slo, base):
        hour = slo_math.ROLLUP_STEP
        quiet = _floor_to(Fraction(quiet), hour) + hour - base  # the long window still ends by `quiet`
        fire = _ceil_to(Fraction(fire), hour)
        assert fire - (onset + due) <= hour + 2 * base, "a rolled-up window lags by at most its step"
    return quiet, fire


def stopped_by(slo: SLO, tier: Tier, errors_stop: int, base: int) -> int:
    """When the alert has surely stopped: the short window has held no error for a base window
    (at the next hour mark when the short window, too, is read from rollups)."""
    t = errors_stop + tier.short_window + base
    if tier.short_window in rolled(slo, base):
        t = _ceil_to(Fraction(t), slo_math.ROLLUP_STEP)
    return t


def lag_note(slo: SLO, tier: Tier, base: int) -> str:
    if tier.long_window not in rolled(slo, base):
        return ""
    return f" (its {tier.long} window is read from hourly rollups: at the next hour mark)"


def _ceil_to(value: Fraction, unit: int) -> int:
    return math.ceil(value / unit) * unit


def _floor_to(value: Fraction, unit: int) -> int:
    return math.floor(value / unit) * unit


def _above(threshold: Decimal, budget: Decimal) -> Decimal:
    """An error ratio just above the threshold (10%, or a little more where needed): once the
    short window is full of it, the alert's $value is error / b, printed with one decimal, so
    that value must not sit on a rounding edge (1.65 prints as 1.6 or 1.7 by float noise)."""
    for factor in (ABOVE, *ABOVE_FALLBACKS):
        error = threshold * factor
        if error >= 1:
            error = (threshold + 1) / 2
        if _safe_format(Fraction(error) / Fraction(budget), "{:.1f}"):
            return error
    raise AssertionError(f"no error ratio just above {threshold} prints stably")


def _stable_check_time(slo: SLO, tier: Tier, sc: Scenario, t: int, base: int) -> int:
    """Move the firing check later (never earlier) until the printed values are immune to float noise.
    A budget read from hourly rollups only changes at the hour marks: allow two more hours."""
    for _ in range(50 + 2 * slo_math.ROLLUP_STEP // base):
        sc.stop = max(sc.stop, t)
        left = budget_left(slo, sc, t, base)
        burn = short_burn(slo, tier, sc, t, base)
        if _safe_format(burn, "{:.1f}") and (left is None or _percent_safe(left)):
            return t
        t += base
    raise AssertionError(f"no stable check time for {slo.id} {tier.long}")


def _percent_safe(value: Fraction) -> bool:
    x = float(value)
    return humanize_percentage(x * (1 - 1e-9)) == humanize_percentage(x * (1 + 1e-9))


def ratio_groups(spec: Spec, slo: SLO) -> list[tuple[str, dict[str, Any]]]:
    """The SLO's own recording test: a window of base samples is a ratio of sums of what its
    base rules record from its selectors, with 10x day/night traffic. The windows read from
    hourly rollups are the same rules for every SLO of a shape: rolled_ratio_group checks them
    hourly beside the shape's alerts test (rollup_count_check, the rollup's own range)."""
    base = spec.stack.base_window
    # A compressed day: the window nearest an hour holds a busy half at 10x traffic with 1%
    # errors and a quiet half with 10% errors. Longer windows cost promtool more time and
    # prove nothing more: the ratio of sums does not depend on the window's length (the
    # shape's alerts test replays every window). A window of a few base samples cannot hold
    # a busy and a quiet half (a 30s short window at B = 30s is one sample): pick among
    # windows of at least 4 samples.
    exact = [w for w in slo.windows if w not in rolled(slo, base) and w >= 4 * base]
    groups = []
    if exact:
        groups.append(_ratio_group(spec, slo, min(exact, key=lambda w: abs(w - slo_math.ROLLUP_STEP))))
    # Rolled-up windows here too (every minute, a day long) when the hourly file cannot hold
    # them (a period of no whole hours), or when no exact window can hold a day/night shape.
    if rolled(slo, base) and (not exact or not rolled_hourly(spec, slo)):
        groups.append(_ratio_group(spec, slo, min(rolled(slo, base))))
    return groups or [_ratio_group(spec, slo, max(slo.windows))]


def rolled_hourly(spec: Spec, slo: SLO) -> bool:
    """The windows read from hourly rollups are checked with hourly evaluations (as hourly()
    tiers are): each rollup then holds one base sample, which stands for its hour."""
    return bool(rolled(slo, spec.stack.base_window)) and hourly_grid(spec, slo)


def hourly_grid(spec: Spec, slo: SLO) -> bool:
    hour = slo_math.ROLLUP_STEP
    return slo.period % hour == 0 and hour % spec.stack.base_window == 0


def rolled_ratio_group(spec: Spec, slo: SLO) -> tuple[str, dict[str, Any]]:
    """The shortest window read from hourly rollups is a ratio of sums of the rollups, with
    10x day/night traffic, evaluated hourly. Not its burn rate (a dashboard rule, ratio /
    budget like every window's; the recording test checks that of one window): the dashboard
    rules would be evaluated in every hourly case."""
    return _ratio_group(spec, slo, min(rolled(slo, spec.stack.base_window)), every=slo_math.ROLLUP_STEP, burn=False)


def rollup_count_check(spec: Spec, slo: SLO, sc: Scenario, t: int) -> dict[str, Any]:
    """At t, after an hour of steady traffic: each hourly rollup sums exactly one hour of base
    samples (ROLLUP_STEP / B of them; a `[1h]` range would hold one more, as Prometheus 2's
    ranges include their start). The hourly tests cannot see this: there a rollup holds one."""
    base = spec.stack.base_window
    assert t >= slo_math.ROLLUP_STEP + 2 * base and all(sc.traffic_at(s) == 1 for s in (t, t - slo_math.ROLLUP_STEP))
    sel = cv.slo_matchers(slo)
    count = slo_math.ROLLUP_STEP // base
    groups = group_labels(slo)
    assert groups is not None
    own = {"service": slo.service, "slo": slo.name, "team": slo.team}
    ratio = f"{cv.total_rollup(spec.stack)}{sel} / {cv.total_rate(spec.stack)}{sel}"
    return {
        "expr": f"abs({ratio} - {count}) < bool 1e-9",
        "eval_time": at(t),
        "exp_samples": [{"labels": series_name("", {**own, **g}), "value": 1} for g in groups],
    }


def _ratio_group(
    spec: Spec, slo: SLO, window: int, every: int | None = None, burn: bool = True
) -> tuple[str, dict[str, Any]]:
    """every: the test's evaluation interval (default B); hourly, each base sample stands for
    its hour and the window is checked at an hour mark. burn: check the window's burn rate too."""
    real = spec.stack.base_window
    base = every or real
    step = real // 2 if real % 2 == 0 else real
    # A window read from hourly rollups is checked half an hour after its last hour mark (it
    # still holds the day that ended there, with no extra samples from the half hour), or at
    # an hour mark when evaluated hourly.
    if every:
        t = window + every
    elif window in rolled(slo, real):
        t = window + slo_math.ROLLUP_STEP // 2
    else:
        t = window + real
    busy = slo.sli.kind != "availability"  # scrape samples cannot vary with traffic
    sc = Scenario(
        step=step,
        end=t,
        onset=0,
        stop=t,
        error=Decimal("0.01"),
        busy=(window, window // 2, 10) if busy else None,
        rng=real if every else 0,
    )
    quiet_error = Decimal("0.1")
    base_error = sc.error

    def error_at(t: int) -> Decimal:
        if sc.busy is None:
            return base_error
        return base_error if sc.traffic_at(t) > 1 else quiet_error

    sc.error_at = error_at  # type: ignore[method-assign]
    series = input_series(slo, sc)
    assert series is not None
    # The window's samples hold one whole cycle of the day/night shape wherever it ends.
    expected, mean_of_ratios = _day_night_ratios(sc, window, base, quiet_error)
    sel = cv.slo_matchers(slo)
    ratio = f"{cv.error_ratio(window)}{sel}"
    # A grouped SLO: the first group has the day/night errors, the other none, so the check
    # holds for the first only (a ratio over both groups would fail it for both).
    groups = group_labels(slo)
    assert groups is not None
    own = {"service": slo.service, "slo": slo.name, "team": slo.team}
    samples = [{"labels": series_name("", {**own, **g}), "value": 1 if i == 0 else 0} for i, g in enumerate(groups)]
    tests = [
        {"expr": f"abs({ratio} - {float(expected)!r}) < bool 1e-12", "eval_time": at(t), "exp_samples": samples},
    ]
    if burn:
        tests.append(
            {
                "expr": f"abs({cv.burn_rate(window)}{sel} - {float(expected / Fraction(slo.budget))!r}) < bool 1e-9",
                "eval_time": at(t),
                "exp_samples": samples,
            }
        )
    how = "sum of hourly rollups read at the hour marks" if window in rolled(slo, real) else "ratio of sums"
    if every:
        how += f" (evaluated every {format_duration(every)}: each rollup holds one base sample)"
    note = f"Recording rules: the {format_duration(window)} error ratio is a {how} = {float(expected):.6g}" + (
        f" (busy half at 10x traffic with 1% errors, quiet half with 10%; a mean of ratios would say "
        f"{float(mean_of_ratios):.6g})"
        if busy
        else " (constant traffic)"
    )
    if busy:
        assert abs(Fraction(expected) - Fraction(mean_of_ratios)) > Fraction(expected) / 2, "must tell them apart"
    return (note, {"name": note, "interval": at(step), "input_series": series, "promql_expr_test": tests})


def _day_night_ratios(sc: Scenario, window: int, base: int, quiet_error: Decimal) -> tuple[Fraction, Fraction]:
    """(ratio of sums, mean of ratios) over the window's base samples; the day/night shape
    depends only on the numbers, so SLOs of the same shape share one computation."""
    return _ratios_for(
        _busy_samples(window, base, sc.step, sc.busy), sc.busy[2] if sc.busy else 1, sc.error, quiet_error
    )


@functools.lru_cache(maxsize=256)
def _busy_samples(window: int, base: int, step: int, busy: tuple[int, int, int] | None) -> tuple[bool, ...]:
    """For each base sample in the window: is it in the busy half of the day?"""
    shape = Scenario(step=step, end=0, onset=0, stop=0, error=Decimal(0), busy=busy)
    t = window + base
    return tuple(shape.traffic_at(s) > 1 for s in range(t - window + base, t + 1, base))


@functools.cache
def _ratios_for(
    busy: tuple[bool, ...], factor: int, busy_error: Decimal, quiet_error: Decimal
) -> tuple[Fraction, Fraction]:
    n_busy = sum(busy)
    n_quiet = len(busy) - n_busy
    if factor == 1:  # constant traffic: one error ratio throughout
        return Fraction(busy_error), Fraction(busy_error)
    total = n_busy * factor + n_quiet
    bad = n_busy * factor * Fraction(busy_error) + n_quiet * Fraction(quiet_error)
    mean = (n_busy * Fraction(busy_error) + n_quiet * Fraction(quiet_error)) / len(busy)
    return bad / total, mean


def quiet_group(spec: Spec, slo: SLO) -> tuple[str, dict[str, Any]]:
    """No traffic at all: the ratios have no value (not NaN), so nothing can page."""
    base = spec.stack.base_window
    step = base // 2 if base % 2 == 0 else base
    end = 2 * max(t.short_window for t in slo.tiers) + 2 * base
    sc = Scenario(step=step, end=end, onset=0, stop=0, error=Decimal(0))
    series = input_series(slo, sc)
    assert series is not None
    for item in series:  # flat counters: the service is up but nobody calls it
        item["values"] = f"{COUNTER_START}x{end // step}"
    sel = cv.slo_matchers(slo)
    exprs = [f"{cv.error_ratio(w)}{sel}" for w in slo.windows] + [f"{cv.BUDGET_REMAINING}{sel}"]
    note = "A quiet service (counters exist, no events): every window ratio and the budget are empty, not NaN."
    return (
        note,
        {
            "name": note,
            "interval": at(step),
            "input_series": series,
            "promql_expr_test": [{"expr": e, "eval_time": at(end), "exp_samples": []} for e in exprs],
        },
    )


def absent_group(
    spec: Spec, service: Service, slo: SLO, alerts: dict[str, dict[str, Any]]
) -> tuple[str, dict[str, Any]]:
    base = spec.stack.base_window
    step = base // 2 if base % 2 == 0 else base
    stop = 30 * 60
    sc = Scenario(step=step, end=stop, onset=0, stop=0, error=Decimal(0))
    series = input_series(slo, sc)
    assert series is not None
    # Last base sample at `stop`; absent() holds from the next evaluation; fires `for` later.
    fire = stop + base + rule_render.ABSENT_FOR

    def absent_alert() -> dict[str, Any]:
        rule = alerts[cv.ALERT_ABSENT]
        return {
            "exp_labels": {k: _untemplate(str(v)) for k, v in rule["labels"].items()},
            "exp_annotations": rule["annotations"],
        }

    others: list[dict[str, Any]] = []  # the test loads only this SLO's rule file
    note = (
        f"{cv.ALERT_ABSENT}: the SLI's series end at {at(stop)}; the alert fires {at(rule_render.ABSENT_FOR)} "
        f"after the last base sample."
    )
    return (
        note,
        {
            "name": note,
            "interval": at(step),
            "input_series": series,
            "alert_rule_test": [
                {"eval_time": at(stop), "alertname": cv.ALERT_ABSENT, "exp_alerts": others},
                {"eval_time": at(fire - base), "alertname": cv.ALERT_ABSENT, "exp_alerts": others},
                {
                    "eval_time": at(fire + base),
                    "alertname": cv.ALERT_ABSENT,
                    "exp_alerts": [absent_alert(), *others],
                },
            ],
        },
    )


def groups_limit_groups(spec: Spec, slo: SLO, alerts: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """SLOGroupsOverLimit: max_groups groups with traffic stay quiet; one more fires `for` after
    the first base sample counts them."""
    base = spec.stack.base_window
    step = base // 2 if base % 2 == 0 else base
    rule = alerts[cv.ALERT_GROUPS_OVER_LIMIT]
    first = first_base_sample(slo, base) or base
    fire = first + rule_render.BUDGET_LOW_FOR
    out = []
    for count in (slo.max_groups, slo.max_groups + 1):
        sc = Scenario(step=step, end=fire + 2 * base, onset=0, stop=0, error=Decimal(0))
        series = input_series(slo, sc, groups=count)
        if series is None:
            return []
        over = count > slo.max_groups
        annotations = {k: v.replace("{{ $value }}", str(count)) for k, v in rule["annotations"].items()}
        expected = [
            {"exp_labels": {k: _untemplate(str(v)) for k, v in rule["labels"].items()}, "exp_annotations": annotations}
        ]
        note = f"{cv.ALERT_GROUPS_OVER_LIMIT}: {count} groups with traffic " + (
            f"(max_groups {slo.max_groups}) fire {at(rule_render.BUDGET_LOW_FOR)} after they are counted."
            if over
            else "(= max_groups) never fire."
        )
        out.append(
            (
                note,
                {
                    "name": note,
                    "interval": at(step),
                    "input_series": series,
                    "alert_rule_test": [
                        {"eval_time": at(fire - base), "alertname": cv.ALERT_GROUPS_OVER_LIMIT, "exp_alerts": []},
                        {
                            "eval_time": at(fire + base),
                            "alertname": cv.ALERT_GROUPS_OVER_LIMIT,
                            "exp_alerts": expected if over else [],
                        },
                    ],
                },
            )
        )
    return out


def _below(value: Fraction | None, line: Fraction) -> bool:
    return value is not None and value < line


def budget_group(
    spec: Spec, service: Service, slo: SLO, alerts: dict[str, dict[str, Any]]
) -> tuple[str, dict[str, Any]]:
    """SLOErrorBudgetLow: burning at 2x drains the budget; it fires `for` after crossing the line."""
    base = spec.stack.base_window
    step = base // 2 if base % 2 == 0 else base
    error = min(2 * slo.budget, Decimal(1))
    low = Fraction(slo.budget_low)
    margin = Fraction(1, 10**9)
    for onset in range(10 * base, 30 * base, base):
        sc = Scenario(step=step, end=0, onset=onset, stop=10**9, error=error)
        crossing = next(t for t in range(onset, onset + slo.period, base) if _below(budget_left(slo, sc, t, base), low))
        # No evaluation may sit on the line itself: float noise would decide it. (With the
        # period read from hourly rollups, the budget has no value before the first hour.)
        before = budget_left(slo, sc, crossing - base, base)
        if _below(budget_left(slo, sc, crossing, base), low - margin) and (before is None or before > low + margin):
            break
    check = crossing + rule_render.BUDGET_LOW_FOR + base
    sc.end = check + base
    series = input_series(slo, sc)
    assert series is not None
    rule = alerts[cv.ALERT_BUDGET_LOW]
    value = budget_left(slo, sc, check, base)
    while value is None or not _percent_safe(value):
        check += base
        sc.end = check + base
        value = budget_left(slo, sc, check, base)
        series = input_series(slo, sc)
    annotations = dict(rule["annotations"])
    annotations["description"] = annotations["description"].replace(
        "{{ $value | humanizePercentage }}", humanize_percentage(value)
    )
    annotations = {k: _group_untemplate(slo, v) for k, v in annotations.items()}
    note = (
        f"{cv.ALERT_BUDGET_LOW}: error ratio {num(error)} (burn rate 2) from {at(onset)}; budget left "
        f"(1 - ratio/b, over the samples so far) drops below "
        f"{num(slo.budget_low * 100)}% at {at(crossing)}; fires {at(rule_render.BUDGET_LOW_FOR)} later."
    )
    return (
        note,
        {
            "name": note,
            "interval": at(step),
            "input_series": series,
            "alert_rule_test": [
                {
                    "eval_time": at(crossing + rule_render.BUDGET_LOW_FOR - base),
                    "alertname": cv.ALERT_BUDGET_LOW,
                    "exp_alerts": [],
                },
                {
                    "eval_time": at(check),
                    "alertname": cv.ALERT_BUDGET_LOW,
                    "exp_alerts": [
                        {
                            "exp_labels": {
                                **{k: _untemplate(str(v)) for k, v in rule["labels"].items()},
                                **burning_group(slo),
                            },
                            "exp_annotations": annotations,
                        }
                    ],
                },
            ],
        },
    )


def _test_doc(
    spec: Spec,
    slo: SLO,
    rule_files: dict[str, list[str]],
    groups: list[tuple[str, dict[str, Any]]],
    purpose: str,
    path: str,
    every: int | None = None,
) -> str:
    """rule_files: each rule file the test loads, with the names of its groups. every: the
    evaluation interval (default the spec's)."""
    doc = {
        "rule_files": [f"../../{f.removeprefix('prometheus/')}" for f in rule_files],
        "evaluation_interval": at(every or spec.stack.base_window),
        # promtool otherwise evaluates groups in no fixed order; dashboard series read the SLO's ratios.
        "group_eval_order": [name for names in rule_files.values() for name in names],
        "tests": [group for _, group in groups],
    }
    head = header(
        spec.source_file,
        f"promtool unit tests for SLO {slo.service}/{slo.name}: {purpose} Numbers "
        f"come from SLO-MATH.md's formulas. Run from prometheus/: promtool test rules "
        f"{path.removeprefix('prometheus/')}",
    )
    return head + yaml_text(doc)


def has_hourly_test(spec: Spec, slo: SLO) -> bool:
    """Whether the SLO's shape gets `<slo>.hourly.test.yml` (slo_hourly_test)."""
    return rolled_hourly(spec, slo) or any(hourly(spec, slo, tier) for tier in slo.tiers)


def slo_hourly_test(spec: Spec, service: Service, slo: SLO) -> str:
    """The rolled windows' ratio of sums and the cases of the tiers tested hourly (hourly())."""
    assert has_hourly_test(spec, slo)
    groups: list[tuple[str, dict[str, Any]]] = []
    if rolled_hourly(spec, slo):
        groups.append(rolled_ratio_group(spec, slo))
    for tier in slo.tiers:
        if hourly(spec, slo, tier):
            groups += tier_groups(spec, service, slo, tier, every=slo_math.ROLLUP_STEP)
    purpose = (
        "the windows read from hourly rollups are ratios of sums of the rollups; the tiers whose long "
        "window is read from them fire at the predicted hour mark 10% above their threshold, after a full "
        "long window, stop after the errors stop, and do not fire below it; evaluated hourly (the same rules: "
        "these windows only move at the hour marks). The other cases are in "
        f"{cv.alerts_test_file(slo).removeprefix('prometheus/tests/')}."
    )
    path = cv.hourly_test_file(slo)
    return _test_doc(spec, slo, _slo_groups(spec, service, slo), groups, purpose, path, every=slo_math.ROLLUP_STEP)


def slo_alerts_test(spec: Spec, service: Service, slo: SLO) -> str:
    groups: list[tuple[str, dict[str, Any]]] = []
    for tier in slo.tiers:
        if not hourly(spec, slo, tier):
            groups += tier_groups(spec, service, slo, tier)
    groups.append(full_outage_group(spec, service, slo))
    if rolled(slo, spec.stack.base_window) and "promql_expr_test" not in groups[-1][1]:
        groups.append(rollup_count_group(spec, slo))
    alerts = {rule["alert"]: rule for rule in rule_render.alert_rules(spec, service, slo)}
    groups.append(absent_group(spec, service, slo, alerts))
    groups.append(budget_group(spec, service, slo, alerts))
    if slo.group_by:
        groups += groups_limit_groups(spec, slo, alerts) or [groups_limit_no_data(spec, slo)]
    purpose = (
        "every alert fires at the predicted time (within one evaluation interval), not below its "
        "threshold, and stops after the errors stop."
    )
    others = test_shapes.covered(spec, slo)
    if others:
        purpose += (
            f" The alert rules of {len(others)} more SLO(s) of the same shape (SLI kind, objective, "
            "period, tiers) differ from these only in names, so this test covers them too: "
            + ", ".join(f"{o.service}/{o.name}" for o in others)
            + "."
        )
    path = cv.alerts_test_file(slo)
    return _test_doc(spec, slo, _slo_groups(spec, service, slo), groups, purpose, path)


def _slo_groups(spec: Spec, service: Service, slo: SLO) -> dict[str, list[str]]:
    return {cv.rules_file(slo): rule_render.slo_group_names(spec, slo)}


def slo_recording_test(spec: Spec, service: Service, slo: SLO) -> str:
    purpose = "windows are ratios of sums, burn rates are ratio / budget."
    rep = test_shapes.representative(spec, slo)
    if rep is not None and rep is not slo:
        purpose += (
            f" Its alert rules are those of {rep.service}/{rep.name} (same shape: SLI kind, objective, "
            f"period, tiers), names aside: {cv.alerts_test_file(rep).removeprefix('prometheus/')} tests them."
        )
    path = cv.recording_test_file(slo)
    rule_files = {**_slo_groups(spec, service, slo), cv.info_rules_file(slo): [rule_render.info_group_name(slo)]}
    return _test_doc(spec, slo, rule_files, ratio_groups(spec, slo), purpose, path)


def slo_test_files(spec: Spec, service: Service, slo: SLO) -> dict[str, str]:
    """An SLO's promtool tests: its recording test, and the alerts test when it is the first
    SLO of its shape (test_shapes)."""
    files = {cv.recording_test_file(slo): slo_recording_test(spec, service, slo)}
    if test_shapes.representative(spec, slo) is slo:
        files[cv.alerts_test_file(slo)] = slo_alerts_test(spec, service, slo)
        if has_hourly_test(spec, slo):
            files[cv.hourly_test_file(slo)] = slo_hourly_test(spec, service, slo)
    return files


def groups_limit_no_data(spec: Spec, slo: SLO) -> tuple[str, dict[str, Any]]:
    """Groups stackgen cannot synthesise (selectors pin the label): with no data, no alarm."""
    base = spec.stack.base_window
    note = f"{cv.ALERT_GROUPS_OVER_LIMIT}: with no series there are no groups to count; it does not fire."
    check = {"eval_time": at(base + rule_render.BUDGET_LOW_FOR + base), "alertname": cv.ALERT_GROUPS_OVER_LIMIT}
    return (
        note,
        {"name": note, "interval": at(base), "input_series": [], "alert_rule_test": [{**check, "exp_alerts": []}]},
    )


def coverage_only_tests(spec: Spec, service: Service, slo: SLO) -> str:
    """SLIs whose input stackgen cannot synthesise (raw queries, native histograms: promtool 2.42
    has no notation for them) still get every alert exercised: with no data nothing burns and
    the absent-data alert fires."""
    base = spec.stack.base_window
    fire = base + rule_render.ABSENT_FOR  # no base sample ever; absent() holds from the start
    rule = next(r for r in rule_render.alert_rules(spec, service, slo) if r["alert"] == cv.ALERT_ABSENT)
    checks: list[dict[str, Any]] = [
        {"eval_time": at(fire), "alertname": cv.burn_alert_name(t), "exp_alerts": []} for t in slo.tiers
    ]
    checks.append({"eval_time": at(fire), "alertname": cv.ALERT_BUDGET_LOW, "exp_alerts": []})
    if slo.group_by:
        checks.append({"eval_time": at(fire), "alertname": cv.ALERT_GROUPS_OVER_LIMIT, "exp_alerts": []})
    checks.append(
        {
            "eval_time": at(fire + base),
            "alertname": cv.ALERT_ABSENT,
            "exp_alerts": [
                {
                    "exp_labels": {k: _untemplate(str(v)) for k, v in rule["labels"].items()},
                    "exp_annotations": rule["annotations"],
                }
            ],
        }
    )
    note = (
        f"{slo.sli.kind} SLI{' (native histogram)' if slo.sli.native else ''}: stackgen cannot synthesise its "
        "input, so timing is not unit-tested here; with no data no burn alert fires and "
        f"{cv.ALERT_ABSENT} fires after {at(rule_render.ABSENT_FOR)}."
    )
    path = cv.alerts_test_file(slo)
    return _test_doc(
        spec,
        slo,
        _slo_groups(spec, service, slo),
        [(note, {"name": note, "interval": at(base), "input_series": [], "alert_rule_test": checks})],
        "without synthesisable input, only the no-data behaviour is tested.",
        path,
    )


def burn_alert_labels(slo: SLO, tier: Any) -> dict[str, str]:
    """The labels of a tier's burn-rate alert as ALERTS holds them (but alertstate)."""
    return {
        "alertname": cv.burn_alert_name(tier),
        "severity": tier.alert_severity,
        "service": slo.service,
        "slo": slo.name,
        "team": slo.team,
        "category": "slo",
        "tier": tier.severity,
    }


def one_chain_per_incident_test(spec: Spec) -> dict[str, Any] | None:
    """An outage fires both page tiers of an SLO: the first escalation level fires once for
    that SLO (one chain per incident), and once more for another SLO's page."""
    levels = spec.routing.escalation
    slos = [
        (slo, [t for t in slo.tiers if t.alert_severity in spec.routing.escalation_severities]) for slo in spec.slos
    ]
    slos = [(slo, tiers) for slo, tiers in slos if tiers]
    if not levels or len(slos) < 1 or len(slos[0][1]) < 2:
        return None
    base = spec.stack.base_window
    first = min(levels, key=lambda level: level.after)
    span = (first.after + 4 * base) // base

    def firing(slo: SLO, tier: Any) -> dict[str, str]:
        return {
            "series": series_name("ALERTS", {**burn_alert_labels(slo, tier), "alertstate": "firing"}),
            "values": f"1x{span}",
        }

    incidents = [slos[0]] + ([slos[1]] if len(slos) > 1 else [])
    series = [firing(slos[0][0], tier) for tier in slos[0][1][:2]]
    if len(incidents) > 1:
        series.append(firing(incidents[1][0], incidents[1][1][0]))
    name = f"EscalationLevel{first.level}"
    expected = []
    for slo, tiers in incidents:
        subject = f"SLO {slo.service}/{slo.name}"
        after = format_duration(first.after)
        expected.append(
            {
                "exp_labels": {
                    "service": slo.service,
                    "slo": slo.name,
                    "team": slo.team,
                    "severity": tiers[0].alert_severity,
                    "category": "slo",
                    "alertstate": "firing",
                    "escalation_level": str(first.level),
                    "escalated_alertname": f"{slo.service}/{slo.name}",
                },
                "exp_annotations": {
                    "summary": f"Escalation to level {first.level}: {subject} has been firing for {after}",
                    "description": f"{subject} is still firing after {after}; level {first.level} is notified.",
                },
            }
        )
    return {
        "name": f"One chain per incident: two page tiers of {slos[0][0].service}/{slos[0][0].name} firing "
        f"together escalate once ({name} after {format_duration(first.after)})"
        + (f", and {incidents[1][0].service}/{incidents[1][0].name} has its own chain." if len(incidents) > 1 else "."),
        "interval": at(base),
        "input_series": series,
        "alert_rule_test": [
            {"eval_time": at(first.after - base), "alertname": name, "exp_alerts": []},
            {"eval_time": at(first.after + base), "alertname": name, "exp_alerts": expected},
        ],
    }


def silence_stops_escalation_test(spec: Spec) -> dict[str, Any] | None:
    """Two instances of one alert fire together; Alertmanager silences one of them (the
    alert-state exporter's stackgen_alert_silenced turns 1) before the first level is due.
    The other escalates at the level's delay; the silenced one does not, and escalates the
    level's delay after the silence ends, as a new chain."""
    levels = spec.routing.escalation
    if not levels:
        return None
    base = spec.stack.base_window
    first = min(levels, key=lambda level: level.after)
    delay = first.after
    silence_from, silence_to = 2 * base, delay + 5 * base
    end = silence_to + delay + 4 * base
    name = "DiskFull"  # any alert of an escalating severity; the levels read ALERTS only
    service = spec.services[0].name
    severity = spec.routing.escalation_severities[0]

    def alert(instance: str) -> dict[str, str]:
        return {
            "alertname": name,
            "severity": severity,
            "service": service,
            "job": "node-exporter",
            "instance": instance,
        }

    silenced, other = alert("db-1:9100"), alert("db-2:9100")
    # What Alertmanager holds carries the labels Prometheus adds when sending: the queries ignore them.
    sent = {label: spec.stack.name for label in cv.SENT_ALERT_LABELS}
    steps = end // base
    series = [
        {"series": series_name("ALERTS", {**labels, "alertstate": "firing"}), "values": f"1x{steps}"}
        for labels in (silenced, other)
    ]
    before, during = silence_from // base, (silence_to - silence_from) // base
    series += [
        {
            "series": series_name("stackgen_alert_silenced", {**silenced, **sent}),
            "values": f"0x{before - 1} 1x{during - 1} 0x{steps - before - during}",
        },
        {"series": series_name("stackgen_alert_silenced", {**other, **sent}), "values": f"0x{steps}"},
    ]
    # An SLO whose escalating tiers all fire silenced (one chain per SLO): no level, ever.
    slo = next(
        (s for s in spec.slos if any(t.alert_severity in spec.routing.escalation_severities for t in s.tiers)), None
    )
    muted_slo = ""
    if slo is not None:
        for tier in slo.tiers:
            if tier.alert_severity not in spec.routing.escalation_severities:
                continue
            tier_labels = burn_alert_labels(slo, tier)
            series.append(
                {"series": series_name("ALERTS", {**tier_labels, "alertstate": "firing"}), "values": f"1x{steps}"}
            )
            series.append(
                {"series": series_name("stackgen_alert_silenced", {**tier_labels, **sent}), "values": f"1x{steps}"}
            )
        muted_slo = f" SLO {slo.service}/{slo.name} fires all along, silenced: it never escalates."
    after = format_duration(delay)
    level_name = f"EscalationLevel{first.level}"

    def escalated(labels: dict[str, str]) -> dict[str, Any]:
        return {
            "exp_labels": {
                **labels,
                "alertname": level_name,
                "alertstate": "firing",
                "escalation_level": str(first.level),
                "escalated_alertname": name,
            },
            "exp_annotations": {
                "summary": f"Escalation to level {first.level}: {name} has been firing for {after}",
                "description": f"{name} for {service} is still firing after {after}; level {first.level} is notified.",
            },
        }

    def expect(t: int, *alerts: dict[str, str]) -> dict[str, Any]:
        return {"eval_time": at(t), "alertname": level_name, "exp_alerts": [escalated(a) for a in alerts]}

    return {
        "name": f"A silence acknowledges: {name} on {silenced['instance']} and {other['instance']} fire from 0; "
        f"Alertmanager silences the first from {at(silence_from)} to {at(silence_to)}. {level_name} ({after}) "
        f"fires for the second only, and for the first {after} after its silence ends." + muted_slo,
        "interval": at(base),
        "input_series": series,
        "alert_rule_test": [
            expect(delay - base),
            expect(delay + base, other),
            expect(silence_to + delay - base, other),
            expect(silence_to + delay + base, silenced, other),
        ],
    }


def stack_test_file(spec: Spec) -> str:
    """Watchdog always fires; ServiceDown after its `for`; each escalation level fires its delay
    after the critical alert it escalates, not before, and stops when that alert resolves."""
    base = spec.stack.base_window
    service = next((s for s in spec.services if s.jobs), None)
    tests: list[dict[str, Any]] = [
        {
            "name": "Watchdog fires from the first evaluation, always.",
            "interval": at(base),
            "input_series": [],
            "alert_rule_test": [
                {
                    "eval_time": at(t),
                    "alertname": cv.ALERT_WATCHDOG,
                    "exp_alerts": [
                        {
                            "exp_labels": {"severity": "none", "category": "platform"},
                            "exp_annotations": _stack_rule(spec, cv.ALERT_WATCHDOG)["annotations"],
                        }
                    ],
                }
                for t in (0, 3600)
            ],
        }
    ]
    if service is not None:
        down_for = rule_render.SERVICE_DOWN_FOR
        # The source stays down until every level has fired, so each level is asserted firing
        # at its own delay (a wrong `for:` on the last level fails the test), then it recovers.
        last = max((level.after for level in spec.routing.escalation), default=0)
        recover = max(40 * 60, down_for + last + 5 * base)
        down = next(
            r
            for r in _stack_rules(spec)
            if r["alert"] == cv.ALERT_SERVICE_DOWN and r["labels"]["service"] == service.name
        )
        job = service.jobs[0]
        steps = recover // base
        # up (probe_success for a probe) is 0 until `recover`, then 1; the service's other jobs
        # stay absent.
        metric = rule_render.health_metric(spec, job)
        series = [
            {"series": series_name(metric, {"job": job, "instance": f"{job}:8080"}), "values": f"0x{steps} 1x{steps}"}
        ]
        alert_tests: list[dict[str, Any]] = [
            {"eval_time": at(down_for - base), "alertname": cv.ALERT_SERVICE_DOWN, "exp_alerts": []},
            {
                "eval_time": at(down_for + base),
                "alertname": cv.ALERT_SERVICE_DOWN,
                "exp_alerts": [{"exp_labels": dict(down["labels"]), "exp_annotations": dict(down["annotations"])}],
            },
            {"eval_time": at(recover + base), "alertname": cv.ALERT_SERVICE_DOWN, "exp_alerts": []},
        ]
        lines = [f"{cv.ALERT_SERVICE_DOWN} for {service.name} fires {at(down_for)} after up drops to 0"]
        for level in spec.routing.escalation:
            name = f"EscalationLevel{level.level}"
            due = down_for + level.after  # the source fires at `down_for`; the level waits `after` more
            labels = {
                **down["labels"],
                "alertstate": "firing",
                "escalation_level": str(level.level),
                "escalated_alertname": cv.ALERT_SERVICE_DOWN,
            }
            after = format_duration(level.after)
            annotations = {
                "summary": f"Escalation to level {level.level}: {cv.ALERT_SERVICE_DOWN} has been firing for {after}",
                "description": f"{cv.ALERT_SERVICE_DOWN} for {service.name} is still firing after {after}; "
                f"level {level.level} is notified.",
            }
            alert_tests.append({"eval_time": at(due - base), "alertname": name, "exp_alerts": []})
            if "critical" not in spec.routing.escalation_severities:
                # ServiceDown is critical; only the severities the spec escalates do.
                alert_tests.append(
                    {"eval_time": at(min(due + base, recover - base)), "alertname": name, "exp_alerts": []}
                )
                lines.append(f"{name} never fires: critical alerts do not escalate in this spec")
            elif due + base < recover:
                alert_tests.append(
                    {
                        "eval_time": at(due + base),
                        "alertname": name,
                        "exp_alerts": [{"exp_labels": labels, "exp_annotations": annotations}],
                    }
                )
                lines.append(f"{name} fires {after} later")
            else:
                alert_tests.append({"eval_time": at(recover - base), "alertname": name, "exp_alerts": []})
                lines.append(f"{name} ({after}) never fires: the source resolves first")
            # Groups run independently in Prometheus: the escalation group may see the source's
            # last ALERTS sample one evaluation late.
            alert_tests.append({"eval_time": at(recover + 2 * base), "alertname": name, "exp_alerts": []})
        tests.append(
            {
                "name": "; ".join(lines) + f"; {service.name} recovers at {at(recover)} and every escalation stops.",
                "interval": at(base),
                "input_series": series,
                "alert_rule_test": alert_tests,
            }
        )
    for extra in (one_chain_per_incident_test(spec), silence_stops_escalation_test(spec)):
        if extra:
            tests.append(extra)
    if spec.probes:
        tests.append(probes_blind_test(spec))
    tests.append(self_monitoring_test(spec))
    tests += alert_state_unknown_tests(spec)
    import yaml

    doc = {
        "rule_files": [f"../{cv.STACK_RULES.removeprefix('prometheus/')}"],
        "evaluation_interval": at(base),
        "group_eval_order": [g["name"] for g in yaml.safe_load(rule_render.stack_rules(spec))["groups"]],
        "tests": tests,
    }
    head = header(
        spec.source_file,
        "promtool unit tests for the stack rules: Watchdog, ServiceDown and the "
        "escalation levels (each fires its delay after a critical alert, and stops "
        "when it resolves). Run from prometheus/: promtool test rules "
        + cv.STACK_RULES_TEST.removeprefix("prometheus/"),
    )
    return head + yaml_text(doc)


def probes_blind_test(spec: Spec) -> dict[str, Any]:
    """The exporter stops answering at 10m: the first probe job's up is 0 from then on."""
    job = spec.probes[0].name
    rule = _stack_rule(spec, rule_render.PROBES_BLIND)
    base = spec.stack.base_window
    steps = 3600 // base
    down = 600 // base
    annotations = {k: v.replace("{{ $labels.job }}", job) for k, v in rule["annotations"].items()}
    return {
        "name": f"{rule_render.PROBES_BLIND}: the blackbox exporter stops answering at 10m; the alert fires "
        f"{format_duration(rule_render.PROBES_BLIND_FOR)} later.",
        "interval": at(base),
        "input_series": [
            {"series": series_name("up", {"job": job, "instance": "i"}), "values": f"1x{down} 0x{steps - down}"}
        ],
        "alert_rule_test": [
            {
                "eval_time": at(600 + rule_render.PROBES_BLIND_FOR - base),
                "alertname": rule_render.PROBES_BLIND,
                "exp_alerts": [],
            },
            {
                "eval_time": at(600 + rule_render.PROBES_BLIND_FOR + 2 * base),
                "alertname": rule_render.PROBES_BLIND,
                "exp_alerts": [
                    {"exp_labels": {"job": job, "instance": "i", **rule["labels"]}, "exp_annotations": annotations}
                ],
            },
        ],
    }


def self_monitoring_test(spec: Spec) -> dict[str, Any]:
    """A failure counter starts rising at 10m, one per minute: increase(...[5m]) > 0 from 11m,
    so each alert fires at 16m (for: 5m) reporting 5 failures in the last 5m."""
    cases = [
        (
            "PrometheusRuleEvaluationFailures",
            "prometheus_rule_evaluation_failures_total",
            "rule_group",
            "slo:api:error-rate",
        ),
        ("AlertmanagerNotificationsFailing", "alertmanager_notifications_failed_total", "integration", "slack"),
    ]
    series = []
    checks: list[dict[str, Any]] = []
    for alert, metric, label, value in cases:
        series.append({"series": series_name(metric, {label: value}), "values": "0x10 1+1x20"})
        rule = _stack_rule(spec, alert)
        annotations = {
            k: v.replace("{{ $value }}", "5").replace(f"{{{{ $labels.{label} }}}}", value)
            for k, v in rule["annotations"].items()
        }
        checks += [
            {"eval_time": "15m", "alertname": alert, "exp_alerts": []},
            {
                "eval_time": "17m",
                "alertname": alert,
                "exp_alerts": [{"exp_labels": {label: value, **rule["labels"]}, "exp_annotations": annotations}],
            },
        ]
    return {
        "name": "Self-monitoring: rule evaluation and notification failures page the platform owners after 5m.",
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": checks,
    }


def alert_state_unknown_tests(spec: Spec) -> list[dict[str, Any]]:
    """AlertStateUnknown: the exporter answers but Alertmanager's API does not from 10m; the
    exporter stops answering at 10m; the exporter is never scraped. Each fires its `for`
    after the problem starts, not before."""
    rule = _stack_rule(spec, cv.ALERT_STATE_UNKNOWN)
    wait = rule_render.ALERT_STATE_UNKNOWN_FOR
    # Any instance: the same test file on every target.
    instance = f"{cv.ALERT_STATE_JOB}:{cv.COMPONENTS[cv.ALERT_STATE_JOB]}"
    up = series_name("up", {"job": cv.ALERT_STATE_JOB, "instance": instance})
    fires = {"exp_labels": dict(rule["labels"]), "exp_annotations": dict(rule["annotations"])}
    start = 600

    def case(name: str, series: list[dict[str, str]], since: int, labels: dict[str, str]) -> dict[str, Any]:
        return {
            "name": f"{cv.ALERT_STATE_UNKNOWN}: {name}; it fires {format_duration(wait)} later.",
            "interval": "1m",
            "input_series": series,
            "alert_rule_test": [
                {"eval_time": at(since + wait - 60), "alertname": cv.ALERT_STATE_UNKNOWN, "exp_alerts": []},
                {
                    "eval_time": at(since + wait + 60),
                    "alertname": cv.ALERT_STATE_UNKNOWN,
                    "exp_alerts": [{**fires, "exp_labels": {**fires["exp_labels"], **labels}}],
                },
            ],
        }

    return [
        case(
            "Alertmanager's API stops answering the exporter at 10m",
            [{"series": up, "values": "1x30"}, {"series": "stackgen_alertmanager_up", "values": "1x9 0x20"}],
            start,
            {},
        ),
        case(
            "the exporter stops answering Prometheus at 10m",
            [{"series": up, "values": "1x9 0x20"}, {"series": "stackgen_alertmanager_up", "values": "1x9"}],
            start,
            {},
        ),
        case("the exporter is never scraped", [], 0, {"job": cv.ALERT_STATE_JOB}),
    ]


def _stack_rules(spec: Spec) -> list[dict[str, Any]]:
    import yaml

    return [r for g in yaml.safe_load(rule_render.stack_rules(spec))["groups"] for r in g["rules"]]


def _stack_rule(spec: Spec, name: str) -> dict[str, Any]:
    return next(r for r in _stack_rules(spec) if r.get("alert") == name)


# ----------------------------------------------------------------------------------------
# Plain alerts: the spec's own tests, with stackgen's labels and the annotations it predicts


def plain_test_files(spec: Spec, alerts: tuple[Alert, ...]) -> dict[str, str]:
    files = {}
    for stem, chunk in rule_render.plain_alerts_by_file(spec, alerts).items():
        tests = [test for alert in chunk for test in plain_alert_tests(spec, alert)]
        if not tests:
            continue
        path = cv.plain_test_file(stem)
        rules = posixpath.relpath(cv.plain_rules_file(stem), posixpath.dirname(path))
        doc = {"rule_files": [rules], "evaluation_interval": at(spec.stack.evaluation_interval), "tests": tests}
        head = header(
            spec.source_file,
            "promtool unit tests of plain alerts, written in the spec (input series, expected alerts); "
            "stackgen adds the labels it sets and the annotations the templates print. Run from "
            f"prometheus/: promtool test rules {path.removeprefix('prometheus/')}",
        )
        files[path] = head + yaml_text(doc)
    return files


def plain_alert_tests(spec: Spec, alert: Alert) -> list[dict[str, Any]]:
    rule = rule_render.plain_alert_rule(spec, alert)
    rule_labels = {k: _untemplate(v) for k, v in rule["labels"].items()}
    out = []
    for index, test in enumerate(alert.tests, start=1):
        checks = []
        for check in test.checks:
            expected = []
            for exp in check.alerts:
                series_labels = dict(exp.labels)
                annotations = {
                    key: alert_templates.expand(text, series_labels, exp.value)
                    for key, text in rule["annotations"].items()
                }
                # Rule labels win over the expression's, as Prometheus applies them; an empty
                # value is no label at all.
                labels = {k: v for k, v in {**series_labels, **rule_labels}.items() if v != ""}
                expected.append({"exp_labels": labels, "exp_annotations": annotations})
            checks.append({"eval_time": at(check.eval_time), "alertname": alert.name, "exp_alerts": expected})
        out.append(
            {
                "name": f"{alert.name} test {index}" + (f" (alert pack {alert.pack})" if alert.pack else ""),
                "interval": at(test.interval),
                "input_series": [{"series": s, "values": v} for s, v in test.input_series],
                "alert_rule_test": checks,
            }
        )
    return out


def render_stack(spec: Spec) -> dict[str, str]:
    files = {cv.STACK_RULES_TEST: stack_test_file(spec)}
    files.update(plain_test_files(spec, tuple(a for a in spec.prometheus_alerts() if not a.service)))
    return files


def render_service(spec: Spec, service: Service) -> dict[str, str]:
    files = plain_test_files(
        spec, tuple(a for a in spec.prometheus_alerts() if a.service == service.name and not a.pack)
    )
    for slo in service.slos:
        if test_shapes.representative(spec, slo) is not None:  # testable
            files.update(slo_test_files(spec, service, slo))
        else:
            files[cv.alerts_test_file(slo)] = coverage_only_tests(spec, service, slo)
    return files


def render(spec: Spec) -> dict[str, str]:
    files = render_stack(spec)
    for service in spec.services:
        files.update(render_service(spec, service))
    return files


__all__ = ["WINDOW_PLACEHOLDER", "render"]
