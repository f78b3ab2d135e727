"""The render plan: the threads each ffmpeg of a chunk gets, and where the grade is applied."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from shared.composition import BackgroundLayer, CompositionSpec, Effects, GradePreset, PersonLayer
from shared.media.models import Chunk
from shared.media.probe import probe
from shared.media.render import grade_filter, graded_person_filter, person_box, plan_person_decode, plan_render_chunk
from shared.settings import Settings

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "talking_head.mp4"


@pytest.fixture(scope="module")
def spec() -> CompositionSpec:
    media = probe(SAMPLE)
    return CompositionSpec(
        width=360, height=640, fps=30, frames=60, chunks=[Chunk(index=0, start_frame=0, frames=60)],
        background=BackgroundLayer(key="bg.png"), person=PersonLayer(source_key="in.mp4", media=media),
    )


@pytest.mark.parametrize(("workers", "expected"), [(1, os.cpu_count() or 1), (10_000, 1)])
def test_ffmpeg_threads_share_the_cores_among_the_workers(workers: int, expected: int) -> None:
    assert Settings(max_workers=workers).ffmpeg_threads == expected


def test_the_decoder_thread_count_is_an_input_option(spec: CompositionSpec) -> None:
    box = person_box(spec.width, spec.height, spec.person.scale)
    default = plan_person_decode(spec, 0, SAMPLE, box.size)
    assert "-threads" not in default
    one = plan_person_decode(spec, 0, SAMPLE, box.size, threads=1)
    assert one[:2] == ["-threads", "1"] and one[2:] == default  # before -i: it sets the decoder's


def test_the_encoder_thread_count_follows_the_encoder(spec: CompositionSpec, tmp_path: Path) -> None:
    files = {"bg.png": tmp_path / "bg.png"}
    default = plan_render_chunk(spec, 0, files, tmp_path / "out.mp4")
    assert "-threads" not in default
    args = plan_render_chunk(spec, 0, files, tmp_path / "out.mp4", threads=1)
    at = args.index("-threads")
    assert args[at + 1] == "1" and args.index("libx264") < at < args.index(str(tmp_path / "out.mp4"))


def _apply(lut: str | None, plane: str, value: float) -> float:
    """One plane of a ``lutyuv`` filter string, (val-128)*gain+128+offset, at ``value`` (unclipped)."""
    if lut is None:
        return value
    numbers = re.search(rf"{plane}='clip\(\(val-128\)\*([-\d.]+)\+128\+([-\d.]+),", lut)
    assert numbers is not None, lut
    gain, offset = float(numbers.group(1)), float(numbers.group(2))
    return (value - 128) * gain + 128 + offset


@pytest.mark.parametrize("grade", ["none", "luxury", "warm", "cool"])
def test_the_persons_table_is_the_chroma_shift_then_the_grade(grade: GradePreset) -> None:
    effects, shift = Effects(grade=grade, intensity=0.8), (6.0, -4.0)
    person = graded_person_filter(effects, shift)
    shifted, graded = grade_filter(Effects(grade="none"), chroma_shift=shift), grade_filter(effects)
    for plane in "yuv":
        for value in (40.0, 128.0, 200.0):
            expected = _apply(graded, plane, _apply(shifted, plane, value))
            assert _apply(person, plane, value) == pytest.approx(expected, abs=0.01)


def test_the_grade_is_applied_to_each_layer_once_not_to_every_composited_frame(
    spec: CompositionSpec, tmp_path: Path
) -> None:
    graded = spec.model_copy(update={"effects": Effects(grade="luxury")})
    args = plan_render_chunk(graded, 0, {"bg.png": tmp_path / "bg.png"}, tmp_path / "out.mp4")
    graph = args[args.index("-filter_complex") + 1]
    background = next(part for part in graph.split(";") if part.startswith("[1:v]"))
    assert background.index("lutyuv") < background.index("loop=")  # graded once, then repeated
    assert graph.count("lutyuv") == 2  # the background and the person
    assert graph.endswith("format=yuv420p[vout]") and "lutyuv" not in graph.split(";")[-1]
