"""SpeechAE: the Speech Autoencoder of READ (§3.2, eq. 5-9).

It compresses per-video-frame Whisper windows S (F, Hw, Da) into speech latents C (f, hw, da) with
exactly the video VAE's temporal rule, 1 + 8k frames -> 1 + k latent frames, so that latent frame k of
the speech matches latent frame k of the video. The paper specifies "linear-based dimensionality
transformation modules and temporal sampling modules built with 1D causal convolutional layers"; the
widths, window sizes and block counts below are the paper-silent choices, all constructor arguments.

Temporal layout (as in LTX-Video's causal VAE): every convolution pads on the left only, by repeating
the first frame, and each stride-2 step maps 1 + 2m frames to 1 + m. Latent frame 0 therefore sees
input frame 0 alone, and latent frame j >= 1 sees input frames <= 2^n·j. The decoder mirrors it: each
up-step doubles the frames and drops the first, mapping m + 1 frames back to 2m + 1.
"""

import torch
from einops import rearrange
from torch import nn
from torch.nn import functional as F

from readlit.frames import check_frame_count


class CausalConv1d(nn.Module):
    """Conv1d over time that only looks back: left padding by repeating the first frame."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1):
        super().__init__()
        self.pad = kernel_size - 1
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, F) -> (B, C', F') with F' = (F - 1) // stride + 1."""
        first = x[:, :, :1].expand(-1, -1, self.pad)
        return self.conv(torch.cat([first, x], dim=2))


class FrameNorm(nn.Module):
    """LayerNorm over channels of each frame; unlike GroupNorm it never mixes frames, so it stays causal."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, F) -> (B, C, F)."""
        return rearrange(self.norm(rearrange(x, "b c f -> b f c")), "b f c -> b c f")


class CausalResBlock1d(nn.Module):
    """Pre-norm residual block of two causal convolutions."""

    def __init__(self, channels: int, kernel_size: int = 3):
        super().__init__()
        self.norm1 = FrameNorm(channels)
        self.conv1 = CausalConv1d(channels, channels, kernel_size)
        self.norm2 = FrameNorm(channels)
        self.conv2 = CausalConv1d(channels, channels, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, F) -> (B, C, F)."""
        h = self.conv1(F.silu(self.norm1(x)))
        return x + self.conv2(F.silu(self.norm2(h)))


class CausalUpsample1d(nn.Module):
    """Doubles the frames and drops the first, mapping m + 1 frames to 2m + 1 (LTX decoder rule)."""

    def __init__(self, channels: int, kernel_size: int = 3):
        super().__init__()
        self.conv = CausalConv1d(channels, 2 * channels, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, f) -> (B, C, 2f - 1)."""
        x = rearrange(self.conv(x), "b (c r) f -> b c (f r)", r=2)
        return x[:, :, 1:]


def _stage(channels: int, res_blocks: int, kernel_size: int, resample: nn.Module | None) -> nn.Sequential:
    blocks = [CausalResBlock1d(channels, kernel_size) for _ in range(res_blocks)]
    return nn.Sequential(*blocks, *([resample] if resample is not None else []))


class SpeechEncoder(nn.Module):
    """E_A: S (B, F, Hw, Da) -> C (B, f, hw, da)."""

    def __init__(self, in_tokens: int, in_dim: int, width: int, latent_tokens: int, latent_dim: int,
                 num_down: int, res_blocks: int, kernel_size: int):
        super().__init__()
        self.latent_tokens = latent_tokens
        # One linear map over the whole window: a narrow map shared by all its tokens squeezes the
        # embedding and every Whisper layer into one subspace (measured: 3x the reconstruction error).
        # No normalisation on the main path: a per-token or per-frame norm discards the overall
        # level of the features, which carries loudness, the very thing lips follow.
        self.frame_proj = nn.Linear(in_tokens * in_dim, width)
        self.stages = nn.Sequential(
            *[_stage(width, res_blocks, kernel_size, CausalConv1d(width, width, kernel_size, stride=2))
              for _ in range(num_down)],
            _stage(width, res_blocks, kernel_size, None),
        )
        self.out_proj = nn.Linear(width, latent_tokens * latent_dim)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        """S (B, F, Hw, Da) -> C (B, f, hw, da) with f = 1 + (F - 1) / 2^num_down."""
        x = self.frame_proj(rearrange(s, "b f n d -> b f (n d)"))  # (B, F, width)
        x = self.stages(rearrange(x, "b f c -> b c f"))          # (B, width, f)
        x = self.out_proj(rearrange(x, "b c f -> b f c"))
        return rearrange(x, "b f (n d) -> b f n d", n=self.latent_tokens)


