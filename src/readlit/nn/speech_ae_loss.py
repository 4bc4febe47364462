"""SpeechAE pre-training objective (eq. 7-9) and its frame-retrieval diagnostic."""

import torch
from einops import rearrange
from torch import nn
from torch.nn import functional as F


def frame_similarity(s_hat: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of every reconstructed frame with every true frame.

    Args:
        s_hat: Ŝ (B, F, Hw, Da).
        s: S (B, F, Hw, Da).

    Returns:
        (B, F, F) with [b, i, j] = sim(ŝ_i, s_j) over the flattened window of each frame.
    """
    s_hat = F.normalize(rearrange(s_hat, "b f n d -> b f (n d)"), dim=-1)
    s = F.normalize(rearrange(s, "b f n d -> b f (n d)"), dim=-1)
    return torch.einsum("bic,bjc->bij", s_hat, s)


def contrastive_loss(s_hat: torch.Tensor, s: torch.Tensor, tau: float) -> torch.Tensor:
    """L_CON of eq. 8, averaged over the batch.

    As written in the paper, the denominator sums over j != i only (the positive pair is not in it),
    so the loss is unbounded below by zero; its minimum is log(F - 1) - 2/tau.

    Args:
        s_hat: Ŝ (B, F, Hw, Da), F >= 2.
        s: S (B, F, Hw, Da).
        tau: temperature.

    Returns:
        Scalar loss.
    """
    logits = frame_similarity(s_hat, s) / tau                        # (B, F, F)
    num_frames = logits.shape[-1]
    assert num_frames >= 2, "L_CON needs at least two frames: its denominator runs over j != i"
    eye = torch.eye(num_frames, dtype=torch.bool, device=logits.device)
    positive = logits.diagonal(dim1=-2, dim2=-1)                     # (B, F)
    negative = torch.logsumexp(logits.masked_fill(eye, float("-inf")), dim=-1)
    return (negative - positive).mean()


def frame_retrieval_accuracy(s_hat: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Share of frames whose nearest reconstructed frame (cosine) is their own; chance is 1/F.

    Args:
        s_hat: Ŝ (B, F, Hw, Da).
        s: S (B, F, Hw, Da).

    Returns:
        Scalar in [0, 1].
    """
    sim = frame_similarity(s_hat, s)                                 # (B, F_hat, F_true)
    nearest = sim.argmax(dim=1)                                      # (B, F_true)
    own = torch.arange(sim.shape[-1], device=sim.device)
    return (nearest == own).float().mean()


class SpeechAELoss(nn.Module):
    """L_SpeechAE = alpha·L_MSE + beta·L_CON (eq. 9); L_MSE is the mean squared error over all entries."""

    def __init__(self, alpha: float = 1.0, beta: float = 0.1, tau: float = 0.1):
        super().__init__()
        self.alpha, self.beta, self.tau = alpha, beta, tau

    def forward(self, s_hat: torch.Tensor, s: torch.Tensor) -> dict[str, torch.Tensor]:
        """Ŝ, S (B, F, Hw, Da) -> {"loss", "mse", "con"} scalars."""
        mse = F.mse_loss(s_hat, s)
        con = contrastive_loss(s_hat, s, self.tau)
        return {"loss": self.alpha * mse + self.beta * con, "mse": mse, "con": con}
