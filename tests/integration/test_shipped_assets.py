"""The demo VAE shipped in assets/ loads through vae=local and still gives the numbers its folder records.

assets/ holds only what make demo loads: assets/demo_vae_decoder, the last of the demo VAE's six training phases
(its ledger: experiments/demo_vae/README.md).
"""

import csv
import json

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from readlit.eval.synthetic.vae_roundtrip import run_roundtrip
from readlit.resolvers import PROJECT_ROOT
from tests.helpers import load_experiment

SHIPPED = load_experiment("demo").SHIPPED

ASSETS = [PROJECT_ROOT / "assets" / "demo_vae_decoder"]


def test_assets_hold_only_what_make_demo_loads():
    assert sorted((PROJECT_ROOT / "assets").iterdir()) == sorted(SHIPPED.values()) == ASSETS


@pytest.mark.parametrize("shipped", ASSETS, ids=lambda path: path.name)
def test_shipped_run_holds_what_the_demo_report_reads(shipped):
    metrics = json.loads((shipped / "metrics.json").read_text())
    assert metrics["test/ssim"] == 0.8821815848350525
    recorded = json.loads((shipped / "roundtrip.json").read_text())
    assert {"mouth_corr_latent_mean", "mouth_corr_session"} <= recorded.keys()  # else make demo measures again
    with open(shipped / "csv" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert sum(bool(row["train/mse"]) for row in rows) == 100 and sum(bool(row["val/mse"]) for row in rows) == 4


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
