"""readlit.eval.synthetic.seams: seam positions follow the clip plan; the jump is measured where the cuts are."""

import numpy as np
import pytest

from readlit.eval.synthetic.seams import frame_changes, seam_frames, seam_jump


def test_seams_follow_the_clip_plan():
    # ANS, f = 3: clips start at latents 0, 2, 4; new frames from latents 3 and 5 -> pixels 17 and 33
    assert seam_frames(7, 3, 1, 8, 49) == [17, 33]
    # side by side, f = 3: clips at 0, 3, 6 -> new frames from latents 3 and 6 -> pixels 17 and 41
    assert seam_frames(9, 3, 0, 8, 65) == [17, 41]
    assert seam_frames(9, 3, 0, 8, 30) == [17]  # the output was cut before the second seam


def test_a_cut_shows_at_the_seam_and_a_steady_change_does_not():
    steady = np.stack([np.full((4, 4, 3), 10 * t, np.uint8) for t in range(20)])
    assert seam_jump(steady, [9])["ratio"] == pytest.approx(1.0)
    cut = steady.copy()
    cut[9:] += 50
    jump = seam_jump(cut, [9])
    assert jump["seam"] == pytest.approx(60 / 255) and jump["elsewhere"] == pytest.approx(10 / 255)
    assert frame_changes(cut).shape == (19,)
    with pytest.raises(ValueError, match="need seams"):
        seam_jump(cut, [])
