"""The VAE stage: train a small LTX-architecture VAE from scratch, or fine-tune a pretrained LTX VAE on faces.

Loss = l1_weight·L1 + mse_weight·MSE + kl_weight·KL (+ perceptual_weight·perceptual when configured) + the
weighted plug-in ``terms`` (:mod:`readlit.lit.terms`: the mouth and motion terms of the synthetic demo), on
posterior samples of the raw (unnormalised) latent space; each plug-in ``view`` adds the loss of another view of
the batch (e.g. single frames encoded as images). Validation and test reconstruct through the public path that
later stages use (normalised ``encode`` -> tiled ``decode``) and log PSNR and SSIM on [0, 1] pixels.

While the encoder trains, the per-channel mean and std of the posterior means seen in each training epoch
become the VAE's latent statistics (LTX's "mean-of-means" / "std-of-means") before that epoch's validation,
so every checkpoint carries statistics that match its encoder. At the end of fitting the VAE is exported
with ``save_pretrained`` to ``export_dir``, which later stages load with ``vae=local vae.pretrained=DIR``.
"""

from collections.abc import Callable, Mapping
from typing import Any

import torch
from einops import rearrange
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from readlit.errors import CheckpointError, ConfigError
from readlit.frames import check_frame_count
from readlit.lit.base import Batch, StageModule, per_stage
from readlit.lit.metrics import LatentMoments
from readlit.lit.terms import SingleFrames
from readlit.vae import VideoVAE

# A per-reconstruction loss term (readlit.lit.terms): term(recon, video, batch) -> scalar, with a ``weight``.
LossTerm = Callable[[torch.Tensor, torch.Tensor, dict[str, Any]], torch.Tensor]


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, 1)) averaged over every latent element; inputs (B, C, f, h, w)."""
    return 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar).mean()


def _to_unit(video: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], clamped (reconstructions may overshoot)."""
    return ((video + 1.0) / 2.0).clamp(0.0, 1.0)


