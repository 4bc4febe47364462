"""Flow times: the one shift rule shared by training and sampling, the sampling schedule, and the Euler step.

Flow-time convention (docs/design.md §3): t = 1 noise -> t = 0 data.

**One shift rule.** Training draws times from the shifted logit-normal sigmoid(N(mu, sigma)) (paper eq. 12,
Esser et al. 2024), and sampling walks the uniform grid 1 = u_1 > ... > u_n = 0 pushed through the same shift,
T_i = sigmoid(mu + logit(u_i)) = e^mu / (e^mu + 1/u_i - 1). Both read mu from one :class:`TimeShift`, as LTX-Video
does (its trainer and its pipeline compute the same token-count shift), so every time the sampler evaluates is
where training put its mass. A sampler shifted differently from training leaves the trained range: at paper
scale a training shift of 2.14 against a sampling shift of 0.95 put the last two of eight steps where training
has probability 1e-4 and 7e-7.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from einops import rearrange

from readlit import checks
from readlit.errors import ConfigError


@dataclass(frozen=True)
class TimeShift:
    """mu of the time shift, fixed or from the token count of one clip sequence (config ``model.ans.shift``).

    Args:
        mu: a fixed shift; None = LTX's rule, linear in the tokens L of the sequence the network sees (reference
            included): ``base_shift`` at ``base_tokens``, ``max_shift`` at ``max_tokens``, extrapolated beyond.
        base_tokens, max_tokens, base_shift, max_shift: LTX-Video's constants (0.95 at 1024, 2.05 at 4096).
    """

    mu: float | None = None
    base_tokens: int = 1024
    max_tokens: int = 4096
    base_shift: float = 0.95
    max_shift: float = 2.05

    def __post_init__(self) -> None:
        if self.mu is not None:
            checks.number("mu", self.mu)
        for name in ("base_tokens", "max_tokens"):
            checks.integer(name, getattr(self, name), minimum=1)
        for name in ("base_shift", "max_shift"):
            checks.number(name, getattr(self, name))
        if self.max_tokens <= self.base_tokens:
            raise ConfigError(f"max_tokens={self.max_tokens} must exceed base_tokens={self.base_tokens}")

    def mu_for(self, tokens: int) -> float:
        """The shift for a sequence of ``tokens`` tokens."""
        if self.mu is not None:
            return float(self.mu)
        slope = (self.max_shift - self.base_shift) / (self.max_tokens - self.base_tokens)
        return self.base_shift + slope * (tokens - self.base_tokens)


def shift_time(t: torch.Tensor, mu: float) -> torch.Tensor:
    """Apply the time shift of mean ``mu`` to flow times t in [0, 1] (fixes 0 and 1)."""
    scale = math.exp(mu)
    return torch.where(t > 0, scale * t / (scale * t + (1 - t)), torch.zeros_like(t))


def sampling_schedule(steps: int, mu: float) -> torch.Tensor:
    """T_1 = 1 > T_2 > ... > T_{steps+1} = 0: ``steps`` Euler steps, float64 (steps + 1,)."""
    checks.integer("steps", steps, minimum=1)
    return shift_time(torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64), mu)


def euler_step(z: torch.Tensor, v: torch.Tensor, t: torch.Tensor, t_next: torch.Tensor) -> torch.Tensor:
    """Per-frame Euler step z_{t'} = z_t + (t' - t)·v; a frame with t' = t (reference, motion frame) stays put.

    Args:
        z, v: (B, C, f, h, w).
        t, t_next: (B, f) current and next time of each latent frame.
    """
    dt = rearrange(t_next - t, "b f -> b 1 f 1 1").to(z.dtype)
    return z + dt * v
