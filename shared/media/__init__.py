"""The media layer. Import from the modules (this package imports nothing, so it stays cheap):

* :mod:`shared.media.ffmpeg`: ``ffmpeg_exe()``, ``run_ffmpeg(args, usage=, timeout=, cancelled=)``;
* :mod:`shared.media.probe`: ``probe(path, max_duration_seconds=, require_video=) -> MediaInfo``;
* :mod:`shared.media.models`: ``MediaInfo``, ``VideoStreamInfo``, ``AudioStreamInfo``;
* :mod:`shared.media.normalize`: ``plan_normalize(info, src, dst, ...)``, ``normalize(src, dst, info, ...)``.
"""
