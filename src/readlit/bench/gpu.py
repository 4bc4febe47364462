"""``python -m readlit.bench gpu`` (``make bench-gpu``): every GPU check of the paper-scale path in one call.

Randomly initialised paper-scale weights (no download): the LTX-2B-size A2V-DiT (``--size ltx2b``), the LTX-Video
0.9.0 VAE architecture and Whisper-tiny's encoder shape; one clip of 121 frames at 512² (16 latent frames + the
reference, 16x16), 8 steps, Split-CFG. It measures:

- the FLOP count of a video's backbone and its floor at the measured bf16 GEMM rate;
- backbone seconds per video for each lever (float32, bf16 autocast, the SDPA kernels, hoisting, ``torch.compile``,
  CUDA graphs) and the fast preset, with the peak memory of sampling;
- end to end (audio front end, backbone, VAE decode, mp4 encode) and the first streamed clip for 5 s and 60 s of
  speech;
- one training step at 512² x 121 frames with gradient checkpointing in bf16 (AdamW): seconds, peak memory, and
  whether it fits on one 80 GB GPU.

A time budget keeps the whole call under ``--budget`` seconds: a section that would start past it is skipped and
says so. A section that fails records its error and the run goes on, so one call always yields a table.
``--size tiny`` runs the same code on the CPU in seconds (the slow test tier does).
"""

from __future__ import annotations

import copy
import gc
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch

from readlit.bench.nets import Geometry, build_net, flops_per_forward, parameter_count, random_clip, sampler
from readlit.bench.report import Report
from readlit.bench.sampler import preset
from readlit.bench.stream import first_clip_rows, phase_rows, random_pipeline, speech
from readlit.bench.timing import gemm_flops, interleaved, timed
from readlit.flow.ans import ANSProcess
from readlit.sampling.speed import SpeedLevers

GIB = 2**30
READ_A100_SECONDS = 4.42  # the paper's backbone time of one 4.84 s clip on an A100 (8 steps, Split-CFG, 512²)
CLIP_SECONDS = 4.84       # 121 frames at 25 fps


@dataclass(frozen=True)
class Scale:
    """What one ``make bench-gpu SIZE=...`` runs: net size, clip geometry, VAE, Whisper shape, steps."""

    size: str
    geometry: Geometry
    vae: str
    whisper: str
    steps: int
    repeats: int
    compile: bool = True             # time the compiled variants (minutes of compiling on a CPU)
    training_reserve: float = 120.0  # seconds the inference sections leave for the training step


SCALES = {
    "ltx2b": Scale("ltx2b", Geometry(), "ltx_0_9_0", "tiny", steps=8, repeats=3),
    "tiny": Scale("tiny", Geometry(clip_frames=2, latent_size=2, audio_tokens=4, channels=8, audio_dim=32), "tiny",
                  "demo", steps=2, repeats=1, compile=False, training_reserve=10.0),
}


class Budget:
    """Seconds left of the call; sections ask before they start."""

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()


def section(report: Report, name: str, budget: Budget, needs: float, run: Callable[[], None],
            reserve: float = 0.0) -> None:
    """Run one section unless less than ``needs`` (+ ``reserve`` for later sections) seconds are left; a failure
    becomes a row, not the end of the run."""
    if budget.left() - reserve < needs:
        report.add(f"{name}: skipped", f"{budget.left():.0f} s left, needs ~{needs:.0f} s", "", "", "time budget")
        return
    try:
        run()
    except Exception as err:  # one broken section must not cost the whole device call
        traceback.print_exc()
        report.add(f"{name}: failed", f"{type(err).__name__}: {err}".splitlines()[0][:300])
    finally:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def peak_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / GIB if device.type == "cuda" else None


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def backbone_variants(device: torch.device) -> dict[str, tuple[SpeedLevers, bool]]:
    """Name -> (levers, hoist), from the plain float32 path to the fast preset, one lever added at a time."""
    bf16 = SpeedLevers(autocast="bfloat16")
    variants = {"float32, eager": (SpeedLevers(), False), "bf16 autocast": (bf16, False),
                "bf16 + hoist": (bf16, True)}
    if device.type == "cuda":
        for kernel in ("flash", "efficient", "cudnn"):
            variants[f"bf16 + hoist + sdpa {kernel}"] = (replace(bf16, sdpa_backend=kernel), True)
    variants["bf16 + hoist + compile"] = (replace(bf16, compile=True), True)
    if device.type == "cuda":
        variants["bf16 + hoist + compile + CUDA graphs"] = (replace(bf16, compile=True, cuda_graphs=True), True)
    name = "fast" if device.type == "cuda" else "fast_cpu"
    variants[f"{name} preset"] = (preset(name), True)
    return variants


def bench_gpu(scale: Scale, device: torch.device, budget_seconds: float = 330.0) -> Report:
    """The table of this module's docstring."""
    budget, geometry = Budget(budget_seconds), scale.geometry
    report = Report(f"gpu_{scale.size}", f"paper-scale path: A2V-DiT {scale.size}, VAE {scale.vae}, {device.type}",
                    {"size": scale.size, "geometry": geometry.describe(), "steps": scale.steps, "cfg": "split",
                     "vae": scale.vae, "whisper": scale.whisper, "repeats": scale.repeats, "device": str(device),
                     "budget_s": budget_seconds})
    flops = flops_per_forward(scale.size, geometry, batch=3) * scale.steps
    gemm_dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    gemm = gemm_flops(device, gemm_dtype, 8192 if device.type == "cuda" else 512)
    report.add("parameters", parameter_count(scale.size, geometry) / 1e9, "B")
    report.add("backbone FLOPs per video", flops / 1e12, "TFLOP", "",
               f"{scale.steps} Split-CFG forwards of 3 sequences")
    report.add(f"GEMM rate, {str(gemm_dtype).removeprefix('torch.')}", gemm / 1e12, "TFLOP/s", "", "measured")
    report.add("backbone floor: FLOPs / GEMM rate", flops / gemm, "s", "≈ 0.5 s (H100, bf16 peak)")
    section(report, "inference", budget, 60 + scale.training_reserve,
            lambda: inference_rows(report, scale, device, budget, flops, gemm))
    section(report, "training step", budget, 90, lambda: training_rows(report, scale, device))
    return report.finish()


