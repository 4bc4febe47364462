"""Jobs: a bounded queue, a fixed number of worker threads, per-job folders, cancellation and clean-up.

A job runs in one of ``workers`` threads (torch releases the GIL in its kernels); at most ``workers + queue``
jobs exist unfinished at once, and one more is refused with 429. A job's worker checks its cancel flag before
every forward of the network, so a cancelled job stops within one forward. Every job owns one folder,
``<root>/<id>`` (the id is 32 hex digits the server drew; a request never names a path): its uploads, the stream's
segments under a temporary name, and ``video.mp4``, written atomically. A job that fails or is cancelled has its
folder removed at once; a finished one keeps it for ``keep_seconds``. A job nobody asks about (status, download or
an open stream) for ``abandon_seconds`` is cancelled: its client has gone away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from readlit.live import Cancelled, LiveAudio
from readlit.serve.errors import Rejected
from readlit.utils.atomic import temp_path

log = logging.getLogger(__name__)

JOB_ID = re.compile(r"^[0-9a-f]{32}$")
UNFINISHED = ("queued", "running")


class Segments:
    """One job's stream: JSON events, each with an optional binary segment kept in a file, read by any number of
    websocket senders while the worker thread appends (``publish`` runs in the worker, ``follow`` on the loop)."""

    def __init__(self, path: Path, loop: asyncio.AbstractEventLoop) -> None:
        self.path = path
        self._loop = loop
        self._events: list[tuple[dict[str, Any], int, int]] = []
        self._size = 0
        self._finished = False
        self._lock = threading.Lock()
        self._changed = asyncio.Event()

    def publish(self, event: dict[str, Any], data: bytes = b"") -> None:
        with self._lock:
            if data:
                with self.path.open("ab") as file:
                    file.write(data)
            self._events.append((event, self._size, len(data)))
            self._size += len(data)
        self._wake()

    def finish(self) -> None:
        with self._lock:
            self._finished = True
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed (the server stopped): nobody follows
            self._loop.call_soon_threadsafe(self._changed.set)

    async def follow(self) -> AsyncIterator[tuple[dict[str, Any], bytes]]:
        """Every event from the first, then each new one as it comes, until the stream is finished."""
        index = 0
        while True:
            with self._lock:
                events, finished = self._events[index:], self._finished
            for event, offset, length in events:
                yield event, self._read(offset, length)
            index += len(events)
            if finished and not events:
                return
            if not events:
                self._changed.clear()
                with self._lock:
                    pending = len(self._events) > index or self._finished
                if not pending:
                    await self._changed.wait()

    def _read(self, offset: int, length: int) -> bytes:
        if length == 0:
            return b""
        try:
            with self.path.open("rb") as file:
                file.seek(offset)
                return file.read(length)
        except FileNotFoundError:  # a failed or cancelled job's folder is gone; its last event says so
            return b""


@dataclass
class Job:
    """One request's work and what a client may ask about it."""

    id: str
    kind: str  # "file" (POST /v1/videos) or "live" (a websocket with audio in chunks)
    folder: Path
    status: str = "queued"  # queued, running, done, failed, cancelled
    clips_done: int = 0
    clips_total: int | None = None
    error: str | None = None
    created: float = field(default_factory=time.time)
    finished: float | None = None
    seen: float = field(default_factory=time.monotonic)
    watchers: int = 0
    segments: Segments | None = None
    audio: LiveAudio | None = None
    cancel_flag: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def video(self) -> Path:
        return self.folder / "video.mp4"

    def cancel(self) -> None:
        """Stop the job: at once if it waits for a worker, within one network forward if it runs."""
        self.cancel_flag.set()
        if self.audio is not None:
            self.audio.cancel()
        with self.lock:
            if self.status == "queued":
                self.end("cancelled")

    def end(self, status: str, error: str | None = None) -> None:
        """Record the job's outcome; a job that is not done loses its folder before anyone is told it is over."""
        if status != "done":
            shutil.rmtree(self.folder, ignore_errors=True)
        self.error, self.finished, self.status = error, time.time(), status
        if self.segments is not None:
            self.segments.publish({"type": status, **self.summary()})
            self.segments.finish()

    def check(self) -> None:
        """Raise :class:`Cancelled` if the job was cancelled (called before every network forward)."""
        if self.cancel_flag.is_set():
            raise Cancelled(f"job {self.id} was cancelled")

    def summary(self) -> dict[str, Any]:
        progress = None if not self.clips_total else self.clips_done / self.clips_total
        out = {"id": self.id, "kind": self.kind, "status": self.status, "clips_done": self.clips_done,
               "clips_total": self.clips_total, "progress": progress, "status_url": f"/v1/videos/{self.id}"}
        if self.status == "done":
            out["video_url"] = f"/v1/videos/{self.id}.mp4"
        if self.error is not None:
            out["error"] = self.error
        return out