class VAELitModule(StageModule):
    """Trains :class:`VideoVAE` on batches with ``video`` (B, 3, F, H, W) in [-1, 1].

    Logged per stage (``train``/``val``/``test``): ``loss``, ``l1``, ``mse``, ``kl`` (+ ``perceptual``, each plug-in
    term by its name, ``<view>_loss`` per view in training) and, outside training, ``psnr`` (dB, per clip, averaged)
    and ``ssim`` (per frame, averaged).

    Args:
        vae: the VAE to train (``vae.frozen=false``).
        optimizer, scheduler, compile: see :class:`~readlit.lit.base.StageModule` (``compile`` compiles the VAE).
        l1_weight, mse_weight, kl_weight: loss weights.
        perceptual: optional factory of a frozen image loss ``(x, y) -> scalar`` on (N, 3, H, W) in [-1, 1]
            (e.g. torchmetrics LPIPS), built at fit time; refused with CheckpointError if its weights are missing.
        perceptual_weight: its weight.
        perceptual_frames: frames per clip (evenly spaced) given to the perceptual loss.
        terms: extra per-reconstruction loss terms by name (:mod:`readlit.lit.terms`), each with a ``weight``.
        views: extra views of the batch's video by name (e.g. ``SingleFrames``), each adding ``weight`` times the
            loss of its reconstruction in training.
        train_frames: if set, each training clip is cut to a random window of this many frames (1 + 8k): more
            clips per second of compute, while validation keeps whole clips.
        freeze_encoder: train the decoder only, keeping the latent space (for fine-tuning a pretrained VAE).
        update_latent_stats: re-estimate latents_mean/std from each training epoch (needs a trained encoder).
        export_dir: folder to ``save_pretrained`` the VAE into at the end of fitting, or None.
        log_clips: clips of the first validation batch shown in TensorBoard each validation epoch.
        log_frames: frames per clip shown.
        seed: seed of the validation decode noise (timestep-conditioned decoders), so val metrics repeat.
    """

    stage = "vae"

    def __init__(self, vae: VideoVAE, optimizer: Callable[..., torch.optim.Optimizer],
                 scheduler: Callable[..., Any] | None = None, compile: bool = False, l1_weight: float = 1.0,
                 mse_weight: float = 1.0, kl_weight: float = 1e-6,
                 perceptual: Callable[[], torch.nn.Module] | None = None, perceptual_weight: float = 0.1,
                 perceptual_frames: int = 4, terms: Mapping[str, LossTerm] | None = None,
                 views: Mapping[str, SingleFrames] | None = None, train_frames: int | None = None,
                 freeze_encoder: bool = False, update_latent_stats: bool = True, export_dir: str | None = None,
                 log_clips: int = 2, log_frames: int = 5, seed: int = 0):
        super().__init__(optimizer, scheduler, compile)
        if vae.frozen:
            raise ConfigError("vae.frozen=true: the vae stage trains the VAE; set vae.frozen=false")
        if freeze_encoder and update_latent_stats:
            raise ConfigError("freeze_encoder=true keeps the latent space: set update_latent_stats=false")
        if train_frames is not None:
            check_frame_count(train_frames, vae.temporal_ratio, key="train_frames")
        self.vae = vae
        self.terms, self.views = dict(terms or {}), dict(views or {})
        self.weights = {"l1": l1_weight, "mse": mse_weight, "kl": kl_weight, "perceptual": perceptual_weight,
                        **{name: term.weight for name, term in self.terms.items()}}
        self.perceptual_factory, self.perceptual_frames = perceptual, perceptual_frames
        self.perceptual: torch.nn.Module | None = None
        self.train_frames = train_frames
        self.freeze_encoder, self.update_latent_stats = freeze_encoder, update_latent_stats
        self.export_dir, self.log_clips, self.log_frames, self.seed = export_dir, log_clips, log_frames, seed
        if freeze_encoder:
            self.vae.model.encoder.requires_grad_(False)
        self.moments = LatentMoments(vae.latent_channels)
        logged = ("loss", "l1", "mse", "kl", *self.terms)
        self.eval_metrics = per_stage(lambda: {"psnr": PeakSignalNoiseRatio(data_range=1.0, dim=(1, 2, 3, 4)),
                                               "ssim": StructuralSimilarityIndexMeasure(data_range=1.0),
                                               **{key: MeanMetric() for key in logged}})
        self._shown: torch.Tensor | None = None

    # ------------------------------------------------------------------------------------------ set-up

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if stage == "fit" and self.perceptual_factory is not None and self.perceptual is None:
            self.perceptual = _build_perceptual(self.perceptual_factory)

    def compiled_modules(self) -> list[nn.Module]:
        return [self.vae.model]

    def train_keys(self) -> list[str]:
        perceptual = ["perceptual"] if self.perceptual_factory is not None else []
        return ["loss", "l1", "mse", "kl", *self.terms, *perceptual, *(f"{name}_loss" for name in self.views)]

    def header(self) -> dict[str, Any]:
        return {"stage": self.stage, "vae_config": self.vae.config}

    # ---------------------------------------------------------------------------------------- losses

    def losses(self, video: torch.Tensor, batch: Batch) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Loss terms of one posterior sample.

        Args:
            video: (B, 3, F, H, W) in [-1, 1].
            batch: the batch it comes from (the plug-in terms read e.g. its ``mouth_mask``).

        Returns:
            the terms (``loss`` = weighted sum) and the posterior mean (B, C, f, h, w).
        """
        mean, logvar = self.vae.encode_moments(video)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        recon = self.vae.decode_raw(z)
        terms = {"l1": (recon - video).abs().mean(), "mse": (recon - video).square().mean(),
                 "kl": kl_divergence(mean, logvar)}
        terms.update({name: term(recon, video, batch) for name, term in self.terms.items()})
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

    # -------------------------------------------------------------------------------------- training

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        video = self._crop(batch["video"])
        terms, mean = self.losses(video, batch)
        loss = terms["loss"]
        for name, view in self.views.items():
            view_terms, _ = self.losses(view(batch["video"]), batch)
            terms[f"{name}_loss"] = view_terms["loss"]
            loss = loss + view.weight * view_terms["loss"]
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

    def eval_step(self, stage: str, batch: Batch, batch_idx: int) -> None:
        video = batch["video"]
        terms, _ = self.losses(video, batch)
        recon = self.reconstruct(video)
        metrics = self.eval_metrics[stage]
        for key, value in terms.items():
            if key in metrics:
                metrics[key].update(value, video.shape[0])
        metrics["psnr"].update(_to_unit(recon), _to_unit(video))
        metrics["ssim"].update(*(rearrange(_to_unit(v), "b c f h w -> (b f) c h w") for v in (recon, video)))
        if stage == "val" and batch_idx == 0:
            self._shown = torch.stack([video[: self.log_clips], recon[: self.log_clips]]).detach().cpu()

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        self._log_reconstructions()

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


def _build_perceptual(factory: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """Build the perceptual loss network, frozen; missing weights become one CheckpointError line."""
    try:
        network = factory()
    # torchvision raises URLError/OSError/RuntimeError for missing or broken backbone weights.
    except Exception as err:
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise CheckpointError(
            f"perceptual={getattr(factory, 'func', factory).__name__} could not be built ({type(err).__name__}: "
            f"{first}); its backbone weights come "
            "from torchvision's model zoo (https://download.pytorch.org/models/): put them in $TORCH_HOME/hub/"
            "checkpoints on a machine with network, or set perceptual=null"
        ) from err
    return network.requires_grad_(False).eval()
