"""Classifier-free guidance for the A2V-DiT: Joint-CFG (eq. 16) and Split-CFG (eq. 17), all branches in one forward.

A dropped condition is what condition dropout shows the model during training: z_R and the audio latents C
replaced by zeros (:func:`~readlit.nn.conditioning.drop_conditions`, shared with training). The branches are
stacked along the batch, so a guided velocity costs one forward of a batch 2x (joint) or 3x (split) as large
(``batched=false`` runs one forward per branch instead: the same numbers to rounding, measured by
``python -m readlit.bench sampler``).

- ``none``:  v = S(Z, C, z_R)
- ``joint``: v = (1 - a)·S(Z, ∅, ∅) + a·S(Z, C, z_R)
- ``split``: v = (1 - a - b)·S(Z, ∅, ∅) + a·S(Z, ∅, z_R) + b·S(Z, C, z_R)   (paper: a = 2, b = 6)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from einops import rearrange, repeat

from readlit import checks
from readlit.errors import ConfigError
from readlit.nn.conditioning import drop_conditions


class Velocity(Protocol):
    """The network as the sampler sees it.

    Args:
        z: (B, C, 1 + f, h, w), latent frame 0 the reference.
        t: (B, 1 + f) flow time per latent frame (0 for the reference).
        audio: (B, f, hw, da) audio latents of the clip's frames 1..f.

    Returns:
        v: (B, C, 1 + f, h, w).
    """

    def __call__(self, z: torch.Tensor, t: torch.Tensor, audio: torch.Tensor) -> torch.Tensor: ...


class PreparedVelocity(Velocity, Protocol):
    """A velocity network that computes a clip's share of every step once (:meth:`A2VDiT.prepare`).

    ``prepare(audio, h, w)`` returns a context that ``__call__(z, t, context=...)`` takes instead of the audio.
    """

    def prepare(self, audio: torch.Tensor, height: int, width: int) -> Any: ...


# (z, t) -> guided velocity of one clip, its conditions bound (:meth:`Guidance.bind`).
ClipVelocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# (keep reference, keep audio) per branch, and each branch's weight as a function of the scales.
_BRANCHES = {
    "none": ((True, True),),
    "joint": ((False, False), (True, True)),
    "split": ((False, False), (True, False), (True, True)),
}


@dataclass(frozen=True)
class Guidance:
    """Which CFG and its scales (config group ``sampler.guidance``).

    Args:
        mode: ``none``, ``joint`` (eq. 16, scale ``audio_scale`` = a) or ``split`` (eq. 17, a = ``ref_scale``,
            b = ``audio_scale``).
        audio_scale: joint scale a, or split's audio scale b.
        ref_scale: split's reference scale a (unused otherwise).
        batched: every branch in one forward of a stacked batch; false: one forward per branch.
    """

    mode: str = "split"
    audio_scale: float = 6.0
    ref_scale: float = 2.0
    batched: bool = True

    def __post_init__(self) -> None:
        checks.choice("mode", self.mode, sorted(_BRANCHES))
        # A NaN or infinite scale turns every velocity into NaN: the video would come out black.
        checks.number("audio_scale", self.audio_scale)
        checks.number("ref_scale", self.ref_scale)

    @property
    def branches(self) -> tuple[tuple[bool, bool], ...]:
        return _BRANCHES[self.mode]

    @property
    def weights(self) -> tuple[float, ...]:
        audio, ref = self.audio_scale, self.ref_scale
        return {"none": (1.0,), "joint": (1.0 - audio, audio), "split": (1.0 - ref - audio, ref, audio)}[self.mode]

    def __call__(self, model: Velocity, z: torch.Tensor, t: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """Guided velocity (B, C, 1 + f, h, w) of z (B, C, 1 + f, h, w) at t (B, 1 + f) with audio (B, f, hw, da)."""
        return self.bind(model, audio)(z, t)

    def bind(self, model: Velocity, audio: torch.Tensor, hoist: bool = False) -> ClipVelocity:
        """The guided velocity of one clip as a function of (z, t), its audio (B, f, hw, da) bound.

        With ``hoist`` the model's clip context (``model.prepare``: RoPE tables, audio and text keys/values) is
        computed at the first call, from that call's latent size, and every later call reuses it.
        """
        if hoist and not hasattr(model, "prepare"):
            raise ConfigError("hoist=True needs a velocity network with prepare() (the A2V-DiT has it)")
        groups = [self.branches] if self.batched else [(branch,) for branch in self.branches]
        parts = [_Branches(group, audio) for group in groups]

        def velocity(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            v = torch.cat([part(model, z, t, hoist) for part in parts])
            weights = torch.tensor(self.weights, device=v.device, dtype=v.dtype)
            return torch.einsum("n,nbcfhw->bcfhw", weights, v)

        return velocity


class _Branches:
    """Some CFG branches of one clip, evaluated in one forward of a batch stacked branch-major."""

    def __init__(self, branches: tuple[tuple[bool, bool], ...], audio: torch.Tensor):
        self.count, self.batch = len(branches), audio.shape[0]
        self.keep_ref = repeat(torch.tensor([ref for ref, _ in branches], device=audio.device), "n -> (n b)",
                               b=self.batch)
        keep_audio = repeat(torch.tensor([aud for _, aud in branches], device=audio.device, dtype=audio.dtype),
                            "n -> (n b)", b=self.batch)
        self.audio = repeat(audio, "b f k d -> (n b) f k d", n=self.count)
        self.keep_audio, self.context = keep_audio, None

    def __call__(self, model: Velocity, z: torch.Tensor, t: torch.Tensor, hoist: bool) -> torch.Tensor:
        """Velocities (n, B, C, 1 + f, h, w) of these branches."""
        z_all, audio_all = drop_conditions(repeat(z, "b c f h w -> (n b) c f h w", n=self.count), self.audio,
                                           self.keep_ref.to(z.dtype), self.keep_audio)
        t_all = repeat(t, "b f -> (n b) f", n=self.count)
        if hoist:
            if self.context is None:
                self.context = model.prepare(audio_all, z.shape[-2], z.shape[-1])
            v = model(z_all, t_all, context=self.context)
        else:
            v = model(z_all, t_all, audio_all)
        return rearrange(v, "(n b) c f h w -> n b c f h w", n=self.count)
