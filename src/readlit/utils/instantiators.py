"""Build lists of objects (callbacks, loggers) from config groups of ``_target_`` nodes."""

from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig


def instantiate_group(cfg: DictConfig | None) -> list[Any]:
    """Instantiate every ``_target_`` node of a group such as ``cfg.callbacks``; empty for None."""
    if not cfg:
        return []
    return [instantiate(node) for node in cfg.values() if isinstance(node, DictConfig) and "_target_" in node]
