"""Log lines go to the sys.stderr of the moment they are written."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator

import pytest
import structlog

from shared.logging import configure_logging


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def test_lines_follow_a_replaced_stderr_and_never_hit_a_closed_one(monkeypatch: pytest.MonkeyPatch) -> None:
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging("json")
    log = structlog.get_logger()
    log.warning("one", n=1)
    first.close()  # what pytest's capture does to the stream it lent when a test ends
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    log.warning("two", n=2)
    assert '"event": "two"' in second.getvalue()
