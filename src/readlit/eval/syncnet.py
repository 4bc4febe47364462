"""Sync-C / Sync-D (LSE-C / LSE-D) with SyncNet v2, as joonson/syncnet_python and Wav2Lip's scores_LSE compute them.

Per video: 224² colour face crops (BGR, raw 0..255) in 5-frame windows against 20-step MFCC windows (0.2 s,
4 MFCC steps per 25 fps frame). For every video window i the Euclidean distance to the audio embeddings at
offsets −15..15 is taken (audio embeddings zero-padded at both ends); the mean over windows gives one
distance per offset. Sync-D is the smallest mean distance, Sync-C the median minus that minimum, and the
offset is 15 − argmin. Dataset scores are means over videos.

Modes: ``precropped`` (the LRS flow, ``calculate_scores_LRS.py``) takes videos that are already face crops
and only resizes them to 224². ``tracked`` (``run_pipeline.py``) runs S3FD on every frame
(:mod:`readlit.eval.s3fd`), links the detections into IoU face tracks and cuts median-smoothed square crops
(:mod:`readlit.eval.facetrack`), then scores each track against its span of the audio; a video's score is the
mean over its tracks (LatentSync's ``eval_sync_conf.py``), and videos without a track are counted and skipped.
PySceneDetect's shot cuts are not run: each video is one shot.

The network's ``state_dict`` keys are those of ``syncnet_v2.model`` (Sequential indices of ``netcnnaud``,
``netfcaud``, ``netcnnlip``, ``netfclip``).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch
from einops import rearrange
from torch import nn
from torchmetrics import Metric

from readlit.errors import ConfigError, DataError
from readlit.eval import facetrack, s3fd
from readlit.eval.mfcc import mfcc, to_int16_scale
from readlit.eval.weights import load_state_dict, require

FPS = 25
SAMPLE_RATE = 16000
WINDOW = 5  # video frames per window
MFCC_PER_FRAME = 4  # 100 Hz MFCC / 25 fps
MFCC_WINDOW = WINDOW * MFCC_PER_FRAME
VSHIFT = 15
CROP = 224
BATCH = 20
MODES = ("precropped", "tracked")


def _conv_bn(conv: nn.Module, channels: int, bn: type[nn.Module]) -> list[nn.Module]:
    return [conv, bn(channels), nn.ReLU(inplace=True)]


def _audio_cnn() -> nn.Sequential:
    """(N, 1, 13, 20) MFCC -> (N, 512, 1, 1); indices match the checkpoint's ``netcnnaud.<i>``."""
    c2, bn = nn.Conv2d, nn.BatchNorm2d
    return nn.Sequential(
        *_conv_bn(c2(1, 64, 3, 1, 1), 64, bn), nn.MaxPool2d(1, 1),
        *_conv_bn(c2(64, 192, 3, 1, 1), 192, bn), nn.MaxPool2d((3, 3), (1, 2)),
        *_conv_bn(c2(192, 384, 3, padding=1), 384, bn),
        *_conv_bn(c2(384, 256, 3, padding=1), 256, bn),
        *_conv_bn(c2(256, 256, 3, padding=1), 256, bn), nn.MaxPool2d(3, 2),
        *_conv_bn(c2(256, 512, (5, 4), padding=0), 512, bn),
    )


