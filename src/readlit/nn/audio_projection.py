"""The paper's "w/o SpeechAE" ablation: raw Whisper windows to audio latents by one linear map.

The windows of the pixel frames that make up one latent frame are concatenated and projected, with the VAE's
temporal rule (1 + r·k frames -> 1 + k): latent frame 0 sees frame 0 alone (repeated r times, as the causal
VAE pads), latent frame j >= 1 sees frames r·(j - 1) + 1 .. r·j.
"""

import torch
from einops import rearrange, repeat
from torch import nn


class RawWindowProjection(nn.Module):
    """S (B, F, Hw, Da) -> C (B, f, hw, da) without compression learning beyond one linear map.

    Args:
        in_tokens, in_dim: Hw and Da of the windows.
        latent_tokens, latent_dim: hw and da of the output.
        ratio: r, pixel frames per latent frame.
    """

    def __init__(self, in_tokens: int, in_dim: int, latent_tokens: int, latent_dim: int, ratio: int = 8):
        super().__init__()
        self.ratio, self.latent_tokens = ratio, latent_tokens
        self.proj = nn.Linear(ratio * in_tokens * in_dim, latent_tokens * latent_dim)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        """S (B, F, Hw, Da) -> C (B, f, hw, da), f = 1 + (F - 1) / r."""
        first = repeat(s[:, :1], "b 1 n d -> b r n d", r=self.ratio)
        frames = rearrange(torch.cat([first, s[:, 1:]], dim=1), "b (f r) n d -> b f (r n d)", r=self.ratio)
        return rearrange(self.proj(frames), "b f (n d) -> b f n d", n=self.latent_tokens)
