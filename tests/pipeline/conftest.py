"""Fixtures for pipeline tests: a short real clip, and a VidLuxe home on SQLite or PostgreSQL
(``backend_env``, tests/conftest.py, applied to this process by ``use_backend``)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from shared.media.ffmpeg import ffmpeg_exe

ROOT = Path(__file__).resolve().parents[2]
TESTDATA = ROOT.parent / "shared" / "testdata"
SAMPLE = ROOT / "samples" / "talking_head.mp4"


@pytest.fixture(scope="session")
def short_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 2 seconds of the shipped sample, with a real AAC track added (the sample is silent)."""
    out = tmp_path_factory.mktemp("clips") / "short.mp4"
    speech = TESTDATA / "audio" / "librispeech_198-209-0000.ogg"
    subprocess.run(
        [ffmpeg_exe(), "-loglevel", "error", "-y", "-i", str(SAMPLE), "-i", str(speech), "-t", "2",
         "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", str(out)],
        check=True,
    )
    return out


@pytest.fixture
def use_backend(backend_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """``backend_env`` applied to this process's environment, for in-process runs."""
    for name, value in backend_env.items():
        monkeypatch.setenv(name, value)
    return backend_env
