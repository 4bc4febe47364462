"""The latent cache as a WebDataset stream from object storage: every node reads its own shards, nothing is copied.

``python -m readlit.data.latent_stream CACHE OUT`` turns a latent cache (:mod:`readlit.data.latent_cache`) into tar
shards, one per cache shard, in the same order::

    <OUT>/manifest.json                 the cache's manifest, unchanged (splits, shard sizes, VAE, data settings)
    <OUT>/<split>/shard-00000.tar       per item: <index>.item.safetensors (its tensors) and <index>.json (clip id)

Upload ``OUT`` anywhere fsspec reaches (``s3://``, ``gs://``, ``http(s)://``, ``file://`` ...) and train with
``data.latents=s3://bucket/latents``: the datamodule reads the manifest there and streams the shards, each rank
its own share (``split_by_node``) and each loader worker its own share of that (``split_by_worker``), shuffling
within a buffer. Give at least as many shards as ranks x workers.

Why WebDataset and not LitData: the cache is already sharded, and a tar of per-item files is the format any object
store serves and any tool inspects; reading it is sequential whole-object GETs, which object stores do best.
WebDataset adds three small pure-Python dependencies (with fsspec, which Lightning already brings, opening the
URLs); LitData would re-encode the cache into its own chunk format through ``optimize`` and bring boto3 and
obstore. Install it with ``pip install -e .[stream]`` (``webdataset``; for ``s3://`` also ``s3fs``).
"""

from __future__ import annotations

import argparse
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from torch.utils.data import IterableDataset

from readlit.data.batch import LatentItem
from readlit.data.latent_cache import INT_FIELDS, MANIFEST, LatentShardDataset, read_manifest
from readlit.errors import ConfigError, DataError
from readlit.utils.atomic import atomic_path, atomic_write_text

ITEM, META = "item.safetensors", "json"


def is_stream(location: str | None) -> bool:
    """Whether ``data.latents`` names a streamed cache (a URL) rather than a local latent cache folder."""
    return location is not None and "://" in str(location)


def tar_path(root: str, split: str, index: int) -> str:
    return f"{str(root).rstrip('/')}/{split}/shard-{index:05d}.tar"


def export_webdataset(cache: str | Path, out: str | Path) -> Path:
    """Write every split of the latent cache ``cache`` as tar shards under ``out`` (layout in the module docstring).

    Each tar is written under a temporary name and renamed, and the manifest comes last, so a half-exported folder
    never passes for a whole one.
    """
    manifest, out = read_manifest(cache), Path(out)
    for split, info in manifest["splits"].items():
        dataset = LatentShardDataset(cache, split)
        start = 0
        for index, count in enumerate(info["shards"]):
            _write_tar(Path(tar_path(str(out), split, index)), [(start + i, dataset[start + i]) for i in range(count)])
            start += count
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=1))
    return out


def _write_tar(path: Path, items: list[tuple[int, LatentItem]]) -> None:
    """One tar of items, deterministic (fixed order, mode and times): the same cache gives the same bytes."""
    with atomic_path(path) as tmp, tarfile.open(tmp, "w") as tar:
        for index, item in items:
            tensors = {key: value.contiguous() for key, value in item.items() if hasattr(value, "contiguous")}
            tensors.update({key: _as_tensor(item[key]) for key in INT_FIELDS & item.keys()})
            meta = {"clip_id": item["clip_id"]}
            for suffix, payload in ((ITEM, save_tensors(tensors)), (META, json.dumps(meta).encode())):
                info = tarfile.TarInfo(f"{index:08d}.{suffix}")
                info.size, info.mode, info.mtime = len(payload), 0o644, 0
                tar.addfile(info, io.BytesIO(payload))


def _as_tensor(value: Any) -> Any:
    import torch

    return value if isinstance(value, torch.Tensor) else torch.tensor(value)


def read_stream_manifest(location: str) -> dict[str, Any]:
    """The manifest of a streamed cache at ``location`` (any fsspec URL)."""
    url = f"{location.rstrip('/')}/{MANIFEST}"
    try:
        with fsspec.open(url, "rt") as handle:
            return json.load(handle)
    except (OSError, ValueError, ImportError) as err:
        raise DataError(f"data.latents={location}: cannot read {url} ({type(err).__name__}: {err}); export a latent "
                        "cache with python -m readlit.data.latent_stream CACHE OUT and upload OUT there") from err


class LatentStream(IterableDataset):
    """The items of one split of a streamed latent cache, as :class:`~readlit.data.latent_cache.LatentShardDataset`
    gives them, each distributed rank and loader worker reading its own shards.

    Args:
        location: URL of the exported folder (``s3://bucket/latents``, ``file:///data/latents`` ...).
        split: ``train``, ``val`` or ``test``.
        shuffle: items in the shuffle buffer (0: the shards' order); the shard order is shuffled too.
        seed: seed of both shuffles.
    """

    def __init__(self, location: str, split: str, shuffle: int = 0, seed: int = 0):
        manifest = read_stream_manifest(location)
        if split not in manifest["splits"]:
            raise DataError(f"the streamed latent cache at data.latents={location} has no {split} split "
                            f"({sorted(manifest['splits'])})")
        shards = manifest["splits"][split]["shards"]
        self.urls = [tar_path(location, split, index) for index in range(len(shards))]
        self.items, self.shuffle, self.seed = sum(shards), shuffle, seed
        self.manifest = manifest

    def __iter__(self) -> Iterator[LatentItem]:
        try:
            import webdataset as wds
            from webdataset.tariterators import group_by_keys, tar_file_expander
        except ImportError as err:
            raise ConfigError("streaming a latent cache needs webdataset: pip install -e .[stream]") from err
        stages: list[Any] = [wds.SimpleShardList(self.urls, seed=self.seed if self.shuffle else None),
                             wds.split_by_node, wds.split_by_worker, _open, tar_file_expander, group_by_keys]
        if self.shuffle:
            stages.append(wds.shuffle(self.shuffle, seed=self.seed))
        for sample in wds.DataPipeline(*stages):
            yield _decode(sample)


def _open(shards: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Open each shard URL with fsspec (any object store it reaches), streaming, as WebDataset's tar reader takes."""
    for shard in shards:
        with fsspec.open(shard["url"], "rb") as stream:
            yield {**shard, "stream": stream}


def _decode(sample: dict[str, Any]) -> LatentItem:
    if ITEM not in sample or META not in sample:
        raise DataError(f"{sample.get('__url__')}: item {sample.get('__key__')} lacks {ITEM} or {META}; the shard "
                        "was not written by python -m readlit.data.latent_stream")
    item: dict[str, Any] = load_tensors(sample[ITEM])
    for key in INT_FIELDS & item.keys():
        item[key] = int(item[key])
    item["clip_id"] = json.loads(sample[META])["clip_id"]
    return LatentItem(**item)


def main(argv: list[str] | None = None) -> None:
    """``python -m readlit.data.latent_stream CACHE OUT``: export a latent cache as WebDataset tar shards."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("cache", help="a latent cache folder (python -m readlit.preprocess stage=latents)")
    parser.add_argument("out", help="the folder to write (then upload it to object storage)")
    args = parser.parse_args(argv)
    out = export_webdataset(args.cache, args.out)
    print(f"wrote {out} ({MANIFEST} and one tar per cache shard); train with data.latents=<its URL>")


if __name__ == "__main__":
    main()
