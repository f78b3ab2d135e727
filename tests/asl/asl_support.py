"""Test doubles for the ASL interpreter: a fake clock and an in-memory journal."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.asl import CompletedState


class FakeClock:
    """A clock whose ``sleep`` records the duration and moves time forward instantly."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return self.current

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.current += timedelta(seconds=seconds)


class InMemoryJournal:
    """A thread-safe journal that also logs every hook call, in order."""

    def __init__(self) -> None:
        self.completed: dict[str, CompletedState] = {}
        self.events: list[tuple[str, str]] = []  # ("entered" | "record", position)
        self._lock = threading.Lock()

    def lookup(self, position: str) -> CompletedState | None:
        with self._lock:
            return self.completed.get(position)

    def record(self, position: str, state_name: str, state_type: str, output: Any, next_state: str | None) -> None:
        with self._lock:
            self.completed[position] = CompletedState(output, next_state)
            self.events.append(("record", position))

    def entered(self, position: str, state_name: str, state_type: str) -> None:
        with self._lock:
            self.events.append(("entered", position))
