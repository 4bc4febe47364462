"""The latent cache: VAE latents (and audio windows) of a datamodule's clips, precomputed once.

``python -m readlit.preprocess stage=latents data=... vae=...`` writes it; any datamodule reads it instead of
rendering or decoding frames when ``data.latents`` names it. Layout::

    <root>/build.json                      the settings the shards are made with (written with the first shard)
    <root>/<split>/shard-00000.safetensors items i·n .. i·n+n-1 of the split, in the datamodule's order
    <root>/manifest.json                   written last: splits, shard counts, latent shape, VAE, data settings

A shard holds one tensor per batch field, stacked over its items: ``latents`` (n, C, f, h, w) and
``ref_latent`` (n, C, 1, h, w) from the VAE's normalised posterior mean, plus every other tensor field the
datamodule gives (``audio_windows``, ``audio``, ``mouth_open``, ``fps``); ``clip_id`` lives in the shard's
metadata. Shards are written under a temporary name and renamed (:mod:`readlit.utils.atomic`), and item i always
lands in shard i // n, so a killed build resumes where it stopped and ends with the same files as an uninterrupted
one.

Training from latents skips the VAE encoder, which at paper scale costs more than the A2V-DiT's step on
short clips; see ``python -m readlit.bench latents``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch.utils.data import Dataset

from readlit.data.batch import LatentItem
from readlit.data.manifest import MANIFEST as MANIFEST  # part of the layout above
from readlit.data.manifest import read_json
from readlit.data.manifest import read_manifest as read_json_manifest
from readlit.errors import ConfigError, DataError
from readlit.utils.atomic import atomic_path, atomic_write_json, remove_leftovers

FORMAT_VERSION = 1
BUILD = "build.json"
_BUILD_IT = "build it with `python -m readlit.preprocess stage=latents data=... vae=... latents.out_dir=DIR`"
# Fields every item of a latent cache carries; the video itself is what the cache replaces.
DROPPED = ("video", "ref")
# The items' int fields (batch.LatentItem): a shard stores them as int64 tensors.
INT_FIELDS = frozenset({"fps", "identity", "data_seed"})


def shard_path(root: str | Path, split: str, index: int) -> Path:
    return Path(root) / split / f"shard-{index:05d}.safetensors"


def write_shard(path: Path, items: dict[str, torch.Tensor], clip_ids: list[str]) -> Path:
    """Write one shard atomically: a temporary file beside ``path``, renamed onto it when complete."""
    tensors = {key: value.detach().cpu().contiguous() for key, value in items.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"clip_id": json.dumps(clip_ids)})
        os.chmod(tmp, 0o644)  # safetensors makes its files private; a cache is shared like every other output
    return path


def shard_holds(path: Path, count: int) -> bool:
    """Whether ``path`` is a readable shard of ``count`` items (a file cut short, or foreign, is not)."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            return handle.get_slice("latents").get_shape()[0] == count and "clip_id" in (handle.metadata() or {})
    except Exception:  # safetensors raises its own error types for damaged files
        return False


def remove_partial_shards(root: str | Path) -> int:
    """Delete the temporary shard files an interrupted build left; returns how many there were."""
    return remove_leftovers(root, "*/.shard-*")


def check_build(root: str | Path, settings: dict[str, Any]) -> None:
    """Refuse to resume a build made with other settings (nothing is written: see :func:`record_build`)."""
    path = Path(root) / BUILD
    if path.is_file():
        previous = read_json(path, "choose another out_dir or delete that folder")
        if previous != settings:
            changed = sorted(key for key in settings.keys() | previous.keys()
                             if settings.get(key) != previous.get(key))
            raise DataError(f"out_dir={root} holds a latent cache built with other settings ({changed} differ); "
                            "choose another out_dir or delete that folder")


def record_build(root: str | Path, settings: dict[str, Any]) -> None:
    """Record the settings of a build when its first shard is about to land: a build that fails before that
    leaves no record, so a corrected retry into the same folder is not refused for settings nothing was made with."""
    path = Path(root) / BUILD
    if not path.is_file():
        atomic_write_json(path, settings)


def read_manifest(root: str | Path, key: str = "latents") -> dict[str, Any]:
    """The manifest of a finished latent cache; DataError naming ``key`` when there is none."""
    why = "its build did not finish" if (Path(root) / BUILD).is_file() else None
    return read_json_manifest(root, "latent cache", key, FORMAT_VERSION, _BUILD_IT, why)


def check_item_settings(manifest: dict[str, Any], settings: dict[str, Any], root: str | Path) -> None:
    """Refuse a latent cache whose items the data config would not produce (other frames, size, clips ...)."""
    made = manifest["data"]
    wrong = {key: (made.get(key), value) for key, value in settings.items() if made.get(key) != value}
    if wrong:
        detail = ", ".join(f"{key}: cache {old!r}, config {new!r}" for key, (old, new) in wrong.items())
        raise ConfigError(f"latents={root} holds a latent cache built for other clips ({detail}); build one for "
                          "this config or set these keys to the cache's values")


@dataclass(frozen=True)
class ShardRef:
    path: Path
    offset: int


class LatentShardDataset(Dataset):
    """The items of one split of a latent cache, read from memory-mapped shards one slice at a time.

    Items are :class:`~readlit.data.batch.LatentItem`: ``latents``, ``ref_latent``, the datamodule's other tensor
    fields and ``clip_id``; integer fields (``fps``, ...) come back as ints, as the frame datamodules give them.
    """

    def __init__(self, root: str | Path, split: str):
        self.root, self.split = Path(root), split
        manifest = read_manifest(root)
        if split not in manifest["splits"]:
            raise DataError(f"latents={root} holds a latent cache without a {split} split "
                            f"({sorted(manifest['splits'])})")
        self.refs: list[ShardRef] = []
        for index, count in enumerate(manifest["splits"][split]["shards"]):
            path = shard_path(root, split, index)
            self.refs += [ShardRef(path, offset) for offset in range(count)]
        # Handles are opened lazily, so the dataset pickles into DataLoader workers without open files.
        self._handles: dict[Path, tuple[Any, list[str]]] = {}

    def __len__(self) -> int:
        return len(self.refs)

    def _handle(self, path: Path) -> tuple[Any, list[str]]:
        """The open shard and its clip ids."""
        if path not in self._handles:
            try:
                handle = safe_open(str(path), framework="pt")
                self._handles[path] = handle, json.loads(handle.metadata()["clip_id"])
            except Exception as err:  # safetensors raises its own error types for damaged files
                raise DataError(f"cannot read {path} ({type(err).__name__}: {err}); the latent cache is damaged: "
                                "delete the file and run the build again (it resumes)") from err
        return self._handles[path]

    def __getitem__(self, index: int) -> LatentItem:
        ref = self.refs[index]
        handle, clip_ids = self._handle(ref.path)
        item: dict[str, Any] = {key: handle.get_slice(key)[ref.offset] for key in handle.keys()}
        for key in INT_FIELDS & item.keys():
            item[key] = int(item[key])
        item["clip_id"] = clip_ids[ref.offset]
        return LatentItem(**item)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_handles": {}}
