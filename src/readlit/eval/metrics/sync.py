"""Sync-C / Sync-D (LSE-C / LSE-D) with SyncNet v2, as joonson/syncnet_python and Wav2Lip's scores_LSE compute them.

Per video: 224² colour face crops (BGR, raw 0..255) in 5-frame windows against 20-step MFCC windows (0.2 s,
4 MFCC steps per 25 fps frame). For every video window i the Euclidean distance to the audio embeddings at
offsets −15..15 is taken (audio embeddings zero-padded at both ends); the mean over windows gives one
distance per offset. Sync-D is the smallest mean distance, Sync-C the median minus that minimum, and the
offset is 15 − argmin. Dataset scores are means over videos.

Modes: ``precropped`` (the LRS flow, ``calculate_scores_LRS.py``) takes videos that are already face crops
and only resizes them to 224². ``tracked`` (``run_pipeline.py``) runs S3FD on every frame
(:mod:`readlit.eval.networks.s3fd`), links the detections into IoU face tracks and cuts median-smoothed square
crops (:mod:`readlit.eval.networks.facetrack`), then scores each track against its span of the audio; a
video's score is the mean over its tracks (LatentSync's ``eval_sync_conf.py``), and videos without a track are
counted and skipped. PySceneDetect's shot cuts are not run: each video is one shot.

The network, its input and the windowing are :mod:`readlit.eval.networks.syncnet`.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from torchmetrics import Metric

from readlit.errors import ConfigError
from readlit.eval.networks import facetrack, s3fd
from readlit.eval.networks.mfcc import mfcc, to_int16_scale
from readlit.eval.networks.syncnet import FPS, SAMPLE_RATE, Embedder, embed, lip_input, load_syncnet
from readlit.eval.weights import require

VSHIFT = 15
MODES = ("precropped", "tracked")


def offset_distances(lip: torch.Tensor, aud: torch.Tensor, vshift: int = VSHIFT) -> torch.Tensor:
    """Distance of each lip window to the audio windows at offsets −vshift..vshift (``calc_pdist``).

    Args:
        lip, aud: (T, D) embeddings of the same T windows.

    Returns:
        (T, 2·vshift + 1): entry [i, k] = ‖lip[i] − aud[i + k − vshift] + 1e-6‖, zero vectors outside.
    """
    padded = torch.nn.functional.pad(aud, (0, 0, vshift, vshift))
    windows = rearrange(padded.unfold(0, 2 * vshift + 1, 1), "t d k -> t k d")  # (T, K, D)
    # F.pairwise_distance adds eps to the difference; kept for identical numbers.
    return (lip[:, None] - windows + 1e-6).norm(dim=-1)


def sync_scores(lip: torch.Tensor, aud: torch.Tensor, vshift: int = VSHIFT) -> dict[str, float]:
    """Sync-D (min mean distance), Sync-C (median − min) and the AV offset (vshift − argmin) of one video.

    Args:
        lip, aud: (T, D) embeddings. A positive offset means aud[i − offset] matches lip[i].
    """
    mean = offset_distances(lip.double(), aud.double(), vshift).mean(0)
    low, index = torch.min(mean, 0)
    return {"sync_d": float(low), "sync_c": float(torch.median(mean) - low), "offset": vshift - int(index)}


def score_crops(net: Embedder, frames: np.ndarray, audio: np.ndarray, vshift: int = VSHIFT,
                device: torch.device | str = "cpu") -> dict[str, float]:
    """Sync-C, Sync-D and offset of one 25 fps video of face crops, (F, H, W, 3) uint8 RGB, with (n,) 16 kHz audio."""
    # The reference keeps only whole video frames of audio: floor(n / 640) of them.
    usable = len(audio) // (SAMPLE_RATE // FPS)
    lip, aud = embed(net, lip_input(frames[:usable]), mfcc(to_int16_scale(audio)), device=device)
    return sync_scores(lip, aud, vshift)


def score_tracks(net: Embedder, detector: s3fd.S3FD, frames: np.ndarray, audio: np.ndarray,
                 min_track: int = facetrack.MIN_TRACK, vshift: int = VSHIFT,
                 device: torch.device | str = "cpu") -> list[dict[str, float]]:
    """Scores of every S3FD face track of an uncropped video (``run_pipeline.py`` then ``evaluate``).

    Args:
        frames: (F, H, W, 3) uint8 RGB at 25 fps.
        audio: (n,) float mono in [-1, 1] at 16 kHz, aligned with frame 0.
        min_track: a track needs more detections than this (the reference's 100; LatentSync 50).

    Returns:
        One score dict per track (with its ``start`` and ``frames``); empty when no track qualifies.
    """
    per_frame = SAMPLE_RATE // FPS
    tracks = facetrack.track_faces(s3fd.detect(detector, frames, device=device), min_track=min_track)
    out = []
    for track in tracks:
        crops = facetrack.crop_track(frames, track)
        # The track's audio span [f0 / 25, (f_last + 1) / 25] s, as the reference cuts it with ffmpeg.
        clip = audio[track.frames[0] * per_frame:(track.frames[-1] + 1) * per_frame]
        scores = score_crops(net, crops, clip, vshift, device)
        out.append({**scores, "start": int(track.frames[0]), "frames": len(track.frames)})
    return out


def score_video(net: Embedder, frames: np.ndarray, audio: np.ndarray, mode: str = "precropped",
                vshift: int = VSHIFT, device: torch.device | str = "cpu", detector: s3fd.S3FD | None = None,
                min_track: int = facetrack.MIN_TRACK) -> dict[str, float] | None:
    """Sync-C, Sync-D and offset of one 25 fps video with its 16 kHz audio.

    Args:
        frames: (F, H, W, 3) uint8 RGB.
        audio: (n,) float mono in [-1, 1] at 16 kHz.
        mode: ``precropped`` (frames are face crops) or ``tracked`` (S3FD tracks; needs ``detector``).

    Returns:
        The scores; in ``tracked`` mode the mean over face tracks, or None when the video has no track.
    """
    if mode not in MODES:
        raise ConfigError(f"mode={mode} is not one of {', '.join(MODES)}")
    if mode == "precropped":
        return score_crops(net, frames, audio, vshift, device)
    if detector is None:
        raise ConfigError("sync mode 'tracked' needs the S3FD detector (sfd_face.pth, weights.s3fd)")
    tracks = score_tracks(net, detector, frames, audio, min_track, vshift, device)
    if not tracks:
        return None
    return {key: float(np.mean([t[key] for t in tracks])) for key in ("sync_c", "sync_d", "offset")}


class SyncScore(Metric):
    """Mean Sync-C and Sync-D over videos; ``update(frames, audio)`` scores one video (see :func:`score_video`).

    Args:
        weights: path of ``syncnet_v2.model``, else the one in the weights folder.
        weights_dir: the weights folder.
        mode: ``precropped`` or ``tracked`` (then ``sfd_face.pth`` is needed too; missing -> CheckpointError).
        s3fd_weights: path of ``sfd_face.pth``, else the one in the weights folder.
        min_track: detections a face track needs (more than), ``tracked`` mode only.
    """

    full_state_update = False

    def __init__(self, weights: str | Path | None = None, weights_dir: str | Path | None = None,
                 mode: str = "precropped", s3fd_weights: str | Path | None = None,
                 min_track: int = facetrack.MIN_TRACK, **kwargs) -> None:
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ConfigError(f"mode={mode} is not one of {', '.join(MODES)}")
        self.mode, self.min_track = mode, min_track
        self.net = load_syncnet(require("syncnet", weights_dir, weights))
        # A submodule, so Metric.to(device) moves the detector with SyncNet.
        self.detector = s3fd.load_s3fd(require("s3fd", weights_dir, s3fd_weights)) if mode == "tracked" else None
        for name in ("sync_c", "sync_d", "count", "untracked"):
            self.add_state(name, torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, frames: np.ndarray, audio: np.ndarray) -> None:
        scores = score_video(self.net, frames, audio, self.mode, device=self.device, detector=self.detector,
                             min_track=self.min_track)
        if scores is None:  # tracked mode, no face track long and large enough: skipped, as the reference does
            self.untracked += 1
            warnings.warn("Sync-C/D: a video has no S3FD face track and is left out of the mean", stacklevel=2)
            return
        self.sync_c += scores["sync_c"]
        self.sync_d += scores["sync_d"]
        self.count += 1

    def compute(self) -> dict[str, torch.Tensor]:
        return {"sync_c": self.sync_c / self.count, "sync_d": self.sync_d / self.count}
