"""Checkpoint files a kill cannot spoil: written beside their target and renamed, last.ckpt first.

Lightning writes a checkpoint through fsspec, whose local "transaction" fills a temporary file in ``$TMPDIR`` and
moves it onto the target: across file systems the move is a copy, and a kill leaves the temporary file behind,
where nothing removes it. :class:`AtomicCheckpointIO` writes beside the target instead
(:mod:`readlit.utils.atomic`), so a kill leaves a hidden ``.*.tmp`` file in the checkpoint folder, never a half
checkpoint, and a later resume from that folder removes what a dead writer left there.

Lightning also saves the best checkpoint of a step before ``last.ckpt``; a kill between the two left ``last.ckpt``
one epoch older than ``best-*.ckpt``. :class:`ModelCheckpoint` writes ``last.ckpt`` first, so it is never older than
any other checkpoint of the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint as LightningModelCheckpoint

from readlit.utils.atomic import atomic_path


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` to a temporary file beside the checkpoint, renamed onto it when complete."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)


class ModelCheckpoint(LightningModelCheckpoint):
    """Lightning's ModelCheckpoint, writing ``last.ckpt`` before the other checkpoints of the same step."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._last_written_step = -1

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        last = self.format_checkpoint_name({}, self.CHECKPOINT_NAME_LAST)
        if self.save_last and filepath != last and self._last_written_step != trainer.global_step:
            self.last_model_path = last
            super()._save_checkpoint(trainer, last)
            self._last_written_step = trainer.global_step
        super()._save_checkpoint(trainer, filepath)

    def _save_last_checkpoint(self, trainer: L.Trainer, monitor_candidates: dict[str, torch.Tensor]) -> None:
        if self._last_written_step == trainer.global_step:
            return  # written with this step's other checkpoint, just before it
        super()._save_last_checkpoint(trainer, monitor_candidates)
        self._last_written_step = trainer.global_step
