"""Which stage wrote a checkpoint, so later stages and tools can refuse the wrong one."""

from pathlib import Path
from typing import Any

import torch

from readlit.errors import CheckpointError

KEY = "readlit"


def tag_checkpoint(checkpoint: dict[str, Any], stage: str, **info: Any) -> None:
    """Record the stage (and plain-typed facts such as the net's config) in a Lightning checkpoint dict."""
    checkpoint[KEY] = {"stage": stage, **info}


def load_checkpoint(path: str | Path, stage: str | None = None, key: str = "ckpt_path") -> dict[str, Any]:
    """Load a readlit checkpoint safely (``weights_only=True``) and check which stage wrote it.

    Args:
        path: the ``.ckpt`` file.
        stage: the stage it must come from, or None to accept any readlit checkpoint.
        key: the config key that named the path, quoted in error messages.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{key}={path}: no such checkpoint file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt or unsafe files
        raise CheckpointError(f"{key}={path}: not a readable checkpoint ({type(err).__name__})") from err
    found = checkpoint.get(KEY, {}).get("stage") if isinstance(checkpoint, dict) else None
    if found is None:
        raise CheckpointError(f"{key}={path}: not a readlit checkpoint (no '{KEY}' entry)")
    if stage is not None and found != stage:
        raise CheckpointError(f"{key}={path} is a '{found}' checkpoint; a '{stage}' checkpoint is needed here")
    return checkpoint
