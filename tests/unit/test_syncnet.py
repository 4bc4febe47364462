"""SyncNet v2: MFCC as python_speech_features, checkpoint loading, windowing and the offset search."""

import math

import numpy as np
import pytest
import torch

from readlit.errors import CheckpointError, ConfigError
from readlit.eval import mfcc as M
from readlit.eval.syncnet import SyncNetV2, embed, load_syncnet, score_video, sync_scores


def _reference_mfcc(signal: np.ndarray, sr: int = 16000) -> np.ndarray:
    """python_speech_features 0.6 ``mfcc(signal, sr)`` written out literally, loop by loop."""
    signal = np.concatenate([[signal[0]], signal[1:] - 0.97 * signal[:-1]])
    n = 1 if len(signal) <= 400 else 1 + int(math.ceil((len(signal) - 400) / 160))
    signal = np.concatenate([signal, np.zeros((n - 1) * 160 + 400 - len(signal))])
    frames = np.stack([signal[i * 160:i * 160 + 400] for i in range(n)])
    pspec = np.abs(np.fft.rfft(frames, 512)) ** 2 / 512
    energy = pspec.sum(1)
    lowmel, highmel = 2595 * np.log10(1 + 0 / 700), 2595 * np.log10(1 + (sr / 2) / 700)
    melpoints = np.linspace(lowmel, highmel, 28)
    bins = np.floor(513 * (700 * (10 ** (melpoints / 2595) - 1)) / sr)
    fb = np.zeros((26, 257))
    for j in range(26):
        for i in range(int(bins[j]), int(bins[j + 1])):
            fb[j, i] = (i - bins[j]) / (bins[j + 1] - bins[j])
        for i in range(int(bins[j + 1]), int(bins[j + 2])):
            fb[j, i] = (bins[j + 2] - i) / (bins[j + 2] - bins[j + 1])
    logmel = np.log(pspec @ fb.T)
    k = np.arange(26)
    out = np.zeros((n, 13))
    for c in range(13):  # DCT-II, orthonormal
        scale = np.sqrt(1 / 26) if c == 0 else np.sqrt(2 / 26)
        out[:, c] = scale * (logmel * np.cos(np.pi * c * (2 * k + 1) / 52)).sum(1)
    out *= 1 + 11 * np.sin(np.pi * np.arange(13) / 22)
    out[:, 0] = np.log(energy)
    return out


def test_mfcc_matches_reference_formula():
    rng = np.random.default_rng(0)
    t = np.arange(16000 * 0.73) / 16000
    audio = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.normal(size=t.size)
    signal = M.to_int16_scale(audio)
    ours = M.mfcc(signal)
    assert ours.shape == (1 + math.ceil((len(signal) - 400) / 160), 13)
    np.testing.assert_allclose(ours, _reference_mfcc(signal), rtol=1e-9, atol=1e-9)


def test_int16_scale_is_ffmpeg_s16():
    np.testing.assert_array_equal(M.to_int16_scale(np.array([0.0, 0.5, -1.0, 1.0])), [0, 16384, -32768, 32767])


@pytest.mark.parametrize("shift", [-3, 0, 5])
def test_offset_search_finds_known_shift(shift):
    torch.manual_seed(0)
    table = torch.randn(80, 16)
    lip = table[20:60]
    aud = table[20 + shift:60 + shift]  # aud[i - shift] == lip[i]
    scores = sync_scores(lip, aud)
    assert scores["offset"] == shift
    # Only the |shift| windows whose partner falls in the zero padding add distance at the best offset.
    edge = lip[:abs(shift)] if shift > 0 else lip[len(lip) + shift:]
    expected = float((edge.double() + 1e-6).norm(dim=1).sum()) / len(lip)
    assert scores["sync_d"] == pytest.approx(expected, abs=1e-4)
    assert scores["sync_c"] > 1


class _CodedNet(torch.nn.Module):
    """Embeds a window by the frame index coded in its pixels / MFCC, so audio and video match by construction."""

    def __init__(self, shift: int):
        super().__init__()
        self.table, self.shift = torch.randn(200, 8, generator=torch.Generator().manual_seed(1)), shift

    def forward_lip(self, x):  # (N, 3, 5, 224, 224): pixel value = frame index
        return self.table[x[:, 0, 0, 0, 0].long()]

    def forward_aud(self, x):  # (N, 1, 13, 20): column value = MFCC step; 4 steps per frame
        frame = (x[:, 0, 0, 0] / 4).long()
        return self.table[frame + self.shift]  # audio content of frame j belongs to video frame j + shift


@pytest.mark.parametrize("shift", [0, 2, -4])
def test_windowing_and_offset_through_the_pipeline(shift):
    frames = 60
    video = torch.arange(frames, dtype=torch.float32)[None, :, None, None].expand(3, frames, 224, 224)
    cepstra = np.repeat(np.arange(frames * 4 + 2, dtype=np.float64)[:, None], 13, axis=1)
    lip, aud = embed(_CodedNet(shift), video, cepstra)
    assert lip.shape == (frames - 5, 8)
    assert sync_scores(lip, aud)["offset"] == shift


def test_syncnet_shapes():
    net = SyncNetV2().eval()
    with torch.no_grad():
        assert net.forward_aud(torch.randn(2, 1, 13, 20)).shape == (2, 1024)
        assert net.forward_lip(torch.rand(1, 3, 5, 224, 224) * 255).shape == (1, 1024)


def test_checkpoint_round_trip_and_wrong_keys(tmp_path):
    torch.manual_seed(0)
    net = SyncNetV2()
    path = tmp_path / "syncnet_v2.model"
    torch.save(net.state_dict(), path)
    loaded = load_syncnet(path)
    for key, value in net.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)
    bad = {f"module.{k}": v for k, v in net.state_dict().items()}
    torch.save(bad, tmp_path / "bad.model")
    with pytest.raises(CheckpointError, match="does not match the syncnet network.*missing keys"):
        load_syncnet(tmp_path / "bad.model")


def test_tracked_mode_is_a_clear_error():
    with pytest.raises(ConfigError, match="S3FD detector"):
        score_video(_CodedNet(0), np.zeros((10, 8, 8, 3), np.uint8), np.zeros(6400), mode="tracked")
    with pytest.raises(ConfigError, match="precropped"):
        score_video(_CodedNet(0), np.zeros((10, 8, 8, 3), np.uint8), np.zeros(6400), mode="cropped")


def test_score_video_runs_end_to_end_on_tiny_crops():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, size=(12, 32, 32, 3), dtype=np.uint8)
    audio = 0.1 * rng.normal(size=16000 * 12 // 25)
    torch.manual_seed(0)
    scores = score_video(SyncNetV2().eval(), frames, audio)
    assert set(scores) == {"sync_c", "sync_d", "offset"}
    assert scores["sync_d"] > 0 and scores["sync_c"] >= 0
