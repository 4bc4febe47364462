"""Inception-v1 I3D (Carreira & Zisserman 2017), Kinetics-400 logits: the FVD feature network.

Provenance
    Paper: Carreira & Zisserman 2017, "Quo Vadis, Action Recognition? A New Model and the Kinetics Dataset";
    FVD: Unterthiner et al. 2018 (google-research ``frechet_video_distance.py``, TF-Hub
    ``deepmind/i3d-kinetics-400/1``).
    Original: ``InceptionI3d`` of piergiaj/pytorch-i3d ``pytorch_i3d.py``, in the copies VideoGPT
    (``videogpt/fvd/pytorch_i3d.py``), TATS, cd-fvd and DisCo (``tool/metrics/inception3d.py``) use. Module
    names and tensor shapes are theirs, so ``i3d_pretrained_400.pt`` (VideoGPT's conversion of the TF-Hub
    network) loads by name. Convolutions and pools pad like TensorFlow's "SAME" (computed from the input
    size). The batch-norm eps is not in the state dict and the copies disagree: piergiaj's port and DisCo's
    copy use 1e-3 (the TF network's), VideoGPT's copy 1e-5; it changes the logits by up to 4.3 %, so the
    caller names it (:data:`TF_BN_EPS`, :data:`VIDEOGPT_BN_EPS`). DisCo's copy averages the last feature map
    over time with kernel 1 where VideoGPT's uses 2; on 16-frame clips that map has two time steps and the
    logits layer is linear, so both give the same logits. The output is the 400-d logits averaged over time,
    before softmax: the FVD embedding (not the 1024-d pool feature). StyleGAN-V's ``i3d_torchscript.pt``
    (the same TF-Hub network as TorchScript) is called as StyleGAN-V calls it (:class:`TorchScriptI3D`).
    Weights: ``i3d_pretrained_400.pt`` (a state dict); ``i3d_torchscript.pt``.
    Checked: tests load a random state dict through :func:`load_i3d` (the port's key names, strict check),
    compute a unit's batch norm by hand with each eps, and call a stand-in TorchScript module with StyleGAN-V's
    signature. An independent check against DisCo's ``inception3d.py`` found the logits up to 4.3 % apart
    with eps 1e-5 and 4e-5 apart with 1e-3. A local run (not part of the tests) of DisCo's
    ``tool/metrics/inception3d.py`` and ``resize.py`` (commit c4fa48a) on a random state dict gave the disco
    protocol's resized frames bit for bit and its logits to float32 rounding (relative 5e-7) with eps 1e-3;
    VideoGPT's ``videogpt/fvd/pytorch_i3d.py`` (commit 733d2b1) gave identical logits with eps 1e-5.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from readlit.errors import CheckpointError
from readlit.eval.weights import load_state_dict

NUM_CLASSES = 400
TF_BN_EPS = 1e-3  # piergiaj/pytorch-i3d and DisCo's copy, as the TF network
VIDEOGPT_BN_EPS = 1e-5  # VideoGPT's copy of the port
# (in channels, [b0, b1a, b1b, b2a, b2b, b3b]) per mixed block, in network order.
_MIXED = {
    "Mixed_3b": (192, (64, 96, 128, 16, 32, 32)),
    "Mixed_3c": (256, (128, 128, 192, 32, 96, 64)),
    "Mixed_4b": (480, (192, 96, 208, 16, 48, 64)),
    "Mixed_4c": (512, (160, 112, 224, 24, 64, 64)),
    "Mixed_4d": (512, (128, 128, 256, 24, 64, 64)),
    "Mixed_4e": (512, (112, 144, 288, 32, 64, 64)),
    "Mixed_4f": (528, (256, 160, 320, 32, 128, 128)),
    "Mixed_5b": (832, (256, 160, 320, 32, 128, 128)),
    "Mixed_5c": (832, (384, 192, 384, 48, 128, 128)),
}


def _same_pad(x: torch.Tensor, kernel: tuple[int, ...], stride: tuple[int, ...]) -> torch.Tensor:
    """Zero-pad (B, C, T, H, W) like TF "SAME": total pad k − s (or k − size % s), the extra at the end."""
    pads = []
    for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride), strict=True):
        total = max(k - (s if size % s == 0 else size % s), 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class Unit3D(nn.Module):
    """Conv3d (no bias unless there is no BN) + BN (eps ``bn_eps``) + ReLU with SAME padding."""

    def __init__(self, cin: int, cout: int, bn_eps: float, kernel: tuple[int, int, int] = (1, 1, 1),
                 stride: tuple[int, int, int] = (1, 1, 1), norm_act: bool = True) -> None:
        super().__init__()
        self.kernel, self.stride, self.norm_act = kernel, stride, norm_act
        self.conv3d = nn.Conv3d(cin, cout, kernel, stride, padding=0, bias=not norm_act)
        if norm_act:
            self.bn = nn.BatchNorm3d(cout, eps=bn_eps, momentum=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, cout, ⌈T/s⌉, ⌈H/s⌉, ⌈W/s⌉)."""
        x = self.conv3d(_same_pad(x, self.kernel, self.stride))
        return F.relu(self.bn(x)) if self.norm_act else x


