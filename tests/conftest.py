"""Shared fixtures."""

from collections.abc import Callable
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from tests.helpers import compose_train


@pytest.fixture
def train_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """``train_cfg(*overrides)`` -> composed config writing under tmp_path."""
    yield lambda *overrides: compose_train(list(overrides), tmp_path)
    GlobalHydra.instance().clear()
