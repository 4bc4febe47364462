"""PSNR/SSIM/LPIPS wrappers (LPIPS's AlexNet only from the weights folder) and the synthetic mouth-sync metric."""

import numpy as np
import pytest
import torch
import torchvision

from readlit.data.synthetic import make_identity, make_session, render_frames
from readlit.errors import CheckpointError
from readlit.eval import pixel
from readlit.eval.mouth_sync_metric import MouthSync, score_video


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


def test_mouth_sync_is_high_for_synced_and_finds_a_shift():
    identity = make_identity(0, 1)
    session = make_session(0, identity, 0, 49)
    frames = render_frames(identity, session, 0, 49, 64)
    synced = score_video(frames, session.audio, identity)
    late = score_video(np.concatenate([frames[:2], frames[:-2]]), session.audio, identity)
    assert synced["mouth_sync"] > 0.8 and synced["mouth_offset"] == 0
    assert late["mouth_offset"] == 2
    metric = MouthSync()
    metric.update(frames, session.audio, identity)
    assert float(metric.compute()["mouth_sync"]) == pytest.approx(synced["mouth_sync"])


def test_psnr_is_the_mean_of_per_frame_values():
    real = torch.zeros(2, 3, 8, 8)
    fake = torch.stack([torch.full((3, 8, 8), 0.1), torch.full((3, 8, 8), 0.01)])
    metric = pixel.psnr()
    metric.update(fake[:1], real[:1])
    metric.update(fake[1:], real[1:])
    assert float(metric.compute()) == pytest.approx((20.0 + 40.0) / 2, rel=1e-5)