class SpeechDecoder(nn.Module):
    """D_A: C (B, f, hw, da) -> Ŝ (B, F, Hw, Da)."""

    def __init__(self, in_tokens: int, in_dim: int, width: int, latent_tokens: int, latent_dim: int,
                 num_down: int, res_blocks: int, kernel_size: int):
        super().__init__()
        self.in_tokens = in_tokens
        self.latent_proj = nn.Linear(latent_tokens * latent_dim, width)
        self.stages = nn.Sequential(
            _stage(width, res_blocks, kernel_size, None),
            *[_stage(width, res_blocks, kernel_size, CausalUpsample1d(width, kernel_size))
              for _ in range(num_down)],
        )
        self.frame_proj = nn.Linear(width, in_tokens * in_dim)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        """C (B, f, hw, da) -> Ŝ (B, F, Hw, Da) with F = 1 + (f - 1)·2^num_down."""
        x = self.latent_proj(rearrange(c, "b f n d -> b f (n d)"))  # (B, f, width)
        x = self.stages(rearrange(x, "b f c -> b c f"))             # (B, width, F)
        x = self.frame_proj(rearrange(x, "b c f -> b f c"))         # (B, F, Hw·Da)
        return rearrange(x, "b f (n d) -> b f n d", n=self.in_tokens)


class SpeechAE(nn.Module):
    """The trainable part of SpeechAE: encoder E_A and decoder D_A (eq. 6).

    Args:
        in_tokens: Hw, tokens per frame window (Whisper tokens × hidden states).
        in_dim: Da, Whisper width.
        width: channels of the temporal convolution stack.
        latent_tokens: hw, speech latent tokens per latent frame.
        latent_dim: da, speech latent width.
        num_down: stride-2 steps; 3 gives the VAE's 8× temporal compression.
        res_blocks: residual blocks per resolution.
        kernel_size: temporal kernel of every causal convolution.
    """

    def __init__(self, in_tokens: int, in_dim: int, width: int = 512, latent_tokens: int = 16,
                 latent_dim: int = 128, num_down: int = 3, res_blocks: int = 1, kernel_size: int = 3):
        super().__init__()
        self.config = dict(in_tokens=in_tokens, in_dim=in_dim, width=width,
                           latent_tokens=latent_tokens, latent_dim=latent_dim, num_down=num_down,
                           res_blocks=res_blocks, kernel_size=kernel_size)
        self.ratio = 2**num_down
        self.encoder = SpeechEncoder(**self.config)
        self.decoder = SpeechDecoder(**self.config)

    def encode(self, s: torch.Tensor) -> torch.Tensor:
        """S (B, F, Hw, Da) -> C (B, f, hw, da); F must be 1 + ratio·k (ConfigError otherwise)."""
        check_frame_count(s.shape[1], self.ratio, key="the SpeechAE input's frame count F")
        return self.encoder(s)

    def decode(self, c: torch.Tensor) -> torch.Tensor:
        """C (B, f, hw, da) -> Ŝ (B, F, Hw, Da)."""
        return self.decoder(c)

    def forward(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """S (B, F, Hw, Da) -> (C (B, f, hw, da), Ŝ (B, F, Hw, Da))."""
        c = self.encode(s)
        return c, self.decode(c)
