"""Bad input on the command line: one line naming the problem and the fix, exit code 2, nothing left."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_train(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env_root = f"paths.root_dir={tmp_path}"
    return subprocess.run([sys.executable, "-m", "readlit.train", env_root, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(("args", "expected"), [
    (["experiment=nope"], "Could not find 'experiment/nope'"),
    (["experiment=demo_speechae", "model.no_such_key=1"], "no_such_key"),
    (["experiment=demo_speechae", "data.num_frames=32"], "data.num_frames=32 is not 1+8k"),
    (["experiment=speechae", "trainer=cpu"], "holds no HDTF cache"),  # trainer=gpu is refused first here
    (["experiment=demo_speechae", "ckpt_path=/nonexistent/last.ckpt"], "no such checkpoint file"),
    (["experiment=demo_speechae", "audio=whisper_tiny", "audio.pretrained=/nonexistent/whisper"],
     "audio.pretrained"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, args, expected):
    small = ["data.identities={train:1,val:1,test:1}", "data.session_seconds=2"] if "demo" in args[0] else []
    result = run_train(tmp_path, *args, *small)
    assert result.returncode == 2, result.stderr[-2000:]
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1, result.stderr[-2000:]
    assert expected in error_lines[0]
    assert "Traceback" not in result.stderr
    # nothing half-written: no run folder survives a refused run
    assert not list(tmp_path.glob("logs/*/runs/*"))


def test_unreadable_audio_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "speech.wav"
    bad.write_bytes(b"RIFF" + bytes(range(256)) * 4)
    result = subprocess.run([sys.executable, "-m", "readlit.audio", str(bad)], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ") and str(bad) in result.stderr
