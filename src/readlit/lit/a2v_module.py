"""Stage 2 of READ: the A2V-DiT trained with the asynchronous forward process of ANS (eq. 11-15).

Batches (:mod:`readlit.data.batch`): cached ``latents`` (B, C, f, h, w) and ``ref_latent`` (B, C, 1, h, w) when the
datamodule reads a latent cache, else ``video`` (B, 3, F, H, W) and ``ref`` (B, 3, H, W) encoded here by the
frozen VAE; ``audio_windows`` (B, F, Hw, Da) encoded to C (B, f, hw, da) by the audio encoder
(:mod:`readlit.nn.audio_encoder`: the stage-1 SpeechAE by default, or an ablation's).

**The motion frame as inference sees it** (``motion_context``). A clip's first latent frame is, for the causal
VAE, the clip's first pixel frame encoded alone; at inference the motion frame of every later clip is the previous
clip's last latent, which covers eight frames. With ``motion_context`` = p, a share p of training batches encodes
the P = 8 frames before the clip too (``data.past_frames``) and drops the leading latent: the clip's first latent
frame then covers the 8 frames ending at its first frame, as at inference (the audio latents likewise).

Checkpoints hold the DiT and the audio encoder; the frozen codecs (VAE, Whisper front end) are recorded by
reference in the typed header (:class:`~readlit.checkpoint.A2VHeader`), not stored.

Logged: ``train/loss``; ``val/loss`` and ``test/loss`` with fixed noise and times per batch (comparable across
epochs), and the same loss binned by t2 (``val/loss_t0-25`` ...), since low-noise bins fall far below high ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchmetrics import MeanMetric

from readlit import checks
from readlit.audio import WhisperFrontEnd
from readlit.checkpoint import A2VHeader, CodecRef, load_checkpoint, submodule_state
from readlit.errors import CheckpointError, ConfigError, scope
from readlit.flow.ans import ANSProcess
from readlit.lit.base import Batch, StageModule, per_stage
from readlit.lit.metrics import BinnedMean
from readlit.nn.a2v_dit import A2VDiT
from readlit.nn.audio_encoder import PRETRAINED, audio_encoder_config, build_audio_encoder
from readlit.nn.conditioning import drop_conditions
from readlit.pipeline import TalkingHeadPipeline
from readlit.vae import VideoVAE

# A2V flow-loss weights per latent position (readlit.lit.terms.MouthWeighting): (batch, (h, w)) -> (B, h, w).
Weighting = Callable[[dict[str, Any], tuple[int, int]], torch.Tensor]


def load_speech_encoder_config(path: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The SpeechAE config of a stage-1 checkpoint and its encoder's weights."""
    if not Path(path).is_file():
        raise CheckpointError(f"speechae_ckpt={path}: no such checkpoint file (a speechae-stage checkpoint: python "
                              "-m readlit.train experiment=speechae, or experiment=demo_speechae for the demo)")
    checkpoint = load_checkpoint(path, stage="speechae", key="speechae_ckpt")
    return checkpoint["readlit"]["net_config"], submodule_state(checkpoint["state_dict"], "net.encoder")


