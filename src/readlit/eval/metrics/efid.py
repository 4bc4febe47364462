"""E-FID: Fréchet distance of per-frame 64-d expression coefficients from Deep3DFaceRecon.

EMO introduced E-FID as the FID formula applied to 3DMM expression parameters (``reference/metrics.md`` §4);
the regressor, its alignment and the expression slice are :mod:`readlit.eval.networks.deep3d`. Every frame of
every video is one sample, unbiased covariance.

Landmarks are an input: (F, 5, 2) pixel coordinates (x right, y down) per video, from any 5-point detector
(facenet-pytorch's wheel bundles MTCNN). Without them E-FID is reported missing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from einops import rearrange

from readlit.errors import DataError
from readlit.eval.metrics.frechet import FrechetMetric
from readlit.eval.networks.deep3d import EXPRESSION, align_face, load_deep3d, load_lm3d
from readlit.eval.weights import require


class EFID(FrechetMetric):
    """E-FID; ``update((frames, landmarks), real=...)`` with frames (F, H, W, 3) uint8 and landmarks (F, 5, 2).

    Args:
        weights: path of ``epoch_20.pth``; lm3d: path of ``similarity_Lm3D_all.mat``; else the weights folder.
    """

    def __init__(self, weights: str | Path | None = None, lm3d: str | Path | None = None,
                 weights_dir: str | Path | None = None, batch: int = 16, **kwargs) -> None:
        super().__init__(EXPRESSION.stop - EXPRESSION.start, unbiased=True, **kwargs)
        self.net = load_deep3d(require("deep3d", weights_dir, weights))
        self.lm3d, self.batch = load_lm3d(require("lm3d_std", weights_dir, lm3d)), batch

    def features(self, x: tuple[np.ndarray, np.ndarray]) -> torch.Tensor:
        """(frames (F, H, W, 3) uint8, landmarks (F, 5, 2)) -> (F, 64) expression coefficients."""
        frames, landmarks = x
        if len(landmarks) != len(frames) or np.shape(landmarks)[1:] != (5, 2):
            raise DataError(f"E-FID needs (F, 5, 2) landmarks for {len(frames)} frames, got {np.shape(landmarks)}")
        faces = np.stack([align_face(f, lm, self.lm3d) for f, lm in zip(frames, landmarks, strict=True)])
        faces = rearrange(torch.from_numpy(faces).float() / 255.0, "f h w c -> f c h w")
        with torch.no_grad():
            return torch.cat([self.net(chunk.to(self.device))[:, EXPRESSION] for chunk in faces.split(self.batch)])
