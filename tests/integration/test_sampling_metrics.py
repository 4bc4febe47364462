"""The sampling-metrics callback: ANS samples of fixed validation clips scored every N validations, logged as
val/<metric>, with a side-by-side video; sharded over 2 DDP processes it logs what one process does (slow tier)."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from readlit.callbacks.sampling_metrics import SamplingMetrics, spread_indices
from readlit.data.synthetic import make_identity
from readlit.data.video_io import read_mp4
from readlit.errors import ConfigError
from readlit.eval.metrics.mouth_sync import MouthSync
from readlit.pipeline import TalkingHeadPipeline, to_uint8_frames
from readlit.sampling.ans_sampler import ANSSampler
from readlit.sampling.cfg import Guidance
from readlit.train import train
from tests.integration.test_a2v_stage import DEMO_SPEECHAE, FAST, write_speechae_ckpt

ROOT = Path(__file__).resolve().parents[2]
SCORED = ["callbacks=a2v", "~callbacks.sample_video", "callbacks.sampling_metrics.clips=2", "sampler.steps=2",
          "+trainer.limit_train_batches=1", "+trainer.limit_val_batches=1", "test=false"]


@pytest.fixture(scope="module")
def speechae_ckpt(tmp_path_factory):
    return write_speechae_ckpt(tmp_path_factory.mktemp("speechae"), **DEMO_SPEECHAE)


def test_spread_indices():
    assert spread_indices(4, 10) == [0, 3, 6, 9]
    assert spread_indices(2, 7) == [0, 6] and spread_indices(1, 7) == [0]
    assert spread_indices(5, 3) == [0, 1, 2]  # fewer items than asked: all of them
    with pytest.raises(ConfigError, match="validation split is empty"):
        spread_indices(4, 0)


def test_refuses_a_non_positive_rhythm():
    with pytest.raises(ConfigError, match="every_n_validations=0"):
        SamplingMetrics("out", ANSSampler(), {}, every_n_validations=0)


def logged(run: Path, key: str) -> dict[int, float]:
    """``key``'s values in the CSV log, by epoch."""
    with open(run / "csv" / "metrics.csv") as f:
        return {int(row["epoch"]): float(row[key]) for row in csv.DictReader(f) if row.get(key)}


def test_scores_every_nth_validation_with_the_ema_weights_and_writes_the_video(train_cfg, speechae_ckpt, tmp_path):
    cfg = train_cfg("experiment=demo_a2v", *FAST, f"model.speechae_ckpt={speechae_ckpt}", *SCORED,
                    "callbacks.sampling_metrics.every_n_validations=2", "trainer.max_epochs=4")
    metrics, objects = train(cfg)
    run, folder = tmp_path / "run", tmp_path / "run" / "sampling_metrics"
    # validations after epochs 0..3: the 2nd and 4th are scored (the sanity check does not count)
    assert set(logged(run, "val/loss")) == {0, 1, 2, 3}
    assert set(logged(run, "val/mouth_sync")) == set(logged(run, "val/psnr")) == {1, 3}
    assert sorted(p.name for p in folder.iterdir()) == ["epoch001.json", "epoch001.mp4", "epoch003.json",
                                                       "epoch003.mp4"]
    record = json.loads((folder / "epoch003.json").read_text())
    assert record["validation"] == 4 and record["epoch"] == 3
    assert set(record["missing"]) == {"fid", "fvd", "sync", "e_fid"}  # no weights here: listed, never random
    assert "weights-inception-2015-12-05-6726825d.pth" in record["missing"]["fid"]
    assert "epoch_20.pth" in record["missing"]["e_fid"]
    assert metrics["val/mouth_sync"] == pytest.approx(record["metrics"]["mouth_sync"], rel=1e-6)
    assert logged(run, "val/mouth_sync")[3] == pytest.approx(record["metrics"]["mouth_sync"], rel=1e-6)

    # The same clips again, from the last checkpoint's EMA weights through the pipeline a user loads
    val = objects["datamodule"].datasets["val"]
    assert record["clips"] == [0, len(val) - 1]
    pipeline = TalkingHeadPipeline.from_checkpoint(run / "checkpoints" / "last.ckpt")
    sampler = ANSSampler(steps=2, guidance=Guidance("split"))
    mouth, videos = MouthSync(), []
    for seed, index in enumerate(record["clips"]):
        item = val[index]
        z_ref = pipeline.vae.encode_image(item["ref"][None])
        video = to_uint8_frames(pipeline.render_clip(z_ref, item["audio_windows"][None], sampler,
                                                     torch.Generator().manual_seed(seed)))
        mouth.update(video, item["audio"].numpy(), make_identity(item["data_seed"], item["identity"]))
        videos.append((video, to_uint8_frames(item["video"])))
    assert record["metrics"]["mouth_sync"] == pytest.approx(float(mouth.compute()["mouth_sync"]), rel=1e-9)
    # the video: the first clip, generated | real, with its audio
    frames, fps, audio, _ = read_mp4(folder / "epoch003.mp4")
    generated, real = videos[0]
    assert frames.shape == (9, 64, 128, 3) and fps == 25 and audio is not None
    def error(a, b):
        return np.abs(a.astype(int) - b.astype(int)).mean()

    left, right = frames[:, :, :64], frames[:, :, 64:]  # H.264 blurs the untrained model's noisy sample a lot
    assert error(right, real) < 8 and error(left, generated) < error(left, real) / 2


@pytest.mark.slow
def test_two_ddp_processes_log_what_one_process_does(speechae_ckpt, tmp_path):
    """3 clips over 2 ranks (0 and 2 on rank 0, 1 on rank 1). lr=0 keeps the weights at their seeded start in both
    runs, so the same clips are generated and only the sharding and the reduction of the states differ."""
    records = {}
    for trainer in ("cpu", "ddp_cpu"):
        args = ["experiment=demo_a2v", *FAST, f"model.speechae_ckpt={speechae_ckpt}", *SCORED,
                "callbacks.sampling_metrics.clips=3", "model.optimizer.lr=0", "trainer.max_epochs=1",
                f"trainer={trainer}", f"paths.root_dir={tmp_path}", f"hydra.run.dir={tmp_path / trainer}"]
        result = subprocess.run([sys.executable, "-m", "readlit.train", *args], cwd=ROOT, capture_output=True,
                                text=True, timeout=900, env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert result.returncode == 0, result.stderr[-3000:]
        records[trainer] = json.loads((tmp_path / trainer / "sampling_metrics" / "epoch000.json").read_text())
        metrics = json.loads((tmp_path / trainer / "metrics.json").read_text())
        assert metrics["val/mouth_sync"] == pytest.approx(records[trainer]["metrics"]["mouth_sync"], rel=1e-6)
    one, two = records["cpu"], records["ddp_cpu"]
    assert one["clips"] == two["clips"] and len(one["clips"]) == 3
    assert set(one["metrics"]) == set(two["metrics"]) >= {"mouth_sync", "mouth_offset", "psnr"}
    for key, value in one["metrics"].items():
        assert two["metrics"][key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    assert (tmp_path / "ddp_cpu" / "sampling_metrics" / "epoch000.mp4").stat().st_size > 0
