"""The paper's evaluation protocols (eval/protocol/) compose through the evaluation CLI with the paper's settings.

Section 4.1: test split, 512² at 121 frames, 8 sampling steps, Split-CFG alpha = 2 (reference), beta = 6 (audio);
Table 1 scores FID, FVD, Sync-C/D, E-FID and runtime; Tables 2 and 3 FID and Sync-C/D, Table 3 at three lengths.
"""

import subprocess
import sys

import pytest
from hydra.utils import instantiate

from readlit.cli import check_composes
from readlit.eval.scoring import METRICS
from readlit.paper_results import paper_table
from readlit.resolvers import PROJECT_ROOT
from readlit.utils.compose import compose_app

# protocol -> (dataset, lengths, metrics, the paper's table and the result keys its columns hold)
PROTOCOLS = {
    "table1_hdtf": ("hdtf", [121], ["fid", "fvd", "sync", "e_fid"], (1, "hdtf")),
    "table1_mead": ("mead", [121], ["fid", "fvd", "sync", "e_fid"], (1, "mead")),
    "table2_ablation": ("hdtf", [121], ["fid", "sync"], (2, None)),
    "table3_long_video": ("hdtf", [121, 457, 1017], ["fid", "sync"], (3, None)),
}
# readlit.evaluate's metric -> the result keys it writes; runtime comes with every generated split.
RESULT_KEYS = {"fid": ["fid"], "fvd": ["fvd"], "sync": ["sync_c", "sync_d"], "e_fid": ["e_fid"]}


def test_every_preset_is_listed_here():
    assert sorted(path.stem for path in (PROJECT_ROOT / "eval" / "protocol").glob("*.yaml")) == sorted(PROTOCOLS)


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_protocol_composes_with_the_papers_settings(tmp_path, protocol):
    dataset, lengths, metrics, _ = PROTOCOLS[protocol]
    argv = [f"protocol={protocol}", "ckpt=a2v.ckpt"]
    check_composes("eval", argv)  # the CLI's own up-front composition: no exit
    cfg = compose_app("eval", argv, tmp_path)
    assert cfg.data.name == dataset and cfg.hydra.runtime.choices.data == dataset
    assert (cfg.data.size, cfg.data.num_frames, cfg.data.return_video) == (512, 121, True)
    assert cfg.data.splits.test == "test"
    assert list(cfg.frames) == lengths and all(length % 8 == 1 for length in lengths)
    assert cfg.long_video == "ans" and cfg.task_name == f"eval_{protocol}"
    assert list(cfg.metrics) == metrics and set(metrics) <= set(METRICS)
    assert cfg.paper_table == PROTOCOLS[protocol][3][0]  # results.md sets ours beside the protocol's table
    assert (cfg.fvd.protocol, cfg.sync.mode) == ("styleganv", "precropped")
    sampler = instantiate(cfg.sampler, clip_frames=cfg.sampler.clip_frames or 4)
    assert sampler.steps == 8 and sampler.guidance.mode == "split"
    assert sampler.guidance.weights == (1 - 2.0 - 6.0, 2.0, 6.0)  # eq. 17: 1 - alpha - beta, alpha, beta
    assert cfg.sampler.clip_frames is None  # the checkpoint's training length, as the paper's window


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_protocol_scores_every_column_of_its_table(tmp_path, protocol):
    _, lengths, metrics, (number, dataset) = PROTOCOLS[protocol]
    table = paper_table(number)
    scored = {key for metric in metrics for key in RESULT_KEYS[metric]} | {"runtime"}
    assert set(table["columns"]) - {"duration"} <= scored
    if number == 3:
        assert lengths == list(table["rows"])
    if dataset is not None:
        assert dataset in table["rows"]


def test_the_cli_finds_the_presets_from_any_folder(tmp_path):
    result = subprocess.run([sys.executable, "-m", "readlit.evaluate", "protocol=table1_mead", "ckpt=a2v.ckpt",
                             "--cfg", "job"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "task_name: eval_table1_mead" in result.stdout
    assert "_target_: readlit.data.mead.MEADDataModule" in result.stdout


def test_an_unknown_protocol_exits_2_naming_the_presets(capsys):
    with pytest.raises(SystemExit) as info:
        check_composes("eval", ["protocol=table9", "ckpt=a2v.ckpt"])
    assert info.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and all(name in error for name in PROTOCOLS)
