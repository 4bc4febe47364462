"""The shared inputs of the bad-input table, made on first use under one folder.

Cheap files (a face, speech, a random stage-1 checkpoint, fake raw HDTF) are written here; the trained a2v
checkpoint and the latent cache are made with readlit's own command lines, so a table run also exercises them.
A case names a fixture as ``{fx.name}`` in its command line and must never change it (the runner checks).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile
import torch
from PIL import Image

from readlit.data.synthetic import make_identity, make_session, render_frames
from readlit.data.video_io import write_mp4
from tests.reliability.runner import ForkServer, run_command

SEED = 5
# demo_speechae's SpeechAE on the random tiny Whisper: windows of 10 tokens x 3 hidden states x 64
DEMO_SPEECHAE = dict(in_tokens=30, in_dim=64, width=128, latent_tokens=4, latent_dim=32)
# Small synthetic data for every training case: seconds per run, every split non-empty.
TINY = ("data.identities={train:2,val:1,test:1}", "data.sessions_per_identity=1", "data.session_seconds=2",
        "data.batch_size=4", "logger=csv")


def speech(seconds: float, sample_rate: int = 16000) -> np.ndarray:
    """Speech-like synthetic audio (float32, mono) of ``seconds``."""
    frames = max(1, round(seconds * 25))
    face = make_identity(SEED, 0)
    audio = make_session(SEED, face, 0, frames + 1, 25, 16000).audio[: round(seconds * 16000)]
    if sample_rate != 16000:
        import soxr

        audio = soxr.resample(audio, 16000, sample_rate)
    return audio.astype(np.float32)


def face(size: int = 64) -> np.ndarray:
    """A synthetic face, (size, size, 3) uint8."""
    identity = make_identity(SEED, 1)
    return render_frames(identity, make_session(SEED, identity, 0, 1), 0, 1, size)[0]


def talking_video(path: Path, seconds: float, size: int = 64, with_audio: bool = True) -> Path:
    frames = max(1, round(seconds * 25))
    identity = make_identity(SEED, 2)
    session = make_session(SEED, identity, 0, frames)
    images = render_frames(identity, session, 0, frames, size)
    return write_mp4(path, images, 25, session.audio if with_audio else None, 16000)


def write_speechae_ckpt(path: Path) -> Path:
    """A stage-1 checkpoint as the speechae stage writes it (tag + net state), from a seeded random SpeechAE."""
    from readlit.nn.speech_ae import SpeechAE

    torch.manual_seed(0)
    net = SpeechAE(**DEMO_SPEECHAE)
    torch.save({"readlit": {"stage": "speechae", "net_config": net.config},
                "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}}, path)
    return path


class Fixtures:
    """Shared inputs under ``root``, each made on first access.

    Args:
        root: the folder they live in.
        server: the fork server the command-line fixtures run through (None: real subprocesses).
    """

    def __init__(self, root: Path, server: ForkServer | None = None):
        self.root, self.server = Path(root), server
        self.root.mkdir(parents=True, exist_ok=True)

    def _made(self, name: str, make: Callable[[Path], object]) -> Path:
        path = self.root / name
        if not path.exists():
            make(path)
        return path

    # ------------------------------------------------------------------------------------------ media

    @property
    def face_png(self) -> Path:
        return self._made("face.png", lambda p: Image.fromarray(face()).save(p))

    @property
    def speech_wav(self) -> Path:
        return self._made("speech.wav", lambda p: soundfile.write(p, speech(1.0), 16000))

    @property
    def talk_mp4(self) -> Path:
        return self._made("talk.mp4", lambda p: talking_video(p, 1.0))

    @property
    def text_file(self) -> Path:
        return self._made("notes.txt", lambda p: p.write_text("not a picture, not a sound\n"))

    @property
    def empty_file(self) -> Path:
        return self._made("empty.bin", lambda p: p.write_bytes(b""))

    @property
    def noise_file(self) -> Path:
        return self._made("noise.bin", lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096)))

    @property
    def folder(self) -> Path:
        return self._made("a_folder", lambda p: p.mkdir())

    @property
    def missing(self) -> Path:
        return self.root / "no_such_file"

    # ------------------------------------------------------------------------------------ checkpoints

    @property
    def speechae_ckpt(self) -> Path:
        return self._made("speechae.ckpt", write_speechae_ckpt)

    @property
    def plain_ckpt(self) -> Path:
        """A torch file with weights but no readlit header."""
        return self._made("plain.ckpt", lambda p: torch.save({"state_dict": {"w": torch.zeros(2)}}, p))

    @property
    def pickle_ckpt(self) -> Path:
        """A pickle that ``weights_only`` loading refuses (arbitrary objects)."""
        return self._made("pickle.ckpt", lambda p: torch.save({"readlit": {"stage": "a2v"}, "x": Path("/")}, p))

    @property
    def a2v_run(self) -> Path:
        """A finished one-step demo_a2v training run (its folder)."""
        def train(path: Path) -> None:
            args = ["experiment=demo_a2v", *TINY, "data.num_frames=9", f"model.speechae_ckpt={self.speechae_ckpt}",
                    "callbacks=default", "trainer.max_epochs=1", "+trainer.limit_train_batches=1",
                    "+trainer.limit_val_batches=1", "test=false", f"hydra.run.dir={path}"]
            result = run_command("train", args, self.root, 600, self.server)
            if result.code != 0:
                shutil.rmtree(path, ignore_errors=True)
                raise RuntimeError(f"the a2v fixture run failed: {result.stderr[-3000:]}")
        return self._made("a2v_run", train)

    @property
    def a2v_ckpt(self) -> Path:
        return self.a2v_run / "checkpoints" / "last.ckpt"

    @property
    def speechae_run(self) -> Path:
        """A finished short demo_speechae run (resume cases)."""
        def train(path: Path) -> None:
            args = ["experiment=demo_speechae", *TINY, "data.num_frames=9", "trainer.max_epochs=1",
                    "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1", "test=false",
                    f"hydra.run.dir={path}"]
            result = run_command("train", args, self.root, 600, self.server)
            if result.code != 0:
                shutil.rmtree(path, ignore_errors=True)
                raise RuntimeError(f"the speechae fixture run failed: {result.stderr[-3000:]}")
        return self._made("speechae_run", train)

    @property
    def speechae_last(self) -> Path:
        return self.speechae_run / "checkpoints" / "last.ckpt"

    # ---------------------------------------------------------------------------------------- folders

    @property
    def raw_hdtf(self) -> Path:
        """A raw HDTF download with one clip (official crop window file included)."""
        def make(path: Path) -> None:
            from tests.fake_raw import WINDOW, write_talking_head

            write_talking_head(path / "videos" / "RadioA_0.mp4", 1, 2.0, 25, 16000)
            meta = path / "HDTF_dataset"
            meta.mkdir(parents=True)
            (meta / "RD_crop_wh.txt").write_text(f"RadioA_0.mp4 {' '.join(map(str, WINDOW))}\n")
        return self._made("raw_hdtf", make)

    @property
    def videos(self) -> Path:
        """Two folders of talking-head mp4s with the same names: ``generated/`` and ``reference/``."""
        def make(path: Path) -> None:
            for side in ("generated", "reference"):
                talking_video(path / side / "clip0.mp4", 1.4)
        return self._made("videos", make)
