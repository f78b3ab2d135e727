"""One Lambda handler per stage, for the ``${<Stage>FunctionArn}`` Tasks of the state machines.

Step Functions' lambda:invoke integration passes the Task's ``Payload`` as the event; the handler runs
the same stage function the embedded engine runs and returns its output, which Step Functions wraps as
``Payload``. A VidluxeError propagates, so its class name becomes the error Retry/Catch match on.
The runtime (stores from VIDLUXE_* settings, secrets from SSM) is built once per container and reused
by warm calls. It is the service's (functions/service.py), so a finished run of a stage for a task of the
service reports task.stage_completed, as the local runner does, and wakes the webhook delivery: the
event's id is derived from the stage and its input hash, so a retried or reused run of the same Task
reports nothing new. Every payload names its task, so each log line carries it as the correlation id;
each call emits ``StageInvocations``, ``StageErrors`` and ``StageSeconds`` with the dimension ``stage``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from functions.observability import configure_lambda_logging, logger, metrics, tracer
from functions.secrets import load_ssm_secrets
from functions.service import cloud_services
from shared.pipeline.runtime import Runtime
from shared.pipeline.stage import Stage, execute_stage
from shared.settings import Settings
from shared.stages.assets import GENERATE_ASSETS
from shared.stages.compose import PLAN_COMPOSITION
from shared.stages.finalize import FINALIZE
from shared.stages.matte import MATTE
from shared.stages.probe import PROBE
from shared.stages.remotion_render import REMOTION_RENDER
from shared.stages.render import ASSEMBLE, RENDER_CHUNK
from shared.stages.showcase import SHOWCASE_CUTOUT, SHOWCASE_PREVIEW, SHOWCASE_RENDER, SHOWCASE_SCENE
from shared.stages.style import LEARN_STYLE


@cache
def _runtime() -> Runtime:
    load_ssm_secrets()
    settings = Settings()
    if settings.task_store == "supabase":
        # Over Supabase's HTTP API there is no SQL database for the videos and the outbox: no events.
        configure_lambda_logging(settings)
        return Runtime.from_settings(settings)
    return cloud_services().runtime


LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def stage_handler(stage: Stage[Any, Any]) -> LambdaHandler:
    def run(event: dict[str, Any], context: Any) -> dict[str, Any]:
        metrics.add_dimension(name="stage", value=stage.name)
        metrics.add_metric(name="StageInvocations", unit=MetricUnit.Count, value=1)
        tracer.put_annotation(key="stage", value=stage.name)
        started = time.monotonic()
        try:
            return execute_stage(stage, event, _runtime())
        except Exception:
            metrics.add_metric(name="StageErrors", unit=MetricUnit.Count, value=1)
            logger.exception("stage failed", extra={"stage": stage.name})
            raise
        finally:
            metrics.add_metric(name="StageSeconds", unit=MetricUnit.Seconds, value=time.monotonic() - started)

    run.__name__ = run.__qualname__ = stage.name
    handler: LambdaHandler = logger.inject_lambda_context(correlation_id_path="task_id")(
        tracer.capture_lambda_handler(metrics.log_metrics(capture_cold_start_metric=True)(run))
    )
    return handler


probe = stage_handler(PROBE)
learn_style = stage_handler(LEARN_STYLE)
generate_assets = stage_handler(GENERATE_ASSETS)
matte = stage_handler(MATTE)
plan_composition = stage_handler(PLAN_COMPOSITION)
render_chunk = stage_handler(RENDER_CHUNK)
assemble = stage_handler(ASSEMBLE)
remotion_render = stage_handler(REMOTION_RENDER)
finalize = stage_handler(FINALIZE)
showcase_cutout = stage_handler(SHOWCASE_CUTOUT)
showcase_scene = stage_handler(SHOWCASE_SCENE)
showcase_render = stage_handler(SHOWCASE_RENDER)
showcase_preview = stage_handler(SHOWCASE_PREVIEW)
