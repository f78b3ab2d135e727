"""`vidluxe matte`: an image's alpha PNG, a video's PNG folder or mp4, and one-line errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from shared.cli import main
from shared.media.ffmpeg import run_ffmpeg

TESTDATA = Path(__file__).resolve().parents[2].parent / "shared" / "testdata"
PORTRAIT = TESTDATA / "matting" / "p3m" / "p_22fc0130.jpg"  # 1080x1344
TALKING = TESTDATA / "videos" / "liveportrait_d13_vertical_talking.mp4"

pytestmark = pytest.mark.skipif(not TALKING.is_file(), reason=f"test media not found under {TESTDATA}")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1 s (30 frames) of the talking head at 270x480."""
    out = tmp_path_factory.mktemp("clip") / "talking.mp4"
    run_ffmpeg(["-y", "-i", str(TALKING), "-t", "1", "-vf", "scale=270:480", "-an", "-c:v", "libx264",
                "-preset", "ultrafast", "-crf", "18", str(out)])  # fmt: skip
    return out


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def test_image_gives_an_alpha_png_the_size_of_the_image(tmp_path: Path) -> None:
    out = tmp_path / "alpha.png"
    assert main(["matte", str(PORTRAIT), "--out", str(out)]) == 0
    with Image.open(out) as alpha, Image.open(PORTRAIT) as image:
        assert alpha.mode == "L" and alpha.size == image.size
        ours = np.asarray(alpha) > 127
    with Image.open(PORTRAIT.with_name(f"{PORTRAIT.stem}_alpha.png")) as reference:
        theirs = np.asarray(reference.convert("L")) > 127
    assert (ours & theirs).sum() / (ours | theirs).sum() > 0.95  # measured 0.985
    assert [path.name for path in tmp_path.iterdir()] == ["alpha.png"]  # nothing left beside it


def test_video_gives_a_folder_of_numbered_pngs(clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "frames"
    assert main(["matte", str(clip), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["kind"] == "video" and summary["frames"] == 30 and summary["keyframes"] == 7
    assert sorted(path.name for path in out.iterdir()) == [f"{index:04d}.png" for index in range(1, 31)]
    for name in ("0001.png", "0030.png"):
        with Image.open(out / name) as frame:
            assert frame.mode == "L" and frame.size == (270, 480)
            alpha = np.asarray(frame)
        assert alpha[200:400, 100:170].mean() > 250 and alpha[:40, :40].max() == 0  # person; background


def test_video_as_mp4_with_a_keyframe_every_frame(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "matte.mp4"
    assert main(["matte", str(clip), "--out", str(out), "--format", "mp4", "--keyframe-interval", "1", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == summary["keyframes"] == 30
    assert (summary["width"], summary["height"]) == (270, 480)
    with av.open(str(out)) as container:
        frames = [frame.to_ndarray(format="gray") for frame in container.decode(video=0)]
    assert len(frames) == 30 and frames[0].shape == (480, 270)


def test_a_second_run_replaces_the_frames_of_the_first(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "frames"
    out.mkdir()
    (out / "0031.png").write_bytes(b"a frame of an earlier, longer matte")
    assert main(["matte", str(clip), "--out", str(out)]) == 0
    assert len(list(out.iterdir())) == 30


@pytest.mark.parametrize(
    ("arguments", "code"),
    [
        (["missing.mp4"], "INPUT_NOT_FOUND"),
        (["notes.txt"], "INPUT_NOT_MEDIA"),
        ([str(PORTRAIT), "--format", "mp4"], "INVALID_OPTION"),
        ([str(PORTRAIT), "--keyframe-interval", "0"], "INVALID_OPTION"),
    ],
)
def test_bad_input_is_one_error_line(
    arguments: list[str], code: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("notes.txt").write_text("not a picture")
    assert main(["matte", *arguments, "--out", str(tmp_path / "out.png")]) == 1
    assert _error_line(capsys).startswith(f"error {code}: ")
    assert not (tmp_path / "out.png").exists()


def test_output_folder_with_other_files_is_refused(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["matte", str(clip), "--out", str(tmp_path)]) == 1
    assert _error_line(capsys).startswith("error OUTPUT_NOT_EMPTY: ")
    assert [path.name for path in tmp_path.iterdir()] == ["notes.txt"]
