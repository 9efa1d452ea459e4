"""Burn-rate math of ../shared/SLO-MATH.md (Google SRE workbook), in exact decimals.

Numbers are Decimals so that thresholds render as people write them
(14.4 * 0.005 = 0.072, not 0.07200000000000001).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import Decimal, localcontext

DAY = 86400
# Periods this long or longer keep the budget share f of each tier and recompute the
# burn rate r = f * T / L (SLO-MATH.md). Shorter periods (7d) keep the 30d burn rates
# and windows instead, and the budget share follows: see SHORT_PERIOD_POLICY.
KEEP_BUDGET_SHARE_FROM = 28 * DAY
REFERENCE_PERIOD = 30 * DAY
# Long windows read hourly rollups of the base series instead of every base sample: a 30d
# window then reads 720 samples per series instead of 43,200. The price is lag: such a window
# ends at the last whole hour, so it sees up to ROLLUP_STEP less of the recent past. Only
# windows no page tier reads, at least ROLLUP_FROM long, are rolled up (see rollup_windows).
ROLLUP_STEP = 3600
ROLLUP_FROM = DAY

SHORT_PERIOD_POLICY = (
    "Periods shorter than 28d keep the 30d burn rates (14.4, 6, 3, 1) and windows; the share "
    "of the budget spent before an alert fires grows accordingly (f = r * L / T). Keeping the "
    "30d shares instead would page a 7d SLO at a burn rate of 1.4 and ticket it at 0.23, i.e. "
    "for a service that is on course to meet its objective."
)


@dataclass(frozen=True)
class TierSpec:
    """A tier as written (or defaulted): severity, windows and f or r."""

    severity: str  # "page" | "ticket"
    long_window: int  # seconds
    short_window: int | None = None
    budget_percent: Decimal | None = None
    burn_rate: Decimal | None = None


# The workbook's defaults for a 30d period (SLO-MATH.md table).
DEFAULT_TIERS: tuple[TierSpec, ...] = (
    TierSpec("page", 3600, 300, budget_percent=Decimal(2)),
    TierSpec("page", 6 * 3600, 1800, budget_percent=Decimal(5)),
    TierSpec("ticket", DAY, 2 * 3600, budget_percent=Decimal(10)),
    TierSpec("ticket", 3 * DAY, 6 * 3600, budget_percent=Decimal(10)),
)


def dec(value: float | int | str | Decimal) -> Decimal:
    """A Decimal from the shortest text of a number (99.9 -> Decimal('99.9'))."""
    return value if isinstance(value, Decimal) else Decimal(repr(value) if isinstance(value, float) else str(value))


@functools.lru_cache(maxsize=4096)  # Decimal in, text out: same value, same answer
def tidy(value: Decimal) -> Decimal:
    """Round to 12 significant digits and drop trailing zeros (0.93333333333333 -> 0.933333333333)."""
    with localcontext() as ctx:
        ctx.prec = 12
        value = +value
    normal = value.normalize()
    # normalize() turns 100 into 1E+2; keep integers integral.
    return normal.quantize(Decimal(1)) if normal == normal.to_integral() else normal


@functools.lru_cache(maxsize=4096)
def num(value: Decimal) -> str:
    """Render a Decimal for PromQL/YAML: plain digits, no exponent."""
    text = format(tidy(value), "f")
    return text


@functools.lru_cache(maxsize=4096)
def error_budget(objective_percent: Decimal) -> Decimal:
    """b = 1 - p, with p in percent: 99.5 -> 0.005."""
    return tidy((Decimal(100) - objective_percent) / Decimal(100))


def burn_rate_for(budget_share: Decimal, period: int, long_window: int) -> Decimal:
    """r = f * T / L (f as a fraction)."""
    return tidy(budget_share * Decimal(period) / Decimal(long_window))


def budget_share_for(burn_rate: Decimal, period: int, long_window: int) -> Decimal:
    """f = r * L / T (as a fraction)."""
    return tidy(burn_rate * Decimal(long_window) / Decimal(period))


def detection_seconds(
    long_window: int, burn_rate: Decimal, budget: Decimal, error_ratio: Decimal, base_window: int
) -> Decimal:
    """Time from error onset to alert: L * r * b / e + B/2 (SLO-MATH.md), for e >= r*b."""
    return tidy(Decimal(long_window) * burn_rate * budget / error_ratio + Decimal(base_window) / 2)


@functools.lru_cache(maxsize=4096)
def rollup_windows(windows: tuple[int, ...], page_windows: frozenset[int], base_window: int) -> frozenset[int]:
    """Windows computed from hourly rollups: whole hours, at least ROLLUP_FROM long, read by no
    page tier (pages keep detecting within one evaluation interval), with a base window that
    divides the hour (each rollup then sums exactly ROLLUP_STEP / B base samples)."""
    if ROLLUP_STEP % base_window:
        return frozenset()
    return frozenset(w for w in windows if w >= ROLLUP_FROM and w % ROLLUP_STEP == 0 and w not in page_windows)
