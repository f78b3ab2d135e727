"""A real ``vidluxe serve`` (LocalService: uvicorn on a free loopback port, the runner, webhook delivery)
on SQLite or PostgreSQL, an API key for it, and a short real clip to upload.

PostgreSQL runs in a fresh schema (through the DSN's search_path), dropped afterwards.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from service_helpers import ServiceFactory, issue_key

from shared.cli.serve import LocalService
from shared.media.ffmpeg import ffmpeg_exe
from shared.settings import Settings
from shared.settings_service import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "talking_head.mp4"


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 1.5 seconds of the shipped sample (a real phone-style clip), stream-copied."""
    out = tmp_path_factory.mktemp("clips") / "clip.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-loglevel", "error", "-y", "-i", str(SAMPLE), "-t", "1.5", "-c:v", "copy", "-an", str(out)],
        check=True,
    )
    return out


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    home = tmp_path / "home"
    if request.param == "sqlite":
        return Settings(home=home, task_store="sqlite", max_workers=2)
    url = request.getfixturevalue("fresh_postgres_url")
    return Settings(home=home, task_store="postgres", database_url=url, max_workers=2)


@pytest.fixture
def start_service(settings: Settings) -> Iterator[ServiceFactory]:
    """Start a LocalService with service settings overridden by keyword (closed after the test)."""
    started: list[LocalService] = []

    def start(**overrides: Any) -> LocalService:
        values: dict[str, Any] = {"webhooks_allow_private": True, "runner_workers": 1, **overrides}
        service = LocalService(settings, ServiceSettings(**values), port=0)
        service.__enter__()
        started.append(service)
        service.start_in_thread()
        return service

    yield start
    for service in started:
        service.close()


@pytest.fixture
def service(start_service: ServiceFactory) -> LocalService:
    return start_service()


@pytest.fixture
def client(service: LocalService) -> Iterator[httpx.Client]:
    """An httpx client on the service, authenticated as tenant "acme"."""
    headers = {"Authorization": f"Bearer {issue_key(service)}"}
    with httpx.Client(base_url=service.base_url, headers=headers, timeout=30) as http:
        yield http
