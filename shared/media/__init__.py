"""The media layer. Import from the modules (this package imports nothing, so it stays cheap):

* :mod:`shared.media.ffmpeg`: running ffmpeg with CPU accounting, progress, timeout and cancellation;
* :mod:`shared.media.probe`: ``probe(path, ...) -> MediaInfo``, the typed input checks;
* :mod:`shared.media.normalize`: chunk plans and the upright, constant-rate, fitted decode chain;
* :mod:`shared.media.matting`: person mattes for stills, videos and decoded chunks;
* :mod:`shared.media.render`: the ffmpeg renderer of a CompositionSpec chunk;
* :mod:`shared.media.cards`, :mod:`shared.media.procedural`: text cards and procedural artwork;
* :mod:`shared.media.qa`: temporal QA metrics and contact sheets.
"""
