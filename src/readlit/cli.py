"""Hydra entry points that report input problems on one line and exit with code 2.

Hydra prints composition errors (unknown config group option, unknown key) over several lines with a
hint about HYDRA_FULL_ERROR and exits with 1. readlit composes the command line up front, once per value of
every sweep, and checks what is cheap to check (the entry point's ``check``), so those problems are reported the
readlit way before any output folder exists and before a sweep's first job trains. Problems found while a job
runs (a missing data folder, a wrong checkpoint) raise ReadlitError; the job's half-made output folder is removed
unless it already holds checkpoints.
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
from omegaconf import DictConfig, open_dict
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from readlit import checks
from readlit.errors import ReadlitError, leading_parameter, qualify
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


def _quoting_hint(argv: list[str], message: str) -> str:
    """Advice for an override Hydra could not parse: most often a path with spaces or symbols left unquoted."""
    stray = [arg for arg in _overrides(argv) if "=" not in arg]
    if stray:
        return (f"{stray[0]!r} is not key=value: quote a value with spaces, e.g. 'out=\"my video.mp4\"' "
                "(the shell needs the outer quotes, Hydra the inner ones)")
    if "LexerNoViableAltException" in message or "mismatched input" in message or "no viable alternative" in message:
        return ("quote a value with spaces or symbols, e.g. 'out=\"my video ✓.mp4\"' (the shell needs the outer "
                "quotes, Hydra the inner ones)")
    return "see --help for the config groups"


def _unreadable(argv: list[str], err: Exception) -> str:
    """Hydra's parse error, led by the override it could not read (its own message does not name it)."""
    for override in _overrides(argv):
        try:
            OverridesParser.create().parse_overrides([override])
        except HydraException:
            return f"cannot read the override {override}: {_one_line(err)}"
    return _one_line(err)


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


