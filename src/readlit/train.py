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
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from readlit import checks
from readlit.checkpoint import load_checkpoint
from readlit.cli import CONFIG_DIR, check_composes, run_task, swept_keys
from readlit.errors import CheckpointError, ConfigError, one_line, scope
from readlit.lit.base import check_factories
from readlit.lit.trainer_checks import check_trainer
from readlit.utils.atomic import atomic_write_json, remove_leftovers
from readlit.utils.instantiators import instantiate_group

log = logging.getLogger(__name__)


def _floats(metrics: dict[str, Any]) -> dict[str, float]:
    return {key: float(value) for key, value in metrics.items()}


def check_run(cfg: DictConfig) -> None:
    """The run's own keys, checked without building anything: what to do, seed, checkpoint, monitor, Trainer."""
    if cfg.get("seed") is not None:
        checks.integer("seed", cfg.seed, minimum=0, maximum=2**32 - 1)
    train_, test = checks.flag("train", cfg.get("train")), checks.flag("test", cfg.get("test"))
    if not train_ and not test:
        raise ConfigError("train=false and test=false: nothing to do")
    ckpt_path = cfg.get("ckpt_path")
    if not train_ and ckpt_path is None:
        raise ConfigError("train=false tests a trained model: set ckpt_path=... (a checkpoint of this stage)")
    if ckpt_path is not None and not Path(str(ckpt_path)).expanduser().is_file():
        raise CheckpointError(f"ckpt_path={ckpt_path}: no such checkpoint file")
    checks.choice("monitor.mode", cfg.monitor.mode, ("min", "max"))
    with scope("trainer"):
        check_trainer(cfg.trainer)
    checks.writable_folder("paths.root_dir", cfg.paths.root_dir)
    checks.writable_folder("paths.log_dir", cfg.paths.log_dir)


def _model_parts(cfg: DictConfig) -> list[str]:
    """The model's own sub-components (``model.ans``, ``model.loss`` ...): nodes with a ``_target_``, except those
    that reference another node (``model.vae: ${vae}``) and the optimizer and scheduler partials."""
    parts = []
    for key in cfg.model:
        node = cfg.model._get_node(key)
        if node._is_interpolation() or key in ("optimizer", "scheduler"):
            continue
        if isinstance(node, DictConfig) and "_target_" in node and not node.get("_partial_"):
            parts.append(key)
    return parts


def check_train(cfg: DictConfig, whole_model: bool = False) -> None:
    """What a training run needs that is cheap to check, before its run folder exists: the run's keys, the
    datamodule, the callbacks, the model's sub-components, the optimizer and scheduler (and, for a sweep of a
    model key, the model itself)."""
    check_run(cfg)
    instantiate(cfg.data)
    instantiate_group(cfg.get("callbacks"))
    for key in _model_parts(cfg):
        instantiate(cfg.model[key])
    with scope("model"):
        optimizer, scheduler = instantiate(cfg.model.optimizer), instantiate(cfg.model.get("scheduler"))
        check_factories(optimizer, scheduler)
    if whole_model:
        instantiate(cfg.model)


def _check_monitor(cfg: DictConfig, model: L.LightningModule, callbacks: list[Any]) -> None:
    """``monitor.metric`` and ``optimized_metric`` must be names the stage or a callback logs (a typo would surface
    only when the first checkpoint is saved, after a whole epoch)."""
    logged = getattr(model, "logged_metrics", lambda: None)()
    if logged is None:
        return
    for callback in callbacks:
        logged += getattr(callback, "logged_metrics", list)()
    for key in ("monitor.metric", "optimized_metric"):
        name = OmegaConf.select(cfg, key)
        if name is not None and str(name).split("/")[0] in ("train", "val", "test") and name not in logged:
            raise ConfigError(f"{key}={name} is not logged by the {model.stage} stage; it logs {', '.join(logged)}")


