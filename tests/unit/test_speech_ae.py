"""SpeechAE: the 1+8k -> 1+k rule, encoder causality, and L_CON exactly as eq. 8."""

import math

import pytest
import torch

from readlit.errors import ConfigError
from readlit.nn.speech_ae import SpeechAE
from readlit.nn.speech_ae_loss import SpeechAELoss, contrastive_loss, frame_retrieval_accuracy


def tiny_ae(**overrides) -> SpeechAE:
    torch.manual_seed(0)
    args = dict(in_tokens=6, in_dim=8, width=16, latent_tokens=2, latent_dim=4)
    return SpeechAE(**(args | overrides)).eval()


@pytest.mark.parametrize("num_frames", [1, 9, 17, 33, 121])
def test_frame_rule_matches_the_vae(num_frames):
    s = torch.randn(2, num_frames, 6, 8)
    c, s_hat = tiny_ae()(s)
    assert c.shape == (2, 1 + (num_frames - 1) // 8, 2, 4)
    assert s_hat.shape == s.shape


def test_encoder_refuses_other_frame_counts():
    """A ConfigError, not an assert: ``python -O`` strips asserts, and a wrong F would then slip through."""
    with pytest.raises(ConfigError, match=r"the SpeechAE input's frame count F=16 is not 1\+8k .*use 9 or 17"):
        tiny_ae().encode(torch.randn(1, 16, 6, 8))
    with pytest.raises(ConfigError, match=r"F=10 is not 1\+2k .*use 9 or 11"):
        tiny_ae(num_down=1).encode(torch.randn(1, 10, 6, 8))


@pytest.mark.parametrize("k", [0, 1, 5, 8, 9, 16, 17, 30, 32])
def test_encoder_is_causal(k):
    """Perturbing input frame k changes no latent frame j whose span ends before k (8j < k)."""
    ae = tiny_ae(res_blocks=2)
    s = torch.randn(1, 33, 6, 8)
    perturbed = s.clone()
    perturbed[:, k] += 3.0 * torch.randn_like(perturbed[:, k])
    with torch.no_grad():
        c, c_perturbed = ae.encode(s), ae.encode(perturbed)
    first_affected = math.ceil(k / 8)
    assert torch.equal(c[:, :first_affected], c_perturbed[:, :first_affected])
    # and the frame that covers k does see it, so the test can fail
    assert not torch.allclose(c[:, first_affected], c_perturbed[:, first_affected])


def test_first_latent_frame_is_the_first_frame_alone():
    ae = tiny_ae()
    s = torch.randn(1, 17, 6, 8)
    with torch.no_grad():
        assert torch.allclose(ae.encode(s)[:, :1], ae.encode(s[:, :1]), atol=1e-6)


def loop_contrastive(s_hat: torch.Tensor, s: torch.Tensor, tau: float) -> torch.Tensor:
    """Eq. 8 written term by term, one sequence at a time."""
    def sim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cosine_similarity(x.flatten(), y.flatten(), dim=0)

    batch, frames = s.shape[:2]
    total = 0.0
    for b in range(batch):
        loss = 0.0
        for i in range(frames):
            numerator = torch.exp(sim(s_hat[b, i], s[b, i]) / tau)
            denominator = sum(torch.exp(sim(s_hat[b, i], s[b, j]) / tau) for j in range(frames) if j != i)
            loss = loss - torch.log(numerator / denominator)
        total = total + loss / frames
    return total / batch


@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0])
def test_contrastive_loss_is_eq_8(tau):
    torch.manual_seed(1)
    s, s_hat = torch.randn(3, 9, 4, 5, dtype=torch.float64), torch.randn(3, 9, 4, 5, dtype=torch.float64)
    assert torch.allclose(contrastive_loss(s_hat, s, tau), loop_contrastive(s_hat, s, tau), atol=1e-10)


def test_contrastive_loss_rewards_matching_frames():
    torch.manual_seed(2)
    s = torch.randn(2, 9, 4, 5)
    assert contrastive_loss(s, s, 0.1) < contrastive_loss(s.flip(1), s, 0.1)
    assert frame_retrieval_accuracy(s, s) == 1.0


def test_speech_ae_loss_weights():
    torch.manual_seed(3)
    s, s_hat = torch.randn(2, 9, 4, 5), torch.randn(2, 9, 4, 5)
    out = SpeechAELoss(alpha=2.0, beta=0.5, tau=0.2)(s_hat, s)
    assert torch.allclose(out["mse"], ((s - s_hat) ** 2).mean())
    assert torch.allclose(out["loss"], 2.0 * out["mse"] + 0.5 * contrastive_loss(s_hat, s, 0.2))
