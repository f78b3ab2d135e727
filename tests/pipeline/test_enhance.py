"""The enhance pipeline end to end on the embedded engine, through the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import shared.stages.finalize as finalize_module
from shared.cli import main
from shared.errors import MediaError
from shared.media.frames import read_frames
from shared.media.probe import probe
from shared.pipeline.enhance import EnhanceOptions, OutputFormat, submit_enhance
from shared.pipeline.execution import new_task_id, run_task
from shared.pipeline.registry import StageRegistry
from shared.pipeline.runtime import Runtime
from shared.pipeline.stage import execute_stage
from shared.settings import Settings
from shared.stages import ALL_STAGES
from shared.stages.finalize import FINALIZE
from shared.stages.matte import MATTE
from shared.stages.render import RENDER_CHUNK
from shared.storage.tasks import StageRunStatus, TaskStatus

SMALL = ["--width", "360", "--height", "640", "--fps", "15"]
DELIVERED = ["assets.zip", "comparison.jpg", "contact_sheet.png", "final.mp4", "report.json"]
ENHANCE_STAGES = {
    "probe", "learn_style", "generate_assets", "matte", "plan_composition", "render_chunk", "assemble", "finalize",
}


def test_enhance_writes_final_video_and_report(
    use_backend: dict[str, str], short_clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main(["enhance", str(short_clip), "--preset", "cinematic", "--title", 'Say "hi": 100% {x} \\ ok',
                 "--quote", "Slow is smooth", *SMALL, "--out", str(out), "--json"])
    assert code == 0, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out)
    assert sorted(p.name for p in out.iterdir()) == DELIVERED
    assert report == json.loads((out / "report.json").read_text())
    assert report["status"] == "succeeded"
    assert report["stages"][0]["stage"] == "probe"
    assert {s["stage"] for s in report["stages"]} == ENHANCE_STAGES
    # The first chunk is matted early, beside the style work, and rendered from that matte; the others
    # are matted inline by their render (a 2 s clip is one chunk).
    assert [s["stage"] for s in report["stages"] if s["status"] != "succeeded"] == []
    assert [s["stage"] for s in report["stages"]].count("matte") == 1
    assert report["style"]["source"] == "preset:cinematic"
    # What the cloud would charge: every stage priced, and the download of the outputs.
    assert set(report["cost"]["by_stage"]) == ENHANCE_STAGES | {"delivery"}
    assert report["cost"]["total_usd"] == pytest.approx(sum(report["cost"]["by_stage"].values()), abs=1e-5)
    assert 0 < report["cost"]["total_usd"] < 0.05
    quality = report["quality"]
    assert quality["frames"] > 10 and 0 <= quality["flicker"] < 0.02
    assert quality["static_ssim"] is None or quality["static_ssim"] > 0.9

    final = probe(out / "final.mp4")
    assert final.video is not None and (final.video.width, final.video.height) == (360, 640)
    assert final.audio is not None, "the source's audio must survive compositing"
    assert abs(final.duration_seconds - 2.0) < 0.3


def test_rerunning_a_stage_with_the_same_input_reuses_its_output(
    use_backend: dict[str, str], short_clip: Path, tmp_path: Path
) -> None:
    assert main(["enhance", str(short_clip), *SMALL, "--out", str(tmp_path / "out")]) == 0
    runtime = Runtime.from_settings(Settings())
    try:
        task = runtime.tasks.list_tasks(limit=1)[0]
        before = sorted(runtime.objects.list_keys(f"tasks/{task.task_id}/"))
        probe_stage = ALL_STAGES[0]
        payload = {"task_id": task.task_id, "source_key": task.input["source_key"],
                   "source_name": task.input["source_name"],
                   "width": 360, "height": 640, "fps": 15, "max_duration_seconds": 600.0, "chunk_seconds": 5.0}
        again = execute_stage(probe_stage, payload, runtime)
        recorded = next(t for t in runtime.tasks.list_transitions(task.task_id) if t.state_name == "Probe")
        assert again == recorded.output["probe"]["Payload"]
        runs = [r for r in runtime.tasks.list_stage_runs(task.task_id) if r.stage == "probe"]
        assert [r.status for r in runs] == [StageRunStatus.SUCCEEDED, StageRunStatus.REUSED]
        assert sorted(runtime.objects.list_keys(f"tasks/{task.task_id}/")) == before

        # Running the whole task again is a no-op: it already succeeded.
        rerun = run_task(runtime, StageRegistry(ALL_STAGES), task.task_id)
        assert rerun.status == TaskStatus.SUCCEEDED
        assert len(runtime.tasks.list_stage_runs(task.task_id)) == len(ENHANCE_STAGES) + 1  # + the reused probe
    finally:
        runtime.close()


def test_a_chunk_matted_inline_matches_the_same_chunk_rendered_from_a_stored_matte(
    short_clip: Path, tmp_path: Path
) -> None:
    """Chunk 0 is rendered from the matte stored during Prepare, later chunks are matted inline by their
    render (one decode for both). The two ways must give the same picture, or chunk cuts would show."""
    runtime = Runtime.from_settings(Settings(home=tmp_path / "home"))
    try:
        options = EnhanceOptions(output=OutputFormat(width=360, height=640, fps=15), chunk_seconds=1.0)
        task = submit_enhance(runtime, new_task_id(), short_clip, options)
        assert run_task(runtime, StageRegistry(ALL_STAGES), task.task_id).status == TaskStatus.SUCCEEDED
        runs = runtime.tasks.list_stage_runs(task.task_id)
        assert [r.stage for r in runs].count("render_chunk") == 2 and [r.stage for r in runs].count("matte") == 1

        transitions = runtime.tasks.list_transitions(task.task_id)
        state = next(t for t in transitions if t.state_name == "Prepare").output
        job, plan, chunk = state["job"], state["prepared"]["plan"], state["probe"]["Payload"]["chunks"][1]
        inline = next(t for t in transitions if t.state_name == "RenderChunk").output
        assert inline["index"] == 1 and inline["keyframes"] > 0
        for routing in ("matting", "renderer"):  # they route the chunk; no field of the Matte stage
            job.pop(routing)
        matte = execute_stage(MATTE, {**job, "chunk": chunk}, runtime)
        stored = execute_stage(RENDER_CHUNK, {
            "task_id": task.task_id, "spec_key": plan["spec_key"], "index": 1, "matte_key": matte["matte_key"],
            "person_chroma_shift": plan["person_chroma_shift"],
        }, runtime)
        assert stored["keyframes"] == 0
        with runtime.objects.local_copy(inline["video_key"]) as a, runtime.objects.local_copy(stored["video_key"]) as b:
            ours = [f.astype(np.float32) for f in read_frames(["-i", str(a)], 360, 640, "gray")]
            theirs = [f.astype(np.float32) for f in read_frames(["-i", str(b)], 360, 640, "gray")]
    finally:
        runtime.close()
    assert len(ours) == len(theirs) == chunk["frames"]
    differences = [float(np.abs(x - y).mean()) for x, y in zip(ours, theirs, strict=True)]
    assert max(differences) < 1.0, differences


def test_finalize_with_an_unreadable_matte_fails_with_a_typed_error(
    short_clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The QA runs on a helper thread beside the stills: its failure must come back as the stage's."""
    runtime = Runtime.from_settings(Settings(home=tmp_path / "home"))
    try:
        options = EnhanceOptions(output=OutputFormat(width=360, height=640, fps=15))
        task = submit_enhance(runtime, new_task_id(), short_clip, options)
        assert run_task(runtime, StageRegistry(ALL_STAGES), task.task_id).status == TaskStatus.SUCCEEDED
        state = next(t for t in runtime.tasks.list_transitions(task.task_id) if t.state_name == "Finalize").output
        broken = f"tasks/{task.task_id}/broken/matte.mp4"
        runtime.objects.put_bytes(broken, b"not a video", "video/mp4")
        payload = {"task_id": task.task_id, "spec_key": state["prepared"]["plan"]["spec_key"],
                   "video_key": state["final"]["Payload"]["final_key"], "matte_key": broken}
        with pytest.raises(MediaError) as failed:
            execute_stage(FINALIZE, payload, runtime)
        assert failed.value.code == "FFMPEG_FAILED"

        def qa_fails(*_: object, **__: object) -> None:
            raise MediaError("the QA's decoder failed", code="QA_DECODE_FAILED")

        monkeypatch.setattr(finalize_module, "measure_first_chunk", qa_fails)  # the stills themselves succeed
        with pytest.raises(MediaError, match="QA's decoder"):
            execute_stage(FINALIZE, {**payload, "matte_key": state["prepared"]["first_matte_key"]}, runtime)
        runs = [r for r in runtime.tasks.list_stage_runs(task.task_id) if r.stage == "finalize"]
        assert [r.status for r in runs] == [StageRunStatus.SUCCEEDED, StageRunStatus.FAILED, StageRunStatus.FAILED]
        assert runs[-1].usage.cpu_seconds > 0
    finally:
        runtime.close()
