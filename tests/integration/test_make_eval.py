"""make eval DATASET=synthetic: a trained a2v checkpoint generates the test split, and the table is written."""

import json
import math
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from readlit.cli import run_task
from readlit.errors import ConfigError
from readlit.eval.synthetic import heldout
from readlit.eval.synthetic.heldout import TEST_IDENTITIES
from readlit.evaluate import evaluate
from readlit.train import train
from tests.helpers import compose_app, compose_train, load_experiment
from tests.integration.test_a2v_stage import DEMO_SPEECHAE, FAST, write_speechae_ckpt

ROOT = Path(__file__).resolve().parents[2]

SMALL = ["data.identities={train:4,val:1,test:2}", "data.session_seconds=3", "data.size=64"]


@pytest.fixture(scope="module")
def a2v_ckpt(tmp_path_factory):
    speechae = write_speechae_ckpt(tmp_path_factory.mktemp("speechae"), **DEMO_SPEECHAE)
    out = tmp_path_factory.mktemp("a2v")
    cfg = compose_train(["experiment=demo_a2v", *FAST, f"model.speechae_ckpt={speechae}", "trainer.max_epochs=1",
                         "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1", "test=false",
                         "callbacks=default"], out)
    train(cfg)
    return next((out / "run" / "checkpoints").glob("last*.ckpt"))


def test_eval_generates_the_test_split_and_writes_the_table(a2v_ckpt, tmp_path):
    cfg = compose_app("eval", [f"ckpt={a2v_ckpt}", "data=synthetic", *SMALL, "frames=[17,33]", "limit=2",
                               "sampler.steps=2", f"out={tmp_path / 'eval'}"], tmp_path)
    results = evaluate(cfg)
    assert set(results) == {17, 33}
    for frames, result in results.items():
        folder = tmp_path / "eval" / f"frames{frames}"
        assert result["videos"] == 2 and result["dataset"] == "synthetic"
        assert sorted(p.name for p in (folder / "generated").glob("*.mp4")) == \
            sorted(p.name for p in (folder / "reference").glob("*.mp4"))
        manifest = json.loads((folder / "generated" / "manifest.json").read_text())
        clips = {clip["name"]: clip for clip in manifest["clips"]}
        assert sorted(clips) == sorted(p.stem for p in (folder / "generated").glob("*.mp4"))
        # faces for mouth-sync: the test split's identities (after 4 train and 1 val), the data seed
        faces = {(c["identity"], c["data_seed"], c["frames"]) for c in clips.values()}
        assert faces <= {(5, 0, frames), (6, 0, frames)}
        metrics = result["metrics"]
        assert math.isfinite(metrics["psnr"]) and -1 <= metrics["mouth_sync"] <= 1 and metrics["runtime"] > 0
        assert {"fid", "fvd", "sync_c", "e_fid"} <= set(result["missing"])  # no weights here: missing, not random
        table = (folder / "results.md").read_text()
        assert "FID" in table and "missing" in table
        assert all(0 < c["backbone_seconds"] <= c["total_seconds"] for c in clips.values())
        assert metrics["runtime"] == pytest.approx(sum(c["backbone_seconds"] for c in clips.values()) / 2)


def test_demo_scores_held_out_faces_with_controls(a2v_ckpt, tmp_path):
    demo = load_experiment("demo")
    (tmp_path / "a2v" / "checkpoints").mkdir(parents=True)
    (tmp_path / "a2v" / "checkpoints" / "last.ckpt").symlink_to(a2v_ckpt)
    sample = demo.generate_held_out(tmp_path, seconds=1.0)
    assert [row["identity"] for row in sample["rows"]] == list(TEST_IDENTITIES)
    assert sample["frames"] == 25 and sample["clips"] == 3  # 9-frame clips: 2 latents, stride 1
    for key, value in sample["means"].items():
        assert math.isfinite(value) and (-1 <= value <= 1 if key.startswith("sync") else value > 0), key
    assert sample["means"]["sync_truth"] > 0.9  # the measure on ground truth, whatever the model
    for name in ("generated.mp4", "generated_wo_ans.mp4", "mouth_sync.png"):
        assert (tmp_path / name).stat().st_size > 0
    section = "\n".join(demo.a2v_section({"test/loss": 0.5}, None, tmp_path / "curves.png", sample, 0.08))
    assert "| mean |" in section and "shuffled" in section


def test_score_run_on_a_trained_checkpoint(a2v_ckpt):
    """The lead's experiments score a run so: every held-out case, its control, seams, backbone and total time."""
    run = heldout.score_run(a2v_ckpt, 17, steps=2)
    assert run["settings"]["clip_frames"] == 2 and run["settings"]["clips"] == 2  # 17 frames: 3 latents, 2 clips
    assert [video["identity"] for video in run["videos"]] == list(TEST_IDENTITIES)
    for video in run["videos"]:
        assert -1 <= video["lip_sync"] <= 1 and -1 <= video["lip_sync_shuffled"] <= 1
        assert math.isfinite(video["psnr"]) and video["seam_jump"] > 0 and len(video["clips"]) == 2
        assert 0 < video["backbone_seconds"] < video["total_seconds"]
    # the control animates other videos: the scored ones are the same without it (noise seed per case)
    plain = heldout.score_run(a2v_ckpt, 17, steps=2, shuffled_control=False)
    assert [v["lip_sync"] for v in plain["videos"]] == [v["lip_sync"] for v in run["videos"]]
    assert [v["psnr"] for v in plain["videos"]] == [v["psnr"] for v in run["videos"]]


