"""Stage 1 of READ: self-supervised SpeechAE pre-training on Whisper windows."""

from collections.abc import Callable
from typing import Any

import torch
from lightning import LightningModule
from torchmetrics import MeanMetric

from readlit.lit.checkpoint import tag_checkpoint
from readlit.lit.mean_baseline import MeanBaselineMSE
from readlit.nn.speech_ae import SpeechAE
from readlit.nn.speech_ae_loss import SpeechAELoss, frame_retrieval_accuracy


class SpeechAELitModule(LightningModule):
    """Trains :class:`SpeechAE` on batches with ``audio_windows`` (B, F, Hw, Da).

    Logged per stage (``train``/``val``/``test``): ``loss``, ``mse``, ``con`` and, outside training,
    ``con_acc`` (frame retrieval accuracy), ``mse_baseline`` (MSE of predicting the split's own
    per-feature mean) and ``mse_ratio`` = mse / mse_baseline.

    Args:
        net: the SpeechAE.
        loss: alpha·MSE + beta·L_CON.
        optimizer: partial optimizer taking ``params``.
        scheduler: optional partial LR scheduler taking ``optimizer``; stepped every optimizer step.
        compile: compile the net in place with ``torch.compile`` at fit time (state-dict keys unchanged).
    """

    stage = "speechae"

    def __init__(self, net: SpeechAE, loss: SpeechAELoss, optimizer: Callable[..., torch.optim.Optimizer],
                 scheduler: Callable[..., Any] | None = None, compile: bool = False):
        super().__init__()
        self.net = net
        self.loss = loss
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.compile = compile
        self.eval_metrics = torch.nn.ModuleDict({
            stage: torch.nn.ModuleDict({"loss": MeanMetric(), "mse": MeanMetric(), "con": MeanMetric(),
                                        "con_acc": MeanMetric(), "baseline": MeanBaselineMSE()})
            for stage in ("val", "test")
        })

    def setup(self, stage: str) -> None:
        if self.compile and stage == "fit":
            self.net.compile()

    def model_step(self, batch: dict[str, Any]) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        s = batch["audio_windows"]
        _, s_hat = self.net(s)
        return self.loss(s_hat, s), s_hat, s

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        losses, _, _ = self.model_step(batch)
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, prog_bar=True, batch_size=len(batch["clip_id"]))
        return losses["loss"]

    def _eval_step(self, stage: str, batch: dict[str, Any]) -> None:
        losses, s_hat, s = self.model_step(batch)
        metrics = self.eval_metrics[stage]
        weight = len(batch["clip_id"])
        for key in ("loss", "mse", "con"):
            metrics[key].update(losses[key], weight)
        metrics["con_acc"].update(frame_retrieval_accuracy(s_hat, s), weight)
        metrics["baseline"].update(s)

    def _eval_epoch_end(self, stage: str) -> None:
        metrics = self.eval_metrics[stage]
        values = {key: metrics[key].compute() for key in ("loss", "mse", "con", "con_acc")}
        values["mse_baseline"] = metrics["baseline"].compute()
        values["mse_ratio"] = values["mse"] / values["mse_baseline"]
        self.log_dict({f"{stage}/{k}": v for k, v in values.items()}, prog_bar=stage == "val", sync_dist=False)
        for metric in metrics.values():
            metric.reset()

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step("val", batch)

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step("test", batch)

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return {"optimizer": optimizer}
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        tag_checkpoint(checkpoint, self.stage, net_config=self.net.config)
