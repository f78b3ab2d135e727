"""Fixtures for the AWS tests: moto's in-process AWS (S3, Step Functions, DynamoDB, SSM), a short real
clip, and the Lambda modules' per-container caches emptied around each test."""

from __future__ import annotations

import io
import json
import logging
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import functions.api
import functions.observability
import functions.service
import functions.stages
import functions.upload_trigger
from shared.media.ffmpeg import ffmpeg_exe

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "talking_head.mp4"


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 1.5 seconds of the shipped sample, stream-copied."""
    out = tmp_path_factory.mktemp("clips") / "clip.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-loglevel", "error", "-y", "-i", str(SAMPLE), "-t", "1.5", "-c:v", "copy", "-an", str(out)],
        check=True,
    )
    return out


def _clear_containers() -> None:
    if functions.service.cloud_services.cache_info().currsize:
        functions.service.cloud_services().close()
    if functions.stages._runtime.cache_info().currsize:
        functions.stages._runtime().close()
    for cached in (
        functions.service.cloud_services,
        functions.api._adapter,
        functions.stages._runtime,
        functions.upload_trigger._landing,
    ):
        cached.cache_clear()


@pytest.fixture
def fresh_containers() -> Iterator[None]:
    """Each test starts the Lambdas cold (stores, secrets and the idempotency layer built anew)."""
    _clear_containers()
    yield
    _clear_containers()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto's AWS in this process, with fake credentials: no request leaves the machine."""
    from moto import mock_aws

    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SFN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


@pytest.fixture
def lambda_stdout(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The JSON lines the handlers print, as Lambda would ship them to CloudWatch: powertools' log lines
    (its Logger's handler keeps the stream it was created with, so it writes to a buffer for the test)
    and the EMF metric documents (printed to stdout)."""
    handler = functions.observability.logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)

    def read() -> list[dict[str, Any]]:
        text = buffer.getvalue() + capsys.readouterr().out
        buffer.seek(0)
        buffer.truncate()
        lines = []
        for line in text.splitlines():
            if line.startswith("{"):
                try:
                    lines.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return lines

    yield read
    if previous is not None:
        handler.setStream(previous)
