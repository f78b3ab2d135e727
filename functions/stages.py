"""One Lambda handler per stage, for the ``${<Stage>FunctionArn}`` Tasks of the state machines.

Step Functions' lambda:invoke integration passes the Task's ``Payload`` as the event; the handler runs
the same stage function the embedded engine runs and returns its output, which Step Functions wraps as
``Payload``. A VidluxeError propagates, so its class name becomes the error Retry/Catch match on.
The runtime (stores from VIDLUXE_* settings) is built once per container and reused by warm calls.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from shared.pipeline.runtime import Runtime
from shared.pipeline.stage import Stage, execute_stage
from shared.settings import Settings
from shared.stages.assets import GENERATE_ASSETS
from shared.stages.compose import PLAN_COMPOSITION
from shared.stages.finalize import FINALIZE
from shared.stages.matte import MATTE
from shared.stages.probe import PROBE
from shared.stages.render import ASSEMBLE, RENDER_CHUNK
from shared.stages.style import LEARN_STYLE


@cache
def _runtime() -> Runtime:
    return Runtime.from_settings(Settings())


LambdaHandler = Callable[[dict[str, Any], object], dict[str, Any]]


def stage_handler(stage: Stage[Any, Any]) -> LambdaHandler:
    def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
        return execute_stage(stage, event, _runtime())

    handler.__name__ = handler.__qualname__ = stage.name
    return handler


probe = stage_handler(PROBE)
learn_style = stage_handler(LEARN_STYLE)
generate_assets = stage_handler(GENERATE_ASSETS)
matte = stage_handler(MATTE)
plan_composition = stage_handler(PLAN_COMPOSITION)
render_chunk = stage_handler(RENDER_CHUNK)
assemble = stage_handler(ASSEMBLE)
finalize = stage_handler(FINALIZE)
