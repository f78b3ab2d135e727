"""Loading official checkpoints into the plain-PyTorch networks of :mod:`modal_apps.nets`.

The checkpoints are state dicts keyed by parameter name, sometimes wrapped: MODNet's was saved from
``nn.DataParallel`` (every key starts with ``module.``), Real-ESRGAN's keeps the EMA weights under
``params_ema``. :func:`load_checkpoint` unwraps both and loads with ``strict=True``, so a layer that
differs from the original by name or shape is an error, never a silently random weight.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

WRAPPERS = ("params_ema", "params", "state_dict", "model")


class CheckpointError(Exception):
    """The checkpoint does not fit the network (missing, unexpected or mis-shaped keys)."""


def unwrap_state_dict(checkpoint: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint, without a ``params_ema``-style wrapper or a ``module.`` prefix."""
    for wrapper in WRAPPERS:
        inner = checkpoint.get(wrapper)
        if isinstance(inner, Mapping):
            checkpoint = inner
            break
    return {key.removeprefix("module."): value for key, value in checkpoint.items()}


def load_checkpoint(model: nn.Module, path: Path, *, device: str = "cpu") -> nn.Module:
    """Load ``path`` into ``model`` (strict), put it in eval mode on ``device`` and return it.

    Raises FileNotFoundError when ``path`` is missing and CheckpointError when the keys do not fit.
    """
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(unwrap_state_dict(checkpoint), strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path.name} does not fit {type(model).__name__}: {exc}") from exc
    return model.to(device).eval()
