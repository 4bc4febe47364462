"""An exponential moving average of a stage's trainable weights, for any stage (config ``callbacks.ema``).

After every optimizer step each trainable parameter's average moves towards it: avg <- avg + (1 - decay)·(p - avg).
The averages are saved in checkpoints under ``ema_state_dict`` (named as in the module's ``state_dict``), restored on
resume, and used by inference (:meth:`readlit.pipeline.TalkingHeadPipeline.from_checkpoint` with ``ema=True``).
:func:`averaged_weights` lends them to the module for a while, e.g. to render a preview during training.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import lightning as L
import torch

from readlit.checkpoint import EMA_KEY
from readlit.errors import CheckpointError, ConfigError


class EMA(L.Callback):
    """Keep, save and lend an EMA of the trainable weights.

    Args:
        decay: the average's decay per optimizer step (the A2V stage: 0.999; the demo's short runs: 0.99).
        validate: run validation and test with the averaged weights.
    """

    def __init__(self, decay: float = 0.999, validate: bool = False):
        if not 0.0 <= decay < 1.0:
            raise ConfigError(f"decay={decay} must be in [0, 1)")
        self.decay, self.validate = decay, validate
        self.averages: dict[str, torch.Tensor] | None = None
        self._live: dict[str, torch.Tensor] | None = None
        self._evaluating = ExitStack()  # holds the averaged weights in place during validation/test

    def _trainable(self, pl_module: L.LightningModule) -> dict[str, torch.nn.Parameter]:
        return {name: p for name, p in pl_module.named_parameters() if p.requires_grad}

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.averages is None:
            self.averages = {name: p.detach().clone() for name, p in self._trainable(pl_module).items()}

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # The strategy has moved the module to its device by now.
        self.averages = {name: a.to(pl_module.device) for name, a in self.averages.items()}

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        live = self._trainable(pl_module)
        names = list(self.averages)
        torch._foreach_lerp_([self.averages[n] for n in names], [live[n].detach() for n in names], 1.0 - self.decay)

    # ---------------------------------------------------------------------------------- checkpoints

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        checkpoint[EMA_KEY] = {name: average.detach().cpu() for name, average in self.averages.items()}

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        trainable = self._trainable(pl_module)
        saved = checkpoint.get(EMA_KEY)
        if saved is None:  # a checkpoint of a run without EMA: start averaging from its weights
            self.averages = {name: p.detach().clone() for name, p in trainable.items()}
            return
        if set(saved) != set(trainable):
            missing = sorted(set(trainable) ^ set(saved))
            raise CheckpointError(f"the checkpoint's EMA weights do not match the model's trainable parameters "
                                  f"(e.g. {missing[0]})")
        self.averages = {name: saved[name].to(trainable[name]) for name in trainable}

    # ------------------------------------------------------------------------------------ lending

    @contextmanager
    def applied(self, pl_module: L.LightningModule) -> Iterator[None]:
        """The module holds the averaged weights inside the block, its own ones again after it (re-entrant)."""
        if self._live is not None:
            yield
            return
        trainable = self._trainable(pl_module)
        self._live = {name: p.detach().clone() for name, p in trainable.items()}
        try:
            with torch.no_grad():
                for name, p in trainable.items():
                    p.copy_(self.averages[name])
            yield
        finally:
            with torch.no_grad():
                for name, p in trainable.items():
                    p.copy_(self._live[name])
            self._live = None

    def _swap_in(self, pl_module: L.LightningModule) -> None:
        if self.validate:
            self._evaluating.enter_context(self.applied(pl_module))

    def _swap_out(self) -> None:
        self._evaluating.close()

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._swap_in(pl_module)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._swap_out()

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._swap_in(pl_module)

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._swap_out()


@contextmanager
def averaged_weights(trainer: L.Trainer, pl_module: L.LightningModule) -> Iterator[bool]:
    """Lend the trainer's EMA weights to the module inside the block; yields whether there is an EMA at all."""
    ema = next((c for c in trainer.callbacks if isinstance(c, EMA)), None)
    if ema is None or ema.averages is None:
        yield False
        return
    with ema.applied(pl_module):
        yield True
