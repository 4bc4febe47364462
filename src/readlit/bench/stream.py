"""``python -m readlit.bench stream``: the whole pipeline, from speech to mp4, with random weights of every part.

- time to the first streamed clip for 5 s and for 60 s of speech (it should not grow with the audio);
- end to end on one piece of speech: audio front end (Whisper, SpeechAE; with the reference's encoding), backbone
  (the ANS sampler), VAE decode and mp4 encode, and the share of each;
- streaming with ``speed.overlap_decode`` (clip j decoded while clip j + 1 is denoised) against without: the time
  to stream the whole video, and whether the frames are the same.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from readlit.audio import WhisperFrontEnd
from readlit.bench.nets import Geometry, build_net, sampler
from readlit.bench.report import Report
from readlit.bench.timing import interleaved, synchronize
from readlit.data.video_io import write_mp4
from readlit.flow.schedule import TimeShift
from readlit.nn.speech_ae import SpeechAE
from readlit.pipeline import TalkingHeadPipeline, plan_frames, to_uint8_frames
from readlit.resolvers import PROJECT_ROOT
from readlit.sampling.speed import SpeedLevers
from readlit.vae import VideoVAE

# Whisper-tiny's encoder shape (openai/whisper-tiny), randomly initialised: the paper's front end at its real cost.
WHISPER_TINY = {"d_model": 384, "encoder_layers": 4, "encoder_attention_heads": 6, "encoder_ffn_dim": 1536,
                "num_mel_bins": 80, "max_source_positions": 1500}


def random_vae(name: str, device: torch.device) -> VideoVAE:
    """The VAE of ``conf/vae/<name>.yaml`` with its architecture randomly initialised (a pretrained config's
    architecture is diffusers' default: LTX-Video 0.9.0)."""
    cfg = OmegaConf.to_container(OmegaConf.load(PROJECT_ROOT / "conf" / "vae" / f"{name}.yaml"))
    cfg.pop("_target_")
    if cfg.get("pretrained") is not None:
        cfg.update(pretrained=None, subfolder=None, architecture={}, logvar_init=-8.0)
    with torch.device(device):
        return VideoVAE(**cfg)


def random_pipeline(size: str, geometry: Geometry, vae: str, whisper: str, device: torch.device) -> TalkingHeadPipeline:
    """A pipeline of random parts: the ``size`` DiT, ``conf/vae/<vae>``, Whisper ``tiny`` (its real shape) or ``demo``
    (``conf/audio/whisper_random_tiny``), and a SpeechAE encoder of the paper's width."""
    video_vae = random_vae(vae, device)
    geometry = replace(geometry, channels=video_vae.latent_channels)
    if whisper == "tiny":
        frontend = WhisperFrontEnd(None, random_config=WHISPER_TINY, hidden_states=5, dim=384)
    else:
        cfg = OmegaConf.to_container(OmegaConf.load(PROJECT_ROOT / "conf" / "audio" / "whisper_random_tiny.yaml"))
        frontend = WhisperFrontEnd(**{k: v for k, v in cfg.items() if not k.startswith("_")})
    rows, width = frontend.window_shape
    speech = SpeechAE(in_tokens=rows, in_dim=width, width=512, latent_tokens=geometry.audio_tokens,
                      latent_dim=geometry.audio_dim, num_down=3, res_blocks=1).to(device).eval()
    net = build_net(size, geometry, device)
    return TalkingHeadPipeline(video_vae, frontend.to(device), speech.encode, net,
                               size=geometry.latent_size * video_vae.spatial_ratio,
                               clip_frames=geometry.clip_frames, time_shift=TimeShift())


def speech(seconds: float, sample_rate: int = 16000) -> torch.Tensor:
    """A voiced-sounding waveform: a 140 Hz buzz with a 4 Hz syllable envelope."""
    t = torch.arange(round(seconds * sample_rate)) / sample_rate
    return 0.3 * torch.sin(2 * torch.pi * 140 * t) * (0.5 + 0.5 * torch.sin(2 * torch.pi * 4 * t))


def bench_stream(size: str, geometry: Geometry, steps: int, device: torch.device, vae: str = "demo",
                 whisper: str = "tiny", seconds: float = 5.0, long_seconds: float = 60.0, repeats: int = 3,
                 levers: SpeedLevers | None = None) -> Report:
    """The table of this module's docstring."""
    report = Report("stream", f"stream: A2V-DiT {size}, VAE {vae}, Whisper {whisper}, {device.type}",
                    {"size": size, "geometry": geometry.describe(), "steps": steps, "vae": vae, "whisper": whisper,
                     "seconds": seconds, "long_seconds": long_seconds, "repeats": repeats, "device": str(device),
                     "levers": str(levers or SpeedLevers())})
    pipeline = random_pipeline(size, geometry, vae, whisper, device)
    if levers is not None:
        pipeline = pipeline.with_speed(replace(levers, overlap_decode=False))
    clip_sampler = sampler(replace(geometry, channels=pipeline.vae.latent_channels), steps, hoist=True)
    image = torch.rand(3, pipeline.size, pipeline.size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    first_clip_rows(report, pipeline, clip_sampler, image, seconds, long_seconds, device, repeats)
    phase_rows(report, pipeline, clip_sampler, image, speech(seconds), device, repeats)
    overlap_rows(report, pipeline, clip_sampler, image, speech(seconds), device, repeats)
    return report.finish()


def first_clip_rows(report: Report, pipeline: TalkingHeadPipeline, clip_sampler: Any, image: torch.Tensor,
                    seconds: float, long_seconds: float, device: torch.device, repeats: int) -> None:
    def first(waveform: torch.Tensor) -> Callable[[], Any]:
        def call() -> None:
            stream = pipeline.stream(image, waveform, clip_sampler, torch.Generator().manual_seed(0))
            next(stream)
            stream.close()
        return call

    short, long = speech(seconds), speech(long_seconds)
    latency = interleaved({"short": first(short), "long": first(long)}, device, repeats)
    report.add(f"first streamed clip, {seconds:g} s of speech", latency["short"], "s")
    report.add(f"first streamed clip, {long_seconds:g} s of speech", latency["long"], "s")
    report.add(f"first-clip latency {long_seconds:g} s / {seconds:g} s", latency["long"] / latency["short"], "x",
               "1.00 (constant)", "the audio front end runs clip by clip (readlit.audio_latents)")


def phase_rows(report: Report, pipeline: TalkingHeadPipeline, clip_sampler: Any, image: torch.Tensor,
               waveform: torch.Tensor, device: torch.device, repeats: int) -> None:
    """generate()'s phases, timed one by one (median of ``repeats`` runs after one warm-up)."""
    with tempfile.TemporaryDirectory() as tmp:
        runs = [run_phases(pipeline, clip_sampler, image, waveform, device, Path(tmp)) for _ in range(repeats + 1)]
    medians = {name: statistics.median(run[name] for run in runs[1:]) for name in runs[0]}
    total = sum(medians.values())
    frames = math.ceil(len(waveform) * pipeline.fps / pipeline.sample_rate)
    report.add(f"end to end, {len(waveform) / pipeline.sample_rate:g} s of speech ({frames} frames)", total, "s",
               "", f"{total / (frames / pipeline.fps):.3g} s per second of video")
    for name, value in medians.items():
        report.add(f"  {name}", value, "s", "", f"{100 * value / total:.1f} % of end to end")


@torch.no_grad()
def run_phases(pipeline: TalkingHeadPipeline, clip_sampler: Any, image: torch.Tensor, waveform: torch.Tensor,
               device: torch.device, tmp: Path) -> dict[str, float]:
    """Seconds of each phase of :meth:`~readlit.pipeline.TalkingHeadPipeline.generate`, run as it runs them."""
    plan = plan_frames(len(waveform), pipeline.sample_rate, pipeline.fps, pipeline.vae.temporal_ratio,
                       clip_sampler.clip_frames)
    seconds, start = {}, time.perf_counter()

    def lap(name: str) -> None:
        nonlocal start
        synchronize(device)
        seconds[name], start = time.perf_counter() - start, time.perf_counter()

    synchronize(device)
    start = time.perf_counter()
    z_ref, audio = pipeline._conditions(image, waveform, plan, device)
    audio = audio.all()
    lap("audio front end (and the reference's encoding)")
    noise = pipeline._noise(z_ref, plan, torch.Generator().manual_seed(0))
    latents = clip_sampler.sample(pipeline.velocity, z_ref, audio, noise)
    lap("backbone")
    video = pipeline.vae.decode(latents[:, :, :plan.latent_frames])[0, :, :plan.audio_frames]
    lap("VAE decode")
    write_mp4(tmp / "video.mp4", to_uint8_frames(video), pipeline.fps, waveform.numpy(), pipeline.sample_rate)
    lap("mp4 encode (frames to uint8 included)")
    return seconds


def overlap_rows(report: Report, pipeline: TalkingHeadPipeline, clip_sampler: Any, image: torch.Tensor,
                 waveform: torch.Tensor, device: torch.device, repeats: int) -> None:
    overlapped = replace(pipeline, overlap_decode=True)
    outputs: dict[str, list[torch.Tensor]] = {}

    def whole(candidate: TalkingHeadPipeline, name: str) -> Callable[[], Any]:
        def call() -> None:
            chunks = candidate.stream(image, waveform, clip_sampler, torch.Generator().manual_seed(0))
            outputs[name] = [video for _, video in chunks]
            synchronize(device)
        return call

    seconds = interleaved({"plain": whole(pipeline, "plain"), "overlap": whole(overlapped, "overlap")}, device,
                          repeats)
    same = len(outputs["plain"]) == len(outputs["overlap"]) and all(
        torch.equal(a, b) for a, b in zip(outputs["plain"], outputs["overlap"], strict=True))
    report.add("streamed video, decode overlapped: plain / overlapped", seconds["plain"] / seconds["overlap"], "x",
               "> 1 pays", f"{seconds['plain']:.3g} s vs {seconds['overlap']:.3g} s; frames identical: {same}")
