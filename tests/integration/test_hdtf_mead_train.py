"""Training runs on a preprocessed HDTF cache through the real train entry point."""

import math

from readlit.train import train
from tests.fake_raw import built_cache


def test_demo_speechae_runs_on_the_hdtf_cache(train_cfg, tmp_path_factory):
    built = built_cache(tmp_path_factory, "hdtf")
    cfg = train_cfg("experiment=demo_speechae", "data=hdtf", f"data.root={built.root}", "data.size=64",
                    "data.num_frames=33", "data.clip_stride=8", "data.num_workers=0", "data.batch_size=4",
                    "trainer.max_steps=3", "logger=csv")
    metrics, objects = train(cfg)
    assert objects["trainer"].global_step == 3
    assert objects["datamodule"].frontend.dim == 64
    for key in ("val/mse", "test/mse", "test/mse_baseline", "test/con_acc"):
        assert math.isfinite(metrics[key]), key
    assert 0 < metrics["test/mse"] and 0 <= metrics["test/con_acc"] <= 1
