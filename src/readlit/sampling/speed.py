"""Speed levers of sampling, each a config switch (config group ``speed``), each measured by ``readlit.bench``.

- ``compile``: ``torch.compile`` of the DiT (inductor); ``cuda_graphs`` adds CUDA graphs (mode
  ``reduce-overhead``): a clip's shapes are the same at every step and in every clip, so one graph replays.
- ``autocast``: run the DiT under ``torch.autocast`` in this dtype (``bfloat16``); the velocity is handed back in
  the latents' dtype, so the sampler's Euler steps stay in float32.
- ``sdpa_backend``: the fused attention kernel (``math``, ``flash``, ``efficient``, ``cudnn``; null lets PyTorch
  pick); on the CPU only ``math`` and ``flash`` exist.
- ``overlap_decode``: while the VAE decodes clip j, the sampler already denoises clip j + 1
  (:meth:`~readlit.pipeline.TalkingHeadPipeline.stream`; ``pipeline.with_speed(levers)`` pulls them all).

Work that depends only on the clip (RoPE tables, audio and text keys/values) is hoisted out of the step loop by the
sampler (``sampler.hoist``). Presets: ``speed=plain`` (all off), ``speed=fast`` (CUDA) and ``speed=fast_cpu``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from readlit.errors import ConfigError

SDPA_BACKENDS = {"math": SDPBackend.MATH, "flash": SDPBackend.FLASH_ATTENTION,
                 "efficient": SDPBackend.EFFICIENT_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION}
CPU_SDPA_BACKENDS = ("math", "flash")
AUTOCAST_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class SpeedLevers:
    """Which speed levers are pulled (config group ``speed``); all off is the plain path.

    Args:
        compile: ``torch.compile`` the DiT for sampling.
        cuda_graphs: with ``compile``, replay CUDA graphs (``mode="reduce-overhead"``); CUDA only.
        autocast: null, ``bfloat16`` or ``float16``: the DiT runs under autocast in that dtype.
        sdpa_backend: null (PyTorch picks) or one of ``math``, ``flash``, ``efficient``, ``cudnn``.
        overlap_decode: decode clip j while clip j + 1 is denoised, when streaming.
    """

    compile: bool = False
    cuda_graphs: bool = False
    autocast: str | None = None
    sdpa_backend: str | None = None
    overlap_decode: bool = False

    def __post_init__(self) -> None:
        if self.autocast is not None and self.autocast not in AUTOCAST_DTYPES:
            raise ConfigError(f"speed.autocast={self.autocast} is not null or one of {sorted(AUTOCAST_DTYPES)}")
        if self.sdpa_backend is not None and self.sdpa_backend not in SDPA_BACKENDS:
            raise ConfigError(f"speed.sdpa_backend={self.sdpa_backend} is not null or one of "
                              f"{sorted(SDPA_BACKENDS)}")
        if self.cuda_graphs and not self.compile:
            raise ConfigError("speed.cuda_graphs=true replays compiled graphs: set speed.compile=true too")

    def check_device(self, device: torch.device | str) -> None:
        """Refuse levers the device cannot pull (CUDA graphs or a CUDA-only attention kernel on the CPU)."""
        kind = torch.device(device).type
        if kind == "cuda":
            return
        if self.cuda_graphs:
            raise ConfigError(f"speed.cuda_graphs=true needs a CUDA device, not {kind}; set it to false")
        if self.sdpa_backend is not None and self.sdpa_backend not in CPU_SDPA_BACKENDS:
            raise ConfigError(f"speed.sdpa_backend={self.sdpa_backend} needs a CUDA device; on {kind} use one of "
                              f"{CPU_SDPA_BACKENDS} or null")

    @property
    def plain(self) -> bool:
        """True when no lever touches the network's forward."""
        return not self.compile and self.autocast is None and self.sdpa_backend is None

    def velocity(self, net: nn.Module) -> nn.Module:
        """``net`` itself when no lever touches its forward, else :class:`FastVelocity` around it."""
        return net if self.plain else FastVelocity(net, self)

    def context(self, device_type: str) -> contextlib.ExitStack:
        """The autocast and attention-kernel contexts the DiT runs in."""
        stack = contextlib.ExitStack()
        if self.autocast is not None:
            stack.enter_context(torch.autocast(device_type, dtype=AUTOCAST_DTYPES[self.autocast]))
        if self.sdpa_backend is not None:
            stack.enter_context(sdpa_kernel(SDPA_BACKENDS[self.sdpa_backend]))
        return stack


class FastVelocity(nn.Module):
    """The DiT with speed levers pulled; called and prepared as the DiT is (:class:`~readlit.sampling.cfg.Velocity`).

    The compiled forward is built on first use; ``net`` keeps its own parameters (nothing is copied).
    """

    def __init__(self, net: nn.Module, levers: SpeedLevers):
        super().__init__()
        self.net, self.levers = net, levers
        self._forward: Any = None

    def forward(self, z: torch.Tensor, t: torch.Tensor, audio: torch.Tensor | None = None,
                context: Any = None) -> torch.Tensor:
        """v (B, C, f, h, w) in z's dtype; arguments as :meth:`~readlit.nn.a2v_dit.A2VDiT.forward`."""
        if self._forward is None:
            self._forward = self._build()
        if self.levers.cuda_graphs:
            # Each step is a new graph replay; the previous step's output has been consumed by then.
            torch.compiler.cudagraph_mark_step_begin()
        with self.levers.context(z.device.type):
            v = self._forward(z, t, audio, context=context)
        return v.to(z.dtype)

    def prepare(self, audio: torch.Tensor, height: int, width: int) -> Any:
        """The DiT's clip context, computed under the same autocast and kernels as the forwards."""
        with self.levers.context(audio.device.type):
            return self.net.prepare(audio, height, width)

    def _build(self) -> Any:
        if not self.levers.compile:
            return self.net
        mode = "reduce-overhead" if self.levers.cuda_graphs else None
        return torch.compile(self.net, mode=mode, dynamic=False)
