"""Deep3DFaceRecon's coefficient regressor and its 5-point face alignment: the E-FID feature network.

Provenance
    Paper: Deng et al. 2019, "Accurate 3D Face Reconstruction with Weakly-Supervised Learning: From Single
    Image to Image Set". E-FID (EMO, Tian et al. 2024) is the FID formula on its 64 expression coefficients;
    that EMO used this network is an inference from the (B, 64) shape its followers quote, no public E-FID
    script exists.
    Original: sicxu/Deep3DFaceRecon_pytorch ``models/networks.py`` (``ReconNetWrapper``: a torchvision-layout
    ResNet-50 without fc and seven 1×1 conv heads giving 257 coefficients [80 identity, 64 expression,
    80 texture, 3 angle, 27 lighting, 2 xy, 1 z]; ``models/bfm.py`` ``split_coeff``: expression is
    ``coeffs[:, 80:144]``), ``util/preprocess.py`` (``align_img``, ``POS``) and ``util/load_mats.py``
    (``load_lm3d``).
    Weights: ``epoch_20.pth`` (network under ``net_recon``) and ``similarity_Lm3D_all.mat`` (standard 3D
    landmarks).
    Input: a 224² RGB face in [0, 1], aligned as Deep3DFaceRecon aligns it (:func:`align_face`): a scale and
    translation from five landmarks (eye centres, nose tip, mouth corners) fitted to the standard landmarks
    (``POS``), scale 102/s, PIL bicubic resize, 224² crop. Deep3DFaceRecon takes the five landmarks from dlib
    or MTCNN; readlit ships no landmark weights, so they are an input: (F, 5, 2) pixel x, y (y down).
    Checked: tests load a random ``net_recon`` state dict (strict keys, head widths 80/64/80/3/27/2/1), recover
    a known scale and translation with :func:`pos`, take the five points from a 68-point file as
    ``load_lm3d`` does, and centre a synthetic face at the reference scale. Not checked here against the
    released weights or against ``align_img`` run on the same image.
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

from readlit.errors import CheckpointError
from readlit.eval.weights import load_state_dict

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
