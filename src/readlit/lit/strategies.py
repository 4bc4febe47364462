"""Lightning strategies a config cannot spell directly: FSDP with its wrapping units named by class path.

FSDP (``trainer=fsdp``) shards parameters, gradients and AdamW's state over the processes, gathering one wrapped
unit's parameters at a time; readlit wraps each transformer block (:class:`~readlit.nn.a2v_dit.A2VBlock`), so a
GPU holds 1/N of the model plus one block in full. Activation checkpointing per block is the A2V-DiT's own
(``model.net.gradient_checkpointing``, on for ltx2b), not FSDP's, so blocks are never recomputed twice.
"""

from __future__ import annotations

from hydra.utils import get_class
from lightning.pytorch.strategies import FSDPStrategy

from readlit.errors import ConfigError


def fsdp(wrap: list[str], sharding_strategy: str = "FULL_SHARD", state_dict_type: str = "full",
         cpu_offload: bool = False, activation_checkpointing: bool = False) -> FSDPStrategy:
    """Lightning's FSDP strategy wrapping every module of the classes named in ``wrap``.

    Args:
        wrap: class paths of the FSDP units (e.g. ``readlit.nn.a2v_dit.A2VBlock``).
        sharding_strategy: ``FULL_SHARD`` (parameters, gradients, optimizer state), ``SHARD_GRAD_OP`` (gradients
            and optimizer state) or ``HYBRID_SHARD`` (full within a node, replicated across nodes).
        state_dict_type: ``full``: checkpoints are one file with readlit's header, as on one GPU.
        cpu_offload: keep sharded parameters in CPU memory between uses.
        activation_checkpointing: FSDP's own per-unit checkpointing (leave off when the net checkpoints itself).
    """
    try:
        units = {get_class(path) for path in wrap}
    except (ImportError, ValueError) as err:
        raise ConfigError(f"trainer.strategy.wrap={list(wrap)}: {err}") from err
    if state_dict_type not in ("full", "sharded"):
        raise ConfigError(f"trainer.strategy.state_dict_type={state_dict_type} is not full or sharded")
    return FSDPStrategy(auto_wrap_policy=units, sharding_strategy=sharding_strategy, state_dict_type=state_dict_type,
                        cpu_offload=cpu_offload, activation_checkpointing_policy=units if activation_checkpointing
                        else None)
