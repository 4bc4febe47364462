"""Inception-v1 I3D (Carreira & Zisserman 2017), Kinetics-400 logits: the FVD feature network.

Provenance
    Paper: Carreira & Zisserman 2017, "Quo Vadis, Action Recognition? A New Model and the Kinetics Dataset";
    FVD: Unterthiner et al. 2018 (google-research ``frechet_video_distance.py``, TF-Hub
    ``deepmind/i3d-kinetics-400/1``).
    Original: ``InceptionI3d`` of piergiaj/pytorch-i3d ``pytorch_i3d.py``, in the copies VideoGPT
    (``videogpt/fvd/pytorch_i3d.py``), TATS, cd-fvd and DisCo (``tool/metrics/inception3d.py``) use. Module
    names and tensor shapes are theirs, so ``i3d_pretrained_400.pt`` (VideoGPT's conversion of the TF-Hub
    network) loads by name. Convolutions and pools pad like TensorFlow's "SAME" (computed from the input
    size), batch norm uses eps 1e-5 as in that port. The output is the 400-d logits averaged over time,
    before softmax: the FVD embedding (not the 1024-d pool feature). StyleGAN-V's ``i3d_torchscript.pt``
    (the same TF-Hub network as TorchScript) is called as StyleGAN-V calls it (:class:`TorchScriptI3D`).
    Weights: ``i3d_pretrained_400.pt`` (a state dict); ``i3d_torchscript.pt``.
    Checked: tests load a random state dict through :func:`load_i3d` (the port's key names, strict check)
    and call a stand-in TorchScript module with StyleGAN-V's signature. Not checked here against the
    released weights' outputs.
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
    """Conv3d (no bias unless there is no BN) + BN + ReLU with SAME padding."""

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int, int] = (1, 1, 1),
                 stride: tuple[int, int, int] = (1, 1, 1), norm_act: bool = True) -> None:
        super().__init__()
        self.kernel, self.stride, self.norm_act = kernel, stride, norm_act
        self.conv3d = nn.Conv3d(cin, cout, kernel, stride, padding=0, bias=not norm_act)
        if norm_act:
            self.bn = nn.BatchNorm3d(cout, eps=1e-5, momentum=0.001)

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

    def __init__(self, cin: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        self.b0 = Unit3D(cin, widths[0])
        self.b1a, self.b1b = Unit3D(cin, widths[1]), Unit3D(widths[1], widths[2], (3, 3, 3))
        self.b2a, self.b2b = Unit3D(cin, widths[3]), Unit3D(widths[3], widths[4], (3, 3, 3))
        self.b3a, self.b3b = MaxPoolSame((3, 3, 3), (1, 1, 1)), Unit3D(cin, widths[5])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))]
        return torch.cat(branches, dim=1)


class InceptionI3d(nn.Module):
    """I3D up to the Kinetics-400 logits."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        layers: dict[str, nn.Module] = {
            "Conv3d_1a_7x7": Unit3D(3, 64, (7, 7, 7), (2, 2, 2)),
            "MaxPool3d_2a_3x3": MaxPoolSame((1, 3, 3), (1, 2, 2)),
            "Conv3d_2b_1x1": Unit3D(64, 64),
            "Conv3d_2c_3x3": Unit3D(64, 192, (3, 3, 3)),
            "MaxPool3d_3a_3x3": MaxPoolSame((1, 3, 3), (1, 2, 2)),
        }
        for name, (cin, widths) in _MIXED.items():
            if name == "Mixed_4b":
                layers["MaxPool3d_4a_3x3"] = MaxPoolSame((3, 3, 3), (2, 2, 2))
            if name == "Mixed_5b":
                layers["MaxPool3d_5a_2x2"] = MaxPoolSame((2, 2, 2), (2, 2, 2))
            layers[name] = InceptionModule(cin, widths)
        for name, layer in layers.items():  # attribute names are the checkpoint's key prefixes
            self.add_module(name, layer)
        self.order = list(layers)
        self.avg_pool = nn.AvgPool3d((2, 7, 7), (1, 1, 1))
        self.logits = Unit3D(1024, num_classes, norm_act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, T, 224, 224) in [-1, 1], T >= 9 (16 in FVD) -> (B, 400) time-averaged logits."""
        assert x.shape[-2:] == (224, 224) and x.shape[2] > 8, f"I3D needs (B, 3, T>8, 224, 224), got {x.shape}"
        for name in self.order:
            x = getattr(self, name)(x)
        x = self.logits(self.avg_pool(x))  # (B, 400, T', 1, 1); dropout is the identity in eval
        return rearrange(x, "b k t 1 1 -> b k t").mean(dim=2)


def load_i3d(path: str | Path) -> InceptionI3d:
    """The PyTorch I3D from ``i3d_pretrained_400.pt`` (a state dict), strictly key-checked."""
    return load_state_dict(InceptionI3d(), Path(path), "i3d_pretrained_400")


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
