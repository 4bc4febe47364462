"""3D rotary position embedding of LTX-Video, on global latent-frame positions.

Every video token has a position (frame, row, column). Each axis is scaled to a fraction of a base extent
(LTX: 20 latent frames, 2048 x 2048 latent pixels, after multiplying by the VAE's compression and the frame
time, so positions mean seconds and pixels), mapped to [-1, 1], and rotates interleaved channel pairs at
frequencies spaced geometrically from 1 to theta (times pi / 2), the three axes taking turns. Channels left
over when the width is not a multiple of 6 come first and are not rotated.

Positions are clip-local: the ANS sampler gives every clip the positions training gave it (reference at frame
0, the clip's frames at 1..f), whatever the clip's place in a long video (docs/design.md §8). ``frame_offset``
moves the clip's frames along the time axis, as LTX's own positions of a later window would.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange, repeat
from torch import nn


def video_positions(frames: int, height: int, width: int, frame_offset: int = 0,
                    device: torch.device | None = None) -> torch.Tensor:
    """(L, 3) positions (frame, row, column) of the tokens of [z_R, z_1..z_{f-1}], L = frames·height·width.

    Latent frame 0 is the reference image: it has no place in time and always sits at frame position 0.
    Frame j >= 1 sits at ``frame_offset + j``; with offset 0 this is LTX's plain grid.
    """
    frame = torch.arange(frames, dtype=torch.float32, device=device)
    frame = torch.where(frame > 0, frame + frame_offset, frame)
    rows = torch.arange(height, dtype=torch.float32, device=device)
    cols = torch.arange(width, dtype=torch.float32, device=device)
    grid = torch.stack(torch.meshgrid(frame, rows, cols, indexing="ij"), dim=-1)
    return rearrange(grid, "f h w k -> (f h w) k")


class RotaryPosEmbed3D(nn.Module):
    """cos/sin tables of LTX-Video's RoPE for given token positions.

    Args:
        dim: D, the attention width the tables rotate (all heads together, as LTX does).
        base: extents (frames, height, width) that map to the full [-1, 1] range.
        scale: multipliers of each axis before dividing by ``base`` (LTX pipelines use VAE temporal ratio / fps
            and the spatial ratio).
        theta: largest frequency.
    """

    def __init__(self, dim: int, base: tuple[float, float, float] = (20, 2048, 2048),
                 scale: tuple[float, float, float] = (8 / 25, 32, 32), theta: float = 10000.0):
        super().__init__()
        self.dim, self.theta = dim, theta
        self.register_buffer("axis_scale", torch.tensor(scale, dtype=torch.float32), persistent=False)
        self.register_buffer("axis_base", torch.tensor(base, dtype=torch.float32), persistent=False)

    def forward(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """positions (L, 3) -> (cos, sin), each (L, D)."""
        # (position x scale) / base in float32, in diffusers' order: position x (scale / base) rounds differently
        # and drifts from LTX by up to 1e-3 once frame positions pass a few latent frames.
        grid = positions.float() * self.axis_scale.float() / self.axis_base.float()
        freqs = self.theta ** torch.linspace(0.0, 1.0, self.dim // 6, device=positions.device, dtype=torch.float32)
        angles = (freqs * math.pi / 2) * rearrange(grid * 2 - 1, "n k -> n k 1")       # (L, 3, D // 6)
        angles = repeat(angles, "n k r -> n (r k two)", two=2)                          # (L, D - D % 6)
        pad = self.dim % 6
        cos = torch.cat([angles.new_ones(len(angles), pad), angles.cos()], dim=-1)
        sin = torch.cat([angles.new_zeros(len(angles), pad), angles.sin()], dim=-1)
        return cos, sin


def apply_rope(x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Rotate interleaved channel pairs of x (B, L, D) by the tables (L, D); computed in float32."""
    cos, sin = rope
    pairs = rearrange(x, "b n (d two) -> b n d two", two=2)
    rotated = rearrange(torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1), "b n d two -> b n (d two)")
    return (x.float() * cos + rotated.float() * sin).to(x.dtype)
