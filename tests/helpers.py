"""Helpers shared by the tests: the real train config, composed with small overrides."""

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

import readlit  # noqa: F401  (registers the config resolvers)
from readlit.cli import CONFIG_DIR

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


def compose_app(config_name: str, overrides: list[str], output_dir: Path) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` as the CLI would, with every output under ``output_dir``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.root_dir = str(output_dir)
        cfg.hydra.runtime.output_dir = str(output_dir / "run")
        cfg.hydra.job.num = 0
    HydraConfig().set_config(cfg)
    return cfg
