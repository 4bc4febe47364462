"""Tiled decoding of the shipped demo VAE against one window, and the decoder's temporal reach that sets it.

Measured on a held-out 193-frame clip (25 latent frames, tiles of 4): context 1 gives 45.5 dB, 2 gives 60.2 dB and 3
(the configured value) 79.2 dB; a change in one latent frame moves the pixels 5 latent frames away by 0.002. The
tolerance pinned here: 75 dB and a largest pixel difference of 0.02 (of 2) at the configured context.
"""

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from readlit.data.base import to_video
from readlit.data.synthetic import make_identity, make_session, render_frames
from readlit.resolvers import PROJECT_ROOT
from readlit.vae import temporal_reach

SHIPPED = PROJECT_ROOT / "assets" / "demo_vae_decoder" / "vae"


@pytest.fixture(scope="module")
def shipped_latents():
    cfg = OmegaConf.load(PROJECT_ROOT / "conf" / "vae" / "local.yaml")
    cfg.pretrained = str(SHIPPED)
    vae = instantiate(cfg)
    face = make_identity(0, 38)  # a held-out face of data=synthetic
    video = to_video(render_frames(face, make_session(0, face, 1, 193), 0, 193, 64))[None]
    with torch.no_grad():
        return vae, vae.encode(video)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return (10 * torch.log10(4.0 / (a - b).square().mean())).item()  # pixels in [-1, 1]


def test_configured_tiles_match_one_window_within_the_stated_tolerance(shipped_latents):
    vae, z = shipped_latents
    assert (vae.tile_frames, vae.tile_context) == (4, 3)
    with torch.no_grad():
        tiled, whole = vae.decode(z), vae.decode_raw(vae.denormalize(z))
    assert tiled.shape == whole.shape == (1, 3, 193, 64, 64)
    assert _psnr(tiled, whole) > 75.0 and (tiled - whole).abs().max() < 0.02
    vae.tile_context = 1
    try:
        with torch.no_grad():
            assert _psnr(vae.decode(z), whole) < 55.0  # too little context: the tiles show
    finally:
        vae.tile_context = 3


def test_temporal_reach_of_the_shipped_decoder(shipped_latents):
    vae, z = shipped_latents
    reach = temporal_reach(vae, z, frame=12)
    assert len(reach) == 13 and reach[0] > 0.1  # the changed latent's own frames move
    assert max(reach[5:]) < 1 / 255  # nothing past 5 latent frames moves by a grey level
    assert reach[3] > 1 / 255  # but 3 frames away it still does: a context of 3 leaves ~1/255
