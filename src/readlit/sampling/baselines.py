"""The long-video baselines of the ANS ablation (paper Table 2): clips without motion guidance.

- :func:`independent_clips` ("w/o ANS"): back-to-back clips of f frames, each sampled synchronously
  (t = [0, T_i ... T_i]) from its own noise with the same reference, then concatenated.
- :func:`overlap_fuse`: clips overlapping by ``overlap`` frames, all sampled synchronously at every step; the
  velocities of frames two clips share are blended with linear ramps (as Sonic / EmotiveTalk-style
  overlap-and-fuse does), and one Euler step moves the whole sequence.

Shapes as in :mod:`readlit.sampling.ans_sampler`.
"""

from __future__ import annotations

import torch
from einops import repeat

from readlit.flow.schedule import euler_step
from readlit.sampling.ans_sampler import ANSSampler, clip_starts
from readlit.sampling.cfg import Velocity


def _times(value: torch.Tensor, batch: int, frames: int) -> torch.Tensor:
    """(B, 1 + frames) flow times: 0 for the reference, ``value`` for every clip frame."""
    t = repeat(value, " -> b f", b=batch, f=1 + frames).clone()
    t[:, 0] = 0.0
    return t


def _step(sampler: ANSSampler, model: Velocity, z_ref: torch.Tensor, x: torch.Tensor, audio: torch.Tensor,
          t: torch.Tensor) -> torch.Tensor:
    """Guided velocity of one clip's frames (B, C, f, h, w), reference dropped from the output."""
    return sampler.guidance(model, torch.cat([z_ref, x], dim=2), t, audio)[:, :, 1:]


@torch.no_grad()
def independent_clips(sampler: ANSSampler, model: Velocity, z_ref: torch.Tensor, audio: torch.Tensor,
                      noise: torch.Tensor) -> torch.Tensor:
    """"w/o ANS": noise and audio (B, C, k·f, h, w) / (B, k·f, hw, da) -> latents (B, C, k·f, h, w)."""
    f, times = sampler.clip_frames, sampler.schedule(sampler.clip_tokens(z_ref)).to(noise)
    batch, clips = noise.shape[0], []
    for start in range(0, noise.shape[2], f):
        x, span = noise[:, :, start:start + f], slice(start, start + f)
        for i in range(len(times) - 1):
            t, t_next = _times(times[i], batch, f), _times(times[i + 1], batch, f)
            v = _step(sampler, model, z_ref, x, audio[:, span], t)
            x = euler_step(x, v, t[:, 1:], t_next[:, 1:])
        clips.append(x)
    return torch.cat(clips, dim=2)


def fuse_weights(frames: int, overlap: int) -> torch.Tensor:
    """(frames,) blending weights of one clip: linear ramps over the ``overlap`` frames at each end."""
    ramp = torch.arange(1, overlap + 1, dtype=torch.float64) / (overlap + 1)
    weights = torch.ones(frames, dtype=torch.float64)
    weights[:overlap], weights[frames - overlap:] = ramp, ramp.flip(0)
    return weights


@torch.no_grad()
def overlap_fuse(sampler: ANSSampler, model: Velocity, z_ref: torch.Tensor, audio: torch.Tensor,
                 noise: torch.Tensor, overlap: int) -> torch.Tensor:
    """Overlap-and-fuse: noise (B, C, N, h, w) with N = padded_length(N, f, overlap) -> latents, same shape."""
    f, times = sampler.clip_frames, sampler.schedule(sampler.clip_tokens(z_ref)).to(noise)
    batch, frames = noise.shape[0], noise.shape[2]
    starts = clip_starts(frames, f, overlap)
    weights = fuse_weights(f, overlap).to(noise)
    total = torch.zeros(frames, dtype=noise.dtype, device=noise.device)
    for start in starts:
        total[start:start + f] += weights
    z = noise.clone()
    for i in range(len(times) - 1):
        velocity = torch.zeros_like(z)
        for start in starts:
            span = slice(start, start + f)
            v = _step(sampler, model, z_ref, z[:, :, span], audio[:, span], _times(times[i], batch, f))
            velocity[:, :, span] += v * weights[None, None, :, None, None]
        velocity = velocity / total[None, None, :, None, None]
        z = z + (times[i + 1] - times[i]) * velocity
    return z
