"""Fixtures for the Modal function bodies on the CPU: a tiny clip in a moto S3 bucket, random-weight
checkpoints of the real architectures saved as the official files are (MODNet's with DataParallel's
``module.`` prefix, Real-ESRGAN's under ``params_ema``), and a Step Functions client with a Stubber."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")  # CI installs torch==2.13.0 (CPU build) with the test extras

from modal_testdata import BUCKET, FPS, SOURCE_KEY  # noqa: E402
from moto import mock_aws  # noqa: E402

from shared.media.ffmpeg import run_ffmpeg  # noqa: E402
from shared.media.models import MediaInfo  # noqa: E402
from shared.media.probe import probe  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _two_threads() -> None:
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s of a moving test pattern, 96x64 at 8 fps (16 frames)."""
    out = tmp_path_factory.mktemp("clip") / "clip.mp4"
    run_ffmpeg(["-y", "-f", "lavfi", "-i", f"testsrc2=size=96x64:rate={FPS}:duration=2", "-c:v", "libx264",
                "-pix_fmt", "yuv420p", "-g", "4", str(out)])
    return out


@pytest.fixture(scope="session")
def media(clip: Path) -> MediaInfo:
    return probe(clip)


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from modal_apps.nets.modnet import MODNet
    from modal_apps.nets.rrdbnet import RRDBNet
    from modal_apps.nets.rvm import MattingNetwork

    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    torch.save({f"module.{k}": v for k, v in MODNet().state_dict().items()},
               folder / "modnet_photographic_portrait_matting.ckpt")
    torch.save(MattingNetwork().state_dict(), folder / "rvm_mobilenetv3.pth")
    torch.save({"params_ema": RRDBNet().state_dict()}, folder / "RealESRGAN_x4plus.pth")
    return folder


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, clip: Path, weights_dir: Path) -> Iterator[Any]:
    """moto's S3 and Step Functions in-process, the bucket made and the clip uploaded; the environment the
    Modal secret would give the container."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1", "VIDLUXE_S3_BUCKET": BUCKET, "VIDLUXE_S3_PREFIX": "env1",
        "VIDLUXE_WEIGHTS_DIR": str(weights_dir),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("VIDLUXE_S3_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        import boto3

        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        s3.upload_file(str(clip), BUCKET, f"env1/{SOURCE_KEY}")
        yield s3