class A2VLitModule(StageModule):
    """Trains the A2V-DiT with ANS.

    Args:
        net: partial A2V-DiT (or :func:`~readlit.nn.ltx_init.load_ltx_transformer`); ``in_channels`` and
            ``audio_dim`` are filled in from the VAE and the audio encoder.
        vae: the video latent space (frozen).
        ans: the asynchronous forward process and condition dropout.
        optimizer, scheduler, compile: see :class:`~readlit.lit.base.StageModule` (``compile`` compiles the DiT).
        audio_encoder: ``speechae``, ``speechae_tuned``, ``speechae_scratch`` or ``linear``
            (:mod:`readlit.nn.audio_encoder`).
        speechae_ckpt: the stage-1 checkpoint (``speechae`` and ``speechae_tuned`` only).
        speechae_net: SpeechAE arguments for ``speechae_scratch``; for ``linear`` its in/latent sizes are used.
        frontend: the Whisper front end (a partial); checkpoints record it by reference for inference.
        weighting: optional weights of the flow loss per latent position (:mod:`readlit.lit.terms`); None is
            eq. 15 as written.
        motion_context: share of training batches whose motion frame covers the 8 frames before the clip (module
            docstring); needs batches with ``past_video`` and ``past_audio_windows`` (``data.past_frames=8``).
        t_bins: number of equal t2 bins of the validation loss.
        val_seed: seed of the fixed validation noise.
    """

    stage = "a2v"

    def __init__(self, net: Callable[..., A2VDiT], vae: VideoVAE, ans: ANSProcess,
                 optimizer: Callable[..., torch.optim.Optimizer], scheduler: Callable[..., Any] | None = None,
                 compile: bool = False, audio_encoder: str = "speechae", speechae_ckpt: str | None = None,
                 speechae_net: dict[str, Any] | None = None, frontend: Callable[[], WhisperFrontEnd] | None = None,
                 weighting: Weighting | None = None, motion_context: float = 0.0, t_bins: int = 4,
                 val_seed: int = 0):
        super().__init__(optimizer, scheduler, compile)
        self.vae = vae
        self.ans = ans
        self.audio, self.audio_config = self._build_audio(audio_encoder, speechae_ckpt, speechae_net)
        with scope("net"):
            self.net = net(in_channels=vae.latent_channels, audio_dim=self.audio_config["latent_dim"])
        self.frontend_factory, self.weighting = frontend, weighting
        self.motion_context = checks.probability("motion_context", motion_context)
        self.val_seed = checks.integer("val_seed", val_seed, minimum=0)
        checks.integer("t_bins", t_bins, minimum=1)
        self.clip_shape: tuple[int, int] | None = None  # (latent frames after z_R, pixel size) seen in training
        self._frontend_ref: CodecRef | None = None
        self.eval_metrics = per_stage(lambda: {"loss": MeanMetric(), "loss_by_t": BinnedMean(t_bins)})
        # The frozen VAE is a codec: checkpoints reference it (header) instead of storing its weights.
        self.register_state_dict_post_hook(_drop_codec_weights)
        self.register_load_state_dict_pre_hook(_restore_codec_weights)

    # ----------------------------------------------------------------------------------------- parts

    def _build_audio(self, mode: str, ckpt: str | None,
                     sizes: dict[str, Any] | None) -> tuple[nn.Module, dict[str, Any]]:
        """The audio encoder and the config that rebuilds it (:func:`~readlit.nn.audio_encoder.build_audio_encoder`)."""
        if mode not in PRETRAINED:
            if sizes is None:
                raise ConfigError(f"audio_encoder={mode} needs speechae_net (its sizes)")
            config = audio_encoder_config(mode, dict(sizes))
            return build_audio_encoder(config), config
        if ckpt is None:
            raise ConfigError(f"audio_encoder={mode} needs speechae_ckpt (a stage-1 checkpoint: python -m "
                              "readlit.train experiment=speechae)")
        trained, state = load_speech_encoder_config(ckpt)
        wanted = {k: sizes[k] for k in ("in_tokens", "in_dim") if sizes and k in sizes}
        if {k: trained[k] for k in wanted} != wanted:
            raise ConfigError(f"speechae_ckpt={ckpt} was trained on audio windows "
                              f"{ {k: trained[k] for k in wanted} }, but the audio config gives {wanted}; use the "
                              "stage-1 checkpoint of this audio front end")
        config = audio_encoder_config(mode, trained)
        encoder = build_audio_encoder(config)
        encoder.load_state_dict(state)
        return encoder.requires_grad_(mode == "speechae_tuned"), config

    def compiled_modules(self) -> list[nn.Module]:
        return [self.net]

    def pipeline(self) -> TalkingHeadPipeline:
        """The module's own parts as an inference pipeline (no front end: it takes Whisper windows, not waveforms)."""
        frames, size = self.clip_shape or (None, None)
        return TalkingHeadPipeline(self.vae, None, self.audio, self.net, size=size, clip_frames=frames,
                                   time_shift=self.ans.shift)

    # ---------------------------------------------------------------------------------------- batches

    @torch.no_grad()
    def latents(self, batch: Batch) -> torch.Tensor:
        """Clean [z_R, z_1..z_f] (B, C, 1 + f, h, w) from cached latents or the frozen VAE."""
        if "latents" in batch:
            z, z_ref = batch["latents"], batch["ref_latent"]
        else:
            z, z_ref = self.vae.encode(batch["video"]), self.vae.encode_image(batch["ref"])
        return torch.cat([z_ref.to(z.dtype), z], dim=2)

    def audio_latents(self, batch: Batch, frames: int) -> torch.Tensor:
        """C (B, f, hw, da) of the clip's ``frames`` = f latent frames."""
        c = self.audio(batch["audio_windows"])
        if c.shape[1] != frames:
            raise ConfigError(f"the audio encoder gives {c.shape[1]} latent frames for {frames} video latent "
                              "frames; its temporal compression (num_down) must match the VAE's")
        return c

    def context_latents(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """[z_R, z_1..z_f] (B, C, 1 + f, h, w) and C (B, f, hw, da) with z_1 covering the 8 frames before the clip.

        The P = r frames before the clip and the clip's 1 + r·k frames make 1 + r·(k + 1) frames; their leading
        latent (the first past frame alone) is dropped, so latent frame j covers frames r·(j - 1) + 1 .. r·j of
        the past-and-clip sequence, and z_1 ends at the clip's first frame.
        """
        ratio = self.vae.temporal_ratio
        if "past_video" not in batch or "past_audio_windows" not in batch:
            raise ConfigError(f"motion_context={self.motion_context} needs batches with past_video and "
                              f"past_audio_windows (pixel clips with their {ratio} frames before)")
        if batch["past_video"].shape[2] != ratio:
            raise ConfigError(f"motion_context={self.motion_context} needs the {ratio} frames before each clip (the "
                              f"VAE's temporal ratio), not {batch['past_video'].shape[2]}")
        with torch.no_grad():
            z = self.vae.encode(torch.cat([batch["past_video"], batch["video"]], dim=2))[:, :, 1:]
            z0 = torch.cat([self.vae.encode_image(batch["ref"]).to(z.dtype), z], dim=2)
        c = self.audio(torch.cat([batch["past_audio_windows"], batch["audio_windows"]], dim=1))[:, 1:]
        return z0, c

    # --------------------------------------------------------------------------------------- training

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        if self.motion_context and float(torch.rand(())) < self.motion_context:
            z0, c = self.context_latents(batch)
        else:
            z0 = self.latents(batch)
            c = self.audio_latents(batch, z0.shape[2] - 1)
        batch_size, frames = z0.shape[0], z0.shape[2] - 1
        if self.clip_shape is None:
            self.clip_shape = (frames, z0.shape[-1] * self.vae.spatial_ratio)
        noised = self.ans.forward_process(z0)
        z_in, c = drop_conditions(noised.z_t, c, *self.ans.dropout(batch_size, z0.device))
        weight = None if self.weighting is None else self.weighting(batch, tuple(z0.shape[-2:]))
        loss = self.ans.loss(self.net(z_in, noised.t, c), noised, weight)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch_size)
        return loss

    # ------------------------------------------------------------------------------------- evaluation

    def eval_step(self, stage: str, batch: Batch, batch_idx: int) -> None:
        z0 = self.latents(batch)
        batch_size, frames, _, height, width = z0.shape[0], z0.shape[2] - 1, *z0.shape[2:]
        generator = torch.Generator().manual_seed(self.val_seed + batch_idx)
        t = self.ans.sample_times(batch_size, frames, (frames + 1) * height * width, torch.device("cpu"), generator)
        eps = torch.randn(z0.shape, generator=generator, dtype=z0.dtype)
        noised = self.ans.noise(z0, t.to(z0.device), eps.to(z0.device))
        losses = self.ans.per_sample_loss(self.net(noised.z_t, noised.t, self.audio_latents(batch, frames)), noised)
        metrics = self.eval_metrics[stage]
        metrics["loss"].update(losses)
        metrics["loss_by_t"].update(losses, noised.t[:, -1])

    def eval_keys(self) -> list[str]:
        return ["loss", *(f"loss_{name}" for name in self.eval_metrics["val"]["loss_by_t"].names())]

    def eval_values(self, stage: str) -> dict[str, torch.Tensor]:
        metrics = self.eval_metrics[stage]
        return {"loss": metrics["loss"].compute(),
                **{f"loss_{name}": value for name, value in metrics["loss_by_t"].compute().items()}}

    # ------------------------------------------------------------------------------------ checkpoints

    def header(self) -> dict[str, Any]:
        frames, size = self.clip_shape or (None, None)
        return A2VHeader(net_config=self.net.config, audio_config=self.audio_config, frontend=self.frontend_ref(),
                         vae=CodecRef(self.vae.reference(), self.vae.fingerprint()), clip_frames=frames,
                         size=size, time_shift=dataclasses.asdict(self.ans.shift)).to_dict()

    def frontend_ref(self) -> CodecRef:
        """The Whisper front end by reference, built once to fingerprint its weights."""
        if self.frontend_factory is None:
            raise ConfigError("frontend is not set: the a2v stage records the Whisper front end (frontend=${audio}) "
                              "so that inference rebuilds it")
        if self._frontend_ref is None:
            with scope("frontend"):
                frontend = self.frontend_factory()
            self._frontend_ref = CodecRef(frontend.reference(), frontend.fingerprint())
        return self._frontend_ref

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        recorded = A2VHeader.from_checkpoint(checkpoint, "the checkpoint", key="ckpt_path").vae
        recorded.check(self.vae, "VAE", self.vae.fingerprint())


def _drop_codec_weights(module: A2VLitModule, state: dict[str, Any], prefix: str, local_metadata: Any) -> None:
    for key in [k for k in state if k.startswith(f"{prefix}vae.")]:
        del state[key]


def _restore_codec_weights(module: A2VLitModule, state: dict[str, Any], prefix: str, *args: Any) -> None:
    for key, value in module.vae.state_dict(prefix=f"{prefix}vae.").items():
        state.setdefault(key, value)

