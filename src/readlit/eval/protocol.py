"""Generate a dataset's test split with a trained model, for ``make eval``: one mp4 pair per clip.

For every test clip the model animates the clip's reference frame with the clip's audio (ANS sampler), and the
ground truth is written beside it, both with that audio. ``runtime.json`` holds each video's backbone seconds
(time inside the A2V-DiT's forwards) and total seconds (audio features, sampling, VAE); synthetic clips also get
``<name>.json`` with the face's seed and identity for the mouth-sync measure. Lengths of the long-video protocol
(paper Table 3: 121, 457, 1017 frames) are separate folders.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from readlit.data.video_io import write_mp4
from readlit.pipeline import TalkingHeadPipeline, to_uint8_frames
from readlit.sampling.ans_sampler import ANSSampler
from readlit.utils.atomic import atomic_write_text

_SYNTHETIC_NAME = re.compile(r"^id(\d+)_s\d+_f\d+$")


class TimedVelocity(torch.nn.Module):
    """Wraps the backbone and adds up the wall time of its forwards (synchronised on GPU)."""

    def __init__(self, net: Any):
        super().__init__()
        self.net, self.seconds = net, 0.0

    def forward(self, *args: Any) -> torch.Tensor:
        start = time.perf_counter()
        out = self.net(*args)
        if out.is_cuda:
            torch.cuda.synchronize(out.device)
        self.seconds += time.perf_counter() - start
        return out


def generate_split(pipeline: TalkingHeadPipeline, sampler: ANSSampler, dataset: Dataset, out: Path, seed: int,
                   data_seed: int | None = None, limit: int | None = None, progress: bool = True,
                   method: str = "ans") -> dict[str, Any]:
    """Write ``out/generated/<clip>.mp4`` and ``out/reference/<clip>.mp4`` for the first ``limit`` clips.

    Args:
        dataset: items with ``video`` (3, F, H, W), ``ref`` (3, H, W), ``audio`` (S,), ``clip_id``.
        seed: noise seed of clip i is ``seed + i``.
        data_seed: the synthetic dataset's seed (names its faces for mouth-sync), or None for real data.
        method: how clips join (:meth:`TalkingHeadPipeline.generate`): ``ans``, ``independent`` or ``fuse``.
    """
    generated, reference = out / "generated", out / "reference"
    generated.mkdir(parents=True, exist_ok=True)
    reference.mkdir(parents=True, exist_ok=True)
    timed = TimedVelocity(pipeline.velocity)
    pipeline.velocity = timed
    count = len(dataset) if limit is None else min(limit, len(dataset))
    runtime: dict[str, dict[str, float]] = {}
    try:
        for index in tqdm(range(count), desc="generating", unit="video", disable=not progress):
            item = dataset[index]
            name, audio = item["clip_id"], item["audio"]
            timed.seconds, start = 0.0, time.perf_counter()
            video = pipeline.generate(item["ref"], audio, sampler, torch.Generator().manual_seed(seed + index),
                                      method=method)
            runtime[name] = {"backbone": timed.seconds, "total": time.perf_counter() - start}
            _write_pair(pipeline, generated, reference, name, video, item, data_seed)
    finally:
        pipeline.velocity = timed.net
    atomic_write_text(generated / "runtime.json", json.dumps({k: v["backbone"] for k, v in runtime.items()}))
    atomic_write_text(out / "runtime_detail.json", json.dumps(runtime, indent=1))
    return runtime


def _write_pair(pipeline: TalkingHeadPipeline, generated: Path, reference: Path, name: str, video: torch.Tensor,
                item: dict[str, Any], data_seed: int | None) -> None:
    """The generated and ground-truth mp4 (same audio), and the face's seed/identity for synthetic clips."""
    sound = item["audio"].numpy()
    write_mp4(generated / f"{name}.mp4", to_uint8_frames(video), pipeline.fps, sound, pipeline.sample_rate)
    write_mp4(reference / f"{name}.mp4", to_uint8_frames(item["video"][:, : video.shape[1]]), pipeline.fps,
              sound, pipeline.sample_rate)
    match = _SYNTHETIC_NAME.match(name)
    if data_seed is not None and match:
        atomic_write_text(reference / f"{name}.json", json.dumps({"seed": data_seed, "identity": int(match.group(1))}))
