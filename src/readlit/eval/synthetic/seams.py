"""Clip seams of a long generated video: where each clip's new frames begin, and how hard the cut is.

A long video is made of clips of ``f`` latent frames; consecutive clips share ``overlap`` of them (ANS: the
motion frame; "w/o ANS": none). A clip's new content starts at latent frame ``start + overlap``, which the
VAE decodes from pixel frame ``1 + r·(start + overlap - 1)`` on (r the temporal ratio, latent 0 being the
single first frame). Without motion guidance the new clip starts from fresh noise, so the frame-to-frame
change jumps there; the *seam jump* compares the change at seams with the change everywhere else.
"""

from __future__ import annotations

import numpy as np

from readlit.sampling.ans_sampler import clip_starts


def seam_frames(latent_frames: int, clip_frames: int, overlap: int, temporal_ratio: int,
                num_frames: int) -> list[int]:
    """Pixel frames where a new clip's frames begin, excluding the first clip and frames past ``num_frames``."""
    starts = clip_starts(latent_frames, clip_frames, overlap)[1:]
    seams = [1 + temporal_ratio * (start + overlap - 1) for start in starts]
    return [frame for frame in seams if 0 < frame < num_frames]


def frame_changes(frames: np.ndarray) -> np.ndarray:
    """Mean absolute change of each frame from the one before, in [0, 1] pixel units: (F, H, W, 3) -> (F - 1,).

    Entry ``t - 1`` is the change into frame ``t``.
    """
    pixels = np.asarray(frames, np.float32) / 255.0
    return np.abs(np.diff(pixels, axis=0)).mean(axis=(1, 2, 3))


def seam_jump(frames: np.ndarray, seams: list[int]) -> dict[str, float]:
    """Mean frame change into the seam frames, elsewhere, and their ratio (1 = seams are invisible)."""
    changes = frame_changes(frames)
    at_seam = np.zeros(len(changes), bool)
    at_seam[np.asarray(seams, int) - 1] = True
    if not at_seam.any() or at_seam.all():
        raise ValueError(f"need seams and non-seam frames; got seams {seams} in {len(frames)} frames")
    seam, elsewhere = float(changes[at_seam].mean()), float(changes[~at_seam].mean())
    return {"seam": seam, "elsewhere": elsewhere, "ratio": seam / max(elsewhere, 1e-12)}
