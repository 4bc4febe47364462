"""``python -m readlit.bench backbone``: how close the A2V-DiT's forward comes to this machine's matrix-product rate.

The FLOPs of one Split-CFG forward (3 sequences of one clip) are counted exactly on the meta device
(:func:`~readlit.nn.a2v_dit.forward_flops`); over the forward's measured time they give the achieved FLOP/s, which
is held against a square matrix product's FLOP/s measured in the same run (:func:`~readlit.bench.timing.gemm_flops`).
The backbone's seconds per video are one clip's sampling (``steps`` Split-CFG steps), plain and with the fast preset.
"""

from __future__ import annotations

import torch

from readlit.bench.nets import Geometry, build_net, flops_per_forward, parameter_count, random_clip, sampler
from readlit.bench.report import Report
from readlit.bench.sampler import fast_preset, preset
from readlit.bench.timing import gemm_flops, interleaved

# Square GEMM sizes large enough to reach the device's rate, small enough to time quickly.
GEMM_SIZE = {"cpu": 1024, "cuda": 8192}


def bench_backbone(size: str, geometry: Geometry, steps: int, device: torch.device, repeats: int = 3,
                   levers: bool = True) -> Report:
    """Achieved over measured GEMM FLOP/s, and backbone seconds per video, plain and (with ``levers``) fast."""
    report = Report("backbone", f"backbone: A2V-DiT {size}, {device.type}",
                    {"size": size, "geometry": geometry.describe(), "steps": steps, "repeats": repeats,
                     "device": str(device)})
    net = build_net(size, geometry, device)
    flops = flops_per_forward(size, geometry, batch=3)
    report.add("parameters", parameter_count(size, geometry) / 1e6, "M")
    report.add("FLOPs of one Split-CFG forward (3 sequences)", flops / 1e9, "GFLOP", "", "meta-device count")
    clip = random_clip(geometry, geometry.clip_frames, device)
    z = torch.cat([clip.z_ref, clip.noise], dim=2).expand(3, -1, -1, -1, -1).contiguous()
    t = torch.rand(3, 1 + geometry.clip_frames, generator=torch.Generator().manual_seed(1)).to(device)
    audio = clip.audio.expand(3, -1, -1, -1).contiguous()
    with torch.no_grad():
        forward = interleaved({"forward": lambda: net(z, t, audio)}, device, repeats)["forward"]
        gemm = gemm_flops(device, torch.float32, GEMM_SIZE[device.type])
        report.add("achieved FLOP/s of one forward, float32", flops / forward / 1e9, "GFLOP/s", "",
                   f"{forward:.3g} s per forward")
        report.add("GEMM FLOP/s of this machine, float32", gemm / 1e9, "GFLOP/s", "",
                   f"{GEMM_SIZE[device.type]}² x {GEMM_SIZE[device.type]}² product")
        report.add("forward FLOP/s / GEMM FLOP/s", flops / forward / gemm, "x", ">= 0.5 (CPU, size s)")
        plain, fast = sampler(geometry, steps), sampler(geometry, steps, hoist=True)
        candidates = {"plain": lambda: plain.sample(net, clip.z_ref, clip.audio, clip.noise)}
        name = fast_preset(device)
        if levers:
            velocity = preset(name).velocity(net)
            candidates[name] = lambda: fast.sample(velocity, clip.z_ref, clip.audio, clip.noise)
        video = interleaved(candidates, device, repeats)
    report.add("backbone s per video (one clip), plain", video["plain"], "s", "",
               f"{steps} steps, Split-CFG; absolute times only from a GPU")
    if levers:
        report.add(f"backbone s per video (one clip), {name} preset", video[name], "s")
        report.add(f"{name} preset speed-up", video["plain"] / video[name], "x")
    return report.finish()
