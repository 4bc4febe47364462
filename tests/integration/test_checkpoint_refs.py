"""A2V checkpoints reference their frozen codecs: no VAE weights inside, a moved or different VAE is caught,
format-1 checkpoints convert, and inference runs without Lightning."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from omegaconf import OmegaConf
from PIL import Image

from readlit.checkpoint import EMA_KEY, KEY, A2VHeader, load_checkpoint, upgrade
from readlit.errors import CheckpointError
from readlit.pipeline import TalkingHeadPipeline
from readlit.resolvers import PROJECT_ROOT
from readlit.train import train
from readlit.vae import VideoVAE
from tests.helpers import compose_train
from tests.integration.test_a2v_stage import DEMO_SPEECHAE, FAST, write_speechae_ckpt

DEMO_VAE = OmegaConf.to_container(OmegaConf.load(PROJECT_ROOT / "conf" / "vae" / "demo.yaml").architecture)


def _demo_vae(seed: int) -> VideoVAE:
    return VideoVAE(architecture=DEMO_VAE, logvar_init=-8.0, seed=seed)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    """A two-step a2v run on a VAE saved in a folder (vae=local), with EMA."""
    root = tmp_path_factory.mktemp("a2v_refs")
    _demo_vae(seed=0).save_pretrained(root / "vae")
    speechae = write_speechae_ckpt(root, **DEMO_SPEECHAE)
    cfg = compose_train(["experiment=demo_a2v", *FAST, f"model.speechae_ckpt={speechae}", "vae=local",
                         f"vae.pretrained={root / 'vae'}", "callbacks=ema", "trainer.max_epochs=1",
                         "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1", "test=false"], root)
    train(cfg)
    return {"root": root, "ckpt": root / "run" / "checkpoints" / "last.ckpt"}


def test_checkpoint_holds_no_vae_weights_and_names_its_codecs(trained):
    checkpoint = load_checkpoint(trained["ckpt"], stage="a2v")
    assert not any(key.startswith("vae.") for key in checkpoint["state_dict"])
    # EMA averages what trains: the DiT and, with the demo's speechae_tuned, the audio encoder.
    trained_modules = ("net.", "audio.")
    assert set(checkpoint[EMA_KEY]) == {k for k in checkpoint["state_dict"] if k.startswith(trained_modules)}
    header = A2VHeader.from_checkpoint(checkpoint, trained["ckpt"])
    assert header.vae.kwargs["pretrained"] == str((trained["root"] / "vae").resolve())
    assert header.vae.fingerprint == VideoVAE(pretrained=str(trained["root"] / "vae")).fingerprint()
    assert header.frontend.kwargs["random_config"]["d_model"] == 64  # the demo's tiny random Whisper


def test_a_different_vae_is_refused_and_a_moved_one_found(trained, tmp_path):
    moved = tmp_path / "moved_vae"
    shutil.copytree(trained["root"] / "vae", moved)
    reference = TalkingHeadPipeline.from_checkpoint(trained["ckpt"])
    try:
        _demo_vae(seed=1).save_pretrained(trained["root"] / "vae")  # the folder now holds another VAE
        with pytest.raises(CheckpointError, match="is not the one this checkpoint was trained with"):
            TalkingHeadPipeline.from_checkpoint(trained["ckpt"])
        with pytest.raises(CheckpointError, match="is not the one"):
            TalkingHeadPipeline.from_checkpoint(trained["ckpt"], vae_path=str(trained["root"] / "vae"))
        pipeline = TalkingHeadPipeline.from_checkpoint(trained["ckpt"], vae_path=str(moved))
        z = torch.randn(1, 32, 2, 8, 8)
        torch.testing.assert_close(pipeline.vae.decode(z), reference.vae.decode(z))
        shutil.rmtree(trained["root"] / "vae")
        with pytest.raises(CheckpointError, match="if it has moved, point vae_path= at it"):
            TalkingHeadPipeline.from_checkpoint(trained["ckpt"])
    finally:
        shutil.rmtree(trained["root"] / "vae", ignore_errors=True)
        shutil.copytree(moved, trained["root"] / "vae")


def _format_one(checkpoint: dict, vae: VideoVAE) -> dict:
    """The same checkpoint as readlit wrote it before the typed header: VAE and EMA weights in the state dict."""
    header = checkpoint[KEY]
    old = dict(checkpoint)
    old["state_dict"] = {**checkpoint["state_dict"], **{f"vae.{k}": v for k, v in vae.state_dict().items()},
                         **{f"ema.{k}": v for k, v in checkpoint.pop(EMA_KEY).items()}}
    settings = {k: header["vae"]["kwargs"][k] for k in ("tile_frames", "tile_context", "decode_timestep",
                                                         "decode_noise_scale")}
    old[KEY] = {"stage": "a2v", "net_config": header["net_config"], "audio_config": header["audio_config"],
                "vae_config": vae.config, "vae_settings": settings, "clip_frames": header["clip_frames"],
                "size": header["size"], "frontend": {"_target_": "readlit.audio.WhisperFrontEnd", "_partial_": True,
                                                     **header["frontend"]["kwargs"]}}
    return old


def test_format_one_checkpoints_are_refused_with_the_command_that_converts_them(trained, tmp_path):
    checkpoint = load_checkpoint(trained["ckpt"])
    old = tmp_path / "old.ckpt"
    torch.save(_format_one(dict(checkpoint), VideoVAE(pretrained=str(trained["root"] / "vae"))), old)
    with pytest.raises(CheckpointError, match=f"python -m readlit.checkpoint upgrade {old} NEW.ckpt --vae-dir DIR"):
        TalkingHeadPipeline.from_checkpoint(old)
    upgrade(old, tmp_path / "new.ckpt", tmp_path / "vae", time_shift=checkpoint[KEY]["time_shift"])
    converted, original = (TalkingHeadPipeline.from_checkpoint(p) for p in (tmp_path / "new.ckpt", trained["ckpt"]))
    z, t, audio = torch.randn(1, 32, 3, 8, 8), torch.rand(1, 3), torch.randn(1, 2, 4, 32)
    with torch.no_grad():  # the EMA weights moved across, and the VAE was saved whole
        torch.testing.assert_close(converted.velocity(z, t, audio, 0), original.velocity(z, t, audio, 0))
        torch.testing.assert_close(converted.vae.decode(z[:, :, :2]), original.vae.decode(z[:, :, :2]))
    with pytest.raises(CheckpointError, match="already of format 2"):
        upgrade(tmp_path / "new.ckpt", tmp_path / "again.ckpt", tmp_path / "vae2", time_shift={"mu": None})


def test_generate_runs_without_importing_lightning(trained, tmp_path):
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(tmp_path / "face.png")
    soundfile.write(tmp_path / "speech.wav", np.random.default_rng(0).normal(0, 0.1, 8000).astype(np.float32), 16000)
    script = f"""
import sys
import readlit.pipeline
from readlit.generate import generate
from readlit.utils.compose import compose_app
from pathlib import Path
cfg = compose_app("generate", ["ckpt={trained['ckpt']}", "image={tmp_path}/face.png", "speech={tmp_path}/speech.wav",
                               "out={tmp_path}/video.mp4", "sampler.steps=1", "progress=false"], Path("{tmp_path}"))
generate(cfg)
print(sorted(m for m in sys.modules if m.split(".")[0] in ("lightning", "pytorch_lightning", "lightning_fabric")))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "video.mp4").stat().st_size > 0
