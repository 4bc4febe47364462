"""Portrait + speech -> talking-head video: the parts a trained READ model needs at inference, in one place.

:meth:`TalkingHeadPipeline.from_checkpoint` is the one way from an a2v checkpoint to inference (``generate``,
``evaluate``, the demo and the training preview all use it or the clip path :meth:`~TalkingHeadPipeline.render_clip`).
Nothing here imports Lightning.

Frame bookkeeping (25 fps, 16 kHz, r = 8 the VAE's temporal ratio, :mod:`readlit.frames`): audio of A samples
covers F_a = ceil(A / (sr / fps)) video frames. The latent sequence needs N = 1 + ceil((F_a - 1) / r) latent
frames, padded up to whole overlapping clips (:func:`~readlit.sampling.ans_sampler.padded_length`); the waveform
is padded with silence to the pixel frames those latents decode to, 1 + r·(N_pad - 1), so every latent frame has
its audio. The decoded video is cut back to F_a frames, so its duration matches the audio's within one frame.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange
from tqdm.auto import tqdm

from readlit.audio import WhisperFrontEnd
from readlit.audio_latents import AudioLatents
from readlit.checkpoint import A2VHeader, CodecRef, load_checkpoint, submodule_state, trained_state
from readlit.errors import AudioError, CheckpointError, ConfigError, one_line
from readlit.flow.schedule import TimeShift
from readlit.frames import latents_covering, pixel_frames, pixel_span
from readlit.nn.a2v_dit import A2VDiT
from readlit.nn.audio_encoder import build_audio_encoder
from readlit.sampling.ans_sampler import ANSSampler, clip_starts, padded_length
from readlit.sampling.baselines import independent_clips, overlap_fuse
from readlit.sampling.cfg import Velocity
from readlit.sampling.speed import SpeedLevers
from readlit.utils.ahead import run_ahead
from readlit.vae import VideoVAE

METHODS = ("ans", "independent", "fuse")


def check_method(method: str, key: str = "method") -> str:
    """``method`` if it is a long-video method, else a ConfigError naming the config ``key``."""
    if method not in METHODS:
        raise ConfigError(f"{key}={method!r}: expected one of {', '.join(METHODS)}")
    return method


def clip_overlap(method: str, clip_frames: int) -> int:
    """Latent frames consecutive clips share: ANS's motion frame, none "w/o ANS", a quarter clip when fusing."""
    return {"ans": 1, "independent": 0, "fuse": max(1, clip_frames // 4)}[check_method(method)]


@dataclass(frozen=True)
class FramePlan:
    """How many frames of each kind a piece of audio needs."""

    audio_frames: int   # F_a: video frames the audio covers (the output's length)
    latent_frames: int  # N: latent frames that decode to at least F_a frames
    padded_latent: int  # N_pad: N rounded up to whole overlapping clips
    padded_frames: int  # 1 + r_t·(N_pad - 1): pixel frames generated (and audio samples padded to)


def plan_frames(samples: int, sample_rate: int, fps: int, temporal_ratio: int, clip_frames: int,
                overlap: int = 1) -> FramePlan:
    """The frame counts for ``samples`` of audio (see the module docstring), clips sharing ``overlap`` frames."""
    if samples < 1:
        raise AudioError("the audio has no samples: nothing to say, nothing to generate")
    audio_frames = math.ceil(samples * fps / sample_rate)
    latent = latents_covering(audio_frames, temporal_ratio)
    padded = padded_length(latent, clip_frames, overlap)
    return FramePlan(audio_frames, latent, padded, pixel_frames(padded, temporal_ratio))


@dataclass
class TalkingHeadPipeline:
    """A trained READ model, ready to animate a portrait.

    Args:
        vae: the video VAE (frozen).
        frontend: Whisper front end: waveform -> per-frame windows (F, Hw, Da); None when the pipeline is only
            given windows (:meth:`render_clip`).
        encode_audio: the audio encoder: windows (B, F, Hw, Da) -> audio latents (B, f, hw, da).
        velocity: the A2V-DiT as the sampler calls it.
        size: pixel size of the model's frames (square).
        clip_frames: latent frames per clip the model was trained on (the sampler's default).
        time_shift: the shift rule of the model's training times (the sampler's schedule shares it).
        fps, sample_rate: video frame rate and audio sample rate.
        overlap_decode: when streaming, denoise clip j + 1 while clip j is decoded (``speed.overlap_decode``).
    """

    vae: VideoVAE
    frontend: WhisperFrontEnd | None
    encode_audio: Callable[[torch.Tensor], torch.Tensor]
    velocity: Velocity
    size: int | None
    clip_frames: int | None = None
    time_shift: TimeShift | None = None
    fps: int = 25
    sample_rate: int = 16000
    overlap_decode: bool = False

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu", ema: bool = True,
                        vae_path: str | None = None) -> TalkingHeadPipeline:
        """The pipeline an a2v checkpoint describes, on ``device``.

        The DiT and the audio encoder come from the checkpoint (its EMA weights when ``ema`` and it has them); the
        VAE and the Whisper front end are rebuilt from their references and refused unless their weights are the
        ones the model was trained with.

        Args:
            path: the ``.ckpt`` file.
            device: where to run.
            ema: use the EMA weights when the checkpoint has them.
            vae_path: a folder holding the training VAE when it has moved since training (fingerprint-checked).
        """
        checkpoint = load_checkpoint(path, stage="a2v", key="ckpt")
        header = A2VHeader.from_checkpoint(checkpoint, path)
        if header.size is None or header.clip_frames is None:
            raise CheckpointError(f"ckpt={path} records no training clip (saved before its first training step)")
        vae_ref = header.vae
        if vae_path is not None and not Path(vae_path).expanduser().is_dir():
            raise CheckpointError(f"vae_path={vae_path}: no such folder (it names the folder the training VAE "
                                  "moved to)")
        if vae_path is not None:
            vae_ref = replace(vae_ref, kwargs={**vae_ref.kwargs, "pretrained": vae_path, "subfolder": None,
                                               "architecture": None, "logvar_init": None})
        vae = _build_codec(VideoVAE, vae_ref, "VAE", "vae_path")
        frontend = _build_codec(WhisperFrontEnd, header.frontend, "Whisper front end", None)
        state, _ = trained_state(checkpoint, ema)
        audio = build_audio_encoder(header.audio_config)
        net = A2VDiT(**header.net_config)
        for name, module in (("net", net), ("audio", audio)):
            _load_weights(module, submodule_state(state, name), f"ckpt={path} ({name})")
        return cls(vae.to(device), frontend.to(device), audio.to(device).eval(), net.to(device).eval(),
                   size=header.size, clip_frames=header.clip_frames, time_shift=TimeShift(**header.time_shift))

    def with_speed(self, levers: SpeedLevers) -> TalkingHeadPipeline:
        """A copy of this pipeline (sharing its weights) with speed levers pulled (:mod:`readlit.sampling.speed`)."""
        levers.check_device(next(self.vae.parameters()).device)
        return replace(self, velocity=levers.velocity(self.velocity), overlap_decode=levers.overlap_decode)

    def sampler_for(self, sampler: ANSSampler) -> ANSSampler:
        """``sampler`` with the model's training clip length and time shift where it names none."""
        if sampler.clip_frames is None:
            if self.clip_frames is None:
                raise ConfigError("clip_frames is not set and the model records no training clip length")
            sampler = replace(sampler, clip_frames=self.clip_frames)
        elif self.clip_frames is not None and sampler.clip_frames > self.clip_frames:
            # Longer clips put frames at positions training never showed the model (and cost quadratically more).
            raise ConfigError(f"clip_frames={sampler.clip_frames} is longer than the {self.clip_frames} latent frames "
                              "the model was trained on; use at most that (null: the model's own)")
        if sampler.shift is None:
            if self.time_shift is None:
                raise ConfigError("shift is not set and the model records no training time shift")
            sampler = replace(sampler, shift=self.time_shift)
        return sampler

    @torch.no_grad()
    def stream(self, image: torch.Tensor, waveform: torch.Tensor, sampler: ANSSampler,
               generator: torch.Generator) -> Iterator[tuple[slice, torch.Tensor]]:
        """Generate clip by clip, yielding decoded frames as soon as each clip is final.

        Args:
            image: (3, H, W) in [-1, 1], H = W = ``size``.
            waveform: (A,) mono at ``sample_rate``.
            generator: the random source of the initial noise (same seed, same video).

        Yields:
            (frames, video): which output frames, and those frames (3, F_chunk, H, W) in [-1, 1], as
            :class:`ClipDecoder` decodes them (frames near a seam may differ slightly from :meth:`generate`'s
            tiled decode).
        """
        plan, clips = self.latent_clips(image, waveform, sampler, generator)
        decoder = ClipDecoder(self.vae, plan.audio_frames)
        if self.overlap_decode:  # the sampler runs one clip ahead while this thread decodes
            clips = run_ahead(clips, next(self.vae.parameters()).device)
        for span, latents in clips:
            decoded = decoder(span, latents)
            if decoded is None:
                return
            yield decoded

    def latent_clips(self, image: torch.Tensor, waveform: torch.Tensor, sampler: ANSSampler,
                     generator: torch.Generator) -> tuple[FramePlan, Iterator[tuple[slice, torch.Tensor]]]:
        """Algorithm 1 clip by clip: the frame plan, and an iterator of each clip's final latents.

        The reference latent and the noise of the whole padded sequence are computed here; the audio latents clip by
        clip as the sampler reaches each clip (:class:`~readlit.audio_latents.AudioLatents`), so the first clip
        waits for its own audio's front end only. The iterator yields :meth:`ANSSampler.stream`'s (latent frames,
        latents (1, C, len, h, w)), padding clips past ``plan.latent_frames`` included.
        """
        sampler = self.sampler_for(sampler)
        plan = plan_frames(len(waveform), self.sample_rate, self.fps, self.vae.temporal_ratio, sampler.clip_frames)
        device = next(self.vae.parameters()).device
        z_ref, audio = self._conditions(image, waveform, plan, device)
        noise = self._noise(z_ref, plan, generator)
        return plan, sampler.stream_windows(self.velocity, z_ref, noise, audio.__getitem__)

    @torch.no_grad()
    def generate(self, image: torch.Tensor, waveform: torch.Tensor, sampler: ANSSampler,
                 generator: torch.Generator, progress: bool = False, method: str = "ans",
                 on_clip: Callable[[slice, torch.Tensor], None] | None = None) -> torch.Tensor:
        """The whole video at once: (3, F_a, H, W) in [-1, 1], decoded in the VAE's temporal tiles.

        ``method`` is how clips become a long video: ``ans`` (Algorithm 1), or the ablation's baselines
        ``independent`` (synchronous clips side by side, "w/o ANS") and ``fuse`` (clips overlapping by a quarter,
        blended). ``progress`` shows a bar over the clips as the ANS sampler finishes them; ``on_clip`` (ANS only)
        is called with each clip's latent frames and latents as soon as they are final (a server's progress and
        preview), padding clips included.
        """
        sampler = self.sampler_for(sampler)
        overlap = clip_overlap(method, sampler.clip_frames)
        if method == "ans":
            plan, clips = self.latent_clips(image, waveform, sampler, generator)
            total = len(clip_starts(plan.padded_latent, sampler.clip_frames))
            pieces = []
            for span, z in tqdm(clips, total=total, desc="clips", unit="clip", disable=not progress):
                pieces.append(z)
                if on_clip is not None:
                    on_clip(span, z)
            return self.vae.decode(torch.cat(pieces, dim=2)[:, :, : plan.latent_frames])[0, :, : plan.audio_frames]
        plan = plan_frames(len(waveform), self.sample_rate, self.fps, self.vae.temporal_ratio, sampler.clip_frames,
                           overlap)
        device = next(self.vae.parameters()).device
        z_ref, audio = self._conditions(image, waveform, plan, device)
        audio = audio.all()
        noise = self._noise(z_ref, plan, generator)
        if method == "independent":
            latents = independent_clips(sampler, self.velocity, z_ref, audio, noise)
        else:
            latents = overlap_fuse(sampler, self.velocity, z_ref, audio, noise, overlap)
        return self.vae.decode(latents[:, :, : plan.latent_frames])[0, :, : plan.audio_frames]

    @torch.no_grad()
    def render_clip(self, z_ref: torch.Tensor, windows: torch.Tensor, sampler: ANSSampler,
                    generator: torch.Generator) -> torch.Tensor:
        """One clip of the training length from a reference latent and Whisper windows (the training preview).

        Args:
            z_ref: (1, C, 1, h, w) reference latent.
            windows: (1, F, Hw, Da) Whisper windows of the clip's F = 1 + r·(f - 1) frames.
            generator: the random source of the initial noise.

        Returns:
            (3, F, H, W) in [-1, 1].
        """
        audio = self.encode_audio(windows)
        sampler = self.sampler_for(replace(sampler, clip_frames=audio.shape[1]))
        noise = torch.randn((1, z_ref.shape[1], audio.shape[1], *z_ref.shape[-2:]), generator=generator).to(z_ref)
        latents = sampler.sample(self.velocity, z_ref, audio, noise)
        return self.vae.decode(latents)[0].float().clamp(-1, 1)

    def _conditions(self, image: torch.Tensor, waveform: torch.Tensor, plan: FramePlan,
                    device: torch.device) -> tuple[torch.Tensor, AudioLatents]:
        """Reference latent (1, C, 1, h, w) and the audio latents of N_pad frames, computed when sliced."""
        if self.frontend is None:
            raise ConfigError("this pipeline has no Whisper front end: it renders clips from windows only")
        samples = plan.padded_frames * self.sample_rate // self.fps
        padded = torch.zeros(samples, dtype=torch.float32)
        padded[: len(waveform)] = waveform[:samples]
        audio = AudioLatents(self.frontend, self.encode_audio, padded, plan.padded_latent, self.vae.temporal_ratio,
                             device)
        z_ref = self.vae.encode_image(rearrange(image, "c h w -> 1 c h w").to(device))
        return z_ref, audio

    def _noise(self, z_ref: torch.Tensor, plan: FramePlan, generator: torch.Generator) -> torch.Tensor:
        """Z(T_1): (1, C, N_pad, h, w) drawn on the CPU, so a seed gives the same video on any device."""
        _, channels, _, height, width = z_ref.shape
        noise = torch.randn(1, channels, plan.padded_latent, height, width, generator=generator)
        return noise.to(z_ref)


class ClipDecoder:
    """Decode ANS clips one at a time, as they come out of the sampler (streaming).

    Each clip is decoded from its own latent frames led by the previous clip's last one (decoded as a lone first
    frame and dropped), so frames near a seam may differ slightly from one tiled decode of the whole sequence.

    Args:
        vae: the video VAE.
        audio_frames: F_a, the output's length: frames past it are cut, clips starting past it give nothing.
    """

    def __init__(self, vae: VideoVAE, audio_frames: int) -> None:
        self.vae = vae
        self.audio_frames = audio_frames
        self.previous: torch.Tensor | None = None

    @torch.no_grad()
    def __call__(self, span: slice, latents: torch.Tensor) -> tuple[slice, torch.Tensor] | None:
        """(output frames, video (3, F_chunk, H, W) in [-1, 1]) of the clip's new latent frames ``span``
        (latents (1, C, len, h, w)); None for a padding clip wholly past the audio."""
        ratio = self.vae.temporal_ratio
        start = pixel_span(span.start, ratio).start
        if start >= self.audio_frames:
            return None
        context = latents if self.previous is None else torch.cat([self.previous, latents], dim=2)
        video = self.vae.decode(context)[0]
        first = context.shape[2] - latents.shape[2]  # the previous clip's last latent decodes to one frame
        stop = min(start + video.shape[1] - first, self.audio_frames)
        self.previous = latents[:, :, -1:]
        return slice(start, stop), video[:, first: first + stop - start]


def to_uint8_frames(video: torch.Tensor) -> np.ndarray:
    """(3, F, H, W) in [-1, 1] -> (F, H, W, 3) uint8 for the mp4 writer."""
    pixels = ((video.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return rearrange(pixels, "c f h w -> f h w c").cpu().numpy()


def _build_codec(kind: Any, ref: CodecRef, name: str, path_key: str | None) -> Any:
    """A frozen codec rebuilt from its reference, refused unless its weights are the recorded ones."""
    try:
        codec = kind(**ref.kwargs)
    except CheckpointError as err:
        hint = f"; if it has moved, point {path_key}= at it" if path_key else ""
        raise CheckpointError(f"the {name} this checkpoint was trained with cannot be loaded: {err}{hint}") from err
    ref.check(codec, name, codec.fingerprint())
    return codec


def _load_weights(module: torch.nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Strict load; a checkpoint with missing or foreign weights is one line, not a state-dict dump."""
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(f"{where} does not match the model its header describes ({one_line(err)})") from err
