"""The JSON manifest of a cache folder: written atomically and last, read back with one clear error.

Both caches (the clip cache of :mod:`readlit.data.cache` and the latent cache of :mod:`readlit.data.latent_cache`)
keep their contents in ``<root>/manifest.json``: indented by one space, keys sorted, no trailing newline, with a
``format`` version. A folder without it holds no finished cache.
"""

import json
from pathlib import Path
from typing import Any

from readlit.errors import DataError
from readlit.utils.atomic import atomic_write_json

MANIFEST = "manifest.json"


def read_json(path: str | Path, fix: str) -> Any:
    """The JSON value in ``path``; DataError naming the file and ``fix`` when it is unreadable or not JSON."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path} is not valid JSON ({type(err).__name__}: {err}); {fix}") from err


def read_manifest(root: str | Path, kind: str, key: str, version: int, fix: str,
                  why_missing: str | None = None) -> dict[str, Any]:
    """The manifest of the ``kind`` (e.g. "cache") at ``root``, which the config ``key`` named.

    Raises:
        DataError: naming the file and ``fix`` when the manifest is missing (``why_missing`` says why, when
            known), unreadable, not JSON, or of another format version than ``version``.
    """
    path = Path(root) / MANIFEST
    if not path.is_file():
        why = f": {why_missing}" if why_missing else ""
        raise DataError(f"{key}={root} holds no {kind} ({path} missing{why}); {fix}")
    try:
        manifest = read_json(path, fix)
    except DataError as err:
        raise DataError(f"{key}={root}: {err}") from err
    found = manifest.get("format") if isinstance(manifest, dict) else None
    if found != version:
        raise DataError(f"{key}={root}: {path} has {kind} format {found!r}, this readlit reads {version}; {fix} "
                        "into a new folder")
    return manifest


def write_manifest(root: str | Path, manifest: dict[str, Any]) -> Path:
    """Write ``<root>/manifest.json`` atomically (the last thing a cache build does); returns its path."""
    return atomic_write_json(Path(root) / MANIFEST, manifest)
