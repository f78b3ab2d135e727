"""Lambda events shaped like the real ones (the JSON files in events/ follow the examples in the AWS docs),
filled in for a test, and a Lambda context object with the attributes powertools reads."""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import state_machines
from shared.asl.templates import render

EVENTS = Path(__file__).parent / "events"


def _load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return document


def s3_object_created(bucket: str, key: str, size: int, *, sequencer: str = "0055AED6DCD90281E5") -> dict[str, Any]:
    """S3's ``ObjectCreated:Put`` notification as Lambda receives it: the key URL-encoded, spaces as '+'."""
    event = _load("s3_object_created_put.json")
    s3 = event["Records"][0]["s3"]
    s3["bucket"]["name"] = bucket
    s3["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    s3["object"].update(key=quote_plus(key, safe="/"), size=size, sequencer=sequencer)
    return event


def execution_status_change(
    execution_arn: str, status: str, *, output: Any = None, error: str | None = None, cause: str | None = None
) -> dict[str, Any]:
    """EventBridge's "Step Functions Execution Status Change" for ``execution_arn`` (its name: the task id)."""
    event = _load("eventbridge_sfn_status_change.json")
    machine_arn, name = execution_arn.replace(":execution:", ":stateMachine:", 1).rsplit(":", 1)
    detail = event["detail"]
    event["resources"] = [execution_arn]
    detail.update(executionArn=execution_arn, stateMachineArn=machine_arn, name=name, status=status)
    detail.update(output=None if output is None else json.dumps(output), error=error, cause=cause)
    if status in ("RUNNING", "FAILED", "TIMED_OUT", "ABORTED"):
        detail["stopDate"] = None if status == "RUNNING" else detail["stopDate"]
    return event


def http_api(
    method: str, path: str, *, route: str, headers: dict[str, str] | None = None, body: str | None = None
) -> dict[str, Any]:
    """An API Gateway HTTP API event (payload format 2.0) for ``route`` (``ANY /v1/{proxy+}``...)."""
    event = _load("apigw_http_v2.json")
    event["routeKey"] = event["requestContext"]["routeKey"] = route
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["pathParameters"] = {"proxy": path.removeprefix("/v1/")} if "{proxy+}" in route else None
    event["headers"].update(headers or {})
    if body is not None:
        event["headers"].update({"content-type": "application/json", "content-length": str(len(body))})
    event["body"] = body
    return event


def step_functions_payload(pipeline: str, state: str, state_input: Any, *, execution_name: str) -> dict[str, Any]:
    """The event a lambda:invoke Task sends its Lambda: the state's ``Parameters.Payload`` of the real ASL
    file, evaluated against ``state_input`` and the context object, as Step Functions does."""
    definition = state_machines.definition(pipeline)
    task = _find_state(definition, state)
    now = datetime(2026, 11, 23, 16, 0, 2, tzinfo=UTC).isoformat().replace("+00:00", "Z")
    machine_arn = f"arn:aws:states:us-east-1:123456789012:stateMachine:vidluxe-test-{pipeline}"
    context = {
        "Execution": {
            "Id": machine_arn.replace(":stateMachine:", ":execution:") + f":{execution_name}",
            "Input": state_input,
            "Name": execution_name,
            "RoleArn": "arn:aws:iam::123456789012:role/vidluxe-test-StatesRole",
            "StartTime": now,
        },
        "State": {"EnteredTime": now, "Name": state, "RetryCount": 0},
        "StateMachine": {"Id": machine_arn, "Name": f"vidluxe-test-{pipeline}"},
    }
    payload: dict[str, Any] = render(task["Parameters"]["Payload"], state_input, context, random.Random(0))
    return copy.deepcopy(payload)


def _find_state(definition: dict[str, Any], name: str) -> dict[str, Any]:
    for state_name, state in definition["States"].items():
        if state_name == name:
            found: dict[str, Any] = state
            return found
        for inner in [*state.get("Branches", []), *(state[k] for k in ("ItemProcessor", "Iterator") if k in state)]:
            try:
                return _find_state(inner, name)
            except KeyError:
                continue
    raise KeyError(name)


@dataclass
class LambdaContext:
    """What the Lambda runtime passes as ``context`` (the attributes powertools reads)."""

    function_name: str
    memory_limit_in_mb: int = 1024
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"
    remaining_millis: int = 60_000

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    @property
    def function_version(self) -> str:
        return "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_millis
