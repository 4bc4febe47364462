"""Hydra entry points that report input problems on one line and exit with code 2.

Hydra prints composition errors (unknown config group option, unknown key) over several lines with a
hint about HYDRA_FULL_ERROR and exits with 1. readlit composes the command line once up front, with the
first value of every sweep, so those problems are reported the readlit way before any output folder
exists. Problems found while a job runs (a missing data folder, a wrong checkpoint) raise ReadlitError;
the job's half-made output folder is removed unless it already holds checkpoints.
"""

import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, InstantiationException
from omegaconf import DictConfig
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from readlit.errors import ReadlitError, qualify
from readlit.resolvers import PROJECT_ROOT

CONFIG_DIR = PROJECT_ROOT / "conf"
# Hydra's instantiate ends its error messages with the config node the failing object was built from.
_FULL_KEY = re.compile(r"full_key: (\S+)\s*$")
# Hydra flags that take a value in the next argument.
_VALUE_FLAGS = {"--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd", "--cfg", "-c",
                "--package", "-p", "--info", "--experimental-rerun"}


def fail(message: str) -> NoReturn:
    """Print ``error: message`` on one line and exit with code 2."""
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    raise SystemExit(2)


def _one_line(err: Exception) -> str:
    """Hydra's message without the config search path dump, on one line."""
    text = str(err).split("Config search path")[0]
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def _overrides(argv: list[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in _VALUE_FLAGS:
            skip = True
        elif not arg.startswith("-"):
            out.append(arg)
    return out


def _first_of_sweeps(overrides: list[str]) -> list[str]:
    """One plain override per argument: the first value of a sweep; Optuna-style intervals are dropped."""
    plain = []
    for override in OverridesParser.create().parse_overrides(overrides):
        if not override.is_sweep_override():
            plain.append(override.input_line)
            continue
        try:
            first = next(iter(override.sweep_string_iterator()))
        except (HydraException, TypeError, ValueError):
            continue
        plain.append(f"{override.get_key_element()}={first}")
    return plain


def check_composes(config_name: str, argv: list[str]) -> None:
    """Compose the config the command line asks for; exit 2 with one line if it cannot be composed."""
    if not CONFIG_DIR.is_dir():
        fail(f"readlit's configs are not at {CONFIG_DIR}: readlit runs from a clone, installed editable "
             "(pip install -e . in the clone, as make does)")
    try:
        overrides = _first_of_sweeps(_overrides(argv))
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as err:
        fail(f"{_one_line(err)} (see `python -m readlit.train --help` for the config groups)")
    finally:
        GlobalHydra.instance().clear()


def _remove_output_dir_without_checkpoints() -> None:
    if not HydraConfig.initialized():
        return
    out = Path(HydraConfig.get().runtime.output_dir)
    if out.is_dir() and not any(out.glob("**/*.ckpt")):
        shutil.rmtree(out, ignore_errors=True)


def user_error(err: BaseException | None) -> str | None:
    """The message of the input problem behind ``err``, if it is one, with its parameter named by config key.

    Hydra's instantiate wraps errors raised in constructors and reports the config node (``full_key``) the object
    was built from, so the whole cause chain is searched and the innermost node qualifies the message.
    """
    node = ""
    while err is not None:
        if isinstance(err, ReadlitError):
            return qualify(node, str(err))
        if isinstance(err, MissingMandatoryValue):
            key = err.full_key or "a required key"
            return f"config: {key} is required (it is ??? in the config); set {key}=... on the command line"
        if isinstance(err, InstantiationException):
            found = _FULL_KEY.search(str(err))
            node = found.group(1) if found else node
        err = err.__cause__ or err.__context__
    return None


def run_tool(run: Callable[[], Any]) -> Any:
    """Run a small tool's work (an argparse ``main``), turning input problems into one line and exit code 2."""
    try:
        return run()
    except ReadlitError as err:
        fail(str(err))


def run_task(task: Callable[[DictConfig], Any], cfg: DictConfig) -> Any:
    """Run a Hydra task, turning input problems into one line and exit code 2."""
    try:
        return task(cfg)
    except (HydraException, OmegaConfBaseException, ReadlitError) as err:
        message = user_error(err)
        if message is None:
            raise
        _remove_output_dir_without_checkpoints()
        fail(message)
