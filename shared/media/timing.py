"""Frame-timing analysis: is a stream's frame rate constant? (pure functions, no I/O)"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence

IRREGULAR_FRACTION = 0.02  # more than this share of uneven frame intervals makes a stream VFR
MIN_IRREGULAR = 2  # one odd interval (a dropped frame, a cut's last packet) is not a variable rate
RATE_MISMATCH = 0.05  # avg_frame_rate this far from r_frame_rate suggests VFR
RELATIVE_TOLERANCE = 0.05  # an interval within 5% of the usual one is even


def is_variable_frame_rate(
    timestamps: Sequence[int],
    *,
    avg_frame_rate: float | None,
    r_frame_rate: float | None,
    covers_whole_stream: bool,
) -> bool:
    """Decide from presentation timestamps (in stream ticks, any order) whether frames are unevenly spaced.

    An interval counts as uneven when it differs from the median interval by more than 5% and, where a
    frame lasts 10 ticks or more, by more than one tick (the rounding of millisecond time bases: 41/42
    ms at 24 fps is even). The stream is variable when over 2% of intervals, and at least two, are
    uneven: one odd interval is a dropped frame or the last packet of a cut, not a variable rate.
    When the timestamps cover only the start of the stream, or there are too few of them, a mismatch
    between the average and the base frame rate (ffprobe's avg_frame_rate and r_frame_rate) also
    counts, since the rate may change later.
    """
    ticks = sorted(set(timestamps))
    rates_disagree = _rates_disagree(avg_frame_rate, r_frame_rate)
    if len(ticks) < 3:
        return rates_disagree
    intervals = [b - a for a, b in itertools.pairwise(ticks)]
    usual = statistics.median(intervals)
    rounding = 1.0 if usual >= 10 else 0.0  # fine time bases round each timestamp to a tick
    tolerance = max(rounding, RELATIVE_TOLERANCE * usual)
    uneven = sum(1 for interval in intervals if abs(interval - usual) > tolerance)
    if uneven >= MIN_IRREGULAR and uneven > IRREGULAR_FRACTION * len(intervals):
        return True
    return rates_disagree and not covers_whole_stream


def _rates_disagree(avg: float | None, base: float | None) -> bool:
    if not avg or not base:
        return False
    return abs(avg - base) / base > RATE_MISMATCH
