"""The a2v stage: demo_a2v trains on a CPU, overfits one batch, refuses a missing SpeechAE checkpoint."""

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile
import torch
from hydra.errors import HydraException
from hydra.utils import instantiate
from PIL import Image

from readlit.callbacks.ema import EMA
from readlit.checkpoint import A2VHeader, load_checkpoint
from readlit.cli import user_error
from readlit.errors import CheckpointError, ConfigError, ReadlitError
from readlit.generate import generate
from readlit.nn.speech_ae import SpeechAE
from readlit.pipeline import TalkingHeadPipeline
from readlit.sampling.ans_sampler import ANSSampler, padded_length
from readlit.sampling.cfg import Guidance
from readlit.train import train
from tests.helpers import TINY_SYNTHETIC, compose_app

ROOT = Path(__file__).resolve().parents[2]
# demo_speechae's SpeechAE on the random tiny Whisper: windows of 10 tokens x 3 hidden states x 64
DEMO_SPEECHAE = dict(in_tokens=30, in_dim=64, width=128, latent_tokens=4, latent_dim=32)
FAST = [*TINY_SYNTHETIC, "data.num_frames=9", "data.batch_size=4", "logger=csv", "callbacks=none"]


def write_speechae_ckpt(folder, **sizes):
    """A stage-1 checkpoint as the speechae stage writes it (tag + net state), from a seeded random SpeechAE."""
    torch.manual_seed(0)
    net = SpeechAE(**sizes)
    path = folder / "last.ckpt"
    torch.save({"readlit": {"stage": "speechae", "net_config": net.config},
                "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}}, path)
    return path


@pytest.fixture(scope="module")
def speechae_ckpt(tmp_path_factory):
    return write_speechae_ckpt(tmp_path_factory.mktemp("speechae"), **DEMO_SPEECHAE)


def test_fast_dev_run_and_checkpoint_rebuilds_the_pipeline(train_cfg, speechae_ckpt, tmp_path):
    cfg = train_cfg("experiment=demo_a2v", *FAST, f"model.speechae_ckpt={speechae_ckpt}", "trainer.max_epochs=1",
                    "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1", "test=false",
                    "callbacks=a2v")
    metrics, objects = train(cfg)
    assert torch.isfinite(torch.tensor(metrics["val/loss"]))
    assert any(key.startswith("val/loss_t") for key in metrics)
    assert (tmp_path / "run" / "samples" / "epoch000.mp4").stat().st_size > 0  # the sample-video callback
    checkpoint_path = next((tmp_path / "run" / "checkpoints").glob("last*.ckpt"))
    checkpoint = load_checkpoint(checkpoint_path, stage="a2v")
    assert not any(key.startswith("vae.") for key in checkpoint["state_dict"])  # the VAE by reference only
    assert A2VHeader.from_checkpoint(checkpoint, checkpoint_path).vae.fingerprint == objects["model"].vae.fingerprint()
    pipeline = TalkingHeadPipeline.from_checkpoint(checkpoint_path)
    assert (pipeline.clip_frames, pipeline.size) == (2, 64)
    z, t, audio = torch.randn(1, 32, 3, 8, 8), torch.rand(1, 3), torch.randn(1, 2, 4, 32)
    ema = next(c for c in objects["trainer"].callbacks if isinstance(c, EMA))
    with torch.no_grad(), ema.applied(objects["model"]):  # the checkpoint's EMA weights, not the live ones
        torch.testing.assert_close(pipeline.velocity(z, t, audio, 0), objects["model"].net(z, t, audio, 0))
    assert not torch.equal(ema.averages["net.proj_out.weight"], objects["model"].net.proj_out.weight)
    sampler = ANSSampler(steps=2, clip_frames=None, guidance=Guidance("split"))
    video = pipeline.generate(torch.zeros(3, 64, 64), torch.randn(8000) * 0.1, sampler, torch.Generator())
    assert video.shape == (3, 13, 64, 64) and bool(video.isfinite().all())
    # and the generate command reads the same checkpoint
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(tmp_path / "face.png")
    soundfile.write(tmp_path / "speech.wav", np.random.default_rng(0).normal(0, 0.1, 8000).astype(np.float32), 16000)
    files = {"ckpt": checkpoint_path, "image": tmp_path / "face.png", "speech": tmp_path / "speech.wav",
             "out": tmp_path / "video.mp4"}
    made = generate(compose_app("generate", [f"{k}={v}" for k, v in files.items()] + ["sampler.steps=2"], tmp_path))
    assert made["frames"] == 13 and (tmp_path / "video.mp4").stat().st_size > 0
    with av.open(str(tmp_path / "video.mp4")) as container:  # one H.264 video and one AAC audio stream
        assert [(s.type, s.codec_context.name) for s in container.streams] == [("video", "h264"), ("audio", "aac")]


def test_missing_speechae_checkpoint_is_one_clear_error(train_cfg, tmp_path):
    cfg = train_cfg("experiment=demo_a2v", *FAST, f"model.speechae_ckpt={tmp_path}/none.ckpt")
    with pytest.raises(HydraException) as info:
        instantiate(cfg.model)
    assert isinstance(info.value.__cause__, CheckpointError)
    assert user_error(info.value).startswith(f"model.speechae_ckpt={tmp_path}/none.ckpt: no such checkpoint file "
                                             "(a speechae-stage checkpoint: python -m readlit.train experiment=")
    cfg = train_cfg("experiment=demo_a2v", *FAST)  # by default the checkpoint `make demo` trains
    with pytest.raises(HydraException) as info:
        instantiate(cfg.model)
    assert f"model.speechae_ckpt={tmp_path}/logs/demo/speechae/checkpoints/last.ckpt: no such" in user_error(info.value)


def test_demo_a2v_overfits_one_batch(train_cfg, speechae_ckpt):
    torch.manual_seed(0)
    cfg = train_cfg("experiment=demo_a2v", *FAST, f"model.speechae_ckpt={speechae_ckpt}")
    model = instantiate(cfg.model)
    batch = next(iter(_datamodule(cfg).train_dataloader()))
    z0 = model.latents(batch)
    c = model.audio_latents(batch, z0.shape[2] - 1).detach()  # the DiT alone overfits (the demo's encoder trains too)
    noised = model.ans.forward_process(z0, torch.Generator().manual_seed(0))  # one fixed noisy sample
    optimizer = torch.optim.AdamW(model.net.parameters(), lr=3e-3)
    start = time.monotonic()
    losses = []
    for _ in range(300):
        loss = model.ans.loss(model.net(noised.z_t, noised.t, c), noised)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    print(f"overfit one batch: loss {losses[0]:.3f} -> {losses[-1]:.4f} in {time.monotonic() - start:.0f} s")
    assert losses[-1] < 0.02 * losses[0]


def test_mouth_weighting_weighs_the_latent_positions_the_mouth_mask_reaches(train_cfg, speechae_ckpt):
    cfg = train_cfg("experiment=demo_a2v", *FAST, f"model.speechae_ckpt={speechae_ckpt}", "model.weighting.weight=4")
    model = instantiate(cfg.model)
    mask = torch.zeros(2, 64, 64)
    mask[:, 40:50, 20:30] = 1.0  # rows 5-6, columns 2-3 of the demo VAE's 8x8 latent grid of 64x64 frames
    weight = model.weighting({"mouth_mask": mask}, (8, 8))
    expected = torch.ones(2, 8, 8)
    expected[:, 5:7, 2:4] = 5.0
    torch.testing.assert_close(weight, expected)
    with pytest.raises(ConfigError, match="mouth_mask"):
        model.weighting({}, (8, 8))
    model.log = lambda *args, **kwargs: None  # no trainer attached
    assert model.training_step(next(iter(_datamodule(cfg).train_dataloader())), 0).isfinite()
    unweighted = train_cfg("experiment=demo_a2v", *FAST, f"model.speechae_ckpt={speechae_ckpt}", "model.weighting=null")
    assert instantiate(unweighted.model).weighting is None  # the paper's loss needs no mask


def _datamodule(cfg):
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    return datamodule


def test_ablation_audio_encoders_need_no_checkpoint(train_cfg):
    for mode in ("speechae_scratch", "linear"):
        cfg = train_cfg("experiment=demo_a2v", *FAST, f"model.audio_encoder={mode}", "model.speechae_ckpt=null")
        model = instantiate(cfg.model)
        windows = torch.randn(2, 9, 30, 64)
        assert model.audio(windows).shape == (2, 2, 4, 32)
        assert any(p.requires_grad for p in model.audio.parameters())


def test_the_stage1_speechae_is_frozen_unless_tuned(train_cfg, speechae_ckpt):
    """``speechae`` and ``speechae_tuned`` start from the same stage-1 weights; only the tuned one is trained on."""
    models = {mode: instantiate(train_cfg("experiment=demo_a2v", *FAST, f"model.speechae_ckpt={speechae_ckpt}",
                                          f"model.audio_encoder={mode}").model)
              for mode in ("speechae", "speechae_tuned")}
    frozen, tuned = (models[mode].audio.state_dict() for mode in ("speechae", "speechae_tuned"))
    assert frozen.keys() == tuned.keys() and all(torch.equal(frozen[k], tuned[k]) for k in frozen)
    assert not any(p.requires_grad for p in models["speechae"].audio.parameters())
    assert all(p.requires_grad for p in models["speechae_tuned"].audio.parameters())
    model = models["speechae_tuned"]
    optimizer = model.configure_optimizers()
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert all(id(p) in in_optimizer for p in model.audio.parameters())
    with pytest.raises(HydraException) as info:
        instantiate(train_cfg("experiment=demo_a2v", *FAST, "model.audio_encoder=speechae_tuned",
                              "model.speechae_ckpt=null").model)
    assert "audio_encoder=speechae_tuned needs speechae_ckpt" in user_error(info.value)


def test_unknown_audio_encoder_is_a_config_error(train_cfg, speechae_ckpt):
    cfg = train_cfg("experiment=demo_a2v", *FAST, "model.audio_encoder=whisper", "model.speechae_ckpt=null")
    with pytest.raises(HydraException) as info:
        instantiate(cfg.model)
    assert isinstance(info.value.__cause__, ReadlitError) and "model.audio_encoder=whisper" in user_error(info.value)


@pytest.mark.slow
def test_ddp_two_cpu_processes(speechae_ckpt, tmp_path):
    """strategy=ddp launches its second process by re-running the command line, so this runs the real CLI."""
    args = ["experiment=demo_a2v", *FAST, f"model.speechae_ckpt={speechae_ckpt}", "trainer=ddp_cpu",
            "trainer.max_epochs=1", "+trainer.limit_train_batches=3", "+trainer.limit_val_batches=1", "test=false",
            f"paths.root_dir={tmp_path}", f"hydra.run.dir={tmp_path}/run"]
    result = subprocess.run([sys.executable, "-m", "readlit.train", *args], cwd=ROOT, capture_output=True, text=True,
                            timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "train/loss" in metrics and math.isfinite(metrics["val/loss"])


@pytest.mark.parametrize("experiment", ["a2v_hdtf", "a2v_mead"])
def test_paper_experiments_refuse_missing_weights_clearly(train_cfg, speechae_ckpt, tmp_path, experiment):
    """Paper settings (512², 121 frames, lr 1e-5, batch 1); each missing checkpoint is named with its key."""
    whisper_tiny_ckpt = write_speechae_ckpt(tmp_path, in_tokens=50, in_dim=384, width=16)
    cfg = train_cfg(f"experiment={experiment}", "vae=tiny")
    assert (cfg.data.size, cfg.data.num_frames, cfg.data.batch_size, cfg.model.optimizer.lr) == (512, 121, 1, 1e-5)
    expected = [([], CheckpointError, "model.speechae_ckpt="),
                ([f"model.speechae_ckpt={speechae_ckpt}"], ConfigError, "was trained on audio windows"),
                ([f"model.speechae_ckpt={whisper_tiny_ckpt}"], CheckpointError,
                 "LTX transformer checkpoint model.net.pretrained=")]
    for overrides, error, message in expected:
        with pytest.raises(HydraException) as info:
            instantiate(train_cfg(f"experiment={experiment}", "vae=tiny", *overrides).model)
        assert isinstance(info.value.__cause__, error) and message in user_error(info.value)


@pytest.mark.parametrize("pixel_frames", [121, 457, 1017, 10_000])
def test_long_videos_use_only_the_positions_training_used(train_cfg, speechae_ckpt, monkeypatch, pixel_frames):
    """Every RoPE position a long video's clips get was given in training (clip-local positions)."""
    import readlit.nn.a2v_dit as a2v_dit

    seen, original = set(), a2v_dit.video_positions

    def recording(*args, **kwargs):
        positions = original(*args, **kwargs)
        seen.update(positions[:, 0].unique().tolist())  # the frame axis
        return positions

    monkeypatch.setattr(a2v_dit, "video_positions", recording)
    model = instantiate(train_cfg("experiment=demo_a2v", *FAST, f"model.speechae_ckpt={speechae_ckpt}").model)
    model.log = lambda *args, **kwargs: None  # no trainer attached
    batch = next(iter(_datamodule(train_cfg("experiment=demo_a2v", *FAST,
                                            f"model.speechae_ckpt={speechae_ckpt}")).train_dataloader()))
    model.training_step(batch, 0)
    trained, seen = seen, set()
    latent = 1 + (pixel_frames - 1) // 8
    sampler = model.pipeline().sampler_for(ANSSampler(steps=1, clip_frames=2, guidance=Guidance("none")))
    frames = padded_length(latent, sampler.clip_frames)
    z_ref, audio, noise = torch.zeros(1, 32, 1, 8, 8), torch.zeros(1, frames, 4, 32), torch.zeros(1, 32, frames, 8, 8)
    with torch.no_grad():
        assert sampler.sample(model.net, z_ref, audio, noise, latent).shape[2] == latent
    assert seen and seen <= trained, f"positions {sorted(seen - trained)[:5]} were never trained"


def test_motion_context_makes_the_first_latent_end_at_the_clips_first_frame(train_cfg, speechae_ckpt):
    """With the 8 past frames encoded and the leading latent dropped, z_1 covers the 8 frames that end at the
    clip's first frame (as the previous clip's last latent does at inference): it changes with frame 0 and not
    with frame 1, which z_2 covers; the audio latents line up the same way."""
    cfg = train_cfg("experiment=demo_a2v", *FAST, f"model.speechae_ckpt={speechae_ckpt}", "data.past_frames=8",
                    "model.motion_context=1.0")
    model = instantiate(cfg.model)
    batch = next(iter(_datamodule(cfg).train_dataloader()))
    assert batch["past_video"].shape[2] == 8 and batch["past_audio_windows"].shape[1] == 8
    z0, c = model.context_latents(batch)
    assert z0.shape == model.latents(batch).shape and c.shape == model.audio_latents(batch, 2).shape
    for frame, changes in ((0, (True, True)), (1, (False, True))):
        moved = dict(batch)
        moved["video"] = batch["video"].clone()
        moved["video"][:, :, frame] += 0.5
        moved["audio_windows"] = batch["audio_windows"].clone()
        moved["audio_windows"][:, frame] += 0.5
        z_moved, c_moved = model.context_latents(moved)
        for k, expected in enumerate(changes, start=1):
            assert bool((z_moved[:, :, k] != z0[:, :, k]).any()) == expected, (frame, k)
            assert bool((c_moved[:, k - 1] != c[:, k - 1]).any()) == expected, (frame, k)
    model.log = lambda *args, **kwargs: None  # no trainer attached
    assert model.training_step(batch, 0).isfinite()
    plain = instantiate(train_cfg("experiment=demo_a2v", *FAST, f"model.speechae_ckpt={speechae_ckpt}",
                                  "model.motion_context=1.0").model)
    plain.log = model.log
    with pytest.raises(ConfigError, match="motion_context=1.0 needs batches with past_video"):
        plain.training_step(next(iter(_datamodule(train_cfg("experiment=demo_a2v", *FAST)).train_dataloader())), 0)
