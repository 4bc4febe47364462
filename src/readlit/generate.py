"""Animate a portrait with speech: ``python -m readlit.generate ckpt=... image=... audio=... out=video.mp4``.

Any common image and audio file, any audio length (shorter than one clip to many minutes): the video lasts as
long as the audio (within one frame) and carries it as its sound track. The sampler is the ANS sampler
(``sampler.steps``, ``sampler.guidance.mode=split|joint|none``, scales); the same seed gives the same video.
``speed=fast`` (CUDA) or ``speed=fast_cpu`` pulls the speed levers (:mod:`readlit.sampling.speed`).
Bad input (missing or unreadable files, silent-empty audio, a checkpoint of another stage, an output that cannot
be written, a device this machine lacks) stops with one ``error:`` line and exit code 2, and no mp4 is left.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from readlit.audio import load_audio
from readlit.cli import check_composes, run_task
from readlit.data.image_io import load_image
from readlit.data.video_io import write_mp4
from readlit.errors import AudioError, ConfigError, DataError
from readlit.pipeline import TalkingHeadPipeline, check_method, to_uint8_frames

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


def check_output(out: str) -> Path:
    """The output path: an .mp4 in a folder that exists (or can be made) and is writable."""
    path = Path(out).expanduser()
    if path.suffix.lower() != ".mp4":
        raise ConfigError(f"out={out} must end in .mp4")
    folder = path.parent
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"out={out}: cannot write into {existing}")
    if path.is_dir():
        raise ConfigError(f"out={out} is a folder")
    return path


def generate(cfg: DictConfig) -> dict[str, Any]:
    """Write ``cfg.out``; returns what was made (frames, seconds, timings)."""
    device = check_device(cfg.device)
    out = check_output(cfg.out)
    check_method(cfg.long_video, key="long_video")  # before the model loads
    for key in ("image", "speech"):  # cheap checks before the model loads; the files are read below
        if not Path(cfg[key]).expanduser().is_file():
            raise DataError(f"{'audio' if key == 'speech' else key}={cfg[key]}: no such file")
    pipeline = TalkingHeadPipeline.from_checkpoint(cfg.ckpt, device, ema=cfg.ema, vae_path=cfg.vae_path)
    pipeline = pipeline.with_speed(instantiate(cfg.speed))
    image = load_image(cfg.image, pipeline.size)
    waveform = load_audio(cfg.speech, pipeline.sample_rate)
    if waveform.numel() == 0:
        raise AudioError(f"audio={cfg.speech} has no samples")
    sampler = pipeline.sampler_for(instantiate(cfg.sampler))
    start = time.perf_counter()
    generator = torch.Generator().manual_seed(cfg.seed)
    video = pipeline.generate(image, waveform, sampler, generator, progress=cfg.progress, method=cfg.long_video)
    seconds = time.perf_counter() - start
    out.parent.mkdir(parents=True, exist_ok=True)
    write_mp4(out, to_uint8_frames(video), pipeline.fps, waveform.numpy(), pipeline.sample_rate)
    made = {"out": str(out), "frames": video.shape[1], "video_seconds": video.shape[1] / pipeline.fps,
            "audio_seconds": len(waveform) / pipeline.sample_rate, "generation_seconds": seconds}
    log.info("wrote %s: %d frames (%.2f s of video for %.2f s of audio) in %.1f s", out, made["frames"],
             made["video_seconds"], made["audio_seconds"], seconds)
    return made


@hydra.main(version_base="1.3", config_path="../../conf", config_name="generate")
def _hydra_main(cfg: DictConfig) -> None:
    run_task(generate, cfg)


def main() -> None:
    """Console entry point; ``audio=FILE`` is accepted for ``speech=FILE``."""
    sys.argv = [f"speech={arg[len('audio='):]}" if arg.startswith("audio=") else arg for arg in sys.argv]
    check_composes("generate", sys.argv[1:])
    _hydra_main()


if __name__ == "__main__":
    main()
