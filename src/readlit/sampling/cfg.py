"""Classifier-free guidance for the A2V-DiT: Joint-CFG (eq. 16) and Split-CFG (eq. 17), all branches in one forward.

A dropped condition is what condition dropout shows the model during training: z_R and the audio latents C
replaced by zeros (:func:`~readlit.nn.conditioning.drop_conditions`, shared with training). The branches are
stacked along the batch, so a guided velocity costs one forward of a batch 2x (joint) or 3x (split) as large.

- ``none``:  v = S(Z, C, z_R)
- ``joint``: v = (1 - a)·S(Z, ∅, ∅) + a·S(Z, C, z_R)
- ``split``: v = (1 - a - b)·S(Z, ∅, ∅) + a·S(Z, ∅, z_R) + b·S(Z, C, z_R)   (paper: a = 2, b = 6)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from einops import rearrange, repeat

from readlit import checks
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
    """

    mode: str = "split"
    audio_scale: float = 6.0
    ref_scale: float = 2.0

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
        """Guided velocity (B, C, 1 + f, h, w) from one batched forward over every branch."""
        batch, branches = z.shape[0], len(self.branches)
        keep_ref = torch.tensor([ref for ref, _ in self.branches], device=z.device, dtype=z.dtype)
        keep_audio = torch.tensor([aud for _, aud in self.branches], device=z.device, dtype=audio.dtype)
        z_all, audio_all = drop_conditions(repeat(z, "b c f h w -> (n b) c f h w", n=branches),
                                           repeat(audio, "b f k d -> (n b) f k d", n=branches),
                                           repeat(keep_ref, "n -> (n b)", b=batch),
                                           repeat(keep_audio, "n -> (n b)", b=batch))
        v = model(z_all, repeat(t, "b f -> (n b) f", n=branches), audio_all)
        v = rearrange(v, "(n b) c f h w -> n b c f h w", n=branches)
        weights = torch.tensor(self.weights, device=v.device, dtype=v.dtype)
        return torch.einsum("n,nbcfhw->bcfhw", weights, v)
