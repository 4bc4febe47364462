"""The preprocessed clip cache: ``python -m readlit.preprocess`` writes it, the HDTF/MEAD datamodules read it.

One folder per clip, and a folder exists only once everything in it is complete::

    <root>/manifest.json              written last and atomically: clips, splits, skipped inputs, config
    <root>/clips/<clip_id>/
        frames.npy                    (F, H, W, 3) uint8 RGB face crops at ``fps``, H = W = ``size``
        audio.npy                     (F * sample_rate / fps,) float32 mono; sample 0 starts frame 0
        whisper.npy                   (S, L, Da) float32 Whisper hidden states of audio.npy (optional)
        meta.json                     the clip's record: frames, fps, size, source, time span, tags
    <root>/clips/.<clip_id>.<pid>-<hex>.tmp/    a clip being written; removed by the next run
    <root>/.lock                      flock-ed by the run writing the cache (one writer at a time; removed after)

Frames are plain uint8 ``.npy`` files because they memory-map: a DataLoader worker reads the 1+8k frames
of one training window without touching the rest. Measured on a 2-core CPU: 3 ms for 33 frames at 512²
(warm page cache) against 63 ms to decode them from an H.264 mp4. The price is disk: 0.75 MiB per 512²
frame, about 1 TiB for all of HDTF; training from cached VAE latents avoids that at scale.

A clip is written into a temporary folder and renamed onto ``clips/<clip_id>`` when done
(:func:`readlit.utils.atomic.atomic_folder`), so an interrupted run leaves either a whole clip or a temporary
folder, never a clip that looks whole. Later stages add one file per clip the same way (e.g. ``latents.npy`` for
VAE latents, issue #3): each file written under a temporary name and renamed, then the stage's entry added to the
manifest (:mod:`readlit.data.manifest`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from readlit.data.manifest import MANIFEST as MANIFEST  # part of the layout above
from readlit.data.manifest import read_json
from readlit.data.manifest import read_manifest as read_json_manifest
from readlit.errors import DataError
from readlit.utils.atomic import atomic_path, atomic_write_json, remove_leftovers
from readlit.utils.lock import exclusive

CLIPS = "clips"
FRAMES, AUDIO, WHISPER, META = "frames.npy", "audio.npy", "whisper.npy", "meta.json"
FORMAT_VERSION = 1
_LOCK = ".lock"


@contextmanager
def writer_lock(root: str | Path) -> Iterator[None]:
    """Hold the cache's writer lock (:func:`readlit.utils.lock.exclusive`); DataError if another run holds it."""
    try:
        with exclusive(Path(root) / _LOCK):
            yield
    except BlockingIOError as err:
        raise DataError(f"another preprocessing run is writing out_dir={root}; wait for it to finish "
                        "or choose another out_dir") from err


def clip_dir(root: str | Path, clip_id: str) -> Path:
    """The folder of one finished clip."""
    return Path(root) / CLIPS / clip_id


def remove_tmp_dirs(root: str | Path) -> int:
    """Delete the temporary clip folders an interrupted run left; returns how many there were."""
    return remove_leftovers(Path(root) / CLIPS)


def save_npy_atomic(path: Path, array: np.ndarray) -> Path:
    """Write ``array`` to a temporary file beside ``path``, then rename it onto ``path``."""
    # Through a handle: np.save appends ".npy" to a path that lacks it.
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, array)
    return path


def read_meta(folder: Path) -> dict[str, Any] | None:
    """A finished clip's record, or None when the folder holds no finished clip."""
    path = folder / META
    if not path.is_file():
        return None
    return read_json(path, f"the cache is damaged: delete {folder} and re-run `python -m readlit.preprocess`")


def write_meta(folder: Path, meta: dict[str, Any]) -> None:
    atomic_write_json(folder / META, meta)


def read_manifest(root: str | Path, key: str = "root") -> dict[str, Any]:
    """The manifest of the cache at ``root``; DataError naming ``key`` when there is none or it is damaged."""
    return read_json_manifest(root, "cache", key, FORMAT_VERSION, "make one with `python -m readlit.preprocess`")


class ClipCache:
    """Read-only access to the clips of one cache.

    Arrays are opened memory-mapped on every call, so the object is cheap to pickle into DataLoader
    workers and each read touches only the frames it slices.

    Args:
        root: the cache folder (holding ``manifest.json``).
        key: the config key that named ``root``, for error messages.
    """

    def __init__(self, root: str | Path, key: str = "root"):
        self.root = Path(root)
        self.manifest = read_manifest(self.root, key)

    @property
    def clips(self) -> dict[str, dict[str, Any]]:
        return self.manifest["clips"]

    def frames(self, clip_id: str) -> np.ndarray:
        """(F, H, W, 3) uint8, memory-mapped."""
        return self._load(clip_id, FRAMES)

    def audio(self, clip_id: str) -> np.ndarray:
        """(samples,) float32 at the cache's sample rate, memory-mapped."""
        return self._load(clip_id, AUDIO)

    def whisper(self, clip_id: str) -> np.ndarray | None:
        """(S, L, Da) float32 hidden states, memory-mapped, or None when they were not cached."""
        if not (clip_dir(self.root, clip_id) / WHISPER).is_file():
            return None
        return self._load(clip_id, WHISPER)

    def _load(self, clip_id: str, name: str) -> np.ndarray:
        path = clip_dir(self.root, clip_id) / name
        try:
            return np.load(path, mmap_mode="r")
        except (OSError, ValueError) as err:
            raise DataError(
                f"cannot read {path} ({err}); the cache is damaged: re-run `python -m readlit.preprocess` "
                "(finished clips are kept)"
            ) from err
