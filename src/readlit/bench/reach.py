"""``python -m readlit.bench reach``: how far a VAE decoder carries a change in one latent frame.

:func:`readlit.vae.temporal_reach` is the measurement ``vae.tile_context`` is chosen from:
``python -m readlit.bench reach -- vae=local vae.pretrained=DIR`` (any ``conf/vae`` config and overrides; a random
architecture shows the shape of its reach, trained weights the real one).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from hydra.utils import instantiate

from readlit.resolvers import PROJECT_ROOT
from readlit.utils.compose import compose_app


def bench_reach(overrides: list[str], latent_frames: int = 25, size: int = 64) -> list[float]:
    """The reach of the decoder of ``vae=...`` (default: the shipped demo VAE), on the latents of a held-out
    synthetic clip of ``latent_frames`` latent frames (latents of real video, where a decoder's reach is its own)."""
    from readlit.data.base import to_video
    from readlit.data.synthetic import make_identity, make_session, render_frames
    from readlit.frames import pixel_frames
    from readlit.vae import temporal_reach

    shipped = ["vae=local", f"vae.pretrained={PROJECT_ROOT / 'assets' / 'demo_vae_decoder' / 'vae'}"]
    vae = instantiate(compose_app("train", overrides or shipped, Path(tempfile.mkdtemp())).vae)
    frames = pixel_frames(latent_frames, vae.temporal_ratio)
    face = make_identity(0, 38)
    video = to_video(render_frames(face, make_session(0, face, 1, frames), 0, frames, size))[None]
    with torch.no_grad():
        return temporal_reach(vae, vae.encode(video), frame=latent_frames // 2)
