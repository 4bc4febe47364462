"""``make demo``: the READ pipeline on synthetic talking heads, on a CPU, with a report.

Stages run through ``python -m readlit.train`` into ``logs/demo/<stage>``; a stage whose
``metrics.json`` exists is reused, not retrained (``--retrain`` forces it). Implemented stages so far:
SpeechAE pre-training. The report (``logs/demo/report.md``) links a watchable synthetic sample, the
learning curves and the held-out numbers.
"""

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from readlit.data.synthetic import make_identity, make_session, render_frames  # noqa: E402
from readlit.data.video_io import write_mp4  # noqa: E402
from readlit.utils.atomic import atomic_write_text  # noqa: E402

STAGES = {"speechae": "demo_speechae"}
# The first held-out (test) identity of data=synthetic with its default split {train: 32, val: 4, test: 4}.
SAMPLE_IDENTITY = 36


def run_stage(stage: str, out: Path, retrain: bool) -> tuple[dict[str, float], float | None]:
    """Train one stage into ``out/stage`` unless it is already there; return its metrics and minutes."""
    run_dir = out / stage
    metrics_file = run_dir / "metrics.json"
    if metrics_file.is_file() and not retrain:
        print(f"[demo] {stage}: reusing {run_dir}")
        return json.loads(metrics_file.read_text()), None
    print(f"[demo] {stage}: training (python -m readlit.train experiment={STAGES[stage]})")
    start = time.monotonic()
    cmd = [sys.executable, "-m", "readlit.train", f"experiment={STAGES[stage]}", f"hydra.run.dir={run_dir}"]
    if subprocess.run(cmd).returncode != 0:
        raise SystemExit(f"[demo] {stage} failed; see the output above")
    return json.loads(metrics_file.read_text()), (time.monotonic() - start) / 60


def plot_curves(run_dir: Path, keys: list[str], path: Path) -> Path:
    """Plot logged metrics against the step from the run's CSV log."""
    with open(run_dir / "csv" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for key in keys:
        points = [(int(r["step"]), float(r[key])) for r in rows if r.get(key)]
        if points:
            ax.plot(*zip(*points, strict=True), label=key, marker="." if key.startswith("val") else None)
    ax.set_xlabel("step")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_sample(path: Path, seconds: float = 6.0, size: int = 128) -> Path:
    """A held-out synthetic speaker as mp4 with its audio, so a person can watch the data."""
    num_frames = 1 + 8 * int(seconds * 25 // 8)
    identity = make_identity(0, SAMPLE_IDENTITY)
    session = make_session(0, identity, 0, num_frames)
    frames = render_frames(identity, session, 0, num_frames, size)
    return write_mp4(path, frames, 25, session.audio, 16000)


def speechae_section(metrics: dict[str, float], minutes: float | None, curves: Path) -> list[str]:
    took = "reused from an earlier run" if minutes is None else f"trained in {minutes:.1f} min"
    return [
        f"## Stage 1: SpeechAE ({took})",
        "",
        "Held-out identities and speech (test split):",
        "",
        "| metric | value |",
        "|---|---|",
        f"| reconstruction MSE | {metrics['test/mse']:.4f} |",
        f"| predict-the-mean MSE | {metrics['test/mse_baseline']:.4f} |",
        f"| MSE / baseline | {metrics['test/mse_ratio']:.3f} |",
        f"| frame retrieval accuracy (chance 1/33) | {metrics['test/con_acc']:.3f} |",
        "",
        f"![learning curves]({curves.name})",
        "",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("logs/demo"), help="where stages and the report go")
    parser.add_argument("--retrain", action="store_true", help="train every stage again")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    sample = write_sample(args.out / "synthetic_sample.mp4")
    metrics, minutes = run_stage("speechae", args.out, args.retrain)
    curves = plot_curves(args.out / "speechae", ["train/mse", "val/mse", "val/mse_baseline"],
                         args.out / "speechae_curves.png")
    lines = ["# readlit demo report", "", f"Synthetic held-out speaker: [{sample.name}]({sample.name})", ""]
    lines += speechae_section(metrics, minutes, curves)
    report = args.out / "report.md"
    atomic_write_text(report, "\n".join(lines))
    print("\n".join(lines[4:16]))
    print(f"[demo] report: {report}")


if __name__ == "__main__":
    main()
