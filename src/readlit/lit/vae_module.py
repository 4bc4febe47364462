"""The VAE stage: train a small LTX-architecture VAE from scratch, or fine-tune a pretrained LTX VAE on faces.

Loss = l1_weight·L1 + mse_weight·MSE + kl_weight·KL + motion_weight·L1 of frame differences + mouth_weight·MSE
inside the batch's ``mouth_mask`` (+ perceptual_weight·perceptual when configured), on posterior samples of the
raw (unnormalised) latent space. The motion and mouth terms exist because in a talking head almost everything
that changes between frames is the mouth, a few dozen pixels the per-pixel terms barely weigh: without them a
small VAE learns a still face with a closed mouth (the demo VAE did, keeping 26 dB and no mouth at all).
Validation and test reconstruct through the public path that later stages use (normalised ``encode`` -> tiled
``decode``) and log PSNR and SSIM on [0, 1] pixels.

While the encoder trains, the per-channel mean and std of the posterior means seen in each training epoch
become the VAE's latent statistics (LTX's "mean-of-means" / "std-of-means") before that epoch's validation,
so every checkpoint carries statistics that match its encoder. At the end of fitting the VAE is exported
with ``save_pretrained`` to ``export_dir``, which later stages load with ``vae=local vae.pretrained=DIR``.
"""

from collections.abc import Callable
from typing import Any

import torch
from einops import rearrange
from lightning import LightningModule
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from torchmetrics import MeanMetric, Metric
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from readlit.errors import CheckpointError, ConfigError, missing_mouth_mask
from readlit.frames import check_frame_count
from readlit.lit.checkpoint import tag_checkpoint
from readlit.vae import VideoVAE


class LatentMoments(Metric):
    """Per-channel mean and std of latents (B, C, f, h, w) over everything seen, summed across processes."""

    full_state_update = False

    def __init__(self, channels: int):
        super().__init__()
        zeros = torch.zeros(channels, dtype=torch.float64)
        self.add_state("total", default=zeros.clone(), dist_reduce_fx="sum")
        self.add_state("total_sq", default=zeros.clone(), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, z: torch.Tensor) -> None:
        z = rearrange(z.detach().double(), "b c f h w -> (b f h w) c")
        self.total = self.total + z.sum(dim=0)
        self.total_sq = self.total_sq + z.square().sum(dim=0)
        self.count = self.count + z.shape[0]

    def compute(self) -> tuple[torch.Tensor, torch.Tensor]:
        mean = self.total / self.count
        std = (self.total_sq / self.count - mean.square()).clamp_min(1e-12).sqrt()
        return mean.float(), std.float()


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, 1)) averaged over every latent element; inputs (B, C, f, h, w)."""
    return 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar).mean()


def motion_l1(recon: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
    """L1 between the frame-to-frame changes of two videos (B, 3, F, H, W); 0 for single frames."""
    if video.shape[2] < 2:
        return video.new_zeros(())
    return (recon.diff(dim=2) - video.diff(dim=2)).abs().mean()


def masked_mse(recon: torch.Tensor, video: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error of two videos (B, 3, F, H, W) over the pixels where ``mask`` (B, H, W) is 1.

    Squared, not absolute: a mouth is closed more often than open, so while the latents do not yet tell the
    two apart, L1's optimum (the median) is a closed mouth and its gradients cancel; the squared error's optimum
    is the mean, a half-open mouth, whose errors push the encoder to separate the cases. Overfitting 8 clips
    from the shipped demo VAE, the mouth's round-trip correlation reached 0.92 in 300 steps with this term and
    0.42 with the L1 one.
    """
    weight = rearrange(mask.to(video.dtype), "b h w -> b 1 1 h w")
    area = weight.sum() * video.shape[1] * video.shape[2]
    return ((recon - video).square() * weight).sum() / area.clamp_min(1.0)


