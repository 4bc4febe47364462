"""What the three training stages share: optimisers, the val/test dispatch, per-stage metrics, checkpoint headers.

A stage subclasses :class:`StageModule` and writes ``training_step``, ``eval_step`` (one validation or test batch,
updating ``self.eval_metrics[stage]``) and ``header`` (what its checkpoints say about themselves). Logged names are
``stage/name`` (``val/loss``): the same strings checkpoint monitors, sweepers and tables use.
"""

from collections.abc import Callable
from typing import Any

import torch
from lightning import LightningModule
from torch import nn
from torchmetrics import Metric

from readlit.checkpoint import KEY
from readlit.data.batch import ClipBatch, LatentBatch
from readlit.errors import ConfigError

# What a stage's steps receive (docs/design.md §6): pixel clips or latent-cache clips.
Batch = ClipBatch | LatentBatch

EVAL_STAGES = ("val", "test")


def check_factories(optimizer: Callable[..., torch.optim.Optimizer],
                    scheduler: Callable[..., Any] | None = None) -> None:
    """Build the optimizer (and scheduler) on a stand-in parameter, so a bad argument is refused before training
    (torch checks its arguments only when an optimizer is made, at the start of fit)."""
    probe = nn.Parameter(torch.zeros(1))
    try:
        built = optimizer(params=[probe])
    except (ValueError, TypeError) as err:
        raise ConfigError(f"optimizer={_name(optimizer)} refuses its arguments: {err}") from err
    if scheduler is not None:
        try:
            scheduler(optimizer=built)
        except (ValueError, TypeError) as err:
            raise ConfigError(f"scheduler={_name(scheduler)} refuses its arguments: {err}") from err


def _name(factory: Callable[..., Any]) -> str:
    function = getattr(factory, "func", factory)
    return getattr(function, "__qualname__", type(function).__name__)


def per_stage(metrics: Callable[[], dict[str, Metric]]) -> nn.ModuleDict:
    """One fresh set of ``metrics()`` for each of validation and test (their states must never mix)."""
    return nn.ModuleDict({stage: nn.ModuleDict(metrics()) for stage in EVAL_STAGES})


class StageModule(LightningModule):
    """A readlit training stage.

    Args:
        optimizer: partial optimizer taking ``params`` (every parameter that requires a gradient).
        scheduler: optional partial LR scheduler taking ``optimizer``; stepped every optimizer step.
        compile: compile :meth:`compiled_modules` in place with ``torch.compile`` at fit time (state-dict keys
            unchanged).
    """

    stage: str

    def __init__(self, optimizer: Callable[..., torch.optim.Optimizer],
                 scheduler: Callable[..., Any] | None = None, compile: bool = False):
        super().__init__()
        check_factories(optimizer, scheduler)
        self.optimizer_factory, self.scheduler_factory, self.compile = optimizer, scheduler, compile
        self.eval_metrics = nn.ModuleDict()

    # -------------------------------------------------------------------------------- for subclasses

    def eval_step(self, stage: str, batch: Batch, batch_idx: int) -> None:
        """Update ``self.eval_metrics[stage]`` with one validation or test batch."""
        raise NotImplementedError

    def eval_values(self, stage: str) -> dict[str, torch.Tensor]:
        """The values logged at the end of a validation or test epoch (keys without the stage prefix)."""
        return {key: metric.compute() for key, metric in self.eval_metrics[stage].items() if metric.update_count}

    def header(self) -> dict[str, Any]:
        """What this stage's checkpoints record about themselves (``checkpoint["readlit"]``)."""
        raise NotImplementedError

    def compiled_modules(self) -> list[nn.Module]:
        """The modules ``compile=true`` compiles."""
        raise NotImplementedError

    def train_keys(self) -> list[str]:
        """The names :meth:`training_step` logs (without ``train/``)."""
        return ["loss"]

    def eval_keys(self) -> list[str]:
        """The names :meth:`eval_values` may return (without the stage prefix)."""
        return list(self.eval_metrics["val"].keys())

    def logged_metrics(self) -> list[str]:
        """Every ``stage/name`` this stage logs: what ``monitor.metric`` and ``optimized_metric`` may name."""
        return [f"train/{key}" for key in self.train_keys()] + [
            f"{stage}/{key}" for stage in EVAL_STAGES for key in self.eval_keys()]

    # ------------------------------------------------------------------------------------- shared

    def setup(self, stage: str) -> None:
        if self.compile and stage == "fit":
            for module in self.compiled_modules():
                module.compile()

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = self.optimizer_factory(params=[p for p in self.parameters() if p.requires_grad])
        if self.scheduler_factory is None:
            return {"optimizer": optimizer}
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self.eval_step("val", batch, batch_idx)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self.eval_step("test", batch, batch_idx)

    def on_validation_epoch_end(self) -> None:
        self.log_eval("val")

    def on_test_epoch_end(self) -> None:
        self.log_eval("test")

    def log_eval(self, stage: str) -> None:
        """Log ``stage/<key>`` for every value of :meth:`eval_values`, then reset the stage's metrics."""
        self.log_dict({f"{stage}/{key}": value for key, value in self.eval_values(stage).items()},
                      prog_bar=stage == "val")
        for metric in self.eval_metrics[stage].values():
            metric.reset()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[KEY] = self.header()
