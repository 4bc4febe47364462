"""Helpers shared by the tests: the real train config, composed with small overrides."""

import importlib.util
from pathlib import Path
from types import ModuleType

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


def load_experiment(name: str) -> ModuleType:
    """``experiments/<name>/run.py`` as a module (experiments are scripts, not part of the package)."""
    path = Path(__file__).resolve().parents[1] / "experiments" / name / "run.py"
    spec = importlib.util.spec_from_file_location(f"experiments_{name}_run", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
