"""The runners of the paper's Table 2 and Fig. 3 (experiments/): settings, tables and verdicts, with an oracle model."""

import numpy as np
import pytest
import yaml

from readlit.eval.synthetic import heldout
from tests.helpers import load_experiment
from tests.unit.test_heldout import FRAMES, OraclePipeline

fig3 = load_experiment("fig3_steps_cfg")
table2 = load_experiment("table2_ablation")


class GuidedOracle(OraclePipeline):
    """The oracle, recording the guidance of every generation."""

    def generate(self, image, waveform, sampler, generator, method="ans"):
        self.guidance = getattr(self, "guidance", []) + [(sampler.guidance.mode, sampler.steps)]
        return super().generate(image, waveform, sampler, generator, method)


def test_fig3_runs_every_step_count_under_both_cfgs_after_an_untimed_warm_up(tmp_path):
    pipeline = GuidedOracle(heldout.cases(FRAMES, 64), step_seconds=0.001)
    results = fig3.run(pipeline, [2, 3], FRAMES, joint_scale=5.0)
    faces = len(heldout.TEST_IDENTITIES)
    expected = [("joint", 1), ("split", 1), ("joint", 2), ("split", 2), ("joint", 3), ("split", 3)]
    assert pipeline.guidance == [setting for setting in expected for _ in range(faces)]
    for mode in ("joint", "split"):
        for n in ("2", "3"):
            assert results[mode][n]["settings"]["steps"] == int(n)
            assert results[mode][n]["summary"]["lip_sync"] > 0.95  # the oracle draws the truth
    assert results["joint"]["2"]["settings"]["guidance"] == {"mode": "joint", "audio_scale": 5.0, "ref_scale": 2.0,
                                                                  "batched": True}
    assert results["split"]["2"]["settings"]["guidance"] == {"mode": "split", "audio_scale": 6.0, "ref_scale": 2.0,
                                                                  "batched": True}
    text = fig3.report(results, "x.ckpt", FRAMES, 5.0)
    assert text.count("| Joint-CFG |") == 2 and text.count("| Split-CFG |") == 2
    ratio = np.mean([fig3.split_joint_ratio(results, n) for n in ("2", "3")])
    assert f"Split/Joint backbone time: {ratio:.2f}x" in text
    fig3.plot(results, tmp_path / "fig3.png")
    assert (tmp_path / "fig3.png").stat().st_size > 10_000


def _table(full, no_pretrain, no_speechae):
    return {name: {"lip_sync": values} for name, values in
            (("full", full), ("no_pretrain", no_pretrain), ("no_speechae", no_speechae))}


@pytest.mark.parametrize(("table", "verdict"), [
    (_table([0.8, 0.7], [0.6, 0.5], [0.2, 0.1]), "reproduces"),
    (_table([0.8, 0.55], [0.6, 0.5], [0.2, 0.1]), "ranges overlap"),
    (_table([0.5, 0.4], [0.6, 0.5], [0.2, 0.1]), "does not reproduce"),
    (_table([0.8, 0.7], [0.1, 0.0], [0.2, 0.1]), "does not reproduce"),
])
def test_table2_judges_the_papers_order_against_the_seeds_spread(table, verdict):
    assert verdict in table2.order_verdict(table)


def test_table2_judges_any_order_it_is_given():
    table = {"tuned": {"lip_sync": [0.85, 0.84]}, "no_pretrain": {"lip_sync": [0.83, 0.80]}}
    assert "reproduces" in table2.order_verdict(table, table2.TUNED_ORDER)
    table["no_pretrain"]["lip_sync"] = [0.86, 0.80]
    assert "ranges overlap" in table2.order_verdict(table, table2.TUNED_ORDER)


def test_table2_reads_each_jobs_variant_and_seed_from_hydras_record(tmp_path):
    job = tmp_path / "3"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(["+ablation=no_speechae", "seed=1",
                                                                   "trainer.max_epochs=2"]))
    assert table2.job_settings(job) == ("no_speechae", 1)


def test_table2_report_sets_the_papers_rows_beside_ours(tmp_path):
    def entry(variant, seed, lip_sync):
        return {"variant": variant, "seed": seed, "summary": {"lip_sync": lip_sync, "lip_sync_shuffled": 0.0,
                                                             "mouth_r": lip_sync, "psnr": 20.0}}
    results = {f"{v}/seed{s}": entry(v, s, x) for v, s, x in [("full", 0, 0.8), ("full", 1, 0.7),
                                                            ("no_pretrain", 0, 0.6), ("no_pretrain", 1, 0.5),
                                                            ("no_speechae", 0, 0.2), ("no_speechae", 1, 0.1)]}
    text = table2.report(results, FRAMES, [0, 1], ["trainer.max_epochs=2"])
    assert "| Full SpeechAE | 0.750 [0.700, 0.800] | 0.000 [0.000, 0.000] | 0.750 [0.700, 0.800] | 20.000" in text
    assert "| 8.658 / 15.073 |" in text and "| 2.086 / 15.617 |" in text  # the paper's Sync-C / FID
    assert "reproduces" in text and "w/o ANS" not in text and "fine-tuned" not in text
    results |= {f"tuned/seed{s}": entry("tuned", s, x) for s, x in [(0, 0.55), (1, 0.45)]}
    text = table2.report(results, FRAMES, [0, 1], ["trainer.max_epochs=2"])
    assert "| Pre-trained, fine-tuned (not in the paper) | 0.500 [0.450, 0.550] |" in text
    assert "(pre-trained, fine-tuned > w/o pre-training): does not reproduce" in text
    table2.plot(results, tmp_path / "lip_sync.png")
    assert (tmp_path / "lip_sync.png").stat().st_size > 10_000
