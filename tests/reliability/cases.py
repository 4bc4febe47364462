"""The bad-input table: every kind of bad or odd input tried on readlit's command lines (issue #19), one row each.

A row says what a user types and what must happen (:class:`tests.reliability.runner.Case`): a refusal on one
``error:`` line naming the config key (exit 2, no run folder, no output) or, for odd but valid input, a run that
works and makes the right thing. Rows marked ``slow`` need real work (training, sampling a video); the others
refuse before loading anything and run in the default test tier. The kill -9 and concurrency rows are scenarios
(:mod:`tests.reliability.scenarios`).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import torch
from PIL import Image

from tests.reliability import checks
from tests.reliability.fixtures import TINY, face, speech, talking_video
from tests.reliability.runner import Case
from tests.reliability.scenarios import SCENARIOS

# ------------------------------------------------------------------------------------------ train

_TRAIN_SMALL = (*TINY, "data.num_frames=9", "trainer.max_epochs=1", "+trainer.limit_train_batches=1",
                "+trainer.limit_val_batches=1", "+trainer.limit_test_batches=1")
_A2V = ("experiment=demo_a2v", "model.speechae_ckpt={fx.speechae_ckpt}", "callbacks=default")


def train(id: str, *args: str, phrase: str = "", experiment: tuple[str, ...] = ("experiment=demo_speechae",),
          code: int = 2, small: tuple[str, ...] = _TRAIN_SMALL, **kwargs: Any) -> Case:
    """A ``python -m readlit.train`` row on small synthetic data, logs under the case folder (``-m`` goes first)."""
    flags = tuple(arg for arg in args if arg == "-m")
    args = tuple(arg for arg in args if arg != "-m")
    argv = (*flags, *experiment, "paths.root_dir={case}", *small, *args)
    creates = ("logs",) if code == 0 else ()
    return Case(id, "train", argv, code=code, phrase=phrase, creates=creates, **kwargs)


def a2v(id: str, *args: str, phrase: str = "", **kwargs: Any) -> Case:
    return train(id, *args, phrase=phrase, experiment=_A2V, **kwargs)


def vae(id: str, *args: str, phrase: str = "", **kwargs: Any) -> Case:
    return train(id, *args, phrase=phrase, experiment=("experiment=demo_vae",), **kwargs)


def _speechae_ckpt_other_width(case: Path, fx: Any) -> None:
    from readlit.nn.speech_ae import SpeechAE

    checkpoint = torch.load(fx.speechae_last, weights_only=True)
    sizes = {**checkpoint["readlit"]["net_config"], "width": 64}
    net = SpeechAE(**sizes)
    checkpoint["state_dict"] = {f"net.{k}": v for k, v in net.state_dict().items()}
    checkpoint["readlit"]["net_config"] = net.config
    torch.save(checkpoint, case / "wide.ckpt")


def _speechae_ckpt_missing_keys(case: Path, fx: Any) -> None:
    checkpoint = torch.load(fx.speechae_last, weights_only=True)
    checkpoint["state_dict"] = dict(list(checkpoint["state_dict"].items())[: len(checkpoint["state_dict"]) // 2])
    torch.save(checkpoint, case / "partial.ckpt")


def _truncated_copy(source_attr: str, name: str, keep: float = 0.5):
    def setup(case: Path, fx: Any) -> None:
        data = Path(getattr(fx, source_attr)).read_bytes()
        (case / name).write_bytes(data[: int(len(data) * keep)])
    return setup


def _hdtf_cache_damaged(case: Path, fx: Any) -> None:
    (case / "data" / "hdtf").mkdir(parents=True)
    (case / "data" / "hdtf" / "manifest.json").write_text('{"format": 1, "clips": {')


def _a_file(name: str, text: str = "x\n"):
    def setup(case: Path, fx: Any) -> None:
        (case / name).parent.mkdir(parents=True, exist_ok=True)
        (case / name).write_text(text)
    return setup


def _spaced_folder(case: Path, fx: Any) -> None:
    (case / "my runs").mkdir()


TRAIN = [
    train("train-unknown-experiment", "experiment=nope", phrase="experiment/nope"),
    train("train-unknown-key", "model.no_such_key=1", phrase="no_such_key"),
    train("train-unknown-group-option", "logger=nope", phrase="logger/nope"),
    train("train-unknown-data", "data=nope", phrase="data/nope"),
    train("train-unknown-trainer", "trainer=nope", phrase="trainer/nope"),
    train("train-unknown-debug", "debug=nope", phrase="debug/nope"),
    train("train-override-syntax", "data.batch_size=[1,", phrase="data.batch_size=[1,"),
    train("train-override-without-value", "data.batch_size", phrase="data.batch_size"),
    train("train-unquoted-space-path", "ckpt_path={case}/my", "runs/last.ckpt", phrase="quote",
          setup=_spaced_folder),
    train("train-num-frames-not-1-8k", "data.num_frames=32", phrase="data.num_frames=32 is not 1+8k"),
    train("train-num-frames-zero", "data.num_frames=0", phrase="data.num_frames=0"),
    train("train-num-frames-negative", "data.num_frames=-9", phrase="data.num_frames=-9"),
    train("train-num-frames-text", "data.num_frames=abc", phrase="data.num_frames=abc"),
    train("train-num-frames-float", "data.num_frames=9.5", phrase="data.num_frames=9.5"),
    train("train-batch-size-zero", "data.batch_size=0", phrase="data.batch_size=0"),
    train("train-batch-size-negative", "data.batch_size=-4", phrase="data.batch_size=-4"),
    train("train-batch-size-text", "data.batch_size=abc", phrase="data.batch_size=abc"),
    train("train-num-workers-negative", "data.num_workers=-1", phrase="data.num_workers=-1"),
    train("train-fps-zero", "data.fps=0", phrase="data.fps=0"),
    train("train-fps-negative", "data.fps=-25", phrase="data.fps=-25"),
    train("train-sample-rate-zero", "data.sample_rate=0", phrase="data.sample_rate=0"),
    train("train-sample-rate-not-multiple", "data.sample_rate=16001", phrase="data.sample_rate=16001"),
    train("train-size-zero", "data.size=0", phrase="data.size=0"),
    train("train-size-text", "data.size=big", phrase="data.size=big"),
    train("train-session-seconds-zero", "data.session_seconds=0", phrase="data.session_seconds=0"),
    train("train-session-seconds-short", "data.session_seconds=0.2", phrase="data.session_seconds=0.2"),
    train("train-session-seconds-nan", "data.session_seconds=nan", phrase="data.session_seconds=nan"),
    train("train-identities-zero", "data.identities={train:0,val:1,test:1}", phrase="data.identities"),
    train("train-identities-unknown-split", "data.identities={train:1,val:1,test:1,dev:1}", phrase="data.identities"),
    train("train-sessions-zero", "data.sessions_per_identity=0", phrase="data.sessions_per_identity=0"),
    train("train-clip-stride-zero", "data.clip_stride=0", phrase="data.clip_stride=0"),
    train("train-past-frames-negative", "data.past_frames=-1", phrase="data.past_frames=-1"),
    train("train-data-seed-negative", "data.seed=-1", phrase="data.seed=-1"),
    train("train-shuffle-not-bool", "data.shuffle=maybe", phrase="data.shuffle=maybe"),
    train("train-lr-negative", "model.optimizer.lr=-1", phrase="model.optimizer"),
    train("train-lr-text", "model.optimizer.lr=abc", phrase="model.optimizer"),
    train("train-lr-nan", "model.optimizer.lr=nan", phrase="model.optimizer"),
    train("train-weight-decay-negative", "model.optimizer.weight_decay=-1", phrase="model.optimizer"),
    train("train-betas-out-of-range", "model.optimizer.betas=[2.0,0.9]", phrase="model.optimizer"),
    train("train-seed-text", "seed=abc", phrase="seed=abc"),
    train("train-seed-negative", "seed=-1", phrase="seed=-1"),
    train("train-seed-float", "seed=1.5", phrase="seed=1.5"),
    train("train-max-steps-text", "trainer.max_steps=abc", phrase="trainer.max_steps=abc"),
    train("train-max-steps-negative", "trainer.max_steps=-5", phrase="trainer.max_steps=-5"),
    train("train-max-epochs-negative", "trainer.max_epochs=-2", phrase="trainer.max_epochs=-2"),
    train("train-max-epochs-text", "trainer.max_epochs=ten", phrase="trainer.max_epochs=ten"),
    train("train-check-val-zero", "trainer.check_val_every_n_epoch=0", phrase="trainer.check_val_every_n_epoch=0"),
    train("train-check-val-negative", "trainer.check_val_every_n_epoch=-1",
          phrase="trainer.check_val_every_n_epoch=-1"),
    train("train-val-check-interval-zero", "trainer.val_check_interval=0", phrase="trainer.val_check_interval=0"),
    train("train-accumulate-zero", "trainer.accumulate_grad_batches=0", phrase="trainer.accumulate_grad_batches=0"),
    train("train-gradient-clip-negative", "trainer.gradient_clip_val=-1", phrase="trainer.gradient_clip_val=-1"),
    train("train-log-every-zero", "trainer.log_every_n_steps=0", phrase="trainer.log_every_n_steps=0"),
    train("train-precision-unknown", "trainer.precision=17", phrase="trainer.precision=17"),
    train("train-devices-zero", "trainer.devices=0", phrase="trainer.devices=0"),
    train("train-accelerator-tpu", "trainer.accelerator=tpu", phrase="trainer.accelerator=tpu"),
    train("train-gpu-on-cpu-machine", "trainer=gpu", phrase="trainer.accelerator=gpu"),
    train("train-ddp-on-cpu-machine", "trainer=ddp", phrase="trainer.accelerator=gpu"),
    train("train-limit-batches-negative", "+trainer.limit_predict_batches=-1",
          phrase="trainer.limit_predict_batches=-1"),
    train("train-monitor-unknown", "monitor.metric=val/nonexistent", phrase="monitor.metric=val/nonexistent"),
    train("train-monitor-mode-unknown", "monitor.mode=maximum", phrase="monitor.mode=maximum"),
    train("train-optimized-metric-unknown", "optimized_metric=val/nope", phrase="optimized_metric=val/nope"),
    train("train-nothing-to-do", "train=false", "test=false", phrase="train=false"),
    train("train-test-without-checkpoint", "train=false", phrase="ckpt_path"),
    train("train-train-not-bool", "train=maybe", phrase="train=maybe"),
    train("train-ckpt-missing", "ckpt_path={fx.missing}", phrase="ckpt_path="),
    train("train-ckpt-folder", "ckpt_path={fx.folder}", phrase="ckpt_path="),
    train("train-ckpt-empty", "ckpt_path={fx.empty_file}", phrase="ckpt_path="),
    train("train-ckpt-noise", "ckpt_path={fx.noise_file}", phrase="ckpt_path="),
    train("train-ckpt-text", "ckpt_path={fx.text_file}", phrase="ckpt_path="),
    train("train-ckpt-no-header", "ckpt_path={fx.plain_ckpt}", phrase="ckpt_path="),
    train("train-ckpt-pickle", "ckpt_path={fx.pickle_ckpt}", phrase="ckpt_path="),
    train("train-ckpt-other-stage", "ckpt_path={fx.a2v_ckpt}", phrase="ckpt_path="),
    train("train-ckpt-truncated", "ckpt_path={case}/cut.ckpt", phrase="ckpt_path=",
          setup=_truncated_copy("speechae_last", "cut.ckpt")),
    train("train-resume-other-width", "ckpt_path={case}/wide.ckpt", phrase="ckpt_path=",
          setup=_speechae_ckpt_other_width),
    train("train-resume-missing-keys", "ckpt_path={case}/partial.ckpt", phrase="ckpt_path=",
          setup=_speechae_ckpt_missing_keys),
    train("train-root-is-a-file", "paths.root_dir={case}/afile", phrase="paths.root_dir=",
          setup=_a_file("afile")),
    train("train-output-dir-under-a-file", "hydra.run.dir={case}/afile/run", phrase="afile",
          setup=_a_file("afile")),
    train("train-hdtf-without-cache", "data=hdtf", "audio=whisper_random_tiny", phrase="data.root=", small=()),
    train("train-hdtf-damaged-manifest", "data=hdtf", "audio=whisper_random_tiny", "data.root={case}/data/hdtf",
          phrase="manifest.json", setup=_hdtf_cache_damaged, small=()),
    train("train-whisper-folder-missing", "audio=whisper_tiny", "audio.pretrained={fx.missing}",
          phrase="audio.pretrained="),
    train("train-audio-window-odd", "audio.window_tokens=5", phrase="audio.window_tokens=5"),
    train("train-audio-fps-bad", "audio.fps=7", "data.fps=7", phrase="fps=7"),
    train("train-latents-missing", "data.latents={fx.missing}", phrase="data.latents="),
    train("train-latents-a-file", "data.latents={fx.text_file}", phrase="data.latents="),
    a2v("train-a2v-speechae-missing", "model.speechae_ckpt={fx.missing}", phrase="model.speechae_ckpt="),
    a2v("train-a2v-speechae-other-stage", "model.speechae_ckpt={fx.a2v_ckpt}", phrase="model.speechae_ckpt="),
    a2v("train-a2v-audio-encoder-unknown", "model.audio_encoder=nope", phrase="model.audio_encoder=nope"),
    a2v("train-a2v-sigma-negative", "model.ans.sigma=-1", phrase="model.ans.sigma=-1"),
    a2v("train-a2v-sync-prob-above-one", "model.ans.sync_prob=1.5", phrase="model.ans.sync_prob=1.5"),
    a2v("train-a2v-probs-sum-past-one", "model.ans.sync_prob=0.6", "model.ans.clean_prob=0.6",
        phrase="model.ans.sync_prob=0.6"),
    a2v("train-a2v-drop-negative", "model.ans.drop_audio=-0.1", phrase="model.ans.drop_audio=-0.1"),
    a2v("train-a2v-shift-mu-text", "model.ans.shift.mu=abc", phrase="model.ans.shift.mu=abc"),
    a2v("train-a2v-motion-context-above-one", "model.motion_context=2", phrase="model.motion_context=2"),
    a2v("train-a2v-motion-context-without-past", "model.motion_context=0.5", phrase="data.past_frames"),
    a2v("train-a2v-t-bins-zero", "model.t_bins=0", phrase="model.t_bins=0"),
    a2v("train-a2v-net-text-unknown", "model.net.text=nope", phrase="model.net.text=nope"),
    a2v("train-a2v-ema-decay-one", "callbacks=ema", "callbacks.ema.decay=1.0", phrase="callbacks.ema.decay=1.0"),
    a2v("train-a2v-weighting-negative", "model.weighting.weight=-1", phrase="model.weighting.weight=-1"),
    a2v("train-a2v-vae-unknown", "vae=nope", phrase="vae/nope"),
    a2v("train-a2v-vae-folder-missing", "vae=local", "vae.pretrained={fx.missing}", phrase="vae.pretrained="),
    vae("train-vae-tile-frames-zero", "vae.tile_frames=0", phrase="vae.tile_frames=0"),
    vae("train-vae-tile-context-zero", "vae.tile_context=0", phrase="vae.tile_context=0"),
    vae("train-vae-noise-scale", "vae.decode_noise_scale=2", phrase="vae.decode_noise_scale"),
    vae("train-vae-train-frames", "model.train_frames=10", phrase="model.train_frames=10"),
    train("train-vae-mouth-needs-pretrained", experiment=("experiment=demo_vae_mouth",), phrase="vae.pretrained"),
    train("train-sweep-second-lr-bad", "-m", "model.optimizer.lr=1e-3,-1", "hydra.sweep.dir={case}/sweep",
          phrase="model.optimizer"),
    train("train-sweep-second-batch-bad", "-m", "data.batch_size=4,0", "hydra.sweep.dir={case}/sweep",
          phrase="data.batch_size=0"),
    train("train-sweep-unknown-key", "-m", "model.nope=1,2", phrase="nope"),
    train("train-sweep-search-unknown", "-m", "hparams_search=nope", phrase="hparams_search/nope"),
    train("train-short-run-max-steps-2", "trainer.max_steps=2", "++trainer.limit_train_batches=4", code=0,
          check=checks.run_with_checkpoint, slow=True),
    train("train-short-run-max-steps-0", "trainer.max_steps=0", code=0, check=checks.run_folder, slow=True),
    # Hydra's override grammar needs a value with a space quoted (the README says so)
    train("train-unicode-root", 'paths.root_dir="{case}/données ✓"', code=0, check=checks.run_with_checkpoint,
          slow=True),
]

# --------------------------------------------------------------------------------------- generate

_GENERATE = {"ckpt": "{fx.a2v_ckpt}", "image": "{fx.face_png}", "audio": "{fx.speech_wav}",
             "out": "{case}/out.mp4", "paths.root_dir": "{case}", "progress": "false"}


def generate(id: str, changed: dict[str, str] | None = None, *extra: str, phrase: str = "", code: int = 2,
             **kwargs: Any) -> Case:
    """A ``python -m readlit.generate`` row: the shared fixtures with ``changed`` keys (None drops a key)."""
    keys = {**_GENERATE, **(changed or {})}
    argv = tuple(f"{key}={value}" for key, value in keys.items() if value is not None) + extra
    creates = ("out.mp4", "logs") if code == 0 else ()
    return Case(id, "generate", argv, code=code, phrase=phrase, creates=kwargs.pop("creates", creates), **kwargs)


def _write_image(name: str, make):
    def setup(case: Path, fx: Any) -> None:
        make(case / name)
    return setup


def _image_mode(mode: str):
    """The fixture face saved in PIL ``mode`` (the same picture, as a user's file of that kind would hold it)."""
    def make(path: Path) -> None:
        rgb = Image.fromarray(face())
        pixels = np.asarray(rgb).astype(np.float64)
        grey = pixels @ [0.299, 0.587, 0.114]
        if mode == "I;16":
            Image.fromarray(np.round(grey * 257).astype(np.uint16)).save(path)
        elif mode == "I":
            Image.fromarray(np.round(grey * 257).astype(np.int32), mode="I").save(path)
        elif mode == "F":
            Image.fromarray((grey / 255).astype(np.float32), mode="F").save(path)
        elif mode == "RGB16":
            # 16-bit RGB PNG, written by hand (PIL writes no 16-bit colour PNGs)
            _write_png16(path, np.round(pixels * 257).astype(">u2"))
        elif mode == "P":
            # An adaptive palette, as an image editor writes one (convert("P") dithers to the web palette, ~15
            # grey levels away from the picture in the file itself)
            rgb.quantize(256).save(path)
        elif mode == "CMYK":
            rgb.convert("CMYK").save(path)
        elif mode == "RGBA":
            rgba = rgb.convert("RGBA")
            rgba.putalpha(255)
            rgba.save(path)
        else:
            rgb.convert(mode).save(path)
    return make


def _write_png16(path: Path, pixels: np.ndarray) -> None:
    import zlib

    height, width, _ = pixels.shape
    raw = b"".join(b"\x00" + pixels[row].tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))


