"""Errors a user can act on.

Every input problem raises a :class:`ReadlitError` subclass whose message names the problem and the fix.
The command-line entry points print it on one line and exit with code 2, without a traceback.

Library code names its *own* parameter (``sigma=-1 must be positive``); it cannot know where a config put it.
The CLI knows: Hydra reports the config node an object was built from (``model.ans``), and :func:`qualify` turns
the message into ``model.ans.sigma=-1 must be positive``. A component that builds a sub-component from a partial
wraps the call in :func:`scope` so the sub-component's parameters are named from the component's, and an entry
point that passes a config value to a function under another name wraps the call in :func:`renamed`.
"""

import re
from collections.abc import Iterator
from contextlib import contextmanager


class ReadlitError(Exception):
    """An input problem with a message a user can act on."""


class ConfigError(ReadlitError):
    """A config value is missing, unknown or inconsistent."""


class DataError(ReadlitError):
    """A data folder, cache or file is missing or unusable."""


class AudioError(DataError):
    """An audio file cannot be read or has no usable samples."""


class CheckpointError(ReadlitError):
    """A pretrained checkpoint is missing or does not match the model."""


# "name" or "org/name": anything else (absolute, "./", "~", deeper paths) can only be a local folder.
HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")


def one_line(err: BaseException, limit: int = 200) -> str:
    """The type and first line of an exception's message, so readlit's own errors stay on one line."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0][:limit] if lines else ''}"


# A message about a parameter starts with "name=value" (the name possibly dotted: "guidance.mode=...").
_PARAMETER = re.compile(r"^[A-Za-z_][\w.]*=")


def leading_parameter(message: str) -> str | None:
    """The parameter a message starts with (``model.ans.sigma`` of ``model.ans.sigma=-1 must be ...``), or None."""
    found = _PARAMETER.match(message)
    return found.group(0)[:-1] if found else None


def qualify(prefix: str, message: str) -> str:
    """``prefix.message`` when ``message`` starts with a parameter (``name=...``) not already under ``prefix``."""
    if not prefix or not _PARAMETER.match(message) or message.startswith(f"{prefix}."):
        return message
    return f"{prefix}.{message}"


@contextmanager
def scope(prefix: str) -> Iterator[None]:
    """Name the parameters in ReadlitErrors raised inside the block from ``prefix`` (a sub-component's argument)."""
    try:
        yield
    except ReadlitError as err:
        qualified = qualify(prefix, str(err))
        if qualified == str(err):
            raise
        raise type(err)(qualified) from err


@contextmanager
def renamed(name: str, key: str) -> Iterator[None]:
    """Name the parameter ``name`` of ReadlitErrors raised inside the block ``key`` (the config key it came from)."""
    try:
        yield
    except ReadlitError as err:
        message = str(err)
        if not message.startswith(f"{name}="):
            raise
        raise type(err)(f"{key}={message[len(name) + 1:]}") from err
