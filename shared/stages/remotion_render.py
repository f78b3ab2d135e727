"""Render on Remotion: the whole CompositionSpec drawn by the PremiumTalkingVideo composition on Remotion
Lambda, instead of ffmpeg's chunks (``VIDLUXE_RENDERER=remotion``).

The enhance state machine stores every chunk's matte first (the Map: the Matte stage, or a GPU model), so
this stage encodes the person layer from stored mattes only: one decode of the upload, no matting here.
Remotion's browser fetches each layer by a presigned GET of the S3 object store, which is why a local
object store is refused. The output is shaped like Assemble's (``video_key`` in our object store), so
Finalize takes either renderer's video the same way.

Remotion reports what the render cost (``costs.accruedSoFar``, its estimate of the AWS Lambda and S3 it
used); that figure is recorded in the cost ledger as it is, because no price table could derive it from
the stage's own usage.
"""

from __future__ import annotations

from contextlib import ExitStack
from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import Field

from shared.composition import CompositionSpec
from shared.errors import InvalidInputError
from shared.pipeline.stage import Stage, StageContext, StageInput, StageOutput
from shared.providers.remotion import (
    NEEDS_S3,
    RemotionConfigurationError,
    RenderedVideo,
    encode_person_layer,
    remotion_config,
    remotion_renderer,
    render_props,
    spec_object_keys,
)
from shared.storage.costs import CostEntry

if TYPE_CHECKING:
    from shared.pipeline.runtime import Runtime
    from shared.storage.s3_presign import S3Presigner

# The presigned URLs must outlive the render: Remotion's functions fetch the layers while they render,
# until the poll timeout at the latest; the margin covers Remotion's own retries of a failed chunk.
URL_MARGIN = timedelta(minutes=30)
COST_PROVIDER = "remotion_lambda"


class RemotionRenderInput(StageInput):
    spec_key: str
    matte_keys: list[str] = Field(min_length=1)  # each chunk's stored matte, in chunk order
    person_chroma_shift: tuple[float, float] = (0.0, 0.0)


class RemotionRenderOutput(StageOutput):
    video_key: str
    person_layer_key: str
    render_id: str
    cost_usd: float | None  # Remotion's estimate; None when it reported none


def remotion_render(inp: RemotionRenderInput, ctx: StageContext) -> RemotionRenderOutput:
    """Raises RemotionConfigurationError (REMOTION_NOT_CONFIGURED, REMOTION_NEEDS_S3) before any work,
    InvalidInputError (REMOTION_MATTES_MISMATCH) when the mattes do not match the spec's chunks,
    MediaError when the person layer cannot be encoded, RemotionRenderError when the render fails."""
    config = remotion_config(ctx.runtime.settings)
    presigner = _presigner(ctx.runtime)
    objects = ctx.runtime.objects
    spec = CompositionSpec.model_validate_json(objects.get_bytes(inp.spec_key))
    if len(inp.matte_keys) != len(spec.chunks):
        raise InvalidInputError(
            f"{len(inp.matte_keys)} mattes for {len(spec.chunks)} chunks: the person layer needs one per chunk.",
            code="REMOTION_MATTES_MISMATCH",
        )

    layer_key = ctx.output_key("person.webm")
    # A retry after a failed render (same input, same key) finds the layer it encoded: only the render
    # is repeated. Stored objects are whole (atomic writes), so existing means finished.
    if not objects.exists(layer_key):
        layer = ctx.scratch / "person.webm"
        with ExitStack() as stack:
            source = stack.enter_context(objects.local_copy(spec.person.source_key))
            mattes = {index: stack.enter_context(objects.local_copy(key)) for index, key in enumerate(inp.matte_keys)}
            encode_person_layer(spec, source, layer, mattes=mattes, cancelled=ctx.cancelled, usage=ctx.usage)
        objects.put_file(layer_key, layer, "video/webm")

    expires_at = ctx.runtime.clock.now() + timedelta(seconds=config.poll_timeout) + URL_MARGIN
    urls = {key: presigner.download(key, expires_at=expires_at) for key in spec_object_keys(spec)}
    props = render_props(
        spec, urls, presigner.download(layer_key, expires_at=expires_at), person_chroma_shift=inp.person_chroma_shift
    )
    video = remotion_renderer(config).render(props, objects, ctx.output_key("final.mp4"), ctx.scratch, ctx.progress)
    _record_cost(ctx, video)
    return RemotionRenderOutput(
        video_key=video.key, person_layer_key=layer_key, render_id=video.render_id, cost_usd=video.cost_usd
    )


def _presigner(runtime: Runtime) -> S3Presigner:
    """Presigned GETs of the runtime's object store. Raises RemotionConfigurationError (REMOTION_NEEDS_S3)."""
    from shared.storage.s3_objects import S3ObjectStore  # here: the embedded setup never imports boto3
    from shared.storage.s3_presign import S3Presigner

    if not isinstance(runtime.objects, S3ObjectStore):
        raise RemotionConfigurationError(NEEDS_S3, code="REMOTION_NEEDS_S3")
    return S3Presigner(runtime.objects, runtime.clock)


def _record_cost(ctx: StageContext, video: RenderedVideo) -> None:
    """Remotion's own figure for this render as one cost entry of this run (nothing without a ledger).

    Written here, not priced from the StageReport: a report carries usage (CPU, GPU, call counts) for the
    price table to price, and this is already an amount in dollars.
    """
    ledger = ctx.runtime.costs
    if ledger is None or video.cost_usd is None:
        return
    ledger.store.record([
        CostEntry(
            task_id=ctx.task_id, stage=ctx.stage, run=ctx.input_hash[:16], provider=COST_PROVIDER,
            resource="render_usd", quantity=video.cost_usd, unit="USD (Remotion's estimate)", unit_price_usd=1.0,
            amount_usd=video.cost_usd, price_version=ledger.prices.version, recorded_at=ctx.runtime.clock.now(),
        )
    ])


REMOTION_RENDER = Stage("remotion_render", RemotionRenderInput, RemotionRenderOutput, remotion_render)
