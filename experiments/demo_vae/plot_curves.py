"""Learning curves of the demo VAE's six phases from their CSV logs: ``python experiments/demo_vae/plot_curves.py``.

Writes ``phase<n>.png`` per logged phase and ``all_phases.png`` (every phase on one step axis) beside this file.
"""

import csv
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).resolve().parent
# phase -> (experiment, run folder or None when not kept, steps it trained). Phase 3's log starts at step 1500,
# where it was resumed; phase 2's run was not kept.
PHASES = {
    1: ("demo_vae", HERE / "phase1_demo_vae", 4000),
    2: ("demo_vae_mouth", None, 1200),
    3: ("demo_vae_mouth", HERE / "phase3_demo_vae_mouth", 4000),
    4: ("demo_vae_long", HERE / "phase4_demo_vae_long", 1500),
    5: ("demo_vae_long", HERE / "phase5_demo_vae_long2", 1000),
    6: ("demo_vae_decoder", HERE.parents[1] / "assets" / "demo_vae_decoder", 1000),
}
LOSSES = ("train/mse", "val/mse", "train/mouth", "val/mouth")


def read_log(run: Path) -> dict[str, list[tuple[int, float]]]:
    """(step, value) pairs of every logged key of a run's ``csv/metrics.csv``."""
    with open(run / "csv" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    keys = [key for key in rows[0] if key not in ("epoch", "step")]
    return {key: [(int(row["step"]), float(row[key])) for row in rows if row[key]] for key in keys}


def draw_losses(ax: plt.Axes, log: dict[str, list[tuple[int, float]]], offset: int = 0) -> None:
    for key, colour in zip(LOSSES, ("C0", "C0", "C3", "C3"), strict=True):
        points = log.get(key, [])
        if points:
            steps, values = zip(*points, strict=True)
            style = {"marker": "o", "ms": 3, "lw": 1.5} if key.startswith("val") else {"lw": 0.6, "alpha": 0.6}
            ax.plot([offset + s for s in steps], values, color=colour, label=key, **style)
    ax.set_yscale("log")


def draw_psnr(ax: plt.Axes, log: dict[str, list[tuple[int, float]]], offset: int = 0) -> None:
    steps, values = zip(*log["val/psnr"], strict=True)
    ax.plot([offset + s for s in steps], values, "o-", color="C2", ms=3, label="val/psnr")
    (step, value), = log["test/psnr"]
    ax.plot(offset + step, value, "*", color="k", ms=9, label="test/psnr (best val checkpoint)")
    ax.set_ylabel("PSNR (dB)")


def save(fig: plt.Figure, path: Path) -> None:
    """Write the PNG under a temporary name beside ``path``, then rename it into place."""
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


def plot_phase(number: int, log: dict[str, list[tuple[int, float]]], path: Path) -> None:
    fig, (losses, psnr) = plt.subplots(1, 2, figsize=(10, 3.5))
    draw_losses(losses, log)
    draw_psnr(psnr, log)
    for ax in (losses, psnr):
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"phase {number}: experiment={PHASES[number][0]}")
    fig.tight_layout()
    save(fig, path)


def plot_all(logs: dict[int, dict[str, list[tuple[int, float]]]], path: Path) -> None:
    fig, (psnr, losses) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True)
    start = 0
    for number, (experiment, _, steps) in PHASES.items():
        for ax in (psnr, losses):
            ax.axvline(start, color="grey", lw=0.6)
        psnr.text(start + 40, 0.03, f"{number}: {experiment}" + ("" if number in logs else " (run not kept)"),
                  transform=psnr.get_xaxis_transform(), fontsize=7, rotation=90, va="bottom")
        if number in logs:
            draw_psnr(psnr, logs[number], start)
            draw_losses(losses, logs[number], start)
        start += steps
    handles = {label: handle for ax in (psnr, losses) for handle, label in zip(*ax.get_legend_handles_labels(),
                                                                              strict=True)}
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=6, fontsize=7)
    losses.set_xlabel("steps since the demo VAE's first step")
    for ax in (psnr, losses):
        ax.grid(alpha=0.3)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    save(fig, path)


def main() -> None:
    logs = {number: read_log(run) for number, (_, run, _) in PHASES.items() if run is not None}
    for number, log in logs.items():
        plot_phase(number, log, HERE / f"phase{number}.png")
    plot_all(logs, HERE / "all_phases.png")


if __name__ == "__main__":
    main()
