"""During validation, generate a clip from the first validation sample and write it as mp4 with its audio.

The clip is sampled with the ANS sampler from the sample's reference and audio (one clip: the training length),
decoded by the stage's VAE and written next to the ground truth (left: generated, right: real) to
``<dirpath>/epoch<NNN>.mp4``; TensorBoard gets a strip of frames (generated over real) as an image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from einops import rearrange
from lightning.pytorch.loggers import TensorBoardLogger

from readlit.data.video_io import write_mp4
from readlit.pipeline import to_uint8_frames
from readlit.sampling.ans_sampler import ANSSampler
from readlit.sampling.cfg import Guidance


class SampleVideo(L.Callback):
    """Write a generated validation clip every ``every_n_epochs`` epochs (rank zero only).

    Args:
        dirpath: folder of the mp4 files.
        steps, mu, mode, audio_scale, ref_scale: ANS sampler settings (see ``conf/sampler/ans.yaml``).
        every_n_epochs: sample after every n-th validation.
        seed: seed of the initial noise (the same noise every epoch, so clips are comparable).
        strip_frames: frames in the TensorBoard strip.
    """

    def __init__(self, dirpath: str, steps: int = 8, mu: float = 0.95, mode: str = "split", audio_scale: float = 6.0,
                 ref_scale: float = 2.0, every_n_epochs: int = 1, seed: int = 0, strip_frames: int = 5):
        self.dirpath = Path(dirpath)
        self.guidance = Guidance(mode, audio_scale, ref_scale)
        self.steps, self.mu, self.every_n_epochs = steps, mu, every_n_epochs
        self.seed, self.strip_frames = seed, strip_frames
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
        video = self.generate(pl_module, self.sample)
        real = self.sample.get("video")
        pair = video if real is None else torch.cat([video, real[0].to(video)], dim=-1)  # side by side
        audio = self.sample.get("audio")
        fps = int(self.sample["fps"][0]) if "fps" in self.sample else 25
        path = self.dirpath / f"epoch{trainer.current_epoch:03d}.mp4"
        write_mp4(path, to_uint8_frames(pair), fps, None if audio is None else audio[0].float().cpu().numpy())
        self._log_strip(trainer, video, real)

    def generate(self, pl_module: Any, sample: dict[str, Any]) -> torch.Tensor:
        """(3, F, H, W) in [-1, 1]: one clip sampled for the sample's reference and audio."""
        net, audio_encoder = pl_module.denoiser(ema=True)
        z0 = pl_module.latents(sample)
        frames = z0.shape[2] - 1
        c = pl_module.audio_latents(audio_encoder, sample, frames)
        sampler = ANSSampler(steps=self.steps, mu=self.mu, clip_frames=frames, guidance=self.guidance)
        generator = torch.Generator().manual_seed(self.seed)
        noise = torch.randn(z0[:, :, 1:].shape, generator=generator).to(z0)
        latents = sampler.sample(net, z0[:, :, :1], c, noise)
        return pl_module.vae.decode(latents)[0].float().clamp(-1, 1)

    def _log_strip(self, trainer: L.Trainer, video: torch.Tensor, real: torch.Tensor | None) -> None:
        picks = torch.linspace(0, video.shape[1] - 1, min(self.strip_frames, video.shape[1])).round().long()
        rows = [video[:, picks]] + ([] if real is None else [real[0].to(video)[:, picks]])
        strip = rearrange(torch.stack(rows), "r c n h w -> c (r h) (n w)")
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("val/sample", (strip + 1) / 2, trainer.global_step)
