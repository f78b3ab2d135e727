"""The daily totals chart: bar geometry for an inline SVG, computed here and drawn by the template.

Pure: days and amounts in, rectangles and labels out. Days without costs between the first and the
last get an empty slot, so the axis is even; at most ``max_days`` (the latest) are drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta

WIDTH = 720
HEIGHT = 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 12, 12, 28  # margins: y labels on the left, x labels below
_MAX_BAR = 40.0


@dataclass(frozen=True)
class Bar:
    day: date
    usd: float
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Tick:
    label: str
    x: float
    y: float


@dataclass(frozen=True)
class DailyChart:
    width: int = WIDTH
    height: int = HEIGHT
    bars: list[Bar] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)  # amount labels, with the y of their grid line
    x_ticks: list[Tick] = field(default_factory=list)  # day labels under their bar
    baseline: float = HEIGHT - _BOTTOM
    left: float = _LEFT
    right: float = WIDTH - _RIGHT
    truncated: bool = False  # older days were left out

    @property
    def empty(self) -> bool:
        return not self.bars


def _nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 x 10^n at or above ``value`` (> 0), for a round top of the axis."""
    magnitude = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * magnitude * (1 + 1e-9):
            return step * magnitude
    return 10.0 * magnitude


def format_usd(value: float) -> str:
    """Dollars to about three significant digits, with at least cents: $12.34, $0.65, $0.0123, $0.0000288."""
    if value == 0:
        return "$0"
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value >= 1:
        return f"{sign}${value:,.2f}"
    decimals = max(2, 2 - math.floor(math.log10(value)))
    text = f"{value:.{decimals}f}".rstrip("0")
    whole, _, fraction = text.partition(".")
    return f"{sign}${whole}.{fraction.ljust(2, '0')}"


def format_unit_price(value: float) -> str:
    """A unit price in full, as the price table gives it: $0.0000166667, $0.09."""
    text = f"{value:.10f}".rstrip("0")
    whole, _, fraction = text.partition(".")
    return f"${whole}.{fraction.ljust(2, '0')}"


def daily_chart(days: list[tuple[date, float]], *, max_days: int = 62) -> DailyChart:
    """The chart of ``days`` (day, USD), in any order; an empty list gives an empty chart."""
    if not days:
        return DailyChart()
    totals: dict[date, float] = {}
    for day, usd in days:
        totals[day] = totals.get(day, 0.0) + usd
    first, last = min(totals), max(totals)
    span = (last - first).days + 1
    truncated = span > max_days
    if truncated:
        first = last - timedelta(days=max_days - 1)
        span = max_days
    slots = [first + timedelta(days=offset) for offset in range(span)]
    top = _nice_ceiling(max((totals.get(day, 0.0) for day in slots), default=0.0) or 1e-6)
    plot_width = WIDTH - _LEFT - _RIGHT
    plot_height = HEIGHT - _TOP - _BOTTOM
    slot = plot_width / span
    width = max(1.0, min(slot * 0.8, _MAX_BAR))
    bars = []
    for index, day in enumerate(slots):
        usd = totals.get(day, 0.0)
        height = plot_height * usd / top
        x = _LEFT + index * slot + (slot - width) / 2
        bars.append(
            Bar(day=day, usd=usd, x=round(x, 2), y=round(_TOP + plot_height - height, 2), width=round(width, 2),
                height=round(height, 2))
        )
    y_ticks = [
        Tick(label=format_usd(top * fraction), x=_LEFT - 6, y=round(_TOP + plot_height * (1 - fraction), 2))
        for fraction in (0.0, 0.5, 1.0)
    ]
    every = max(1, -(-span // 6))  # at most about six day labels
    x_ticks = [
        Tick(label=day.strftime("%b %d"), x=round(_LEFT + (index + 0.5) * slot, 2), y=HEIGHT - 8)
        for index, day in enumerate(slots)
        if index % every == 0 or index == span - 1
    ]
    if len(x_ticks) >= 2 and x_ticks[-1].x - x_ticks[-2].x < 48:
        del x_ticks[-2]  # the last day's label would overlap the one before
    return DailyChart(bars=bars, y_ticks=y_ticks, x_ticks=x_ticks, truncated=truncated)
