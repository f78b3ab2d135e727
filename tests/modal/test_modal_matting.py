"""The matting functions' bodies on the CPU with random-weight MODNet and RVM: the chunk is decoded with
the local stage's chain, matted in batches, stored as a gray H.264 matte; RVM's recurrent state crosses
batches; the output key makes a retry free; the task token gets heartbeats and one success or failure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from botocore.stub import ANY, Stubber
from modal_testdata import BUCKET, FPS, SOURCE_KEY

torch = pytest.importorskip("torch")

from modal_apps import matting  # noqa: E402
from modal_apps.gpu import GpuEnvironment  # noqa: E402
from modal_apps.nets.modnet import MODNet  # noqa: E402
from modal_apps.nets.rvm import MattingNetwork  # noqa: E402
from modal_apps.nets.weights import CheckpointError, load_checkpoint  # noqa: E402
from shared.media.frames import read_frames  # noqa: E402
from shared.media.models import MediaInfo  # noqa: E402
from shared.media.normalize import plan_chunks  # noqa: E402
from shared.stages.matte import MatteOutput  # noqa: E402

TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAAeXampleTaskToken"


def _request(media: MediaInfo, chunk_index: int = 1, **changes: Any) -> dict[str, Any]:
    chunk = plan_chunks(media.duration_seconds, FPS, chunk_seconds=1.0)[chunk_index]
    request = {
        "task_id": "t1", "source_key": SOURCE_KEY, "output_key": f"tasks/t1/matte-gpu/c{chunk_index}/matte.mp4",
        "media": media.model_dump(mode="json"), "hints": {}, "width": 96, "height": 64, "fps": FPS,
        "person_scale": 1.0, "matte_scale": 0.5, "chunk": chunk.model_dump(), "keyframe_interval": 5,
        "batch_frames": 3, "model_size": 64,
    }
    return {**request, **changes}


def _stored_matte(s3: Any, key: str, tmp_path: Path, size: tuple[int, int]) -> np.ndarray:
    local = tmp_path / "matte.mp4"
    s3.download_file(BUCKET, f"env1/{key}", str(local))
    return np.stack(list(read_frames(["-i", str(local)], size[0], size[1], "gray")))


def _stubbed_env(objects_env: GpuEnvironment) -> tuple[GpuEnvironment, Stubber]:
    import boto3

    states = boto3.client("stepfunctions", region_name="us-east-1")
    return GpuEnvironment(objects_env.objects, states), Stubber(states)


def test_checkpoints_load_by_name_as_the_official_files_are_saved(weights_dir: Path) -> None:
    modnet = load_checkpoint(MODNet(), weights_dir / "modnet_photographic_portrait_matting.ckpt")
    assert not modnet.training
    load_checkpoint(MattingNetwork(), weights_dir / "rvm_mobilenetv3.pth")
    with pytest.raises(CheckpointError, match="MODNet"):
        load_checkpoint(MODNet(), weights_dir / "rvm_mobilenetv3.pth")


def test_modnet_function_mattes_a_chunk_into_a_gray_video(aws: Any, media: MediaInfo, tmp_path: Path) -> None:
    result = matting.matte_modnet.local(_request(media))

    MatteOutput.model_validate(result)  # the local Matte stage's output, field for field
    assert (result["width"], result["height"]) == (48, 32)
    assert result["frames"] == 8 and result["method"] == "modnet-photographic"
    mattes = _stored_matte(aws, result["matte_key"], tmp_path, (48, 32))
    assert mattes.shape == (8, 32, 48) and mattes.dtype == np.uint8


def test_rvm_function_runs_the_refiner_path(aws: Any, media: MediaInfo, tmp_path: Path) -> None:
    # a 96x64 matte with a 32 px target: downsample ratio 1/3, so the deep guided filter upsamples
    result = matting.matte_rvm.local(_request(media, chunk_index=0, matte_scale=1.0, model_size=32))

    assert result["method"] == "rvm-mobilenetv3" and (result["width"], result["height"]) == (96, 64)
    assert _stored_matte(aws, result["matte_key"], tmp_path, (96, 64)).shape == (8, 64, 96)


def test_rvm_recurrent_state_is_carried_across_batches() -> None:
    torch.manual_seed(1)
    matter = matting.RvmMatter(MattingNetwork().eval(), "cpu", target=32)
    frames = np.random.default_rng(0).integers(0, 256, (5, 48, 64, 3), dtype=np.uint8)

    whole, _ = matter(frames, None)
    carried, state = [], None
    for start in (0, 2, 4):
        alphas, state = matter(frames[start : start + 2], state)
        carried.append(alphas)

    assert whole.shape == (5, 48, 64) and whole.dtype == np.uint8
    assert len(state) == 4 and all(isinstance(r, torch.Tensor) for r in state)
    assert np.abs(np.concatenate(carried).astype(int) - whole.astype(int)).max() <= 1

    # ... and the state does matter: the same frames after other frames give another (float) alpha
    src = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(255).unsqueeze(0)
    with torch.inference_mode():
        _, _, *rec = matter.model(src[:, :2], downsample_ratio=0.5)
        _, after, *_ = matter.model(src[:, 2:], *rec, downsample_ratio=0.5)
        _, fresh, *_ = matter.model(src[:, 2:], downsample_ratio=0.5)
    assert float((after - fresh).abs().max()) > 1e-4


def test_modnet_alpha_stays_in_range_for_any_frame_size() -> None:
    matter = matting.ModnetMatter(MODNet().eval(), "cpu", reference=64)
    frames = np.random.default_rng(2).integers(0, 256, (2, 50, 70, 3), dtype=np.uint8)
    alphas, state = matter(frames, None)
    assert alphas.shape == (2, 50, 70) and alphas.dtype == np.uint8 and state is None


class _Refuses:
    def __call__(self, frames: np.ndarray, state: Any) -> Any:
        raise AssertionError("matted again although the output key exists")


def test_an_existing_output_key_is_answered_without_matting(aws: Any, media: MediaInfo) -> None:
    request = _request(media)
    first = matting.matte_modnet.local(request)
    env, stub = _stubbed_env(GpuEnvironment.from_env())
    stub.add_response("send_task_heartbeat", {}, {"taskToken": TOKEN})
    stub.add_response("send_task_success", {}, {"taskToken": TOKEN, "output": ANY})
    with stub:
        again = matting.serve("modnet", request, TOKEN, env, matter=_Refuses())
    stub.assert_no_pending_responses()
    assert again == {**first, "reused": True}


def test_a_token_gets_heartbeats_while_matting_then_success(aws: Any, media: MediaInfo, monkeypatch: Any) -> None:
    monkeypatch.setattr("modal_apps.gpu.HEARTBEAT_SECONDS", 0.0)  # one per batch: 8 frames in batches of 3
    env, stub = _stubbed_env(GpuEnvironment.from_env())
    for _ in range(4):  # before the work, then after each of the 3 batches
        stub.add_response("send_task_heartbeat", {}, {"taskToken": TOKEN})
    stub.add_response("send_task_success", {}, {"taskToken": TOKEN, "output": ANY})
    with stub:
        result = matting.serve("modnet", _request(media), TOKEN, env,
                               matter=matting.ModnetMatter(MODNet().eval(), "cpu", 64))
    stub.assert_no_pending_responses()
    assert result["frames"] == 8 and "reused" not in result


def test_a_bad_request_is_reported_as_a_failure_with_a_token(aws: Any, media: MediaInfo) -> None:
    env, stub = _stubbed_env(GpuEnvironment.from_env())
    stub.add_response("send_task_heartbeat", {}, {"taskToken": TOKEN})
    stub.add_response("send_task_failure", {}, {"taskToken": TOKEN, "error": "InvalidInputError", "cause": ANY})
    with stub:
        answer = matting.serve("modnet", _request(media, fps=0), TOKEN, env)
    stub.assert_no_pending_responses()
    assert answer == {"error": "InvalidInputError", "reported": True}


def test_a_missing_source_fails_and_without_a_token_the_error_propagates(aws: Any, media: MediaInfo) -> None:
    from shared.errors import NotFoundError

    with pytest.raises(NotFoundError):
        matting.matte_modnet.local(_request(media, source_key="uploads/t1/missing.mp4"))


def test_a_timed_out_token_stops_the_work_without_reporting(aws: Any, media: MediaInfo) -> None:
    env, stub = _stubbed_env(GpuEnvironment.from_env())
    stub.add_client_error("send_task_heartbeat", "TaskTimedOut", "Task Timed Out", expected_params={"taskToken": TOKEN})
    with stub:
        answer = matting.serve("modnet", _request(media), TOKEN, env, matter=_Refuses())
    stub.assert_no_pending_responses()
    assert answer == {"error": "TaskTokenExpired", "reported": False}


def test_mattes_are_encoded_as_the_local_stage_encodes_them() -> None:
    from shared.media import matting as local

    assert (matting.X264_PRESET, matting.X264_CRF) == (local.X264_PRESET, local.X264_CRF)
