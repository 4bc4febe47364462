"""ANS training (paper §3.3, eq. 11-15): the asynchronous forward process and its loss.

Flow time convention (docs/design.md §3, the only place besides :mod:`readlit.flow.schedule`): t = 0 is data,
t = 1 is noise, z_t = (1 - t)·z0 + t·eps, target velocity v = eps - z0, and sampling steps per token
z_{t'} = z_t + (t' - t)·v (:func:`euler_step`, shared with the sampler).

The latent sequence is [z_R, z_1 ... z_f] (B, C, 1 + f, h, w). Per-frame times are t = [0, t1, t2 ... t2] with
t1 < t2 (eq. 12): t2 is drawn from the shifted logit-normal sigmoid(N(mu, sigma)), whose mu the sampler shares
(:class:`~readlit.flow.schedule.TimeShift`), and t1 from the same distribution truncated below t2. The paper
says "t1, t2 ~ Sigmoid(N(mu, sigma)), t1 < t2"; drawing a sorted pair instead would make t2 the larger of two
draws, which at paper scale leaves the sampler's last step (targets at T_7 = 0.55) with 0.14 % of the training
mass within ±0.05, where the truncated draw gives 2.5 % (``tests/unit/test_ans.py`` pins both configs). z_1 is
the motion frame, which at inference is the previous clip's last frame, already one step less noisy.

Two shares of samples depart from t1 < t2, each for a case inference has: t1 = t2 (``sync_prob``; the first
clip has no motion frame) and t1 = 0 (``clean_prob``; in the last step every later clip's motion frame is
already clean, T_n = 0, which the logit-normal almost never draws). The loss is the MSE of the velocity over
every frame but z_R.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from einops import rearrange

from readlit import checks
from readlit.errors import ConfigError
from readlit.flow.schedule import TimeShift, euler_step

__all__ = ["ANSProcess", "NoisedBatch", "euler_step"]


@dataclass
class NoisedBatch:
    """One noised training sequence: z_t (B, C, 1 + f, h, w), times t (B, 1 + f), target v, loss mask (1 + f,)."""

    z_t: torch.Tensor
    t: torch.Tensor
    target: torch.Tensor
    mask: torch.Tensor


@dataclass
class ANSProcess:
    """The asynchronous forward process and condition dropout (config ``model.ans``).

    Args:
        shift: the time shift mu (shared with the sampler).
        sigma: the logit-normal's standard deviation (LTX trainer: 1.0).
        sync_prob: share of samples with t1 = t2 (no motion frame ahead in time).
        clean_prob: share of samples with t1 = 0 (a clean motion frame, as in the last sampling step).
        drop_audio: probability that a sample's audio is replaced by zeros (CFG's unconditional audio).
        drop_ref: probability that z_R is replaced by zeros.
        drop_both: probability that both are dropped (drawn first; the two above apply to the rest).
    """

    shift: TimeShift = field(default_factory=TimeShift)
    sigma: float = 1.0
    sync_prob: float = 0.1
    clean_prob: float = 0.1
    drop_audio: float = 0.1
    drop_ref: float = 0.05
    drop_both: float = 0.05

    def __post_init__(self) -> None:
        for name in ("sync_prob", "clean_prob", "drop_audio", "drop_ref", "drop_both"):
            checks.probability(name, getattr(self, name))
        if self.sync_prob + self.clean_prob > 1.0:
            raise ConfigError(f"sync_prob={self.sync_prob} and clean_prob={self.clean_prob} sum past 1")
        checks.number("sigma", self.sigma, above=0.0)

    def sample_times(self, batch: int, frames: int, tokens: int, device: torch.device,
                     generator: torch.Generator | None = None) -> torch.Tensor:
        """t = [0, t1, t2 ... t2] per sample (eq. 12): (B, 1 + f) for ``frames`` = f >= 1 frames after z_R."""
        mu = self.shift.mu_for(tokens)
        normal = torch.randn((batch, 2), device=device, generator=generator)
        t2 = torch.sigmoid(mu + self.sigma * normal[:, 0])
        # inverse CDF of the logit-normal at a uniform share of t2's own CDF: the distribution truncated below t2
        below = torch.special.ndtr(normal[:, 1]) * torch.special.ndtr(normal[:, 0])
        t1 = torch.sigmoid(mu + self.sigma * torch.special.ndtri(below))
        share = torch.rand(batch, device=device, generator=generator)
        t1 = torch.where(share < self.sync_prob, t2, t1)
        t1 = torch.where((share >= self.sync_prob) & (share < self.sync_prob + self.clean_prob), 0.0, t1)
        t = t2[:, None].repeat(1, 1 + frames)
        t[:, 0] = 0.0
        t[:, 1] = t1
        return t

    def time_mass(self, tokens: int, low: float, high: float) -> tuple[float, float]:
        """Training probability that the motion frame's t1, and the targets' t2, fall in [low, high] (exact)."""
        mu = self.shift.mu_for(tokens)

        def cdf(t: float) -> float:  # of one logit-normal draw
            if t <= 0.0:
                return 0.0
            if t >= 1.0:
                return 1.0
            return 0.5 * (1.0 + math.erf((math.log(t / (1.0 - t)) - mu) / (self.sigma * math.sqrt(2.0))))

        def truncated(t: float) -> float:  # CDF of t1 drawn below t2: P(t1 <= t) = F(t)·(1 - ln F(t))
            value = cdf(t)
            return value * (1.0 - math.log(value)) if value > 0.0 else 0.0

        target = cdf(high) - cdf(low)
        below = 1.0 - self.sync_prob - self.clean_prob
        motion = (self.sync_prob * target + below * (truncated(high) - truncated(low))
                  + self.clean_prob * float(low <= 0.0 <= high))
        return motion, target

    def noise(self, z0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> NoisedBatch:
        """Eq. 13-14: z_t = (1 - t)·z0 + t·eps per frame, v = eps - z0, mask without the reference.

        Args:
            z0: (B, C, 1 + f, h, w) clean [z_R, z_1..z_f].
            t: (B, 1 + f) per-frame times (0 for z_R, so z_R stays clean).
            eps: noise like z0.
        """
        tt = rearrange(t, "b f -> b 1 f 1 1").to(z0.dtype)
        mask = torch.ones(z0.shape[2], device=z0.device, dtype=z0.dtype)
        mask[0] = 0.0
        return NoisedBatch(z_t=(1 - tt) * z0 + tt * eps, t=t, target=eps - z0, mask=mask)

    def loss(self, v_hat: torch.Tensor, noised: NoisedBatch, weight: torch.Tensor | None = None) -> torch.Tensor:
        """Eq. 15: MSE(v_hat, v) averaged over every frame but the reference (which gets no gradient).

        ``weight`` (B, h, w) > 0 optionally weighs latent positions (a weighted mean over each frame).
        """
        return self.per_sample_loss(v_hat, noised, weight).mean()

    def per_sample_loss(self, v_hat: torch.Tensor, noised: NoisedBatch,
                        weight: torch.Tensor | None = None) -> torch.Tensor:
        """(B,) the loss of each sample (for binning by t); ``weight`` as in :meth:`loss`."""
        error = (v_hat.float() - noised.target.float()).square().mean(dim=1)  # (B, 1 + f, h, w)
        if weight is None:
            error = error.mean(dim=(2, 3))
        else:
            weight = rearrange(weight.float(), "b h w -> b 1 h w")
            error = (error * weight).sum(dim=(2, 3)) / weight.sum(dim=(2, 3))
        return (error * noised.mask).sum(dim=1) / noised.mask.sum()

    def dropout(self, batch: int, device: torch.device,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per sample (B,) keep factors for (z_R, audio): 0 where the condition is dropped, 1 where kept."""
        u = torch.rand(batch, 2, device=device, generator=generator)
        both = u[:, 0] < self.drop_both
        rest = (u[:, 0] - self.drop_both) / max(1.0 - self.drop_both, 1e-12)  # uniform again on the rest
        drop_ref = both | (~both & (rest < self.drop_ref))
        drop_audio = both | (~both & (u[:, 1] < self.drop_audio))
        return (~drop_ref).float(), (~drop_audio).float()

    def forward_process(self, z0: torch.Tensor, generator: torch.Generator | None = None) -> NoisedBatch:
        """Times, noise and noising for a clean sequence (B, C, 1 + f, h, w)."""
        batch, _, frames, height, width = z0.shape
        t = self.sample_times(batch, frames - 1, frames * height * width, z0.device, generator)
        eps = torch.randn(z0.shape, device=z0.device, dtype=z0.dtype, generator=generator)
        return self.noise(z0, t, eps)
