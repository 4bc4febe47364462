"""Length stability on synthetic data (the paper's Table 3), ANS against w/o ANS and overlap-and-fuse.

    python experiments/table3_long_video/run.py --ckpt logs/demo/a2v/checkpoints/last.ckpt --out DIR
        [--lengths 121 457 1017 1497] [--methods ans independent fuse] [--steps 8]

Every held-out face (:mod:`readlit.eval.synthetic.heldout`) speaks held-out speech for each length; each method
generates it from the same seed. Written to ``DIR``: ``results.json`` (every score of every video and clip),
``results.md`` (means per length and method, the drift and the paper's Table 3 beside them) and ``drift.png``
(mouth-sync r and PSNR by clip index, mean over faces). Drift compares the last quarter of a video's clips with
its first quarter (mouth r last / first).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from readlit.eval.synthetic import heldout  # noqa: E402
from readlit.paper_results import paper_table  # noqa: E402
from readlit.pipeline import TalkingHeadPipeline  # noqa: E402
from readlit.utils.atomic import atomic_write_json, atomic_write_text  # noqa: E402

METHODS = {"ans": "ANS", "independent": "w/o ANS", "fuse": "overlap-and-fuse"}


def run_length(pipeline: TalkingHeadPipeline, frames: int, methods: list[str], steps: int) -> dict:
    """Every method on every held-out case of ``frames`` frames (case k from seed k): whole-video and per-clip
    scores, seconds."""
    results = {}
    for method in methods:
        videos = heldout.score_run(pipeline, frames, steps=steps, method=method, shuffled_control=False)["videos"]
        for video in videos:
            print(f"{frames} frames, {method}, id{video['identity']:04d}: lip sync {video['lip_sync']:.3f}, "
                  f"seam jump {video.get('seam_jump', float('nan')):.2f}, {video['total_seconds']:.0f} s", flush=True)
        results[method] = {"videos": videos, "summary": summarise(videos)}
    return results


def summarise(videos: list[dict]) -> dict[str, float]:
    """Means over faces of the whole-video scores, and the drift of mouth r and PSNR from first to last clips."""
    summary = {key: float(np.mean([v[key] for v in videos])) for key in ("lip_sync", "mouth_r", "psnr",
                                                                                "backbone_seconds", "total_seconds")}
    if all("seam_jump" in v for v in videos):
        summary["seam_jump"] = float(np.mean([v["seam_jump"] for v in videos]))
    clips = len(videos[0]["clips"])
    quarter = max(1, clips // 4)
    for key in ("mouth_r", "psnr"):
        per_clip = np.mean([[c[key] for c in v["clips"]] for v in videos], axis=0)
        summary[f"{key}_first"] = float(per_clip[:quarter].mean())
        summary[f"{key}_last"] = float(per_clip[-quarter:].mean())
    summary["drift"] = summary["mouth_r_last"] / summary["mouth_r_first"]
    summary["clips"] = clips
    return summary


def markdown(results: dict, ckpt: str, steps: int) -> str:
    """Means per length and method, and the paper's Table 3 (HDTF, ANS) for the lengths it has."""
    paper = paper_table(3)["rows"]
    lines = [f"Checkpoint `{ckpt}`, {steps} steps, Split-CFG 2/6; held-out faces 36-39, session 1; means over faces.",
             "", "| frames | method | lip sync | mouth r | PSNR | seam jump | mouth r first / last clips (drift) | "
             "s / video | paper (HDTF, ANS): Sync-C / FID |", "|---|---|---|---|---|---|---|---|---|"]
    for frames, by_method in results.items():
        for method, result in by_method.items():
            s = result["summary"]
            reference = paper.get(int(frames)) if method == "ans" else None
            cited = f"{reference['sync_c']} / {reference['fid']}" if reference else ""
            lines.append(f"| {frames} | {METHODS[method]} | {s['lip_sync']:.3f} | {s['mouth_r']:.3f} | "
                         f"{s['psnr']:.2f} | {s.get('seam_jump', float('nan')):.2f} | {s['mouth_r_first']:.3f} / "
                         f"{s['mouth_r_last']:.3f} ({s['drift']:.2f}) | {s['total_seconds']:.0f} | {cited} |")
    return "\n".join(lines) + "\n"


def plot(results: dict, path: Path) -> None:
    """Mouth r and PSNR by clip index (mean over faces), one panel per score, one line per length and method."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for frames, by_method in results.items():
        for method, result in by_method.items():
            for ax, key in zip(axes, ("mouth_r", "psnr"), strict=True):
                curve = np.mean([[c[key] for c in v["clips"]] for v in result["videos"]], axis=0)
                ax.plot(curve, label=f"{frames} frames, {METHODS[method]}", lw=1.2,
                        ls={"ans": "-", "independent": "--", "fuse": ":"}[method])
    for ax, title in zip(axes, ("mouth opening r (generated vs true) per clip", "PSNR (dB) per clip"), strict=True):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("clip index")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, help="an a2v checkpoint")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--lengths", type=int, nargs="+", default=[121, 457, 1017, 1497])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args(argv)
    pipeline = TalkingHeadPipeline.from_checkpoint(args.ckpt)
    results = {frames: run_length(pipeline, frames, args.methods, args.steps) for frames in args.lengths}
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "results.json", {"ckpt": args.ckpt, "steps": args.steps, "results": results})
    atomic_write_text(args.out / "results.md", markdown(results, args.ckpt, args.steps))
    plot(results, args.out / "drift.png")
    print(markdown(results, args.ckpt, args.steps))


if __name__ == "__main__":
    main()