class MaxPoolSame(nn.MaxPool3d):
    """Max pool with TF "SAME" zero padding (zeros, as in the port: inputs are post-ReLU)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(_same_pad(x, self.kernel_size, self.stride))


class InceptionModule(nn.Module):
    """Four branches (1×1; 1×1→3³; 1×1→3³; pool→1×1) concatenated on channels."""

    def __init__(self, cin: int, widths: tuple[int, ...], bn_eps: float) -> None:
        super().__init__()
        self.b0 = Unit3D(cin, widths[0], bn_eps)
        self.b1a, self.b1b = Unit3D(cin, widths[1], bn_eps), Unit3D(widths[1], widths[2], bn_eps, (3, 3, 3))
        self.b2a, self.b2b = Unit3D(cin, widths[3], bn_eps), Unit3D(widths[3], widths[4], bn_eps, (3, 3, 3))
        self.b3a, self.b3b = MaxPoolSame((3, 3, 3), (1, 1, 1)), Unit3D(cin, widths[5], bn_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))]
        return torch.cat(branches, dim=1)


class InceptionI3d(nn.Module):
    """I3D up to the Kinetics-400 logits.

    Args:
        bn_eps: batch-norm eps of every unit, :data:`TF_BN_EPS` or :data:`VIDEOGPT_BN_EPS` (not in the weights).
    """

    def __init__(self, bn_eps: float, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        layers: dict[str, nn.Module] = {
            "Conv3d_1a_7x7": Unit3D(3, 64, bn_eps, (7, 7, 7), (2, 2, 2)),
            "MaxPool3d_2a_3x3": MaxPoolSame((1, 3, 3), (1, 2, 2)),
            "Conv3d_2b_1x1": Unit3D(64, 64, bn_eps),
            "Conv3d_2c_3x3": Unit3D(64, 192, bn_eps, (3, 3, 3)),
            "MaxPool3d_3a_3x3": MaxPoolSame((1, 3, 3), (1, 2, 2)),
        }
        for name, (cin, widths) in _MIXED.items():
            if name == "Mixed_4b":
                layers["MaxPool3d_4a_3x3"] = MaxPoolSame((3, 3, 3), (2, 2, 2))
            if name == "Mixed_5b":
                layers["MaxPool3d_5a_2x2"] = MaxPoolSame((2, 2, 2), (2, 2, 2))
            layers[name] = InceptionModule(cin, widths, bn_eps)
        for name, layer in layers.items():  # attribute names are the checkpoint's key prefixes
            self.add_module(name, layer)
        self.order = list(layers)
        self.avg_pool = nn.AvgPool3d((2, 7, 7), (1, 1, 1))
        self.logits = Unit3D(1024, num_classes, bn_eps, norm_act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, T, 224, 224) in [-1, 1], T >= 9 (16 in FVD) -> (B, 400) time-averaged logits."""
        assert x.shape[-2:] == (224, 224) and x.shape[2] > 8, f"I3D needs (B, 3, T>8, 224, 224), got {x.shape}"
        for name in self.order:
            x = getattr(self, name)(x)
        x = self.logits(self.avg_pool(x))  # (B, 400, T', 1, 1); dropout is the identity in eval
        return rearrange(x, "b k t 1 1 -> b k t").mean(dim=2)


def load_i3d(path: str | Path, bn_eps: float) -> InceptionI3d:
    """The PyTorch I3D from ``i3d_pretrained_400.pt`` (a state dict), strictly key-checked, with that BN eps."""
    return load_state_dict(InceptionI3d(bn_eps), Path(path), "i3d_pretrained_400")


class TorchScriptI3D(torch.nn.Module):
    """StyleGAN-V's ``i3d_torchscript.pt``, called as StyleGAN-V calls it (it normalises and resizes inside)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        try:
            self.detector = torch.jit.load(str(path), map_location="cpu").eval()
        except (RuntimeError, ValueError) as err:
            first = " ".join(str(err).split())[:200]
            raise CheckpointError(f"{path} is not a TorchScript I3D (i3d_torchscript.pt for fvd): {first}") from err

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """video: (B, 3, T, H, W) values 0..255 -> (B, 400) logits."""
        return self.detector(video, rescale=True, resize=True, return_features=True)
