"""The folder-scoring driver end to end on tiny synthetic mp4s, offline, with missing weights marked."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from readlit.data.synthetic import FPS, SAMPLE_RATE, make_identity, make_session, render_frames
from readlit.data.video_io import write_mp4
from readlit.eval.networks.syncnet import SyncNetV2
from readlit.evaluate import evaluate
from tests.helpers import compose_app

FRAMES = 17


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    rng = np.random.default_rng(0)
    for index in range(2):
        identity = make_identity(0, index)
        session = make_session(0, identity, 0, FRAMES)
        frames = render_frames(identity, session, 0, FRAMES, 64)
        noisy = np.clip(frames.astype(int) + rng.integers(-6, 7, frames.shape), 0, 255).astype(np.uint8)
        write_mp4(root / "reference" / f"clip{index}.mp4", frames, FPS, session.audio, SAMPLE_RATE)
        write_mp4(root / "generated" / f"clip{index}.mp4", noisy, FPS, session.audio, SAMPLE_RATE)
        (root / "reference" / f"clip{index}.json").write_text(json.dumps({"seed": 0, "identity": index}))
    return root


def _run(folders, tmp_path, weights_dir, extra=()):
    cfg = compose_app("eval", [f"generated={folders / 'generated'}", f"reference={folders / 'reference'}",
                               f"weights_dir={weights_dir}", f"out={tmp_path / 'out'}", *extra], tmp_path)
    return evaluate(cfg)


def test_scores_folders_and_marks_missing_metrics(folders, tmp_path):
    results = _run(folders, tmp_path, tmp_path / "no_weights")
    metrics, missing = results["metrics"], results["missing"]
    assert results["videos"] == 2
    assert set(missing) >= {"fid", "fvd", "sync_c", "sync_d", "e_fid", "lpips"}
    assert "weights-inception-2015-12-05-6726825d.pth" in missing["fid"]
    assert "i3d_torchscript.pt" in missing["fvd"] and "i3d_pretrained_400.pt" in missing["fvd"]
    assert 25 < metrics["psnr"] < 60 and 0.5 < metrics["ssim"] <= 1
    assert metrics["mouth_sync"] > 0.5  # the synthetic mouth follows loudness; noise does not break that
    table = (tmp_path / "out" / "results.md").read_text()
    assert "| FID ↓ | FVD ↓ | Sync-C ↑ | Sync-D ↓ | E-FID ↓ | Runtime (s) ↓" in table
    assert "| missing | missing | missing | missing | missing | — |" in table
    assert json.loads((tmp_path / "out" / "results.json").read_text())["metrics"]["psnr"] == metrics["psnr"]


def test_metric_with_present_weights_is_computed(folders, tmp_path):
    weights = tmp_path / "weights"
    weights.mkdir()
    torch.manual_seed(0)
    torch.save(SyncNetV2().state_dict(), weights / "syncnet_v2.model")  # a test stand-in for the real file
    results = _run(folders, tmp_path, weights, ["metrics=[sync,psnr]"])
    assert results["missing"] == {}
    assert results["metrics"]["sync_d"] > 0 and results["metrics"]["sync_c"] >= 0


def test_tracked_sync_without_the_detector_is_missing(folders, tmp_path):
    weights = tmp_path / "weights"
    weights.mkdir()
    torch.save(SyncNetV2().state_dict(), weights / "syncnet_v2.model")
    results = _run(folders, tmp_path, weights, ["metrics=[sync]", "sync.mode=tracked"])
    assert "sfd_face.pth" in results["missing"]["sync_c"] and "weights.s3fd" in results["missing"]["sync_d"]
    assert "sync_c" not in results["metrics"]


def test_cli_reports_a_missing_folder_on_one_line(tmp_path):
    cmd = [sys.executable, "-m", "readlit.evaluate", f"generated={tmp_path / 'nope'}", f"reference={tmp_path}",
           f"hydra.run.dir={tmp_path / 'run'}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "does not exist" in proc.stderr
