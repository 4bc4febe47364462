"""Metrics the training stages log beside their losses (torchmetrics, so they reduce across processes)."""

import torch
from einops import rearrange
from torchmetrics import Metric


class MeanBaselineMSE(Metric):
    """MSE of predicting every feature by its mean over all frames seen (= mean per-feature variance).

    A reconstruction that cannot beat this has learned nothing about the input beyond its average.
    """

    full_state_update = False

    def __init__(self):
        super().__init__()
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("total_sq", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, x: torch.Tensor) -> None:
        """x (B, F, ...): every frame of every sample is one observation of the trailing features."""
        x = rearrange(x.double(), "b f ... -> (b f) (...)")
        self.total = self.total + x.sum(dim=0)
        self.total_sq = self.total_sq + (x * x).sum(dim=0)
        self.count = self.count + x.shape[0]

    def compute(self) -> torch.Tensor:
        mean = self.total / self.count
        return (self.total_sq / self.count - mean * mean).mean().float()


class LatentMoments(Metric):
    """Per-channel mean and std of latents (B, C, f, h, w) over everything seen, summed across processes."""

    full_state_update = False

    def __init__(self, channels: int):
        super().__init__()
        zeros = torch.zeros(channels, dtype=torch.float64)
        self.add_state("total", default=zeros.clone(), dist_reduce_fx="sum")
        self.add_state("total_sq", default=zeros.clone(), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, z: torch.Tensor) -> None:
        z = rearrange(z.detach().double(), "b c f h w -> (b f h w) c")
        self.total = self.total + z.sum(dim=0)
        self.total_sq = self.total_sq + z.square().sum(dim=0)
        self.count = self.count + z.shape[0]

    def compute(self) -> tuple[torch.Tensor, torch.Tensor]:
        mean = self.total / self.count
        std = (self.total_sq / self.count - mean.square()).clamp_min(1e-12).sqrt()
        return mean.float(), std.float()


class BinnedMean(Metric):
    """Mean of values grouped by a key into equal bins of [0, 1] (e.g. the flow loss by noise level t).

    Low-noise samples have a far smaller flow loss than high-noise ones, so one mean hides where a model learns;
    per-bin means show it. Keys at 1 fall in the last bin.

    Args:
        bins: number of equal bins of [0, 1].
    """

    full_state_update = False

    def __init__(self, bins: int):
        super().__init__()
        self.edges = torch.linspace(0, 1, bins + 1).tolist()
        self.add_state("sums", default=torch.zeros(bins, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("counts", default=torch.zeros(bins, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, values: torch.Tensor, keys: torch.Tensor) -> None:
        """values (N,) and their keys (N,) in [0, 1]."""
        inner = torch.tensor(self.edges[1:-1], device=keys.device, dtype=torch.float32)
        bins = torch.bucketize(keys.float().contiguous(), inner)
        self.sums = self.sums.index_add(0, bins, values.detach().double())
        self.counts = self.counts.index_add(0, bins, torch.ones_like(values, dtype=torch.float64))

    def names(self) -> list[str]:
        """The bins' names, ``t0-25`` ... (in percent of [0, 1])."""
        return [f"t{round(lo * 100)}-{round(hi * 100)}" for lo, hi in zip(self.edges[:-1], self.edges[1:], strict=True)]

    def compute(self) -> dict[str, torch.Tensor]:
        """``{"t0-25": mean, ...}`` for every bin that received a value."""
        return {name: (self.sums[i] / self.counts[i]).float()
                for i, name in enumerate(self.names()) if self.counts[i] > 0}
