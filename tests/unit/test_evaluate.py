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


def _manifest(folder, clips):
    (folder / "manifest.json").write_text(json.dumps({"clips": clips}))


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
    _manifest(root / "generated", [{"name": f"clip{i}", "frames": FRAMES, "identity": i, "data_seed": 0}
                                   for i in range(2)])
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
    # beside the paper's Table 1 (paper_table=1), for reference only on synthetic data
    assert "## The paper's Table 1 for reference: HDTF and MEAD numbers, not comparable with synthetic data" in table
    assert "| READ (readlit) | missing | missing | missing | missing | missing |\n| READ (paper, HDTF) |" in table
    assert json.loads((tmp_path / "out" / "results.json").read_text())["metrics"]["psnr"] == metrics["psnr"]


def test_runtime_is_the_mean_backbone_time_of_the_manifest(folders, tmp_path):
    _manifest(tmp_path, [{"name": "clip0", "backbone_seconds": 1.0, "total_seconds": 2.0},
                         {"name": "clip1", "backbone_seconds": 3.0, "total_seconds": 5.0},
                         {"name": "not_scored", "backbone_seconds": 100.0}])
    results = _run(folders, tmp_path, tmp_path / "no_weights",
                   ["metrics=[psnr]", f"manifest={tmp_path / 'manifest.json'}"])
    assert results["metrics"]["runtime"] == 2.0
    assert "| — | 2.00 |" in (tmp_path / "out" / "results.md").read_text()  # E-FID not asked for, then Runtime


def test_mouth_sync_is_missing_without_each_clips_identity(folders, tmp_path):
    _manifest(tmp_path, [{"name": "clip0", "identity": 0, "data_seed": 0}, {"name": "clip1"}])
    results = _run(folders, tmp_path, tmp_path / "no_weights", ["metrics=[mouth_sync]",
                                                                 f"manifest={tmp_path / 'manifest.json'}"])
    assert "mouth_sync" not in results["metrics"] and results["metrics"]["runtime"] is None
    assert "1 of 2 clips have no synthetic identity" in results["missing"]["mouth_sync"]
    assert "clip1" in results["missing"]["mouth_sync"]
    results = _run(folders, tmp_path, tmp_path / "no_weights", ["metrics=[mouth_sync]",
                                                                 f"manifest={tmp_path / 'absent.json'}"])
    assert results["missing"]["mouth_sync"].startswith(f"no manifest {tmp_path / 'absent.json'}")


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
    assert proc.stderr.strip().count("\n") == 0
    assert f"generated={tmp_path / 'nope'} is not a folder of videos" in proc.stderr
