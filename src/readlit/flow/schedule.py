"""Sampling time schedules in the flow-time convention (t = 1 noise -> t = 0 data) and the per-token Euler step.

The schedule is the uniform grid 1 = T_1 > ... > T_n = 0 pushed through the same shift as training's
shifted logit-normal: shift(t) = e^mu / (e^mu + 1/t - 1). mu > 0 spends more steps at high noise, as larger
token counts need (LTX: mu from 0.95 at 1024 tokens to 2.05 at 4096).
"""

from __future__ import annotations

import math

import torch
from einops import rearrange

from readlit.errors import ConfigError


def shift_time(t: torch.Tensor, mu: float) -> torch.Tensor:
    """Apply the time shift of mean ``mu`` to flow times t in [0, 1] (fixes 0 and 1)."""
    scale = math.exp(mu)
    return torch.where(t > 0, scale * t / (scale * t + (1 - t)), torch.zeros_like(t))


def sampling_schedule(steps: int, mu: float) -> torch.Tensor:
    """T_1 = 1 > T_2 > ... > T_{steps+1} = 0: ``steps`` Euler steps, float64 (steps + 1,)."""
    if steps < 1:
        raise ConfigError(f"sampler.steps={steps} must be at least 1")
    return shift_time(torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64), mu)


def euler_step(z: torch.Tensor, v: torch.Tensor, t: torch.Tensor, t_next: torch.Tensor) -> torch.Tensor:
    """Per-frame Euler step z_{t'} = z_t + (t' - t)·v; a frame with t' = t (reference, motion frame) stays put.

    Args:
        z, v: (B, C, f, h, w).
        t, t_next: (B, f) current and next time of each latent frame.
    """
    dt = rearrange(t_next - t, "b f -> b 1 f 1 1").to(z.dtype)
    return z + dt * v
