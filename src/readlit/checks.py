"""Config values checked at the boundary: type and range, on one line that names the parameter (docs/design.md §10).

Each check returns the value as the type it must have, or raises :class:`~readlit.errors.ConfigError` with a
message that starts with ``name=value``, so the CLI can qualify ``name`` with the config node it came from.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from readlit.errors import ConfigError
from readlit.utils.atomic import temp_path


def integer(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` if it is a whole number (not a bool, not a float) in [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{name}={value} must be a whole number")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}={value} must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name}={value} must be at most {maximum}")
    return int(value)


def number(name: str, value: Any, minimum: float | None = None, maximum: float | None = None,
           above: float | None = None, below: float | None = None) -> float:
    """``value`` as a float if it is a finite number in the given range (``above``/``below``: exclusive)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{name}={value} must be a number")
    if not math.isfinite(value):
        raise ConfigError(f"{name}={value} must be a finite number")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}={value} must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name}={value} must be at most {maximum}")
    if above is not None and value <= above:
        raise ConfigError(f"{name}={value} must be above {above}")
    if below is not None and value >= below:
        raise ConfigError(f"{name}={value} must be below {below}")
    return float(value)


def probability(name: str, value: Any) -> float:
    """``value`` as a float in [0, 1]."""
    return number(name, value, minimum=0.0, maximum=1.0)


def flag(name: str, value: Any) -> bool:
    """``value`` if it is true or false."""
    if not isinstance(value, bool):
        raise ConfigError(f"{name}={value} must be true or false")
    return value


def choice(name: str, value: Any, options: Iterable[Any]) -> Any:
    """``value`` if it is one of ``options``."""
    options = list(options)
    if value not in options:
        raise ConfigError(f"{name}={value} is not one of {', '.join(map(str, options))}")
    return value


def writable_folder(name: str, value: Any, folder: str | Path | None = None) -> Path:
    """The folder ``value`` names (or ``folder``, e.g. the parent of an output file), if it exists or can be made
    and a file can be written into it.

    Tried by writing a file, not by permission bits: root passes every ``os.access`` check, and a read-only file
    system fails only when written to.
    """
    folder = Path(str(value if folder is None else folder)).expanduser()
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise ConfigError(f"{name}={value}: cannot write into {existing}: it is a file")
    probe = temp_path(existing / "probe")
    try:
        probe.touch(exist_ok=False)
    except OSError as err:
        raise ConfigError(f"{name}={value}: cannot write into {existing} ({err.strerror or err})") from err
    probe.unlink()
    return folder
