"""The HTTP API and the page, on FastAPI (Starlette + uvicorn: a maintained ASGI stack with websockets, and
pydantic validation of the request fields).

Routes (every error is ``{"error": "one line"}`` with a 4xx status, 503 while shutting down):

- ``GET /``: the page; ``GET /v1/health``: the model, the sampler defaults, the limits and the queue.
- ``POST /v1/videos`` (multipart: ``image``, ``audio`` files; ``steps``, ``guidance``, ``audio_scale``,
  ``ref_scale``, ``seed``, ``stream`` fields) -> 202 and the job; 429 when the queue is full.
- ``GET /v1/videos/{id}``: status and progress (clips done / total); ``DELETE`` cancels it.
- ``GET /v1/videos/{id}.mp4``: H.264 + AAC once done (409 before); ``generate``'s bytes for the same seed.
- ``WS /v1/videos/{id}/stream``: a job submitted with ``stream=true``, clip by clip (see :func:`_send_segments`).
- ``WS /v1/streams``: live audio in, clips out (see :func:`live_stream`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import soxr
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from readlit.errors import ReadlitError
from readlit.live import LiveAudio
from readlit.pipeline import TalkingHeadPipeline
from readlit.sampling.ans_sampler import ANSSampler
from readlit.serve.errors import Rejected
from readlit.serve.jobs import UNFINISHED, Job, JobQueue, Segments, stream_file
from readlit.serve.settings import Limits, parse_sampler
from readlit.serve.uploads import read_audio, read_image, receive_form
from readlit.serve.work import render_file, render_live
from readlit.utils.atomic import atomic_write_bytes

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
FORM_FIELDS = ("steps", "guidance", "audio_scale", "ref_scale", "seed", "stream")
PCM = {"f32le": ("<f4", 1.0), "s16le": ("<i2", 32768.0)}
# Websocket close codes: policy violation (bad input), try again later (queue full), invalid payload.
POLICY, TRY_LATER, INVALID = 1008, 1013, 1007


@dataclass
class Service:
    """Everything the routes use.

    Args:
        pipeline: the model.
        sampler: the configured sampler (the model's clip length and shift filled in); requests change its fields.
        limits: what one request may ask.
        jobs: the queue.
        lookahead: samples of audio past a clip's windows a live stream waits for (:mod:`readlit.live`).
        idle_seconds: a live stream that sends no message for this long has its audio ended.
        sweep_seconds: how often abandoned jobs are cancelled and expired ones removed.
    """

    pipeline: TalkingHeadPipeline
    sampler: ANSSampler
    limits: Limits
    jobs: JobQueue
    lookahead: int
    idle_seconds: float
    sweep_seconds: float


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _flag(value: str, name: str) -> bool:
    if value.lower() not in ("true", "false", "1", "0"):
        raise Rejected(422, f"{name}={value!r}: expected true or false")
    return value.lower() in ("true", "1")


def create_app(service: Service) -> FastAPI:
    """The ASGI app serving ``service``."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async def sweep() -> None:
            while True:
                await asyncio.sleep(service.sweep_seconds)
                service.jobs.sweep()

        sweeper = asyncio.create_task(sweep())
        yield
        sweeper.cancel()
        await run_in_threadpool(service.jobs.shutdown)

    app = FastAPI(title="readlit", lifespan=lifespan, docs_url="/docs", redoc_url=None)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _handlers(app)
    pipeline, limits, jobs = service.pipeline, service.limits, service.jobs

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/v1/health")
    async def health() -> dict[str, Any]:
        sampler = service.sampler
        return {"status": "ok",
                "model": {"size": pipeline.size, "fps": pipeline.fps, "sample_rate": pipeline.sample_rate,
                          "clip_frames": sampler.clip_frames},
                "sampler": {"steps": sampler.steps, "guidance": sampler.guidance.mode,
                            "audio_scale": sampler.guidance.audio_scale, "ref_scale": sampler.guidance.ref_scale},
                "limits": asdict(limits), "jobs": jobs.counts(), "capacity": jobs.capacity}

    @app.post("/v1/videos", status_code=202)
    async def submit(request: Request) -> JSONResponse:
        job = jobs.create("file")
        try:
            form = await receive_form(request.headers.get("content-type"), request.headers.get("content-length"),
                                      request.stream(), job.folder,
                                      {"image": limits.max_image_bytes, "audio": limits.max_audio_bytes},
                                      FORM_FIELDS)
            fields = dict(form.fields)
            streamed = _flag(fields.pop("stream", "false"), "stream")
            sampler, seed = parse_sampler(fields, service.sampler, limits)
            image = await run_in_threadpool(read_image, form.files["image"], pipeline.size, limits)
            waveform = await run_in_threadpool(read_audio, form.files["audio"], pipeline.sample_rate, limits)
        except BaseException:
            jobs.discard(job)
            raise
        if streamed:
            job.segments = Segments(stream_file(job), asyncio.get_running_loop())
        jobs.start(job, partial(render_file, pipeline, image=image, waveform=waveform, sampler=sampler, seed=seed))
        body = job.summary()
        if streamed:
            body["stream_url"] = f"/v1/videos/{job.id}/stream"
        return JSONResponse(body, status_code=202)

    @app.get("/v1/videos/{job_id}.mp4")
    async def video(job_id: str) -> FileResponse:
        job = jobs.get(job_id)
        if job.status != "done":
            detail = f": {job.error}" if job.error else ""
            raise Rejected(409, f"job {job_id} is {job.status} ({job.clips_done}/{job.clips_total or '?'} clips)"
                                f"{detail}; the video is there once its status is done")
        if not job.video.is_file():
            raise Rejected(404, f"job {job_id}'s video has expired")
        return FileResponse(job.video, media_type="video/mp4", filename=f"{job_id}.mp4")

    @app.get("/v1/videos/{job_id}")
    async def status(job_id: str) -> dict[str, Any]:
        return jobs.get(job_id).summary()

    @app.delete("/v1/videos/{job_id}")
    async def cancel(job_id: str) -> dict[str, Any]:
        job = jobs.get(job_id)
        job.cancel()
        return job.summary()

    @app.websocket("/v1/videos/{job_id}/stream")
    async def job_stream(websocket: WebSocket, job_id: str) -> None:
        await websocket.accept()
        try:
            job = jobs.get(job_id)
            if job.segments is None:
                raise Rejected(409, f"job {job_id} was submitted without stream=true; download its mp4 instead")
        except Rejected as err:
            await _refuse(websocket, err)
            return
        with contextlib.suppress(WebSocketDisconnect):
            await _send_segments(websocket, job)

    @app.websocket("/v1/streams")
    async def live(websocket: WebSocket) -> None:
        await live_stream(websocket, service)

    return app


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(Rejected)
    async def rejected(request: Request, err: Rejected) -> JSONResponse:
        return _error(err.status, err.message)

    @app.exception_handler(HTTPException)
    async def http(request: Request, err: HTTPException) -> JSONResponse:
        return _error(err.status_code, str(err.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        problem = err.errors()[0]
        return _error(422, f"{'.'.join(str(p) for p in problem['loc'])}: {problem['msg']}")

    @app.exception_handler(ClientDisconnect)
    async def gone(request: Request, err: ClientDisconnect) -> JSONResponse:
        return _error(400, "the client went away during the upload")

    @app.exception_handler(Exception)
    async def internal(request: Request, err: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return _error(500, "internal error; the server log has the details")


async def _refuse(websocket: WebSocket, err: Rejected) -> None:
    """Tell a websocket client why it was refused, then close it (try later for 429, policy otherwise)."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await websocket.send_json({"type": "error", "status": err.status, "error": err.message})
        await websocket.close(TRY_LATER if err.status == 429 else POLICY)


async def _send_segments(websocket: WebSocket, job: Job) -> None:
    """Send a job's stream: each event as JSON, and its segment (if any) as the binary message after it.

    Events: ``start`` (``mime`` for MediaSource, followed by the init segment), one ``clip`` per clip (``frames``
    [first, stop), ``clips_done``, ``clips_total``, followed by its media segment), and one last ``done``
    (``video_url``), ``failed`` (``error``) or ``cancelled``; then the server closes.
    """
    job.watchers += 1
    try:
        async for event, data in job.segments.follow():
            await websocket.send_json(event)
            if data:
                await websocket.send_bytes(data)
        await websocket.close()
    finally:
        job.watchers -= 1


async def live_stream(websocket: WebSocket, service: Service) -> None:
    """Live audio in, clips out, on one websocket.

    The client sends, in order: a JSON ``start`` message (``sample_rate``, ``format`` ``f32le`` or ``s16le``, and
    the sampler fields of ``POST /v1/videos``), the portrait file as one binary message, then its audio as binary
    messages of mono PCM, then ``{"type": "end"}``. The server answers ``queued`` (the job's ``id``) and then the
    events of :func:`_send_segments` while audio still comes in; a client that leaves cancels its job, and one that
    sends nothing for ``idle_seconds`` has its audio ended. ``GET /v1/videos/{id}.mp4`` is the whole stream once done.
    """
    limits, jobs = service.limits, service.jobs
    await websocket.accept()
    job: Job | None = None
    receiver: asyncio.Task | None = None
    try:
        start = await _start_message(websocket, service.idle_seconds)
        rate, encoding = _pcm_format(start)
        sampler, seed = parse_sampler(start, service.sampler, limits)
        portrait = await asyncio.wait_for(websocket.receive_bytes(), service.idle_seconds)
        if len(portrait) > limits.max_image_bytes:
            raise Rejected(413, f"image: larger than this server's limit of {limits.max_image_bytes} bytes")
        job = jobs.create("live")
        path = atomic_write_bytes(job.folder / "image.upload", portrait)
        image = await run_in_threadpool(read_image, path, service.pipeline.size, limits)
    except Rejected as err:
        if job is not None:
            jobs.discard(job)
        await _refuse(websocket, err)
        return
    except (WebSocketDisconnect, TimeoutError, KeyError, json.JSONDecodeError) as err:
        if job is not None:
            jobs.discard(job)
        await _refuse(websocket, Rejected(400, "expected a JSON start message, then the image as one binary "
                                               f"message ({type(err).__name__})"))
        return
    job.audio = LiveAudio(int(limits.max_audio_seconds * service.pipeline.sample_rate))
    job.segments = Segments(stream_file(job), asyncio.get_running_loop())
    jobs.start(job, partial(render_live, service.pipeline, image=image, audio=job.audio, sampler=sampler, seed=seed,
                            lookahead=service.lookahead))
    try:
        await websocket.send_json({"type": "queued", **job.summary()})
        receiver = asyncio.create_task(_receive_audio(websocket, job, rate, encoding, service))
        await _send_segments(websocket, job)
    except (WebSocketDisconnect, RuntimeError):  # the client left, or the receiver closed on bad audio
        job.cancel()
    finally:
        if receiver is not None:
            receiver.cancel()
        if job.status in UNFINISHED:
            job.cancel()


async def _start_message(websocket: WebSocket, timeout: float) -> dict[str, Any]:
    message = await asyncio.wait_for(websocket.receive_text(), timeout)
    start = json.loads(message)
    if not isinstance(start, dict) or start.pop("type", None) != "start":
        raise Rejected(422, 'the first message must be a JSON object with "type": "start"')
    return start


def _pcm_format(start: dict[str, Any]) -> tuple[int, str]:
    """(sample rate, encoding) popped from the start message."""
    rate, encoding = start.pop("sample_rate", 16000), start.pop("format", "f32le")
    if isinstance(rate, bool) or not isinstance(rate, int) or not 8000 <= rate <= 192000:
        raise Rejected(422, f"sample_rate={rate!r}: expected a whole number of Hz from 8000 to 192000")
    if encoding not in PCM:
        raise Rejected(422, f"format={encoding!r}: expected one of {', '.join(PCM)}")
    return rate, encoding


async def _receive_audio(websocket: WebSocket, job: Job, rate: int, encoding: str, service: Service) -> None:
    """Feed the client's PCM into the job's audio (resampled to the model's rate) until it ends or leaves."""
    dtype, scale = PCM[encoding]
    target = service.pipeline.sample_rate
    resampler = None if rate == target else soxr.ResampleStream(rate, target, 1, dtype="float32", quality="HQ")
    width = np.dtype(dtype).itemsize
    try:
        while True:
            try:
                message = await asyncio.wait_for(websocket.receive(), service.idle_seconds)
            except TimeoutError:
                if not job.audio.ended:
                    job.audio.close()
                continue
            if message["type"] == "websocket.disconnect":
                job.cancel()
                return
            if job.audio.ended:
                continue
            if message.get("bytes") is not None:
                data = message["bytes"]
                if len(data) % width:
                    raise Rejected(422, f"an audio message of {len(data)} bytes is not whole {encoding} samples")
                samples = np.frombuffer(data, dtype).astype(np.float32) / scale
                job.audio.push(samples if resampler is None else resampler.resample_chunk(samples))
            elif json.loads(message.get("text") or "{}").get("type") == "end":
                if resampler is not None:
                    job.audio.push(resampler.resample_chunk(np.zeros(0, np.float32), last=True))
                job.audio.close()
    except (Rejected, ReadlitError, json.JSONDecodeError) as err:
        job.cancel()
        message = err.message if isinstance(err, Rejected) else str(err)
        await _refuse(websocket, Rejected(422, message))
