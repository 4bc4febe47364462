"""FVD: the TorchScript path, clip protocols and preprocessing."""

import numpy as np
import pytest
import torch

from readlit.errors import CheckpointError, ConfigError, DataError
from readlit.eval.metrics.fvd import FVD, clips, i3d_input


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
