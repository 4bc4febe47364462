"""FVD: the TorchScript path, clip protocols, each protocol's preprocessing and batch-norm eps."""

import numpy as np
import pytest
import torch
from einops import rearrange

from readlit.errors import CheckpointError, ConfigError, DataError
from readlit.eval.metrics.fvd import FVD, clips, i3d_input
from readlit.eval.networks.i3d import InceptionI3d


def test_clip_protocols():
    video = np.arange(20, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 3), np.uint8)
    first = clips(video, "styleganv")
    assert first.shape == (1, 16, 4, 4, 3) and first[0, :, 0, 0, 0].tolist() == list(range(16))
    windows = clips(video, "disco")
    assert windows.shape == (5, 16, 4, 4, 3) and windows[4, 0, 0, 0, 0] == 4
    with pytest.raises(DataError, match="16 frames"):
        clips(video[:10], "styleganv")


@pytest.mark.parametrize("protocol", ["styleganv", "disco"])
def test_preprocessing_to_224_in_minus_one_one(protocol):
    batch = np.full((1, 16, 32, 48, 3), 255, np.uint8)
    batch[..., 0] = 0
    x = i3d_input(batch, protocol)
    assert x.shape == (1, 3, 16, 224, 224)
    torch.testing.assert_close(x[0, 0], torch.full((16, 224, 224), -1.0))
    torch.testing.assert_close(x[0, 1], torch.full((16, 224, 224), 1.0))


class _StubDetector(torch.nn.Module):
    """Same call signature as StyleGAN-V's i3d_torchscript.pt; the mean pixel spread over 400 outputs."""

    def forward(self, x: torch.Tensor, rescale: bool, resize: bool, return_features: bool) -> torch.Tensor:
        value = x.mean(dim=(1, 2, 3, 4))
        if rescale:
            value = value / 255.0 * 2.0 - 1.0
        return value[:, None] * torch.linspace(0.5, 1.5, 400)[None]


def test_torchscript_path_and_metric(tmp_path):
    path = tmp_path / "i3d_torchscript.pt"
    torch.jit.save(torch.jit.script(_StubDetector()), path)
    fvd = FVD(weights=path)
    rng = np.random.default_rng(0)
    for _ in range(3):
        video = rng.integers(0, 256, (16, 8, 8, 3), dtype=np.uint8)
        fvd.update(video, real=True)
        fvd.update(video, real=False)
    assert abs(float(fvd.compute())) < 1e-6
    torch.save({"a": torch.zeros(1)}, tmp_path / "state.pt")
    with pytest.raises(CheckpointError, match="not a TorchScript I3D"):
        FVD(weights=tmp_path / "state.pt")


def test_disco_needs_the_state_dict_backend():
    with pytest.raises(ConfigError, match="state_dict"):
        FVD("disco", "torchscript")


@pytest.mark.parametrize(("protocol", "eps"), [("styleganv", 1e-5), ("disco", 1e-3)])
def test_each_protocol_runs_the_i3d_with_its_batch_norm_eps(tmp_path, protocol, eps):
    torch.manual_seed(0)
    torch.save(InceptionI3d(bn_eps=0.5).state_dict(), tmp_path / "i3d_pretrained_400.pt")  # eps is not saved
    net = FVD(protocol, "state_dict", weights=tmp_path / "i3d_pretrained_400.pt").net
    assert {m.eps for m in net.modules() if isinstance(m, torch.nn.BatchNorm3d)} == {eps}
    unit = net.Conv3d_2b_1x1.double()  # 1×1×1 convolution: no padding, so the unit is conv -> BN -> ReLU
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():  # variances near eps, where 1e-3 and 1e-5 differ by about 30 %
        unit.bn.running_mean.normal_(0, 0.5, generator=gen)
        unit.bn.running_var.uniform_(5e-4, 3e-3, generator=gen)
        unit.bn.weight.uniform_(0.5, 1.5, generator=gen)
        unit.bn.bias.normal_(0, 0.2, generator=gen)
        x = torch.randn(2, 64, 3, 5, 5, dtype=torch.float64, generator=gen)
        conv = torch.einsum("bcthw,oc->bothw", x, unit.conv3d.weight[:, :, 0, 0, 0])
        per_channel = [rearrange(v, "c -> 1 c 1 1 1") for v in (unit.bn.running_mean, unit.bn.running_var,
                                                                unit.bn.weight, unit.bn.bias)]
        mean, var, weight, bias = per_channel
        expected = torch.relu((conv - mean) / torch.sqrt(var + eps) * weight + bias)
        torch.testing.assert_close(unit(x), expected)


def _keys_cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = −0.5, PIL's BICUBIC filter (support 2)."""
    x, a = np.abs(x), -0.5
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return np.where(x < 1, near, np.where(x < 2, far, 0.0))


def _bicubic_matrix(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) weights of PIL's bicubic resampling along one axis (``precompute_coeffs``).

    Output pixel i is centred at (i + 0.5)·s in input pixels, s = size_in / size_out; when shrinking the kernel
    is widened by s; taps are clamped to the image and each row is normalised to sum 1.
    """
    scale = size_in / size_out
    stretch = max(scale, 1.0)
    rows = np.zeros((size_out, size_in))
    for i in range(size_out):
        centre = (i + 0.5) * scale
        taps = np.arange(max(int(centre - 2 * stretch + 0.5), 0), min(int(centre + 2 * stretch + 0.5), size_in))
        weights = _keys_cubic((taps - centre + 0.5) / stretch)
        rows[i, taps] = weights / weights.sum()
    return rows


@pytest.mark.parametrize("size", [(20, 28), (260, 300)])
def test_disco_resizes_float_channels_with_pil_bicubic(size):
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, (1, 16, *size, 3), dtype=np.uint8)
    rows, cols = _bicubic_matrix(size[0], 224), _bicubic_matrix(size[1], 224)
    resized = rows @ rearrange(batch.astype(np.float64), "n t h w c -> n c t h w") @ cols.T
    x = i3d_input(batch, "disco")
    # float: no rounding to uint8 (up to 0.5 / 127.5 = 0.004 off) and no clipping of the bicubic overshoot
    torch.testing.assert_close(x.double(), torch.from_numpy(resized / 127.5 - 1.0), atol=2e-6, rtol=0)
    assert x.min() < -1 and x.max() > 1


def _bilinear_matrix(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) weights of half-pixel bilinear resampling without antialias (align_corners=False).

    Output pixel i samples input position max((i + 0.5)·s − 0.5, 0), s = size_in / size_out, between its two
    neighbours (the last one repeated at the border).
    """
    rows = np.zeros((size_out, size_in))
    for i in range(size_out):
        position = max((i + 0.5) * size_in / size_out - 0.5, 0.0)
        left = int(position)
        rows[i, left] += 1 - (position - left)
        rows[i, min(left + 1, size_in - 1)] += position - left
    return rows


@pytest.mark.parametrize("size", [(20, 28), (260, 300)])
def test_styleganv_resizes_bilinearly_then_scales_to_minus_one_one(size):
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, (1, 16, *size, 3), dtype=np.uint8)
    rows, cols = _bilinear_matrix(size[0], 224), _bilinear_matrix(size[1], 224)
    resized = rows @ rearrange(batch.astype(np.float64), "n t h w c -> n c t h w") @ cols.T
    x = i3d_input(batch, "styleganv")
    # torch computes source positions in float32 (1e-4 here); rounding to uint8 is up to 4e-3 off, antialias far more
    torch.testing.assert_close(x.double(), torch.from_numpy(resized / 255.0 * 2.0 - 1.0), atol=1e-4, rtol=0)
