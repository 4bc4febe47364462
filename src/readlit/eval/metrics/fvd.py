"""FVD: Fréchet distance of I3D Kinetics-400 logits of 16-frame clips.

Protocols (``reference/metrics.md`` §2):

- ``styleganv`` (default; StyleGAN-V ``fvd2048_16f``): one clip of 16 consecutive frames per video (here the
  first 16, so runs are repeatable), frames resized to 224² and scaled to [−1, 1], covariance divided by N.
  With ``i3d_torchscript.pt`` the TorchScript detector gets the uint8-range video with ``rescale=True,
  resize=True`` exactly as StyleGAN-V calls it; with ``i3d_pretrained_400.pt`` (same TF-Hub network, PyTorch
  port, batch-norm eps 1e-5 as VideoGPT/TATS run it) frames are resized bilinearly (half-pixel, no antialias)
  first.
- ``disco`` (DisCo, used by the Hallo family): each frame's channels resized as float images with PIL bicubic
  to 224² (DisCo's ``make_resizer("PIL", False, "bicubic", (224, 224))``: no rounding to uint8, no clipping),
  ``x/127.5 − 1``, every stride-1 window of 16 frames is a clip, batch-norm eps 1e-3 as DisCo's I3D, covariance
  divided by N − 1 (np.cov). Needs ``i3d_pretrained_400.pt``.

Small test sets bias FVD (StyleGAN-V uses 2048 clips); report the clip count next to the number.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from PIL import Image

from readlit.errors import ConfigError, DataError
from readlit.eval.metrics.frechet import FrechetMetric
from readlit.eval.networks.i3d import NUM_CLASSES, TF_BN_EPS, VIDEOGPT_BN_EPS, TorchScriptI3D, load_i3d
from readlit.eval.weights import require

CLIP = 16
SIZE = 224
PROTOCOLS = ("styleganv", "disco")
BN_EPS = {"styleganv": VIDEOGPT_BN_EPS, "disco": TF_BN_EPS}  # of the PyTorch I3D each protocol runs


def clips(frames: np.ndarray, protocol: str) -> np.ndarray:
    """(F, H, W, 3) uint8 -> (N, 16, H, W, 3): the first 16 frames (styleganv) or every window (disco)."""
    if len(frames) < CLIP:
        raise DataError(f"FVD needs videos of at least {CLIP} frames, got {len(frames)}")
    if protocol == "styleganv":
        return frames[None, :CLIP]
    index = np.arange(len(frames) - CLIP + 1)[:, None] + np.arange(CLIP)[None]
    return frames[index]


def float_bicubic_224(batch: np.ndarray) -> torch.Tensor:
    """DisCo's resizer: every channel of every frame as a float image, PIL bicubic to 224².

    (N, T, H, W, 3) uint8 -> (N, 3, T, 224, 224) float32 in 0..255 units, neither rounded nor clipped (bicubic
    overshoots at edges): PIL's uint8 RGB path would round, which moves the logits.
    """
    planes = np.ascontiguousarray(rearrange(batch, "n t h w c -> (n t c) h w"), dtype=np.float32)
    out = np.stack([np.asarray(Image.fromarray(plane).resize((SIZE, SIZE), Image.BICUBIC)) for plane in planes])
    return rearrange(torch.from_numpy(out), "(n t c) h w -> n c t h w", n=len(batch), c=3)


def i3d_input(batch: np.ndarray, protocol: str) -> torch.Tensor:
    """(N, 16, H, W, 3) uint8 clips -> (N, 3, 16, 224, 224) for :class:`InceptionI3d`, 0..255 mapped to −1..1."""
    if protocol == "disco":
        return float_bicubic_224(batch) / 127.5 - 1.0
    video = rearrange(torch.from_numpy(batch).float(), "n t h w c -> (n t) c h w")
    video = F.interpolate(video, size=(SIZE, SIZE), mode="bilinear", align_corners=False, antialias=False)
    return rearrange(video, "(n t) c h w -> n c t h w", n=len(batch)) / 255.0 * 2.0 - 1.0


class FVD(FrechetMetric):
    """FVD over videos; ``update(frames, real=...)`` adds the clips of one video, frames (F, H, W, 3) uint8 RGB.

    Args:
        protocol: ``styleganv`` or ``disco``.
        backend: ``torchscript`` (``i3d_torchscript.pt``) or ``state_dict`` (``i3d_pretrained_400.pt``);
            disco needs ``state_dict``.
        weights: path of that file, else the one in the weights folder.
        weights_dir: the weights folder.
        batch: clips per I3D forward.
    """

    def __init__(self, protocol: str = "styleganv", backend: str = "torchscript", weights: str | Path | None = None,
                 weights_dir: str | Path | None = None, batch: int = 8, **kwargs) -> None:
        if protocol not in PROTOCOLS:
            raise ConfigError(f"protocol={protocol} is not one of {', '.join(PROTOCOLS)}")
        if backend not in ("torchscript", "state_dict"):
            raise ConfigError(f"backend={backend} is not one of torchscript, state_dict")
        if protocol == "disco" and backend != "state_dict":
            raise ConfigError("fvd protocol disco uses the PyTorch I3D: set backend=state_dict")
        super().__init__(NUM_CLASSES, unbiased=protocol == "disco", **kwargs)
        self.protocol, self.backend, self.batch = protocol, backend, batch
        if backend == "torchscript":
            self.net = TorchScriptI3D(require("i3d_torchscript", weights_dir, weights))
        else:
            self.net = load_i3d(require("i3d_pretrained_400", weights_dir, weights), BN_EPS[protocol])

    def features(self, x: np.ndarray) -> torch.Tensor:
        """(F, H, W, 3) uint8 video -> (N, 400) logits of its clips."""
        all_clips, out = clips(np.asarray(x), self.protocol), []
        with torch.no_grad():
            for start in range(0, len(all_clips), self.batch):
                batch = all_clips[start:start + self.batch]
                if self.backend == "torchscript":
                    video = rearrange(torch.from_numpy(batch).float(), "n t h w c -> n c t h w")
                else:
                    video = i3d_input(batch, self.protocol)
                out.append(self.net(video.to(self.device)))
        return torch.cat(out)
