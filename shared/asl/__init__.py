"""An embedded Amazon States Language interpreter (JSONPath query language).

Load a definition with :meth:`StateMachine.load` (every validation happens there and raises
:class:`AslDefinitionError`), then run it with :func:`run_execution`, giving it a
:class:`TaskInvoker` for the Task states and optionally a :class:`Journal` to make the
execution resumable after a crash.

Supported constructs and the deliberately unsupported ones are listed in
:mod:`shared.asl.interpreter`.
"""

from shared.asl.definition import StateMachine
from shared.asl.errors import AslDefinitionError, TaskFailedError
from shared.asl.interpreter import run_execution
from shared.asl.model import CALLBACK_SUFFIX, CompletedState, ExecutionResult, Journal, TaskContext, TaskInvoker

__all__ = [
    "CALLBACK_SUFFIX",
    "AslDefinitionError",
    "CompletedState",
    "ExecutionResult",
    "Journal",
    "StateMachine",
    "TaskContext",
    "TaskFailedError",
    "TaskInvoker",
    "run_execution",
]
