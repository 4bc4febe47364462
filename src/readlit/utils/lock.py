"""An exclusive lock on a file beside what a run writes: one writer at a time, gone with its holder.

An OS lock (flock), not a marker file: the kernel drops it when the holder dies, so a killed run never blocks
the run that resumes it. The lock file is removed when the holder is done, so a finished run leaves nothing
behind; a process that locked a file just removed tries again on the new one.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def exclusive(path: str | Path) -> Iterator[None]:
    """Hold the lock on ``path`` for the block; BlockingIOError at once if another process holds it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        handle = open(path, "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise
        if path.exists() and os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:
            break
        handle.close()  # locked a file its holder removed meanwhile
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        handle.close()
