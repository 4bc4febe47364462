"""Scene-cut detection on the face crops: a cut changes the whole crop at once, head motion does not."""

from __future__ import annotations

import cv2
import numpy as np

THUMB = 32  # crops are compared as 32x32 grey thumbnails: cheap, and blind to fine motion like lips
# A cut must also stand out from the clip's typical change, so fast but steady motion is not a cut.
_OVER_MEDIAN = 4.0


def thumbnail(crop: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 crop -> (32, 32) float32 grey in [0, 255]."""
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (THUMB, THUMB), interpolation=cv2.INTER_AREA).astype(np.float32)


def find_cut(thumbs: np.ndarray, threshold: float) -> int | None:
    """The first frame whose thumbnail differs from the previous one by more than ``threshold`` (and by
    more than 4x the clip's median change).

    Args:
        thumbs: (F, 32, 32) float32 from :func:`thumbnail`.
        threshold: mean absolute grey difference (0-255) that counts as a cut.

    Returns:
        the frame index where the new shot starts, or None.
    """
    if len(thumbs) < 2:
        return None
    change = np.abs(np.diff(thumbs, axis=0)).mean(axis=(1, 2))
    above = np.flatnonzero((change > threshold) & (change > _OVER_MEDIAN * np.median(change)))
    return int(above[0]) + 1 if above.size else None
