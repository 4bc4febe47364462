"""Errors a user can act on.

Every input problem raises a :class:`ReadlitError` subclass whose message names the problem and the fix.
The command-line entry points print it on one line and exit with code 2, without a traceback.
"""


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
