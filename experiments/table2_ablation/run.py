"""The paper's Table 2 ablation on synthetic data: one Hydra multirun over the variants and seeds, then held-out scores.

    python experiments/table2_ablation/run.py --out DIR [--seeds 0 1] [--variants full ...] [--frames 121]
        [--speechae CKPT] [--vae DIR] [-- TRAIN_OVERRIDES...]

Variants (``conf/ablation/``): ``full`` (the pre-trained SpeechAE), ``no_pretrain`` (SpeechAE trained jointly from
scratch), ``no_speechae`` (a linear projection of the raw Whisper windows), ``no_async`` (trained with t1 = t2);
and, at inference, ``full`` with independent clips (w/o ANS). Not in the paper: ``tuned`` (the pre-trained SpeechAE
trained on with the DiT), which asks whether pre-training helps once the encoder may adapt. ``--variants`` picks
which to train (default: all). Training is ``experiment=demo_a2v`` on the shipped demo VAE with make demo's SpeechAE
(``--vae``, ``--speechae``) and the given overrides (the budget) for every variant and seed: one multirun into
``DIR/sweep``. A multirun whose every job has its ``metrics.json`` is not run again; scores already in
``DIR/results.json`` are not recomputed.

Written to ``DIR``: ``results.json`` (every job's settings, held-out scores per face and per clip), ``results.md``
(mean and range over seeds per variant, the paper's Table 2 beside) and ``lip_sync.png``. The same recipe runs on
HDTF by changing ``experiment=`` (and the checkpoint's scores come from ``make eval``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402

from readlit.eval.synthetic import heldout  # noqa: E402
from readlit.paper_results import paper_table  # noqa: E402
from readlit.pipeline import TalkingHeadPipeline  # noqa: E402
from readlit.resolvers import PROJECT_ROOT  # noqa: E402
from readlit.utils.atomic import atomic_write_json, atomic_write_text  # noqa: E402

# Variant name (conf/ablation/<name>.yaml, or full at inference w/o ANS) -> the paper's row and how clips join.
VARIANTS = {"full": ("Full SpeechAE", "ans"), "no_pretrain": ("w/o Pre-training", "ans"),
            "no_speechae": ("w/o SpeechAE", "ans"), "no_async": ("w/o ANS (training)", "ans"),
            "full_independent": ("w/o ANS (inference)", "independent"),
            "tuned": ("Pre-trained, fine-tuned (not in the paper)", "ans")}
SHIPPED_VAE = PROJECT_ROOT / "assets" / "demo_vae_decoder" / "vae"
TRAINED = ("full", "no_pretrain", "no_speechae", "no_async", "tuned")
# The paper's order on lip sync: each variant beats the next.
PAPER_ORDER = ("full", "no_pretrain", "no_speechae")
# Pre-training's claim when the encoder is trained on in stage 2 as well.
TUNED_ORDER = ("tuned", "no_pretrain")
SCORES = ("lip_sync", "lip_sync_shuffled", "mouth_r", "psnr", "seam_jump")


def train(out: Path, variants: list[str], seeds: list[int], speechae: Path, vae: Path,
          overrides: list[str]) -> list[Path]:
    """The multirun over variants x seeds (skipped when every job finished); its job folders."""
    sweep = out / "sweep"
    jobs = sorted(sweep.glob("[0-9]*"), key=lambda p: int(p.name))
    if len(jobs) == len(variants) * len(seeds) and all((job / "metrics.json").exists() for job in jobs):
        print(f"reusing the finished multirun in {sweep}")
        return jobs
    command = [sys.executable, "-m", "readlit.train", "-m", "experiment=demo_a2v", f"+ablation={','.join(variants)}",
               f"seed={','.join(map(str, seeds))}", f"hydra.sweep.dir={sweep}", "vae=local",
               f"vae.pretrained={vae.resolve()}", f"model.speechae_ckpt={speechae.resolve()}", *overrides]
    print("training:", " ".join(command[1:]), flush=True)
    subprocess.run(command, cwd=PROJECT_ROOT, check=True)
    return sorted(sweep.glob("[0-9]*"), key=lambda p: int(p.name))


def job_settings(job: Path) -> tuple[str, int]:
    """(variant, seed) of a multirun job, from the overrides Hydra recorded."""
    recorded = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
    overrides = dict(item.lstrip("+").split("=", 1) for item in recorded)
    return overrides["ablation"], int(overrides["seed"])


def score_jobs(jobs: list[Path], frames: int, results: dict[str, Any], path: Path) -> None:
    """Held-out scores of every job (and of ``full`` w/o ANS), saved after each so a rerun resumes."""
    for job in jobs:
        variant, seed = job_settings(job)
        pipeline = None
        for name in (variant, f"{variant}_independent"):
            key = f"{name}/seed{seed}"
            if name not in VARIANTS or key in results:
                continue
            pipeline = pipeline or TalkingHeadPipeline.from_checkpoint(job / "checkpoints" / "last.ckpt")
            run = heldout.score_run(pipeline, frames, method=VARIANTS[name][1], seed=seed)
            results[key] = {"variant": name, "seed": seed, "job": str(job), **run}
            summary = run["summary"]
            print(f"{key}: lip sync {summary['lip_sync']:.3f} (shuffled {summary['lip_sync_shuffled']:.3f}), "
                  f"PSNR {summary['psnr']:.2f}", flush=True)
            atomic_write_json(path, results)


def by_variant(results: dict[str, Any]) -> dict[str, dict[str, list[float]]]:
    """variant -> score -> one value per seed."""
    table: dict[str, dict[str, list[float]]] = {}
    for entry in results.values():
        scores = table.setdefault(entry["variant"], {key: [] for key in SCORES})
        for key in SCORES:
            scores[key].append(entry["summary"].get(key, float("nan")))
    return table


def order_verdict(table: dict[str, dict[str, list[float]]], order: tuple[str, ...] = PAPER_ORDER) -> str:
    """Whether each variant of ``order`` beats the next on lip sync, in the means and beyond the seeds' spread."""
    means = [np.mean(table[name]["lip_sync"]) for name in order]
    pairs = list(zip(order, order[1:], strict=False))
    ordered = all(a > b for a, b in zip(means, means[1:], strict=False))
    separated = all(min(table[a]["lip_sync"]) > max(table[b]["lip_sync"]) for a, b in pairs)
    if ordered and separated:
        return "reproduces: every seed of each variant beats every seed of the next"
    if ordered:
        return "the means follow the paper's order, but the seeds' ranges overlap (not separable from seed noise)"
    return "does not reproduce: the means are not in the paper's order"


