"""The VAE round trip on synthetic clips: PSNR and mouth-opening correlations per identity and per session."""

import numpy as np
import pytest
import torch


class _Exact(torch.nn.Module):
    """A stand-in VAE whose round trip is exact, or shuffles frames in time (mouth out of step)."""

    temporal_ratio = 8

    def __init__(self, shuffle: bool):
        super().__init__()
        self.shuffle = shuffle

    def encode(self, video):
        return video

    def decode(self, z):
        if not self.shuffle:
            return z
        order = torch.randperm(z.shape[2], generator=torch.Generator().manual_seed(0))
        return z[:, :, order]


@pytest.mark.parametrize("shuffle", [False, True])
def test_roundtrip_scores_psnr_and_mouth_correlation_per_identity(shuffle):
    from readlit.data.synthetic_datamodule import SyntheticTalkingHeads
    from readlit.eval.synthetic.vae_roundtrip import roundtrip

    dataset = SyntheticTalkingHeads(0, [36, 37], 1, 200, 33, 48, 64, 25, 16000, True, 50, None)
    result = roundtrip(_Exact(shuffle), dataset, progress=False)
    assert result["clips"] == len(dataset) == 8 and set(result["identities"]) == {"id0036", "id0037"}
    assert result["mouth_corr_input"] > 0.95
    if shuffle:
        assert result["psnr"] < 40 and abs(result["mouth_corr"]) < 0.5
    else:
        assert result["psnr"] > 100 and result["mouth_corr"] == result["mouth_corr_input"]
        assert result["mouth_corr_io"] == pytest.approx(1.0)
    # the synthetic mouth moves within 8-frame spans: their means lose much of it, but not all
    assert 0.2 < result["mouth_corr_latent_mean"] < 0.8


@pytest.mark.parametrize("shuffle", [False, True])
def test_session_roundtrip_scores_whole_sessions_in_one_piece(shuffle):
    from readlit.data.synthetic_datamodule import SyntheticTalkingHeads
    from readlit.eval.synthetic.vae_roundtrip import session_roundtrip

    dataset = SyntheticTalkingHeads(0, [36, 37], 1, 100, 33, 48, 64, 25, 16000, True, 50, None)
    result = session_roundtrip(_Exact(shuffle), dataset, progress=False)
    assert result["sessions"] == 2 and result["session_frames"] == 97  # 100 frames cut to 1 + 8k
    if shuffle:
        assert result["psnr_session"] < 40 and abs(result["mouth_corr_session"]) < 0.5
    else:
        assert result["psnr_session"] > 100 and result["mouth_corr_session"] > 0.95


def test_hold_latent_means_keeps_frame_zero_and_averages_each_span():
    from readlit.eval.synthetic.vae_roundtrip import hold_latent_means

    held = hold_latent_means(np.array([5.0, 1.0, 3.0, 10.0, 20.0]), ratio=2)
    np.testing.assert_array_equal(held, [5.0, 2.0, 2.0, 15.0, 15.0])
    np.testing.assert_array_equal(hold_latent_means(np.arange(9.0), ratio=8), [0.0] + [4.5] * 8)
    with pytest.raises(ValueError, match=r"1 \+ 2k"):
        hold_latent_means(np.arange(4.0), ratio=2)
