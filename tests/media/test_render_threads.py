"""How many threads each ffmpeg of a chunk gets: the cores shared by the stages that run at once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shared.composition import BackgroundLayer, CompositionSpec, PersonLayer
from shared.media.models import Chunk
from shared.media.probe import probe
from shared.media.render import person_box, plan_person_decode, plan_render_chunk
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
