"""What :func:`shared.media.probe.probe` reports about a media file, and the media plans made from it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, computed_field


class VideoStreamInfo(BaseModel):
    """The first real video stream (cover art and other still pictures are not counted).

    ``width``/``height`` are the frames as stored. ``rotation`` is how far (clockwise, 0/90/180/270) a
    player turns them for display: what phones write, and the legacy ``rotate`` tag's convention. It
    is the opposite sign of ffmpeg's display-matrix angle (``-display_rotation``, ffprobe's
    ``rotation``), which counts counter-clockwise: an iPhone portrait clip is ``rotation=90`` here and
    ``-90`` in ffprobe. To make a decoded frame upright: ``numpy.rot90(pixels, k=-rotation // 90)``.
    ``display_width``/``display_height`` are the upright size (pixel aspect ratio applied, rotated).
    """

    model_config = ConfigDict(frozen=True)

    index: int
    codec: str
    profile: str | None = None
    width: int
    height: int
    rotation: int = 0
    sample_aspect_ratio: float = 1.0
    display_width: int
    display_height: int
    avg_frame_rate: float | None = None
    r_frame_rate: float | None = None
    is_variable_frame_rate: bool = False
    pix_fmt: str | None = None
    frame_count: int | None = None
    bit_rate: int | None = None
    duration_seconds: float | None = None


class AudioStreamInfo(BaseModel):
    """The first audio stream."""

    model_config = ConfigDict(frozen=True)

    index: int
    codec: str
    sample_rate: int
    channels: int
    bit_rate: int | None = None


class MediaInfo(BaseModel):
    """A probed media file. ``container_format`` is the demuxer's name, e.g. ``mov,mp4,m4a,3gp,3g2,mj2``."""

    model_config = ConfigDict(frozen=True)

    path: str
    container_format: str
    duration_seconds: float
    size_bytes: int
    bit_rate: int | None = None
    video: VideoStreamInfo | None = None
    audio: AudioStreamInfo | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def has_audio(self) -> bool:
        return self.audio is not None


class Chunk(BaseModel):
    """A run of consecutive output frames: ``frames`` frames from output frame ``start_frame`` on.

    Output frame ``n`` is the picture shown at ``n / fps`` seconds after the start of the upload (see
    :mod:`shared.media.normalize`), so a chunk is a time range of the original, not of any file made
    from it. ``index`` is the chunk's position in its plan (0, 1, ...).
    """

    model_config = ConfigDict(frozen=True)

    index: int = Field(ge=0)
    start_frame: int = Field(ge=0)
    frames: int = Field(ge=1)

    @property
    def end_frame(self) -> int:
        """The first output frame after the chunk."""
        return self.start_frame + self.frames

    def start_seconds(self, fps: int) -> float:
        """When the chunk's first frame is shown, in seconds from the start of the upload."""
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        return self.start_frame / fps


class DecodeHints(BaseModel):
    """What a decoder starting in the middle of a stream must be told, read once from the upload.

    ``x264_build`` is the x264 version ("core N") that the encoder wrote into the first frame, or
    None when there is none (another encoder, another codec). FFmpeg's H.264 decoder emulates the
    bugs of old x264 versions only when it has seen that note, which is at the start of the stream: a
    4:4:4 stream from x264 before core 151 decodes to garbage after a seek unless it is told.
    """

    model_config = ConfigDict(frozen=True)

    x264_build: int | None = Field(default=None, ge=0)
