"""Threading helpers: cancellation scopes for abandoned work and calls with a time limit."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class CancelScope:
    """A tree of flags that lets a failing Parallel/Map abandon its remaining work.

    Aborting a scope aborts its descendants and sets the ``cancelled`` event of every task
    running under them, so cooperative tasks can stop early.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._aborted = False
        self._children: list[CancelScope] = []
        self._task_events: set[threading.Event] = set()

    @property
    def aborted(self) -> bool:
        return self._aborted

    def child(self) -> CancelScope:
        """A new scope that is aborted whenever this one is."""
        scope = CancelScope()
        with self._lock:
            self._children.append(scope)
            if self._aborted:
                scope.abort()
        return scope

    def abort(self) -> None:
        with self._lock:
            self._aborted = True
            children, events = list(self._children), list(self._task_events)
        for event in events:
            event.set()
        for child in children:
            child.abort()

    @contextmanager
    def tracking(self, event: threading.Event) -> Iterator[None]:
        """Set ``event`` if this scope is aborted while the block runs."""
        with self._lock:
            self._task_events.add(event)
            if self._aborted:
                event.set()
        try:
            yield
        finally:
            with self._lock:
                self._task_events.discard(event)


class CallTimedOut(Exception):
    """The call did not finish within its time limit (it may still be running)."""


def call_with_timeout(function: Callable[[], Any], seconds: float) -> Any:
    """Run ``function`` in a daemon thread and wait at most ``seconds`` for it.

    Whatever the function raises (BaseException included) is re-raised in the caller. A call
    that overruns is left to finish on its own: Python threads cannot be killed, which is why
    tasks get a ``cancelled`` event to poll.

    Raises:
        CallTimedOut: the limit passed first.
    """
    done = threading.Event()
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = function()
        except BaseException as exc:  # handed to the waiting thread, which re-raises it
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, name="asl-task", daemon=True).start()
    if not done.wait(max(seconds, 0)):
        raise CallTimedOut
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
