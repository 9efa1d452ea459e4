"""PromQL for an SLI's bad and total event rates over the base window, per SLI kind."""

from __future__ import annotations

from decimal import Decimal

from stackgen.durations import format_duration
from stackgen.model import SLI
from stackgen.promql import WINDOW_PLACEHOLDER, join_matchers


def le_matcher(threshold: Decimal) -> str:
    """Match a bucket boundary as Prometheus 2 ("1") and 3 ("1.0") write it."""
    text = format(threshold.normalize(), "f")
    if "." not in text:
        return f'le=~"{text}|{text}\\\\.0"'
    return f'le="{text}"'


def sum_by(group_by: tuple[str, ...]) -> str:
    """sum, or sum by the SLO's group labels: one series per group instead of one."""
    return f"sum by ({', '.join(group_by)}) " if group_by else "sum"


def _rate(selector: str, window: str, group_by: tuple[str, ...] = ()) -> str:
    return f"{sum_by(group_by)}(rate({selector}[{window}]))"


def _query(expr: str, window: str, group_by: tuple[str, ...] = ()) -> str:
    """A counter selector gets rated; a query with {{window}} gets its window filled in."""
    if WINDOW_PLACEHOLDER in expr:
        return f"{sum_by(group_by)}({expr.replace(WINDOW_PLACEHOLDER, window).strip()})"
    return _rate(expr.strip(), window, group_by)


def bad_and_total(sli: SLI, base_window: int, group_by: tuple[str, ...] = ()) -> tuple[str, str]:
    """(bad events per second, all events per second) over the base window.

    Both are label-free series, or one series per group with only the group labels; the
    recording rule adds service/slo/team.
    """
    window = format_duration(base_window)
    # Sample-count windows are one second short so they hold the same scrapes in
    # Prometheus 2 (closed ranges) and 3 (left-open ranges).
    samples_window = format_duration(base_window - 1)
    g = group_by

    def none_of(total: str) -> str:
        # No series yet (no 5xx since start) means zero, not no data: per group, a zero for
        # each group that has traffic.
        return f"0 * {total}" if g else "vector(0)"

    if sli.kind == "events":
        assert sli.total is not None
        total = _query(sli.total, window, g)
        if sli.bad is not None:
            bad = f"{_query(sli.bad, window, g)} or {none_of(total)}"
        else:
            assert sli.good is not None
            bad = f"clamp_min({total} - ({_query(sli.good, window, g)} or {none_of(total)}), 0)"
        return bad, total
    if sli.kind == "latency":
        assert sli.histogram is not None and sli.threshold is not None
        threshold = format(sli.threshold.normalize(), "f")
        if sli.native:
            hist = f"{sum_by(g)}(rate({sli.histogram}{join_matchers(sli.selector)}[{window}]))"
            total = f"histogram_count({hist})"
            bad = f"{total} * (1 - histogram_fraction(0, {threshold}, {hist}))"
            return bad, total
        total = _rate(f"{sli.histogram}_count{join_matchers(sli.selector)}", window, g)
        good = _rate(
            f"{sli.histogram}_bucket{join_matchers(sli.selector, le_matcher(sli.threshold))}",
            window,
            g,
        )
        return f"clamp_min({total} - ({good} or {none_of(total)}), 0)", total
    if sli.kind == "availability":
        selector = f"{sli.metric}{join_matchers(sli.selector)}"
        total = f"{sum_by(g)}(count_over_time({selector}[{samples_window}]))"
        bad = f"{total} - {sum_by(g)}(sum_over_time({selector}[{samples_window}]))"
        return bad, total
    assert sli.error_ratio is not None and not g, "raw SLIs are not grouped (refused at load)"
    ratio = f"sum({sli.error_ratio.replace(WINDOW_PLACEHOLDER, window).strip()})"
    # A raw SLI has no event counts: each base window weighs one, so long windows are a
    # mean of base-window ratios (documented; prefer an events SLI).
    return ratio, f"{ratio} * 0 + 1"
