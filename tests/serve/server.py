"""A tiny trained a2v checkpoint (a two-step demo_a2v run), its inputs, and the server built on it (shared by the
API, load and browser tests; their conftests turn these into fixtures)."""

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
import uvicorn
from PIL import Image

from readlit.serve.__main__ import build_service
from readlit.serve.app import Service, create_app
from readlit.train import train
from readlit.utils.compose import compose_app
from tests.helpers import compose_train
from tests.integration.test_a2v_stage import DEMO_SPEECHAE, FAST, write_speechae_ckpt

SECONDS = 2.0


def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-step demo_a2v run on the random demo VAE (64 px, clips of 2 latent frames), EMA weights included;
    trained once per test session, wherever it is first asked for."""
    root = tmp_path_factory.getbasetemp() / "serve_a2v"
    ckpt = root / "run" / "checkpoints" / "last.ckpt"
    if ckpt.is_file():
        return ckpt
    root.mkdir(exist_ok=True)
    speechae = write_speechae_ckpt(root, **DEMO_SPEECHAE)
    cfg = compose_train(["experiment=demo_a2v", *FAST, f"model.speechae_ckpt={speechae}", "callbacks=ema",
                         "trainer.max_epochs=1", "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1",
                         "test=false"], root)
    train(cfg)
    return ckpt


def write_inputs(folder: Path, seconds: float = SECONDS) -> dict[str, Path]:
    """A 64 px portrait (png) and speech-like audio (wav, 16 kHz): voiced bursts with pauses."""
    folder.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[:64, :64]
    face = np.stack([x * 4, y * 4, np.full_like(x, 128)], axis=-1).astype(np.uint8)
    Image.fromarray(face).save(folder / "face.png")
    t = np.arange(round(seconds * 16000)) / 16000
    envelope = (np.sin(2 * np.pi * 3 * t) > 0).astype(np.float32)
    soundfile.write(folder / "speech.wav", (0.3 * envelope * np.sin(2 * np.pi * 180 * t)).astype(np.float32), 16000)
    return {"image": folder / "face.png", "audio": folder / "speech.wav"}


def serve_config(ckpt: Path, root: Path, *overrides: str):
    return compose_app("serve", [f"ckpt={ckpt}", f"work_dir={root / 'jobs'}", "sampler.steps=2", *overrides], root)


def make_service(ckpt: Path, root: Path, *overrides: str) -> Service:
    return build_service(serve_config(ckpt, root, *overrides))


class Server:
    """uvicorn on 127.0.0.1 (a free port) in a thread, for clients that need a real socket (load, browser)."""

    def __init__(self, service: Service) -> None:
        self.service = service
        config = uvicorn.Config(create_app(service), host="127.0.0.1", port=0, log_level="warning",
                                ws_max_size=service.limits.max_image_bytes + 4096)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "Server":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
