"""The shared float64 Fréchet distance and its accumulating torchmetrics base."""

import numpy as np
import pytest
import scipy.linalg
import torch

from readlit.eval.metrics.frechet import FrechetMetric, frechet_distance


def _random_cov(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_closed_form_for_diagonal_gaussians():
    # For commuting (diagonal) covariances Tr((Σ₁Σ₂)^½) = Σ sqrt(a_i b_i), so d² = ‖δ‖² + Σ (√a_i − √b_i)².
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_mean_shift_only_gives_squared_norm():
    rng = np.random.default_rng(0)
    cov = _random_cov(rng, 6)
    delta = rng.normal(size=6)
    assert frechet_distance(np.zeros(6), cov, delta, cov) == pytest.approx(delta @ delta, abs=1e-8)


def test_agrees_with_scipy_sqrtm_formula():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    s1, s2 = _random_cov(rng, 8), _random_cov(rng, 8)
    direct = mu1 - mu2
    reference = direct @ direct + np.trace(s1) + np.trace(s2) - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(reference, rel=1e-10)


def test_identical_sets_are_near_zero_even_when_singular():
    rng = np.random.default_rng(2)
    feats = torch.from_numpy(rng.normal(size=(5, 16)))  # 5 samples, 16 dims: singular covariance
    metric = FrechetMetric(16)
    metric.update(feats, real=True)
    metric.update(feats, real=False)
    assert abs(float(metric.compute())) < 1e-4


def test_batched_accumulation_equals_one_shot_and_np_cov():
    rng = np.random.default_rng(3)
    real, fake = torch.from_numpy(rng.normal(size=(40, 4))), torch.from_numpy(rng.normal(1.0, 2.0, size=(30, 4)))
    once, batched = FrechetMetric(4), FrechetMetric(4)
    once.update(real, real=True)
    once.update(fake, real=False)
    for chunk in real.split(7):
        batched.update(chunk, real=True)
    for chunk in fake.split(9):
        batched.update(chunk, real=False)
    r, f = real.numpy(), fake.numpy()
    expected = frechet_distance(r.mean(0), np.cov(r, rowvar=False), f.mean(0), np.cov(f, rowvar=False))
    assert float(batched.compute()) == pytest.approx(float(once.compute()), rel=1e-10)
    assert float(once.compute()) == pytest.approx(expected, rel=1e-10)
    assert once.compute().dtype == torch.float64


def test_states_are_summed_across_processes():
    metric = FrechetMetric(3)
    assert all(metric._reductions[name] is not None for name in metric._defaults)


def test_biased_covariance_option_divides_by_n():
    x = torch.tensor([[0.0], [2.0]], dtype=torch.float64)
    metric = FrechetMetric(1, unbiased=False)
    metric.update(x, real=True)
    metric.update(x + 1, real=False)
    assert float(metric.compute()) == pytest.approx(1.0)  # equal variances, mean shift 1


def test_merging_rank_states_equals_one_process():
    # What DDP sync does: states of metrics that saw disjoint shards are summed.
    rng = np.random.default_rng(4)
    real, fake = torch.from_numpy(rng.normal(size=(20, 3))), torch.from_numpy(rng.normal(0.5, 1.0, size=(20, 3)))
    whole, rank0, rank1 = FrechetMetric(3), FrechetMetric(3), FrechetMetric(3)
    whole.update(real, real=True)
    whole.update(fake, real=False)
    for rank, half in ((rank0, slice(0, 10)), (rank1, slice(10, 20))):
        rank.update(real[half], real=True)
        rank.update(fake[half], real=False)
    rank0.merge_state(rank1)
    assert float(rank0.compute()) == pytest.approx(float(whole.compute()), rel=1e-10)


def test_agrees_with_torchmetrics_and_torch_fidelity_eigenvalue_forms():
    from torchmetrics.image.fid import _compute_fid

    rng = np.random.default_rng(5)
    mu1, mu2 = rng.normal(size=10), rng.normal(size=10)
    s1, s2 = _random_cov(rng, 10), _random_cov(rng, 10)
    ours = frechet_distance(mu1, s1, mu2, s2)
    as_torch = [torch.from_numpy(a) for a in (mu1, s1, mu2, s2)]
    assert float(_compute_fid(*as_torch)) == pytest.approx(ours, rel=1e-9)
    # torch-fidelity 0.4: Tr((Σ₁Σ₂)^½) = Σ sqrt(eigenvalues)
    trace = np.sum(np.sqrt(np.linalg.eigvals(s1 @ s2).astype("complex128")).real)
    assert (mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * trace == pytest.approx(ours, rel=1e-9)