def _check_motion_context(model: L.LightningModule, datamodule: L.LightningDataModule) -> None:
    """A2V batches with a motion frame from before the clip need the clips' past frames (one VAE frame stride)."""
    share = getattr(model, "motion_context", 0.0)
    if not share:
        return
    ratio = model.vae.temporal_ratio
    past = getattr(datamodule, "dataset_args", {}).get("past_frames", 0)
    if past != ratio:
        raise ConfigError(f"model.motion_context={share} needs data.past_frames={ratio} (the frames before each "
                          f"clip, one VAE latent frame), not {past}")


def _check_resume(cfg: DictConfig, model: L.LightningModule) -> str | None:
    """The checkpoint to resume from, refused unless it is of this stage and holds exactly this model's weights."""
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path is None:
        return None
    checkpoint = load_checkpoint(ckpt_path, stage=getattr(model, "stage", None), key="ckpt_path")
    saved, own = checkpoint.get("state_dict", {}), model.state_dict()
    missing, unexpected = sorted(own.keys() - saved.keys()), sorted(saved.keys() - own.keys())
    shaped = sorted(k for k in own.keys() & saved.keys() if tuple(own[k].shape) != tuple(saved[k].shape))
    if missing or unexpected or shaped:
        found = [f"{len(missing)} missing (e.g. {missing[0]})" if missing else "",
                 f"{len(unexpected)} unknown (e.g. {unexpected[0]})" if unexpected else "",
                 f"{len(shaped)} of other shapes (e.g. {shaped[0]}: {tuple(saved[shaped[0]].shape)} there, "
                 f"{tuple(own[shaped[0]].shape)} here)" if shaped else ""]
        differences = ", ".join(f for f in found if f)
        raise CheckpointError(f"ckpt_path={ckpt_path} holds weights of another model ({differences}); resume with the "
                              "settings it was trained with")
    remove_leftovers(Path(ckpt_path).expanduser().parent, dead_only=True)  # what a killed save left there
    return ckpt_path


def _trainer(cfg: DictConfig, callbacks: list[Any], loggers: list[Any]) -> L.Trainer:
    """The Trainer; Lightning's own refusals of its arguments become one line."""
    try:
        return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers)
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, MisconfigurationException | ValueError | TypeError):
            raise ConfigError(f"trainer: {one_line(cause)}") from err
        raise


def train(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Fit (and optionally test) the configured model; return the final metrics and the built objects."""
    check_run(cfg)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model)
    callbacks = instantiate_group(cfg.get("callbacks"))
    _check_monitor(cfg, model, callbacks)
    _check_motion_context(model, datamodule)
    ckpt_path = _check_resume(cfg, model)
    loggers = instantiate_group(cfg.get("logger"))
    trainer = _trainer(cfg, callbacks, loggers)
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
    """The value a sweeper optimises, or None when the run logged no such value (a run shorter than one
    validation has none to give; the name itself was checked against the stage's metrics before training)."""
    if not name:
        return None
    if name not in metrics:
        log.warning("optimized_metric=%s was not logged by this run (logged: %s); no objective to return", name,
                    ", ".join(sorted(metrics)) or "nothing")
        return None
    return metrics[name]


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    def task(cfg: DictConfig) -> float | None:
        metrics, _ = train(cfg)
        return objective(metrics, cfg.get("optimized_metric"))

    log.info("output folder: %s", HydraConfig.get().runtime.output_dir)
    return run_task(task, cfg)


def main() -> None:
    """Console entry point; every sweep value is checked before the first job starts."""
    argv = sys.argv[1:]
    multirun = "-m" in argv or "--multirun" in argv
    check_composes("train", argv, lambda cfg: check_train(cfg, whole_model=multirun and _sweeps_model(argv)))
    _hydra_main()


def _sweeps_model(argv: list[str]) -> bool:
    """Whether a sweep changes a key that only the whole model checks (a model, vae or audio key outside the
    sub-components check_train builds on its own)."""
    return any(key.split(".")[0] in ("model", "vae", "audio") for key in swept_keys(argv))


if __name__ == "__main__":
    main()