class Checked(torch.nn.Module):
    """A velocity network that stops its job between forwards once the job is cancelled."""

    def __init__(self, velocity: Callable[..., torch.Tensor], job: Job) -> None:
        super().__init__()
        self.velocity, self.job = velocity, job

    def prepare(self, *args: Any, **kwargs: Any) -> Any:
        """The wrapped network's clip context (the sampler hoists it out of the step loop)."""
        return self.velocity.prepare(*args, **kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        self.job.check()
        return self.velocity(*args, **kwargs)


class JobQueue:
    """The server's jobs.

    Args:
        root: the folder that holds one folder per job (leftovers of an earlier server are removed).
        workers: jobs that run at once.
        queue: jobs that may wait for a worker; one more is refused with 429.
        keep_seconds: how long a finished job's video stays.
        abandon_seconds: an unfinished job nobody asked about for this long is cancelled (None: never).
    """

    def __init__(self, root: Path, workers: int, queue: int, keep_seconds: float,
                 abandon_seconds: float | None) -> None:
        if workers < 1 or queue < 0:
            raise ValueError(f"workers={workers} must be at least 1 and queue={queue} at least 0")
        self.root = root
        self.capacity = workers + queue
        self.keep_seconds = keep_seconds
        self.abandon_seconds = abandon_seconds
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="readlit-job")
        root.mkdir(parents=True, exist_ok=True)
        for leftover in root.iterdir():
            if leftover.is_dir() and JOB_ID.match(leftover.name):
                shutil.rmtree(leftover, ignore_errors=True)

    def create(self, kind: str) -> Job:
        """A new job with an empty folder; Rejected (429) when the queue is full."""
        with self._lock:
            unfinished = sum(job.status in UNFINISHED for job in self.jobs.values())
            if unfinished >= self.capacity:
                raise Rejected(429, f"the server is busy ({unfinished} jobs running or queued, at most "
                                    f"{self.capacity}); retry in a little while")
            job_id = uuid.uuid4().hex
            job = Job(job_id, kind, self.root / job_id)
            job.folder.mkdir()
            self.jobs[job_id] = job
        return job

    def start(self, job: Job, work: Callable[[Job], None]) -> None:
        """Queue ``work(job)`` for a worker thread."""
        self._pool.submit(self._run, job, work)

    def discard(self, job: Job) -> None:
        """Forget a job that never started (its request was refused after the job was made)."""
        with self._lock:
            self.jobs.pop(job.id, None)
        shutil.rmtree(job.folder, ignore_errors=True)

    def get(self, job_id: str) -> Job:
        """The job ``job_id`` (now seen by its client); Rejected (404) when there is none."""
        job = self.jobs.get(job_id) if JOB_ID.match(job_id) else None
        if job is None:
            raise Rejected(404, f"no job {job_id!r} (unknown, or its video was removed after it expired)")
        job.seen = time.monotonic()
        return job

    def sweep(self) -> None:
        """Cancel abandoned jobs and remove expired ones (run every few seconds)."""
        now, wall = time.monotonic(), time.time()
        with self._lock:
            jobs = list(self.jobs.values())
        for job in jobs:
            idle = now - job.seen
            if (job.status in UNFINISHED and not job.watchers and self.abandon_seconds is not None
                    and idle > self.abandon_seconds):
                log.info("job %s: nobody asked about it for %.0f s; cancelled", job.id, idle)
                job.cancel()
            if job.finished is not None and wall - job.finished > self.keep_seconds:
                with self._lock:
                    self.jobs.pop(job.id, None)
                shutil.rmtree(job.folder, ignore_errors=True)

    def counts(self) -> dict[str, int]:
        with self._lock:
            statuses = [job.status for job in self.jobs.values()]
        return {status: statuses.count(status) for status in ("queued", "running", "done", "failed", "cancelled")}

    def shutdown(self) -> None:
        """Cancel every unfinished job and wait for the workers."""
        for job in list(self.jobs.values()):
            if job.status in UNFINISHED:
                job.cancel()
        self._pool.shutdown(wait=True, cancel_futures=False)

    def _run(self, job: Job, work: Callable[[Job], None]) -> None:
        with job.lock:
            if job.status != "queued":  # cancelled while it waited
                return
            job.status = "running"
        status, error = "done", None
        try:
            job.check()
            work(job)
        except Cancelled:
            status = "cancelled"
        except Rejected as err:
            status, error = "failed", err.message
        except Exception as err:  # a worker must never take the server down
            log.exception("job %s failed", job.id)
            status, error = "failed", f"{type(err).__name__}: {err}"
        job.end(status, error)


def stream_file(job: Job) -> Path:
    """A fresh temporary name in the job's folder for its stream's segments (hidden, ``.tmp``: never a result)."""
    return temp_path(job.folder / "stream.mp4")
