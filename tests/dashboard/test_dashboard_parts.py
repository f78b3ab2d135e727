"""The dashboard's pure parts: the signed session, the query string, the daily chart, money."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from shared.dashboard.chart import daily_chart, format_unit_price, format_usd
from shared.dashboard.pages import parse_query
from shared.dashboard.session import Session, SessionSigner
from shared.storage.tasks import TaskStatus

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
SESSION = Session(tenant_id="ten_1", key_hash="ab" * 32, expires_at=int((NOW + timedelta(hours=1)).timestamp()))


def test_a_signed_session_verifies_until_it_expires() -> None:
    signer = SessionSigner(b"k" * 32)
    value = signer.sign(SESSION)
    assert signer.verify(value, now=NOW) == SESSION
    assert signer.verify(value, now=NOW + timedelta(minutes=59)) == SESSION
    assert signer.verify(value, now=NOW + timedelta(hours=1)) is None


def test_a_forged_or_damaged_session_is_refused() -> None:
    signer = SessionSigner(b"k" * 32)
    value = signer.sign(SESSION)
    payload, signature = value.split(".")
    other = SessionSigner(b"x" * 32).sign(SESSION)
    forged_payload = SessionSigner(b"k" * 32).sign(Session("ten_2", SESSION.key_hash, SESSION.expires_at)).split(".")[0]
    for bad in (None, "", "x", value + "x", f"{payload}.{signature[:-2]}", other,
                f"{forged_payload}.{signature}", f"{payload}.{signature}.x", "a" * 2000):
        assert signer.verify(bad, now=NOW) is None, bad


def test_a_session_key_must_be_long_enough() -> None:
    with pytest.raises(ValueError):
        SessionSigner(b"short")


@pytest.mark.parametrize(
    ("start", "end", "status", "expected"),
    [
        (None, None, None, (None, None, None, ())),
        ("2026-11-01", "2026-11-30", "failed", (date(2026, 11, 1), date(2026, 11, 30), "failed", ())),
        ("2026-11-30", "2026-11-01", "", (date(2026, 11, 1), date(2026, 11, 30), None,
                                          ("From is after To: the dates were swapped.",))),
        ("yesterday", "", "done", (None, None, None, ("'yesterday' is not a date for From: use YYYY-MM-DD.",
                                                      "'done' is not a status; showing every status."))),
    ],
)
def test_query_parsing(start: str | None, end: str | None, status: str | None, expected: tuple[object, ...]) -> None:
    query = parse_query(start, end, status)
    assert (query.start, query.end, query.status, query.problems) == expected


def test_the_query_becomes_a_filter_of_whole_utc_days() -> None:
    flt = parse_query("2026-11-01", "2026-11-02", "completed").cost_filter()
    assert flt.since == datetime(2026, 11, 1, tzinfo=UTC)
    assert flt.until == datetime(2026, 11, 3, tzinfo=UTC)  # To is inclusive
    assert flt.statuses == (TaskStatus.SUCCEEDED,)


def test_daily_chart_geometry() -> None:
    chart = daily_chart([(date(2026, 11, 3), 0.1), (date(2026, 11, 1), 0.4), (date(2026, 11, 1), 0.1)])
    assert [bar.day.day for bar in chart.bars] == [1, 2, 3]  # the empty day keeps its slot
    assert [bar.usd for bar in chart.bars] == [0.5, 0.0, 0.1]
    tallest, empty, small = chart.bars
    assert tallest.y + tallest.height == pytest.approx(chart.baseline)
    assert tallest.height == pytest.approx(5 * small.height) and empty.height == 0
    assert tallest.x < empty.x < small.x and small.x + small.width <= chart.right
    assert [tick.label for tick in chart.y_ticks] == ["$0", "$0.25", "$0.50"]
    assert [tick.label for tick in chart.x_ticks] == ["Nov 01", "Nov 02", "Nov 03"]
    assert not chart.truncated and daily_chart([]).empty


def test_a_long_range_keeps_the_latest_days() -> None:
    days = [(date(2026, 1, 1) + timedelta(days=i), 1.0) for i in range(100)]
    chart = daily_chart(days, max_days=30)
    assert chart.truncated and len(chart.bars) == 30 and chart.bars[-1].day == date(2026, 4, 10)
    assert len(chart.x_ticks) <= 7


@pytest.mark.parametrize(
    ("usd", "text"),
    [(0, "$0"), (0.65, "$0.65"), (0.5, "$0.50"), (0.0123, "$0.0123"), (0.004, "$0.004"),
     (0.0000287924, "$0.0000288"), (1234.5, "$1,234.50"), (-0.3, "-$0.30")],
)
def test_money(usd: float, text: str) -> None:
    assert format_usd(usd) == text


def test_unit_prices_in_full() -> None:
    assert format_unit_price(0.0000166667) == "$0.0000166667"
    assert format_unit_price(0.09) == "$0.09"


def test_without_a_session_key_and_no_writable_home_the_error_says_what_to_set(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from shared.api.routes_dashboard import _signer
    from shared.errors import ConfigurationError
    from shared.settings import Settings
    from shared.settings_service import ServiceSettings

    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    services = SimpleNamespace(settings=Settings(home=blocker / "home"), service_settings=ServiceSettings(),
                               extras={})
    with pytest.raises(ConfigurationError, match="VIDLUXE_DASHBOARD_SESSION_KEY") as caught:
        _signer(services)  # type: ignore[arg-type]
    assert caught.value.code == "DASHBOARD_SESSION_KEY_MISSING"
    services.service_settings = ServiceSettings(dashboard_session_key="s" * 32)
    assert isinstance(_signer(services), SessionSigner)  # type: ignore[arg-type]
