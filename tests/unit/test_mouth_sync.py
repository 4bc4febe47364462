"""readlit.eval.synthetic.mouth_sync: the pixel mouth measure tracks the true opening; correlation and offset search."""

import numpy as np
import pytest
import torch
from einops import rearrange

from readlit.data.synthetic import make_identity, make_session, mouth_box, render_frames
from readlit.eval.synthetic.mouth_sync import best_offset, mouth_opening, pearson

FRAMES = 120


def rendered(identity: int, session: int = 0, size: int = 64):
    face = make_identity(0, identity)
    take = make_session(0, face, session, FRAMES)
    frames = torch.from_numpy(render_frames(face, take, 0, FRAMES, size)).float() / 127.5 - 1.0
    return face, take, rearrange(frames, "f h w c -> c f h w")


@pytest.mark.parametrize("identity", range(0, 40, 8))
def test_measured_opening_correlates_with_the_true_opening(identity):
    face, take, video = rendered(identity)
    assert pearson(mouth_opening(video, face), take.mouth_open) > 0.95


def test_measure_works_at_other_sizes_and_on_batches():
    face, take, video = rendered(3, size=80)
    assert pearson(mouth_opening(video, face), take.mouth_open) > 0.95
    batch = torch.stack([video, video.flip(1)])
    opening = mouth_opening(batch, face)
    assert opening.shape == (2, FRAMES)
    torch.testing.assert_close(opening[1], opening[0].flip(0))


def test_closed_and_open_mouths_differ_by_the_interior_area():
    face, take, video = rendered(5)
    opening = mouth_opening(video, face).numpy()
    closed, wide = np.argmin(take.mouth_open), np.argmax(take.mouth_open)
    # interior height grows by 0.12 * opening of the short side; area ~ pi/4 * width * height
    grown = np.pi / 4 * (2 * face.mouth_rx * 64) * (0.12 * 64 * (take.mouth_open[wide] - take.mouth_open[closed]))
    assert 0.6 * grown < opening[wide] - opening[closed] < 1.4 * grown


def test_a_face_without_mouth_colours_measures_nothing():
    face, _, _ = rendered(2)
    skin = torch.tensor(face.skin)[:, None, None, None] * 2 - 1
    assert mouth_opening(skin.expand(3, 4, 64, 64), face).abs().max() < 1e-3


def test_box_stays_inside_the_image_and_covers_the_mouth_row():
    face = make_identity(0, 7)
    rows, columns = mouth_box(face, 64, 64)
    assert 0 <= rows.start < rows.stop <= 64 and 0 <= columns.start < columns.stop <= 64
    mouth_row = 32 + (face.head_cy + face.mouth_y) * 64
    assert rows.start < mouth_row < rows.stop and columns.start < 32 < columns.stop


def test_synthetic_clips_carry_the_box_as_a_mask():
    from readlit.data.synthetic_datamodule import SyntheticTalkingHeads

    data = SyntheticTalkingHeads(seed=0, identities=[7], sessions_per_identity=1, session_frames=9, num_frames=9,
                                 clip_stride=9, size=64, fps=25, sample_rate=16000, return_video=True,
                                 ref_distance=0, frontend=None)
    expected = torch.zeros(64, 64)
    expected[mouth_box(data.identity(0), 64, 64)] = 1.0
    assert torch.equal(data[0]["mouth_mask"], expected) and expected.sum() > 100


def test_pearson_matches_numpy_and_handles_constants():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=50), rng.normal(size=50)
    assert pearson(a, b) == pytest.approx(np.corrcoef(a, b)[0, 1], abs=1e-12)
    assert pearson(a, 3 * a + 1) == pytest.approx(1.0)
    assert pearson(a, np.ones(50)) == 0.0
    with pytest.raises(ValueError):
        pearson(a, b[:10])


@pytest.mark.parametrize("lag", [-3, 0, 2])
def test_best_offset_finds_a_known_lag(lag):
    face, take, video = rendered(1)
    measured = mouth_opening(video, face).numpy()
    truth = take.mouth_open
    # measured[t + lag] == truth[t]: the measured series lags the truth by `lag` frames
    delayed = np.roll(measured, lag)
    found, corr = best_offset(delayed[10:-10], truth[10:-10], max_offset=5)
    assert found == lag and corr > 0.95
    with pytest.raises(ValueError):
        best_offset(measured, truth, max_offset=FRAMES)