def report(results: dict[str, Any], frames: int, seeds: list[int], overrides: list[str]) -> str:
    table = by_variant(results)
    paper = paper_table(2)["rows"]
    lines = [f"Held-out faces {heldout.TEST_IDENTITIES}, {frames} frames, 8 steps, Split-CFG 2/6; "
             f"seeds {seeds}; training `experiment=demo_a2v {' '.join(overrides)}`. Mean over seeds [min, max].", "",
             "| variant | lip sync | shuffled control | mouth r | PSNR | seam jump | paper Sync-C / FID (HDTF) |",
             "|---|---|---|---|---|---|---|"]
    for name, (row, _) in VARIANTS.items():
        if name not in table:
            continue
        cells = [_cell(table[name][key]) for key in SCORES]
        ref = paper.get(row)
        cells.append(f"{ref['sync_c']} / {ref['fid']}" if ref else "")
        lines.append(f"| {row} | {' | '.join(cells)} |")
    if all(name in table for name in PAPER_ORDER):
        lines += ["", f"Paper's order on lip sync (full > w/o pre-training > w/o SpeechAE): {order_verdict(table)}."]
    if all(name in table for name in TUNED_ORDER):
        lines += ["", "Pre-training with the encoder fine-tuned (pre-trained, fine-tuned > w/o pre-training): "
                      f"{order_verdict(table, TUNED_ORDER)}."]
    return "\n".join(lines) + "\n"


def _cell(values: list[float]) -> str:
    if all(np.isnan(values)):
        return "-"
    return f"{np.nanmean(values):.3f} [{np.nanmin(values):.3f}, {np.nanmax(values):.3f}]"


def plot(results: dict[str, Any], path: Path) -> None:
    table = by_variant(results)
    names = [name for name in VARIANTS if name in table]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for i, name in enumerate(names):
        for key, marker in (("lip_sync", "o"), ("lip_sync_shuffled", "x")):
            values = table[name][key]
            ax.scatter([i] * len(values), values, marker=marker, color="C0" if key == "lip_sync" else "C3",
                       label={"lip_sync": "lip sync (per seed)", "lip_sync_shuffled": "shuffled audio"}[key]
                       if i == 0 else None)
            ax.hlines(np.mean(values), i - 0.2, i + 0.2, color="C0" if key == "lip_sync" else "C3")
    ax.set_xticks(range(len(names)), [VARIANTS[name][0] for name in names], rotation=15, fontsize=8)
    ax.set_ylabel("mouth-audio correlation")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder of the multirun and the results")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="training (and sampling) seeds")
    parser.add_argument("--variants", nargs="+", choices=TRAINED, default=list(TRAINED),
                        help="the conf/ablation variants to train (default: all)")
    parser.add_argument("--frames", type=int, default=121, help="frames of each held-out video")
    parser.add_argument("--speechae", type=Path, default=PROJECT_ROOT / "logs/demo/speechae/checkpoints/last.ckpt",
                        help="the stage-1 checkpoint of the full variant (default: the one make demo trains)")
    parser.add_argument("--vae", type=Path, default=SHIPPED_VAE, help="the demo VAE (save_pretrained folder)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of every training job (after --)")
    args = parser.parse_args(argv)
    if len(args.seeds) < 2:
        parser.error("--seeds needs at least two seeds: the order of the variants is judged against their spread")
    for path, how in ((args.speechae, "run make demo, or give --speechae"), (args.vae, "give --vae")):
        if not path.exists():
            parser.error(f"{path} does not exist: {how}")
    jobs = train(args.out, args.variants, args.seeds, args.speechae, args.vae, args.overrides)
    path = args.out / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    score_jobs(jobs, args.frames, results, path)
    atomic_write_text(args.out / "results.md", report(results, args.frames, args.seeds, args.overrides))
    plot(results, args.out / "lip_sync.png")
    print((args.out / "results.md").read_text())


if __name__ == "__main__":
    main()
