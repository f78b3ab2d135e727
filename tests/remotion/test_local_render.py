"""PremiumTalkingVideo rendered locally (Remotion's renderer, Debian's chromium) against the ffmpeg
renderer's frames of the same spec.

The first test leaves the person layer out on both sides (fully transparent on ffmpeg's stdin,
``person_video: null`` for Remotion) and compares what both renderers must agree on: the drifting
background, the text card with its fades and the grade. The second draws the same synthetic person
layer on both: raw yuva420p on ffmpeg's stdin, and the VP9 WebM with alpha the Remotion stage makes of
it. Both as the mean absolute difference of RGB levels per frame (the person's: 2.1 / 2.1 / 1.9 here;
26 with the layer missing on one side).
About 20 s here (40 s the first time: a webpack bundle and a headless chromium), under the ~60 s
bound for the default run.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path
from typing import IO

import numpy as np
import pytest
from PIL import Image
from remotion_node import node

from shared.composition import CompositionSpec
from shared.media.ffmpeg import ffmpeg_exe, run_ffmpeg
from shared.media.render import person_box, plan_render_chunk

CHROMIUM = Path("/usr/bin/chromium")
FRAMES = (0, 20, 50)  # before the title, mid fade-in, after it: background drift and grade throughout
PERSON_TOLERANCE = 8.0  # in the person's box: VP9's lossy alpha and 4:2:0 on top of the rest
TOLERANCE = 5.0  # mean |difference| in 8-bit RGB levels; measured 2.1 / 3.4 / 2.8 (H.264, 4:2:0 chroma, lutyuv clips)

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)"
)


def _assets(public: Path, width: int, height: int) -> None:
    yy, xx = np.mgrid[0 : int(height * 1.1), 0 : int(width * 1.1)]
    background = np.stack([xx * 255 / (width * 1.1), yy * 255 / (height * 1.1), np.full(xx.shape, 120.0)], -1)
    Image.fromarray(background.astype(np.uint8)).save(public / "bg.png")
    card = np.zeros((80, width, 4), np.uint8)
    card[10:70, 20 : width - 20] = (250, 240, 200, 230)
    Image.fromarray(card).save(public / "title.png")


def _ffmpeg_frames(spec: CompositionSpec, public: Path, out: Path) -> list[np.ndarray]:
    box = person_box(spec.width, spec.height, spec.person.scale)
    empty = bytes(box.width * box.height * 3 // 2) + bytes(box.width * box.height)  # yuva420p, alpha 0

    def feed(stream: IO[bytes]) -> None:
        for _ in range(spec.frames):
            stream.write(empty)

    files = {"bg.png": public / "bg.png", "title.png": public / "title.png"}
    run_ffmpeg(plan_render_chunk(spec, 0, files, out), feed=feed)
    frames = []
    for frame in FRAMES:
        png = subprocess.run(
            [ffmpeg_exe(), "-loglevel", "error", "-i", str(out), "-vf", f"select=eq(n\\,{frame})", "-frames:v", "1",
             "-f", "image2pipe", "-vcodec", "png", "-"], check=True, capture_output=True,
        ).stdout
        frames.append(np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32))
    return frames


def test_remotion_frames_match_the_ffmpeg_renderer(remotion_project: Path, tmp_path: Path) -> None:
    example = json.loads((remotion_project / "src" / "example-spec.json").read_text())
    example["background"]["key"], example["overlays"] = "bg.png", []
    example["texts"][0]["key"] = "title.png"
    spec = CompositionSpec.model_validate(example)
    public = tmp_path / "public"
    public.mkdir()
    _assets(public, spec.width, spec.height)

    props = {"spec": spec.model_dump(mode="json"), "person_video": None,
             "assets": {"bg.png": "public/bg.png", "title.png": "public/title.png"}}
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"props": props, "frames": list(FRAMES), "publicDir": str(public),
                               "outDir": str(tmp_path / "remotion"), "browserExecutable": str(CHROMIUM)}))
    result = node("scripts/render-stills.cjs", str(job), cwd=remotion_project, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]

    expected = _ffmpeg_frames(spec, public, tmp_path / "ffmpeg.mp4")
    for frame, theirs in zip(FRAMES, expected, strict=True):
        ours = np.asarray(Image.open(tmp_path / "remotion" / f"frame-{frame}.png").convert("RGB"), dtype=np.float32)
        assert ours.shape == theirs.shape
        difference = float(np.abs(ours - theirs).mean())
        assert difference < TOLERANCE, f"frame {frame}: mean |difference| {difference:.2f} levels"
    shutil.rmtree(tmp_path / "remotion" / "bundle", ignore_errors=True)


def _person_frames(width: int, height: int, frames: int) -> bytes:
    """Raw yuva420p frames of the person's box: a soft-edged ellipse (alpha) over shaded luma, moving
    a little each frame, so a frame taken from the wrong time or place shows."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    out = bytearray()
    for index in range(frames):
        cx, cy = width * (0.45 + 0.002 * index), height * 0.55
        distance = np.hypot((xx - cx) / (width * 0.35), (yy - cy) / (height * 0.4))
        alpha = np.clip((1.0 - distance) * 6.0, 0.0, 1.0) * 255
        luma = 60 + 140 * (yy / height)
        out += luma.astype(np.uint8).tobytes()
        out += np.full((height // 2, width // 2), 150, np.uint8).tobytes()  # U: a warm tint
        out += np.full((height // 2, width // 2), 170, np.uint8).tobytes()  # V
        out += alpha.astype(np.uint8).tobytes()
    return bytes(out)


def test_the_person_layer_with_alpha_matches_the_ffmpeg_renderer(remotion_project: Path, tmp_path: Path) -> None:
    """The person drawn by Remotion from the VP9 WebM with alpha (what the Remotion stage uploads) lands
    where, and as, the ffmpeg renderer draws the same frames read raw from its stdin."""
    from shared.providers.remotion import plan_person_layer_encode

    example = json.loads((remotion_project / "src" / "example-spec.json").read_text())
    example["background"]["key"], example["overlays"], example["texts"] = "bg.png", [], []
    example["person"]["color_match"] = 0.0  # no chroma pull: the layer's own colours on both sides
    spec = CompositionSpec.model_validate(example)
    public = tmp_path / "public"
    public.mkdir()
    _assets(public, spec.width, spec.height)
    box = person_box(spec.width, spec.height, spec.person.scale)
    layer = _person_frames(box.width, box.height, spec.frames)

    def feed(stream: IO[bytes]) -> None:
        stream.write(layer)

    run_ffmpeg(plan_person_layer_encode(spec, public / "person.webm"), feed=feed)
    props = {"spec": spec.model_dump(mode="json"), "person_video": "public/person.webm",
             "person_chroma_shift": [0.0, 0.0], "assets": {"bg.png": "public/bg.png"}}
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"props": props, "frames": list(FRAMES), "publicDir": str(public),
                               "outDir": str(tmp_path / "remotion"), "browserExecutable": str(CHROMIUM)}))
    result = node("scripts/render-stills.cjs", str(job), cwd=remotion_project, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]

    files = {"bg.png": public / "bg.png"}
    run_ffmpeg(plan_render_chunk(spec, 0, files, tmp_path / "ffmpeg.mp4"), feed=feed)
    for frame in FRAMES:
        png = subprocess.run(
            [ffmpeg_exe(), "-loglevel", "error", "-i", str(tmp_path / "ffmpeg.mp4"), "-vf",
             f"select=eq(n\\,{frame})", "-frames:v", "1", "-f", "image2pipe", "-vcodec", "png", "-"],
            check=True, capture_output=True,
        ).stdout
        theirs = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32)
        ours = np.asarray(Image.open(tmp_path / "remotion" / f"frame-{frame}.png").convert("RGB"), dtype=np.float32)
        region = (slice(box.y, box.y + box.height), slice(box.x, box.x + box.width))
        whole, person = float(np.abs(ours - theirs).mean()), float(np.abs(ours[region] - theirs[region]).mean())
        print(f"frame {frame}: mean |difference| {whole:.2f} levels, {person:.2f} in the person's box")
        assert person < PERSON_TOLERANCE and whole < TOLERANCE, f"frame {frame}: {whole:.2f} / {person:.2f}"
    shutil.rmtree(tmp_path / "remotion" / "bundle", ignore_errors=True)
