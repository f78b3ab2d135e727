"""Fixtures for pipeline tests: a short real clip, and a VidLuxe home on SQLite or PostgreSQL.

The ``backend_env`` fixture yields the VIDLUXE_* variables of one task-store backend; PostgreSQL runs in
a fresh schema (dropped afterwards) so tests never see each other's tasks.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.media.ffmpeg import ffmpeg_exe

ROOT = Path(__file__).resolve().parents[2]
TESTDATA = ROOT.parent / "shared" / "testdata"
SAMPLE = ROOT / "samples" / "talking_head.mp4"
POSTGRES_URL = os.environ.get("VIDLUXE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


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


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {"VIDLUXE_HOME": str(tmp_path / "home"), "VIDLUXE_TASK_STORE": request.param}
    if request.param == "sqlite":
        yield env
        return
    import psycopg

    schema = f"test_pipeline_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True)
    except psycopg.OperationalError as exc:
        if os.environ.get("VIDLUXE_TEST_SKIP_SERVICES") == "1":
            pytest.skip(f"PostgreSQL not reachable: {exc}")
        raise
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield {**env, "VIDLUXE_DATABASE_URL": f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"}
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def use_backend(backend_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """``backend_env`` applied to this process's environment, for in-process runs."""
    for name, value in backend_env.items():
        monkeypatch.setenv(name, value)
    return backend_env
