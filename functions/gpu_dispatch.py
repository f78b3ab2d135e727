"""The GPU dispatch Lambda: hands a Step Functions task token to a Modal GPU function and returns at once.

A GPU Task waits with ``arn:aws:states:::lambda:invoke.waitForTaskToken``: Step Functions invokes this
Lambda with ``task_token`` set from ``$$.Task.Token`` and then waits, paying nothing, until the Modal
function reports with SendTaskSuccess or SendTaskFailure (modal_apps/gpu.py), or until
``HeartbeatSeconds`` pass without a heartbeat (a container that died). The event is the Task's Payload::

    {"app": "vidluxe-matting", "function": "matte_rvm", "task_token": "<$$.Task.Token>",
     "stage": "matte", "output_name": "matte.mp4", "request": {<the stage payload>}}

The output key is derived here when the request has none: ``tasks/<task_id>/<stage>-gpu/<hash>/<name>``
with the hash of the request, so a retried Task (a new token, the same request) finds the first
attempt's output and the GPU does not run twice. Only the functions in :data:`GPU_FUNCTIONS` can be
started. Modal's client reads ``MODAL_TOKEN_ID`` and ``MODAL_TOKEN_SECRET`` from the environment; on
Lambda they come from SSM SecureString parameters (``VIDLUXE_SSM_SECRETS``, functions/secrets.py), read
once per container, and a container without them fails the Task at once (MODAL_CREDENTIALS_MISSING, not
retried) instead of retrying a call Modal will refuse.

The enhance state machine's MatteOnGpu Tasks (state_machines/enhance.asl.json) send this event; the
embedded engine never invokes this Lambda (shared/pipeline/registry.py: a cloud-only function).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from functions.secrets import load_ssm_secrets
from shared.errors import ConfigurationError, InvalidInputError, TransientError

GPU_FUNCTIONS: dict[str, frozenset[str]] = {
    "vidluxe-matting": frozenset({"matte_modnet", "matte_rvm"}),
    "vidluxe-upscale": frozenset({"upscale_video"}),
    "vidluxe-style": frozenset({"extract_style"}),
    "vidluxe-i2v": frozenset({"animate_image"}),
}

FunctionLookup = Callable[[str, str], Any]
MODAL_CREDENTIALS = ("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET")

logger = Logger(service="vidluxe-gpu-dispatch")


class DispatchEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    app: str
    function: str
    task_token: str = Field(min_length=1, max_length=1024)
    stage: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")
    output_name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    request: dict[str, Any]


def output_key(stage: str, request: dict[str, Any], output_name: str) -> str:
    """The deterministic output key of a GPU request: the same request always names the same object.

    Raises InvalidInputError (GPU_REQUEST_INVALID) when the request has no ``task_id``.
    """
    task_id = request.get("task_id")
    if not isinstance(task_id, str) or not task_id:
        raise InvalidInputError("A GPU request needs its task_id.", code="GPU_REQUEST_INVALID")
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:32]
    return f"tasks/{task_id}/{stage}-gpu/{digest}/{output_name}"


def _modal_lookup(app_name: str, function_name: str) -> Any:
    import modal

    return modal.Function.from_name(app_name, function_name)


def dispatch(event: dict[str, Any], lookup: FunctionLookup | None = None) -> dict[str, Any]:
    """Spawn the GPU function for ``event``; returns ``{"call_id", "app", "function", "output_key"}``.

    Raises InvalidInputError (GPU_REQUEST_INVALID) for a malformed event, ConfigurationError
    (GPU_FUNCTION_UNKNOWN, GPU_FUNCTION_NOT_DEPLOYED) for a function that is not allowed or not deployed,
    TransientError (GPU_DISPATCH_FAILED) when Modal cannot be reached: the Task fails with that error,
    and its Retry starts it again with a new token.
    """
    try:
        parsed = DispatchEvent.model_validate(event)
    except ValidationError as exc:
        raise InvalidInputError(
            f"Not a GPU dispatch event: {exc.errors(include_url=False)}", code="GPU_REQUEST_INVALID"
        ) from None
    if parsed.function not in GPU_FUNCTIONS.get(parsed.app, frozenset()):
        raise ConfigurationError(
            f"{parsed.app}/{parsed.function} is not a VidLuxe GPU function; choose one of "
            + ", ".join(f"{app}/{name}" for app, names in GPU_FUNCTIONS.items() for name in sorted(names)),
            code="GPU_FUNCTION_UNKNOWN",
        )
    request = dict(parsed.request)
    request.setdefault("output_key", output_key(parsed.stage, parsed.request, parsed.output_name))
    try:
        function = (lookup or _modal_lookup)(parsed.app, parsed.function)
        call = function.spawn(request=request, task_token=parsed.task_token)
    except Exception as exc:
        if type(exc).__name__ == "NotFoundError":  # modal.exception.NotFoundError
            raise ConfigurationError(
                f"The Modal function {parsed.app}/{parsed.function} is not deployed ({exc}); "
                f"run `modal deploy -m modal_apps.{parsed.app.removeprefix('vidluxe-')}`.",
                code="GPU_FUNCTION_NOT_DEPLOYED",
            ) from exc
        raise TransientError(
            f"Could not start {parsed.app}/{parsed.function} on Modal: {type(exc).__name__}: {exc}",
            code="GPU_DISPATCH_FAILED",
        ) from exc
    call_id = str(getattr(call, "object_id", ""))
    logger.info("gpu function spawned", extra={"app": parsed.app, "function": parsed.function, "call_id": call_id,
                                                 "output_key": request["output_key"]})
    return {"call_id": call_id, "app": parsed.app, "function": parsed.function, "output_key": request["output_key"]}


@cache
def _load_secrets() -> None:
    """Once per container: the Modal token from SSM (functions/secrets.py), then check it is there.

    Raises ConfigurationError (MODAL_CREDENTIALS_MISSING) naming the missing variables, botocore's errors
    when SSM refuses the read.
    """
    load_ssm_secrets()
    missing = [name for name in MODAL_CREDENTIALS if not os.environ.get(name)]
    if missing:  # an exception is not cached: the container tries again on its next event
        raise ConfigurationError(
            f"{' and '.join(missing)} not set: create the SecureString parameters listed in VIDLUXE_SSM_SECRETS "
            "(README, 'Deploy to the cloud').", code="MODAL_CREDENTIALS_MISSING",
        )


@logger.inject_lambda_context(correlation_id_path="request.task_id")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _load_secrets()
    return dispatch(event)