def _lip_cnn() -> nn.Sequential:
    """(N, 3, 5, 224, 224) BGR 0..255 -> (N, 512, 1, 1, 1); indices match ``netcnnlip.<i>``."""
    c3, bn = nn.Conv3d, nn.BatchNorm3d
    return nn.Sequential(
        *_conv_bn(c3(3, 96, (5, 7, 7), (1, 2, 2), 0), 96, bn), nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
        *_conv_bn(c3(96, 256, (1, 5, 5), (1, 2, 2), (0, 1, 1)), 256, bn),
        nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
        *_conv_bn(c3(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, bn),
        *_conv_bn(c3(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, bn),
        *_conv_bn(c3(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, bn), nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
        *_conv_bn(c3(256, 512, (1, 6, 6), padding=0), 512, bn),
    )


def _head() -> nn.Sequential:
    return nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(inplace=True), nn.Linear(512, 1024))


class SyncNetV2(nn.Module):
    """SyncNet v2 (joonson/syncnet_python ``S``): 1024-d audio and lip embeddings, not normalised."""

    def __init__(self) -> None:
        super().__init__()
        self.netcnnaud, self.netfcaud = _audio_cnn(), _head()
        self.netcnnlip, self.netfclip = _lip_cnn(), _head()

    def forward_aud(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, 1, 13, 20) MFCC window -> (N, 1024)."""
        return self.netfcaud(rearrange(self.netcnnaud(x), "n c 1 1 -> n c"))

    def forward_lip(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, 3, 5, 224, 224) BGR 0..255 -> (N, 1024)."""
        return self.netfclip(rearrange(self.netcnnlip(x), "n c 1 1 1 -> n c"))


def load_syncnet(path: str | Path) -> SyncNetV2:
    """SyncNet v2 from ``syncnet_v2.model`` (a plain state dict), strictly key-checked."""
    return load_state_dict(SyncNetV2(), Path(path), "syncnet")


class Embedder(Protocol):
    """What the scoring needs of a network: :class:`SyncNetV2`, or a stand-in in tests."""

    def forward_aud(self, x: torch.Tensor) -> torch.Tensor: ...
    def forward_lip(self, x: torch.Tensor) -> torch.Tensor: ...


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


def lip_input(frames: np.ndarray) -> torch.Tensor:
    """(F, H, W, 3) uint8 RGB face crops -> (3, F, 224, 224) float BGR 0..255 (cv2.resize, as the reference)."""
    crops = [cv2.resize(np.ascontiguousarray(f[..., ::-1]), (CROP, CROP)) for f in frames]
    return rearrange(torch.from_numpy(np.stack(crops)).float(), "f h w c -> c f h w")


def embed(net: Embedder, video: torch.Tensor, cepstra: np.ndarray, batch: int = BATCH,
          device: torch.device | str = "cpu") -> tuple[torch.Tensor, ...]:
    """Lip and audio embeddings of every 5-frame window (``SyncNetInstance.evaluate``).

    Args:
        video: (3, F, 224, 224) from :func:`lip_input`.
        cepstra: (Na, 13) MFCC at 100 Hz.
        device: where ``net`` runs.

    Returns:
        lip, aud: (T, D) with T = F − 5 windows (the reference's ``range(min_length - 5)``; the caller cuts the
        video to the whole frames of audio first).
    """
    count = video.shape[1] - WINDOW
    if count < 1:
        raise DataError(f"Sync-C/D needs at least {WINDOW + 1} frames of video and audio, got {video.shape[1]}")
    if len(cepstra) < MFCC_PER_FRAME * (count - 1) + MFCC_WINDOW:
        raise DataError(f"{len(cepstra)} MFCC steps do not cover {video.shape[1]} video frames")
    mel = torch.from_numpy(np.ascontiguousarray(cepstra.T)).float()  # (13, Na)
    lips, auds = [], []
    with torch.no_grad():
        for start in range(0, count, batch):
            idx = range(start, min(start + batch, count))
            lips.append(net.forward_lip(torch.stack([video[:, i:i + WINDOW] for i in idx]).to(device)))
            windows = [mel[None, :, MFCC_PER_FRAME * i:MFCC_PER_FRAME * i + MFCC_WINDOW] for i in idx]
            auds.append(net.forward_aud(torch.stack(windows).to(device)))
    return torch.cat(lips).cpu(), torch.cat(auds).cpu()


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
        raise ConfigError(f"unknown sync mode {mode!r}; modes: {', '.join(MODES)}")
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
            raise ConfigError(f"unknown sync.mode {mode!r}; modes: {', '.join(MODES)}")
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
