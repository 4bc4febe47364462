"""Frame-wise PSNR, SSIM (no weights) and LPIPS (AlexNet backbone weights) against the reference frames.

torchmetrics computes all three; frames are float RGB in [0, 1] (``data_range=1``, LPIPS with
``normalize=True``) and scores are averaged over all frames. LPIPS's linear heads ship with torchmetrics, its
AlexNet backbone is torchvision's ``alexnet-owt-7be5be79.pth``: torchvision looks for it in
``<torch hub>/checkpoints/``, so the file from the weights folder is shown to it there, never downloaded.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from einops import rearrange
from torchmetrics.image import (
    LearnedPerceptualImagePatchSimilarity,
    PeakSignalNoiseRatio,
    StructuralSimilarityIndexMeasure,
)

from readlit.errors import DataError, one_line
from readlit.eval.weights import REGISTRY, require


def psnr() -> PeakSignalNoiseRatio:
    """PSNR per frame in [0, 1], averaged over frames (not the PSNR of the pooled MSE)."""
    return PeakSignalNoiseRatio(data_range=1.0, dim=(1, 2, 3), reduction="elementwise_mean")


def ssim() -> StructuralSimilarityIndexMeasure:
    """SSIM (Gaussian 11×11, σ 1.5) over RGB frames in [0, 1]."""
    return StructuralSimilarityIndexMeasure(data_range=1.0)


def lpips(weights: str | Path | None = None, weights_dir: str | Path | None = None
          ) -> LearnedPerceptualImagePatchSimilarity:
    """LPIPS (AlexNet) over frames in [0, 1]; CheckpointError when the AlexNet file is missing, DataError when it
    is not AlexNet weights."""
    path = require("alexnet", weights_dir, weights).resolve()
    previous = torch.hub.get_dir()
    with tempfile.TemporaryDirectory() as hub:
        (Path(hub) / "checkpoints").mkdir()
        (Path(hub) / "checkpoints" / REGISTRY["alexnet"].filename).symlink_to(path)
        torch.hub.set_dir(hub)
        try:
            return LearnedPerceptualImagePatchSimilarity(net_type="alex", normalize=True)
        # torchvision raises whatever its unpickler or load_state_dict met: any failure is the file's. A file that
        # is there but unreadable stops the evaluation (DataError); only a missing one leaves LPIPS out.
        except Exception as err:
            raise DataError(f"weights.alexnet={path} is not torchvision's {REGISTRY['alexnet'].filename} "
                                  f"({one_line(err)}); get it again with python -m readlit.eval.weights "
                                  "--download") from err
        finally:
            torch.hub.set_dir(previous)


def to_unit(frames: torch.Tensor) -> torch.Tensor:
    """(F, H, W, 3) uint8 -> (F, 3, H, W) float in [0, 1]."""
    return rearrange(frames, "f h w c -> f c h w").float() / 255.0
