"""Multi-head attention as in LTX-Video: RMSNorm on q and k across all heads, RoPE, SDPA.

Parameter names (``to_q``, ``to_k``, ``to_v``, ``norm_q``, ``norm_k``, ``to_out.0``) are diffusers' names, so
LTX-Video weights load by name.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn
from torch.nn import functional as F

from readlit.nn.rope import apply_rope

# LTX turns a 0/1 text mask into this additive bias (not -inf), so a fully masked row stays finite.
MASK_BIAS = -10000.0


class Attention(nn.Module):
    """Self-attention (``context_dim=None``) or cross-attention to a context of width ``context_dim``.

    Args:
        dim: D, width of the queries and of the output.
        heads: attention heads.
        head_dim: width of one head.
        context_dim: width of the keys' and values' source; None for self-attention.
        zero_out: start the output projection at zero, so the layer adds nothing until trained.
        eps: epsilon of the q/k RMSNorm.
    """

    def __init__(self, dim: int, heads: int, head_dim: int, context_dim: int | None = None,
                 zero_out: bool = False, eps: float = 1e-5):
        super().__init__()
        inner = heads * head_dim
        self.heads = heads
        self.to_q = nn.Linear(dim, inner)
        self.to_k = nn.Linear(context_dim or dim, inner)
        self.to_v = nn.Linear(context_dim or dim, inner)
        self.norm_q = nn.RMSNorm(inner, eps=eps)
        self.norm_k = nn.RMSNorm(inner, eps=eps)
        self.to_out = nn.ModuleList([nn.Linear(inner, dim), nn.Dropout(0.0)])
        if zero_out:
            nn.init.zeros_(self.to_out[0].weight)
            nn.init.zeros_(self.to_out[0].bias)

    def key_value(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys (normalised) and values of a source (B, M, Dc): each (B, M, inner).

        A cross-attention whose context is fixed for a whole clip (the audio, the text) computes these once per
        clip and hands them to every step's :meth:`forward` as ``kv``.
        """
        return self.norm_k(self.to_k(source)), self.to_v(source)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                rope: tuple[torch.Tensor, torch.Tensor] | None = None,
                mask: torch.Tensor | None = None,
                kv: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Attend.

        Args:
            x: (B, L, D) queries.
            context: (B, M, Dc) keys/values source; None attends to x itself.
            rope: (cos, sin) tables (L, inner) rotating q and k (self-attention only).
            mask: (B, M) 1 for context tokens to attend to, 0 for padding.
            kv: :meth:`key_value` of the context, computed beforehand (then ``context`` is not read).

        Returns:
            (B, L, D).
        """
        q = self.norm_q(self.to_q(x))
        k, v = kv if kv is not None else self.key_value(x if context is None else context)
        if rope is not None:
            q, k = apply_rope(q, rope), apply_rope(k, rope)
        q, k, v = (rearrange(a, "b n (h d) -> b h n d", h=self.heads) for a in (q, k, v))
        bias = None
        if mask is not None:
            bias = rearrange((1 - mask.to(q.dtype)) * MASK_BIAS, "b m -> b 1 1 m")
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        out = rearrange(out, "b h n d -> b n (h d)")
        return self.to_out[1](self.to_out[0](out))
