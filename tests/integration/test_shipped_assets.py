"""The demo VAEs shipped in assets/ load through vae=local and still give the numbers their folders record.

assets/demo_vae is phase 1 of the demo VAE (experiment=demo_vae); assets/demo_vae_mouth is that VAE fine-tuned
with the mouth term; assets/demo_vae_long and demo_vae_long2 are it fine-tuned on longer windows; and
assets/demo_vae_decoder, which make demo uses, is the last with its decoder fine-tuned alone (see each folder's
PROVENANCE.md).
"""

import json

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from readlit.eval.synthetic.vae_roundtrip import run_roundtrip
from readlit.resolvers import PROJECT_ROOT

ASSETS = [PROJECT_ROOT / "assets" / name for name in ("demo_vae", "demo_vae_mouth", "demo_vae_long",
                                                          "demo_vae_long2", "demo_vae_decoder")]


@pytest.mark.parametrize("shipped", ASSETS, ids=lambda path: path.name)
def test_shipped_demo_vae_loads_through_the_local_config(shipped):
    cfg = OmegaConf.load(PROJECT_ROOT / "conf" / "vae" / "local.yaml")
    cfg.pretrained = str(shipped / "vae")
    vae = instantiate(cfg)
    assert vae.frozen and (vae.spatial_ratio, vae.temporal_ratio, vae.latent_channels) == (8, 8, 32)


@pytest.mark.slow
@pytest.mark.parametrize("shipped", ASSETS, ids=lambda path: path.name)
def test_shipped_demo_vae_reproduces_its_recorded_round_trip(tmp_path, shipped):
    run = tmp_path / "run"
    run.mkdir()
    for name in (".hydra", "vae"):
        (run / name).symlink_to(shipped / name)
    result = run_roundtrip(run, progress=False)
    recorded = json.loads((shipped / "roundtrip.json").read_text())
    assert result["clips"] == recorded["clips"]
    for key in ("psnr", "mouth_corr", "mouth_corr_input", "psnr_session", "mouth_corr_session"):
        assert result[key] == pytest.approx(recorded[key], abs=1e-3)
