"""The stages of VidLuxe's pipelines: plain functions with pydantic inputs and outputs."""

from __future__ import annotations

from typing import Any

from shared.pipeline.stage import Stage
from shared.stages.assets import GENERATE_ASSETS
from shared.stages.compose import PLAN_COMPOSITION
from shared.stages.finalize import FINALIZE
from shared.stages.matte import MATTE
from shared.stages.probe import PROBE
from shared.stages.remotion_render import REMOTION_RENDER
from shared.stages.render import ASSEMBLE, RENDER_CHUNK
from shared.stages.showcase import SHOWCASE_CUTOUT, SHOWCASE_PREVIEW, SHOWCASE_RENDER, SHOWCASE_SCENE
from shared.stages.style import LEARN_STYLE

ALL_STAGES: tuple[Stage[Any, Any], ...] = (
    PROBE, LEARN_STYLE, GENERATE_ASSETS, MATTE, PLAN_COMPOSITION, RENDER_CHUNK, ASSEMBLE, REMOTION_RENDER, FINALIZE,
    SHOWCASE_CUTOUT, SHOWCASE_SCENE, SHOWCASE_RENDER, SHOWCASE_PREVIEW,
)
