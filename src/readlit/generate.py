"""Animate a portrait with speech: ``python -m readlit.generate ckpt=... image=... audio=... out=video.mp4``.

Any common image and audio file, any audio length (shorter than one clip to many minutes): the video lasts as
long as the audio (within one frame) and carries it as its sound track. The sampler is the ANS sampler
(``sampler.steps``, ``sampler.guidance.mode=split|joint|none``, scales); the same seed gives the same video.
``speed=fast`` (CUDA) or ``speed=fast_cpu`` pulls the speed levers (:mod:`readlit.sampling.speed`).
Bad input (missing or unreadable files, silent-empty audio, a checkpoint of another stage, an output that cannot
be written, a device this machine lacks) stops with one ``error:`` line and exit code 2, and no mp4 is left.

The output protects what is there: ``out`` may never be one of the inputs, an existing file is replaced only with
``overwrite=true``, and while one generate works on ``out`` a second one to the same file is refused (a lock
beside it); the video is written to a temporary name and renamed into place whole.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from readlit import checks
from readlit.audio import load_audio
from readlit.cli import CONFIG_DIR, check_composes, run_task
from readlit.data.image_io import load_image
from readlit.data.video_io import write_mp4
from readlit.errors import ConfigError, DataError
from readlit.pipeline import TalkingHeadPipeline, check_method, to_uint8_frames
from readlit.utils.lock import exclusive

log = logging.getLogger(__name__)


def check_device(name: str) -> torch.device:
    """The torch device ``name``; ConfigError when this machine has none of that kind."""
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ConfigError(f"device={name} is not a device name (cpu, cuda, cuda:1, mps)") from err
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise ConfigError(f"device={name} but this machine has no such CUDA GPU; use device=cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device={name} but MPS is not available here; use device=cpu")
    return device


def check_output(out: str, overwrite: bool, inputs: dict[str, str]) -> Path:
    """The output path: an .mp4 that is none of the ``inputs`` ({key: path}), in a folder that exists (or can be
    made) and can be written into; an existing file only with ``overwrite``."""
    path = Path(out).expanduser()
    if path.suffix.lower() != ".mp4":
        raise ConfigError(f"out={out} must end in .mp4")
    for key, value in inputs.items():
        given = Path(str(value)).expanduser()
        if given.resolve() == path.resolve() or (path.exists() and given.exists() and path.samefile(given)):
            raise ConfigError(f"out={out} is the {key} file: writing it would destroy the input; choose another out")
    if path.is_dir():
        raise ConfigError(f"out={out} is a folder")
    if path.exists() and not overwrite:
        raise ConfigError(f"out={out} exists: set overwrite=true to replace it, or choose another out")
    checks.writable_folder("out", out, path.parent)
    return path


@contextmanager
def claim(out: Path) -> Iterator[None]:
    """Hold ``out`` for this run: a second generate to the same file is refused while this one works (a lock on a
    hidden file beside ``out``, :func:`readlit.utils.lock.exclusive`)."""
    try:
        with exclusive(out.with_name(f".{out.name}.lock")):
            yield
    except BlockingIOError as err:
        raise DataError(f"out={out} is being written by another generate; wait for it or choose another "
                        "out") from err


def _read(key: str, read: Any, path: str, *args: Any) -> Any:
    """``read(path, *args)``, its input problems named by the config ``key`` (their messages start with the path)."""
    try:
        return read(path, *args)
    except DataError as err:
        raise type(err)(f"{key}={err}") from err


def generate(cfg: DictConfig) -> dict[str, Any]:
    """Write ``cfg.out``; returns what was made (frames, seconds, timings)."""
    device = check_device(cfg.device)
    overwrite = checks.flag("overwrite", cfg.overwrite)
    out = check_output(cfg.out, overwrite, {"image": cfg.image, "audio": cfg.speech, "ckpt": cfg.ckpt})
    check_method(cfg.long_video, key="long_video")  # before the model loads
    checks.integer("seed", cfg.seed)
    for key in ("ema", "progress"):
        checks.flag(key, cfg[key])
    for key in ("image", "speech"):  # cheap checks before the model loads; the files are read below
        if not Path(cfg[key]).expanduser().is_file():
            raise DataError(f"{'audio' if key == 'speech' else key}={cfg[key]}: no such file")
    requested = instantiate(cfg.sampler)
    with claim(out):
        pipeline = TalkingHeadPipeline.from_checkpoint(cfg.ckpt, device, ema=cfg.ema, vae_path=cfg.vae_path)
        pipeline = pipeline.with_speed(instantiate(cfg.speed))
        image = _read("image", load_image, cfg.image, pipeline.size)
        waveform = _read("audio", load_audio, cfg.speech, pipeline.sample_rate)
        sampler = pipeline.sampler_for(requested)
        start = time.perf_counter()
        generator = torch.Generator().manual_seed(cfg.seed)
        video = pipeline.generate(image, waveform, sampler, generator, progress=cfg.progress, method=cfg.long_video)
        seconds = time.perf_counter() - start
        try:
            write_mp4(out, to_uint8_frames(video), pipeline.fps, waveform.numpy(), pipeline.sample_rate,
                      overwrite=overwrite)
        except FileExistsError as err:
            raise DataError(f"out={out} appeared while this run worked; it is kept and nothing was written "
                            "(set overwrite=true to replace it)") from err
    made = {"out": str(out), "frames": video.shape[1], "video_seconds": video.shape[1] / pipeline.fps,
            "audio_seconds": len(waveform) / pipeline.sample_rate, "generation_seconds": seconds}
    log.info("wrote %s: %d frames (%.2f s of video for %.2f s of audio) in %.1f s", out, made["frames"],
             made["video_seconds"], made["audio_seconds"], seconds)
    return made


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="generate")
def _hydra_main(cfg: DictConfig) -> None:
    run_task(generate, cfg)


def main() -> None:
    """Console entry point; ``audio=FILE`` is accepted for ``speech=FILE``."""
    sys.argv = [f"speech={arg[len('audio='):]}" if arg.startswith("audio=") else arg for arg in sys.argv]
    check_composes("generate", sys.argv[1:])
    _hydra_main()


if __name__ == "__main__":
    main()
