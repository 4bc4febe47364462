"""Config values as plain Python types: Hydra hands DictConfig/ListConfig to constructors, files need plain ones."""

from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf


def plain(value: Any) -> Any:
    """``value`` with every OmegaConf container turned into dicts and lists (anything else unchanged)."""
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value
