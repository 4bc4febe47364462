"""Preprocess one clip into its cache folder: the unit of work of every worker process.

A finished clip folder is reused as it is (resume); a clip is otherwise decoded at the cache's frame
rate, cropped, checked for scene cuts, written into a temporary folder and renamed into place. Inputs
that give no clip come back as :class:`Skipped` with the reason; config mismatches with clips already in
the cache raise ConfigError, because mixing them would give a cache that lies about its contents.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from hydra.utils import instantiate
from numpy.lib.format import open_memmap

from readlit.data import cache
from readlit.data.preprocess.crop import box_inside, crop_square
from readlit.data.preprocess.decode import Timeline, decode_frames, frame_schedule, read_audio, read_timeline
from readlit.data.preprocess.scene import THUMB, find_cut, thumbnail
from readlit.data.preprocess.sources import Box, ClipSource, SkipClip, Skipped
from readlit.errors import ConfigError
from readlit.utils.atomic import atomic_folder


@dataclass(frozen=True)
class JobSettings:
    """Everything a worker needs, as plain values so it pickles into spawned processes.

    Args:
        root: the cache folder.
        raw_dir: the raw download (paths in records are relative to it).
        size, fps, sample_rate: crop side, frame rate and audio rate of the cache.
        min_frames: clips with fewer frames are skipped.
        scene_cut: mean grey change (0-255) between consecutive crops that counts as a cut.
        face_track: Hydra config of the FaceTracker for clips without a crop window.
        audio: Hydra config of the WhisperFrontEnd partial, or None to cache no Whisper states.
        single_thread: pin torch and OpenCV to one thread (several worker processes share the cores).
    """

    root: str
    raw_dir: str
    size: int
    fps: int
    sample_rate: int
    min_frames: int
    scene_cut: float
    face_track: dict[str, Any]
    audio: dict[str, Any] | None
    single_thread: bool


@dataclass(frozen=True)
class JobResult:
    """A finished clip's record (``meta``) or the reason it was skipped; ``reused``: found complete."""

    meta: dict[str, Any] | None = None
    skipped: Skipped | None = None
    reused: bool = False


_WORKER: dict[str, Any] = {}


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent: int) -> None:
    """Have the kernel kill this process when its parent ``parent`` dies (Linux), so a killed run leaves no worker
    writing into a cache another run may have locked since.

    A spawned worker reaches this only after its imports (seconds); if ``parent`` died meanwhile, this process was
    already handed to another parent (init or a subreaper, so not necessarily pid 1) and exits now, before it
    builds anything.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)


def init_worker(settings: JobSettings, parent: int | None = None) -> None:
    """Build the worker's settings-bound objects once per process (the pool initializer).

    Args:
        settings: the run's settings.
        parent: for a pool worker, the pid of the run that started it (the worker must not outlive it);
            None when the clips are made in the run's own process.
    """
    if parent is not None:
        die_with_parent(parent)
    if settings.single_thread:
        torch.set_num_threads(1)
        cv2.setNumThreads(1)
    _WORKER.clear()
    _WORKER["settings"] = settings
    _WORKER["tracker"] = instantiate(settings.face_track)
    _WORKER["frontend"] = None if settings.audio is None else instantiate(settings.audio)()


def process_clip(source: ClipSource) -> JobResult:
    """Make (or reuse) the cache folder of ``source``; needs :func:`init_worker` in this process."""
    settings: JobSettings = _WORKER["settings"]
    final = cache.clip_dir(settings.root, source.clip_id)
    meta = cache.read_meta(final)
    if meta is not None:
        return JobResult(meta=_reuse(final, meta, settings), reused=True)
    try:
        with atomic_folder(final) as tmp:
            meta = _build(source, tmp, settings)
        return JobResult(meta=meta)
    except SkipClip as skip:
        return JobResult(skipped=Skipped(_relative(source.video, settings), skip.reason, skip.detail,
                                         source.clip_id))


def _relative(path: Path | None, settings: JobSettings) -> str | None:
    if path is None:
        return None
    raw = Path(settings.raw_dir)
    return str(path.relative_to(raw)) if path.is_relative_to(raw) else str(path)


def _reuse(folder: Path, meta: dict[str, Any], settings: JobSettings) -> dict[str, Any]:
    """Check a finished clip against this run's settings and add Whisper states if they are now wanted."""
    made = {key: meta[key] for key in ("size", "fps", "sample_rate")}
    wanted = {"size": settings.size, "fps": settings.fps, "sample_rate": settings.sample_rate}
    if made != wanted:
        raise ConfigError(
            f"root={settings.root} holds a cache whose clip {meta['clip_id']} was made with {made}, but this "
            f"run asks for {wanted}; preprocess into a new folder or delete the old cache"
        )
    frontend = _WORKER["frontend"]
    if frontend is not None:
        shape = [frontend.num_hidden_states, frontend.dim]
        if meta["whisper"] is None:
            meta = {**meta, "whisper": _save_whisper(folder, np.load(folder / cache.AUDIO))}
            cache.write_meta(folder, meta)
        elif meta["whisper"][1:] != shape:
            raise ConfigError(
                f"root={settings.root} holds clip {meta['clip_id']} with Whisper states of (L, Da) = "
                f"{meta['whisper'][1:]}, the audio config makes {shape}; use the audio config the cache "
                "was made with, or preprocess into a new folder"
            )
    return meta