def test_eval_refuses_an_unknown_long_video_method_before_loading(tmp_path):
    cfg = compose_app("eval", ["ckpt=/nonexistent.ckpt", "long_video=async", f"out={tmp_path}"], tmp_path)
    with pytest.raises(ConfigError, match="long_video='async': expected one of"):
        evaluate(cfg)


def make_eval_command(*assignments: str) -> list[str]:
    """The arguments ``make eval`` passes to ``python -m readlit.evaluate`` (its recipe, as ``make -n`` prints it)."""
    printed = subprocess.run(["make", "-n", "eval", *assignments], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout
    line = next(line for line in printed.splitlines() if "-m readlit.evaluate" in line)
    return shlex.split(line.split("-m readlit.evaluate", 1)[1])


def test_make_eval_without_ckpt_asks_for_the_latest_checkpoint():
    assert make_eval_command("DATASET=mead") == ["ckpt=latest", "data=mead"]
    assert make_eval_command() == ["ckpt=latest", "data=synthetic"]
    assert make_eval_command("DATASET=hdtf", "CKPT=a2v.ckpt") == ["ckpt=a2v.ckpt", "data=hdtf"]


@pytest.fixture(scope="module")
def trained_root(tmp_path_factory):
    """A project root whose logs/ holds one tiny a2v run on synthetic data, trained through the CLI."""
    root = tmp_path_factory.mktemp("root")
    speechae = write_speechae_ckpt(tmp_path_factory.mktemp("speechae"), **DEMO_SPEECHAE)
    args = ["experiment=demo_a2v", *FAST, f"model.speechae_ckpt={speechae}", "trainer.max_epochs=1",
            "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1", "test=false", "callbacks=default",
            f"paths.root_dir={root}"]
    result = subprocess.run([sys.executable, "-m", "readlit.train", *args], cwd=ROOT, capture_output=True, text=True,
                            timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    return root


def test_eval_without_ckpt_evaluates_the_newest_run_on_the_dataset(trained_root, tmp_path, capsys):
    (trained_ckpt,) = (trained_root / "logs" / "demo_a2v" / "runs").glob("*/checkpoints/last.ckpt")
    cfg = compose_app("eval", [*make_eval_command("DATASET=synthetic"), *SMALL, "limit=1", "sampler.steps=2",
                               f"out={tmp_path / 'eval'}"], trained_root)
    results = evaluate(cfg)
    picked = [line for line in capsys.readouterr().out.splitlines() if line.startswith("ckpt=latest")]
    assert picked == [f"ckpt=latest: {trained_ckpt} (the newest a2v checkpoint trained on data=synthetic)"]
    assert results[33]["videos"] == 1 and -1 <= results[33]["metrics"]["mouth_sync"] <= 1


def test_eval_without_a_trained_run_refuses_naming_the_command(trained_root, tmp_path, capsys):
    # synthetic: an empty project root; mead: beside the synthetic run, which is no MEAD run
    for dataset, root, command in (("synthetic", tmp_path, "`make demo`"),
                                   ("mead", trained_root, "`python -m readlit.train experiment=a2v_mead`")):
        cfg = compose_app("eval", make_eval_command(f"DATASET={dataset}"), root)
        with pytest.raises(SystemExit) as info:
            run_task(evaluate, cfg)  # what the CLI runs: one line on stderr, exit 2
        assert info.value.code == 2
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and error.startswith(f"error: ckpt=latest: no a2v checkpoint trained on "
                                                           f"data={dataset} under {root / 'logs'}")
        assert command in error


@pytest.mark.slow
def test_make_eval_command_line_runs_after_a_tiny_training_run(trained_root, tmp_path):
    """The CLI as `make eval DATASET=synthetic` runs it, without CKPT, in the trained project root."""
    args = [*make_eval_command("DATASET=synthetic"), *SMALL, "limit=1", "sampler.steps=2",
            f"paths.root_dir={trained_root}", f"hydra.run.dir={tmp_path / 'eval'}"]
    result = subprocess.run([sys.executable, "-m", "readlit.evaluate", *args], cwd=ROOT, capture_output=True,
                            text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    (trained_ckpt,) = (trained_root / "logs" / "demo_a2v" / "runs").glob("*/checkpoints/last.ckpt")
    assert f"ckpt=latest: {trained_ckpt} (the newest a2v checkpoint trained on data=synthetic)" in result.stdout
    assert json.loads((tmp_path / "eval" / "frames33" / "results.json").read_text())["videos"] == 1
