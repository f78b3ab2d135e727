"""Bad input fails in the first stage with a clear code, is recorded as failed, and delivers nothing."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from shared.cli import main
from shared.media.ffmpeg import ffmpeg_exe
from shared.pipeline.runtime import Runtime
from shared.settings import Settings
from shared.storage.tasks import TaskStatus

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "talking_head.mp4"
TESTDATA = ROOT.parent / "shared" / "testdata"


def _missing(tmp: Path) -> Path:
    return tmp / "nope.mp4"


def _empty(tmp: Path) -> Path:
    (tmp / "empty.mp4").write_bytes(b"")
    return tmp / "empty.mp4"


def _text(tmp: Path) -> Path:
    (tmp / "notes.mp4").write_text("these are not the frames you are looking for\n" * 50)
    return tmp / "notes.mp4"


def _truncated(tmp: Path) -> Path:
    (tmp / "cut.mp4").write_bytes(SAMPLE.read_bytes()[: SAMPLE.stat().st_size // 3])
    return tmp / "cut.mp4"


def _audio_only(tmp: Path) -> Path:
    out = tmp / "speech.m4a"
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-i", str(TESTDATA / "audio" / "librispeech_198-209-0000.ogg"),
                    "-t", "1", "-c:a", "aac", str(out)], check=True)
    return out


@pytest.mark.parametrize(
    ("make", "code", "stage"),
    [
        (_missing, "INPUT_NOT_FOUND", "upload"),
        (_empty, "INPUT_EMPTY", "Probe"),
        (_text, "INPUT_NOT_VIDEO", "Probe"),
        (_truncated, "INPUT_TRUNCATED", "Probe"),
        (_audio_only, "INPUT_NO_VIDEO_STREAM", "Probe"),
    ],
)
def test_bad_input_fails_with_its_code(
    make: Callable[[Path], Path], code: str, stage: str, use_backend: dict[str, str], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out"
    video = make(tmp_path)
    assert main(["enhance", str(video), "--out", str(out)]) == 1
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert err_lines[-1].startswith(f"error {code}: "), err_lines
    assert video.name in err_lines[-1], "the message names the user's file, not the stored copy"
    assert "Traceback" not in "\n".join(err_lines)
    assert not out.exists() or not any(out.iterdir())

    runtime = Runtime.from_settings(Settings())
    try:
        task = runtime.tasks.list_tasks(limit=1)[0]
        assert (task.status, task.error_code, task.current_stage) == (TaskStatus.FAILED, code, stage)
    finally:
        runtime.close()


def test_unknown_task_is_a_clear_error(use_backend: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "tsk_does_not_exist"]) == 1
    assert capsys.readouterr().err.startswith("error NOT_FOUND: ")


def test_invalid_output_size_is_rejected_before_any_work(
    use_backend: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["enhance", str(SAMPLE), "--width", "1081", "--out", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err.startswith("error INVALID_OPTION: ")
