"""Synthetic mouth-sync as a metric: correlation of measured mouth opening with audio loudness, per video.

For synthetic talking heads the renderer opens the mouth with the loudness envelope, so the Pearson correlation
between the opening measured from pixels (:func:`readlit.eval.synthetic.mouth_sync.mouth_opening`) and the
per-frame RMS of the audio measures lip sync without any pretrained network. The best lag within
±``max_offset`` frames is reported too (0 for a synced video). Scores are means over videos.
"""

from __future__ import annotations

import numpy as np
import torch
from einops import rearrange
from torchmetrics import Metric

from readlit.data.synthetic import Identity, frame_loudness
from readlit.eval.synthetic.mouth_sync import best_offset, mouth_opening, pearson


def score_video(frames: np.ndarray, audio: np.ndarray, identity: Identity, fps: int = 25,
                sample_rate: int = 16000, max_offset: int = 5) -> dict[str, float]:
    """Correlation and best lag of one video.

    Args:
        frames: (F, H, W, 3) uint8 RGB of a synthetic identity.
        audio: (n,) mono float at ``sample_rate``.
    """
    count = min(len(frames), len(audio) // (sample_rate // fps))
    video = rearrange(torch.from_numpy(np.asarray(frames[:count])).float(), "f h w c -> c f h w") / 127.5 - 1.0
    opening = mouth_opening(video, identity).numpy()
    loudness = frame_loudness(audio, count, fps, sample_rate)
    lag, _ = best_offset(opening, loudness, min(max_offset, count - 2))
    return {"mouth_sync": pearson(opening, loudness), "mouth_offset": float(lag)}


class MouthSync(Metric):
    """Mean mouth-sync correlation and |lag| over videos; ``update(frames, audio, identity)``."""

    full_state_update = False
    higher_is_better = True

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        for name in ("correlation", "abs_offset", "count"):
            self.add_state(name, torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, frames: np.ndarray, audio: np.ndarray, identity: Identity) -> None:
        scores = score_video(frames, audio, identity)
        self.correlation += scores["mouth_sync"]
        self.abs_offset += abs(scores["mouth_offset"])
        self.count += 1

    def compute(self) -> dict[str, torch.Tensor]:
        return {"mouth_sync": self.correlation / self.count, "mouth_offset": self.abs_offset / self.count}
