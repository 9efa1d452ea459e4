"""`stackgen explain`: the numbers behind every alert, per SLO (SLO-MATH.md)."""

from __future__ import annotations

from decimal import Decimal

from stackgen import conventions as cv
from stackgen import slo_math
from stackgen.durations import format_duration
from stackgen.model import Spec
from stackgen.slo_math import num


def explain_text(spec: Spec) -> str:
    base = spec.stack.base_window
    lines = [
        f"Base window B = {format_duration(base)} (the evaluation interval). Detection time at 100% errors "
        "= L*r*b + B/2, plus up to one evaluation interval. Long windows no page reads (1d, 3d) add up "
        "hourly rollups and end at the last whole hour: those alerts may fire up to 1h later. The period "
        "(the budget) adds this hour so far to its rollups: exact to the minute.",
        "",
    ]
    header = (
        "tier",
        "severity",
        "alert",
        "windows",
        "burn rate",
        "error ratio >",
        "budget spent",
        "detect @100%",
    )
    for slo in spec.slos:
        lines.append(
            f"{slo.service} / {slo.name}: objective {slo.objective}% over {format_duration(slo.period)}, "
            f"error budget {num(slo.budget * 100)}%, SLI {slo.sli.kind}"
        )
        if slo.period < slo_math.KEEP_BUDGET_SHARE_FROM:
            lines.append(f"  short period policy: {slo_math.SHORT_PERIOD_POLICY}")
        rows = [header]
        for tier in slo.tiers:
            detect = slo_math.detection_seconds(tier.long_window, tier.burn_rate, slo.budget, Decimal(1), base)
            rows.append(
                (
                    tier.severity,
                    tier.alert_severity,
                    cv.burn_alert_name(tier),
                    f"{tier.long}/{tier.short}",
                    num(tier.burn_rate),
                    f"{num(tier.burn_rate * slo.budget * 100)}%",
                    f"{num(tier.budget_share * 100)}%",
                    _human(detect) + (" + up to 1h" if tier.long_window in slo.rollup_windows(base) else ""),
                )
            )
        widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
        for row in rows:
            lines.append("  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _human(seconds: Decimal) -> str:
    whole = int(seconds.to_integral_value())
    return f"{whole}s" if whole < 120 else f"{format_duration(whole)} ({whole}s)"
