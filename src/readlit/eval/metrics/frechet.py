"""The Fréchet distance between two Gaussians, and a torchmetrics base that accumulates feature statistics.

FID, FVD and E-FID all reduce to d² = ‖μ₁ − μ₂‖² + Tr(Σ₁) + Tr(Σ₂) − 2·Tr((Σ₁Σ₂)^½) over features of two
sets. The square root follows pytorch-fid / clean-fid / DisCo (``scipy.linalg.sqrtm`` of Σ₁Σ₂, retried with
1e-6·I added to both covariances when the result is not finite, imaginary parts dropped when the diagonal's
are below 1e-3), all in float64: float32 sums lose FID digits at 2048 dimensions.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg
import torch
from torchmetrics import Metric

from readlit.errors import ReadlitError

_EPS = 1e-6
_IMAG_ATOL = 1e-3


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    """scipy's principal square root; its ``disp=False`` tuple form is deprecated, failures show as non-finite."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)  # handled by the caller's eps retry
        return np.asarray(scipy.linalg.sqrtm(matrix))


def _trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """Tr((Σ₁Σ₂)^½), the way the reference FID code computes it."""
    covmean = _sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        # Near-singular product (fewer samples than dimensions): regularise both, as pytorch-fid does.
        offset = np.eye(sigma1.shape[0]) * _EPS
        covmean = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=_IMAG_ATOL):
            worst = np.max(np.abs(covmean.imag))
            raise ReadlitError(f"Fréchet distance: sqrtm(Σ₁Σ₂) has imaginary part {worst:.3g}; too few samples?")
        covmean = covmean.real
    return float(np.trace(covmean))


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance d² between N(mu1, sigma1) and N(mu2, sigma2), in float64.

    Args:
        mu1, mu2: (D,) means.
        sigma1, sigma2: (D, D) covariances.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shapes do not match: mu {mu1.shape} {mu2.shape}, sigma {sigma1.shape} {sigma2.shape}")
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * _trace_sqrt_product(sigma1, sigma2))


def mean_cov(total: torch.Tensor, outer: torch.Tensor, count: int, unbiased: bool = True) -> tuple[np.ndarray, ...]:
    """Mean (D,) and covariance (D, D) from Σx (D,), Σxxᵀ (D, D) and N; unbiased divides by N − 1 (np.cov)."""
    total, outer = total.double().cpu().numpy(), outer.double().cpu().numpy()
    mu = total / count
    cov = (outer - count * np.outer(mu, mu)) / (count - 1 if unbiased else count)
    return mu, cov


class FrechetMetric(Metric):
    """Fréchet distance between features of a "real" and a "fake" set, accumulated over batches.

    Subclasses turn inputs into features with :meth:`features`; ``update(x, real=...)`` adds them. The states
    are float64 sums of x and xxᵀ and a count per set, summed across processes, so the result does not depend
    on batching or on how the data was split over ranks.

    Args:
        num_features: D, the feature width.
        unbiased: covariance divides by N − 1 (np.cov, pytorch-fid) rather than N (StyleGAN-V).
    """

    full_state_update = False
    higher_is_better = False
    is_differentiable = False

    def __init__(self, num_features: int, unbiased: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_features, self.unbiased = num_features, unbiased
        for side in ("real", "fake"):
            self.add_state(f"{side}_sum", torch.zeros(num_features, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{side}_outer", torch.zeros(num_features, num_features, dtype=torch.float64),
                           dist_reduce_fx="sum")
            self.add_state(f"{side}_count", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs -> (N, D) features; the identity here (inputs are features already)."""
        return x

    def update(self, x: torch.Tensor, real: bool) -> None:
        """Add a batch to the real or the fake set.

        Args:
            x: whatever :meth:`features` takes; (N, D) features for the base class.
            real: which set the batch belongs to.
        """
        feats = self.features(x).detach().double()
        if feats.ndim != 2 or feats.shape[1] != self.num_features:
            raise ValueError(f"expected (N, {self.num_features}) features, got {tuple(feats.shape)}")
        side = "real" if real else "fake"
        setattr(self, f"{side}_sum", getattr(self, f"{side}_sum") + feats.sum(0))
        setattr(self, f"{side}_outer", getattr(self, f"{side}_outer") + feats.T @ feats)
        setattr(self, f"{side}_count", getattr(self, f"{side}_count") + feats.shape[0])

    def compute(self) -> torch.Tensor:
        """d² as a float64 scalar; needs at least two samples in each set."""
        stats = []
        for side in ("real", "fake"):
            count = int(getattr(self, f"{side}_count"))
            if count < 2:
                raise ReadlitError(f"{type(self).__name__}: the {side} set has {count} samples; need at least 2")
            stats.append(mean_cov(getattr(self, f"{side}_sum"), getattr(self, f"{side}_outer"), count, self.unbiased))
        (mu1, s1), (mu2, s2) = stats
        return torch.tensor(frechet_distance(mu1, s1, mu2, s2), dtype=torch.float64)
