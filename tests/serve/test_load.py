"""Load on 127.0.0.1 (bounded: 3 rounds of 6 clients, 6 minutes at most): ``python -m readlit.serve`` in its own
process, file jobs followed by websocket and live streams at once. Nothing is lost, the queue never holds more
than it may, refused clients get 429 and get in later, and the server's memory, open files and job folders stay
flat across rounds."""

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile
from websockets.sync.client import connect

from readlit.data.video_io import read_mp4
from tests.serve.server import tiny_checkpoint, write_inputs

WORKERS, QUEUE = 2, 2
FILE_CLIENTS, LIVE_CLIENTS, ROUNDS = 4, 2, 6
SECONDS = 1.0
FRAMES = round(SECONDS * 25)
DEADLINE = 360.0
BACKOFF = 0.5


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))) / 1024


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerProcess:
    """``python -m readlit.serve`` on 127.0.0.1 in a child process, stopped at the end."""

    def __init__(self, ckpt: Path, root: Path, *overrides: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [sys.executable, "-m", "readlit.serve", f"ckpt={ckpt}", f"port={self.port}",
                        f"work_dir={root / 'jobs'}", f"hydra.run.dir={root / 'run'}", "sampler.steps=2", *overrides]
        self.log = root / "server.log"

    def __enter__(self) -> "ServerProcess":
        self.process = subprocess.Popen(self.command, stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while True:
            assert self.process.poll() is None, self.log.read_text()[-2000:]
            assert time.monotonic() < deadline, "the server did not start"
            try:
                if httpx.get(self.url + "/v1/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.2)

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def follow(ws) -> list[dict]:
    """The events of a job's stream; every segment must follow its event."""
    seen = []
    while True:
        event = json.loads(ws.recv())
        if event["type"] in ("start", "clip", "flush"):
            assert isinstance(ws.recv(), bytes)
        seen.append(event)
        if event["type"] in ("done", "failed", "cancelled", "error"):
            return seen


class Clients:
    """Run file and live clients at once; each retries on 429 until accepted."""

    def __init__(self, url: str, inputs: dict[str, Path]) -> None:
        self.url, self.inputs = url, inputs
        self.wave = soundfile.read(inputs["audio"], dtype="float32")[0]
        self.refused = 0
        self.results: list[dict] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()

    def file_client(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as http:
            while True:
                files = {"image": self.inputs["image"].read_bytes(), "audio": self.inputs["audio"].read_bytes()}
                response = http.post("/v1/videos", files=files, data={"stream": "true", "seed": "1"})
                if response.status_code != 429:
                    break
                assert response.json()["error"].startswith("the server is busy")
                with self._lock:
                    self.refused += 1
                time.sleep(BACKOFF)
            assert response.status_code == 202, response.text
            job = response.json()
            with connect(self.url.replace("http", "ws") + job["stream_url"]) as ws:
                events = follow(ws)
            video = http.get(events[-1]["video_url"])
        assert video.status_code == 200, video.text
        self._record(events, video.content)

    def live_client(self) -> None:
        while True:
            with connect(self.url.replace("http", "ws") + "/v1/streams") as ws:
                ws.send(json.dumps({"type": "start", "seed": 1}))
                ws.send(self.inputs["image"].read_bytes())
                first = json.loads(ws.recv())
                if first["type"] == "error" and first["status"] == 429:
                    with self._lock:
                        self.refused += 1
                    time.sleep(BACKOFF)
                    continue
                assert first["type"] == "queued", first
                for chunk in np.array_split(self.wave, 10):
                    ws.send(chunk.tobytes())
                    time.sleep(0.01)
                ws.send(json.dumps({"type": "end"}))
                events = follow(ws)
                break
        video = httpx.get(self.url + events[-1]["video_url"], timeout=60)
        assert video.status_code == 200, video.text
        self._record(events, video.content)

    def _record(self, events: list[dict], video: bytes) -> None:
        with self._lock:
            self.results.append({"events": events, "video": video})

    def run(self) -> None:
        def guarded(target):
            try:
                target()
            except Exception as err:  # noqa: BLE001  (collected and failed below, with the thread's message)
                with self._lock:
                    self.errors.append(f"{type(err).__name__}: {err}")

        threads = [threading.Thread(target=guarded, args=(self.file_client,)) for _ in range(FILE_CLIENTS)]
        threads += [threading.Thread(target=guarded, args=(self.live_client,)) for _ in range(LIVE_CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=DEADLINE)
            assert not thread.is_alive(), "a client did not finish in time"


@pytest.mark.slow
def test_concurrent_jobs_and_streams_lose_nothing_and_stay_within_bounds(tmp_path_factory, tmp_path):
    inputs = write_inputs(tmp_path / "inputs", seconds=SECONDS)
    ckpt = tiny_checkpoint(tmp_path_factory)
    watching, peaks = True, {"running": 0, "unfinished": 0}
    figures = []
    start = time.monotonic()
    with ServerProcess(ckpt, tmp_path, f"workers={WORKERS}", f"queue={QUEUE}", "keep_seconds=5",
                       "sweep_seconds=0.2", "torch_threads=1") as server:

        def watch() -> None:
            with httpx.Client(base_url=server.url, timeout=10) as http:
                while watching:
                    counts = http.get("/v1/health").json()["jobs"]
                    peaks["running"] = max(peaks["running"], counts["running"])
                    peaks["unfinished"] = max(peaks["unfinished"], counts["running"] + counts["queued"])
                    time.sleep(0.02)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            for round_index in range(ROUNDS):
                began = time.monotonic()
                clients = Clients(server.url, inputs)
                clients.run()
                assert clients.errors == []
                assert len(clients.results) == FILE_CLIENTS + LIVE_CLIENTS  # nothing lost
                for result in clients.results:
                    clips = [e for e in result["events"] if e["type"] == "clip"]
                    assert result["events"][-1]["type"] == "done"
                    assert [c["frames"][0] for c in clips] == [0] + [c["frames"][1] for c in clips[:-1]]
                    assert clips[-1]["frames"][1] == FRAMES
                    (tmp_path / "out.mp4").write_bytes(result["video"])
                    assert read_mp4(tmp_path / "out.mp4")[0].shape[0] == FRAMES
                seconds = time.monotonic() - began
                time.sleep(6)  # past keep_seconds: every finished job's folder is swept
                pid = server.process.pid
                figures.append({"round": round_index, "seconds": round(seconds, 1), "refused_429": clients.refused,
                                "server_rss_mib": round(rss_mib(pid), 1),
                                "server_open_files": len(list(Path(f"/proc/{pid}/fd").iterdir())),
                                "job_folders": len(list((tmp_path / "jobs").iterdir()))})
                assert time.monotonic() - start < DEADLINE
        finally:
            watching = False
            watcher.join()
    print("load:", json.dumps({"workers": WORKERS, "queue": QUEUE, "clients": FILE_CLIENTS + LIVE_CLIENTS,
                               "audio_seconds": SECONDS, "peaks": peaks, "rounds": figures}))
    assert peaks["running"] == WORKERS and peaks["unfinished"] <= WORKERS + QUEUE
    assert sum(f["refused_429"] for f in figures) > 0  # 6 clients for 4 places: some were told to wait
    assert all(f["job_folders"] == 0 for f in figures)
    # A leak grows with every round; the allocator moves RSS by up to ~40 MiB once in a while (measured), so the
    # check is the trend after the first round's warm-up, not the difference of two rounds.
    rss = [f["server_rss_mib"] for f in figures[1:]]
    growth = float(np.polyfit(np.arange(len(rss)), rss, 1)[0])
    assert growth < 15, f"server memory grows {growth:.1f} MiB a round after the warm-up: {rss}"
    assert figures[-1]["server_open_files"] - figures[0]["server_open_files"] <= 2
