"""What every readlit datamodule shares: the train/val/test loaders and the video tensor layout."""

import numpy as np
import torch
from einops import rearrange
from lightning import LightningDataModule
from torch.utils.data import DataLoader, Dataset


def to_video(frames: np.ndarray) -> torch.Tensor:
    """uint8 (F, H, W, 3) -> float (3, F, H, W) in [-1, 1] (the batch contract's ``video``)."""
    # np.array copies: the frames may be a read-only memory map.
    video = torch.from_numpy(np.array(frames)).float().div(127.5).sub(1.0)
    return rearrange(video, "f h w c -> c f h w")


class SplitDataModule(LightningDataModule):
    """One DataLoader per split over ``self.datasets[split]``; only the train split is shuffled.

    Args:
        batch_size, num_workers, shuffle, pin_memory: DataLoader settings.
    """

    def __init__(self, batch_size: int, num_workers: int = 0, shuffle: bool = True, pin_memory: bool = False):
        super().__init__()
        self.loader_args = dict(batch_size=batch_size, num_workers=num_workers, pin_memory=pin_memory,
                                persistent_workers=num_workers > 0)
        self.shuffle = shuffle
        self.datasets: dict[str, Dataset] = {}

    def _loader(self, split: str) -> DataLoader:
        return DataLoader(self.datasets[split], shuffle=self.shuffle and split == "train", **self.loader_args)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")
