"""Starting and stopping a task's execution: the local runner, or AWS Step Functions.

The execution's name is the task id in both, so starting the same task twice never runs it twice:
the local runner refuses a task it has queued or running, and Step Functions answers
``ExecutionAlreadyExists`` for a name it has seen.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

import structlog

from shared.errors import ConfigurationError
from shared.storage.tasks import TaskRecord

log = structlog.get_logger("vidluxe.executions")


class Executions(Protocol):
    # Whether the executor runs callback Tasks (``.waitForTaskToken``: the GPU stages on Modal). Step
    # Functions does; the embedded engine refuses them, so a task choosing one is refused at submit time.
    runs_callback_tasks: bool

    def start(self, task: TaskRecord) -> bool:
        """Start the task's execution (named by its id); False if one with that name exists already."""
        ...

    def stop(self, task_id: str) -> None:
        """Stop the task's execution at its next state boundary (nothing if none is running)."""
        ...


class StepFunctionsExecutions:
    """Executions on AWS Step Functions: one state machine per pipeline, from ``state_machine_arns``."""

    runs_callback_tasks = True

    def __init__(self, client: Any, state_machine_arns: dict[str, str]) -> None:
        """``client``: a boto3 ``stepfunctions`` client."""
        self._client = client
        self._arns = dict(state_machine_arns)

    def _state_machine(self, pipeline: str) -> str:
        try:
            return self._arns[pipeline]
        except KeyError:
            raise ConfigurationError(
                f"No state machine for pipeline {pipeline!r}: set VIDLUXE_STATE_MACHINE_ARNS "
                '(JSON, {"enhance": "arn:aws:states:...:stateMachine:enhance"}).'
            ) from None

    def execution_arn(self, pipeline: str, task_id: str) -> str:
        machine = self._state_machine(pipeline)
        return machine.replace(":stateMachine:", ":execution:", 1) + f":{task_id}"

    def start(self, task: TaskRecord) -> bool:
        """Raises ConfigurationError for a pipeline with no state machine, botocore's errors otherwise."""
        try:
            self._client.start_execution(
                stateMachineArn=self._state_machine(task.pipeline),
                name=task.task_id,
                input=json.dumps(task.input, separators=(",", ":")),
            )
        except self._client.exceptions.ExecutionAlreadyExists:
            log.info("execution exists already", task_id=task.task_id)
            return False
        return True

    def stop(self, task_id: str) -> None:
        """Stops the execution named ``task_id`` in whichever pipeline's state machine has it."""
        for pipeline in self._arns:
            try:
                self._client.stop_execution(
                    executionArn=self.execution_arn(pipeline, task_id), cause="Cancelled at the client's request."
                )
            except self._client.exceptions.ExecutionDoesNotExist:
                continue
            return
