"""SyncNet v2 (the Sync-C/D network) and its embedder: 5-frame face windows and 0.2 s MFCC windows -> 1024-d.

Provenance
    Paper: Chung & Zisserman 2016, "Out of time: automated lip sync in the wild" (SyncNet); the v2 network
    and scoring of joonson/syncnet_python.
    Original: joonson/syncnet_python ``SyncNetModel.py`` (class ``S``: ``netcnnaud``, ``netfcaud``,
    ``netcnnlip``, ``netfclip``) and ``SyncNetInstance.py`` (``evaluate``: the windowing). The copies in
    Wav2Lip ``evaluation/scores_LSE`` and LatentSync ``eval/syncnet`` are the same.
    Weights: ``syncnet_v2.model`` (Oxford VGG, a plain state dict; SHA-256 prefix checked on download).
    Input: 224² colour face crops, BGR, raw 0..255 (``cv2.resize``, as the reference), in 5-frame windows;
    20-step windows of python_speech_features MFCC (:mod:`readlit.eval.networks.mfcc`), 4 MFCC steps per
    25 fps frame. Embeddings are not normalised.
    Checked: tests load a random state dict through :func:`load_syncnet` (Sequential indices as the
    checkpoint's keys, strict check) and run windowing with a stand-in network whose embeddings encode the
    frame index, so video and audio windows pair up as the reference pairs them. Not checked here against the
    released weights' outputs (the README's demo video gives AV offset 3, min dist 5.353, confidence 10.021).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch
from einops import rearrange
from torch import nn

from readlit.errors import DataError
from readlit.eval.weights import load_state_dict

FPS = 25
SAMPLE_RATE = 16000
WINDOW = 5  # video frames per window
MFCC_PER_FRAME = 4  # 100 Hz MFCC / 25 fps
MFCC_WINDOW = WINDOW * MFCC_PER_FRAME
CROP = 224
BATCH = 20


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
