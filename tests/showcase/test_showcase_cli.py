"""`vidluxe showcase` end to end on the embedded engine and SQLite, at a small output size."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shared.cli import main
from shared.media.ffmpeg import ffmpeg_exe
from shared.media.probe import probe

SMALL = ["--width", "270", "--height", "480", "--fps", "12"]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VIDLUXE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VIDLUXE_TASK_STORE", "sqlite")
    return tmp_path / "home"


def _frame(video: Path, at: float) -> np.ndarray:
    raw = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-ss", f"{at}", "-i", str(video), "-frames:v", "1", "-f", "image2pipe",
         "-vcodec", "png", "-"], check=True, capture_output=True).stdout
    path = video.with_suffix(f".{at}.png")
    path.write_bytes(raw)
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)


def test_showcase_writes_vertical_square_and_gif(
    home: Path, bottle: tuple[Path, np.ndarray], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main(["showcase", str(bottle[0]), "--category", "skincare", "--title", 'Rose "Glow": 100% {pure}',
                 "--subtitle", "Serum", *SMALL, "--out", str(out), "--json"])
    assert code == 0, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "succeeded"
    assert sorted(p.name for p in out.iterdir()) == ["final.mp4", "final_square.mp4", "preview.gif", "report.json"]
    assert {s["stage"] for s in report["stages"]} == {
        "showcase_cutout", "showcase_scene", "showcase_render", "showcase_preview"}

    final, square, gif = probe(out / "final.mp4"), probe(out / "final_square.mp4"), probe(out / "preview.gif")
    assert final.video is not None and (final.video.width, final.video.height) == (270, 480)
    assert square.video is not None and (square.video.width, square.video.height) == (270, 270)
    assert gif.video is not None and gif.video.width == 480
    assert 6.0 <= final.duration_seconds <= 8.0 and 6.0 <= square.duration_seconds <= 8.0

    # The product stands in the middle once it has entered: there the frame differs from the plain backdrop
    # around it, and it is pink (the bottle), not the backdrop's blush.
    frame = _frame(out / "final.mp4", 3.0)
    product = frame[200:360, 115:155]
    beside = frame[200:360, 10:40]
    assert np.abs(product.mean(axis=(0, 1)) - beside.mean(axis=(0, 1))).max() > 25
    first = _frame(out / "final.mp4", 0.0)
    empty = np.abs(first[200:360, 115:155].mean(axis=(0, 1)) - first[200:360, 10:40].mean(axis=(0, 1))).max()
    assert empty < 12, "the product enters: it is not there yet in the first frame"


@pytest.mark.parametrize(("content", "code"), [(b"hello", "INPUT_NOT_IMAGE"), (None, "INPUT_NOT_FOUND")])
def test_bad_photos_fail_with_a_code(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, code: str
) -> None:
    photo = tmp_path / "photo.jpg"
    if content is not None:
        photo.write_bytes(content)
    assert main(["showcase", str(photo), "--category", "food", *SMALL, "--out", str(tmp_path / "o")]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(f"error {code}: ")


def test_too_many_photos_are_refused(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photos = [str(tmp_path / f"{i}.png") for i in range(5)]
    assert main(["showcase", *photos, "--category", "fashion", "--out", str(tmp_path / "o")]) == 1
    assert "error TOO_MANY_PHOTOS: " in capsys.readouterr().err
