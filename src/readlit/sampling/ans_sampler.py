"""ANS inference (Algorithm 1), written clip after clip so it can stream.

A latent sequence of N frames is cut into k clips of f frames that overlap by one; z_R is prepended to every
clip. Algorithm 1 loops over timesteps outside and clips inside: at step T_i -> T_{i+1}, clip 1 runs at
t = [0, T_i ... T_i]; clip j > 1 first takes clip j-1's last frame *at T_{i+1}* as its motion frame and runs at
t = [0, T_{i+1}, T_i ... T_i]. The motion frame is already at T_{i+1}, so the per-frame Euler step leaves it
alone, and clip j at step i needs nothing from clip j-1 but that frame's trajectory. Running every step of
clip 1, then every step of clip 2 with clip 1's last-frame trajectory, and so on, therefore computes the same
numbers as the literal loop order (a test checks it) while the first clip is final after ``steps`` forwards,
whatever the audio length (docs/design.md §8).

Shapes: B batch, C latent channels, N latent frames of the whole video, f latent frames per clip (motion
frame included, reference excluded), h w latent size, hw da audio-latent tokens and width.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import torch
from einops import repeat

from readlit import checks
from readlit.errors import ConfigError
from readlit.flow.schedule import TimeShift, euler_step, sampling_schedule
from readlit.sampling.cfg import Guidance, Velocity


def clip_starts(num_latent: int, clip_frames: int, overlap: int = 1) -> list[int]:
    """First latent frame of each clip of ``clip_frames`` frames, consecutive clips sharing ``overlap`` frames.

    The last clip may run past ``num_latent``: callers pad to :func:`padded_length` and crop afterwards.
    """
    if clip_frames <= overlap:
        raise ConfigError(f"clip_frames={clip_frames} must exceed the overlap of {overlap} frame(s)")
    if num_latent < 1:
        raise ConfigError(f"nothing to generate: {num_latent} latent frames")
    stride = clip_frames - overlap
    clips = max(1, math.ceil((num_latent - overlap) / stride))
    return [j * stride for j in range(clips)]


def padded_length(num_latent: int, clip_frames: int, overlap: int = 1) -> int:
    """Latent frames the clips cover (>= ``num_latent``): audio latents and noise must be this long."""
    return clip_starts(num_latent, clip_frames, overlap)[-1] + clip_frames


@dataclass
class ANSSampler:
    """Algorithm 1 with CFG (config group ``sampler``).

    Every clip is sampled at clip-local positions: the reference at frame position 0 and the clip's frames at
    1..f, as in training, whatever the clip's place in the video (docs/design.md §8). A clip attends to nothing
    outside itself, so only the reference-to-frame distances matter, and these stay within one clip's.

    Args:
        steps: Euler steps (n - 1 in Algorithm 1; the paper uses 8).
        clip_frames: f, latent frames per clip (the training length: 121 pixel frames -> 16); None until a
            pipeline fills in the model's.
        guidance: CFG mode and scales.
        shift: the time shift of the schedule; None until a pipeline fills in the model's training rule
            (sampling elsewhere leaves the times training covered).
        hoist: compute what depends on the clip alone (the model's ``prepare``: RoPE tables, audio and text
            keys/values) once per clip instead of once per step; exact (a test checks it).
    """

    steps: int = 8
    clip_frames: int | None = None
    guidance: Guidance = field(default_factory=Guidance)
    shift: TimeShift | None = None
    hoist: bool = False

    def __post_init__(self) -> None:
        checks.integer("steps", self.steps, minimum=1)
        if self.clip_frames is not None:
            checks.integer("clip_frames", self.clip_frames, minimum=2)

    def schedule(self, tokens: int) -> torch.Tensor:
        """T_1 = 1 > ... > T_n = 0 for clip sequences of ``tokens`` tokens, float64 (steps + 1,)."""
        if self.shift is None:
            raise ConfigError("shift is not set: sample through a pipeline (it uses the model's training shift) or "
                              "set shift")
        return sampling_schedule(self.steps, self.shift.mu_for(tokens))

    def clip_tokens(self, z_ref: torch.Tensor) -> int:
        """L of one clip sequence: (1 + f)·h·w, the count training's shift rule saw."""
        return (1 + self.clip_frames) * z_ref.shape[-2] * z_ref.shape[-1]

    @torch.no_grad()
    def stream(self, model: Velocity, z_ref: torch.Tensor, audio: torch.Tensor,
               noise: torch.Tensor) -> Iterator[tuple[slice, torch.Tensor]]:
        """Generate clip after clip, yielding each clip's new latent frames as soon as they are final.

        Args:
            model: the velocity network (see :class:`~readlit.sampling.cfg.Velocity`).
            z_ref: (B, C, 1, h, w) reference latent.
            audio: (B, N, hw, da) audio latents, N = :func:`padded_length` of the frames wanted.
            noise: (B, C, N, h, w) the initial noise Z(T_1).

        Yields:
            (frames, latents): the slice of the sequence and its latents (B, C, len, h, w); clip 1 gives f frames,
            every later clip f - 1 (its first frame is the previous clip's last).
        """
        if audio.shape[1] != noise.shape[2]:
            raise ConfigError(f"noise has {noise.shape[2]} latent frames and audio {audio.shape[1]}; both must be "
                              f"padded_length(N, {self.clip_frames}) = a whole number of overlapping clips")
        yield from self.stream_windows(model, z_ref, noise, lambda frames: audio[:, frames])

    @torch.no_grad()
    def stream_windows(self, model: Velocity, z_ref: torch.Tensor, noise: torch.Tensor,
                       audio_of: Callable[[slice], torch.Tensor]) -> Iterator[tuple[slice, torch.Tensor]]:
        """:meth:`stream` with each clip's audio latents asked of ``audio_of(frames)`` (B, f, hw, da) only when the
        clip starts, so a lazy audio front end (:class:`~readlit.audio_latents.AudioLatents`) computes no more
        audio before the first clip than the first clip needs."""
        frames = noise.shape[2]
        if padded_length(frames, self.clip_frames) != frames:
            raise ConfigError(f"noise has {frames} latent frames; it must be padded_length(N, {self.clip_frames}) "
                              "= a whole number of overlapping clips")
        starts = clip_starts(frames, self.clip_frames)
        pieces = ((audio_of(slice(s, s + self.clip_frames)), noise[:, :, s: s + self.clip_frames]) for s in starts)
        for start, clip in zip(starts, self.stream_clips(model, z_ref, pieces), strict=True):
            first = 0 if start == 0 else 1
            yield slice(start + first, start + self.clip_frames), clip[:, :, first:]

    @torch.no_grad()
    def stream_clips(self, model: Velocity, z_ref: torch.Tensor,
                     clips: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> Iterator[torch.Tensor]:
        """Algorithm 1 over clips handed in one at a time, for sequences of unknown length (live audio).

        ``clips`` yields each clip's audio latents (B, f, hw, da) and initial noise (B, C, f, h, w) only when the
        sampler asks for it, so a caller may block there until enough audio has arrived. A later clip's frame 0 is
        the previous clip's last frame (its noise is never read). Yields each clip's final latents (B, C, f, h, w).
        """
        schedule = self.schedule(self.clip_tokens(z_ref))
        previous_last: list[torch.Tensor] | None = None
        for audio, noise in clips:
            times = schedule.to(noise.dtype).to(noise.device)
            clip, previous_last = self._clip(model, z_ref, audio, noise.clone(), times, previous_last)
            yield clip

    def _clip(self, model: Velocity, z_ref: torch.Tensor, audio: torch.Tensor, x: torch.Tensor,
              times: torch.Tensor, motion: list[torch.Tensor] | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Every step of one clip; returns its final latents (B, C, f, h, w) and its last frame after each step."""
        batch = x.shape[0]
        velocity = self.guidance.bind(model, audio, self.hoist)
        last = [x[:, :, -1]]
        for i in range(len(times) - 1):
            t = repeat(times[i], " -> b f", b=batch, f=1 + self.clip_frames).clone()
            t_next = repeat(times[i + 1], " -> b f", b=batch, f=1 + self.clip_frames).clone()
            t[:, 0] = t_next[:, 0] = 0.0
            if motion is not None:
                x[:, :, 0] = motion[i + 1]
                t[:, 1] = times[i + 1]
            z = torch.cat([z_ref, x], dim=2)
            v = velocity(z, t)
            x = euler_step(z, v, t, t_next)[:, :, 1:]
            last.append(x[:, :, -1])
        return x, last

    def sample(self, model: Velocity, z_ref: torch.Tensor, audio: torch.Tensor, noise: torch.Tensor,
               num_latent: int | None = None) -> torch.Tensor:
        """All clips joined: (B, C, N, h, w), cropped to ``num_latent`` frames when given."""
        pieces = [latents for _, latents in self.stream(model, z_ref, audio, noise)]
        return torch.cat(pieces, dim=2)[:, :, :num_latent]
