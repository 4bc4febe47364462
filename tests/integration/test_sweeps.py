"""Hydra multirun from the command line: a grid sweep and a 2-trial Optuna search (slow tier)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["data.identities={train:2,val:1,test:1}", "data.sessions_per_identity=1", "data.session_seconds=3",
         "trainer.max_epochs=2", "logger=csv"]


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
