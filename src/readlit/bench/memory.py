"""``python -m readlit.bench memory``: training memory per GPU of an A2V-DiT size on 1, 8, 64 GPUs, computed.

Nothing is allocated: the model is built on the meta device. Parameters, gradients and AdamW state follow from the
exact parameter count (bf16 mixed precision keeps float32 weights, float32 gradients and two float32 moments per
trainable weight); FSDP's full sharding divides them by the GPU count, DDP does not. Activations are the bytes
autograd saves for the backward pass, summed by a saved-tensor hook over one forward of the real graph at the
clip's shape, in bfloat16:

- with per-block checkpointing, a block keeps only its input (plus what is computed outside the blocks, such as
  the hoisted audio keys and values), and the backward pass recomputes one block at a time: the peak holds what the
  checkpointed forward saved and one block's own saved tensors;
- attention saves what the fused kernels keep (q, k, v, output and the float32 log-sum-exp), not the math path's
  L x L probabilities, which is what the meta device would otherwise run;
- on one GPU, autocast keeps a bfloat16 copy of every weight it used until the forward ends; under FSDP
  (Lightning's bf16-mixed: ``param_dtype`` bfloat16) only the gathered blocks exist in bfloat16, one at a time
  (two with prefetching).

Batch 1 per GPU; the VAE is not on the GPU (training reads the latent cache).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from unittest import mock

import torch

from readlit.bench.nets import Geometry, net_config
from readlit.bench.report import Report
from readlit.nn.a2v_dit import A2VDiT

GB = 1e9
FLOAT32, BFLOAT16 = 4, 2


class _FusedAttention(torch.autograd.Function):
    """Shapes and saved tensors of a fused attention kernel (flash / memory-efficient), for counting only."""

    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        out = q.new_empty(*q.shape[:-1], v.shape[-1])
        ctx.save_for_backward(q, k, v, out, q.new_empty(q.shape[:-1], dtype=torch.float32))
        return out


def _fused_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: Any = None) -> torch.Tensor:
    return _FusedAttention.apply(q, k, v)


def saved_bytes(run: Callable[[], Any], parameters: list[torch.Tensor]) -> int:
    """Bytes of the tensors autograd saves for backward while ``run()`` executes (meta tensors welcome).

    Parameters (and views of them) that autograd keeps are not activations: they are counted once, as weights.
    """
    weights, total = {id(p) for p in parameters}, 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal total
        if id(tensor) not in weights and id(tensor._base) not in weights:
            total += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor), \
            mock.patch.object(torch.nn.functional, "scaled_dot_product_attention", _fused_attention):
        run()
    return total


def activation_bytes(size: str, geometry: Geometry, dtype: torch.dtype = torch.bfloat16) -> dict[str, int]:
    """Saved bytes of one forward (batch 1) without and with per-block checkpointing, and the layer count."""
    saved = {flag: forward_saved_bytes(size, geometry, dtype, flag) for flag in (False, True)}
    return {"whole": saved[False], "checkpointed": saved[True], "layers": net_config(size, geometry)["num_layers"]}


def forward_saved_bytes(size: str, geometry: Geometry, dtype: torch.dtype, checkpointing: bool) -> int:
    """Activations saved by one forward of a meta-device net cast to ``dtype``."""
    with torch.device("meta"):
        net = A2VDiT(**net_config(size, geometry, gradient_checkpointing=checkpointing)).to(dtype)
        frames, side = 1 + geometry.clip_frames, geometry.latent_size
        z = torch.zeros(1, geometry.channels, frames, side, side, dtype=dtype)
        t = torch.zeros(1, frames)
        audio = torch.zeros(1, frames - 1, geometry.audio_tokens, geometry.audio_dim, dtype=dtype)
        return saved_bytes(lambda: net(z, t, audio), list(net.parameters()))


def bench_memory(size: str, geometry: Geometry, gpus: tuple[int, ...] = (1, 8, 64)) -> Report:
    """The table of this module's docstring, one row per term and GPU count."""
    report = Report(f"memory_{size}", f"training memory per GPU: A2V-DiT {size}, batch 1 per GPU, bf16 mixed",
                    {"size": size, "geometry": geometry.describe(), "gpus": list(gpus)})
    with torch.device("meta"):
        net = A2VDiT(**net_config(size, geometry))
    params = sum(p.numel() for p in net.parameters())
    block_params = sum(p.numel() for p in net.transformer_blocks[0].parameters())
    acts = activation_bytes(size, geometry)
    recomputed = (acts["whole"] - acts["checkpointed"]) / acts["layers"]  # one block's own saved tensors
    checkpointed = acts["checkpointed"] + recomputed
    report.add("parameters", params / 1e9, "B", "", f"{block_params / 1e6:.1f} M per block, {acts['layers']} blocks")
    report.add("activations without checkpointing", acts["whole"] / GB, "GB", "", "saved for backward, bf16")
    report.add("activations with per-block checkpointing", checkpointed / GB, "GB", "",
               f"kept through the forward ({acts['checkpointed'] / GB:.2f} GB) + one block recomputed in the "
               f"backward ({recomputed / GB:.2f} GB)")
    for count in gpus:
        shard = 1 if count == 1 else count
        weights, grads, adam = (params * FLOAT32 / shard, params * FLOAT32 / shard, 2 * params * FLOAT32 / shard)
        copies = params * BFLOAT16 if count == 1 else 2 * block_params * BFLOAT16
        total = weights + grads + adam + copies + checkpointed
        strategy = "one GPU" if count == 1 else f"FSDP full shard over {count}"
        report.add(f"{count} GPU{'s' if count > 1 else ''}: weights + grads + AdamW", (weights + grads + adam) / GB,
                   "GB", "", f"{strategy}: {weights / GB:.2f} + {grads / GB:.2f} + {adam / GB:.2f}")
        report.add(f"{count} GPU{'s' if count > 1 else ''}: total per GPU", total / GB, "GB",
                   "fits 80 GB?", f"{'yes' if total < 80 * GB else 'no'}; + {checkpointed / GB:.2f} activations + "
                   + (f"{copies / GB:.2f} autocast's bf16 weights" if count == 1 else
                      f"{copies / GB:.2f} two gathered blocks in bf16"))
    return report.finish()
