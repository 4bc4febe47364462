"""Finding the newest a2v checkpoint trained on a dataset among the run folders under logs/ (make eval without CKPT)."""

import os

import pytest
import yaml

from readlit.errors import CheckpointError
from readlit.runs import a2v_checkpoints, latest_a2v_checkpoint, run_checkpoint, run_choices


def make_run(folder, choices, checkpoints=("last.ckpt",), mtime=1_000_000):
    """A run folder as a Hydra job of readlit.train leaves it: .hydra/hydra.yaml and checkpoints/."""
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"runtime": {"choices": choices}}}))
    (folder / "checkpoints").mkdir()
    for offset, name in enumerate(checkpoints):
        path = folder / "checkpoints" / name
        path.write_bytes(b"ckpt")
        os.utime(path, (mtime + offset, mtime + offset))
    return folder


A2V_SYNTHETIC = {"model": "a2v", "data": "synthetic", "experiment": "demo_a2v"}


def test_the_newest_a2v_run_on_the_dataset_wins(tmp_path):
    logs = tmp_path / "logs"
    old = make_run(logs / "demo_a2v" / "runs" / "2025-01-01_00-00-00", A2V_SYNTHETIC, mtime=1_000)
    demo = make_run(logs / "demo" / "a2v", A2V_SYNTHETIC, mtime=2_000)
    make_run(logs / "a2v_mead" / "runs" / "t", {"model": "a2v", "data": "mead"}, mtime=9_000)  # other dataset
    make_run(logs / "demo_speechae" / "runs" / "t", {"model": "speechae", "data": "synthetic"}, mtime=9_000)
    make_run(logs / "eval" / "runs" / "t", {"data": "synthetic"}, checkpoints=(), mtime=9_000)  # an eval run
    assert a2v_checkpoints(logs, "synthetic") == [demo / "checkpoints" / "last.ckpt", old / "checkpoints" / "last.ckpt"]
    assert latest_a2v_checkpoint(logs, "synthetic", "make demo") == demo / "checkpoints" / "last.ckpt"
    sweep_job = make_run(logs / "demo_a2v" / "multiruns" / "t" / "1", A2V_SYNTHETIC, mtime=3_000)
    assert latest_a2v_checkpoint(logs, "synthetic", "make demo") == sweep_job / "checkpoints" / "last.ckpt"
    assert latest_a2v_checkpoint(logs, "mead", None).parts[-5] == "a2v_mead"


def test_a_run_is_represented_by_last_ckpt_else_its_newest_checkpoint(tmp_path):
    with_last = make_run(tmp_path / "a", A2V_SYNTHETIC, checkpoints=("last.ckpt", "best-epoch009.ckpt"))
    assert run_checkpoint(with_last) == with_last / "checkpoints" / "last.ckpt"  # even when a best one is newer
    without = make_run(tmp_path / "b", A2V_SYNTHETIC, checkpoints=("best-epoch001.ckpt", "best-epoch004.ckpt"))
    assert run_checkpoint(without) == without / "checkpoints" / "best-epoch004.ckpt"
    assert run_checkpoint(make_run(tmp_path / "c", A2V_SYNTHETIC, checkpoints=())) is None


def test_runs_without_a_checkpoint_or_a_readable_record_are_skipped(tmp_path):
    make_run(tmp_path / "crashed", A2V_SYNTHETIC, checkpoints=())
    broken = tmp_path / "broken"
    (broken / ".hydra").mkdir(parents=True)
    (broken / ".hydra" / "hydra.yaml").write_text("hydra: [unclosed")
    (broken / "checkpoints").mkdir()
    (broken / "checkpoints" / "last.ckpt").write_bytes(b"ckpt")
    assert run_choices(broken) == {} and run_choices(tmp_path / "absent") == {}
    assert a2v_checkpoints(tmp_path, "synthetic") == []


def test_none_found_names_the_command_that_trains_one(tmp_path):
    with pytest.raises(CheckpointError) as info:
        latest_a2v_checkpoint(tmp_path / "logs", "mead", "python -m readlit.train experiment=a2v_mead")
    message = str(info.value)
    assert message.startswith("ckpt=latest: no a2v checkpoint trained on data=mead under ")
    assert "`python -m readlit.train experiment=a2v_mead`" in message and "\n" not in message
    with pytest.raises(CheckpointError, match="experiment=<an a2v experiment> data=custom"):
        latest_a2v_checkpoint(tmp_path / "logs", "custom", None)
