"""``python -m readlit.bench <name>`` (``readlit-bench``): one subcommand per benchmark.

- ``latents``: training steps fed on the fly vs from a latent cache (:mod:`.latents`);
- ``decode``: VAE decode memory, temporal tiles vs one window (:mod:`.decode`);
- ``reach``: how far a VAE decoder carries a latent change (:mod:`.reach`);
- ``sampler``: batched vs sequential CFG, Joint vs Split, ANS cost per frame, every speed lever (:mod:`.sampler`);
- ``backbone``: achieved over measured GEMM FLOP/s, backbone seconds per video (:mod:`.backbone`);
- ``stream``: first streamed clip for short and long speech, end-to-end shares, decode overlap (:mod:`.stream`);
- ``gpu``: the paper-scale path in one call (``make bench-gpu``, :mod:`.gpu`);
- ``memory``: training memory per GPU on 1, 8, 64 GPUs, computed on the meta device (:mod:`.memory`).

The last five print one table and write ``<out>/<name>.json`` and ``<out>/<name>.md``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any, NoReturn

import torch
from hydra.errors import HydraException
from hydra.utils import instantiate
from omegaconf.errors import OmegaConfBaseException

from readlit.errors import ConfigError, ReadlitError
from readlit.resolvers import PROJECT_ROOT

OUT = PROJECT_ROOT / "experiments" / "bench"


class _Parser(argparse.ArgumentParser):
    """Reports a usage problem as a ConfigError, so the tool prints it on one line and exits 2."""

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        raise ConfigError(message)


def _geometry_args(parser: argparse.ArgumentParser, clip_frames: int, latent_size: int) -> None:
    parser.add_argument("--size", default="s", help="a conf/model/net/*.yaml size: tiny, s, b, ltx2b")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--clip-frames", type=int, default=clip_frames, help="f, latent frames per clip")
    parser.add_argument("--latent-size", type=int, default=latent_size, help="h = w of the latents")
    parser.add_argument("--audio-tokens", type=int, default=16, help="hw, audio latent tokens per latent frame")
    parser.add_argument("--steps", type=int, default=2, help="sampling steps (the cost per step is what matters)")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds, interleaved; the median is kept")
    parser.add_argument("--out", default=str(OUT), help="folder of the JSON and Markdown tables")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m readlit.bench", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="what", required=True)
    latents = commands.add_parser("latents", help="training steps on the fly vs from a latent cache")
    latents.add_argument("--experiment", default="demo_a2v")
    latents.add_argument("--steps", type=int, default=10)
    latents.add_argument("overrides", nargs="*", help="Hydra overrides of the experiment (after --)")
    commands.add_parser("decode", help="VAE decode memory, tiles vs one window")
    reach = commands.add_parser("reach", help="how far a VAE decoder carries a latent change")
    reach.add_argument("overrides", nargs="*", help="Hydra overrides choosing the VAE (after --)")
    sampler = commands.add_parser("sampler", help="CFG batching, Joint vs Split, ANS per frame, speed levers")
    _geometry_args(sampler, clip_frames=4, latent_size=8)
    backbone = commands.add_parser("backbone", help="forward FLOP/s over GEMM FLOP/s, s per video")
    _geometry_args(backbone, clip_frames=4, latent_size=8)
    for command in (sampler, backbone):
        command.add_argument("--no-levers", action="store_true", help="skip the speed levers (and compiling)")
    stream = commands.add_parser("stream", help="first streamed clip, end-to-end shares, decode overlap")
    _geometry_args(stream, clip_frames=4, latent_size=8)
    stream.add_argument("--vae", default="demo", help="a conf/vae/*.yaml (random weights of its architecture)")
    stream.add_argument("--whisper", default="tiny", choices=["tiny", "demo"],
                        help="Whisper-tiny's encoder shape, or the demo's tiny random encoder")
    stream.add_argument("--seconds", type=float, default=5.0)
    stream.add_argument("--long-seconds", type=float, default=60.0)
    stream.add_argument("--fast", action="store_true", help="pull the fast preset's levers (speed=fast[_cpu])")
    gpu = commands.add_parser("gpu", help="the paper-scale path in one call (make bench-gpu)")
    gpu.add_argument("--size", default="ltx2b", choices=["ltx2b", "tiny"])
    gpu.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    gpu.add_argument("--budget", type=float, default=330.0, help="seconds the whole run may take")
    gpu.add_argument("--out", default=str(OUT))
    memory = commands.add_parser("memory", help="training memory per GPU on 1, 8, 64 GPUs, computed")
    memory.add_argument("--size", default="ltx2b")
    memory.add_argument("--gpus", type=int, nargs="+", default=[1, 8, 64])
    memory.add_argument("--out", default=str(OUT))
    return parser


def _compose(overrides: list[str]) -> None:
    """Compose the train config the overrides ask for and build its data, so a typo is one line, not a traceback."""
    from readlit.cli import user_error
    from readlit.utils.compose import compose_app

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


def _check(args: argparse.Namespace) -> None:
    """Counts at least one, and the overrides composable, before any work."""
    for name in ("steps", "repeats"):
        if getattr(args, name, 1) < 1:
            raise ConfigError(f"--{name}={getattr(args, name)} must be at least 1")
    if args.what == "latents":
        from readlit.bench.latents import DEFAULTS

        _compose([f"experiment={args.experiment}", *DEFAULTS, *args.overrides])
    elif args.what == "reach" and args.overrides:
        _compose(args.overrides)


def main(argv: list[str] | None = None) -> None:
    from readlit.cli import run_tool

    run_tool(lambda: _main(argv))


def _main(argv: list[str] | None) -> None:
    args = _parser().parse_args(argv)
    _check(args)
    if args.what in ("latents", "decode", "reach"):
        _legacy(args)
        return
    from readlit.bench.nets import Geometry

    if args.what == "memory":
        from readlit.bench.memory import bench_memory

        report = bench_memory(args.size, Geometry(), tuple(args.gpus))
        _finish(report, args.out)
        return
    device = torch.device(args.device)
    if args.what == "gpu":
        from readlit.bench.gpu import SCALES, bench_gpu

        report = bench_gpu(SCALES[args.size], device, args.budget)
    else:
        geometry = Geometry(clip_frames=args.clip_frames, latent_size=args.latent_size, audio_tokens=args.audio_tokens)
        if args.what == "sampler":
            from readlit.bench.sampler import bench_sampler

            report = bench_sampler(args.size, geometry, args.steps, device, args.repeats, not args.no_levers)
        elif args.what == "backbone":
            from readlit.bench.backbone import bench_backbone

            report = bench_backbone(args.size, geometry, args.steps, device, args.repeats, not args.no_levers)
        else:
            from readlit.bench.sampler import fast_preset, preset
            from readlit.bench.stream import bench_stream

            levers = preset(fast_preset(device)) if args.fast else None
            report = bench_stream(args.size, geometry, args.steps, device, args.vae, args.whisper, args.seconds,
                                  args.long_seconds, args.repeats, levers)
    _finish(report, args.out)


def _finish(report: Any, out: str) -> None:
    paths = report.write(out)
    print(report.markdown())
    print("wrote " + " and ".join(str(path) for path in paths))


def _legacy(args: argparse.Namespace) -> None:
    """The three benchmarks that print their own lines."""
    if args.what == "reach":
        from readlit.bench.reach import bench_reach

        reach = bench_reach(args.overrides)
        print("largest pixel change (of 2) d latent frames from a latent frame moved by one std:")
        print("  " + "  ".join(f"d={d}: {value:.4f}" for d, value in enumerate(reach)))
        quiet = next((d for d, value in enumerate(reach) if max(reach[d:]) < 1 / 255), len(reach))
        print(f"below one grey level (1/255) from d={quiet}: vae.tile_context={quiet} decodes tiles like one window")
    elif args.what == "decode":
        from readlit.bench.decode import bench_decode

        print("vae=demo at 64x64, 1 thread: working memory of one decode (peak RSS growth minus the output)")
        for row in bench_decode():
            print(f"{row['latent_frames']:>3} latent frames: tiled {row['tiled_mib']:6.0f} MiB, "
                  f"one window {row['whole_mib']:6.0f} MiB (output {row['output_mib']:.0f} MiB)")
    else:
        from readlit.bench.latents import bench_latents

        result = bench_latents(args.experiment, args.overrides, args.steps)
        print(f"{args.experiment}, batch of the experiment, {args.steps} timed steps, {torch.get_num_threads()} "
              f"threads: on the fly {result['on_the_fly_s_per_step']:.3f} s/step, from cached latents "
              f"{result['cached_s_per_step']:.3f} s/step: {result['speedup']:.2f}x")
