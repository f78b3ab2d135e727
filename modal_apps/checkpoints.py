"""The official checkpoints, downloaded into the image when it is built (``Image.run_function``), never
at request time. Standard library only: this module runs in the build container before the project's
source is added to the image.

Each URL can be overridden at build time (``VIDLUXE_<NAME>_URL``, e.g. a copy in your own bucket); a
pinned ``sha256`` is checked when set. At run time :func:`checkpoint_path` finds the files under
``VIDLUXE_WEIGHTS_DIR`` (default ``/weights``), which tests point at random-weight checkpoints.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path

WEIGHTS_DIR = Path("/weights")


@dataclass(frozen=True)
class Checkpoint:
    name: str
    filename: str
    url: str
    license: str
    sha256: str | None = None


CHECKPOINTS = {
    checkpoint.name: checkpoint
    for checkpoint in (
        # Google Drive file of the official release (MODNet's README and Colab demo link it; no GitHub release).
        Checkpoint(
            "modnet", "modnet_photographic_portrait_matting.ckpt",
            "https://drive.google.com/uc?export=download&id=1mcr7ALciuAsHCpLnrtG_eop5-EYhbCmz",
            "CC BY-NC-SA 4.0 (non-commercial)",
        ),
        Checkpoint(
            "rvm", "rvm_mobilenetv3.pth",
            "https://github.com/PeterL1n/RobustVideoMatting/releases/download/v1.0.0/rvm_mobilenetv3.pth",
            "GPL-3.0",
        ),
        Checkpoint(
            "realesrgan", "RealESRGAN_x4plus.pth",
            "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.0/RealESRGAN_x4plus.pth",
            "BSD-3-Clause",
        ),
    )
}


def weights_dir() -> Path:
    return Path(os.environ.get("VIDLUXE_WEIGHTS_DIR") or WEIGHTS_DIR)


def checkpoint_path(name: str) -> Path:
    """Where checkpoint ``name`` lies in the container (KeyError for an unknown name)."""
    return weights_dir() / CHECKPOINTS[name].filename


def download(*names: str) -> None:
    """Download the named checkpoints into :func:`weights_dir` (build time). Raises ValueError on a
    checksum mismatch and urllib's errors on a failed download: the image build fails, loudly."""
    folder = weights_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        checkpoint = CHECKPOINTS[name]
        url = os.environ.get(f"VIDLUXE_{name.upper()}_URL") or checkpoint.url
        target = folder / checkpoint.filename
        partial = target.with_suffix(".partial")
        with urllib.request.urlopen(url, timeout=300) as response, partial.open("wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
        data = partial.read_bytes()
        if not data.startswith((b"PK", b"\x80")):  # a torch checkpoint is a zip or a pickle, not a web page
            partial.unlink()
            raise ValueError(
                f"{url} did not answer a checkpoint (starts with {data[:16]!r}); set VIDLUXE_{name.upper()}_URL"
            )
        digest = hashlib.sha256(data).hexdigest()
        if checkpoint.sha256 and digest != checkpoint.sha256:
            partial.unlink()
            raise ValueError(f"{checkpoint.filename}: sha256 {digest}, expected {checkpoint.sha256}")
        partial.replace(target)
        print(f"{checkpoint.filename}: {target.stat().st_size} bytes, sha256 {digest}")


def download_matting() -> None:
    download("modnet", "rvm")


def download_upscale() -> None:
    download("realesrgan")
