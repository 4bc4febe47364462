"""Serving measurements with the demo checkpoint on this CPU (experiments/serve/README.md holds the numbers).

    flock /tmp/cpu.lock .venv/bin/python experiments/serve/run.py --ckpt logs/demo/a2v/checkpoints/last.ckpt

- ``latency``: the server on 127.0.0.1 (one worker), a held-out synthetic face speaking held-out speech of each
  length: time from the POST to the first streamed clip, to the whole mp4, and the real-time factor (seconds of
  compute per second of video); then the same audio on the live websocket, all at once and paced in real time.
- ``fidelity``: how far live streaming is from ``generate`` of the whole audio (same seed): PSNR between the
  videos, the same with the noise order held equal (live at a 30 s lookahead), the lip-sync scores of each, and
  ``stream``'s per-clip decode against ``generate``'s tiled decode.
- ``screenshot``: the page in headless Chromium, mid-stream.

Writes ``results.json`` (and ``page_mid_stream.png``) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import soundfile
import torch
import uvicorn
from PIL import Image
from websockets.sync.client import connect

from readlit.eval.synthetic import heldout
from readlit.live import LiveAudio, LiveSession
from readlit.pipeline import TalkingHeadPipeline, to_uint8_frames
from readlit.sampling.ans_sampler import ANSSampler
from readlit.serve.app import Service, create_app
from readlit.serve.jobs import JobQueue
from readlit.serve.settings import Limits
from readlit.utils.atomic import atomic_write_json

SEED = 0


class Server:
    """uvicorn on a free 127.0.0.1 port in a thread."""

    def __init__(self, service: Service) -> None:
        config = uvicorn.Config(create_app(service), host="127.0.0.1", port=0, log_level="warning",
                                ws_max_size=service.limits.max_image_bytes + 4096)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join()


def case_files(case: heldout.Case, folder: Path, seconds: float) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(case.truth[0]).save(folder / "face.png")
    soundfile.write(folder / "speech.wav", case.audio[: round(seconds * 16000)], 16000)
    return {"image": folder / "face.png", "audio": folder / "speech.wav"}


def follow(ws, start: float) -> dict[str, float]:
    """Times (from ``start``) of the first clip segment and of the last event, and the clips received."""
    first, clips = None, 0
    while True:
        event = json.loads(ws.recv())
        if event["type"] in ("start", "clip", "flush"):
            ws.recv()
        if event["type"] == "clip":
            clips += 1
            first = first or time.perf_counter() - start
        if event["type"] in ("done", "failed", "cancelled", "error"):
            assert event["type"] == "done", event
            return {"first_clip_s": first, "done_s": time.perf_counter() - start, "clips": clips}


def file_job(url: str, files: dict[str, Path]) -> dict[str, float]:
    start = time.perf_counter()
    response = httpx.post(url + "/v1/videos", files={k: v.read_bytes() for k, v in files.items()},
                          data={"stream": "true", "seed": str(SEED)}, timeout=60)
    response.raise_for_status()
    with connect(url.replace("http", "ws") + response.json()["stream_url"], max_size=None) as ws:
        return follow(ws, start)


def live_job(url: str, files: dict[str, Path], paced: bool) -> dict[str, float]:
    audio = soundfile.read(files["audio"], dtype="float32")[0]
    chunk = 1600  # 0.1 s
    with connect(url.replace("http", "ws") + "/v1/streams", max_size=None) as ws:
        start = time.perf_counter()
        ws.send(json.dumps({"type": "start", "seed": SEED}))
        ws.send(files["image"].read_bytes())
        assert json.loads(ws.recv())["type"] == "queued"

        def feed() -> None:
            for index in range(0, len(audio), chunk):
                if paced:
                    time.sleep(max(0.0, start + index / 16000 - time.perf_counter()))
                ws.send(audio[index: index + chunk].tobytes())
            ws.send(json.dumps({"type": "end"}))

        feeder = threading.Thread(target=feed)
        feeder.start()
        times = follow(ws, start)
        feeder.join()
    times["after_audio_end_s"] = times["done_s"] - len(audio) / 16000 if paced else None
    return times


def latency(ckpt: Path, lengths: list[float], work: Path) -> list[dict]:
    pipeline = TalkingHeadPipeline.from_checkpoint(ckpt)
    sampler = pipeline.sampler_for(ANSSampler())
    case = heldout.cases(round(max(lengths) * 25), pipeline.size)[0]
    service = Service(pipeline, sampler, Limits(max_audio_seconds=max(lengths) + 1),
                      JobQueue(work / "jobs", workers=1, queue=2, keep_seconds=60, abandon_seconds=None),
                      lookahead=16000, idle_seconds=30, sweep_seconds=5)
    rows = []
    with Server(service) as server:
        file_job(server.url, case_files(case, work / "warm", 1.0))  # first-call costs (x264, allocator) out
        for seconds in lengths:
            files = case_files(case, work / f"{seconds:g}", seconds)
            row = {"audio_s": seconds, "file": file_job(server.url, files),
                   "live_at_once": live_job(server.url, files, paced=False)}
            row["file"]["rtf"] = row["file"]["done_s"] / seconds
            row["live_at_once"]["rtf"] = row["live_at_once"]["done_s"] / seconds
            if seconds <= 10:
                row["live_paced"] = live_job(server.url, files, paced=True)
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def live_frames(pipeline: TalkingHeadPipeline, case: heldout.Case, audio: np.ndarray, sampler: ANSSampler,
                lookahead_s: float) -> np.ndarray:
    source = LiveAudio(len(audio) + 1)
    source.push(audio)
    source.close()
    session = LiveSession(pipeline, case.image, sampler, torch.Generator().manual_seed(SEED),
                          round(lookahead_s * pipeline.sample_rate))
    return to_uint8_frames(torch.cat([clip.video for clip in session.clips(source)], dim=1))


def fidelity(ckpt: Path, seconds: float) -> dict:
    pipeline = TalkingHeadPipeline.from_checkpoint(ckpt)
    sampler = pipeline.sampler_for(ANSSampler())
    out = {"audio_s": seconds, "sampler": {"steps": sampler.steps, "guidance": sampler.guidance.mode}, "cases": []}
    for case in heldout.cases(round(seconds * 25), pipeline.size):
        audio = case.audio[: round(seconds * 16000)]
        waveform = torch.from_numpy(audio)
        offline = to_uint8_frames(pipeline.generate(case.image, waveform, sampler, torch.Generator().manual_seed(SEED)))
        streamed = to_uint8_frames(torch.cat([v for _, v in pipeline.stream(
            case.image, waveform, sampler, torch.Generator().manual_seed(SEED))], dim=1))
        full_context = live_frames(pipeline, case, audio, sampler, 30.0)
        row = {"identity": case.face.identity, "generate": heldout.score(offline, case),
               "stream_vs_generate_psnr": heldout.psnr(streamed, offline), "live": {}}
        for lookahead in (0.0, 0.5, 1.0, 2.0, 30.0):
            frames = full_context if lookahead == 30.0 else live_frames(pipeline, case, audio, sampler, lookahead)
            row["live"][f"{lookahead:g}"] = {**heldout.score(frames, case),
                                             "psnr_vs_generate": heldout.psnr(frames, offline),
                                             "psnr_vs_live_30s": heldout.psnr(frames, full_context)}
        print(json.dumps(row), flush=True)
        out["cases"].append(row)
    return out


def screenshot(ckpt: Path, work: Path, out: Path) -> dict:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    pipeline = TalkingHeadPipeline.from_checkpoint(ckpt)
    case = heldout.cases(25 * 20, pipeline.size)[0]
    files = case_files(case, work / "page", 20.0)
    service = Service(pipeline, pipeline.sampler_for(ANSSampler()), Limits(),
                      JobQueue(work / "page_jobs", workers=1, queue=2, keep_seconds=600, abandon_seconds=None),
                      lookahead=16000, idle_seconds=30, sweep_seconds=5)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--mute-audio", "--window-size=1100,760",
                 "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(flag)
    with Server(service) as server:
        browser = webdriver.Chrome(service=DriverService(shutil.which("chromedriver")), options=options)
        try:
            browser.get(server.url)
            time.sleep(1)
            browser.find_element("id", "image").send_keys(str(files["image"]))
            browser.find_element("id", "audio").send_keys(str(files["audio"]))
            browser.find_element("id", "generate").click()
            state = {}
            while not (state.get("time", 0) > 1.0 and 0.3 < state.get("progress", 0) < 0.8):
                time.sleep(0.2)
                state = browser.execute_script("const v = document.getElementById('player'); return {time: "
                                               "v.currentTime, progress: document.getElementById('progress').value}")
            browser.save_screenshot(str(out / "page_mid_stream.png"))
        finally:
            browser.quit()
    return state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    parser.add_argument("--lengths", type=float, nargs="+", default=[5, 10, 20, 30, 60])
    parser.add_argument("--fidelity-seconds", type=float, default=10.0)
    parser.add_argument("--parts", nargs="+", default=["latency", "fidelity", "screenshot"])
    args = parser.parse_args()
    results_path = args.out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "latency" in args.parts:
            results["latency"] = latency(args.ckpt, args.lengths, work)
        if "fidelity" in args.parts:
            results["fidelity"] = fidelity(args.ckpt, args.fidelity_seconds)
        if "screenshot" in args.parts:
            results["screenshot"] = screenshot(args.ckpt, work, args.out)
    results["torch_threads"] = torch.get_num_threads()
    atomic_write_json(results_path, results)


if __name__ == "__main__":
    main()
