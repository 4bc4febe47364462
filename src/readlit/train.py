"""Train any stage: ``python -m readlit.train experiment=NAME [key=value ...]``.

``-m`` sweeps (``model.optimizer.lr=1e-4,3e-4``), ``hparams_search=...`` runs an Optuna search whose
objective is ``optimized_metric``, ``debug=fdr`` runs one batch of everything, ``ckpt_path=...``
resumes a run (step, optimizer and scheduler state included).
"""

import json
import logging
import sys
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from readlit.checkpoint import load_checkpoint
from readlit.cli import check_composes, run_task
from readlit.errors import ConfigError
from readlit.utils.atomic import atomic_write_json
from readlit.utils.instantiators import instantiate_group

log = logging.getLogger(__name__)


def _floats(metrics: dict[str, Any]) -> dict[str, float]:
    return {key: float(value) for key, value in metrics.items()}


def _check_resume(cfg: DictConfig, model: L.LightningModule) -> str | None:
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path is not None:
        load_checkpoint(ckpt_path, stage=getattr(model, "stage", None), key="ckpt_path")
    return ckpt_path


def train(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Fit (and optionally test) the configured model; return the final metrics and the built objects."""
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    if not cfg.get("train") and not cfg.get("test"):
        raise ConfigError("train=false and test=false: nothing to do")
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model)
    ckpt_path = _check_resume(cfg, model)
    callbacks = instantiate_group(cfg.get("callbacks"))
    loggers = instantiate_group(cfg.get("logger"))
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    metrics: dict[str, float] = {}
    if cfg.get("train"):
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
        metrics.update(_floats(trainer.callback_metrics))
    if cfg.get("test"):
        best = _best_checkpoint(trainer) if cfg.get("train") else ckpt_path
        metrics.update(_floats(trainer.test(model, datamodule=datamodule, ckpt_path=best)[0]))
    _write_metrics(cfg, metrics)
    return metrics, {"cfg": cfg, "datamodule": datamodule, "model": model, "trainer": trainer}


def _best_checkpoint(trainer: L.Trainer) -> str | None:
    checkpoint = trainer.checkpoint_callback
    if isinstance(checkpoint, ModelCheckpoint) and checkpoint.best_model_path:
        return checkpoint.best_model_path
    log.warning("no best checkpoint was saved; testing the current weights")
    return None


def _write_metrics(cfg: DictConfig, metrics: dict[str, float]) -> None:
    atomic_write_json(Path(cfg.paths.output_dir) / "metrics.json", metrics, indent=2)
    log.info("metrics: %s", json.dumps(metrics, sort_keys=True))


def objective(metrics: dict[str, float], name: str | None) -> float | None:
    """The value a sweeper optimises; a missing name is a config error, not a silent None."""
    if not name:
        return None
    if name not in metrics:
        raise ConfigError(f"optimized_metric={name} was not logged; logged: {', '.join(sorted(metrics))}")
    return metrics[name]


@hydra.main(version_base="1.3", config_path="../../conf", config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    def task(cfg: DictConfig) -> float | None:
        metrics, _ = train(cfg)
        return objective(metrics, cfg.get("optimized_metric"))

    log.info("output folder: %s", HydraConfig.get().runtime.output_dir)
    return run_task(task, cfg)


def main() -> None:
    """Console entry point."""
    check_composes("train", sys.argv[1:])
    _hydra_main()


if __name__ == "__main__":
    main()
