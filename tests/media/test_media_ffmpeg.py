"""run_ffmpeg: CPU accounting per child, errors, timeout and cancellation; ffmpeg_exe's override."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest

from shared.errors import ConfigurationError, MediaError
from shared.media.ffmpeg import ffmpeg_exe, run_ffmpeg
from shared.storage.tasks import ResourceUsage

# ~1 s of real x264 work, no input file needed
TESTSRC = ["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30"]
ENCODE_1S = [*TESTSRC, "-t", "1", "-c:v", "libx264", "-f", "null", "-"]
# would run for minutes: stopped by the tests
ENDLESS = [*TESTSRC, "-t", "600", "-c:v", "libx264", "-f", "null", "-"]


class _RecordingPopen(subprocess.Popen[bytes]):
    started: ClassVar[list[subprocess.Popen[bytes]]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _RecordingPopen.started.append(self)


@pytest.fixture
def children(monkeypatch: pytest.MonkeyPatch) -> list[subprocess.Popen[bytes]]:
    """The ffmpeg processes run_ffmpeg starts during the test."""
    _RecordingPopen.started = []
    monkeypatch.setattr(subprocess, "Popen", _RecordingPopen)  # the module run_ffmpeg calls it from
    return _RecordingPopen.started


def _assert_gone(process: subprocess.Popen[bytes]) -> None:
    assert process.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.kill(process.pid, 0)


def test_ffmpeg_exe_is_imageio_binary_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIDLUXE_FFMPEG", raising=False)
    exe = ffmpeg_exe()
    assert Path(exe).is_file() and os.access(exe, os.X_OK)


def test_ffmpeg_exe_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("VIDLUXE_FFMPEG", raising=False)
    real = ffmpeg_exe()
    monkeypatch.setenv("VIDLUXE_FFMPEG", real)
    assert ffmpeg_exe() == real
    monkeypatch.setenv("VIDLUXE_FFMPEG", str(tmp_path / "no-such-ffmpeg"))
    with pytest.raises(ConfigurationError) as caught:
        ffmpeg_exe()
    assert caught.value.code == "FFMPEG_NOT_FOUND"


def test_cpu_seconds_are_added(children: list[subprocess.Popen[bytes]]) -> None:
    usage = ResourceUsage(cpu_seconds=1.0)
    run_ffmpeg(ENCODE_1S, usage=usage)
    assert usage.cpu_seconds > 1.05
    _assert_gone(children[0])


def test_cpu_seconds_belong_to_their_own_child() -> None:
    """A heavy encode that ends while a light job runs on another thread is not charged to the light job."""
    light_usage, heavy_usage = ResourceUsage(), ResourceUsage()
    heavy_done = threading.Event()
    light_finished_after_heavy: list[bool] = []

    def light() -> None:  # ~3 s of wall time, almost no CPU
        run_ffmpeg(
            ["-re", "-f", "lavfi", "-i", "nullsrc=size=16x16:rate=10", "-t", "3", "-f", "null", "-"],
            usage=light_usage,
        )
        light_finished_after_heavy.append(heavy_done.is_set())

    thread = threading.Thread(target=light)
    thread.start()
    time.sleep(0.2)
    run_ffmpeg(ENCODE_1S, usage=heavy_usage)
    heavy_done.set()
    thread.join()
    assert light_finished_after_heavy == [True]  # the overlap this test is about did happen
    assert heavy_usage.cpu_seconds > 0.3
    assert light_usage.cpu_seconds < 0.25


def test_failure_raises_with_stderr(tmp_path: Path) -> None:
    with pytest.raises(MediaError) as caught:
        run_ffmpeg(["-i", str(tmp_path / "missing.mp4"), "-f", "null", "-"])
    assert caught.value.code == "FFMPEG_FAILED"
    assert "No such file or directory" in caught.value.message
    assert caught.value.details["exit_status"] != 0


def test_unknown_option_fails() -> None:
    with pytest.raises(MediaError) as caught:
        run_ffmpeg(["-definitely-not-an-option", "1"])
    assert caught.value.code == "FFMPEG_FAILED"
    assert "definitely-not-an-option" in caught.value.message


def test_error_message_is_bounded() -> None:
    """A chatty failure (debug logging) is quoted by its last lines only."""
    args = ["-loglevel", "debug", *TESTSRC, "-t", "1", "-f", "no_such_muxer", "-"]
    with pytest.raises(MediaError) as caught:
        run_ffmpeg(args)
    assert len(caught.value.message.splitlines()) <= 13
    assert len(caught.value.message) < 14_000


def test_arguments_are_not_interpreted_by_a_shell(tmp_path: Path) -> None:
    out = tmp_path / "a b; touch pwned.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=64x64:rate=5", "-frames:v", "2", "-f", "mp4", str(out)])
    assert out.is_file()
    assert not (tmp_path / "pwned.mp4").exists()


def test_cancellation_kills_promptly(children: list[subprocess.Popen[bytes]]) -> None:
    cancelled = threading.Event()
    usage = ResourceUsage()
    threading.Timer(0.5, cancelled.set).start()
    started = time.monotonic()
    with pytest.raises(MediaError) as caught:
        run_ffmpeg(ENDLESS, usage=usage, cancelled=cancelled)
    assert caught.value.code == "FFMPEG_CANCELLED"
    assert time.monotonic() - started < 2.0
    assert usage.cpu_seconds > 0  # the work done before the kill is still accounted for
    _assert_gone(children[0])


def test_cancelled_before_start_runs_nothing(children: list[subprocess.Popen[bytes]]) -> None:
    cancelled = threading.Event()
    cancelled.set()
    with pytest.raises(MediaError) as caught:
        run_ffmpeg(ENCODE_1S, cancelled=cancelled)
    assert caught.value.code == "FFMPEG_CANCELLED"
    assert children == []


def test_timeout_kills(children: list[subprocess.Popen[bytes]]) -> None:
    started = time.monotonic()
    with pytest.raises(MediaError) as caught:
        run_ffmpeg(ENDLESS, timeout=0.5)
    assert caught.value.code == "FFMPEG_TIMEOUT"
    assert time.monotonic() - started < 2.0
    _assert_gone(children[0])


def test_progress_reports_rising_fractions_up_to_one(tmp_path: Path) -> None:
    fractions: list[float] = []
    run_ffmpeg(
        ["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "3", "-c:v", "libx264", "-preset", "ultrafast",
         "-y", str(tmp_path / "out.mp4")],
        progress=fractions.append, duration_seconds=3.0,
    )
    assert fractions, "no progress was reported"
    assert fractions == sorted(fractions)
    assert 0.9 <= fractions[-1] <= 1.0


RAW_GRAY_4x4 = ["-f", "rawvideo", "-pix_fmt", "gray", "-s", "4x4", "-framerate", "10", "-i", "pipe:0"]


def test_feed_writes_stdin_and_the_pipe_is_closed_after_it(tmp_path: Path) -> None:
    out = tmp_path / "frames.raw"

    def feed(stream: Any) -> None:
        for level in (10, 20, 30):
            stream.write(bytes([level]) * 16)

    run_ffmpeg([*RAW_GRAY_4x4, "-f", "rawvideo", "-y", str(out)], feed=feed)
    assert out.read_bytes() == bytes([10]) * 16 + bytes([20]) * 16 + bytes([30]) * 16


def test_a_failing_feed_stops_ffmpeg_and_its_error_is_raised(
    tmp_path: Path, children: list[subprocess.Popen[bytes]]
) -> None:
    class MattingBroke(Exception):
        pass

    def feed(stream: Any) -> None:
        stream.write(bytes(16))
        raise MattingBroke("the model failed")

    with pytest.raises(MattingBroke):
        run_ffmpeg([*RAW_GRAY_4x4, "-f", "rawvideo", "-y", str(tmp_path / "frames.raw")], feed=feed)
    assert len(children) == 1
    _assert_gone(children[0])


def test_ffmpeg_failing_first_reports_ffmpeg_not_the_broken_pipe() -> None:
    def feed(stream: Any) -> None:
        for _ in range(10_000):
            stream.write(bytes(16))

    with pytest.raises(MediaError) as caught:
        run_ffmpeg([*RAW_GRAY_4x4, "-vf", "no_such_filter", "-f", "null", "-"], feed=feed)
    assert caught.value.code == "FFMPEG_FAILED"
