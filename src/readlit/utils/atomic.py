"""Write files and folders so that a crash never leaves a half-written one that looks whole.

Everything readlit writes goes to a temporary name beside its target, ``.<target name>.<pid>-<hex>.tmp``, and is
renamed onto the target only once complete. The name is unique per writer (process id and a random part), so
two writers never share a temporary file, and it is hidden and ends in ``.tmp``, so a later run recognises what an
interrupted one left behind (:func:`remove_leftovers`).
"""

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TMP_SUFFIX = ".tmp"


def temp_path(target: str | Path) -> Path:
    """A fresh temporary name beside ``target`` (same folder, so the final rename stays on one file system)."""
    target = Path(target)
    return target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}{TMP_SUFFIX}")


def is_leftover(path: str | Path) -> bool:
    """Whether ``path`` is a temporary name (hidden, ending in ``.tmp``) that a writer left behind or is using."""
    name = Path(path).name
    return name.startswith(".") and name.endswith(TMP_SUFFIX)


def _writer_alive(path: Path) -> bool:
    """Whether the process named in a temporary name (``.<name>.<pid>-<hex>.tmp``) still runs on this machine."""
    try:
        pid = int(path.name[: -len(TMP_SUFFIX)].rsplit(".", 1)[1].split("-")[0])
    except (IndexError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers(folder: str | Path, pattern: str = "*", dead_only: bool = False) -> int:
    """Delete the temporary files and folders in ``folder`` matching ``pattern``; returns how many there were.

    Only safe while no other run writes there (the caches hold a writer lock while they call it); with
    ``dead_only`` a file whose writer still runs is kept, so a folder another run may write into (a checkpoint
    folder a run resumes from) can be cleaned too.
    """
    folder = Path(folder)
    leftovers = [path for path in folder.glob(pattern) if is_leftover(path)] if folder.is_dir() else []
    if dead_only:
        leftovers = [path for path in leftovers if not _writer_alive(path)]
    for path in leftovers:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return len(leftovers)


@contextmanager
def atomic_path(target: str | Path, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``target`` to write; on success it is renamed onto ``target``.

    If the block raises, the temporary file is removed and ``target`` keeps its old content (or stays absent).
    With ``replace=False`` an existing ``target`` is never written over: the file is linked into place, which
    fails with FileExistsError if ``target`` appeared meanwhile. The parent folder is created.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkstemp: its files are private (0600) and would stay so after the rename.
    tmp = temp_path(target)
    try:
        yield tmp
        if replace:
            os.replace(tmp, target)
        else:
            os.link(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_folder(target: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``target`` to fill; on success it replaces ``target`` whole.

    A folder cannot be renamed onto a non-empty one, so an existing ``target`` is first moved to a second
    temporary name, put back if the swap fails and deleted after it; a crash between the two renames leaves both
    as recognisable leftovers. If the block raises, the temporary folder is removed and ``target`` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp, old = temp_path(target), temp_path(target)
    tmp.mkdir()
    try:
        yield tmp
        if target.exists():
            target.rename(old)
        try:
            tmp.rename(target)
        except OSError:
            if old.exists():
                old.rename(target)
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    return atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | Path, value: Any, indent: int | None = 1) -> Path:
    """Write ``value`` as JSON with sorted keys (no trailing newline) to ``path`` atomically; returns ``path``."""
    return atomic_write_text(path, json.dumps(value, indent=indent, sort_keys=True))
