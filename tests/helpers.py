"""Helpers shared by the tests: the real train config, composed with small overrides."""

from pathlib import Path

from omegaconf import DictConfig

import readlit  # noqa: F401  (registers the config resolvers)
from readlit.utils.compose import compose_app

# Small enough for seconds per run on a 2-core CPU, big enough to learn something.
TINY_SYNTHETIC = [
    "data.identities={train:4,val:2,test:2}",
    "data.sessions_per_identity=1",
    "data.session_seconds=4",
    "data.batch_size=8",
]


def compose_train(overrides: list[str], output_dir: Path) -> DictConfig:
    """Compose ``conf/train.yaml`` as the CLI would, with every output under ``output_dir``."""
    return compose_app("train", overrides, output_dir)
