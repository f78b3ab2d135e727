"""is_variable_frame_rate: a table of timestamp patterns."""

from __future__ import annotations

import pytest

from shared.media.timing import is_variable_frame_rate


def _even(step: int, count: int, start: int = 0) -> list[int]:
    return [start + i * step for i in range(count)]


# 24 fps in a millisecond time base: 41/42 ms intervals are rounding, not a variable rate
MS_24FPS = [round(i * 1000 / 24) for i in range(240)]
# the videoretalking clip's pattern: mostly 1/30 s, with every third frame or so missing
RETALKING = [0]
for i in range(134):
    RETALKING.append(RETALKING[-1] + (1024 if i % 3 == 2 else 512))
# one dropped frame in 10 s of 30 fps, and the last packet of a stream-copy cut
ONE_GAP = [*_even(3000, 150), *_even(3000, 150, start=150 * 3000 + 3000)]
# a rate switch (30 -> 15 fps) after the first half
SWITCH = [*_even(512, 150), *_even(1024, 150, start=150 * 512)]


@pytest.mark.parametrize(
    ("timestamps", "avg", "base", "whole", "expected"),
    [
        (_even(3000, 300), 30.0, 30.0, True, False),
        (list(reversed(_even(3000, 300))), 30.0, 30.0, True, False),  # decode order does not matter
        (MS_24FPS, 24.0, 24.0, True, False),
        (_even(1, 100), 30.0, 30.0, True, False),  # one tick per frame
        ([*_even(1, 50), *_even(2, 50, start=50)], 22.0, 30.0, True, True),  # coarse ticks, real gaps
        (RETALKING, 22.13, 30.0, True, True),
        (ONE_GAP, 30.0, 30.0, True, False),
        (SWITCH, 20.0, 30.0, True, True),
        (_even(3000, 300), 22.0, 30.0, False, True),  # even so far, but the averages say it changes later
        (_even(3000, 300), 22.0, 30.0, True, False),  # the timestamps cover it all: they win
        ([0, 3000], 22.0, 30.0, False, True),  # too few timestamps: the rates decide
        ([], None, 30.0, False, False),
    ],
    ids=[
        "cfr", "cfr-unsorted", "ms-rounding", "coarse-cfr", "coarse-vfr", "retalking", "one-gap",
        "rate-switch", "rates-disagree-partial", "rates-disagree-whole", "few-timestamps", "nothing",
    ],
)  # fmt: skip
def test_is_variable_frame_rate(
    timestamps: list[int], avg: float | None, base: float | None, whole: bool, expected: bool
) -> None:
    assert (
        is_variable_frame_rate(timestamps, avg_frame_rate=avg, r_frame_rate=base, covers_whole_stream=whole)
        is expected
    )
