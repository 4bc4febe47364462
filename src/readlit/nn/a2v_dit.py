"""A2V-DiT (paper §3.2, eq. 10): LTX-Video's transformer plus frame-level audio cross-attention.

Each block: RMSNorm -> AdaLN-single modulation by the token's own timestep -> self-attention over every video
token with 3D RoPE -> gated residual; optional text cross-attention (LTX style, ungated); frame-level audio
cross-attention: the h·w tokens of latent frame k attend only to the audio latents C_k (frames folded into the
batch), output projection zero-initialised, the reference frame (latent frame 0) gets none; RMSNorm ->
modulation -> gated GELU feed-forward. With the audio branch fresh the network computes exactly what
diffusers' ``LTXVideoTransformer3DModel`` computes, and every LTX parameter has the same name here.

Shapes: B batch, C latent channels, f latent frames (reference included), h w latent size, L = f·h·w tokens,
D width, hw da audio tokens and width per latent frame, Lt text tokens, Dt text width (glossary: docs/design.md).
``python -m readlit.nn.a2v_dit --size ltx2b`` prints the parameter count and forward FLOPs at paper scale.
"""

from __future__ import annotations

import argparse
import math
from typing import NamedTuple

import torch
from einops import rearrange, repeat
from torch import nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from readlit.errors import ConfigError
from readlit.frames import latent_frames
from readlit.nn.attention import Attention
from readlit.nn.rope import RotaryPosEmbed3D, video_positions

TEXT_MODES = ("off", "null", "embeddings")


def timestep_sinusoids(t: torch.Tensor, channels: int = 256, max_period: float = 10000.0) -> torch.Tensor:
    """(M,) -> (M, channels): [cos, sin] of t at geometric frequencies (diffusers' flip_sin_to_cos, shift 0)."""
    half = channels // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([angles.cos(), angles.sin()], dim=-1)


