"""What :func:`shared.media.probe.probe` reports about a media file."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, computed_field


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
