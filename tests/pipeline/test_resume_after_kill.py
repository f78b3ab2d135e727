"""A task killed with SIGKILL in the middle of a stage resumes from its last completed state.

The run happens in a child process (`python -m shared.cli enhance`), killed once the chosen stage is
running; `vidluxe resume` then finishes the task, and the stage runs recorded in the task store prove
that no finished stage ran twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from shared.cli import main
from shared.pipeline.runtime import Runtime
from shared.settings import Settings
from shared.storage.tasks import StageRunStatus, TaskStatus


def _wait_for(condition: object, proc: subprocess.Popen[bytes], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the run ended before {what}: {proc.stderr.read().decode() if proc.stderr else ''}"
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize("kill_in", ["matte", "render_chunk"])
def test_resume_after_kill_continues_without_recomputing(
    kill_in: str, use_backend: dict[str, str], short_clip: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "shared.cli", "enhance", str(short_clip), "--out", str(out)],
        env={**os.environ, **use_backend}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    runtime = Runtime.from_settings(Settings())
    try:
        def tasks_started() -> bool:
            return bool(runtime.tasks.list_tasks(limit=1))

        _wait_for(tasks_started, proc, "the task to be created")
        task_id = runtime.tasks.list_tasks(limit=1)[0].task_id

        def stage_running() -> bool:
            finished = {r.stage for r in runtime.tasks.list_stage_runs(task_id)}
            # Matte runs beside LearnStyle -> GenerateAssets: kill it once that branch is under way.
            needed = {"probe", "learn_style"}
            if kill_in == "render_chunk":
                needed |= {"matte", "generate_assets", "plan_composition"}
            task = runtime.tasks.get_task(task_id)
            return needed <= finished and kill_in not in finished and (
                kill_in == "matte" or task.current_stage in ("RenderChunk", "RenderWithStoredMatte")
            )

        _wait_for(stage_running, proc, f"{kill_in} to be running")
        time.sleep(0.3)  # well inside the stage, which takes seconds at 1080x1920
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        assert runtime.tasks.get_task(task_id).status == TaskStatus.RUNNING
        assert not out.exists() or not any(out.iterdir()), "nothing may be delivered by a killed run"

        assert main(["resume", task_id]) == 0

        task = runtime.tasks.get_task(task_id)
        assert task.status == TaskStatus.SUCCEEDED
        runs = runtime.tasks.list_stage_runs(task_id)
        # Each stage ran to completion exactly once: finished stages were replayed from the journal,
        # and the killed one never recorded a run.
        assert not [r.stage for r in runs if r.status == StageRunStatus.REUSED]
        assert Counter(r.stage for r in runs if r.status == StageRunStatus.SUCCEEDED) == Counter(
            {"probe": 1, "learn_style": 1, "generate_assets": 1, "matte": 1, "plan_composition": 1,
             "render_chunk": 1, "assemble": 1, "finalize": 1}
        )
        delivered = ["assets.zip", "comparison.jpg", "contact_sheet.png", "final.mp4", "report.json"]
        assert sorted(p.name for p in out.iterdir()) == delivered
    finally:
        if proc.poll() is None:
            proc.kill()
        runtime.close()