class MLP(nn.Module):
    """linear_1 -> activation -> linear_2 (diffusers' TimestepEmbedding / PixArtAlphaTextProjection layout)."""

    def __init__(self, in_dim: int, dim: int, activation: nn.Module):
        super().__init__()
        self.linear_1 = nn.Linear(in_dim, dim)
        self.act = activation
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., in_dim) -> (..., dim)."""
        return self.linear_2(self.act(self.linear_1(x)))


class TimestepEmbedding(nn.Module):
    """t -> sinusoids -> MLP: the shared embedding of AdaLN-single."""

    def __init__(self, dim: int):
        super().__init__()
        self.timestep_embedder = MLP(256, dim, nn.SiLU())

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """(M,) -> (M, D)."""
        # The sinusoids are computed in float32 (as diffusers does) and handed over in the weights' dtype, so the
        # net also runs cast whole to float64 or bfloat16.
        return self.timestep_embedder(timestep_sinusoids(t).to(self.timestep_embedder.linear_1.weight.dtype))


class AdaLNSingle(nn.Module):
    """PixArt-alpha's AdaLN-single: one 6D modulation vector per timestep, shared by every block."""

    def __init__(self, dim: int):
        super().__init__()
        self.emb = TimestepEmbedding(dim)
        self.linear = nn.Linear(dim, 6 * dim)

    def forward(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(M,) -> modulation (M, 6D) and the embedding itself (M, D) for the output head."""
        embedded = self.emb(t)
        return self.linear(F.silu(embedded)), embedded


class GELUProjection(nn.Module):
    """Linear then tanh-GELU (diffusers' ``GELU`` with its ``proj``)."""

    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.proj = nn.Linear(dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.proj(x), approximate="tanh")


class FeedForward(nn.Module):
    """D -> 4D -> D with tanh-GELU; ``net.0.proj`` and ``net.2`` as in diffusers."""

    def __init__(self, dim: int, mult: int = 4):
        super().__init__()
        self.net = nn.Sequential(GELUProjection(dim, mult * dim), nn.Dropout(0.0), nn.Linear(mult * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class A2VBlock(nn.Module):
    """One LTX-Video block with frame-level audio cross-attention after the text cross-attention."""

    def __init__(self, dim: int, heads: int, head_dim: int, text: bool, eps: float, affine: bool):
        super().__init__()
        self.norm1 = nn.RMSNorm(dim, eps=eps, elementwise_affine=affine)
        self.attn1 = Attention(dim, heads, head_dim)
        self.attn2 = Attention(dim, heads, head_dim, context_dim=dim) if text else None
        self.norm_audio = nn.RMSNorm(dim, eps=eps, elementwise_affine=False)
        self.attn_audio = Attention(dim, heads, head_dim, context_dim=dim, zero_out=True)
        self.norm2 = nn.RMSNorm(dim, eps=eps, elementwise_affine=affine)
        self.ff = FeedForward(dim)
        self.scale_shift_table = nn.Parameter(torch.randn(6, dim) / dim**0.5)

    def forward(self, x: torch.Tensor, temb: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor],
                audio: torch.Tensor, text: torch.Tensor | None, text_mask: torch.Tensor | None,
                audio_kv: tuple[torch.Tensor, torch.Tensor] | None = None,
                text_kv: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Update the video tokens.

        Args:
            x: (B, f, n, D) video tokens, n = h·w tokens per latent frame (attention sees them as L = f·n).
            temb: (B, f, 1, 6D) AdaLN-single modulation of each frame's timestep, broadcast over its tokens, or
                (B, f, n, 6D) per token.
            rope: (cos, sin), each (L, D).
            audio: (B·(f - 1), hw, D) projected audio latents of frames 1..f-1, one row of the batch per frame.
            text: (B, Lt, D) projected text, or None without text cross-attention.
            text_mask: (B, Lt) 1 = attend, or None.
            audio_kv, text_kv: this block's keys and values of ``audio`` and ``text``, computed beforehand
                (:meth:`A2VDiT.prepare`); None computes them here.

        Returns:
            (B, f, n, D).
        """
        modulation = rearrange(temb, "b f n (k d) -> b f n k d", k=6) + self.scale_shift_table
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = modulation.unbind(dim=3)
        frames = x.shape[1]
        attended = self.attn1(rearrange(self.norm1(x) * (1 + scale_msa) + shift_msa, "b f n d -> b (f n) d"),
                              rope=rope)
        x = x + gate_msa * rearrange(attended, "b (f n) d -> b f n d", f=frames)
        if self.attn2 is not None:
            read = self.attn2(rearrange(x, "b f n d -> b (f n) d"), context=text, mask=text_mask, kv=text_kv)
            x = x + rearrange(read, "b (f n) d -> b f n d", f=frames)
        x = x + self.audio_cross_attention(x, audio, audio_kv)
        return x + gate_mlp * self.ff(self.norm2(x) * (1 + scale_mlp) + shift_mlp)

    def audio_cross_attention(self, x: torch.Tensor, audio: torch.Tensor,
                              audio_kv: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Eq. 10 per latent frame: (B, f, n, D) x audio (B·(f - 1), hw, D) -> update (B, f, n, D), zero on frame 0."""
        queries = rearrange(x[:, 1:], "b f n d -> (b f) n d")
        out = self.attn_audio(self.norm_audio(queries), context=audio, kv=audio_kv)
        return F.pad(rearrange(out, "(b f) n d -> b f n d", b=x.shape[0]), (0, 0, 0, 0, 1, 0))  # frame 0: no audio


class ClipContext(NamedTuple):
    """What every forward of one clip shares, whatever its flow times: computed once per clip, not once per step.

    The sampler's steps change only z and t; the RoPE tables, the projected audio and text, and every block's keys
    and values of them depend on the clip alone (docs/design.md §8). The reference frame's tokens are not among
    them: from the first block on they attend to the noisy frames. A forward without a context prepares one without
    the keys and values, which each block then computes inside its own forward (where FSDP has gathered its
    weights and checkpointing recomputes them).
    """

    rope: tuple[torch.Tensor, torch.Tensor]                          # (L, D) each
    audio: torch.Tensor                                              # (B·(f - 1), hw, D)
    text: torch.Tensor | None                                        # (B, Lt, D)
    text_mask: torch.Tensor | None                                   # (B, Lt)
    audio_kv: tuple[tuple[torch.Tensor, torch.Tensor], ...] | None   # per block, (B·(f - 1), hw, D) each
    text_kv: tuple[tuple[torch.Tensor, torch.Tensor], ...] | None    # per block, (B, Lt, D) each


class A2VDiT(nn.Module):
    """The velocity network S_theta(Z(t), C, z_R, t) (eq. 15).

    The arguments named as in diffusers' ``LTXVideoTransformer3DModel`` config mean the same; the rest:

    Args:
        audio_dim: da, width of the audio latents C.
        text: ``off`` (no text cross-attention), ``null`` (a learned context of ``text_tokens`` tokens in the
            caption space, the same for every sample) or ``embeddings`` (cached text-encoder outputs given to
            :meth:`forward`).
        text_tokens: length of the learned null context.
        rope_base, rope_scale: see :class:`~readlit.nn.rope.RotaryPosEmbed3D`.
        timestep_scale: flow time t in [0, 1] is embedded as t·timestep_scale (LTX was trained on 0..1000).
        gradient_checkpointing: recompute each block in the backward pass (memory for compute).
    """

    def __init__(self, in_channels: int = 128, out_channels: int | None = None, num_attention_heads: int = 32,
                 attention_head_dim: int = 64, num_layers: int = 28, cross_attention_dim: int = 2048,
                 caption_channels: int = 4096, norm_eps: float = 1e-6, norm_elementwise_affine: bool = False,
                 audio_dim: int = 128, text: str = "off", text_tokens: int = 8,
                 rope_base: tuple[float, float, float] = (20, 2048, 2048),
                 rope_scale: tuple[float, float, float] = (8 / 25, 32, 32), timestep_scale: float = 1000.0,
                 gradient_checkpointing: bool = False):
        super().__init__()
        dim = num_attention_heads * attention_head_dim
        if text not in TEXT_MODES:
            raise ConfigError(f"text={text} is not one of {TEXT_MODES}")
        if text != "off" and cross_attention_dim != dim:
            raise ConfigError(f"cross_attention_dim={cross_attention_dim} must equal the width {dim}")
        self.config = dict(in_channels=in_channels, out_channels=out_channels or in_channels,
                           num_attention_heads=num_attention_heads, attention_head_dim=attention_head_dim,
                           num_layers=num_layers, cross_attention_dim=cross_attention_dim,
                           caption_channels=caption_channels, norm_eps=norm_eps,
                           norm_elementwise_affine=norm_elementwise_affine, audio_dim=audio_dim, text=text,
                           text_tokens=text_tokens, rope_base=tuple(rope_base), rope_scale=tuple(rope_scale),
                           timestep_scale=timestep_scale, gradient_checkpointing=gradient_checkpointing)
        self.text, self.timestep_scale = text, timestep_scale
        self.gradient_checkpointing = gradient_checkpointing
        self.proj_in = nn.Linear(in_channels, dim)
        self.scale_shift_table = nn.Parameter(torch.randn(2, dim) / dim**0.5)
        self.time_embed = AdaLNSingle(dim)
        if text != "off":
            self.caption_projection = MLP(caption_channels, dim, nn.GELU(approximate="tanh"))
        if text == "null":
            self.null_text = nn.Parameter(torch.randn(text_tokens, caption_channels) * 0.02)
        self.audio_projection = MLP(audio_dim, dim, nn.GELU(approximate="tanh"))
        self.rope = RotaryPosEmbed3D(dim, tuple(rope_base), tuple(rope_scale))
        self.transformer_blocks = nn.ModuleList([
            A2VBlock(dim, num_attention_heads, attention_head_dim, text != "off", norm_eps, norm_elementwise_affine)
            for _ in range(num_layers)
        ])
        self.norm_out = nn.LayerNorm(dim, eps=1e-6, elementwise_affine=False)
        self.proj_out = nn.Linear(dim, out_channels or in_channels)

    def prepare(self, audio: torch.Tensor, height: int, width: int, frame_offset: int = 0,
                text: torch.Tensor | None = None, text_mask: torch.Tensor | None = None,
                keys_values: bool = True) -> ClipContext:
        """The clip's share of every forward (:class:`ClipContext`), for ``forward(..., context=...)``.

        Args:
            audio: (B, f - 1, hw, da) audio latents C of latent frames 1..f-1.
            height, width: h, w of the latents.
            frame_offset, text, text_mask: as in :meth:`forward`.
            keys_values: also every block's keys and values (reads each block's weights: not under FSDP).
        """
        frames = audio.shape[1] + 1
        rope = self.rope(video_positions(frames, height, width, frame_offset, device=audio.device))
        projected = rearrange(self.audio_projection(audio), "b f m d -> (b f) m d")
        context, context_mask = self._text(text, text_mask, audio.shape[0])
        audio_kv = text_kv = None
        if keys_values:
            audio_kv = tuple(block.attn_audio.key_value(projected) for block in self.transformer_blocks)
            if context is not None:
                text_kv = tuple(block.attn2.key_value(context) for block in self.transformer_blocks)
        return ClipContext(rope, projected, context, context_mask, audio_kv, text_kv)

    def forward(self, z: torch.Tensor, t: torch.Tensor, audio: torch.Tensor | None = None, frame_offset: int = 0,
                text: torch.Tensor | None = None, text_mask: torch.Tensor | None = None,
                context: ClipContext | None = None) -> torch.Tensor:
        """Predict the velocity of every latent frame.

        Args:
            z: (B, C, f, h, w) noisy latents, latent frame 0 the reference z_R.
            t: (B, f) flow time per latent frame, or (B, f, h, w) per token.
            audio: (B, f - 1, hw, da) audio latents C of latent frames 1..f-1.
            frame_offset: global index of this clip's first frame after the reference (RoPE positions).
            text: (B, Lt, Dt) text embeddings (``text="embeddings"`` only).
            text_mask: (B, Lt) 1 for real text tokens, 0 for padding.
            context: :meth:`prepare` of this clip, instead of ``audio``, ``frame_offset`` and the text.

        Returns:
            v: (B, C, f, h, w).
        """
        batch, _, frames, height, width = z.shape
        if context is None:
            if audio is None or audio.shape[1] != frames - 1:
                got = "no audio" if audio is None else f"audio of {audio.shape[1]} latent frames"
                raise ValueError(f"{got}; z has {frames} latent frames (reference + {frames - 1})")
            context = self.prepare(audio, height, width, frame_offset, text, text_mask, keys_values=False)
        elif context.rope[0].shape[0] != frames * height * width or context.audio.shape[0] != batch * (frames - 1):
            raise ValueError(f"the clip context was prepared for other latents than z {tuple(z.shape)}")
        x = self.proj_in(rearrange(z, "b c f h w -> b f (h w) c"))
        temb, embedded = self._timesteps(t)
        layers = len(self.transformer_blocks)
        audio_kv, text_kv = context.audio_kv or (None,) * layers, context.text_kv or (None,) * layers
        for block, block_audio_kv, block_text_kv in zip(self.transformer_blocks, audio_kv, text_kv, strict=True):
            args = (x, temb, context.rope, context.audio, context.text, context.text_mask, block_audio_kv,
                    block_text_kv)
            if self.gradient_checkpointing and torch.is_grad_enabled():
                x = checkpoint(block, *args, use_reentrant=False)
            else:
                x = block(*args)
        shift, scale = (self.scale_shift_table + rearrange(embedded, "b f n d -> b f n 1 d")).unbind(dim=3)
        v = self.proj_out(self.norm_out(x) * (1 + scale) + shift)
        return rearrange(v, "b f (h w) c -> b c f h w", h=height)

    def _timesteps(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """AdaLN modulation (B, f, 1, 6D) and embedding (B, f, 1, D) of per-frame times (B, f), embedded once per
        frame and broadcast over its tokens; per-token times (B, f, h, w) give (B, f, h·w, ·)."""
        per_frame = t.ndim == 2
        flat = rearrange(t, "b f -> (b f)") if per_frame else rearrange(t, "b f h w -> (b f h w)")
        temb, embedded = self.time_embed(flat * self.timestep_scale)
        pattern = "(b f n) d -> b f n d"
        sizes = dict(b=t.shape[0], f=t.shape[1]) if not per_frame else dict(b=t.shape[0], n=1)
        return rearrange(temb, pattern, **sizes), rearrange(embedded, pattern, **sizes)

    def _text(self, text: torch.Tensor | None, text_mask: torch.Tensor | None,
              batch: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Projected text context (B, Lt, D) and mask, per the text mode."""
        if self.text == "off":
            return None, None
        if self.text == "null":
            return repeat(self.caption_projection(self.null_text), "s d -> b s d", b=batch), None
        if text is None:
            raise ValueError("model.net.text=embeddings needs text embeddings (B, Lt, Dt) in every forward")
        return self.caption_projection(text), text_mask


def forward_flops(net: A2VDiT, frames: int, height: int, width: int, audio_tokens: int,
                  batch: int = 1) -> int:
    """FLOPs of one forward (multiply-add = 2) on the meta device: no memory, no weights needed."""
    from torch.utils.flop_counter import FlopCounterMode

    channels, audio_dim = net.config["in_channels"], net.config["audio_dim"]
    z = torch.zeros(batch, channels, frames, height, width, device="meta")
    t = torch.zeros(batch, frames, device="meta")
    audio = torch.zeros(batch, frames - 1, audio_tokens, audio_dim, device="meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(z, t, audio)
    return counter.get_total_flops()


def main() -> None:
    """Print a size's parameter count and forward FLOPs at 512², 121 frames + reference (17 latent frames)."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from readlit.resolvers import PROJECT_ROOT

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--size", default="ltx2b", help="a conf/model/net/*.yaml name")
    parser.add_argument("--pixels", type=int, default=512)
    parser.add_argument("--frames", type=int, default=121, help="pixel frames of the clip (1 + 8k)")
    parser.add_argument("--spatial-ratio", type=int, default=32)
    parser.add_argument("--audio-tokens", type=int, default=16, help="hw, audio latent tokens per frame")
    args = parser.parse_args()
    cfg = OmegaConf.load(PROJECT_ROOT / "conf" / "model" / "net" / f"{args.size}.yaml")
    for key in ("in_channels", "audio_dim"):  # sizes the stage fills in from the VAE and the SpeechAE
        cfg[key] = cfg.get(key) or 128
    cfg.pop("_partial_", None)
    with torch.device("meta"):
        net = instantiate(cfg)
    latent = args.pixels // args.spatial_ratio
    frames = 1 + latent_frames(args.frames)  # the reference frame, then the clip's latent frames
    flops = forward_flops(net, frames, latent, latent, args.audio_tokens)
    params = sum(p.numel() for p in net.parameters())
    audio = sum(p.numel() for name, p in net.named_parameters() if "audio" in name)
    print(f"{args.size}: {params / 1e6:,.1f} M parameters ({audio / 1e6:,.1f} M in the audio branch); "
          f"one forward at {args.pixels}², {args.frames} frames + reference = {frames} latent frames x "
          f"{latent}x{latent} = {frames * latent * latent} tokens: {flops / 1e12:.2f} TFLOPs")


if __name__ == "__main__":
    main()