def _save_whisper(folder: Path, audio: np.ndarray) -> list[int]:
    """Write whisper.npy (S, L, Da) for ``audio`` (samples,); returns its shape."""
    hidden = _WORKER["frontend"].hidden(torch.from_numpy(np.ascontiguousarray(audio))).float().numpy()
    cache.save_npy_atomic(folder / cache.WHISPER, hidden)
    return list(hidden.shape)


def _build(source: ClipSource, folder: Path, settings: JobSettings) -> dict[str, Any]:
    timeline = read_timeline(source.video)
    t0, index = frame_schedule(timeline, settings.fps, source.start, source.end)
    _check_length(len(index), settings, "the video")
    audio = read_audio(source.audio or source.video, t0, len(index), settings.fps, settings.sample_rate)
    samples_per_frame = settings.sample_rate // settings.fps
    count = min(len(index), len(audio) // samples_per_frame)
    _check_length(count, settings, "the audio")
    index, audio = index[:count], audio[: count * samples_per_frame]
    boxes = _boxes(source, timeline, index)
    _write_frames(source, folder / cache.FRAMES, timeline, index, boxes, settings)
    cache.save_npy_atomic(folder / cache.AUDIO, audio)
    meta = {
        "clip_id": source.clip_id, "frames": count, "samples": len(audio), "fps": settings.fps,
        "size": settings.size, "sample_rate": settings.sample_rate,
        "source": _relative(source.video, settings), "audio_source": _relative(source.audio, settings),
        "start": round(float(t0), 6),
        "end": round(float(t0) + count / settings.fps, 6), "group": source.group, "tags": source.tags,
        "crop": "window" if source.box else "tracked",
        "whisper": None if _WORKER["frontend"] is None else _save_whisper(folder, audio),
    }
    cache.write_meta(folder, meta)
    return meta


def _check_length(count: int, settings: JobSettings, what: str) -> None:
    if count < settings.min_frames:
        raise SkipClip("too_short", f"{what} gives {count} frames at {settings.fps} fps, fewer than "
                                    f"min_frames={settings.min_frames}")


def _boxes(source: ClipSource, timeline: Timeline, index: np.ndarray) -> list[Box]:
    if source.box is None:
        return _WORKER["tracker"].track(source.video, timeline, index)
    if not box_inside(source.box, timeline.width, timeline.height):
        box = source.box
        raise SkipClip("crop_outside_frame", (
            f"crop window of side {box.side:.0f} at ({box.cx:.0f}, {box.cy:.0f}) does not fit the "
            f"{timeline.width}x{timeline.height} video; download it at the resolution in xx_resolution.txt"))
    return [source.box] * len(index)


def _write_frames(source: ClipSource, path: Path, timeline: Timeline, index: np.ndarray, boxes: list[Box],
                  settings: JobSettings) -> None:
    """Crop every output frame into a memory-mapped (F, size, size, 3) uint8 .npy; SkipClip on a scene cut."""
    size = settings.size
    frames = open_memmap(path, mode="w+", dtype=np.uint8, shape=(len(index), size, size, 3))
    thumbs = np.empty((len(index), THUMB, THUMB), np.float32)
    for outputs, image in decode_frames(source.video, timeline, index,
                                        lambda frame: frame.to_ndarray(format="rgb24")):
        for output in outputs:
            frames[output] = crop_square(image, boxes[output], size)
            thumbs[output] = thumbnail(frames[output])
    cut = find_cut(thumbs, settings.scene_cut)
    if cut is not None:
        raise SkipClip("scene_cut", f"the shot changes at frame {cut} ({cut / settings.fps:.2f} s); "
                                    "cut the clip there or raise scene_cut")
    frames.flush()
    del frames