def inference_rows(report: Report, scale: Scale, device: torch.device, budget: Budget, flops: float,
                   gemm: float) -> None:
    """Backbone variants, end to end and the first streamed clip, on one pipeline (freed when this returns)."""
    pipeline = random_pipeline(scale.size, scale.geometry, scale.vae, scale.whisper, device)
    geometry = replace(scale.geometry, channels=pipeline.vae.latent_channels)
    clip = random_clip(geometry, geometry.clip_frames, device)
    best: dict[str, Any] = {}

    def backbone(name: str, levers: SpeedLevers, hoist: bool) -> Callable[[], None]:
        def run() -> None:
            velocity = levers.velocity(pipeline.velocity)
            run_sampler = sampler(geometry, scale.steps, hoist=hoist)
            call = lambda: run_sampler.sample(velocity, clip.z_ref, clip.audio, clip.noise)  # noqa: E731
            repeats = 1 if name.startswith("float32") else scale.repeats
            with torch.no_grad():
                first = timed(call, device)
                reset_peak(device)
                seconds = interleaved({name: call}, device, repeats=repeats, warmup=0)[name]
            memory = peak_gib(device)
            note = f"first call {first:.3g} s" + (f"; peak {memory:.1f} GiB" if memory is not None else "")
            report.add(f"backbone s per video: {name}", seconds, "s", "", note)
            if not best or seconds < best["seconds"]:
                best.update(name=name, seconds=seconds, levers=levers, memory=memory)
        return run

    for name, (levers, hoist) in backbone_variants(device).items():
        if levers.compile and not scale.compile:
            report.add(f"backbone {name}: skipped", "compiling is off at this scale", "", "", "")
            continue
        section(report, f"backbone {name}", budget, 60 if levers.compile else 20, backbone(name, levers, hoist),
                scale.training_reserve)
    if not best:
        return
    goal = f"<= 2.0 s (H100), goal <= 1.0 s; READ: {READ_A100_SECONDS} s on an A100"
    report.add(f"backbone s per video, best ({best['name']})", best["seconds"], "s", goal,
               f"{READ_A100_SECONDS / best['seconds']:.2f}x faster than READ's A100 figure; "
               f"{flops / best['seconds'] / gemm:.2f} of the measured GEMM rate")
    if best["memory"] is not None:
        report.add("peak memory of sampling (best)", best["memory"], "GiB")
    fast = pipeline.with_speed(replace(best["levers"], overlap_decode=False))  # decode timed on its own
    run_sampler = sampler(geometry, scale.steps, hoist=True)
    image = torch.rand(3, pipeline.size, pipeline.size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    section(report, "end to end", budget, 45,
            lambda: phase_rows(report, fast, run_sampler, image, speech(CLIP_SECONDS), device, scale.repeats),
            scale.training_reserve)
    section(report, "first streamed clip", budget, 60,
            lambda: first_clip_rows(report, fast, run_sampler, image, 5.0, 60.0, device, scale.repeats),
            scale.training_reserve)
    section(report, "VAE decode in bf16", budget, 30, lambda: vae_bf16_row(report, pipeline, geometry, device),
            scale.training_reserve)


def vae_bf16_row(report: Report, pipeline: Any, geometry: Geometry, device: torch.device) -> None:
    """The VAE decode of one clip in float32 and with a copy of the decoder cast to bfloat16, side by side."""
    cast = copy.deepcopy(pipeline.vae)
    cast.model.to(torch.bfloat16)
    latents = torch.randn(1, geometry.channels, geometry.clip_frames, geometry.latent_size, geometry.latent_size,
                          device=device)
    with torch.no_grad():
        seconds = interleaved({"f32": lambda: pipeline.vae.decode(latents), "bf16": lambda: cast.decode(latents)},
                              device, 2)
    float32, bf16 = seconds["f32"], seconds["bf16"]
    report.add("VAE decode of one clip: float32 / bfloat16", float32 / bf16, "x", "",
               f"{float32:.3g} s vs {bf16:.3g} s")


def training_rows(report: Report, scale: Scale, device: torch.device) -> None:
    """One A2V training step (ANS noising, eq. 15 loss, AdamW) at the paper's clip, checkpointed, bf16 autocast."""
    geometry = scale.geometry
    net = build_net(scale.size, geometry, device, gradient_checkpointing=True).train()
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-5, fused=device.type == "cuda")
    ans = ANSProcess()
    clip = random_clip(geometry, geometry.clip_frames, device)
    z0 = torch.cat([clip.z_ref, clip.noise], dim=2)

    def step() -> None:
        noised = ans.forward_process(z0)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            v = net(noised.z_t, noised.t, clip.audio)
        loss = ans.loss(v, noised)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    first = timed(step, device)
    reset_peak(device)
    seconds = interleaved({"step": step}, device, repeats=max(2, scale.repeats - 1), warmup=0)["step"]
    memory = peak_gib(device)
    report.add("training step, batch 1, checkpointed, bf16 autocast, AdamW", seconds, "s", "",
               f"first step {first:.3g} s")
    if memory is not None:
        fits = "yes" if memory * GIB < 80e9 else "no"
        report.add("training step peak memory", memory, "GiB", "fits one 80 GB GPU?", f"fits: {fits}")
