"""Face detectors whose weights ship inside a registry package: OpenCV's bundled Haar cascades.

A detector is any callable ``(H, W, 3) uint8 RGB -> (n, 4) float32 boxes x, y, w, h`` in that image's
pixels; :class:`~readlit.data.preprocess.face_track.FaceTracker` takes one from the config.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from readlit import checks
from readlit.errors import ConfigError


class HaarFaceDetector:
    """Frontal faces with an OpenCV Haar cascade (the XML files ship in the ``opencv-python-headless`` wheel).

    Args:
        cascade: a file name in ``cv2.data.haarcascades`` or a path to a cascade XML.
        scale_factor: image pyramid step.
        min_neighbors: overlapping hits a face needs (higher: fewer false faces).
        min_size: smallest face, as a fraction of the image's short side.
    """

    def __init__(self, cascade: str = "haarcascade_frontalface_alt2.xml", scale_factor: float = 1.1,
                 min_neighbors: int = 3, min_size: float = 0.15):
        path = Path(cascade) if Path(cascade).is_file() else Path(cv2.data.haarcascades) / cascade
        self.classifier = cv2.CascadeClassifier(str(path))
        if self.classifier.empty():
            raise ConfigError(
                f"cascade={cascade!r} is not a Haar cascade file; use a name from "
                f"{cv2.data.haarcascades} (e.g. haarcascade_frontalface_alt2.xml) or a path to one"
            )
        self.scale_factor = checks.number("scale_factor", scale_factor, above=1.0)
        self.min_neighbors = checks.integer("min_neighbors", min_neighbors, minimum=0)
        self.min_size = checks.number("min_size", min_size, above=0.0, maximum=1.0)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Faces in ``image`` (H, W, 3) uint8 RGB as (n, 4) float32 x, y, w, h."""
        grey = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
        smallest = max(8, int(self.min_size * min(grey.shape)))
        boxes = self.classifier.detectMultiScale(
            grey, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(smallest, smallest)
        )
        return np.asarray(boxes, np.float32).reshape(-1, 4)