def _png_bomb(path: Path) -> None:
    """A PNG whose header claims 100000 x 100000 pixels (the data is a few bytes)."""
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
                     + chunk(b"IEND", b""))


def _write_audio(name: str, seconds: float = 1.0, rate: int = 16000, channels: int = 1, **kwargs: Any):
    def setup(case: Path, fx: Any) -> None:
        mono = speech(seconds, rate)
        data = np.stack([mono * (1 - 0.1 * c) for c in range(channels)], axis=1) if channels > 1 else mono
        soundfile.write(case / name, data, rate, **kwargs)
    return setup


def _write_aac(name: str, seconds: float, rate: int = 16000):
    def setup(case: Path, fx: Any) -> None:
        from tests.fake_raw import write_media

        write_media(case / name, None, 25, speech(seconds, rate)[None], rate)
    return setup


def _truncated_wav(case: Path, fx: Any) -> None:
    """A WAV whose header promises 7.2 s but that holds 0.07 s (a copy cut short)."""
    soundfile.write(case / "long.wav", speech(7.2), 16000, subtype="PCM_16")
    data = (case / "long.wav").read_bytes()
    (case / "cut.wav").write_bytes(data[: 44 + 2 * 1120])
    (case / "long.wav").unlink()


def _float_wav(values: float):
    def setup(case: Path, fx: Any) -> None:
        audio = speech(1.0)
        audio[4000:4100] = values
        soundfile.write(case / "bad.wav", audio, 16000, subtype="FLOAT")
    return setup


