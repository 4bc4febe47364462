"""``python -m readlit.bench sampler``: what the sampler's choices cost, side by side, at any net size.

- Split-CFG as one batched forward (3B sequences) vs one forward per branch (``sampler.guidance.batched``);
- Joint-CFG vs Split-CFG per step (paper: Split ≈ 1.5x Joint, three branches against two);
- ANS on a long video: seconds per latent frame for 8 clips vs 1 clip (ideally only the overlap frame is extra);
- each speed lever (:mod:`readlit.sampling.speed`, ``sampler.hoist``) against the plain path on one clip: its
  speed-up and how far its latents are from the plain path's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch
from omegaconf import OmegaConf

from readlit.bench.nets import Geometry, build_net, random_clip, sampler
from readlit.bench.report import Report
from readlit.bench.timing import interleaved, timed
from readlit.resolvers import PROJECT_ROOT
from readlit.sampling.ans_sampler import padded_length
from readlit.sampling.speed import SpeedLevers

LONG_CLIPS = 8


def preset(name: str) -> SpeedLevers:
    """The levers of ``conf/speed/<name>.yaml``."""
    cfg = OmegaConf.to_container(OmegaConf.load(PROJECT_ROOT / "conf" / "speed" / f"{name}.yaml"))
    cfg.pop("_target_")
    return SpeedLevers(**cfg)


def fast_preset(device: torch.device) -> str:
    """``fast`` on CUDA, ``fast_cpu`` elsewhere."""
    return "fast" if device.type == "cuda" else "fast_cpu"


def relative_error(value: torch.Tensor, reference: torch.Tensor) -> float:
    """‖value − reference‖ / ‖reference‖ in float64."""
    return float((value.double() - reference.double()).norm() / reference.double().norm())


def lever_candidates(net: torch.nn.Module, device: torch.device) -> dict[str, tuple[SpeedLevers, bool]]:
    """Name -> (levers, hoist) of every lever this device can pull, each alone, and the fast preset."""
    candidates = {"plain": (SpeedLevers(), False), "hoist": (SpeedLevers(), True),
                  "sdpa math": (SpeedLevers(sdpa_backend="math"), False),
                  "sdpa flash": (SpeedLevers(sdpa_backend="flash"), False),
                  "bf16 autocast": (SpeedLevers(autocast="bfloat16"), False),
                  "compile": (SpeedLevers(compile=True), False)}
    if device.type == "cuda":
        candidates["sdpa efficient"] = (SpeedLevers(sdpa_backend="efficient"), False)
        candidates["sdpa cudnn"] = (SpeedLevers(sdpa_backend="cudnn"), False)
        candidates["compile + CUDA graphs"] = (SpeedLevers(compile=True, cuda_graphs=True), False)
    name = fast_preset(device)
    candidates[f"{name} preset"] = (preset(name), True)
    return candidates


def bench_sampler(size: str, geometry: Geometry, steps: int, device: torch.device, repeats: int = 3,
                  levers: bool = True) -> Report:
    """The table of this module's docstring, every ratio from interleaved timings in this one run."""
    report = Report("sampler", f"sampler: A2V-DiT {size}, {steps} steps, {device.type}",
                    {"size": size, "geometry": geometry.describe(), "steps": steps, "repeats": repeats,
                     "device": str(device)})
    net = build_net(size, geometry, device)
    with torch.no_grad():
        cfg_rows(report, net, geometry, device, repeats)
        ans_rows(report, net, geometry, steps, device, repeats)
        if levers:
            lever_rows(report, net, geometry, steps, device, repeats)
    return report.finish()


def cfg_rows(report: Report, net: torch.nn.Module, geometry: Geometry, device: torch.device, repeats: int) -> None:
    """One guided step of one clip: batched vs sequential Split-CFG, and Split vs Joint."""
    clip = random_clip(geometry, geometry.clip_frames, device)
    z = torch.cat([clip.z_ref, clip.noise], dim=2)
    t = torch.rand(1, 1 + geometry.clip_frames, generator=torch.Generator().manual_seed(1)).to(device)
    t[:, 0] = 0.0

    def step(mode: str, batched: bool) -> Callable[[], Any]:
        guidance = sampler(geometry, 1, mode, batched).guidance
        return lambda: guidance(net, z, t, clip.audio)

    seconds = interleaved({"split batched": step("split", True), "split sequential": step("split", False),
                           "joint batched": step("joint", True)}, device, repeats)
    batched, sequential, joint = seconds["split batched"], seconds["split sequential"], seconds["joint batched"]
    report.add("Split-CFG: 3 sequential forwards / 1 batched forward", sequential / batched, "x",
               ">= 1.5 (CPU, size s)", f"{sequential:.3g} s vs {batched:.3g} s per step")
    report.add("Split-CFG / Joint-CFG per step", batched / joint, "x", "≈ 1.5 (paper)",
               f"{batched:.3g} s vs {joint:.3g} s per step, both batched")


def ans_rows(report: Report, net: torch.nn.Module, geometry: Geometry, steps: int, device: torch.device,
             repeats: int) -> None:
    """Seconds per latent frame of an 8-clip video over a 1-clip video."""
    f = geometry.clip_frames
    long_frames = padded_length(f + (LONG_CLIPS - 1) * (f - 1), f)
    one, long = random_clip(geometry, f, device), random_clip(geometry, long_frames, device)
    ans = sampler(geometry, steps)
    seconds = interleaved({"1 clip": lambda: ans.sample(net, one.z_ref, one.audio, one.noise),
                           f"{LONG_CLIPS} clips": lambda: ans.sample(net, long.z_ref, long.audio, long.noise)},
                          device, repeats)
    per_frame_one, per_frame_long = seconds["1 clip"] / f, seconds[f"{LONG_CLIPS} clips"] / long_frames
    ideal = LONG_CLIPS * f / long_frames
    report.add(f"ANS: s per latent frame, {LONG_CLIPS} clips / 1 clip", per_frame_long / per_frame_one, "x",
               f"{ideal:.2f} ideal ({LONG_CLIPS}·f/N; f/(f-1) = {f / (f - 1):.2f} as clips grow)",
               f"{long_frames} frames in {seconds[f'{LONG_CLIPS} clips']:.3g} s vs {f} in {seconds['1 clip']:.3g} s")


def lever_rows(report: Report, net: torch.nn.Module, geometry: Geometry, steps: int, device: torch.device,
               repeats: int) -> None:
    """One clip sampled with each lever: plain time over the lever's, and the distance of its latents."""
    clip = random_clip(geometry, geometry.clip_frames, device)
    calls, outputs, first_call = {}, {}, {}
    for name, (levers, hoist) in lever_candidates(net, device).items():
        velocity, clip_sampler = levers.velocity(net), replace(sampler(geometry, steps), hoist=hoist)
        calls[name] = (lambda s=clip_sampler, v=velocity: s.sample(v, clip.z_ref, clip.audio, clip.noise))
        first_call[name] = timed(lambda n=name: outputs.__setitem__(n, calls[n]()), device)
    seconds = interleaved(calls, device, repeats, warmup=0)
    plain = seconds["plain"]
    for name in calls:
        if name == "plain":
            report.add("plain path: one clip", plain, "s", "", f"{steps} steps, Split-CFG batched")
            continue
        note = f"latents vs plain: rel. error {relative_error(outputs[name], outputs['plain']):.1e}"
        if "compile" in name or "preset" in name:
            note += f"; first call {first_call[name]:.3g} s (compiling)"
        report.add(f"lever {name}: plain / lever, one clip", plain / seconds[name], "x", "> 1 pays", note)
