"""Timing side by side: candidates interleaved round-robin, medians, and the machine's own GEMM rate.

On a shared machine the speed drifts by a factor of several within minutes; timing A then B would fold that drift
into the ratio. Interleaving A, B, A, B, ... exposes both to the same drift, and the median drops the outliers.
On CUDA every call is bracketed by synchronisations, so a time is the work's and not its launch's.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(call: Callable[[], Any], device: torch.device) -> float:
    """Seconds of one call, its device work included."""
    synchronize(device)
    start = time.perf_counter()
    call()
    synchronize(device)
    return time.perf_counter() - start


def interleaved(candidates: dict[str, Callable[[], Any]], device: torch.device, repeats: int = 3,
                warmup: int = 1) -> dict[str, float]:
    """Median seconds of each candidate over ``repeats`` rounds, after ``warmup`` untimed rounds.

    Every round calls every candidate once, in order, so all of them see the machine in the same state.
    """
    for _ in range(warmup):
        for call in candidates.values():
            timed(call, device)
    seconds: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, call in candidates.items():
            seconds[name].append(timed(call, device))
    return {name: statistics.median(values) for name, values in seconds.items()}


def gemm_flops(device: torch.device, dtype: torch.dtype, size: int, repeats: int = 5) -> float:
    """FLOP/s of a square matrix product of ``size`` on random data (median of ``repeats``, after one warm-up).

    This is the machine's ceiling for the DiT's linear layers, measured, not read off a datasheet.
    """
    generator = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(size, size, device=device, dtype=dtype, generator=generator)
    b = torch.randn(size, size, device=device, dtype=dtype, generator=generator)
    seconds = interleaved({"gemm": lambda: a @ b}, device, repeats=repeats)["gemm"]
    return 2 * size**3 / seconds
