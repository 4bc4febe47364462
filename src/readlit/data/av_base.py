"""Training clips from a preprocessed cache (:mod:`readlit.data.cache`): the base of HDTF and MEAD.

Every cached clip (one HDTF time span, one MEAD sentence) is cut into windows of F = 1 + 8k frames on a
fixed grid (``clip_stride`` frames apart), so an index always gives the same window. Splits come from the
manifest, where preprocessing wrote them; ``splits`` maps the train/val/test stages onto its split names.

Batches are :class:`~readlit.data.batch.ClipBatch`: ``audio``, ``fps``, ``clip_id``, ``audio_windows`` when an
audio front end is given (cut from the cached Whisper hidden states, or from states computed at set-up for clips
cached without them) and, with ``return_video``, ``video`` and ``ref``; ``ref`` is a frame of the same clip,
``ref_distance`` frames from the window's middle (wrapping around the clip's end).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from readlit import checks
from readlit.audio import WhisperFrontEnd, check_frontend
from readlit.data.base import SplitDataModule, to_video
from readlit.data.batch import ClipItem
from readlit.data.cache import MANIFEST, ClipCache
from readlit.errors import ConfigError, DataError, scope
from readlit.frames import check_frame_count

log = logging.getLogger(__name__)
STAGES = ("train", "val", "test")


def frame_windows(frontend: WhisperFrontEnd, hidden: np.ndarray, num_frames: int, start: int) -> torch.Tensor:
    """Windows of frames start .. start+F-1 from a clip's hidden states, reading only the tokens they need.

    Args:
        hidden: (S, L, Da) of the whole clip (a memory map is fine: only a slice is read).

    Returns:
        (F, Hw, Da), exactly ``frontend.frame_windows(hidden, F, start)``.
    """
    k, width = frontend.tokens_per_frame, frontend.window_tokens
    # Start the slice on a frame boundary at or before the first window's first token, so the window
    # arithmetic stays the front end's own; tokens before it and past its end are never read.
    first = max(0, start - math.ceil((width - k) / 2 / k))
    piece = np.array(hidden[k * first : k * (start + num_frames) + width], dtype=np.float32)
    return frontend.frame_windows(torch.from_numpy(piece), num_frames, start - first)


class CachedClipDataset(Dataset):
    """Windows of ``num_frames`` frames from a list of cached clips.

    Args:
        cache: the clip cache.
        clip_ids: clips of this split.
        num_frames: F, frames per window (1 + 8k).
        clip_stride: frames between window starts within a clip.
        ref_distance: frames between a window's middle and its reference frame.
        return_video: read ``video`` and ``ref``.
        frontend: Whisper front end for ``audio_windows``, or None to leave them out.
        hidden: (S, L, Da) states of clips that have no cached ``whisper.npy`` (computed at set-up).
    """

    def __init__(self, cache: ClipCache, clip_ids: list[str], num_frames: int, clip_stride: int,
                 ref_distance: int, return_video: bool, frontend: WhisperFrontEnd | None,
                 hidden: dict[str, np.ndarray]):
        self.cache, self.num_frames, self.ref_distance = cache, num_frames, ref_distance
        self.return_video, self.frontend, self.hidden = return_video, frontend, hidden
        self.fps = cache.manifest["fps"]
        self.samples_per_frame = cache.manifest["sample_rate"] // self.fps
        self.windows = [(clip_id, start) for clip_id in clip_ids
                        for start in range(0, cache.clips[clip_id]["frames"] - num_frames + 1, clip_stride)]

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> ClipItem:
        """One window (:class:`~readlit.data.batch.ClipItem`)."""
        clip_id, start = self.windows[index]
        span = slice(start * self.samples_per_frame, (start + self.num_frames) * self.samples_per_frame)
        item: ClipItem = {
            "audio": torch.from_numpy(np.array(self.cache.audio(clip_id)[span])),
            "fps": self.fps,
            "clip_id": f"{clip_id}_f{start:05d}",
        }
        if self.frontend is not None:
            hidden = self.hidden.get(clip_id)
            hidden = self.cache.whisper(clip_id) if hidden is None else hidden
            item["audio_windows"] = frame_windows(self.frontend, hidden, self.num_frames, start)
        if self.return_video:
            frames = self.cache.frames(clip_id)
            ref = (start + self.num_frames // 2 + self.ref_distance) % len(frames)
            item["video"] = to_video(frames[start : start + self.num_frames])
            item["ref"] = to_video(frames[ref : ref + 1])[:, 0]
        return item


class CachedAVDataModule(SplitDataModule):
    """Train / val / test windows of a preprocessed cache (see the module docstring).

    Args:
        root: the cache folder (config key ``data.root``).
        name: the dataset the cache must hold (``hdtf``, ``mead``).
        size, fps, sample_rate: what the cache must have been made with (checked against its manifest).
        num_frames: F = 1 + 8k frames per window.
        clip_stride: frames between window starts in a clip.
        ref_distance: frames between a window's middle and its reference frame.
        return_video: read frames (audio-only stages skip them).
        splits: manifest split name for each stage, e.g. ``{train: train, val: test, test: test}``.
        audio_frontend: factory for the Whisper front end (Hydra partial), or None for no ``audio_windows``.
        use_cached_whisper: read the cache's ``whisper.npy`` when present (false: recompute at set-up).
        batch_size, num_workers, shuffle, pin_memory: DataLoader settings (shuffle: train only).
        latents: read the splits from this latent cache instead (see :class:`~readlit.data.base.SplitDataModule`).
        stream_shuffle: shuffle buffer of a latent cache streamed from a URL.
    """

    def __init__(self, root: str, name: str, size: int, fps: int, sample_rate: int, num_frames: int,
                 clip_stride: int, ref_distance: int, return_video: bool, splits: dict[str, str],
                 audio_frontend: Callable[[], WhisperFrontEnd] | None, use_cached_whisper: bool,
                 batch_size: int, num_workers: int = 0, shuffle: bool = True, pin_memory: bool = False,
                 latents: str | None = None, stream_shuffle: int = 256):
        super().__init__(batch_size, num_workers, shuffle, pin_memory, latents, stream_shuffle)
        check_frame_count(num_frames)
        checks.integer("clip_stride", clip_stride, minimum=1)
        checks.integer("ref_distance", ref_distance)
        checks.flag("return_video", return_video)
        checks.flag("use_cached_whisper", use_cached_whisper)
        with scope("audio_frontend"):
            check_frontend(audio_frontend)
        self.name = name
        self.cache = self._open(Path(root), name)
        self._check_manifest({"size": size, "fps": fps, "sample_rate": sample_rate})
        self.splits = self._check_splits(dict(splits))
        self.dataset_args = dict(num_frames=num_frames, clip_stride=clip_stride, ref_distance=ref_distance,
                                 return_video=return_video)
        self.audio_frontend, self.use_cached_whisper = audio_frontend, use_cached_whisper
        self.frontend: WhisperFrontEnd | None = None
        self.hidden: dict[str, np.ndarray] = {}

    @staticmethod
    def _open(root: Path, name: str) -> ClipCache:
        if not (root / MANIFEST).is_file():
            raise DataError(
                f"root={root} holds no {name.upper()} cache ({MANIFEST} missing): make one from the raw "
                f"download with `python -m readlit.preprocess data={name} raw_dir=/path/to/{name.upper()}` "
                "or point root at an existing cache"
            )
        cache = ClipCache(root, key="root")
        if cache.manifest["dataset"] != name:
            raise ConfigError(f"root={root} holds a {cache.manifest['dataset']} cache, not {name}; "
                              f"use data={cache.manifest['dataset']} or point root at a {name} cache")
        return cache

    def _check_manifest(self, wanted: dict[str, int]) -> None:
        made = {key: self.cache.manifest[key] for key in wanted}
        if made != wanted:
            fix = " ".join(f"{key}={value}" for key, value in made.items())
            raise ConfigError(f"root={self.cache.root} holds a cache made with {made} but the data config asks "
                              f"for {wanted}; set {fix} or preprocess again with these values")

    def _check_splits(self, splits: dict[str, str]) -> dict[str, str]:
        known = self.cache.manifest["splits"]
        missing = {stage: split for stage, split in splits.items() if split not in known}
        if set(splits) != set(STAGES) or missing:
            raise ConfigError(f"splits={splits} must map each of {STAGES} to a split of the cache "
                              f"({sorted(known)})")
        return splits

    def clip_ids(self, stage: str) -> list[str]:
        """Cached clips of one stage's split."""
        return list(self.cache.manifest["splits"][self.splits[stage]])

    def item_settings(self) -> dict[str, Any]:
        settings = {key: value for key, value in self.dataset_args.items() if key != "return_video"}
        made = {key: self.cache.manifest[key] for key in ("size", "fps", "sample_rate")}
        return {"dataset": self.name, "splits": self.splits, **made, **settings,
                "clips": {stage: self.clip_ids(stage) for stage in STAGES}}

    def setup(self, stage: str | None = None) -> None:
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",)}.get(stage, STAGES)
        if self.latents is not None:
            self.setup_latents(wanted)
            return
        if self.frontend is None and self.audio_frontend is not None:
            with scope("audio_frontend"):
                self.frontend = self.audio_frontend()
        for split in wanted:
            if split not in self.datasets:
                self.datasets[split] = self._dataset(split)

    def _dataset(self, split: str) -> CachedClipDataset:
        clip_ids = self.clip_ids(split)
        self._compute_hidden(clip_ids)
        dataset = CachedClipDataset(self.cache, clip_ids, frontend=self.frontend, hidden=self.hidden,
                                    **self.dataset_args)
        if not len(dataset):
            raise DataError(
                f"num_frames={self.dataset_args['num_frames']}: the {split} split ({self.splits[split]}) of the "
                f"cache at {self.cache.root} has no clip that long; lower num_frames or preprocess more clips")
        return dataset

    def _compute_hidden(self, clip_ids: list[str]) -> None:
        """Whisper states for clips without cached ones (or all, when the cache's are not to be used)."""
        if self.frontend is None:
            return
        missing = [clip_id for clip_id in clip_ids if clip_id not in self.hidden
                   and (not self.use_cached_whisper or self.cache.whisper(clip_id) is None)]
        for clip_id in tqdm(missing, desc="whisper features", leave=False):
            audio = torch.from_numpy(np.array(self.cache.audio(clip_id)))
            self.hidden[clip_id] = self.frontend.hidden(audio).cpu().numpy()
