"""The enhance pipeline end to end on the embedded engine, through the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.cli import main
from shared.media.probe import probe
from shared.pipeline.execution import run_task
from shared.pipeline.registry import StageRegistry
from shared.pipeline.runtime import Runtime
from shared.pipeline.stage import execute_stage
from shared.settings import Settings
from shared.stages import ALL_STAGES
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
    # The first chunk is matted early, beside the style work; the chunk Map then reuses that matte.
    assert [s["stage"] for s in report["stages"] if s["status"] != "succeeded"] == ["matte"]
    assert [s["status"] for s in report["stages"] if s["stage"] == "matte"] == ["succeeded", "reused"]
    assert report["style"]["source"] == "preset:cinematic"
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
        assert len(runtime.tasks.list_stage_runs(task.task_id)) == len(ENHANCE_STAGES) + 2  # + probe, + reused matte
    finally:
        runtime.close()
