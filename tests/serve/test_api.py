"""The HTTP API: jobs give generate's bytes, streams deliver every clip playable, live audio in chunks gives one
video whatever the chunks, and every bad input is one 4xx line that leaves no job folder behind."""

import io
import json
import time

import numpy as np
import pytest
import soundfile
import torch
from PIL import Image

from readlit.audio import load_audio
from readlit.data.image_io import load_image
from readlit.data.video_io import read_mp4
from readlit.generate import generate
from readlit.pipeline import to_uint8_frames
from readlit.serve.fmp4 import FragmentWriter
from readlit.utils.compose import compose_app
from tests.serve.server import SECONDS

FRAMES = round(SECONDS * 25)


def upload(inputs, **fields) -> tuple[dict, dict]:
    files = {"image": ("face.png", inputs["image"].read_bytes(), "image/png"),
             "audio": ("speech.wav", inputs["audio"].read_bytes(), "audio/wav")}
    return files, {k: str(v) for k, v in fields.items()}


def wait_done(client, job: dict, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(job["status_url"]).json()
        if status["status"] not in ("queued", "running"):
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {job['id']} did not finish in {timeout} s")


def events(ws) -> list[tuple[dict, bytes]]:
    """Every (event, segment) of a job's websocket until its last event."""
    out = []
    while True:
        event = json.loads(ws.receive_text())
        data = ws.receive_bytes() if event["type"] in ("start", "clip", "flush") else b""
        out.append((event, data))
        if event["type"] in ("done", "failed", "cancelled", "error"):
            return out


def job_folders(client) -> list:
    return sorted(p.name for p in client.service.jobs.root.iterdir())


def test_same_seed_same_video_as_generate(client, inputs, tiny_ckpt, tmp_path):
    response = client.post("/v1/videos", files=upload(inputs)[0], data={"seed": "3"})
    assert response.status_code == 202
    job = response.json()
    assert job["status"] in ("queued", "running") and "video_url" not in job
    status = wait_done(client, job)
    assert (status["status"], status["clips_done"], status["progress"]) == ("done", status["clips_total"], 1.0)
    served = client.get(status["video_url"])
    assert served.status_code == 200 and served.headers["content-type"] == "video/mp4"
    cfg = compose_app("generate", [f"ckpt={tiny_ckpt}", f"image={inputs['image']}", f"speech={inputs['audio']}",
                                   f"out={tmp_path / 'cli.mp4'}", "seed=3", "sampler.steps=2", "progress=false"],
                      tmp_path)
    generate(cfg)
    assert served.content == (tmp_path / "cli.mp4").read_bytes()
    other = client.post("/v1/videos", files=upload(inputs)[0], data={"seed": "4"}).json()
    assert client.get(wait_done(client, other)["video_url"]).content != served.content


def test_the_stream_delivers_every_clip_as_a_playable_mp4(client, inputs, tmp_path, monkeypatch):
    encoded = []
    fragment = FragmentWriter.fragment
    monkeypatch.setattr(FragmentWriter, "fragment", lambda self, frames, audio, last=False: encoded.append(frames)
                        or fragment(self, frames, audio, last))
    job = client.post("/v1/videos", files=upload(inputs)[0], data={"stream": "true", "seed": "3"}).json()
    with client.websocket_connect(job["stream_url"]) as ws:
        received = events(ws)
    kinds = [event["type"] for event, _ in received]
    assert kinds[0] == "start" and kinds[-1] == "done" and set(kinds[1:-1]) == {"clip"}
    assert received[0][0]["mime"].startswith('video/mp4; codecs="avc1.')
    clips = [event for event, _ in received[1:-1]]
    assert [c["clips_done"] for c in clips] == list(range(1, len(clips) + 1))
    assert [c["frames"][0] for c in clips] == [0] + [c["frames"][1] for c in clips[:-1]]
    assert clips[-1]["frames"][1] == FRAMES and clips[-1]["clips_done"] == clips[-1]["clips_total"]
    (tmp_path / "stream.mp4").write_bytes(b"".join(data for _, data in received))
    streamed, fps, audio, rate = read_mp4(tmp_path / "stream.mp4")
    (tmp_path / "file.mp4").write_bytes(client.get(received[-1][0]["video_url"]).content)
    final, _, final_audio, _ = read_mp4(tmp_path / "file.mp4")
    assert streamed.shape == final.shape == (FRAMES, 64, 64, 3) and fps == 25
    assert abs(len(audio) / rate - SECONDS) < 1024 / rate and abs(len(final_audio) / rate - SECONDS) < 1 / 25
    # the streamed frames are TalkingHeadPipeline.stream's (then H.264's, lossy on this random VAE's noisy frames)
    service = client.service
    pipeline = service.pipeline
    image, waveform = load_image(inputs["image"], pipeline.size), load_audio(inputs["audio"], pipeline.sample_rate)
    reference = torch.cat([video for _, video in pipeline.stream(image, waveform, service.sampler,
                                                                 torch.Generator().manual_seed(3))], dim=1)
    assert np.array_equal(np.concatenate(encoded), to_uint8_frames(reference))


def live(client, inputs, chunks: list[bytes], rate: int = 16000, encoding: str = "f32le", **fields) -> list:
    with client.websocket_connect("/v1/streams") as ws:
        ws.send_json({"type": "start", "sample_rate": rate, "format": encoding, **fields})
        ws.send_bytes(inputs["image"].read_bytes())
        queued = json.loads(ws.receive_text())
        assert queued["type"] == "queued" and queued["kind"] == "live"
        for chunk in chunks:
            ws.send_bytes(chunk)
        ws.send_json({"type": "end"})
        return [(queued, b"")] + events(ws)


def test_live_audio_in_chunks_gives_one_video_whatever_the_chunks(client, inputs, tmp_path):
    wave, _ = soundfile.read(inputs["audio"], dtype="float32")
    pieces = {"one": [wave.tobytes()], "many": [c.tobytes() for c in np.array_split(wave, 23)]}
    runs = {name: live(client, inputs, chunks, seed=3) for name, chunks in pieces.items()}
    videos = {}
    for name, received in runs.items():
        assert received[-1][0]["type"] == "done"
        clips = [event for event, _ in received if event["type"] == "clip"]
        assert clips[-1]["frames"][1] == FRAMES
        videos[name] = client.get(received[-1][0]["video_url"]).content
        assert videos[name] == b"".join(data for _, data in received)  # the download is the stream
    assert videos["one"] == videos["many"]
    (tmp_path / "live.mp4").write_bytes(videos["one"])
    frames, _, audio, rate = read_mp4(tmp_path / "live.mp4")
    assert frames.shape[0] == FRAMES and abs(len(audio) / rate - SECONDS) < 1024 / rate
    # 48 kHz 16-bit from a microphone: resampled to the model's rate, same length of video
    loud = np.repeat(wave, 3)
    received = live(client, inputs, [(loud * 32767).astype("<i2").tobytes()], rate=48000, encoding="s16le")
    assert [e for e, _ in received if e["type"] == "clip"][-1]["frames"][1] == FRAMES


def test_a_live_client_that_leaves_cancels_its_job(client, inputs):
    with client.websocket_connect("/v1/streams") as ws:
        ws.send_json({"type": "start"})
        ws.send_bytes(inputs["image"].read_bytes())
        job_id = json.loads(ws.receive_text())["id"]
        ws.send_bytes(np.zeros(16000, np.float32).tobytes())
    deadline = time.monotonic() + 30
    while client.get(f"/v1/videos/{job_id}").json()["status"] != "cancelled":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert job_id not in job_folders(client)


def wav_bytes(samples: np.ndarray) -> bytes:
    out = io.BytesIO()
    soundfile.write(out, samples, 16000, format="WAV")
    return out.getvalue()


NOT_AN_IMAGE = ("face.png", b"this is not an image", "image/png")
BAD_FORMS = [
    ("missing audio", lambda f: {"image": f["image"]}, {}, 422, "missing file field(s): audio"),
    ("unknown field", lambda f: f, {"colour": "red"}, 422, "unknown field 'colour'"),
    ("image as text", lambda f: {"audio": f["audio"]}, {"image": "face.png"}, 422, "image must be a file upload"),
    ("not an image", lambda f: {**f, "image": NOT_AN_IMAGE}, {}, 415, "image: not an image"),
    ("not audio", lambda f: {**f, "audio": ("a.wav", f["image"][1], "audio/wav")}, {}, 415,
     "audio: the file has no audio stream"),
    ("empty audio", lambda f: {**f, "audio": ("a.wav", wav_bytes(np.zeros(0, np.float32)), "audio/wav")}, {}, 422,
     "audio: the file has no samples"),
    ("steps zero", lambda f: f, {"steps": 0}, 422, "steps='0': Input should be greater than or equal to 1"),
    ("steps absurd", lambda f: f, {"steps": 100000}, 422, "steps=100000: this server takes at most 50"),
    ("steps not a number", lambda f: f, {"steps": "many"}, 422, "steps='many'"),
    ("guidance", lambda f: f, {"guidance": "double"}, 422, "guidance='double'"),
    ("scale nan", lambda f: f, {"audio_scale": "nan"}, 422, "audio_scale='nan'"),
    ("scale absurd", lambda f: f, {"ref_scale": 1e9}, 422, "ref_scale=1000000000.0: this server takes at most 20"),
    ("seed", lambda f: f, {"seed": -1}, 422, "seed='-1'"),
    ("stream flag", lambda f: f, {"stream": "perhaps"}, 422, "stream='perhaps': expected true or false"),
]


@pytest.mark.parametrize(("case", "files", "fields", "status", "message"), BAD_FORMS, ids=[c[0] for c in BAD_FORMS])
def test_bad_uploads_are_one_clear_4xx_and_leave_nothing(client, inputs, case, files, fields, status, message):
    response = client.post("/v1/videos", files=files(upload(inputs)[0]), data={k: str(v) for k, v in fields.items()})
    assert response.status_code == status, response.text
    assert list(response.json()) == ["error"] and message in response.json()["error"]
    assert job_folders(client) == [] and client.service.jobs.jobs == {}


def test_requests_that_are_not_forms_or_too_big(client, inputs, tiny_ckpt, tmp_path):
    response = client.post("/v1/videos", json={"image": "face.png"})
    assert (response.status_code, response.json()["error"]) == (415, "send multipart/form-data (an HTML form with "
                                                                      "files, or curl -F)")
    limits = client.service.limits
    huge = ("big.wav", b"\0" * (limits.max_audio_bytes + 1), "audio/wav")
    response = client.post("/v1/videos", files={**upload(inputs)[0], "audio": huge})
    assert response.status_code == 413 and "larger than this server's limit" in response.json()["error"]
    big_image = io.BytesIO()
    Image.new("RGB", (8000, 6000)).save(big_image, format="PNG")
    client.service.limits = type(limits)(**{**limits.__dict__, "max_image_pixels": 1_000_000})
    response = client.post("/v1/videos", files={**upload(inputs)[0], "image": ("big.png", big_image.getvalue())})
    assert response.status_code == 413 and "48000000 pixels" in response.json()["error"]
    assert job_folders(client) == []


def test_long_audio_is_refused(tiny_ckpt, inputs, tmp_path):
    from fastapi.testclient import TestClient

    from readlit.serve.app import create_app
    from tests.serve.server import make_service

    service = make_service(tiny_ckpt, tmp_path, "limits.max_audio_seconds=1.5")
    with TestClient(create_app(service)) as short:
        response = short.post("/v1/videos", files=upload(inputs)[0])
    assert (response.status_code, response.json()["error"]) == (422, "audio: 2.0 s long; this server takes at most "
                                                                      "1.5 s")


def test_no_request_reaches_a_path_outside_its_job(client, inputs, tmp_path):
    files = upload(inputs)[0]
    files["image"] = ("../../../escaped.png", files["image"][1], "image/png")
    job = client.post("/v1/videos", files=files).json()
    wait_done(client, job)
    assert sorted(p.name for p in (client.service.jobs.root / job["id"]).iterdir()) == [
        "audio.upload", "image.upload", "video.mp4"]
    assert not list(tmp_path.rglob("escaped.png"))
    for path in ("/v1/videos/..%2F..%2Fetc%2Fpasswd.mp4", "/v1/videos/../../etc/passwd", "/v1/videos/abc",
                 f"/v1/videos/{job['id'][:-1]}x.mp4"):
        response = client.get(path)
        assert response.status_code == 404 and list(response.json()) == ["error"], path


def test_queue_full_is_429_and_cancel_stops_a_job(client, inputs, tmp_path):
    from tests.serve.server import write_inputs

    longer = write_inputs(tmp_path / "long", seconds=40.0)
    first = client.post("/v1/videos", files=upload(longer)[0]).json()
    second = client.post("/v1/videos", files=upload(longer)[0]).json()
    refused = client.post("/v1/videos", files=upload(inputs)[0])
    assert refused.status_code == 429 and "the server is busy (2 jobs running or queued, at most 2)" in \
        refused.json()["error"]
    assert client.delete(second["status_url"]).json()["id"] == second["id"]
    assert wait_done(client, second)["status"] == "cancelled"
    assert client.get(f"/v1/videos/{second['id']}.mp4").status_code == 409
    assert client.delete(first["status_url"]).status_code == 200
    assert wait_done(client, first)["status"] == "cancelled"
    assert job_folders(client) == []
    accepted = client.post("/v1/videos", files=upload(inputs)[0])
    assert accepted.status_code == 202
    assert client.get(f"{accepted.json()['status_url']}.mp4").status_code in (409, 200)


def test_abandoned_jobs_are_cancelled_and_finished_ones_expire(tiny_ckpt, inputs, tmp_path):
    from fastapi.testclient import TestClient

    from readlit.serve.app import create_app
    from tests.serve.server import make_service, write_inputs

    service = make_service(tiny_ckpt, tmp_path, "abandon_seconds=0.3", "keep_seconds=1.0", "sweep_seconds=0.1")
    with TestClient(create_app(service)) as app:
        done = app.post("/v1/videos", files=upload(inputs)[0]).json()
        assert wait_done(app, done)["status"] == "done"
        left = app.post("/v1/videos", files=upload(write_inputs(tmp_path / "long", seconds=40.0))[0]).json()
        deadline = time.monotonic() + 10
        while service.jobs.jobs[left["id"]].status != "cancelled":  # nobody asks about `left`
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(1.5)
        assert app.get(done["status_url"]).status_code == 404  # expired: record and folder gone
        assert not (service.jobs.root / done["id"]).exists() and not (service.jobs.root / left["id"]).exists()


BAD_STARTS = [
    ("binary first", [b"\x00\x01"], 400, "expected a JSON start message"),
    ("not a start", ['{"type": "go"}'], 422, '"type": "start"'),
    ("format", ['{"type": "start", "format": "mp3"}'], 422, "format='mp3'"),
    ("rate", ['{"type": "start", "sample_rate": 5}'], 422, "sample_rate=5"),
    ("steps", ['{"type": "start", "steps": 0}'], 422, "steps=0"),
    ("extra", ['{"type": "start", "volume": 11}'], 422, "unknown field 'volume'"),
    ("not an image", ['{"type": "start"}', b"nope"], 415, "image: not an image"),
]


@pytest.mark.parametrize(("case", "messages", "status", "message"), BAD_STARTS, ids=[c[0] for c in BAD_STARTS])
def test_bad_live_starts_are_refused_with_one_line(client, case, messages, status, message):
    with client.websocket_connect("/v1/streams") as ws:
        for item in messages:
            ws.send_text(item) if isinstance(item, str) else ws.send_bytes(item)
        answer = json.loads(ws.receive_text())
    assert (answer["type"], answer["status"]) == ("error", status) and message in answer["error"]
    assert job_folders(client) == []


def test_bad_live_audio_ends_the_stream_with_a_reason(client, inputs):
    with client.websocket_connect("/v1/streams") as ws:
        ws.send_json({"type": "start", "format": "s16le"})
        ws.send_bytes(inputs["image"].read_bytes())
        job_id = json.loads(ws.receive_text())["id"]
        ws.send_bytes(b"\x00\x01\x02")  # not whole 16-bit samples
        answers = []
        while not answers or answers[-1]["type"] != "error":
            message = ws.receive()
            if message.get("text"):
                answers.append(json.loads(message["text"]))
    assert (answers[-1]["status"], answers[-1]["error"]) == (422, "an audio message of 3 bytes is not whole s16le "
                                                                  "samples")
    deadline = time.monotonic() + 30
    while client.get(f"/v1/videos/{job_id}").json()["status"] != "cancelled":
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_page_health_and_unknown_routes(client):
    page = client.get("/")
    assert page.status_code == 200 and "<video" in page.text and "/static/app.js" in page.text
    assert "MediaSource" in client.get("/static/app.js").text
    health = client.get("/v1/health").json()
    assert health["model"] == {"size": 64, "fps": 25, "sample_rate": 16000, "clip_frames": 2}
    assert health["sampler"]["steps"] == 2 and health["capacity"] == 2
    missing = client.get("/v2/nothing")
    assert (missing.status_code, missing.json()) == (404, {"error": "Not Found"})
    with client.websocket_connect("/v1/videos/0123/stream") as ws:
        assert json.loads(ws.receive_text())["status"] == 404
