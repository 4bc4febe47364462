"""make eval DATASET=synthetic: a trained a2v checkpoint generates the test split, and the table is written."""

import json
import math

import pytest

from readlit.errors import ConfigError
from readlit.eval.synthetic.heldout import TEST_IDENTITIES
from readlit.evaluate import evaluate
from readlit.train import train
from tests.helpers import compose_app, compose_train, load_experiment
from tests.integration.test_a2v_stage import DEMO_SPEECHAE, FAST, write_speechae_ckpt

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


def test_eval_refuses_an_unknown_long_video_method_before_loading(tmp_path):
    cfg = compose_app("eval", ["ckpt=/nonexistent.ckpt", "long_video=async", f"out={tmp_path}"], tmp_path)
    with pytest.raises(ConfigError, match="long_video='async': expected one of"):
        evaluate(cfg)
