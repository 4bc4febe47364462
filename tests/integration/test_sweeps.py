"""Hydra multirun from the command line: grid sweeps and 2-trial Optuna searches of the speechae and a2v recipes
(slow tier); the a2v search's objective is the held-out mouth-sync the sampling-metrics callback logs."""

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from readlit.checkpoint import load_checkpoint
from tests.helpers import compose_train
from tests.integration.test_a2v_stage import DEMO_SPEECHAE, write_speechae_ckpt

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["data.identities={train:2,val:1,test:1}", "data.sessions_per_identity=1", "data.session_seconds=3",
         "trainer.max_epochs=2", "logger=csv"]
# demo_a2v at its smallest: 9-frame clips, 2 training batches an epoch, one clip scored by the sampling metrics
A2V = ["experiment=demo_a2v", "data.num_frames=9", "data.batch_size=4", "+trainer.limit_train_batches=2",
       "+trainer.limit_val_batches=1", "test=false", "~callbacks.sample_video", "callbacks.sampling_metrics.clips=1",
       "sampler.steps=2"]


def multirun(tmp_path: Path, *args: str) -> list[dict]:
    cmd = [sys.executable, "-m", "readlit.train", "-m", f"paths.root_dir={tmp_path}",
           f"hydra.sweep.dir={tmp_path}/sweep", *SMALL, *args]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(path.read_text()) for path in sorted((tmp_path / "sweep").glob("*/metrics.json"))]


@pytest.mark.slow
def test_grid_sweep_runs_every_job(tmp_path):
    jobs = multirun(tmp_path, "experiment=demo_speechae", "model.optimizer.lr=1e-4,3e-3")
    assert len(jobs) == 2
    assert jobs[0]["val/mse"] != jobs[1]["val/mse"]


@pytest.mark.slow
def test_optuna_search_optimises_the_monitored_metric(tmp_path):
    jobs = multirun(tmp_path, "hparams_search=speechae_optuna", "experiment=demo_speechae",
                    "hydra.sweeper.n_trials=2")
    assert len(jobs) == 2
    results = (tmp_path / "sweep" / "optimization_results.yaml").read_text()
    assert "best_value" in results
    best_value = float(results.split("best_value:")[1].split()[0])
    assert best_value == pytest.approx(min(job["val/mse"] for job in jobs))


def demo_speechae(root: Path) -> Path:
    """A stage-1 checkpoint where demo_a2v looks for make demo's (logs/demo/speechae)."""
    folder = root / "logs" / "demo" / "speechae" / "checkpoints"
    folder.mkdir(parents=True)
    return write_speechae_ckpt(folder, **DEMO_SPEECHAE)


def job_overrides(tmp_path: Path) -> list[list[str]]:
    return [yaml.safe_load(path.read_text()) for path in sorted((tmp_path / "sweep").glob("*/.hydra/overrides.yaml"))]


@pytest.mark.slow
def test_a2v_sweep_over_audio_encoders_and_seeds(tmp_path):
    """The ablation's variants times seeds in one multirun, as experiments/table2_ablation runs it."""
    demo_speechae(tmp_path)
    jobs = multirun(tmp_path, *A2V, "model.audio_encoder=speechae,linear", "seed=0,1")
    assert len(jobs) == 4
    variants = [(o[-2], o[-1]) for o in job_overrides(tmp_path)]
    assert variants == list(itertools.product(["model.audio_encoder=speechae", "model.audio_encoder=linear"],
                                              ["seed=0", "seed=1"]))
    for job, (variant, _) in zip(sorted((tmp_path / "sweep").glob("*/checkpoints/last.ckpt")), variants, strict=True):
        assert load_checkpoint(job, stage="a2v")["readlit"]["audio_config"]["mode"] == variant.split("=")[1]
    assert all(-1 <= job["val/mouth_sync"] <= 1 for job in jobs)
    assert len({job["val/loss"] for job in jobs}) == 4  # every variant and seed trains its own model


def test_a2v_search_targets_the_held_out_mouth_sync(tmp_path):
    cfg = compose_train(["hparams_search=a2v_optuna", "experiment=demo_a2v", "trainer.max_epochs=3"], tmp_path)
    assert cfg.optimized_metric == "val/mouth_sync" and cfg.hydra.sweeper.direction == "maximize"
    assert cfg.monitor.metric == "val/loss"  # checkpoints keep the best loss; the search compares mouth-sync
    assert cfg.callbacks.sampling_metrics.every_n_validations == 3  # scored after the last validation
    assert cfg.callbacks.sampling_metrics._target_ == "readlit.callbacks.sampling_metrics.SamplingMetrics"


@pytest.mark.slow
def test_a2v_optuna_search_maximises_the_held_out_mouth_sync(tmp_path):
    demo_speechae(tmp_path)
    jobs = multirun(tmp_path, "hparams_search=a2v_optuna", *A2V, "hydra.sweeper.n_trials=2")
    assert len(jobs) == 2
    assert jobs[0]["val/mouth_sync"] != jobs[1]["val/mouth_sync"]
    results = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    assert results["best_value"] == pytest.approx(max(job["val/mouth_sync"] for job in jobs))
