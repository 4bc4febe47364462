"""The train entry point in-process: demo stage 1 learns, runs resume exactly, fast_dev_run works."""

import json
from pathlib import Path

import torch

from readlit.checkpoint import EMA_KEY, load_checkpoint
from readlit.train import train
from tests.helpers import TINY_SYNTHETIC


def test_demo_speechae_learns(train_cfg):
    """A short demo_speechae run: reconstruction beats predicting the mean, frames are told apart."""
    cfg = train_cfg("experiment=demo_speechae", "data.identities={train:4,val:1,test:1}", "trainer.max_steps=270")
    metrics, objects = train(cfg)
    assert metrics["test/mse"] < 0.5 * metrics["test/mse_baseline"]
    assert metrics["test/con_acc"] > 0.5  # chance is 1/33
    out = Path(cfg.paths.output_dir)
    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert list((out / "checkpoints").glob("best-*.ckpt"))
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    checkpoint = load_checkpoint(out / "checkpoints" / "last.ckpt", stage="speechae")
    assert checkpoint["readlit"]["net_config"]["latent_tokens"] == 4


def _fit(train_cfg, tmp_dir: Path, *overrides: str) -> dict[str, torch.Tensor]:
    # 20 clips in batches of 10: whole epochs of 2 steps, so every stop lands on an epoch end
    cfg = train_cfg("experiment=demo_speechae", *TINY_SYNTHETIC, "data.batch_size=10", "data.shuffle=false",
                    "test=false", "logger=csv", f"paths.output_dir={tmp_dir}", *overrides)
    _, objects = train(cfg)
    assert objects["trainer"].global_step == int(cfg.trainer.max_steps)
    return {k: v.clone() for k, v in objects["model"].state_dict().items()}


def test_resume_continues_exactly(train_cfg, tmp_path):
    """N steps, stop, resume to 2N == 2N steps in one go (same step counter, optimizer state, weights)."""
    steps = 4
    whole = _fit(train_cfg, tmp_path / "whole", f"trainer.max_steps={2 * steps}")
    _fit(train_cfg, tmp_path / "first", f"trainer.max_steps={steps}")
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    assert load_checkpoint(last)["global_step"] == steps
    resumed = _fit(train_cfg, tmp_path / "second", f"trainer.max_steps={2 * steps}", f"ckpt_path={last}")
    adam_steps = load_checkpoint(tmp_path / "second" / "checkpoints" / "last.ckpt")["optimizer_states"][0]
    assert all(state["step"] == 2 * steps for state in adam_steps["state"].values())
    for key in whole:
        torch.testing.assert_close(resumed[key], whole[key], rtol=1e-5, atol=1e-6)


def test_fast_dev_run(train_cfg):
    metrics, objects = train(train_cfg("experiment=demo_speechae", *TINY_SYNTHETIC, "debug=fdr"))
    assert objects["trainer"].global_step == 1
    assert "test/mse" in metrics


def test_ema_on_stage_one_resumes_exactly(train_cfg, tmp_path):
    """The EMA callback serves any stage: stage 1 with callbacks=ema, stopped and resumed, averages as in one go."""
    steps = 2
    _fit(train_cfg, tmp_path / "whole", f"trainer.max_steps={2 * steps}", "callbacks=ema", "callbacks.ema.decay=0.5")
    _fit(train_cfg, tmp_path / "first", f"trainer.max_steps={steps}", "callbacks=ema", "callbacks.ema.decay=0.5")
    first = tmp_path / "first" / "checkpoints" / "last.ckpt"
    _fit(train_cfg, tmp_path / "second", f"trainer.max_steps={2 * steps}", f"ckpt_path={first}", "callbacks=ema",
         "callbacks.ema.decay=0.5")
    whole, halfway, resumed = (load_checkpoint(tmp_path / run / "checkpoints" / "last.ckpt")
                               for run in ("whole", "first", "second"))
    assert set(whole[EMA_KEY]) == {k for k in whole["state_dict"] if k.startswith("net.")}
    for key, average in whole[EMA_KEY].items():
        torch.testing.assert_close(resumed[EMA_KEY][key], average, rtol=1e-5, atol=1e-6)
    changed = [key for key in whole[EMA_KEY] if not torch.equal(halfway[EMA_KEY][key], whole[EMA_KEY][key])]
    assert changed  # the resumed run kept averaging
