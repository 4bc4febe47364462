"""Side-by-side measurements, made in one run: ``python -m readlit.bench latents|decode|reach``.

``latents``: A2V-DiT training steps (forward, backward, AdamW) fed by a datamodule that renders or reads frames
and encodes them with the VAE on the fly, against the same steps fed from a latent cache
(:mod:`readlit.data.latent_cache`) built here first. Any experiment and overrides may be given, e.g.
``python -m readlit.bench latents --experiment demo_a2v -- vae=local vae.pretrained=DIR``.

``decode``: peak resident memory of one VAE decode (random weights of ``conf/vae/<name>.yaml``), in temporal
tiles and in one window, as the latent sequence grows. Each decode runs in a fresh process, so the peak is
its own; the output video itself is subtracted, leaving the decoder's working memory.

``reach``: how far a VAE decoder carries a change in one latent frame (:func:`readlit.vae.temporal_reach`), the
measurement ``vae.tile_context`` is chosen from: ``python -m readlit.bench reach -- vae=local vae.pretrained=DIR``
(any ``conf/vae`` config and overrides; a random architecture shows the shape of its reach, trained weights the
real one).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NoReturn

import torch
from hydra.errors import HydraException
from hydra.utils import instantiate
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from readlit.cli import run_tool, user_error
from readlit.data.preprocess.latents import build_latent_cache
from readlit.errors import ConfigError, ReadlitError
from readlit.resolvers import PROJECT_ROOT
from readlit.utils.compose import compose_app

# The audio encoder does not change the data path being compared; the linear one needs no stage-1 checkpoint.
# Cached latents carry no mouth_mask, so the mouth-weighted loss is off for both timings.
DEFAULTS = ["model.audio_encoder=linear", "model.speechae_ckpt=null", "data.identities={train:4,val:1,test:1}",
            "data.num_workers=0", "model.weighting=null"]


def time_steps(module: Any, datamodule: Any, steps: int, warmup: int = 2) -> float:
    """Seconds per training step (data loading included), after ``warmup`` untimed steps."""
    optimizer = module.configure_optimizers()["optimizer"]
    module.train()
    batches = iter(datamodule.train_dataloader())
    elapsed = 0.0
    for step in range(warmup + steps):
        start = time.perf_counter()
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(datamodule.train_dataloader())
            batch = next(batches)
        loss = module.training_step(batch, step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step >= warmup:
            elapsed += time.perf_counter() - start
    return elapsed / steps


def bench_latents(experiment: str, overrides: list[str], steps: int) -> dict[str, float]:
    """s/step on the fly and from a latent cache, and their ratio."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        cfg = compose_app("train", [f"experiment={experiment}", *DEFAULTS, *overrides], out)
        module = instantiate(cfg.model)
        module.log_dict = module.log = lambda *args, **kwargs: None  # no trainer attached
        frames = instantiate(OmegaConf.merge(cfg.data, {"return_video": True, "latents": None}))
        frames.setup("fit")
        settings = {"vae": {"fingerprint": module.vae.fingerprint()}, "data": frames.item_settings()}
        build_latent_cache(frames, module.vae, out / "latents", ["train"], 64, cfg.data.batch_size, "cpu",
                           settings, progress=False)
        cached = instantiate(OmegaConf.merge(cfg.data, {"latents": str(out / "latents")}))
        cached.setup_latents(("train",))
        on_the_fly = time_steps(module, frames, steps)
        from_cache = time_steps(module, cached, steps)
    return {"on_the_fly_s_per_step": on_the_fly, "cached_s_per_step": from_cache, "speedup": on_the_fly / from_cache}


# Runs in a child process: argv = vae yaml, latent frames, tile frames, pixel size. Prints peak growth and output MiB.
_DECODE_CHILD = """
import sys, torch
from omegaconf import OmegaConf
from readlit.vae import VideoVAE

def status(key):
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(key + ":"))

torch.set_num_threads(1)
arch = OmegaConf.to_container(OmegaConf.load(sys.argv[1]).architecture)
vae = VideoVAE(architecture=arch, tile_frames=int(sys.argv[3]), tile_context=2)
side = int(sys.argv[4]) // vae.spatial_ratio
z = torch.randn(1, vae.latent_channels, int(sys.argv[2]), side, side)
with torch.no_grad():
    vae.decode(z[:, :, :2])  # the first convolutions allocate kernels and caches once
    open("/proc/self/clear_refs", "w").write("5")  # high-water mark := now, so set-up does not hide the peak
    base = status("VmRSS")
    out = vae.decode(z)
print((status("VmHWM") - base) / 1024, out.numel() * 4 / 2**20)
"""