def _to_unit(video: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], clamped (reconstructions may overshoot)."""
    return ((video + 1.0) / 2.0).clamp(0.0, 1.0)


class VAELitModule(LightningModule):
    """Trains :class:`VideoVAE` on batches with ``video`` (B, 3, F, H, W) in [-1, 1].

    Logged per stage (``train``/``val``/``test``): ``loss``, ``l1``, ``mse``, ``kl`` (+ ``perceptual``) and,
    outside training, ``psnr`` (dB, per clip, averaged) and ``ssim`` (per frame, averaged).

    Args:
        vae: the VAE to train (``vae.frozen=false``).
        optimizer: partial optimizer taking ``params``.
        scheduler: optional partial LR scheduler taking ``optimizer``; stepped every optimizer step.
        l1_weight, mse_weight, kl_weight: loss weights.
        motion_weight: weight of the L1 between frame differences of reconstruction and input.
        mouth_weight: weight of the squared error inside the batch's ``mouth_mask`` (B, H, W) (synthetic data
            gives the box the mouth can reach); > 0 refuses batches without a mask.
        perceptual: optional factory of a frozen image loss ``(x, y) -> scalar`` on (N, 3, H, W) in [-1, 1]
            (e.g. torchmetrics LPIPS), built at fit time; refused with CheckpointError if its weights are missing.
        perceptual_weight: its weight.
        perceptual_frames: frames per clip (evenly spaced) given to the perceptual loss.
        train_frames: if set, each training clip is cut to a random window of this many frames (1 + 8k): more
            clips per second of compute, while validation keeps whole clips.
        image_weight: weight of an extra loss on one random frame per clip encoded alone as an image (the
            reference-image path, and cheap extra spatial data); 0 turns it off.
        freeze_encoder: train the decoder only, keeping the latent space (for fine-tuning a pretrained VAE).
        update_latent_stats: re-estimate latents_mean/std from each training epoch (needs a trained encoder).
        export_dir: folder to ``save_pretrained`` the VAE into at the end of fitting, or None.
        log_clips: clips of the first validation batch shown in TensorBoard each validation epoch.
        log_frames: frames per clip shown.
        seed: seed of the validation decode noise (timestep-conditioned decoders), so val metrics repeat.
    """

    stage = "vae"

    def __init__(self, vae: VideoVAE, optimizer: Callable[..., torch.optim.Optimizer],
                 scheduler: Callable[..., Any] | None = None, l1_weight: float = 1.0, mse_weight: float = 1.0,
                 kl_weight: float = 1e-6, motion_weight: float = 0.0, mouth_weight: float = 0.0,
                 perceptual: Callable[[], torch.nn.Module] | None = None,
                 perceptual_weight: float = 0.1, perceptual_frames: int = 4, train_frames: int | None = None,
                 image_weight: float = 0.0, freeze_encoder: bool = False, update_latent_stats: bool = True,
                 export_dir: str | None = None, log_clips: int = 2, log_frames: int = 5, seed: int = 0):
        super().__init__()
        if vae.frozen:
            raise ConfigError("the vae stage trains the VAE: set vae.frozen=false")
        if freeze_encoder and update_latent_stats:
            raise ConfigError("model.freeze_encoder=true keeps the latent space: set model.update_latent_stats=false")
        if train_frames is not None:
            check_frame_count(train_frames, vae.temporal_ratio, key="model.train_frames")
        self.vae = vae
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.weights = {"l1": l1_weight, "mse": mse_weight, "kl": kl_weight, "motion": motion_weight,
                        "mouth": mouth_weight, "perceptual": perceptual_weight}
        self.perceptual_factory, self.perceptual_frames = perceptual, perceptual_frames
        self.perceptual: torch.nn.Module | None = None
        self.train_frames, self.image_weight = train_frames, image_weight
        self.freeze_encoder, self.update_latent_stats = freeze_encoder, update_latent_stats
        self.export_dir, self.log_clips, self.log_frames, self.seed = export_dir, log_clips, log_frames, seed
        if freeze_encoder:
            self.vae.model.encoder.requires_grad_(False)
        self.moments = LatentMoments(vae.latent_channels)
        self.eval_metrics = torch.nn.ModuleDict({
            stage: torch.nn.ModuleDict({
                "psnr": PeakSignalNoiseRatio(data_range=1.0, dim=(1, 2, 3, 4)),
                "ssim": StructuralSimilarityIndexMeasure(data_range=1.0),
                **{key: MeanMetric() for key in ("loss", "l1", "mse", "kl", "motion", "mouth")},
            })
            for stage in ("val", "test")
        })
        self._shown: torch.Tensor | None = None

    # ------------------------------------------------------------------------------------------ set-up

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.perceptual_factory is not None and self.perceptual is None:
            self.perceptual = _build_perceptual(self.perceptual_factory)

    def configure_optimizers(self) -> dict[str, Any]:
        params = [p for p in self.vae.parameters() if p.requires_grad]
        optimizer = self.optimizer_factory(params=params)
        if self.scheduler_factory is None:
            return {"optimizer": optimizer}
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ---------------------------------------------------------------------------------------- losses

    def losses(self, video: torch.Tensor, mouth_mask: torch.Tensor | None = None
               ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Loss terms of one posterior sample.

        Args:
            video: (B, 3, F, H, W) in [-1, 1].
            mouth_mask: (B, H, W), 1 where the mouth can be; needed when ``mouth_weight`` > 0.

        Returns:
            the terms (``loss`` = weighted sum) and the posterior mean (B, C, f, h, w).
        """
        mean, logvar = self.vae.encode_moments(video)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        recon = self.vae.decode_raw(z)
        terms = {"l1": (recon - video).abs().mean(), "mse": (recon - video).square().mean(),
                 "kl": kl_divergence(mean, logvar), "motion": motion_l1(recon, video)}
        if mouth_mask is not None:
            terms["mouth"] = masked_mse(recon, video, mouth_mask)
        elif self.weights["mouth"] > 0:
            raise missing_mouth_mask()
        if self.perceptual is not None:
            terms["perceptual"] = self._perceptual_loss(recon, video)
        terms["loss"] = sum(self.weights[key] * value for key, value in terms.items())
        return terms, mean

    def _perceptual_loss(self, recon: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        index = torch.linspace(0, video.shape[2] - 1, self.perceptual_frames, device=video.device).round().long()
        frames = "b c f h w -> (b f) c h w"
        return self.perceptual(rearrange(recon[:, :, index], frames), rearrange(video[:, :, index], frames))

    def _crop(self, video: torch.Tensor) -> torch.Tensor:
        """A random window of ``train_frames`` frames, the same for the whole batch: (B, 3, F', H, W)."""
        if self.train_frames is None or self.train_frames >= video.shape[2]:
            return video
        start = int(torch.randint(0, video.shape[2] - self.train_frames + 1, ()))
        return video[:, :, start:start + self.train_frames]

    def _random_frames(self, video: torch.Tensor) -> torch.Tensor:
        """One random frame per clip as a one-frame video: (B, 3, 1, H, W)."""
        index = torch.randint(0, video.shape[2], (video.shape[0],), device=video.device)
        return video[torch.arange(video.shape[0], device=video.device), :, index][:, :, None]

    # -------------------------------------------------------------------------------------- training

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        video = self._crop(batch["video"])
        terms, mean = self.losses(video, batch.get("mouth_mask"))
        loss = terms["loss"]
        if self.image_weight > 0:
            image_terms, _ = self.losses(self._random_frames(batch["video"]), batch.get("mouth_mask"))
            terms["image_loss"] = image_terms["loss"]
            loss = loss + self.image_weight * image_terms["loss"]
        if self.update_latent_stats:
            self.moments.update(mean)
        self.log_dict({f"train/{k}": v for k, v in terms.items()}, prog_bar=True, batch_size=video.shape[0])
        return loss

    def on_validation_epoch_start(self) -> None:
        # Runs after each training epoch: the statistics of the latents that epoch produced.
        if self.update_latent_stats and self.moments.update_count > 0:
            self.vae.set_latent_stats(*self.moments.compute())
            self.moments.reset()

    # ------------------------------------------------------------------------------------ evaluation

    def reconstruct(self, video: torch.Tensor) -> torch.Tensor:
        """The round trip later stages use: (B, 3, F, H, W) -> normalised latents -> tiled decode, same shape."""
        generator = torch.Generator(device=video.device).manual_seed(self.seed)
        return self.vae.decode(self.vae.encode(video), generator=generator)

    def _eval_step(self, stage: str, batch: dict[str, Any], batch_idx: int) -> None:
        video = batch["video"]
        terms, _ = self.losses(video, batch.get("mouth_mask"))
        recon = self.reconstruct(video)
        metrics = self.eval_metrics[stage]
        for key, value in terms.items():
            if key in metrics:
                metrics[key].update(value, video.shape[0])
        metrics["psnr"].update(_to_unit(recon), _to_unit(video))
        metrics["ssim"].update(*(rearrange(_to_unit(v), "b c f h w -> (b f) c h w") for v in (recon, video)))
        if stage == "val" and batch_idx == 0:
            self._shown = torch.stack([video[: self.log_clips], recon[: self.log_clips]]).detach().cpu()

    def _eval_epoch_end(self, stage: str) -> None:
        metrics = self.eval_metrics[stage]
        # "mouth" is only measured on data with a mouth_mask
        self.log_dict({f"{stage}/{key}": metric.compute() for key, metric in metrics.items() if metric.update_count},
                      prog_bar=stage == "val")
        for metric in metrics.values():
            metric.reset()

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step("val", batch, batch_idx)

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")
        self._log_reconstructions()

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step("test", batch, batch_idx)

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    @rank_zero_only
    def _log_reconstructions(self) -> None:
        loggers = [logger for logger in self.loggers if isinstance(logger, TensorBoardLogger)]
        if self._shown is None or not loggers:
            return
        frames = self._shown.shape[3]
        index = torch.linspace(0, frames - 1, min(self.log_frames, frames)).round().long()
        # Rows: each clip's input above its reconstruction; columns: frames.
        grid = rearrange(_to_unit(self._shown[:, :, :, index]), "pair n c f h w -> c (n pair h) (f w)")
        for logger in loggers:
            logger.experiment.add_image("val/reconstructions", grid, self.global_step)
        self._shown = None

    # ------------------------------------------------------------------------------------- artefacts

    def on_fit_end(self) -> None:
        if self.export_dir is not None and self.trainer.is_global_zero:
            self.vae.save_pretrained(self.export_dir)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        tag_checkpoint(checkpoint, self.stage, vae_config=self.vae.config)


def _build_perceptual(factory: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """Build the perceptual loss network, frozen; missing weights become one CheckpointError line."""
    try:
        network = factory()
    # torchvision raises URLError/OSError/RuntimeError for missing or broken backbone weights.
    except Exception as err:
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise CheckpointError(
            f"model.perceptual could not be built ({type(err).__name__}: {first}); its backbone weights come "
            "from torchvision's model zoo (https://download.pytorch.org/models/): put them in $TORCH_HOME/hub/"
            "checkpoints on a machine with network, or set model.perceptual=null"
        ) from err
    return network.requires_grad_(False).eval()
