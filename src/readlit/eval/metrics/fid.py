"""FID: Fréchet distance of Inception pool3 features, with torch-fidelity's network, weights and protocol.

torch-fidelity's ``FeatureExtractorInceptionV3`` is the TF-ported FID Inception (1008 classes, the FID pooling
patches). It takes uint8 RGB frames and resizes them to 299 with a reproduction of TF1 ``resize_bilinear``
(no antialias), then scales by (x − 128)/128: the same numbers as torch-fidelity and torchmetrics with
``antialias=False``. Talking-head papers pool every frame of every video into one set per side (Wav2Lip,
DisCo), which is what feeding all frames through :meth:`FID.update` does.

The network and its weights file are :mod:`readlit.eval.networks.inception`; the file is never downloaded
implicitly here.
"""

from __future__ import annotations

from pathlib import Path

import torch

from readlit.eval.metrics.frechet import FrechetMetric
from readlit.eval.networks.inception import POOL3, load_inception
from readlit.eval.weights import require


class FID(FrechetMetric):
    """FID over uint8 frames; ``update(frames, real=True|False)`` with frames (N, 3, H, W) uint8 RGB.

    Args:
        weights: path of the Inception weights file, else the one in the weights folder.
        weights_dir: the weights folder (default $READLIT_WEIGHTS or <project>/weights).
    """

    def __init__(self, weights: str | Path | None = None, weights_dir: str | Path | None = None, **kwargs) -> None:
        super().__init__(POOL3, unbiased=True, **kwargs)
        self.extractor = load_inception(require("inception", weights_dir, weights))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) uint8 RGB -> (N, 2048) pool3 features."""
        if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"FID takes (N, 3, H, W) uint8 RGB frames, got {tuple(x.shape)} {x.dtype}")
        with torch.no_grad():
            return self.extractor(x.to(self.device))[0]
