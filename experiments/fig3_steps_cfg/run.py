"""The paper's Fig. 3 on synthetic data: sampling steps x {Joint-CFG, Split-CFG}, quality against seconds per video.

    python experiments/fig3_steps_cfg/run.py --ckpt logs/demo/a2v/checkpoints/last.ckpt --out DIR
        [--steps 4 5 6 7 8 9 10] [--frames 121] [--joint-scale 6]

One model, loaded once; every held-out face (:mod:`readlit.eval.synthetic.heldout`) speaks held-out speech at each
setting from the same seeds. Split-CFG is the paper's 2/6 (eq. 17); Joint-CFG (eq. 16) has one scale, which the
paper does not give (``--joint-scale``, default the audio scale 6). Both are timed in the same run, setting after
setting, so their ratio is fair on a shared machine. Written to ``DIR``: ``results.json`` (every score of every
video), ``results.md`` (the table and the Split/Joint time ratio per step count; the paper: about 1.5x) and
``fig3.png`` (lip sync and PSNR against backbone and total seconds per video).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from readlit.eval.synthetic import heldout  # noqa: E402
from readlit.pipeline import TalkingHeadPipeline  # noqa: E402
from readlit.sampling.cfg import Guidance  # noqa: E402
from readlit.utils.atomic import atomic_write_json, atomic_write_text  # noqa: E402

MODES = {"joint": "Joint-CFG", "split": "Split-CFG"}


def guidance(mode: str, joint_scale: float) -> Guidance:
    """The paper's Split-CFG (alpha = 2, beta = 6), or Joint-CFG with one scale."""
    return heldout.PAPER_GUIDANCE if mode == "split" else Guidance("joint", audio_scale=joint_scale)


def run(pipeline: TalkingHeadPipeline, steps: list[int], frames: int, joint_scale: float) -> dict[str, Any]:
    """mode -> steps -> score_run's summary (and settings), Joint and Split alternating at each step count."""
    results: dict[str, Any] = {mode: {} for mode in MODES}
    # Untimed warm-up: the first videos pay for lazy set-up (allocator, kernels) that no setting should carry.
    for mode in MODES:
        heldout.score_run(pipeline, frames, steps=1, guidance=guidance(mode, joint_scale), shuffled_control=False)
    for n in steps:
        for mode in MODES:
            scored = heldout.score_run(pipeline, frames, steps=n, guidance=guidance(mode, joint_scale),
                                       shuffled_control=False)
            results[mode][str(n)] = {"settings": scored["settings"], "summary": scored["summary"]}
            summary = scored["summary"]
            print(f"{MODES[mode]}, {n} steps: lip sync {summary['lip_sync']:.3f}, PSNR {summary['psnr']:.2f}, "
                  f"backbone {summary['backbone_seconds']:.2f} s, total {summary['total_seconds']:.2f} s", flush=True)
    return results


def split_joint_ratio(results: dict[str, Any], n: str, key: str = "backbone_seconds") -> float:
    return results["split"][n]["summary"][key] / results["joint"][n]["summary"][key]


def report(results: dict[str, Any], ckpt: str, frames: int, joint_scale: float) -> str:
    steps = list(results["split"])
    lines = [f"Checkpoint `{ckpt}`; held-out faces {heldout.TEST_IDENTITIES}, {frames} frames, ANS; Split-CFG 2/6, "
             f"Joint-CFG {joint_scale}; seconds per video, mean over faces.", "",
             "| steps | CFG | lip sync | mouth r | PSNR | backbone s | total s |", "|---|---|---|---|---|---|---|"]
    for n in steps:
        for mode, name in MODES.items():
            s = results[mode][n]["summary"]
            lines.append(f"| {n} | {name} | {s['lip_sync']:.3f} | {s['mouth_r']:.3f} | {s['psnr']:.2f} | "
                         f"{s['backbone_seconds']:.2f} | {s['total_seconds']:.2f} |")
    backbone = [split_joint_ratio(results, n) for n in steps]
    total = [split_joint_ratio(results, n, "total_seconds") for n in steps]
    lines += ["", f"Split/Joint backbone time: {np.mean(backbone):.2f}x (range {min(backbone):.2f}-{max(backbone):.2f} "
              f"over step counts); whole video: {np.mean(total):.2f}x. The paper: almost 1.5x."]
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    fig, axes = plt.subplots(2, 2, figsize=(9, 6.5), sharey="row")
    for col, seconds in enumerate(("backbone_seconds", "total_seconds")):
        for row, (key, label) in enumerate((("lip_sync", "lip sync (mouth-audio r)"), ("psnr", "PSNR (dB)"))):
            ax = axes[row, col]
            for mode, name in MODES.items():
                steps = list(results[mode])
                x = [results[mode][n]["summary"][seconds] for n in steps]
                y = [results[mode][n]["summary"][key] for n in steps]
                ax.plot(x, y, "o-", label=name)
                for n, xi, yi in zip(steps, x, y, strict=True):
                    ax.annotate(n, (xi, yi), fontsize=7, textcoords="offset points", xytext=(3, 3))
            ax.set_xlabel(f"{seconds.split('_')[0]} seconds per video")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
    axes[0, 0].legend()
    fig.suptitle("Steps (labels) x CFG: quality against runtime")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", required=True, help="an a2v checkpoint")
    parser.add_argument("--out", type=Path, required=True, help="folder for results.json, results.md, fig3.png")
    parser.add_argument("--steps", type=int, nargs="+", default=list(range(4, 11)), help="sampling step counts")
    parser.add_argument("--frames", type=int, default=121, help="frames of each held-out video")
    parser.add_argument("--joint-scale", type=float, default=6.0, help="Joint-CFG's scale (eq. 16)")
    args = parser.parse_args(argv)
    pipeline = TalkingHeadPipeline.from_checkpoint(args.ckpt)
    results = run(pipeline, args.steps, args.frames, args.joint_scale)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "results.json", {"ckpt": args.ckpt, "frames": args.frames,
                                                 "joint_scale": args.joint_scale, "results": results})
    atomic_write_text(args.out / "results.md", report(results, args.ckpt, args.frames, args.joint_scale))
    plot(results, args.out / "fig3.png")
    print((args.out / "results.md").read_text())


if __name__ == "__main__":
    main()