def _composed(config_name: str, overrides: list[str]) -> DictConfig:
    """The config the overrides compose to, with Hydra's runtime set so that ``${hydra:...}`` resolves."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        # Never resolved from hydra.run.dir here: that would create the run folder (resolvers.unique_dir).
        cfg.hydra.runtime.output_dir = str(Path(cfg.paths.log_dir) / str(cfg.task_name) / "pending")
        cfg.hydra.job.num = 0
    HydraConfig().set_config(cfg)
    return cfg


def _sweep_values(argv: list[str]) -> list[list[str]]:
    """The override lists to check: the first value of every sweep, then each other value of one sweep at a time
    (the others at their first). An Optuna interval has no values to list and is left out."""
    choices: list[list[str]] = []
    for override in OverridesParser.create().parse_overrides(_overrides(argv)):
        if not override.is_sweep_override():
            choices.append([override.input_line])
            continue
        try:
            values = list(override.sweep_string_iterator())
        except (HydraException, TypeError, ValueError):
            values = []
        choices.append([f"{override.get_key_element()}={value}" for value in values])
    lists = [[values[0] for values in choices if values]]
    for index, values in enumerate(choices):
        for value in values[1:]:
            lists.append([value if i == index else other[0] for i, other in enumerate(choices) if other])
    return lists


def _check_output_folders(cfg: DictConfig, multirun: bool) -> None:
    """The folder runs go to must be writable: ``paths.root_dir`` and a run or sweep folder set on the command line
    (the default one is made by the unique_dir resolver when the run starts, never here)."""
    checks.writable_folder("paths.root_dir", cfg.paths.root_dir)
    key = "sweep" if multirun else "run"
    node = cfg.hydra[key]._get_node("dir")
    if "unique_dir" not in str(node._value()):
        checks.writable_folder(f"hydra.{key}.dir", cfg.hydra[key].dir)


def swept_keys(argv: list[str]) -> set[str]:
    """The keys a multirun command line sweeps (``model.optimizer.lr=1e-4,3e-4`` -> ``model.optimizer.lr``)."""
    try:
        parsed = OverridesParser.create().parse_overrides(_overrides(argv))
    except HydraException:
        return set()
    return {override.get_key_element().lstrip("+~") for override in parsed if override.is_sweep_override()}


def check_composes(config_name: str, argv: list[str], check: Callable[[DictConfig], Any] | None = None) -> None:
    """Compose the config the command line asks for and ``check`` it; exit 2 with one line if either fails.

    Every value of a sweep is composed and checked before the first job starts, so a bad second value is reported
    before the first job trains. ``check`` builds what is cheap to build (datamodules, callbacks ...).
    """
    if not CONFIG_DIR.is_dir():
        fail(f"readlit's configs are not at {CONFIG_DIR}: readlit runs from a clone, installed editable "
             "(pip install -e . in the clone, as make does)")
    try:
        try:
            lists = _sweep_values(argv)
        except (HydraException, OmegaConfBaseException) as err:
            fail(f"{_unreadable(argv, err)} ({_quoting_hint(argv, str(err))})")
        for overrides in lists:
            try:
                cfg = _composed(config_name, overrides)
            except (HydraException, OmegaConfBaseException) as err:
                fail(f"{_one_line(err)} ({_quoting_hint(argv, str(err))})")
            try:
                _check_output_folders(cfg, multirun="-m" in argv or "--multirun" in argv)
                if check is not None:
                    check(cfg)
            except (HydraException, OmegaConfBaseException, ReadlitError) as err:
                message = user_error(err, cfg)
                if message is None:
                    raise
                fail(message)
    finally:
        GlobalHydra.instance().clear()


def _remove_output_dir_without_checkpoints() -> None:
    if not HydraConfig.initialized():
        return
    out = Path(HydraConfig.get().runtime.output_dir)
    if out.is_dir() and not any(out.glob("**/*.ckpt")):
        shutil.rmtree(out, ignore_errors=True)


# A config value that is only a reference to another node: ``model.vae: ${vae}``.
_REFERENCE = re.compile(r"^\$\{([A-Za-z_][\w.]*)\}$")


def source_key(cfg: DictConfig | None, key: str) -> str:
    """The key a user sets for ``key``: a node that only references another (``model.vae: ${vae}``) is named by
    the node it references (``model.vae.pretrained`` -> ``vae.pretrained``)."""
    if cfg is None or not key:
        return key
    parts = key.split(".")
    node: Any = cfg
    for index, part in enumerate(parts):
        child = node._get_node(part) if isinstance(node, DictConfig) else None
        if child is None:
            return key
        if child._is_interpolation():
            found = _REFERENCE.match(str(child._value()))
            return source_key(cfg, ".".join([found.group(1), *parts[index + 1:]])) if found else key
        node = child
    return key


def _runtime_key(cfg: DictConfig, key: str) -> str:
    """The config key of a parameter named by a message raised outside any instantiate (at run time): the one
    node of the config, after references are followed, whose path ends with ``key``; else ``key`` itself."""
    first = key.split(".")[0]
    found: set[str] = set()

    def walk(node: DictConfig, path: str) -> None:
        for name in node:
            if path == "" and name == "hydra":
                continue
            where = f"{path}.{name}" if path else str(name)
            if name == first:
                found.add(source_key(cfg, f"{path}.{key}" if path else key))
            child = node._get_node(name)
            if isinstance(child, DictConfig) and not child._is_interpolation() and where.count(".") < 3:
                walk(child, where)

    walk(cfg, "")
    return found.pop() if len(found) == 1 else key


def user_error(err: BaseException | None, cfg: DictConfig | None = None) -> str | None:
    """The message of the input problem behind ``err``, if it is one, with its parameter named by config key.

    Hydra's instantiate wraps errors raised in constructors and reports the config node (``full_key``) the object
    was built from, so the whole cause chain is searched and the innermost node qualifies the message; with the
    composed ``cfg``, a node that only references another is named by the node a user sets.
    """
    node = ""
    while err is not None:
        if isinstance(err, ReadlitError):
            message = qualify(node, str(err))
            key = leading_parameter(message)
            if key is None or cfg is None:
                return message
            # A key the config has at its top is a config key; any other is a parameter found in the tree.
            named = source_key(cfg, key) if key.split(".")[0] in cfg else _runtime_key(cfg, key)
            return named + message[len(key):]
        if isinstance(err, MissingMandatoryValue):
            key = source_key(cfg, err.full_key) or "a required key"
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
        message = user_error(err, cfg)
        if message is None:
            raise
        _remove_output_dir_without_checkpoints()
        fail(message)
