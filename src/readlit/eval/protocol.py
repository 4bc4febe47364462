"""Generate a dataset's test split with a trained model, for ``make eval``: one mp4 pair per clip and a manifest.

For every test clip the model animates the clip's reference frame with the clip's audio (ANS sampler), and the
ground truth is written beside it, both with that audio. ``<generated>/manifest.json`` describes the split: the
noise ``seed``, the long-video ``method`` and per clip its ``name``, ``frames``, ``backbone_seconds`` (time inside
the A2V-DiT's forwards: the Runtime column) and ``total_seconds`` (audio features, sampling, VAE), plus, for
synthetic clips, the drawn face's ``identity`` and ``data_seed`` (the mouth-sync measure needs them). Lengths of
the long-video protocol (paper Table 3: 121, 457, 1017 frames) are separate folders.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from readlit.data.video_io import write_mp4
from readlit.errors import DataError
from readlit.pipeline import TalkingHeadPipeline, to_uint8_frames
from readlit.sampling.ans_sampler import ANSSampler
from readlit.utils.atomic import atomic_write_text

MANIFEST = "manifest.json"


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


@contextmanager
def timed_backbone(pipeline: TalkingHeadPipeline) -> Iterator[TimedVelocity]:
    """The pipeline's backbone wrapped in a :class:`TimedVelocity` inside the block, its own again after it."""
    timed = TimedVelocity(pipeline.velocity)
    pipeline.velocity = timed
    try:
        yield timed
    finally:
        pipeline.velocity = timed.net


def generate_split(pipeline: TalkingHeadPipeline, sampler: ANSSampler, dataset: Dataset, out: Path, seed: int,
                   limit: int | None = None, progress: bool = True, method: str = "ans") -> dict[str, Any]:
    """Write ``out/generated/<clip>.mp4``, ``out/reference/<clip>.mp4`` and the manifest for the first ``limit`` clips.

    Args:
        dataset: items with ``video`` (3, F, H, W), ``ref`` (3, H, W), ``audio`` (S,), ``clip_id``; synthetic items
            also ``identity`` and ``data_seed``.
        seed: noise seed of clip i is ``seed + i``.
        method: how clips join (:meth:`TalkingHeadPipeline.generate`): ``ans``, ``independent`` or ``fuse``.

    Returns:
        The manifest, as written to ``out/generated/manifest.json``.
    """
    generated, reference = out / "generated", out / "reference"
    generated.mkdir(parents=True, exist_ok=True)
    reference.mkdir(parents=True, exist_ok=True)
    count = len(dataset) if limit is None else min(limit, len(dataset))
    clips = []
    with timed_backbone(pipeline) as timed:
        for index in tqdm(range(count), desc="generating", unit="video", disable=not progress):
            item = dataset[index]
            timed.seconds, start = 0.0, time.perf_counter()
            video = pipeline.generate(item["ref"], item["audio"], sampler,
                                      torch.Generator().manual_seed(seed + index), method=method)
            clips.append(clip_entry(item, video.shape[1], timed.seconds, time.perf_counter() - start))
            _write_pair(pipeline, generated, reference, item["clip_id"], video, item)
    manifest = {"seed": seed, "method": method, "clips": clips}
    atomic_write_text(generated / MANIFEST, json.dumps(manifest, indent=1))
    return manifest


def clip_entry(item: dict[str, Any], frames: int, backbone: float, total: float) -> dict[str, Any]:
    """One clip's manifest entry; the synthetic face's ``identity`` and ``data_seed`` when the item has them."""
    entry = {"name": item["clip_id"], "frames": int(frames), "backbone_seconds": backbone, "total_seconds": total}
    if "identity" in item:
        entry.update(identity=int(item["identity"]), data_seed=int(item["data_seed"]))
    return entry


def read_manifest(path: str | Path) -> dict[str, dict[str, Any]]:
    """A generated split's clip entries by name; DataError when the file is not such a manifest."""
    try:
        return {clip["name"]: clip for clip in json.loads(Path(path).read_text())["clips"]}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DataError(f"{path} is not a generated split's manifest (a 'clips' list of entries with a 'name'): "
                        f"{err}") from err


def _write_pair(pipeline: TalkingHeadPipeline, generated: Path, reference: Path, name: str, video: torch.Tensor,
                item: dict[str, Any]) -> None:
    """The generated and the ground-truth mp4, both with the clip's audio."""
    sound = item["audio"].numpy()
    write_mp4(generated / f"{name}.mp4", to_uint8_frames(video), pipeline.fps, sound, pipeline.sample_rate)
    write_mp4(reference / f"{name}.mp4", to_uint8_frames(item["video"][:, : video.shape[1]]), pipeline.fps,
              sound, pipeline.sample_rate)
