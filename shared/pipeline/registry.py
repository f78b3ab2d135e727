"""Maps ASL Task resources to stage functions.

In ASL a Task names the Lambda that runs a stage, through a substitution variable::

    "Resource": "arn:aws:states:::lambda:invoke",
    "Parameters": {"FunctionName": "${ProbeFunctionArn}", "Payload": {...}}

On AWS, serverless.yml substitutes the variable with the function's ARN. Locally the registry resolves the
same variable to the same Python stage, so one ASL file runs in both places. A Task may also name the
function directly (``"Resource": "${ProbeFunctionArn}"``), in which case its result is the bare payload.

Some functions of the deployed state machine are not stages: the GPU dispatch
(``${GpuDispatchFunctionArn}``, functions/gpu_dispatch.py) hands a Step Functions task token to Modal,
and the Task waits (``lambda:invoke.waitForTaskToken``) until the GPU function answers with
SendTaskSuccess. The embedded engine has no Modal and nobody to answer a token, so such a
:class:`CloudFunction` is known here (the ASL loads and validates) but invoking it raises a typed
ConfigurationError at once instead of waiting forever. Submitting a task already refuses the options
that would route to one (``shared.pipeline.enhance.check_options``); this is the backstop.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from shared.asl import CALLBACK_SUFFIX, AslDefinitionError, StateMachine, TaskContext
from shared.errors import ConfigurationError
from shared.pipeline.runtime import Runtime
from shared.pipeline.stage import Stage, execute_stage

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
LAMBDA_INVOKE_CALLBACK = LAMBDA_INVOKE + CALLBACK_SUFFIX
TASK_TOKEN = "$$.Task.Token"
_SUBSTITUTION = re.compile(r"^\$\{(?P<name>[A-Za-z0-9_]+)\}$")


@dataclass(frozen=True)
class CloudFunction:
    """A Lambda of the deployed state machine that is not a stage and cannot run in-process.

    ``function_name``: the substitution variable (``GpuDispatchFunctionArn``). ``callback``: it is invoked
    with ``.waitForTaskToken`` (and only so); ``code``/``reason``: the ConfigurationError a local
    invocation raises.
    """

    function_name: str
    handler: str  # the Lambda's handler, for the reader and tests/cloud
    callback: bool
    code: str
    reason: str

    def unavailable(self) -> ConfigurationError:
        return ConfigurationError(f"${{{self.function_name}}} ({self.handler}): {self.reason}", code=self.code)


GPU_DISPATCH = CloudFunction(
    "GpuDispatchFunctionArn",
    handler="functions.gpu_dispatch.handler",
    callback=True,
    code="GPU_PROVIDER_UNAVAILABLE",
    reason=(
        "GPU stages run on Modal, started by the dispatch Lambda with a Step Functions task token; the "
        "embedded engine has neither. Choose matting 'local' here, or run the task on AWS Step Functions."
    ),
)
CLOUD_FUNCTIONS: tuple[CloudFunction, ...] = (GPU_DISPATCH,)


class StageRegistry:
    def __init__(self, stages: Iterable[Stage[Any, Any]], cloud_functions: Iterable[CloudFunction] = CLOUD_FUNCTIONS):
        self._by_function: dict[str, Stage[Any, Any]] = {}
        for stage in stages:
            if stage.function_name in self._by_function:
                raise ValueError(f"Two stages share the function name {stage.function_name}")
            self._by_function[stage.function_name] = stage
        self._cloud: dict[str, CloudFunction] = {}
        for cloud in cloud_functions:
            if cloud.function_name in self._by_function or cloud.function_name in self._cloud:
                raise ValueError(f"Two functions share the name {cloud.function_name}")
            self._cloud[cloud.function_name] = cloud

    def stages(self) -> list[Stage[Any, Any]]:
        return list(self._by_function.values())

    def cloud_functions(self) -> list[CloudFunction]:
        return list(self._cloud.values())

    def resolve(self, function: str) -> Stage[Any, Any]:
        """The stage behind ``${NameFunctionArn}``; raises KeyError naming the known functions (a cloud
        function is not a stage: see :meth:`resolve_any`)."""
        resolved = self.resolve_any(function)
        if isinstance(resolved, CloudFunction):
            raise KeyError(f"{function!r} is a cloud-only function ({resolved.handler}), not a VidLuxe stage")
        return resolved

    def resolve_any(self, function: str) -> Stage[Any, Any] | CloudFunction:
        """The stage or cloud function behind ``${NameFunctionArn}``; raises KeyError naming the known ones."""
        match = _SUBSTITUTION.match(function)
        name = match.group("name") if match else None
        resolved = self._by_function.get(name or "") or self._cloud.get(name or "")
        if resolved is None:
            known = ", ".join(f"${{{name}}}" for name in sorted([*self._by_function, *self._cloud]))
            raise KeyError(f"{function!r} is not a VidLuxe stage function; known: {known}")
        return resolved

    def validate(self, machine: StateMachine) -> None:
        """Check at load time that every Task of ``machine`` names a known stage or cloud function, the
        way it must be invoked: a callback function (the GPU dispatch) only with ``.waitForTaskToken``
        and with ``$$.Task.Token`` in its Parameters, a stage never so (no stage answers a token).

        Raises AslDefinitionError naming the state, so a typo never surfaces mid-run.
        """
        for state_name, state in _task_states(machine.definition):
            resource = state["Resource"]
            parameters = state.get("Parameters", {})
            invoke = resource in (LAMBDA_INVOKE, LAMBDA_INVOKE_CALLBACK)
            function = parameters.get("FunctionName") if invoke else resource
            if not isinstance(function, str):
                raise AslDefinitionError(
                    f"State {state_name!r}: a lambda:invoke Task needs a literal Parameters.FunctionName"
                )
            try:
                resolved = self.resolve_any(function)
            except KeyError as exc:
                raise AslDefinitionError(f"State {state_name!r}: {exc.args[0]}") from None
            callback = resource == LAMBDA_INVOKE_CALLBACK
            wants_callback = isinstance(resolved, CloudFunction) and resolved.callback
            if callback != wants_callback:
                how = f"with {LAMBDA_INVOKE_CALLBACK}" if wants_callback else f"with {LAMBDA_INVOKE}, not a callback"
                raise AslDefinitionError(f"State {state_name!r}: {function} must be invoked {how}")
            if callback and f'"{TASK_TOKEN}"' not in json.dumps(parameters):
                raise AslDefinitionError(f"State {state_name!r}: a callback Task must pass {TASK_TOKEN} in its Payload")

    def invoker(self, runtime: Runtime) -> StageInvoker:
        return StageInvoker(self, runtime)


class StageInvoker:
    """The embedded engine's TaskInvoker: runs the named stage in-process, shaped like Lambda's result."""

    def __init__(self, registry: StageRegistry, runtime: Runtime):
        self._registry = registry
        self._runtime = runtime

    def __call__(self, resource: str, parameters: Any, context: TaskContext) -> Any:
        """Raises ConfigurationError (the cloud function's code) for a function that exists only on AWS."""
        if resource in (LAMBDA_INVOKE, LAMBDA_INVOKE_CALLBACK):
            resolved = self._registry.resolve_any(parameters["FunctionName"])
            if isinstance(resolved, CloudFunction):
                raise resolved.unavailable()  # at once: nobody here would ever answer the task token
            stage = resolved
            payload = execute_stage(
                stage, parameters.get("Payload", {}), self._runtime,
                attempt=context.attempt, cancelled=context.cancelled,
            )
            # The lambda:invoke integration's result document (its SDK metadata left out).
            return {"ExecutedVersion": "$LATEST", "Payload": payload, "StatusCode": 200}
        resolved = self._registry.resolve_any(resource)
        if isinstance(resolved, CloudFunction):
            raise resolved.unavailable()
        stage = resolved
        return execute_stage(stage, parameters, self._runtime, attempt=context.attempt, cancelled=context.cancelled)


def _task_states(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in definition.get("States", {}).items():
        if state.get("Type") == "Task":
            yield name, state
        for branch in state.get("Branches", []):
            yield from _task_states(branch)
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                yield from _task_states(state[key])
