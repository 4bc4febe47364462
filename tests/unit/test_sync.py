"""Sync-C/D: the offset search, windowing through the pipeline, modes, and the tracked flow with its detector."""

import numpy as np
import pytest
import torch

from readlit.errors import CheckpointError, ConfigError
from readlit.eval.metrics.sync import SyncScore, score_video, sync_scores
from readlit.eval.networks import s3fd as S
from readlit.eval.networks.syncnet import SyncNetV2, embed


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


def test_tracked_scoring_uses_each_track_and_its_audio(monkeypatch):
    frames = np.zeros((40, 240, 320, 3), np.uint8)
    box = np.array([[100.0, 60.0, 220.0, 180.0, 0.99]])
    monkeypatch.setattr(S, "detect", lambda net, video, **_: [box] * 10 + [np.zeros((0, 5))] * 5 + [box] * 25)
    seen = []

    class _Net:
        def forward_lip(self, x):
            seen.append(tuple(x.shape))
            return torch.zeros(len(x), 4)

        def forward_aud(self, x):
            return torch.ones(len(x), 4)

    audio = np.zeros(40 * 640)
    scores = score_video(_Net(), frames, audio, mode="tracked", detector=object(), min_track=20)
    assert seen and all(s[2:] == (5, 224, 224) for s in seen)
    assert set(scores) == {"sync_c", "sync_d", "offset"}
    monkeypatch.setattr(S, "detect", lambda net, video, **_: [np.zeros((0, 5))] * 40)
    assert score_video(_Net(), frames, audio, mode="tracked", detector=object(), min_track=20) is None


def test_tracked_metric_reports_missing_detector_weights(tmp_path):
    torch.save(SyncNetV2().state_dict(), tmp_path / "syncnet_v2.model")
    with pytest.raises(CheckpointError, match="sfd_face.pth"):
        SyncScore(weights_dir=tmp_path, mode="tracked")
    SyncScore(weights_dir=tmp_path, mode="precropped")  # the detector is only needed when tracking
