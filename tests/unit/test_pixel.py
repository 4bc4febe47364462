"""PSNR/SSIM/LPIPS wrappers; LPIPS's AlexNet only from the weights folder."""

import numpy as np
import pytest
import torch
import torchvision

from readlit.errors import CheckpointError
from readlit.eval.metrics import pixel


def test_lpips_loads_alexnet_from_the_weights_folder_only(tmp_path):
    with pytest.raises(CheckpointError, match="alexnet-owt-7be5be79.pth"):
        pixel.lpips(weights_dir=tmp_path)
    torch.manual_seed(0)
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), tmp_path / "alexnet-owt-7be5be79.pth")
    hub = torch.hub.get_dir()
    metric = pixel.lpips(weights_dir=tmp_path)
    assert torch.hub.get_dir() == hub
    frames = torch.rand(2, 3, 64, 64)
    metric.update(frames, frames)
    assert float(metric.compute()) == pytest.approx(0.0, abs=1e-6)


def test_psnr_ssim_on_unit_frames():
    frames = pixel.to_unit(torch.full((2, 16, 16, 3), 128, dtype=torch.uint8))
    assert frames.shape == (2, 3, 16, 16)
    psnr, ssim = pixel.psnr(), pixel.ssim()
    psnr.update(frames * 0.9, frames)
    ssim.update(frames, frames)
    assert float(psnr.compute()) == pytest.approx(-10 * np.log10(float(((frames * 0.1) ** 2).mean())), rel=1e-4)
    assert float(ssim.compute()) == pytest.approx(1.0, abs=1e-4)


def test_psnr_is_the_mean_of_per_frame_values():
    real = torch.zeros(2, 3, 8, 8)
    fake = torch.stack([torch.full((3, 8, 8), 0.1), torch.full((3, 8, 8), 0.01)])
    metric = pixel.psnr()
    metric.update(fake[:1], real[:1])
    metric.update(fake[1:], real[1:])
    assert float(metric.compute()) == pytest.approx((20.0 + 40.0) / 2, rel=1e-5)
