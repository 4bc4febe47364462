"""The predict-the-mean baseline a reconstruction MSE is judged against."""

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
