"""Score ANS samples while training: every N validations, generate fixed held-out clips and log their metrics.

Every ``every_n_validations``-th validation (sanity checks not counted) the callback generates ``clips``
validation clips, spread evenly over the validation split and the same ones every time, through the inference
pipeline's clip path (:meth:`~readlit.pipeline.TalkingHeadPipeline.render_clip` with the configured ANS sampler;
the EMA weights when the run keeps an EMA), each from its clip's reference and audio at the training length with
noise seed ``seed + i``. They are scored against the clips' ground truth with :mod:`readlit.eval.scoring`:
mouth-sync (synthetic faces) and PSNR need no weights; FID, FVD and Sync-C/D are computed when their weights are
present. A metric that cannot be computed (its weights absent, clips without a drawn face, E-FID without
landmarks) is listed as missing with the reason, never computed on random weights.

Each value is logged as ``val/<metric>`` (``val/mouth_sync``, ``val/psnr``, ``val/fid`` ...) to every logger, so
TensorBoard, the CSV log, checkpoint monitors and sweep objectives see it. ``<dirpath>/epoch<NNN>.json`` records
the values and the missing metrics with their reasons; ``<dirpath>/epoch<NNN>.mp4`` shows the first clip,
generated | real, with its audio.

Multi-GPU: clip i is generated on rank i % world size, and the metrics' states (torchmetrics, sums) are reduced
across ranks when computed, so every rank logs the values one process would.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from readlit.callbacks.ema import averaged_weights
from readlit.data.video_io import write_mp4
from readlit.errors import ConfigError
from readlit.eval.scoring import Pair, Scorers
from readlit.pipeline import to_uint8_frames
from readlit.sampling.ans_sampler import ANSSampler
from readlit.utils.atomic import atomic_write_json

log = logging.getLogger(__name__)


def spread_indices(count: int, length: int) -> list[int]:
    """``count`` item indices spread evenly over ``length`` items (all of them when there are fewer)."""
    if length < 1:
        raise ConfigError("the validation split is empty: nothing to generate for the sampling metrics")
    return sorted({int(i) for i in np.linspace(0, length - 1, min(count, length)).round()})


class SamplingMetrics(L.Callback):
    """Generate fixed validation clips with ANS every few validations and log their metrics (a2v stage).

    Args:
        dirpath: folder of the per-round JSON records and side-by-side videos.
        sampler: the ANS sampler (its clip length is the clips').
        scoring: which metrics and where their weights are, as in ``conf/eval.yaml``: ``metrics``, ``weights_dir``,
            ``weights``, ``fvd``, ``sync``, ``landmarks_dir``.
        every_n_validations: score at every n-th validation.
        clips: how many validation clips to generate.
        seed: clip i's noise seed is ``seed + i`` (the same noise every round, so rounds compare).
    """

    def __init__(self, dirpath: str, sampler: ANSSampler, scoring: DictConfig | dict[str, Any],
                 every_n_validations: int = 1, clips: int = 4, seed: int = 0):
        if every_n_validations < 1 or clips < 1:
            raise ConfigError(f"every_n_validations={every_n_validations} and clips={clips} must be positive")
        self.dirpath, self.sampler, self.scoring = Path(dirpath), sampler, OmegaConf.create(scoring)
        self.every_n_validations, self.clips, self.seed = every_n_validations, clips, seed
        self.validations = 0  # validations seen (saved in checkpoints, so a resumed run keeps the rhythm)
        self.indices: list[int] = []
        self.scorers: Scorers | None = None

    def logged_metrics(self) -> list[str]:
        """The names this callback logs, ``val/<metric>`` (sync as sync_c and sync_d): what ``monitor.metric`` and
        ``optimized_metric`` may name besides the stage's own."""
        parts = {"sync": ("sync_c", "sync_d")}
        return [f"val/{part}" for name in self.scoring.metrics for part in parts.get(name, (name,))]

    def state_dict(self) -> dict[str, Any]:
        return {"validations": self.validations}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.validations = state_dict["validations"]

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # The module is on its device by now, and the datamodule set up.
        dataset = self._dataset(trainer)
        self.indices = spread_indices(self.clips, len(dataset))
        items = [dataset[i] for i in self.indices]
        if any("audio_windows" not in item for item in items):
            raise ConfigError("the sampling metrics generate from the validation clips' audio_windows: the datamodule "
                              "needs an audio front end (data.audio_frontend)")
        faces = {item["clip_id"]: {"identity": int(item["identity"]), "data_seed": int(item["data_seed"])}
                 for item in items if "identity" in item}
        cfg = OmegaConf.merge(self.scoring, {"device": str(pl_module.device), "manifest": "the validation split"})
        self.scorers = Scorers(cfg, [item["clip_id"] for item in items], faces)
        if trainer.is_global_zero:
            for name, why in sorted(self.scorers.missing.items()):
                log.info("sampling metrics: %s missing: %s", name, why)

    @torch.no_grad()
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.scorers is None:
            return
        self.validations += 1
        if self.validations % self.every_n_validations:
            return
        dataset = self._dataset(trainer)
        self.scorers.reset()
        with averaged_weights(trainer, pl_module):
            for position, index in enumerate(self.indices):
                if position % trainer.world_size != trainer.global_rank:
                    continue
                item = dataset[index]
                pair = self.generate(pl_module, item, self.seed + position)
                self.scorers.add(pair)
                if position == 0:  # on rank 0
                    self._write_video(trainer, pair, int(item["fps"]))
        values = self.scorers.results()  # every rank: the states are reduced across ranks here
        for name, value in values.items():
            pl_module.log(f"val/{name}", value)
        if trainer.is_global_zero:
            record = {"epoch": trainer.current_epoch, "step": trainer.global_step, "validation": self.validations,
                      "clips": self.indices, "metrics": values, "missing": self.scorers.missing}
            atomic_write_json(self._path(trainer, "json"), record, indent=2)

    def generate(self, pl_module: Any, item: dict[str, Any], seed: int) -> Pair:
        """One clip from the item's reference and audio windows, paired with its ground truth (uint8 frames)."""
        device = pl_module.device
        if "ref_latent" in item:
            z_ref = item["ref_latent"][None].to(device)
        else:
            z_ref = pl_module.vae.encode_image(item["ref"][None].to(device))
        windows = item["audio_windows"][None].to(device)
        video = pl_module.pipeline().render_clip(z_ref, windows, self.sampler, torch.Generator().manual_seed(seed))
        real = item["video"] if "video" in item else pl_module.vae.decode(item["latents"][None].to(device))[0]
        return Pair(item["clip_id"], to_uint8_frames(video), to_uint8_frames(real[:, : video.shape[1]]),
                    item["audio"].float().numpy())

    def _write_video(self, trainer: L.Trainer, pair: Pair, fps: int) -> None:
        """The clip generated | real, side by side, with its audio."""
        frames = min(len(pair.fake), len(pair.real))
        side_by_side = np.concatenate([pair.fake[:frames], pair.real[:frames]], axis=2)  # along the width
        write_mp4(self._path(trainer, "mp4"), side_by_side, fps, pair.audio)

    def _path(self, trainer: L.Trainer, suffix: str) -> Path:
        return self.dirpath / f"epoch{trainer.current_epoch:03d}.{suffix}"

    @staticmethod
    def _dataset(trainer: L.Trainer) -> Any:
        datasets = getattr(trainer.datamodule, "datasets", {})
        if "val" not in datasets:
            raise ConfigError("the sampling metrics generate validation clips: the datamodule has no val split")
        return datasets["val"]
