"""Mouth-sync on synthetic talking heads: mouth opening measured from pixels, correlation, offset search.

For a synthetic identity (:class:`readlit.data.synthetic.Identity`) the renderer draws the mouth as a dark
interior inside lips on flat skin, at a known place relative to the head. The opening of a frame is measured
from pixels alone, so it works the same on ground truth, VAE reconstructions and generated videos:

1. a fixed box covers every pixel the mouth can reach, whatever the head's shift and roll;
2. each pixel in it is softly assigned to the identity's palette (mouth interior, skin, nose shade, lips,
   hair, background) by colour distance;
3. the opening is the summed "mouth interior" probability, about the interior's area in pixels.

Head motion only moves skin, lips and background around inside the box, which do not count.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from einops import rearrange

from readlit.data.synthetic import Identity, mouth_box

_SIGMA = 0.1


def _palette(identity: Identity, rows: slice, height: int) -> torch.Tensor:
    """Colours a pixel in the mouth box can show, per box row: (rows, K, 3), the mouth interior first.

    The background is the renderer's vertical gradient; the nose is skin darkened to 85 %.
    """
    skin = np.asarray(identity.skin)
    fixed = np.stack([identity.mouth_inside, skin, 0.85 * skin, identity.lips, identity.hair])
    fraction = np.linspace(0.0, 1.0, height)[rows, None]
    top, bottom = np.asarray(identity.background_top), np.asarray(identity.background_bottom)
    background = top + fraction * (bottom - top)
    colours = np.concatenate([np.broadcast_to(fixed, (len(background), *fixed.shape)), background[:, None]], 1)
    return torch.from_numpy(colours).float()


def mouth_opening(video: torch.Tensor, identity: Identity, sigma: float = _SIGMA) -> torch.Tensor:
    """Mouth opening per frame, measured from pixels.

    Each pixel of the mouth box is softly assigned to the nearest colours of the identity's palette (mouth
    interior, skin, nose shade, lips, hair, background): a Gaussian colour likelihood of width ``sigma`` and
    equal priors. The opening is the summed probability of "mouth interior", about the interior's area in
    pixels. Scoring only the distance from skin towards the interior would also count a dark background,
    which enters the box's corners below the chin as the head moves.

    Args:
        video: (..., 3, F, H, W) RGB in [-1, 1] (the batch contract's ``video``).
        identity: the face drawn in ``video``.
        sigma: colour noise the assignment tolerates, in [0, 1] RGB units.

    Returns:
        (..., F) float32.
    """
    height, width = video.shape[-2:]
    rows, columns = mouth_box(identity, height, width)
    pixels = (video[..., rows, columns].float() + 1.0) / 2.0
    palette = _palette(identity, rows, height).to(video.device)
    difference = rearrange(pixels, "... c f h w -> ... f h w 1 c") - rearrange(palette, "h k c -> h 1 k c")
    likelihood = torch.softmax(-difference.square().sum(-1) / (2 * sigma**2), dim=-1)
    return likelihood[..., 0].sum(dim=(-2, -1))


def pearson(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    """Pearson correlation of two equally long 1-D series; 0 when either is constant."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if a.shape != b.shape or a.size < 2:
        raise ValueError(f"need two series of the same length >= 2, got {a.shape} and {b.shape}")
    a, b = a - a.mean(), b - b.mean()
    norm = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / norm if norm > 0 else 0.0


def best_offset(measured: np.ndarray | torch.Tensor, reference: np.ndarray | torch.Tensor,
                max_offset: int) -> tuple[int, float]:
    """The lag k in [-max_offset, max_offset] maximising corr(measured[t + k], reference[t]), and that corr.

    A positive k means the measured series lags the reference by k frames (the mouth moves late).
    """
    measured, reference = np.asarray(measured, np.float64), np.asarray(reference, np.float64)
    if measured.shape != reference.shape or measured.ndim != 1:
        raise ValueError(f"need two 1-D series of one length, got {measured.shape} and {reference.shape}")
    if not 0 <= max_offset <= len(measured) - 2:
        raise ValueError(f"max_offset={max_offset} must be in [0, {len(measured) - 2}] for {len(measured)} frames")
    scores = {}
    for lag in range(-max_offset, max_offset + 1):
        shifted = measured[lag:] if lag >= 0 else measured[:lag]
        base = reference[: len(reference) - lag] if lag >= 0 else reference[-lag:]
        scores[lag] = pearson(shifted, base)
    lag = max(scores, key=lambda k: (scores[k], -abs(k)))
    return lag, scores[lag]
