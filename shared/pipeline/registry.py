"""Maps ASL Task resources to stage functions.

In ASL a Task names the Lambda that runs a stage, through a substitution variable::

    "Resource": "arn:aws:states:::lambda:invoke",
    "Parameters": {"FunctionName": "${ProbeFunctionArn}", "Payload": {...}}

On AWS, serverless.yml substitutes the variable with the function's ARN. Locally the registry resolves the
same variable to the same Python stage, so one ASL file runs in both places. A Task may also name the
function directly (``"Resource": "${ProbeFunctionArn}"``), in which case its result is the bare payload.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from shared.asl import AslDefinitionError, StateMachine, TaskContext
from shared.pipeline.runtime import Runtime
from shared.pipeline.stage import Stage, execute_stage

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
_SUBSTITUTION = re.compile(r"^\$\{(?P<name>[A-Za-z0-9_]+)\}$")


class StageRegistry:
    def __init__(self, stages: Iterable[Stage[Any, Any]]):
        self._by_function: dict[str, Stage[Any, Any]] = {}
        for stage in stages:
            if stage.function_name in self._by_function:
                raise ValueError(f"Two stages share the function name {stage.function_name}")
            self._by_function[stage.function_name] = stage

    def stages(self) -> list[Stage[Any, Any]]:
        return list(self._by_function.values())

    def resolve(self, function: str) -> Stage[Any, Any]:
        """The stage behind ``${NameFunctionArn}``; raises KeyError naming the known functions."""
        match = _SUBSTITUTION.match(function)
        stage = self._by_function.get(match.group("name")) if match else None
        if stage is None:
            known = ", ".join(f"${{{name}}}" for name in sorted(self._by_function))
            raise KeyError(f"{function!r} is not a VidLuxe stage function; known: {known}")
        return stage

    def validate(self, machine: StateMachine) -> None:
        """Check at load time that every Task of ``machine`` names a known stage.

        Raises AslDefinitionError naming the state, so a typo never surfaces mid-run.
        """
        for state_name, state in _task_states(machine.definition):
            resource = state["Resource"]
            function = state.get("Parameters", {}).get("FunctionName") if resource == LAMBDA_INVOKE else resource
            if not isinstance(function, str):
                raise AslDefinitionError(
                    f"State {state_name!r}: a lambda:invoke Task needs a literal Parameters.FunctionName"
                )
            try:
                self.resolve(function)
            except KeyError as exc:
                raise AslDefinitionError(f"State {state_name!r}: {exc.args[0]}") from None

    def invoker(self, runtime: Runtime) -> StageInvoker:
        return StageInvoker(self, runtime)


class StageInvoker:
    """The embedded engine's TaskInvoker: runs the named stage in-process, shaped like Lambda's result."""

    def __init__(self, registry: StageRegistry, runtime: Runtime):
        self._registry = registry
        self._runtime = runtime

    def __call__(self, resource: str, parameters: Any, context: TaskContext) -> Any:
        if resource == LAMBDA_INVOKE:
            stage = self._registry.resolve(parameters["FunctionName"])
            payload = execute_stage(
                stage, parameters.get("Payload", {}), self._runtime,
                attempt=context.attempt, cancelled=context.cancelled,
            )
            # The lambda:invoke integration's result document (its SDK metadata left out).
            return {"ExecutedVersion": "$LATEST", "Payload": payload, "StatusCode": 200}
        stage = self._registry.resolve(resource)
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
