"""What the benchmarks run: an A2V-DiT of any configured size with random weights, and one clip's inputs.

Sizes are ``conf/model/net/<size>.yaml`` (tiny, s, b, ltx2b); the latent and audio widths the stage fills in from
the VAE and the SpeechAE are LTX's 128 and the SpeechAE's 128 unless given. Weights are drawn, never downloaded:
speed does not depend on their values.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from omegaconf import OmegaConf

from readlit.errors import ConfigError
from readlit.flow.schedule import TimeShift
from readlit.nn.a2v_dit import A2VDiT, forward_flops
from readlit.resolvers import PROJECT_ROOT
from readlit.sampling.ans_sampler import ANSSampler
from readlit.sampling.cfg import Guidance


@dataclass(frozen=True)
class Geometry:
    """One clip as the DiT sees it: f latent frames after the reference, h = w latent size, hw audio tokens.

    Paper scale: 121 frames at 512² through LTX's VAE (32x spatial, 8x temporal): f = 16, h = w = 16, hw = 16.
    """

    clip_frames: int = 16
    latent_size: int = 16
    audio_tokens: int = 16
    channels: int = 128
    audio_dim: int = 128

    @property
    def tokens(self) -> int:
        """L = (1 + f)·h·w of one sequence."""
        return (1 + self.clip_frames) * self.latent_size**2

    def describe(self) -> str:
        return (f"f={self.clip_frames} latent frames + reference at {self.latent_size}x{self.latent_size} "
                f"(L={self.tokens} tokens), hw={self.audio_tokens} audio tokens of {self.audio_dim}")


def net_config(size: str, geometry: Geometry, gradient_checkpointing: bool | None = None) -> dict:
    """The A2V-DiT arguments of ``conf/model/net/<size>.yaml`` with the geometry's widths filled in."""
    path = PROJECT_ROOT / "conf" / "model" / "net" / f"{size}.yaml"
    if not path.is_file():
        sizes = sorted(p.stem for p in path.parent.glob("*.yaml") if not p.stem.endswith("_pretrained"))
        raise ConfigError(f"--size {size}: no conf/model/net/{size}.yaml; one of {sizes}")
    cfg = OmegaConf.to_container(OmegaConf.load(path))
    for key in ("_target_", "_partial_"):
        cfg.pop(key, None)
    cfg.update(in_channels=geometry.channels, audio_dim=geometry.audio_dim)
    if gradient_checkpointing is not None:
        cfg["gradient_checkpointing"] = gradient_checkpointing
    return cfg


def build_net(size: str, geometry: Geometry, device: torch.device, seed: int = 0,
              gradient_checkpointing: bool | None = None) -> A2VDiT:
    """A randomly initialised A2V-DiT on ``device`` in eval mode, with a live audio branch.

    The audio branch's output projections start at zero (a fresh branch adds nothing); they are drawn here, so the
    audio cross-attention's work is not skipped by any shortcut and its numbers matter in the lever checks.
    """
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        with torch.device(device):
            net = A2VDiT(**net_config(size, geometry, gradient_checkpointing))
            for block in net.transformer_blocks:
                torch.nn.init.normal_(block.attn_audio.to_out[0].weight, std=0.02)
    return net.eval()


def flops_per_forward(size: str, geometry: Geometry, batch: int) -> int:
    """FLOPs of one forward of ``batch`` sequences, counted on the meta device (exact, no memory)."""
    with torch.device("meta"):
        net = A2VDiT(**net_config(size, geometry))
    return forward_flops(net, 1 + geometry.clip_frames, geometry.latent_size, geometry.latent_size,
                         geometry.audio_tokens, batch=batch)


def parameter_count(size: str, geometry: Geometry) -> int:
    with torch.device("meta"):
        net = A2VDiT(**net_config(size, geometry))
    return sum(p.numel() for p in net.parameters())


@dataclass
class Clip:
    """Random inputs of one clip: reference (1, C, 1, h, w), audio (1, N, hw, da), noise (1, C, N, h, w)."""

    z_ref: torch.Tensor
    audio: torch.Tensor
    noise: torch.Tensor


def random_clip(geometry: Geometry, latent_frames: int, device: torch.device, seed: int = 0) -> Clip:
    """Inputs for ``latent_frames`` latent frames (a whole number of overlapping clips)."""
    g = torch.Generator().manual_seed(seed)
    side = geometry.latent_size
    clip = Clip(torch.randn(1, geometry.channels, 1, side, side, generator=g),
                torch.randn(1, latent_frames, geometry.audio_tokens, geometry.audio_dim, generator=g),
                torch.randn(1, geometry.channels, latent_frames, side, side, generator=g))
    return Clip(clip.z_ref.to(device), clip.audio.to(device), clip.noise.to(device))


def sampler(geometry: Geometry, steps: int, mode: str = "split", batched: bool = True,
            hoist: bool = False) -> ANSSampler:
    """The paper's sampler (Split-CFG a = 2, b = 6) at this geometry, with LTX's token-count time shift."""
    return ANSSampler(steps=steps, clip_frames=geometry.clip_frames, shift=TimeShift(), hoist=hoist,
                      guidance=Guidance(mode, audio_scale=6.0, ref_scale=2.0, batched=batched))