def decode_peak_mib(vae: str, latent_frames: int, tile_frames: int, size: int) -> tuple[float, float]:
    """Peak RSS growth (MiB) of one decode in a fresh process, and the decoded video's size (MiB)."""
    args = [sys.executable, "-c", _DECODE_CHILD, str(PROJECT_ROOT / "conf" / "vae" / f"{vae}.yaml"),
            str(latent_frames), str(tile_frames), str(size)]
    peak, output = subprocess.run(args, capture_output=True, text=True, check=True).stdout.split()
    return float(peak), float(output)


def bench_decode(vae: str = "demo", frames: tuple[int, ...] = (9, 33, 65), size: int = 64,
                 tile_frames: int = 4) -> list[dict[str, float]]:
    """Working memory (peak minus output, MiB) of tiled and whole decodes per latent length; Linux only."""
    rows = []
    for latent_frames in frames:
        tiled, output = decode_peak_mib(vae, latent_frames, tile_frames, size)
        whole, _ = decode_peak_mib(vae, latent_frames, 10**6, size)
        rows.append({"latent_frames": latent_frames, "output_mib": output, "tiled_mib": tiled - output,
                     "whole_mib": whole - output})
    return rows


def bench_reach(overrides: list[str], latent_frames: int = 25, size: int = 64) -> list[float]:
    """The reach of the decoder of ``vae=...`` (default: the shipped demo VAE), on the latents of a held-out
    synthetic clip of ``latent_frames`` latent frames (latents of real video, where a decoder's reach is its own)."""
    from readlit.data.base import to_video
    from readlit.data.synthetic import make_identity, make_session, render_frames
    from readlit.frames import pixel_frames
    from readlit.vae import temporal_reach

    shipped = ["vae=local", f"vae.pretrained={PROJECT_ROOT / 'assets' / 'demo_vae_decoder' / 'vae'}"]
    vae = instantiate(compose_app("train", overrides or shipped, Path(tempfile.mkdtemp())).vae)
    frames = pixel_frames(latent_frames, vae.temporal_ratio)
    face = make_identity(0, 38)
    video = to_video(render_frames(face, make_session(0, face, 1, frames), 0, frames, size))[None]
    with torch.no_grad():
        return temporal_reach(vae, vae.encode(video), frame=latent_frames // 2)


class _Parser(argparse.ArgumentParser):
    """Reports a usage problem as a ConfigError, so main() prints it on one line."""

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        raise ConfigError(message)


def _compose(overrides: list[str]) -> None:
    """Compose (and check) the train config the overrides ask for, so a typo is one line, not a traceback."""
    try:
        cfg = compose_app("train", overrides, Path(tempfile.mkdtemp()))
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(" ".join(str(err).split("Config search path")[0].split())) from err
    try:
        instantiate(cfg.data)
    except (HydraException, OmegaConfBaseException, ReadlitError) as err:
        message = user_error(err, cfg)
        if message is None:
            raise
        raise ConfigError(message) from err


def main(argv: list[str] | None = None) -> None:
    parser = _Parser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["latents", "decode", "reach"])
    parser.add_argument("--experiment", default="demo_a2v")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the experiment (after --)")

    def run() -> None:
        # Intermixed: the overrides may follow the options (``latents --experiment demo_a2v -- vae=demo``).
        args = parser.parse_intermixed_args(argv)
        if args.steps < 1:
            raise ConfigError(f"--steps={args.steps} must be at least 1")
        if args.what == "latents":
            _compose([f"experiment={args.experiment}", *DEFAULTS, *args.overrides])
        elif args.what == "reach" and args.overrides:
            _compose(args.overrides)
        _run(args)

    run_tool(run)


def _run(args: argparse.Namespace) -> None:
    if args.what == "reach":
        reach = bench_reach(args.overrides)
        print("largest pixel change (of 2) d latent frames from a latent frame moved by one std:")
        print("  " + "  ".join(f"d={d}: {value:.4f}" for d, value in enumerate(reach)))
        quiet = next((d for d, value in enumerate(reach) if max(reach[d:]) < 1 / 255), len(reach))
        print(f"below one grey level (1/255) from d={quiet}: vae.tile_context={quiet} decodes tiles like one window")
        return
    if args.what == "decode":
        print("vae=demo at 64x64, 1 thread: working memory of one decode (peak RSS growth minus the output)")
        for row in bench_decode():
            print(f"{row['latent_frames']:>3} latent frames: tiled {row['tiled_mib']:6.0f} MiB, "
                  f"one window {row['whole_mib']:6.0f} MiB (output {row['output_mib']:.0f} MiB)")
        return
    result = bench_latents(args.experiment, args.overrides, args.steps)
    print(f"{args.experiment}, batch of the experiment, {args.steps} timed steps, {torch.get_num_threads()} threads: "
          f"on the fly {result['on_the_fly_s_per_step']:.3f} s/step, from cached latents "
          f"{result['cached_s_per_step']:.3f} s/step: {result['speedup']:.2f}x")


if __name__ == "__main__":
    main()
