"""During validation, render a clip for the first validation sample and write it as mp4 with its audio.

The clip is rendered through the inference pipeline's clip path (:meth:`~readlit.pipeline.TalkingHeadPipeline.
render_clip`) with the configured sampler (``${sampler}``), from the sample's reference and audio at the training
length, with the EMA weights when the run keeps an EMA. It is written next to the ground truth (left: generated,
right: real) to ``<dirpath>/epoch<NNN>.mp4``; TensorBoard gets a strip of frames (generated over real).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from einops import rearrange
from lightning.pytorch.loggers import TensorBoardLogger

from readlit.callbacks.ema import averaged_weights
from readlit.data.video_io import write_mp4
from readlit.pipeline import to_uint8_frames
from readlit.sampling.ans_sampler import ANSSampler


class SampleVideo(L.Callback):
    """Write a generated validation clip every ``every_n_epochs`` epochs (rank zero only; a2v stage).

    Args:
        dirpath: folder of the mp4 files.
        sampler: the ANS sampler (its clip length is the sample's).
        every_n_epochs: sample after every n-th validation.
        seed: seed of the initial noise (the same noise every epoch, so clips are comparable).
        strip_frames: frames in the TensorBoard strip.
    """

    def __init__(self, dirpath: str, sampler: ANSSampler, every_n_epochs: int = 1, seed: int = 0,
                 strip_frames: int = 5):
        self.dirpath, self.sampler = Path(dirpath), sampler
        self.every_n_epochs, self.seed, self.strip_frames = every_n_epochs, seed, strip_frames
        self.sample: dict[str, Any] | None = None

    def on_validation_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any,
                                batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        if batch_idx == 0 and dataloader_idx == 0:
            self.sample = {k: v[:1] for k, v in batch.items() if isinstance(v, torch.Tensor)}

    @torch.no_grad()
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if (trainer.sanity_checking or not trainer.is_global_zero or self.sample is None
                or (trainer.current_epoch + 1) % self.every_n_epochs):
            return
        with averaged_weights(trainer, pl_module):
            video = self.render(pl_module, self.sample)
        real = self.sample.get("video")
        pair = video if real is None else torch.cat([video, real[0].to(video)], dim=-1)  # side by side
        audio = self.sample.get("audio")
        fps = int(self.sample["fps"][0]) if "fps" in self.sample else 25
        path = self.dirpath / f"epoch{trainer.current_epoch:03d}.mp4"
        write_mp4(path, to_uint8_frames(pair), fps, None if audio is None else audio[0].float().cpu().numpy())
        self._log_strip(trainer, video, real)

    def render(self, pl_module: Any, sample: dict[str, Any]) -> torch.Tensor:
        """(3, F, H, W) in [-1, 1]: one clip for the sample's reference and audio."""
        z_ref = pl_module.latents(sample)[:, :, :1]
        generator = torch.Generator().manual_seed(self.seed)
        return pl_module.pipeline().render_clip(z_ref, sample["audio_windows"], self.sampler, generator)

    def _log_strip(self, trainer: L.Trainer, video: torch.Tensor, real: torch.Tensor | None) -> None:
        picks = torch.linspace(0, video.shape[1] - 1, min(self.strip_frames, video.shape[1])).round().long()
        rows = [video[:, picks]] + ([] if real is None else [real[0].to(video)[:, picks]])
        strip = rearrange(torch.stack(rows), "r c n h w -> c (r h) (n w)")
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("val/sample", (strip + 1) / 2, trainer.global_step)
