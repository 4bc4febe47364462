"""The demo VAE shipped in assets/ loads through vae=local and still gives the numbers its folder records."""

import json

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from readlit.eval.vae_roundtrip import run_roundtrip
from readlit.resolvers import PROJECT_ROOT

SHIPPED = PROJECT_ROOT / "assets" / "demo_vae"


def test_shipped_demo_vae_loads_through_the_local_config():
    cfg = OmegaConf.load(PROJECT_ROOT / "conf" / "vae" / "local.yaml")
    cfg.pretrained = str(SHIPPED / "vae")
    vae = instantiate(cfg)
    assert vae.frozen and (vae.spatial_ratio, vae.temporal_ratio, vae.latent_channels) == (8, 8, 32)


@pytest.mark.slow
def test_shipped_demo_vae_reproduces_its_recorded_round_trip(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for name in (".hydra", "vae"):
        (run / name).symlink_to(SHIPPED / name)
    result = run_roundtrip(run, progress=False)
    recorded = json.loads((SHIPPED / "roundtrip.json").read_text())
    assert result["clips"] == recorded["clips"] == 40
    for key in ("psnr", "mouth_corr", "mouth_corr_input"):
        assert result[key] == pytest.approx(recorded[key], abs=1e-3)
