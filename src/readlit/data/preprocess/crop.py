"""Square face crops resized to the cache size, with edge padding where the box leaves the frame."""

from __future__ import annotations

import cv2
import numpy as np

from readlit.data.preprocess.sources import Box


def crop_square(image: np.ndarray, box: Box, size: int) -> np.ndarray:
    """Cut ``box`` out of ``image`` and resize it to ``size`` x ``size``.

    Parts of the box outside the frame repeat the frame's edge pixels (a detector box near the border
    must not shift the face off-centre). Shrinking uses area averaging, which does not alias.

    Args:
        image: (H, W, 3) uint8.

    Returns:
        (size, size, 3) uint8.
    """
    height, width = image.shape[:2]
    side = max(1, int(round(box.side)))
    x0, y0 = int(round(box.cx - side / 2)), int(round(box.cy - side / 2))
    x1, y1 = x0 + side, y0 + side
    inside = image[max(y0, 0) : min(y1, height), max(x0, 0) : min(x1, width)]
    if inside.size == 0:
        inside = image[:1, :1]
    pads = (max(0, -y0), max(0, y1 - height), max(0, -x0), max(0, x1 - width))
    if any(pads):
        inside = cv2.copyMakeBorder(inside, *pads, borderType=cv2.BORDER_REPLICATE)
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    return cv2.resize(inside, (size, size), interpolation=interpolation)


def box_inside(box: Box, width: int, height: int, tolerance: float = 0.02) -> bool:
    """Whether ``box`` fits in a width x height frame, up to ``tolerance`` of its side."""
    slack = tolerance * box.side
    half = box.side / 2
    return (box.cx - half >= -slack and box.cy - half >= -slack
            and box.cx + half <= width + slack and box.cy + half <= height + slack)
