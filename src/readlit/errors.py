"""Errors a user can act on.

Every input problem raises a :class:`ReadlitError` subclass whose message names the problem and the fix.
The command-line entry points print it on one line and exit with code 2, without a traceback.
"""

import re


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


def missing_mouth_mask() -> ConfigError:
    """The error of a mouth-weighted loss (``model.mouth_weight`` > 0) on batches without a ``mouth_mask``."""
    return ConfigError("model.mouth_weight > 0 needs a mouth_mask (B, H, W) in each batch (the synthetic data "
                       "renders one); set model.mouth_weight=0 for data without it")
