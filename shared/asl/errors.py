"""Errors of the ASL engine: load-time definition errors and run-time state failures.

Two families:

* :class:`AslDefinitionError` is raised while loading a definition (invalid or unsupported).
* :class:`StatesError` is a failure *inside* an execution, identified by an ASL error name
  (``States.Runtime``, ``States.Timeout`` or a task's own error name) and an optional cause.
  Retriers and catchers match on that name.

Helpers that only know about data (paths, intrinsics) raise :class:`PathError` or
:class:`IntrinsicError`; the interpreter turns them into the ``States.*`` error of the state
that was running, so those modules need not know which state they serve.
"""

from __future__ import annotations

import json

STATES_ALL = "States.ALL"
STATES_TASK_FAILED = "States.TaskFailed"
STATES_TIMEOUT = "States.Timeout"
STATES_RUNTIME = "States.Runtime"
STATES_NO_CHOICE_MATCHED = "States.NoChoiceMatched"
STATES_INTRINSIC_FAILURE = "States.IntrinsicFailure"
STATES_DATA_LIMIT_EXCEEDED = "States.DataLimitExceeded"

# AWS: "A States.Runtime error isn't retriable, and will always cause the execution to fail";
# States.DataLimitExceeded is likewise terminal. No retrier or catcher matches these.
TERMINAL_ERRORS = frozenset({STATES_RUNTIME, STATES_DATA_LIMIT_EXCEEDED})


class AslDefinitionError(Exception):
    """The definition is invalid or uses a construct this interpreter does not support."""


class TaskFailedError(Exception):
    """Raised by a task invoker to fail a Task state with an explicit ASL error name and cause."""

    def __init__(self, error: str, cause: str | None = None):
        super().__init__(f"{error}: {cause}" if cause else error)
        self.error = error
        self.cause = cause


class StatesError(Exception):
    """A state failed with an ASL error name; retriers and catchers match on ``error``.

    ``error`` is None only for a Fail state that declares no Error: nothing matches it.
    """

    def __init__(self, error: str | None, cause: str | None = None):
        super().__init__(f"{error}: {cause}" if cause else error)
        self.error = error
        self.cause = cause


class PathError(ValueError):
    """A JSONPath could not be applied to the data (missing field, wrong type)."""


class IntrinsicError(ValueError):
    """An intrinsic function received arguments it cannot evaluate."""


def error_from_exception(exc: Exception) -> tuple[str, str | None]:
    """The (error name, cause) a Task reports for an exception raised by its invoker.

    Order of precedence: an object with ``error_name`` and ``to_cause()`` (like
    ``shared.errors.VidluxeError``), then :class:`TaskFailedError`, then the shape AWS Lambda
    produces for an unhandled exception (error = the exception's type name).
    """
    error_name = getattr(exc, "error_name", None)
    to_cause = getattr(exc, "to_cause", None)
    if isinstance(error_name, str) and callable(to_cause):
        return error_name, str(to_cause())
    if isinstance(exc, TaskFailedError):
        return exc.error, exc.cause
    name = type(exc).__name__
    return name, json.dumps({"errorMessage": str(exc), "errorType": name})
