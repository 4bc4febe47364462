"""Stage 2 of READ: the A2V-DiT trained with the asynchronous forward process of ANS (eq. 11-15).

Batch contract (DESIGN §5): cached ``latents`` (B, C, f, h, w) and ``ref_latent`` (B, C, 1, h, w) when the
datamodule reads a latent cache, else ``video`` (B, 3, F, H, W) and ``ref`` (B, 3, H, W) encoded here by the
frozen VAE; ``audio_windows`` (B, F, Hw, Da) encoded to C (B, f, hw, da) by the audio encoder:

- ``speechae``: the stage-1 SpeechAE encoder from ``speechae_ckpt``, frozen (the paper);
- ``speechae_scratch``: a fresh SpeechAE encoder trained jointly with the DiT (ablation);
- ``linear``: no SpeechAE, raw windows through one linear map (ablation, "w/o SpeechAE").

Logged: ``train/loss``; ``val/loss`` and ``test/loss`` with fixed noise and times per batch (comparable across
epochs), and the same loss binned by t2 (``val/loss_t0-25`` ...), since low-noise bins fall far below high ones.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from lightning import LightningModule
from torchmetrics import MeanMetric, SumMetric

from readlit.errors import CheckpointError, ConfigError, missing_mouth_mask
from readlit.flow.ans import ANSProcess
from readlit.lit.checkpoint import load_checkpoint, tag_checkpoint
from readlit.nn.a2v_dit import A2VDiT
from readlit.nn.audio_projection import RawWindowProjection
from readlit.nn.speech_ae import SpeechAE, SpeechEncoder
from readlit.vae import VideoVAE

AUDIO_ENCODERS = ("speechae", "speechae_scratch", "linear")


def load_speech_encoder(path: str, key: str = "model.speechae_ckpt") -> tuple[SpeechEncoder, dict[str, Any]]:
    """The SpeechAE encoder E_A of a stage-1 checkpoint and the SpeechAE config it was built with."""
    if not Path(path).is_file():
        raise CheckpointError(f"{key}={path}: no such checkpoint file (a speechae-stage checkpoint: python -m "
                              "readlit.train experiment=speechae, or experiment=demo_speechae for the demo)")
    checkpoint = load_checkpoint(path, stage="speechae", key=key)
    config = checkpoint["readlit"]["net_config"]
    speechae = SpeechAE(**config)
    state = {k.removeprefix("net."): v for k, v in checkpoint["state_dict"].items() if k.startswith("net.")}
    speechae.load_state_dict(state)
    return speechae.encoder, config


def _partial_config(factory: Any) -> dict[str, Any] | None:
    """A Hydra partial (e.g. the Whisper front end) as a plain config dict that rebuilds it."""
    if not isinstance(factory, functools.partial):
        return None
    from omegaconf import DictConfig, OmegaConf

    plain = {k: OmegaConf.to_container(v) if isinstance(v, DictConfig) else v for k, v in factory.keywords.items()}
    return {"_target_": f"{factory.func.__module__}.{factory.func.__qualname__}", "_partial_": True, **plain}


class A2VLitModule(LightningModule):
    """Trains the A2V-DiT with ANS.

    Args:
        net: partial A2V-DiT (or :func:`~readlit.nn.ltx_init.load_ltx_transformer`); ``in_channels`` and
            ``audio_dim`` are filled in from the VAE and the audio encoder.
        vae: the video latent space (frozen).
        ans: the asynchronous forward process and condition dropout.
        optimizer: partial optimizer taking ``params``.
        scheduler: optional partial LR scheduler taking ``optimizer``; stepped every optimizer step.
        audio_encoder: ``speechae``, ``speechae_scratch`` or ``linear`` (module docstring).
        speechae_ckpt: the stage-1 checkpoint (``speechae`` only).
        speechae_net: SpeechAE arguments for ``speechae_scratch``; for ``linear`` its in/latent sizes are used.
        frontend: the Whisper front end (a partial), recorded in checkpoints so ``generate`` can rebuild it.
        ema_decay: decay of the EMA of the trainable weights (None: no EMA).
        validate_ema: validate and test with the EMA weights.
        max_frame_offset: train with a random RoPE frame offset in [0, max_frame_offset], so long videos'
            later clips (sampled at offsets far beyond one clip) stay in distribution.
        t_bins: number of equal t2 bins of the validation loss.
        val_seed: seed of the fixed validation noise.
        compile: compile the DiT with ``torch.compile`` at fit time.
        mouth_weight: training loss weight of the latent positions the batch's ``mouth_mask`` (B, H, W) touches,
            relative to 1 elsewhere (0: eq. 15 unweighted). Data without a mask (HDTF, MEAD) needs 0; the
            synthetic demo uses it because the mouth is a few latent positions of a 64x64 face.
    """

    stage = "a2v"

    def __init__(self, net: Callable[..., A2VDiT], vae: VideoVAE, ans: ANSProcess,
                 optimizer: Callable[..., torch.optim.Optimizer], scheduler: Callable[..., Any] | None = None,
                 audio_encoder: str = "speechae", speechae_ckpt: str | None = None,
                 speechae_net: dict[str, Any] | None = None, frontend: Any = None, ema_decay: float | None = 0.999,
                 validate_ema: bool = False, max_frame_offset: int = 0, t_bins: int = 4, val_seed: int = 0,
                 compile: bool = False, mouth_weight: float = 0.0):
        super().__init__()
        if mouth_weight < 0:
            raise ConfigError(f"model.mouth_weight={mouth_weight} must be >= 0")
        self.mouth_weight = mouth_weight
        self.vae = vae
        self.ans = ans
        self.audio, self.audio_config = self._build_audio(audio_encoder, speechae_ckpt, speechae_net)
        audio_dim = self.audio_config["latent_dim"]
        self.net = net(in_channels=vae.latent_channels, audio_dim=audio_dim)
        self.ema = None
        if ema_decay is not None:
            self.ema = torch.nn.ModuleDict({"net": copy.deepcopy(self.net), "audio": copy.deepcopy(self.audio)})
            self.ema.requires_grad_(False)
        self.ema_decay, self.validate_ema = ema_decay, validate_ema
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.frontend_config = _partial_config(frontend)
        self.max_frame_offset, self.val_seed, self.compile = max_frame_offset, val_seed, compile
        self.t_edges = torch.linspace(0, 1, t_bins + 1).tolist()
        self.clip_shape: tuple[int, int] | None = None  # (latent frames after z_R, pixel size) seen in training
        self.eval_metrics = torch.nn.ModuleDict({
            stage: torch.nn.ModuleDict({"loss": MeanMetric(),
                                        **{f"sum{i}": SumMetric() for i in range(t_bins)},
                                        **{f"count{i}": SumMetric() for i in range(t_bins)}})
            for stage in ("val", "test")
        })

    # ----------------------------------------------------------------------------------------- parts

    def _build_audio(self, mode: str, ckpt: str | None,
                     sizes: dict[str, Any] | None) -> tuple[torch.nn.Module, dict[str, Any]]:
        """The audio encoder and the config that rebuilds it (``mode`` plus its constructor arguments)."""
        if mode not in AUDIO_ENCODERS:
            raise ConfigError(f"model.audio_encoder={mode} is not one of {AUDIO_ENCODERS}")
        if mode == "speechae":
            if ckpt is None:
                raise ConfigError("model.audio_encoder=speechae needs model.speechae_ckpt (a stage-1 checkpoint: "
                                  "python -m readlit.train experiment=speechae)")
            encoder, trained = load_speech_encoder(ckpt)
            wanted = {k: sizes[k] for k in ("in_tokens", "in_dim") if sizes and k in sizes}
            if {k: trained[k] for k in wanted} != wanted:
                raise ConfigError(f"model.speechae_ckpt={ckpt} was trained on audio windows "
                                  f"{ {k: trained[k] for k in wanted} }, but the audio config gives {wanted}; use the "
                                  "stage-1 checkpoint of this audio front end")
            return encoder.requires_grad_(False), {"mode": mode, **trained}
        if sizes is None:
            raise ConfigError(f"model.audio_encoder={mode} needs model.speechae_net (its sizes)")
        sizes = dict(sizes)
        if mode == "speechae_scratch":
            return SpeechAE(**sizes).encoder, {"mode": mode, **sizes}
        linear = {k: sizes[k] for k in ("in_tokens", "in_dim", "latent_tokens", "latent_dim")}
        linear["ratio"] = 2 ** sizes.get("num_down", 3)
        return RawWindowProjection(**linear), {"mode": mode, **linear}

    def setup(self, stage: str) -> None:
        if self.compile and stage == "fit":
            self.net.compile()

    def denoiser(self, ema: bool) -> tuple[A2VDiT, torch.nn.Module]:
        """(net, audio encoder): the EMA copies or the trained ones."""
        if ema and self.ema is not None:
            return self.ema["net"], self.ema["audio"]
        return self.net, self.audio

    # ---------------------------------------------------------------------------------------- batches

    @torch.no_grad()
    def latents(self, batch: dict[str, Any]) -> torch.Tensor:
        """Clean [z_R, z_1..z_f] (B, C, 1 + f, h, w) from cached latents or the frozen VAE."""
        if "latents" in batch:
            z, z_ref = batch["latents"], batch["ref_latent"]
        else:
            z, z_ref = self.vae.encode(batch["video"]), self.vae.encode_image(batch["ref"])
        return torch.cat([z_ref.to(z.dtype), z], dim=2)

    def audio_latents(self, audio: torch.nn.Module, batch: dict[str, Any], frames: int) -> torch.Tensor:
        """C (B, f, hw, da) of the clip's ``frames`` = f latent frames."""
        c = audio(batch["audio_windows"])
        if c.shape[1] != frames:
            raise ConfigError(f"the audio encoder gives {c.shape[1]} latent frames for {frames} video latent "
                              "frames; its temporal compression (num_down) must match the VAE's")
        return c

    # --------------------------------------------------------------------------------------- training

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        z0 = self.latents(batch)
        batch_size, frames = z0.shape[0], z0.shape[2] - 1
        if self.clip_shape is None:
            self.clip_shape = (frames, z0.shape[-1] * self.vae.spatial_ratio)
        c = self.audio_latents(self.audio, batch, frames)
        noised = self.ans.forward_process(z0)
        keep_ref, keep_audio = self.ans.dropout(batch_size, z0.device)
        z_in = torch.cat([noised.z_t[:, :, :1] * rearrange(keep_ref, "b -> b 1 1 1 1").to(z0.dtype),
                          noised.z_t[:, :, 1:]], dim=2)
        c = c * rearrange(keep_audio, "b -> b 1 1 1").to(c.dtype)
        offset = int(torch.randint(0, self.max_frame_offset + 1, ())) if self.max_frame_offset else 0
        loss = self.ans.loss(self.net(z_in, noised.t, c, offset), noised, self.position_weight(batch, z0))
        self.log("train/loss", loss, prog_bar=True, batch_size=batch_size)
        return loss

    def position_weight(self, batch: dict[str, Any], z0: torch.Tensor) -> torch.Tensor | None:
        """(B, h, w): 1 + mouth_weight where the mouth mask reaches a latent position, 1 elsewhere; None if 0."""
        if self.mouth_weight == 0:
            return None
        if "mouth_mask" not in batch:
            raise missing_mouth_mask()
        mask = F.adaptive_max_pool2d(batch["mouth_mask"].float()[:, None], z0.shape[-2:])[:, 0]
        return 1.0 + self.mouth_weight * mask

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.ema is None:
            return
        pairs = [(e, p) for module in ("net", "audio") for e, p in
                 zip(self.ema[module].parameters(), getattr(self, module).parameters(), strict=True)
                 if p.requires_grad]
        if pairs:
            ema, live = zip(*pairs, strict=True)
            torch._foreach_lerp_(list(ema), [p.detach() for p in live], 1.0 - self.ema_decay)

    # ------------------------------------------------------------------------------------- evaluation

    def _eval_step(self, stage: str, batch: dict[str, Any], batch_idx: int) -> None:
        net, audio = self.denoiser(self.validate_ema)
        z0 = self.latents(batch)
        batch_size, frames, _, height, width = z0.shape[0], z0.shape[2] - 1, *z0.shape[2:]
        generator = torch.Generator().manual_seed(self.val_seed + batch_idx)
        t = self.ans.sample_times(batch_size, frames, (frames + 1) * height * width, torch.device("cpu"), generator)
        eps = torch.randn(z0.shape, generator=generator, dtype=z0.dtype)
        noised = self.ans.noise(z0, t.to(z0.device), eps.to(z0.device))
        losses = self.ans.per_sample_loss(net(noised.z_t, noised.t, self.audio_latents(audio, batch, frames)), noised)
        metrics = self.eval_metrics[stage]
        metrics["loss"].update(losses)
        bins = torch.bucketize(noised.t[:, -1].float().contiguous(), torch.tensor(self.t_edges[1:-1], device=z0.device))
        for i in range(len(self.t_edges) - 1):
            metrics[f"sum{i}"].update((losses * (bins == i)).sum())
            metrics[f"count{i}"].update((bins == i).sum().float())

    def _eval_epoch_end(self, stage: str) -> None:
        metrics = self.eval_metrics[stage]
        values = {f"{stage}/loss": metrics["loss"].compute()}
        for i, (lo, hi) in enumerate(zip(self.t_edges[:-1], self.t_edges[1:], strict=True)):
            count = metrics[f"count{i}"].compute()
            if count > 0:
                values[f"{stage}/loss_t{round(lo * 100)}-{round(hi * 100)}"] = metrics[f"sum{i}"].compute() / count
        self.log_dict(values, prog_bar=stage == "val")
        for metric in metrics.values():
            metric.reset()

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step("val", batch, batch_idx)

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step("test", batch, batch_idx)

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    # ------------------------------------------------------------------------------------ optimisation

    def configure_optimizers(self) -> dict[str, Any]:
        params = [p for p in [*self.net.parameters(), *self.audio.parameters()] if p.requires_grad]
        optimizer = self.optimizer_factory(params=params)
        if self.scheduler_factory is None:
            return {"optimizer": optimizer}
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ------------------------------------------------------------------------------------ checkpoints

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        frames, size = self.clip_shape or (None, None)
        tag_checkpoint(checkpoint, self.stage, net_config=self.net.config, audio_config=self.audio_config,
                       vae_config=self.vae.config, frontend=self.frontend_config, clip_frames=frames, size=size,
                       vae_settings={"tile_frames": self.vae.tile_frames, "tile_context": self.vae.tile_context,
                                     "decode_timestep": self.vae.decode_timestep,
                                     "decode_noise_scale": self.vae.decode_noise_scale})

    @classmethod
    def pipeline_from_checkpoint(cls, checkpoint: dict[str, Any], device: torch.device,
                                 ema: bool = True) -> tuple[Any, dict[str, Any]]:
        """The :class:`~readlit.pipeline.TalkingHeadPipeline` an a2v checkpoint holds, and its training facts."""
        from hydra.utils import instantiate

        from readlit.pipeline import TalkingHeadPipeline

        tag, state = checkpoint["readlit"], checkpoint["state_dict"]
        if tag.get("frontend") is None or tag.get("size") is None:
            raise ConfigError("this a2v checkpoint records no audio front end or clip size; train it with readlit's "
                              "a2v stage (model.frontend=${audio})")
        vae = VideoVAE(architecture=tag["vae_config"], logvar_init=None, **tag["vae_settings"])
        vae.load_state_dict({k.removeprefix("vae."): v for k, v in state.items() if k.startswith("vae.")})
        audio_config = dict(tag["audio_config"])
        mode = audio_config.pop("mode")
        audio = RawWindowProjection(**audio_config) if mode == "linear" else SpeechAE(**audio_config).encoder
        net = A2VDiT(**tag["net_config"])
        prefix = "ema." if ema and any(k.startswith("ema.") for k in state) else ""
        for name, module in (("net", net), ("audio", audio)):
            head = f"{prefix}{name}."
            module.load_state_dict({k.removeprefix(head): v for k, v in state.items() if k.startswith(head)})
        frontend = instantiate(tag["frontend"])()
        pipeline = TalkingHeadPipeline(vae.to(device).eval(), frontend, audio.to(device).eval(),
                                       net.to(device).eval(), size=tag["size"])
        return pipeline, {"clip_frames": tag["clip_frames"], "ema": bool(prefix)}
