"""The synthetic mouth-sync metric: high for synced videos, finds a known shift."""

import numpy as np
import pytest

from readlit.data.synthetic import make_identity, make_session, render_frames
from readlit.eval.metrics.mouth_sync import MouthSync, score_video


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
