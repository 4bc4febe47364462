"""E-FID: Fréchet distance of per-frame 64-d expression coefficients from Deep3DFaceRecon.

EMO introduced E-FID as the FID formula applied to 3DMM expression parameters; the (B, 64) shape its
followers quote is Deep3DFaceRecon's (Deng et al. 2019) — an inference, no public E-FID script exists
(``reference/metrics.md`` §4). The regressor is ``ReconNetWrapper`` of sicxu/Deep3DFaceRecon_pytorch: a
ResNet-50 (torchvision layout, no fc) and seven 1×1 conv heads giving 257 coefficients
[80 identity, 64 expression, 80 texture, 3 angle, 27 lighting, 2 xy, 1 z]; expression is ``coeffs[:, 80:144]``.
Weights: ``epoch_20.pth`` (network under ``net_recon``).

Input is a 224² RGB face in [0, 1] aligned the way Deep3DFaceRecon aligns it (:func:`align_face`): a scale
and translation from five landmarks (eye centres, nose tip, mouth corners) fitted to the standard 3D landmarks
of ``similarity_Lm3D_all.mat`` (``POS``), scale 102/s, PIL bicubic resize, 224² crop.

Landmarks: Deep3DFaceRecon uses dlib or MTCNN 5-point landmarks; readlit ships no face-landmark weights, so
they are an input here: (F, 5, 2) pixel coordinates (x right, y down) per video, from any such detector
(facenet-pytorch's wheel bundles MTCNN). Without them E-FID is reported missing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
import torch
import torchvision
from einops import rearrange
from PIL import Image
from torch import nn

from readlit.errors import CheckpointError, DataError
from readlit.eval.frechet import FrechetMetric
from readlit.eval.weights import load_state_dict, require

HEADS = (80, 64, 80, 3, 27, 2, 1)
EXPRESSION = slice(80, 144)
SIZE = 224
RESCALE = 102.0
# similarity_Lm3D_all.mat holds 68 points; the five are a mean of eye corners, nose tip and mouth corners.
_LM68 = np.array([31, 37, 40, 43, 46, 49, 55]) - 1


class Deep3DRecon(nn.Module):
    """Deep3DFaceRecon's ``ReconNetWrapper``: ResNet-50 + 1×1 conv heads -> 257 coefficients."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = torchvision.models.resnet50(weights=None)
        self.backbone.fc = nn.Identity()  # the checkpoint has no fc (use_last_fc=False)
        self.final_layers = nn.ModuleList([nn.Conv2d(2048, n, 1) for n in HEADS])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, 224, 224) aligned RGB in [0, 1] -> (B, 257) coefficients."""
        pooled = rearrange(self.backbone(x), "b c -> b c 1 1")
        return torch.cat([rearrange(head(pooled), "b n 1 1 -> b n") for head in self.final_layers], dim=1)


def load_deep3d(path: str | Path) -> Deep3DRecon:
    """Deep3DRecon from ``epoch_20.pth`` (state dict under ``net_recon``), strictly key-checked."""
    return load_state_dict(Deep3DRecon(), Path(path), "deep3d", key="net_recon")


def load_lm3d(path: str | Path) -> np.ndarray:
    """(5, 3) standard 3D landmarks (left eye, right eye, nose, left mouth, right mouth) from the .mat file."""
    try:
        lm = scipy.io.loadmat(str(path))["lm"]
    except (OSError, ValueError, KeyError) as err:
        raise CheckpointError(f"{path} is not Deep3DFaceRecon's similarity_Lm3D_all.mat: {err}") from err
    i = _LM68
    five = np.stack([lm[i[0]], lm[i[[1, 2]]].mean(0), lm[i[[3, 4]]].mean(0), lm[i[5]], lm[i[6]]])
    return five[[1, 2, 0, 3, 4]]


def pos(xp: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, float]:
    """Scaled-orthographic fit of 3D points x (5, 3) to 2D points xp (5, 2): translation (2,) and scale."""
    n = len(x)
    a = np.zeros((2 * n, 8))
    a[0::2, 0:3], a[0::2, 3] = x, 1
    a[1::2, 4:7], a[1::2, 7] = x, 1
    k = np.linalg.lstsq(a, xp.reshape(-1), rcond=None)[0]
    scale = (np.linalg.norm(k[0:3]) + np.linalg.norm(k[4:7])) / 2
    return np.array([k[3], k[7]]), float(scale)


def align_face(image: np.ndarray, lm5: np.ndarray, lm3d: np.ndarray) -> np.ndarray:
    """Deep3DFaceRecon's ``align_img``: (H, W, 3) uint8 + (5, 2) landmarks (y down) -> (224, 224, 3) uint8."""
    h0, w0 = image.shape[:2]
    lm = np.asarray(lm5, np.float64).copy()
    lm[:, 1] = h0 - 1 - lm[:, 1]  # the fit works with y up, as the reference flips before align_img
    t, s = pos(lm, lm3d)
    s = RESCALE / s
    w, h = int(w0 * s), int(h0 * s)
    left = int(w / 2 - SIZE / 2 + (t[0] - w0 / 2) * s)
    up = int(h / 2 - SIZE / 2 + (h0 / 2 - t[1]) * s)
    resized = Image.fromarray(image).resize((w, h), Image.BICUBIC)
    return np.asarray(resized.crop((left, up, left + SIZE, up + SIZE)))


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
