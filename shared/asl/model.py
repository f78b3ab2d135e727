"""The value types and hooks shared by the interpreter and its callers."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

# A Task resource ending with this waits for a callback: its context object carries ``Task.Token``.
CALLBACK_SUFFIX = ".waitForTaskToken"


@dataclass
class TaskContext:
    """What a task invoker knows about the Task state visit it serves."""

    execution_id: str
    state_name: str
    position: str
    attempt: int  # 1-based; each retry increments it
    timeout_seconds: float | None
    # Set when the state timed out (or its work was abandoned) so cooperative tasks can stop.
    cancelled: threading.Event = field(default_factory=threading.Event)
    context_object: dict[str, Any] = field(default_factory=dict)  # the $$ context object


class TaskInvoker(Protocol):
    def __call__(self, resource: str, parameters: Any, context: TaskContext) -> Any:
        """Run the task and return its result; raise to fail the state."""
        ...


@dataclass(frozen=True)
class CompletedState:
    """A journaled state visit: its output and the state that followed (None: its branch ended)."""

    output: Any
    next_state: str | None


class Journal(Protocol):
    """Persistence hook that lets a crashed execution resume where it stopped.

    Implementations must be thread-safe: Parallel branches and Map items call them concurrently.
    """

    def lookup(self, position: str) -> CompletedState | None:
        """The recorded completion of the state visit at ``position``, if any."""
        ...

    def record(self, position: str, state_name: str, state_type: str, output: Any, next_state: str | None) -> None:
        """A state visit completed; called before the next state begins."""
        ...

    def entered(self, position: str, state_name: str, state_type: str) -> None:
        """A state visit starts executing (not called for visits replayed from the journal)."""
        ...


@dataclass(frozen=True)
class ExecutionResult:
    status: Literal["SUCCEEDED", "FAILED"]
    output: Any  # None when failed
    error: str | None
    cause: str | None
