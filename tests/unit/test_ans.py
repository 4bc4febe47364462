"""ANS forward process: exact per-frame noising, no gradient to z_R, t1 < t2 but for the synchronous share."""

import pytest
import torch

from readlit.errors import ConfigError
from readlit.flow.ans import ANSProcess, euler_step, token_shift


def test_token_shift_is_ltx_trainers():
    assert token_shift(1024) == pytest.approx(0.95) and token_shift(4096) == pytest.approx(2.05)
    assert token_shift(2560) == pytest.approx(1.5)


def test_noising_is_exact_per_frame():
    ans = ANSProcess()
    g = torch.Generator().manual_seed(0)
    z0, eps = torch.randn(2, 3, 5, 2, 2, generator=g), torch.randn(2, 3, 5, 2, 2, generator=g)
    t = ans.sample_times(2, 4, 20, torch.device("cpu"), g)
    noised = ans.noise(z0, t, eps)
    for b in range(2):
        for k in range(5):
            expected = (1 - t[b, k]) * z0[b, :, k] + t[b, k] * eps[b, :, k]
            torch.testing.assert_close(noised.z_t[b, :, k], expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(noised.z_t[:, :, 0], z0[:, :, 0])  # the reference stays clean
    torch.testing.assert_close(noised.target, eps - z0)
    # one Euler step from t to 0 with the true velocity lands exactly on the data
    torch.testing.assert_close(euler_step(noised.z_t, noised.target, t, torch.zeros_like(t)), z0, rtol=0, atol=1e-6)


def test_reference_frame_gets_no_gradient():
    ans = ANSProcess()
    noised = ans.forward_process(torch.randn(2, 3, 4, 2, 2), torch.Generator().manual_seed(0))
    v_hat = torch.randn(2, 3, 4, 2, 2, requires_grad=True)
    ans.loss(v_hat, noised).backward()
    assert v_hat.grad[:, :, 0].abs().max() == 0 and v_hat.grad[:, :, 1:].abs().min() > 0


def test_t1_below_t2_except_the_synchronous_share():
    ans = ANSProcess(mu=0.5, sigma=1.0, sync_prob=0.2)
    t = ans.sample_times(20000, 3, 1024, torch.device("cpu"), torch.Generator().manual_seed(0))
    assert (t[:, 0] == 0).all() and (t[:, 2] == t[:, 3]).all()
    assert (t[:, 1] <= t[:, 2]).all()
    share = (t[:, 1] == t[:, 2]).float().mean().item()
    assert abs(share - 0.2) < 0.02  # 20000 draws: std of the share is 0.003
    # the logit of t2 (the larger of two draws) has a mean above mu, t1's below
    logit = torch.logit(t[:, 1:3].double())
    assert logit[:, 1].mean() > 0.5 > logit[t[:, 1] < t[:, 2], 0].mean()


def test_condition_dropout_rates():
    ans = ANSProcess(drop_audio=0.3, drop_ref=0.2, drop_both=0.1)
    keep_ref, keep_audio = ans.dropout(40000, torch.device("cpu"), torch.Generator().manual_seed(0))
    both = ((keep_ref == 0) & (keep_audio == 0)).float().mean().item()
    assert abs((keep_ref == 0).float().mean().item() - (0.1 + 0.9 * 0.2)) < 0.01
    assert abs((keep_audio == 0).float().mean().item() - (0.1 + 0.9 * 0.3)) < 0.01
    assert abs(both - (0.1 + 0.9 * 0.2 * 0.3)) < 0.01


def test_bad_probability_is_a_config_error():
    with pytest.raises(ConfigError, match="model.ans.sync_prob=1.5"):
        ANSProcess(sync_prob=1.5)


def test_position_weights_give_a_weighted_mean_over_each_frame():
    ans = ANSProcess()
    noised = ans.forward_process(torch.randn(2, 3, 4, 2, 2), torch.Generator().manual_seed(0))
    v_hat = torch.randn(2, 3, 4, 2, 2)
    torch.testing.assert_close(ans.loss(v_hat, noised, torch.full((2, 2, 2), 5.0)), ans.loss(v_hat, noised))
    # all weight on position (1, 0): the loss is that position's squared error, averaged over channels and frames
    weight = torch.zeros(2, 2, 2)
    weight[:, 1, 0] = 3.0
    error = (v_hat - noised.target)[:, :, 1:, 1, 0].square().mean()
    torch.testing.assert_close(ans.loss(v_hat, noised, weight), error)
