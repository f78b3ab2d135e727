"""CompositionSpec: what the final video is made of, independent of the renderer that draws it.

The ffmpeg renderer (:mod:`shared.media.render`) draws a spec chunk by chunk; the Remotion renderer
draws the same spec. A spec is pure data: layers bottom to top, their timing, and global effects. Times
are in seconds from the start of the video, frames at ``fps``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.media.models import Chunk, DecodeHints, MediaInfo


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Drift(_Frozen):
    """Slow parallax: the background, enlarged by ``scale``, slides across its spare margin over the whole
    video, from (-pan_x, -pan_y) to (+pan_x, +pan_y) of that margin (-1..1)."""

    scale: float = Field(default=1.06, ge=1.0, le=1.5)
    pan_x: float = Field(default=0.6, ge=-1.0, le=1.0)
    pan_y: float = Field(default=-0.3, ge=-1.0, le=1.0)


class BackgroundLayer(_Frozen):
    key: str  # still image, at least the output size
    motion: Drift | None = Drift()


class PersonLayer(_Frozen):
    """The upload, decoded upright and fitted into a ``scale`` share of the frame (bottom-centre), keyed by
    a matte per chunk. The sides and top of that box are feathered so a cut-off shoulder fades out."""

    source_key: str
    media: MediaInfo
    hints: DecodeHints = DecodeHints()
    scale: float = Field(default=0.88, gt=0.2, le=1.0)
    color_match: float = Field(default=0.25, ge=0.0, le=1.0)  # how far the person is pulled toward the background


class OverlayLayer(_Frozen):
    """A full-frame RGBA still drawn above the person (gradient mask, light leak, frame, vignette)."""

    key: str
    opacity: float = Field(default=1.0, ge=0.0, le=1.0)


class TextLayer(_Frozen):
    """A rendered text card (RGBA PNG, output width) shown from ``start`` to ``end`` at height ``y``."""

    key: str
    start: float = Field(ge=0)
    end: float
    y: int = Field(ge=0)
    fade_in: float = Field(default=0.5, ge=0)
    fade_out: float = Field(default=0.5, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> TextLayer:
        if self.end <= self.start:
            raise ValueError(f"text layer ends ({self.end}) before it starts ({self.start})")
        return self


GradePreset = Literal["none", "warm", "cool", "cinematic", "luxury", "fresh", "soft"]


class Effects(_Frozen):
    grade: GradePreset = "none"
    intensity: float = Field(default=0.6, ge=0.0, le=1.0)


class CompositionSpec(_Frozen):
    version: Literal[1] = 1
    width: int = Field(ge=16)
    height: int = Field(ge=16)
    fps: int = Field(ge=1, le=120)
    frames: int = Field(ge=1)
    chunks: list[Chunk] = Field(min_length=1)  # how the frames are cut for rendering; mattes follow these
    background: BackgroundLayer
    person: PersonLayer
    overlays: list[OverlayLayer] = Field(default_factory=list)
    texts: list[TextLayer] = Field(default_factory=list)
    effects: Effects = Effects()

    @property
    def duration_seconds(self) -> float:
        return self.frames / self.fps
