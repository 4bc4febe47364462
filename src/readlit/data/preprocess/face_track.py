"""One face box per output frame from a detector run on every few frames, interpolated and smoothed.

Detections jitter by a few pixels from frame to frame; a crop that follows them shakes. The tracker
detects on every ``every``-th output frame (downscaled to ``detect_width``), keeps the largest face,
interpolates centre and size linearly in between, and smooths them with a moving average over
``smooth_frames`` frames, so the crop follows head motion without the detector's noise.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from readlit import checks
from readlit.data.preprocess.decode import Timeline, decode_frames
from readlit.data.preprocess.sources import Box, SkipClip


class FaceTracker:
    """Tracks the face of a clip for :func:`~readlit.data.preprocess.crop.crop_square`.

    Args:
        detector: ``(H, W, 3) uint8 -> (n, 4) x, y, w, h`` (e.g. :class:`HaarFaceDetector`).
        every: detect on every ``every``-th output frame.
        scale: crop side / detected face side (a Haar box spans brows to mouth; 1.6 adds chin and hair).
        smooth_frames: moving-average length for centre and size (odd; 1 = no smoothing).
        min_found: fraction of the sampled frames that must show a face, else the clip is skipped.
        detect_width: frames are shrunk to this width for detection (detection cost grows with pixels).
    """

    def __init__(self, detector: Callable[[np.ndarray], np.ndarray], every: int = 5, scale: float = 1.6,
                 smooth_frames: int = 9, min_found: float = 0.5, detect_width: int = 320):
        self.detector = detector
        self.every = checks.integer("every", every, minimum=1)
        self.scale = checks.number("scale", scale, above=0.0)
        self.smooth_frames = checks.integer("smooth_frames", smooth_frames, minimum=1)
        self.min_found = checks.probability("min_found", min_found)
        self.detect_width = checks.integer("detect_width", detect_width, minimum=16)

    def track(self, path: Path, timeline: Timeline, index: np.ndarray) -> list[Box]:
        """Boxes in source pixels for the F output frames that ``index`` (F,) maps to source frames."""
        count = len(index)
        sampled = np.unique(np.append(np.arange(0, count, self.every), count - 1))
        shrink = min(1.0, self.detect_width / timeline.width)
        size = {"width": max(1, round(timeline.width * shrink)),
                "height": max(1, round(timeline.height * shrink))}
        found: dict[int, np.ndarray] = {}
        for outputs, image in decode_frames(path, timeline, index[sampled],
                                            lambda frame: frame.to_ndarray(format="rgb24", **size)):
            faces = self.detector(image)
            if len(faces):
                largest = faces[np.argmax(faces[:, 2] * faces[:, 3])] / shrink
                for output in outputs:
                    found[int(sampled[output])] = largest
        if len(found) < self.min_found * len(sampled):
            raise SkipClip("no_face", f"{path.name}: a face in {len(found)} of {len(sampled)} sampled frames "
                                      f"(face_track.min_found={self.min_found})")
        return self._boxes(found, count)

    def _boxes(self, found: dict[int, np.ndarray], count: int) -> list[Box]:
        frames = np.array(sorted(found), np.float64)
        x, y, w, h = np.stack([found[int(f)] for f in frames]).T
        frame_axis = np.arange(count)
        tracks = [np.interp(frame_axis, frames, value) for value in (x + w / 2, y + h / 2, np.maximum(w, h))]
        cx, cy, side = (self._smooth(track) for track in tracks)
        return [Box(float(a), float(b), float(c * self.scale)) for a, b, c in zip(cx, cy, side, strict=True)]

    def _smooth(self, track: np.ndarray) -> np.ndarray:
        half = self.smooth_frames // 2
        padded = np.pad(track, half, mode="edge")
        return np.convolve(padded, np.full(2 * half + 1, 1.0 / (2 * half + 1)), mode="valid")
