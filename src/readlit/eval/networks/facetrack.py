"""Face tracks and their crops for the tracking mode of Sync-C/D (syncnet_python ``run_pipeline.py``).

Provenance
    Original: joonson/syncnet_python ``run_pipeline.py`` (``bb_intersection_over_union``, ``track_shot``,
    ``crop_video``). No network and no weights.
    Checked: tests track a moving box across a missed frame (interpolation exact on linear motion, medians keep
    a linear ramp), separate two faces, drop short and small tracks, end a track after 26 missed frames, and
    find a known coloured box at the expected place in the crops.

Tracking (``track_shot``): greedily, a track starts at the first unused detection and takes, frame by frame,
the first unused detection whose IoU with the track's last box exceeds 0.5, as long as the gap since that box
is at most ``num_failed_det`` (25) frames. Tracks with more than ``min_track`` (100; LatentSync uses 50)
detections are linearly interpolated over missed frames and kept when their mean width or height exceeds
``min_face_size`` (100 px).

Crops (``crop_video``): half-side s = max(w, h)/2 and the box centre, each median-filtered over 13 frames
(scipy ``medfilt``, zero-padded at the ends as the reference); the frame is padded by int(s(1 + 2·cs)) with
the value 110, and rows [cy − s, cy + s(1 + 2cs)], columns [cx − s(1 + cs), cx + s(1 + cs)] (cs = 0.4) are
cut and resized to 224² (cv2 bilinear). The crop reaches further below the centre to keep the mouth and chin.

Not done here: PySceneDetect's shot cuts (the reference tracks within each shot); the whole video is one shot.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.interpolate import interp1d
from scipy.signal import medfilt

IOU_THRESHOLD = 0.5
NUM_FAILED_DET = 25
MIN_TRACK = 100
MIN_FACE_SIZE = 100
CROP_SCALE = 0.40
SMOOTH_KERNEL = 13
PAD_VALUE = 110
CROP = 224


@dataclass
class Track:
    """One face track: the frames it spans and an interpolated box per frame."""

    frames: np.ndarray  # (L,) int consecutive frame indices
    boxes: np.ndarray  # (L, 4) float x1, y1, x2, y2


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two x1, y1, x2, y2 boxes (no +1 pixel convention, as ``bb_intersection_over_union``)."""
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def link(detections: list[np.ndarray], iou_threshold: float = IOU_THRESHOLD,
         num_failed_det: int = NUM_FAILED_DET) -> list[list[tuple[int, np.ndarray]]]:
    """Greedy IoU linking of per-frame detections into chains of (frame, box).

    Args:
        detections: per frame, (K_f, ≥4) boxes x1, y1, x2, y2 (extra columns such as the score are ignored).

    Returns:
        Every chain, in the order the reference builds them; each detection is used once.
    """
    pools = [list(np.asarray(d, np.float64)[:, :4]) if len(d) else [] for d in detections]
    chains = []
    while True:
        chain: list[tuple[int, np.ndarray]] = []
        for frame, pool in enumerate(pools):
            if chain and frame - chain[-1][0] > num_failed_det:
                break  # too many missed frames: the track ends
            for k, box in enumerate(pool):
                if not chain or iou(box, chain[-1][1]) > iou_threshold:
                    chain.append((frame, pool.pop(k)))
                    break  # at most one detection per frame joins a track
        if not chain:
            return chains
        chains.append(chain)


def interpolate(chain: list[tuple[int, np.ndarray]]) -> Track:
    """A chain of (frame, box) -> a :class:`Track` with linearly interpolated boxes on every frame it spans."""
    frames = np.array([f for f, _ in chain])
    boxes = np.stack([b for _, b in chain])
    span = np.arange(frames[0], frames[-1] + 1)
    if len(frames) == 1:
        return Track(span, boxes.copy())
    return Track(span, interp1d(frames, boxes, axis=0)(span))


def track_faces(detections: list[np.ndarray], min_track: int = MIN_TRACK, min_face_size: float = MIN_FACE_SIZE,
                iou_threshold: float = IOU_THRESHOLD, num_failed_det: int = NUM_FAILED_DET) -> list[Track]:
    """Face tracks of one shot (``track_shot``): linked, longer than ``min_track`` detections, big enough."""
    tracks = []
    for chain in link(detections, iou_threshold, num_failed_det):
        if len(chain) <= min_track:
            continue
        track = interpolate(chain)
        sides = track.boxes[:, 2:] - track.boxes[:, :2]
        if sides.mean(0).max() > min_face_size:
            tracks.append(track)
    return tracks


def smooth(track: Track, kernel: int = SMOOTH_KERNEL) -> np.ndarray:
    """(L, 3) median-filtered half-side s, centre x, centre y of a track's boxes (zero-padded ``medfilt``).

    A track shorter than the kernel (never the case in the reference, whose tracks have > 50 frames) gets the
    largest odd kernel that fits, else the zero padding would outvote the boxes.
    """
    boxes = track.boxes
    kernel = min(kernel, len(boxes) - (1 - len(boxes) % 2))
    half = np.maximum(boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]) / 2
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    return np.stack([medfilt(v, kernel_size=kernel) for v in (half, cx, cy)], axis=1)


def crop_window(half: float, cx: float, cy: float, cs: float = CROP_SCALE) -> tuple[int, int, int, int, int]:
    """Padding and crop bounds (pad, top, bottom, left, right) in padded-frame pixels, as ``crop_video``."""
    pad = int(half * (1 + 2 * cs))
    my, mx = cy + pad, cx + pad
    return pad, int(my - half), int(my + half * (1 + 2 * cs)), int(mx - half * (1 + cs)), int(mx + half * (1 + cs))


def crop_track(frames: np.ndarray, track: Track, cs: float = CROP_SCALE, size: int = CROP) -> np.ndarray:
    """The smoothed square crops of one track: (F, H, W, 3) uint8 video -> (L, size, size, 3) uint8."""
    out = []
    for (half, cx, cy), index in zip(smooth(track), track.frames, strict=True):
        pad, top, bottom, left, right = crop_window(half, cx, cy, cs)
        padded = np.pad(frames[index], ((pad, pad), (pad, pad), (0, 0)), constant_values=PAD_VALUE)
        out.append(cv2.resize(padded[top:bottom, left:right], (size, size)))
    return np.stack(out)
