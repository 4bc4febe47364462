"""What every readlit datamodule shares: the train/val/test loaders, the video tensor layout, latent caches."""

from typing import Any

import numpy as np
import torch
from einops import rearrange
from lightning import LightningDataModule
from torch.utils.data import DataLoader, Dataset, IterableDataset

from readlit import checks
from readlit.data.latent_cache import LatentShardDataset, check_item_settings, read_manifest
from readlit.data.latent_stream import LatentStream, is_stream


def to_video(frames: np.ndarray) -> torch.Tensor:
    """uint8 (F, H, W, 3) -> float32 (3, F, H, W) in [-1, 1], a :class:`~readlit.data.batch.ClipItem` ``video``."""
    # np.array copies: the frames may be a read-only memory map.
    video = torch.from_numpy(np.array(frames)).float().div(127.5).sub(1.0)
    return rearrange(video, "f h w c -> c f h w")


class SplitDataModule(LightningDataModule):
    """One DataLoader per split over ``self.datasets[split]``; only the train split is shuffled.

    With ``latents`` (a folder written by ``python -m readlit.preprocess stage=latents``) the splits are read
    from that latent cache instead: batches are :class:`~readlit.data.batch.LatentBatch`, with ``latents`` and
    ``ref_latent`` in place of ``video`` and ``ref``. The cache must have been built for the same clips
    (:meth:`item_settings`). A URL (``s3://...``, ``file://...``) streams an exported cache from object storage
    instead (:mod:`readlit.data.latent_stream`); its train split is shuffled within a buffer of ``stream_shuffle``.

    Args:
        batch_size, num_workers, shuffle, pin_memory: DataLoader settings.
        latents: a latent cache folder or a streamed cache's URL (config key ``data.latents``), or None to make
            items from the data.
        stream_shuffle: items in the shuffle buffer of a streamed train split.
    """

    def __init__(self, batch_size: int, num_workers: int = 0, shuffle: bool = True, pin_memory: bool = False,
                 latents: str | None = None, stream_shuffle: int = 256):
        super().__init__()
        checks.integer("batch_size", batch_size, minimum=1)
        checks.integer("num_workers", num_workers, minimum=0)
        checks.flag("shuffle", shuffle)
        checks.flag("pin_memory", pin_memory)
        checks.integer("stream_shuffle", stream_shuffle, minimum=0)
        self.latents, self.stream_shuffle = latents, stream_shuffle
        self.loader_args = dict(batch_size=batch_size, num_workers=num_workers, pin_memory=pin_memory,
                                persistent_workers=num_workers > 0)
        self.shuffle = shuffle
        self.datasets: dict[str, Dataset] = {}

    def item_settings(self) -> dict[str, Any]:
        """The settings that decide which items the splits hold (recorded in and checked against latent caches)."""
        raise NotImplementedError

    def check_latents(self) -> None:
        """Refuse a latent cache that is missing or made for other items; subclasses call it once they are set up
        (before any training, so the message can name ``latents``)."""
        if self.latents is not None and not is_stream(self.latents):  # a stream's manifest is checked as it opens
            check_item_settings(read_manifest(self.latents), self.item_settings(), self.latents)

    def setup_latents(self, splits: tuple[str, ...]) -> None:
        """Fill ``self.datasets`` for ``splits`` from the latent cache ``self.latents`` (a folder or a URL)."""
        if is_stream(self.latents):
            for split in splits:
                shuffle = self.stream_shuffle if self.shuffle and split == "train" else 0
                stream = self.datasets.setdefault(split, LatentStream(self.latents, split, shuffle))
            check_item_settings(stream.manifest, self.item_settings(), self.latents)
            return
        self.check_latents()
        for split in splits:
            self.datasets.setdefault(split, LatentShardDataset(self.latents, split))

    def _loader(self, split: str) -> DataLoader:
        dataset = self.datasets[split]
        shuffle = self.shuffle and split == "train" and not isinstance(dataset, IterableDataset)  # streams shuffle
        return DataLoader(dataset, shuffle=shuffle, **self.loader_args)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")
