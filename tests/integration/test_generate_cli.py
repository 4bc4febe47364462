"""python -m readlit.generate: bad input is one clear error (exit code 2 on the command line), no mp4 left."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from hydra.core.global_hydra import GlobalHydra
from PIL import Image

from readlit.cli import user_error
from readlit.errors import ReadlitError
from readlit.generate import generate
from tests.helpers import compose_app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def files(tmp_path):
    Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(tmp_path / "face.png")
    soundfile.write(tmp_path / "speech.wav", np.zeros(16000, np.float32), 16000)
    torch.save({"readlit": {"stage": "speechae"}, "state_dict": {}}, tmp_path / "speechae.ckpt")
    return tmp_path


def keys(tmp_path: Path, **changed: str) -> list[str]:
    values = {"ckpt": tmp_path / "speechae.ckpt", "image": tmp_path / "face.png", "speech": tmp_path / "speech.wav",
              "out": tmp_path / "out" / "video.mp4", **changed}
    return [f"{key}={value}" for key, value in values.items()]


@pytest.mark.parametrize(("changed", "expected"), [
    ({"image": "/nonexistent/face.png"}, "image=/nonexistent/face.png: no such file"),
    ({"speech": "/nonexistent/speech.wav"}, "audio=/nonexistent/speech.wav: no such file"),
    ({"out": "/dev/null/video.mp4"}, "out=/dev/null/video.mp4: cannot write into /dev/null"),
    ({"out": "{tmp}/video.avi"}, "must end in .mp4"),
    ({"device": "cuda:7"}, "device=cuda:7 but this machine has no such CUDA GPU"),
    ({"device": "tpu"}, "device=tpu is not a device name"),
    ({"long_video": "async"}, "long_video='async': expected one of ans, independent, fuse"),
    ({}, "is a 'speechae' checkpoint; a 'a2v' checkpoint is needed here"),
    ({"ckpt": "/nonexistent/last.ckpt"}, "ckpt=/nonexistent/last.ckpt: no such checkpoint file"),
])
def test_bad_input_is_one_clear_error(files, changed, expected):
    changed = {key: value.format(tmp=files) for key, value in changed.items()}
    cfg = compose_app("generate", keys(files, **changed), files)
    GlobalHydra.instance().clear()
    with pytest.raises(ReadlitError) as info:
        generate(cfg)
    assert expected in user_error(info.value)
    assert not list(files.rglob("*.mp4"))


def test_command_line_takes_audio_and_exits_2_on_one_line(files):
    args = [arg.replace("speech=", "audio=") for arg in keys(files, image="/nonexistent/face.png")]
    result = subprocess.run([sys.executable, "-m", "readlit.generate", f"paths.root_dir={files}", *args],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == ["error: image=/nonexistent/face.png: no such file"], result.stderr[-2000:]
    assert "Traceback" not in result.stderr and not list(files.rglob("*.mp4"))
