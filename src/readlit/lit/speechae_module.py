"""Stage 1 of READ: self-supervised SpeechAE pre-training on Whisper windows."""

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torchmetrics import MeanMetric

from readlit.lit.base import Batch, StageModule, per_stage
from readlit.lit.metrics import MeanBaselineMSE
from readlit.nn.speech_ae import SpeechAE
from readlit.nn.speech_ae_loss import SpeechAELoss, frame_retrieval_accuracy


class SpeechAELitModule(StageModule):
    """Trains :class:`SpeechAE` on batches with ``audio_windows`` (B, F, Hw, Da).

    Logged per stage (``train``/``val``/``test``): ``loss``, ``mse``, ``con`` and, outside training,
    ``con_acc`` (frame retrieval accuracy), ``mse_baseline`` (MSE of predicting the split's own
    per-feature mean) and ``mse_ratio`` = mse / mse_baseline.

    Args:
        net: the SpeechAE.
        loss: alpha·MSE + beta·L_CON.
        optimizer, scheduler, compile: see :class:`~readlit.lit.base.StageModule` (``compile`` compiles the net).
    """

    stage = "speechae"

    def __init__(self, net: SpeechAE, loss: SpeechAELoss, optimizer: Callable[..., torch.optim.Optimizer],
                 scheduler: Callable[..., Any] | None = None, compile: bool = False):
        super().__init__(optimizer, scheduler, compile)
        self.net = net
        self.loss = loss
        self.eval_metrics = per_stage(lambda: {"loss": MeanMetric(), "mse": MeanMetric(), "con": MeanMetric(),
                                               "con_acc": MeanMetric(), "baseline": MeanBaselineMSE()})

    def compiled_modules(self) -> list[nn.Module]:
        return [self.net]

    def header(self) -> dict[str, Any]:
        return {"stage": self.stage, "net_config": self.net.config}

    def train_keys(self) -> list[str]:
        return ["loss", "mse", "con"]

    def eval_keys(self) -> list[str]:
        return ["loss", "mse", "con", "con_acc", "mse_baseline", "mse_ratio"]

    def model_step(self, batch: Batch) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        s = batch["audio_windows"]
        _, s_hat = self.net(s)
        return self.loss(s_hat, s), s_hat, s

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        losses, _, _ = self.model_step(batch)
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, prog_bar=True, batch_size=len(batch["clip_id"]))
        return losses["loss"]

    def eval_step(self, stage: str, batch: Batch, batch_idx: int) -> None:
        losses, s_hat, s = self.model_step(batch)
        metrics = self.eval_metrics[stage]
        weight = len(batch["clip_id"])
        for key in ("loss", "mse", "con"):
            metrics[key].update(losses[key], weight)
        metrics["con_acc"].update(frame_retrieval_accuracy(s_hat, s), weight)
        metrics["baseline"].update(s)

    def eval_values(self, stage: str) -> dict[str, torch.Tensor]:
        values = super().eval_values(stage)
        values["mse_baseline"] = values.pop("baseline")
        values["mse_ratio"] = values["mse"] / values["mse_baseline"]
        return values