def _copy_as(attr: str, name: str):
    def setup(case: Path, fx: Any) -> None:
        (case / name).write_bytes(Path(getattr(fx, attr)).read_bytes())
    return setup


def _existing_out(case: Path, fx: Any) -> None:
    (case / "out.mp4").write_bytes(b"the user's earlier video")


def _a2v_variant(change):
    def setup(case: Path, fx: Any) -> None:
        checkpoint = torch.load(fx.a2v_ckpt, weights_only=True)
        change(checkpoint)
        torch.save(checkpoint, case / "variant.ckpt")
    return setup


def _drop_half_state(checkpoint: dict) -> None:
    keys = [k for k in checkpoint["state_dict"] if k.startswith("net.")]
    for key in keys[: len(keys) // 2]:
        del checkpoint["state_dict"][key]
    checkpoint.pop("ema_state_dict", None)


def _no_clip(checkpoint: dict) -> None:
    checkpoint["readlit"]["clip_frames"] = None


def _odd_header(checkpoint: dict) -> None:
    checkpoint["readlit"]["surprise"] = 1


GENERATE = [
    generate("generate-ckpt-unset", {"ckpt": None}, phrase="ckpt is required"),
    generate("generate-image-unset", {"image": None}, phrase="image is required"),
    generate("generate-audio-unset", {"audio": None}, phrase="speech is required"),
    generate("generate-out-unset", {"out": None}, phrase="out is required"),
    generate("generate-image-missing", {"image": "{fx.missing}"}, phrase="image="),
    generate("generate-audio-missing", {"audio": "{fx.missing}"}, phrase="audio="),
    generate("generate-ckpt-missing", {"ckpt": "{fx.missing}"}, phrase="ckpt="),
    generate("generate-ckpt-folder", {"ckpt": "{fx.folder}"}, phrase="ckpt="),
    generate("generate-ckpt-empty", {"ckpt": "{fx.empty_file}"}, phrase="ckpt="),
    generate("generate-ckpt-noise", {"ckpt": "{fx.noise_file}"}, phrase="ckpt="),
    generate("generate-ckpt-pickle", {"ckpt": "{fx.pickle_ckpt}"}, phrase="ckpt="),
    generate("generate-ckpt-other-stage", {"ckpt": "{fx.speechae_ckpt}"}, phrase="ckpt="),
    generate("generate-ckpt-truncated", {"ckpt": "{case}/cut.ckpt"}, phrase="ckpt=",
             setup=_truncated_copy("a2v_ckpt", "cut.ckpt")),
    generate("generate-ckpt-missing-weights", {"ckpt": "{case}/variant.ckpt"}, phrase="ckpt=",
             setup=_a2v_variant(_drop_half_state)),
    generate("generate-ckpt-no-training-clip", {"ckpt": "{case}/variant.ckpt"}, phrase="ckpt=",
             setup=_a2v_variant(_no_clip)),
    generate("generate-ckpt-odd-header", {"ckpt": "{case}/variant.ckpt"}, phrase="ckpt=",
             setup=_a2v_variant(_odd_header)),
    generate("generate-vae-path-missing", {"vae_path": "{fx.missing}"}, phrase="vae_path="),
    generate("generate-out-avi", {"out": "{case}/out.avi"}, phrase="out="),
    generate("generate-out-under-dev-null", {"out": "/dev/null/video.mp4"}, phrase="out=/dev/null/video.mp4"),
    generate("generate-out-under-a-file", {"out": "{case}/afile/video.mp4"}, phrase="out=",
             setup=_a_file("afile")),
    generate("generate-out-is-a-folder", {"out": "{case}/folder.mp4"}, phrase="out=",
             setup=lambda case, fx: (case / "folder.mp4").mkdir()),
    generate("generate-out-unwritable", {"out": "/proc/video.mp4"}, phrase="out=/proc/video.mp4"),
    generate("generate-out-is-the-audio", {"audio": "{case}/talk.mp4", "out": "{case}/talk.mp4"}, phrase="out=",
             setup=_copy_as("talk_mp4", "talk.mp4")),
    generate("generate-out-is-the-image", {"image": "{case}/face.mp4", "out": "{case}/face.mp4"}, phrase="out=",
             setup=_copy_as("face_png", "face.mp4")),
    generate("generate-out-exists", {}, phrase="overwrite=true", setup=_existing_out),
    generate("generate-overwrite-not-bool", {"overwrite": "maybe"}, phrase="overwrite=maybe", setup=_existing_out),
    generate("generate-device-cuda-absent", {"device": "cuda:7"}, phrase="device=cuda:7"),
    generate("generate-device-tpu", {"device": "tpu"}, phrase="device=tpu"),
    generate("generate-device-mps", {"device": "mps"}, phrase="device=mps"),
    generate("generate-long-video-unknown", {"long_video": "async"}, phrase="long_video='async'"),
    generate("generate-steps-zero", {"sampler.steps": "0"}, phrase="sampler.steps=0"),
    generate("generate-steps-negative", {"sampler.steps": "-3"}, phrase="sampler.steps=-3"),
    generate("generate-steps-text", {"sampler.steps": "abc"}, phrase="sampler.steps=abc"),
    generate("generate-guidance-mode-unknown", {"sampler.guidance.mode": "nope"},
             phrase="sampler.guidance.mode=nope"),
    generate("generate-audio-scale-nan", {"sampler.guidance.audio_scale": "nan"},
             phrase="sampler.guidance.audio_scale=nan"),
    generate("generate-audio-scale-inf", {"sampler.guidance.audio_scale": "inf"},
             phrase="sampler.guidance.audio_scale=inf"),
    generate("generate-ref-scale-text", {"sampler.guidance.ref_scale": "abc"},
             phrase="sampler.guidance.ref_scale=abc"),
    generate("generate-clip-frames-one", {"sampler.clip_frames": "1"}, phrase="sampler.clip_frames=1"),
    generate("generate-clip-frames-zero", {"sampler.clip_frames": "0"}, phrase="sampler.clip_frames=0"),
    generate("generate-clip-frames-huge", {"sampler.clip_frames": "1000"}, phrase="sampler.clip_frames=1000"),
    generate("generate-shift-mu-text", {"sampler.shift": "{_target_:readlit.flow.schedule.TimeShift,mu:abc}"},
             phrase="sampler.shift.mu=abc"),
    generate("generate-seed-text", {"seed": "abc"}, phrase="seed=abc"),
    generate("generate-ema-not-bool", {"ema": "maybe"}, phrase="ema=maybe"),
    generate("generate-image-text", {"image": "{fx.text_file}"}, phrase="image="),
    generate("generate-image-empty", {"image": "{fx.empty_file}"}, phrase="image="),
    generate("generate-image-truncated", {"image": "{case}/cut.png"}, phrase="image=",
             setup=_truncated_copy("face_png", "cut.png")),
    generate("generate-image-tiny", {"image": "{case}/tiny.png"}, phrase="image=",
             setup=_write_image("tiny.png", lambda p: Image.new("RGB", (4, 4)).save(p))),
    generate("generate-image-bomb", {"image": "{case}/bomb.png"}, phrase="image=", setup=_write_image(
        "bomb.png", _png_bomb)),
    generate("generate-image-is-audio", {"image": "{fx.speech_wav}"}, phrase="image="),
    generate("generate-audio-text", {"audio": "{fx.text_file}"}, phrase="audio="),
    generate("generate-audio-empty", {"audio": "{fx.empty_file}"}, phrase="audio="),
    generate("generate-audio-no-samples", {"audio": "{case}/none.wav"}, phrase="audio=",
             setup=lambda case, fx: soundfile.write(case / "none.wav", np.zeros(0, np.float32), 16000)),
    generate("generate-audio-is-image", {"audio": "{fx.face_png}"}, phrase="audio="),
    generate("generate-audio-video-without-sound", {"audio": "{case}/mute.mp4"}, phrase="audio=",
             setup=lambda case, fx: talking_video(case / "mute.mp4", 1.0, with_audio=False)),
    generate("generate-audio-truncated-wav", {"audio": "{case}/cut.wav"}, phrase="truncated",
             setup=_truncated_wav),
    generate("generate-audio-nan", {"audio": "{case}/bad.wav"}, phrase="bad.wav", setup=_float_wav(np.nan)),
    generate("generate-audio-inf", {"audio": "{case}/bad.wav"}, phrase="bad.wav", setup=_float_wav(np.inf)),
    generate("generate-unquoted-space-path", {"out": "{case}/my"}, "video.mp4", phrase="quote"),
    # odd but valid input: it must work, and make the right thing
    *[generate(f"generate-image-mode-{mode.replace(';', '').lower()}", {"image": f"{{case}}/face.{ext}"}, code=0,
               setup=_write_image(f"face.{ext}", _image_mode(mode)), slow=True, check=checks.image_loads_like_rgb(
                   f"face.{ext}", grey=mode in ("L", "LA", "I;16", "I", "F")))
      for mode, ext in (("L", "png"), ("LA", "png"), ("P", "png"), ("I;16", "png"), ("I", "tif"), ("F", "tif"),
                        ("RGBA", "png"), ("CMYK", "jpg"), ("RGB16", "png"), ("RGB", "webp"))],
    *[generate(f"generate-audio-{name}", {"audio": f"{{case}}/{file}"}, code=0, setup=make, slow=True,
               check=checks.video_matches_audio(seconds))
      for name, file, make, seconds in (
          ("mp3", "s.mp3", _write_audio("s.mp3", 1.0, 16000, format="MP3"), 1.0),
          ("ogg", "s.ogg", _write_audio("s.ogg", 1.0, 16000, format="OGG"), 1.0),
          ("flac", "s.flac", _write_audio("s.flac", 1.0, 16000), 1.0),
          ("m4a-1s", "s.m4a", _write_aac("s.m4a", 1.0), 1.0),
          ("m4a-44k", "s.m4a", _write_aac("s.m4a", 1.3, 44100), 1.3),
          ("8khz", "s.wav", _write_audio("s.wav", 1.0, 8000), 1.0),
          ("6-channel", "s.wav", _write_audio("s.wav", 1.0, 16000, channels=6), 1.0),
          ("one-sample", "s.wav", lambda case, fx: soundfile.write(case / "s.wav", np.full(1, 0.1, np.float32),
                                                                    16000), 1 / 16000),
          ("silence", "s.wav", lambda case, fx: soundfile.write(case / "s.wav", np.zeros(16000, np.float32),
                                                                 16000), 1.0),
          ("video-track", "talk.mp4", _copy_as("talk_mp4", "talk.mp4"), 1.0),
      )],
    generate("generate-unicode-paths", {"image": '"{case}/visage é.png"', "out": '"{case}/vidéo ✓.mp4"'}, code=0,
             setup=_copy_as("face_png", "visage é.png"), creates=("vidéo ✓.mp4", "logs"), slow=True,
             check=checks.video_matches_audio(1.0, "vidéo ✓.mp4")),
    generate("generate-overwrite-true", {"overwrite": "true"}, code=0, setup=_existing_out, slow=True,
             check=checks.video_matches_audio(1.0), creates=("out.mp4", "logs"), replaces=("out.mp4",)),
    generate("generate-new-nested-folder", {"out": "{case}/new/deeper/out.mp4"}, code=0, slow=True,
             creates=("new", "logs"), check=checks.video_matches_audio(1.0, "new/deeper/out.mp4")),
]

# --------------------------------------------------------------------------------------- evaluate

_EVALUATE = {"generated": "{fx.videos}/generated", "reference": "{fx.videos}/reference", "out": "{case}/report",
             "paths.root_dir": "{case}", "metrics": "[psnr,ssim]"}


def evaluate(id: str, changed: dict[str, str] | None = None, *extra: str, phrase: str = "", code: int = 2,
             **kwargs: Any) -> Case:
    keys = {**_EVALUATE, **(changed or {})}
    argv = tuple(f"{key}={value}" for key, value in keys.items() if value is not None) + extra
    creates = ("report", "logs") if code == 0 else ()
    return Case(id, "evaluate", argv, code=code, phrase=phrase, creates=creates, **kwargs)


def _video_folders(generated: list[tuple[str, Any]], reference: list[tuple[str, Any]]):
    def setup(case: Path, fx: Any) -> None:
        for side, files in (("gen", generated), ("ref", reference)):
            (case / side).mkdir()
            for name, make in files:
                make(case / side / name)
    return setup


def _video(seconds: float = 1.4, size: int = 64):
    return lambda path: talking_video(path, seconds, size)


_GEN_REF = {"generated": "{case}/gen", "reference": "{case}/ref"}

EVALUATE = [
    evaluate("evaluate-folders-missing", {"generated": "{fx.missing}", "reference": "{fx.missing}"},
             phrase="generated="),
    evaluate("evaluate-generated-empty", _GEN_REF, phrase="generated=",
             setup=_video_folders([], [("clip0.mp4", _video())])),
    evaluate("evaluate-reference-absent", _GEN_REF, phrase="reference=",
             setup=_video_folders([("clip0.mp4", _video())], [])),
    evaluate("evaluate-generated-corrupt", _GEN_REF, phrase="clip0.mp4",
             setup=_video_folders([("clip0.mp4", lambda p: p.write_bytes(b"junk" * 100))],
                                  [("clip0.mp4", _video())])),
    evaluate("evaluate-sizes-differ", _GEN_REF, phrase="clip0",
             setup=_video_folders([("clip0.mp4", _video(1.4, 64))], [("clip0.mp4", _video(1.4, 32))])),
    evaluate("evaluate-metric-unknown", {"metrics": "[nope]"}, phrase="metrics="),
    evaluate("evaluate-limit-zero", {"ckpt": "{fx.a2v_ckpt}", "generated": None, "reference": None},
             "limit=0", phrase="limit=0"),
    evaluate("evaluate-limit-negative", {"ckpt": "{fx.a2v_ckpt}"}, "limit=-1", phrase="limit=-1"),
    evaluate("evaluate-limit-text", {"ckpt": "{fx.a2v_ckpt}"}, "limit=abc", phrase="limit=abc"),
    evaluate("evaluate-frames-not-1-8k", {"ckpt": "{fx.a2v_ckpt}"}, "frames=[10]", phrase="frames="),
    evaluate("evaluate-frames-zero", {"ckpt": "{fx.a2v_ckpt}"}, "frames=[0]", phrase="frames="),
    evaluate("evaluate-device-tpu", {"device": "tpu"}, phrase="device=tpu"),
    evaluate("evaluate-long-video-unknown", {"ckpt": "{fx.a2v_ckpt}", "long_video": "async"},
             phrase="long_video='async'"),
    evaluate("evaluate-fvd-protocol-unknown", {"metrics": "[fvd]", "fvd.protocol": "nope"}, phrase="fvd.protocol="),
    evaluate("evaluate-sync-mode-unknown", {"metrics": "[sync]", "sync.mode": "nope"}, phrase="sync.mode="),
    evaluate("evaluate-ckpt-missing", {"ckpt": "{fx.missing}"}, phrase="ckpt="),
    evaluate("evaluate-ckpt-other-stage", {"ckpt": "{fx.speechae_ckpt}"}, phrase="ckpt="),
    evaluate("evaluate-out-a-file", {"out": "{case}/afile"}, phrase="out=", setup=_a_file("afile")),
    evaluate("evaluate-weights-garbage", {"metrics": "[lpips]", "weights.alexnet": "{fx.noise_file}"},
             phrase="alexnet"),
    evaluate("evaluate-manifest-damaged", {**_GEN_REF, "manifest": "{case}/gen/manifest.json", "metrics": "[psnr]"},
             phrase="manifest.json", setup=lambda case, fx: (
                 _video_folders([("clip0.mp4", _video())], [("clip0.mp4", _video())])(case, fx),
                 (case / "gen" / "manifest.json").write_text("{"))),
    evaluate("evaluate-identical-videos-json-valid", {"metrics": "[psnr]"}, code=0, check=checks.results_json_valid,
             slow=True),
]

# ------------------------------------------------------------------------------------- preprocess

_PREPROCESS = ("data=hdtf", "raw_dir={fx.raw_hdtf}", "out_dir={case}/cache", "audio=whisper_random_tiny",
               "data.size=64", "progress=false", "workers=1", "paths.root_dir={case}")


def preprocess(id: str, *args: str, phrase: str = "", code: int = 2, **kwargs: Any) -> Case:
    creates = ("cache", "logs") if code == 0 else ()
    return Case(id, "preprocess", (*_PREPROCESS, *args), code=code, phrase=phrase,
                creates=kwargs.pop("creates", creates), **kwargs)


def _raw_only_broken(case: Path, fx: Any) -> None:
    (case / "raw" / "videos").mkdir(parents=True)
    (case / "raw" / "videos" / "RadioA_0.mp4").write_bytes(b"broken" * 1000)
    (case / "raw" / "HDTF_dataset").mkdir()
    (case / "raw" / "HDTF_dataset" / "RD_crop_wh.txt").write_text("RadioA_0.mp4 24 112 8 112\n")


def _cache_other_settings(case: Path, fx: Any) -> None:
    clip = case / "cache" / "clips" / "RadioA_0"
    clip.mkdir(parents=True)
    (clip / "meta.json").write_text('{"clip_id": "RadioA_0", "fps": 30, "size": 64, "sample_rate": 16000}')


PREPROCESS = [
    Case("preprocess-raw-dir-unset", "preprocess", tuple(a for a in _PREPROCESS if not a.startswith("raw_dir")),
         phrase="raw_dir is required"),
    preprocess("preprocess-raw-dir-missing", "raw_dir={fx.missing}", phrase="raw_dir="),
    preprocess("preprocess-raw-dir-a-file", "raw_dir={fx.text_file}", phrase="raw_dir="),
    preprocess("preprocess-raw-dir-empty", "raw_dir={fx.folder}", phrase="raw_dir="),
    preprocess("preprocess-raw-only-broken", "raw_dir={case}/raw", phrase="no clip", setup=_raw_only_broken),
    preprocess("preprocess-data-synthetic", "data=synthetic", phrase="data="),
    preprocess("preprocess-mead-layout-on-hdtf", "data=mead", phrase="raw_dir="),
    preprocess("preprocess-size-odd", "size=15", phrase="size=15"),
    preprocess("preprocess-size-text", "size=big", phrase="size=big"),
    preprocess("preprocess-fps-zero", "fps=0", phrase="fps=0"),
    preprocess("preprocess-fps-not-divisor", "fps=7", phrase="fps=7"),
    preprocess("preprocess-sample-rate-zero", "sample_rate=0", phrase="sample_rate=0"),
    preprocess("preprocess-min-frames-zero", "min_frames=0", phrase="min_frames=0"),
    preprocess("preprocess-min-frames-text", "min_frames=abc", phrase="min_frames=abc"),
    preprocess("preprocess-workers-zero", "workers=0", phrase="workers=0"),
    preprocess("preprocess-workers-negative", "workers=-1", phrase="workers=-1"),
    preprocess("preprocess-workers-text", "workers=many", phrase="workers=many"),
    preprocess("preprocess-scene-cut-negative", "scene_cut=-1", phrase="scene_cut=-1"),
    preprocess("preprocess-scene-cut-above-255", "scene_cut=300", phrase="scene_cut=300"),
    preprocess("preprocess-scene-cut-text", "scene_cut=abc", phrase="scene_cut=abc"),
    preprocess("preprocess-whisper-not-bool", "whisper=maybe", phrase="whisper=maybe"),
    preprocess("preprocess-split-negative", "split.fractions={train:-1,test:2}", phrase="split.fractions="),
    preprocess("preprocess-split-official-hdtf", "split.official=true", phrase="split.official=true"),
    preprocess("preprocess-split-seed-text", "split.seed=abc", phrase="split.seed=abc"),
    preprocess("preprocess-stage-unknown", "stage=nope", phrase="stage=nope"),
    preprocess("preprocess-out-dir-a-file", "out_dir={case}/afile", phrase="out_dir=", setup=_a_file("afile")),
    preprocess("preprocess-cascade-unknown", "raw.hdtf.crop_windows=false", "face_track.detector.cascade=nope.xml",
               phrase="face_track.detector.cascade="),
    preprocess("preprocess-track-every-zero", "raw.hdtf.crop_windows=false", "face_track.every=0",
               phrase="face_track.every=0"),
    preprocess("preprocess-track-scale-negative", "raw.hdtf.crop_windows=false", "face_track.scale=-1",
               phrase="face_track.scale=-1"),
    preprocess("preprocess-track-min-found", "raw.hdtf.crop_windows=false", "face_track.min_found=2",
               phrase="face_track.min_found=2"),
    preprocess("preprocess-track-smooth-zero", "raw.hdtf.crop_windows=false", "face_track.smooth_frames=0",
               phrase="face_track.smooth_frames=0"),
    preprocess("preprocess-metadata-dir-missing", "raw.hdtf.metadata_dir={fx.missing}",
               phrase="raw.hdtf.metadata_dir="),
    preprocess("preprocess-cache-other-settings", phrase="out_dir=", setup=_cache_other_settings),
    preprocess("preprocess-whisper-missing", "audio=whisper_tiny", "audio.pretrained={fx.missing}",
               phrase="audio.pretrained="),
]

# --------------------------------------------------------------------------------- latent cache

_LATENTS = ("stage=latents", "data=synthetic", "vae=demo", "audio=whisper_random_tiny",
            "data.identities={train:2,val:1,test:1}", "data.session_seconds=2", "data.num_frames=9",
            "latents.out_dir={case}/latents", "latents.shard_size=2", "latents.batch_size=2", "progress=false",
            "paths.root_dir={case}")


def latents(id: str, *args: str, phrase: str = "", code: int = 2, **kwargs: Any) -> Case:
    creates = ("latents", "logs") if code == 0 else ()
    return Case(id, "preprocess", (*_LATENTS, *args), code=code, phrase=phrase,
                creates=kwargs.pop("creates", creates), **kwargs)


def _foreign_build(case: Path, fx: Any) -> None:
    (case / "latents").mkdir()
    (case / "latents" / "build.json").write_text('{"vae": {"fingerprint": "other"}}')


LATENTS = [
    Case("latents-out-dir-unset", "preprocess", tuple(a for a in _LATENTS if not a.startswith("latents.out_dir")),
         phrase="latents.out_dir is required"),
    latents("latents-out-dir-a-file", "latents.out_dir={case}/afile", phrase="latents.out_dir=",
            setup=_a_file("afile")),
    latents("latents-device-tpu", "latents.device=tpu", phrase="latents.device=tpu"),
    latents("latents-device-cuda-absent", "latents.device=cuda:3", phrase="latents.device=cuda:3"),
    latents("latents-shard-size-zero", "latents.shard_size=0", phrase="latents.shard_size=0"),
    latents("latents-shard-size-text", "latents.shard_size=abc", phrase="latents.shard_size=abc"),
    latents("latents-batch-size-zero", "latents.batch_size=0", phrase="latents.batch_size=0"),
    latents("latents-splits-unknown", "latents.splits=[nope]", phrase="latents.splits="),
    latents("latents-splits-empty", "latents.splits=[]", phrase="latents.splits="),
    latents("latents-vae-unknown", "vae=nope", phrase="vae/nope"),
    latents("latents-foreign-build", phrase="latents.out_dir=", setup=_foreign_build),
    Case("latents-data-hdtf-without-cache", "preprocess",
         (*(a for a in _LATENTS if not a.startswith(("data=", "data.identities", "data.session_seconds"))),
          "data=hdtf"), phrase="data.root="),
    latents("latents-num-frames-bad", "data.num_frames=10", phrase="data.num_frames=10"),
    latents("latents-vae-mismatch-size", "data.size=60", phrase="data.size=60"),
    latents("latents-builds", code=0, slow=True, check=checks.latent_cache_readable),
]

# ------------------------------------------------------------------------ bench, synthetic, tools

BENCH = [
    Case("bench-what-unknown", "bench", ("nope",), phrase="nope"),
    Case("bench-experiment-unknown", "bench", ("latents", "--experiment", "nope"), phrase="experiment/nope"),
    Case("bench-steps-zero", "bench", ("latents", "--steps", "0"), phrase="--steps"),
    Case("bench-steps-negative", "bench", ("latents", "--steps", "-2"), phrase="--steps"),
    Case("bench-steps-text", "bench", ("latents", "--steps", "ten"), phrase="--steps"),
    Case("bench-override-bad", "bench", ("latents", "--", "data.batch_size=0"), phrase="data.batch_size=0"),
    Case("bench-reach-vae-unknown", "bench", ("reach", "--", "vae=nope"), phrase="vae/nope"),
    Case("bench-readme-form", "bench", ("latents", "--experiment", "demo_a2v", "--steps", "1", "--",
                                        "vae=demo", "data.identities={train:2,val:1,test:1}",
                                        "data.session_seconds=2", "data.num_frames=9", "data.batch_size=2"),
         code=0, slow=True, timeout=600),
]


def synthetic(id: str, *args: str, phrase: str = "", code: int = 2, **kwargs: Any) -> Case:
    base = {"--seconds": "0.4", "--size": "32", "--out": "{case}/s.mp4"}
    pairs = dict(zip(args[::2], args[1::2], strict=True))
    argv = tuple(x for key, value in {**base, **pairs}.items() if value is not None for x in (key, value))
    creates = ("s.mp4",) if code == 0 else ()
    return Case(id, "synthetic", argv, code=code, phrase=phrase, creates=kwargs.pop("creates", creates), **kwargs)


SYNTHETIC = [
    synthetic("synthetic-out-exists", phrase="--overwrite", setup=_a_file("s.mp4", "the user's file")),
    synthetic("synthetic-seconds-zero", "--seconds", "0", phrase="--seconds"),
    synthetic("synthetic-seconds-negative", "--seconds", "-1", phrase="--seconds"),
    synthetic("synthetic-seconds-nan", "--seconds", "nan", phrase="--seconds"),
    synthetic("synthetic-size-tiny", "--size", "4", phrase="--size"),
    synthetic("synthetic-size-odd", "--size", "33", phrase="--size"),
    synthetic("synthetic-identity-negative", "--identity", "-1", phrase="--identity"),
    synthetic("synthetic-seed-negative", "--seed", "-1", phrase="--seed"),
    synthetic("synthetic-seconds-text", "--seconds", "abc", phrase="--seconds"),
    synthetic("synthetic-out-avi", "--out", "{case}/s.avi", phrase="--out"),
    synthetic("synthetic-out-under-a-file", "--out", "{case}/afile/s.mp4", phrase="--out", setup=_a_file("afile")),
    synthetic("synthetic-writes", code=0, check=checks.mp4_frames(9)),
]

TOOLS = [
    Case("checkpoint-info-missing", "checkpoint", ("info", "{fx.missing}"), phrase="ckpt="),
    Case("checkpoint-info-noise", "checkpoint", ("info", "{fx.noise_file}"), phrase="ckpt="),
    Case("checkpoint-upgrade-current", "checkpoint", ("upgrade", "{fx.a2v_ckpt}", "{case}/new.ckpt", "--vae-dir",
                                                      "{case}/vae"), phrase="already of format"),
    Case("checkpoint-upgrade-onto-itself", "checkpoint", ("upgrade", "{case}/old.ckpt", "{case}/old.ckpt",
                                                          "--vae-dir", "{case}/vae"), phrase="NEW=",
         setup=_copy_as("a2v_ckpt", "old.ckpt")),
    Case("audio-tool-unreadable", "audio", ("{fx.noise_file}",), phrase="noise.bin"),
]

CASES: list[Case] = [*TRAIN, *GENERATE, *EVALUATE, *PREPROCESS, *LATENTS, *BENCH, *SYNTHETIC, *TOOLS, *SCENARIOS]
