"""Build (or resume) a latent cache (:mod:`readlit.data.latent_cache`) from any datamodule and a VAE.

Each split's items are taken in the datamodule's fixed order, ``shard_size`` at a time; a shard whose file
exists and reads back whole is kept (a damaged one is encoded again), so an interrupted build picks up at the
first missing shard. The build's settings are recorded with its first shard. Encoding uses the posterior mean
in batches of a fixed size, so a resumed build writes the same bytes as one that ran through.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from readlit.data.cache import writer_lock
from readlit.data.latent_cache import (
    DROPPED,
    FORMAT_VERSION,
    check_build,
    record_build,
    remove_partial_shards,
    shard_holds,
    shard_path,
    write_shard,
)
from readlit.data.manifest import write_manifest
from readlit.errors import DataError
from readlit.vae import VideoVAE

log = logging.getLogger(__name__)


@torch.no_grad()
def encode_items(dataset: Dataset, indices: range, vae: VideoVAE, batch_size: int,
                 device: torch.device) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Latents and the other tensor fields of ``dataset[indices]``, stacked, plus their clip ids.

    Returns:
        ``latents`` (n, C, f, h, w), ``ref_latent`` (n, C, 1, h, w), every other tensor field (n, ...).
    """
    fields: dict[str, list[torch.Tensor]] = {}
    clip_ids: list[str] = []
    for batch in DataLoader(Subset(dataset, indices), batch_size=batch_size, shuffle=False):
        if "video" not in batch or "ref" not in batch:
            raise DataError("the datamodule gave no video/ref frames to encode; the latent build needs "
                            "data.return_video=true")
        encoded = {"latents": vae.encode(batch["video"].to(device)),
                   "ref_latent": vae.encode_image(batch["ref"].to(device))}
        others = {key: value for key, value in batch.items()
                  if isinstance(value, torch.Tensor) and key not in DROPPED}
        for key, value in {**encoded, **others}.items():
            fields.setdefault(key, []).append(value.float().cpu() if value.is_floating_point() else value.cpu())
        clip_ids += list(batch["clip_id"])
    return {key: torch.cat(values) for key, values in fields.items()}, clip_ids


def build_latent_cache(datamodule: Any, vae: VideoVAE, out_dir: str | Path, splits: list[str], shard_size: int,
                       batch_size: int, device: str, settings: dict[str, Any],
                       progress: bool = True) -> dict[str, Any]:
    """Encode every item of ``splits`` into shards under ``out_dir``; returns the manifest (written last).

    Args:
        datamodule: a readlit datamodule built with ``return_video=true``; ``setup()`` fills its datasets.
        vae: the frozen VAE whose normalised latents are stored.
        settings: what the shards depend on (VAE fingerprint, data settings, batch size ...), checked on resume.
    """
    root = Path(out_dir).expanduser()
    target = torch.device(device)
    vae = vae.to(target)
    made = kept = 0
    with writer_lock(root):
        if removed := remove_partial_shards(root):
            log.info("removed %d partial shard(s) an interrupted build left", removed)
        check_build(root, settings)
        datamodule.setup(None)
        manifest_splits: dict[str, Any] = {}
        start = time.monotonic()
        for split in splits:
            dataset = datamodule.datasets[split]
            total = len(dataset)
            counts = []
            for index in tqdm(range(math.ceil(total / shard_size)), desc=f"latents {split}", disable=not progress):
                items = range(index * shard_size, min(total, (index + 1) * shard_size))
                counts.append(len(items))
                path = shard_path(root, split, index)
                if path.is_file() and shard_holds(path, len(items)):
                    kept += 1
                    continue
                if path.is_file():
                    log.warning("%s is damaged (cut short or foreign): encoding it again", path)
                encoded = encode_items(dataset, items, vae, batch_size, target)
                record_build(root, settings)
                write_shard(path, *encoded)
                made += 1
            manifest_splits[split] = {"items": total, "shards": counts}
        manifest = {"format": FORMAT_VERSION, "splits": manifest_splits, "shard_size": shard_size,
                    "latent_shape": _latent_shape(root, splits, manifest_splits), **settings}
        write_manifest(root, manifest)
    log.info("latent cache %s: %d shard(s) written, %d kept, in %.1f s", root, made, kept, time.monotonic() - start)
    return manifest


def _latent_shape(root: Path, splits: list[str], manifest_splits: dict[str, Any]) -> list[int]:
    """(C, f, h, w) of the stored latents, read from the first shard."""
    split = next((name for name in splits if manifest_splits[name]["items"]), None)
    if split is None:
        raise DataError(f"the splits {splits} of this data config hold no clips: nothing to encode")
    with safe_open(str(shard_path(root, split, 0)), framework="pt") as handle:
        return list(handle.get_slice("latents").get_shape()[1:])
