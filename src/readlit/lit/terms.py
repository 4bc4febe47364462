"""Optional loss terms that plug into a stage from its config, beside the paper's losses.

They exist for the synthetic demo: in a small talking head almost everything that changes between frames is the
mouth, a few dozen pixels that per-pixel losses barely weigh, so a small model learns a still face with a closed
mouth. The terms weigh the mouth (the synthetic data renders a ``mouth_mask`` (B, H, W) of the pixels it can reach)
or what moves. Real data (HDTF, MEAD) has no mask and trains without them.

- VAE stage ``model.terms``: per-reconstruction terms ``term(recon, video, batch)``, each with its ``weight``.
- VAE stage ``model.views``: extra reconstructions of another view of the batch's video, each with its ``weight``.
- A2V stage ``model.weighting``: a weight per latent position of the flow loss.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange

from readlit.errors import ConfigError


def missing_mouth_mask() -> ConfigError:
    """The error of a mouth term on batches without a ``mouth_mask``."""
    return ConfigError("a mouth-weighted loss needs a mouth_mask (B, H, W) in each batch (the synthetic data renders "
                       "one); drop the mouth term for data without it")


def _mouth_mask(batch: dict[str, Any]) -> torch.Tensor:
    if "mouth_mask" not in batch:
        raise missing_mouth_mask()
    return batch["mouth_mask"]


class _Weighted:
    """A term with a non-negative ``weight``.

    Deliberately not a dataclass: Hydra puts the objects of a config dict (``model.terms``) into an OmegaConf
    container, and OmegaConf turns dataclass instances into configs, which are not callable.
    """

    def __init__(self, weight: float):
        if weight < 0:
            raise ConfigError(f"weight={weight} must be >= 0")
        self.weight = float(weight)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(weight={self.weight})"


class MotionL1(_Weighted):
    """L1 between the frame-to-frame changes of reconstruction and input: weighs what moves (mouth, blinks)."""

    def __call__(self, recon: torch.Tensor, video: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        """recon, video: (B, 3, F, H, W); 0 for single frames."""
        if video.shape[2] < 2:
            return video.new_zeros(())
        return (recon.diff(dim=2) - video.diff(dim=2)).abs().mean()


class MouthMSE(_Weighted):
    """Mean squared error over the pixels of the batch's ``mouth_mask``.

    Squared, not absolute: a mouth is closed more often than open, so while the latents do not yet tell the two
    apart, L1's optimum (the median) is a closed mouth and its gradients cancel; the squared error's optimum is the
    mean, a half-open mouth, whose errors push the encoder to separate the cases. Overfitting 8 clips from the
    shipped demo VAE, the mouth's round-trip correlation reached 0.92 in 300 steps with this term and 0.42 with an
    L1 one.
    """

    def __call__(self, recon: torch.Tensor, video: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        """recon, video: (B, 3, F, H, W); the batch's ``mouth_mask`` (B, H, W) is 1 where the mouth can be."""
        weight = rearrange(_mouth_mask(batch).to(video.dtype), "b h w -> b 1 1 h w")
        area = weight.sum() * video.shape[1] * video.shape[2]
        return ((recon - video).square() * weight).sum() / area.clamp_min(1.0)


class SingleFrames(_Weighted):
    """A view of the batch: one random frame per clip, encoded alone as an image (the reference-image path)."""

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, F, H, W) -> (B, 3, 1, H, W)."""
        index = torch.randint(0, video.shape[2], (video.shape[0],), device=video.device)
        return video[torch.arange(video.shape[0], device=video.device), :, index][:, :, None]


class MouthWeighting(_Weighted):
    """A2V flow-loss weights (B, h, w): 1 + ``weight`` on the latent positions the mouth mask reaches, 1 elsewhere."""

    def __call__(self, batch: dict[str, Any], latent_size: tuple[int, int]) -> torch.Tensor:
        mask = F.adaptive_max_pool2d(_mouth_mask(batch).float()[:, None], latent_size)[:, 0]
        return 1.0 + self.weight * mask
