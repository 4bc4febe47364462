"""What a worker does for a job: a whole video as ``generate`` makes it, or clips from live audio, each clip
published as a fragmented-MP4 segment as soon as it is final.

A file job's ``video.mp4`` is ``generate``'s: the same pipeline call (:meth:`TalkingHeadPipeline.generate`, ANS,
the tiled decode of all latents) and the same writer, so the same seed gives the same bytes. Its stream, when
asked for, decodes each clip on its own as it comes (:class:`~readlit.pipeline.ClipDecoder`, the frames of
:meth:`~TalkingHeadPipeline.stream`), so streamed frames near a seam may differ slightly from the file's. A live
job's ``video.mp4`` is its stream: the segments, put in place once the audio has ended and the last clip is
out (a hard link to the segments' file).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import replace

import numpy as np
import torch

from readlit.data.video_io import write_mp4
from readlit.live import LiveAudio, LiveSession
from readlit.pipeline import ClipDecoder, TalkingHeadPipeline, plan_frames, to_uint8_frames
from readlit.sampling.ans_sampler import ANSSampler, clip_starts
from readlit.serve.fmp4 import FragmentWriter
from readlit.serve.jobs import Checked, Job
from readlit.utils.atomic import atomic_path


def _writer(pipeline: TalkingHeadPipeline, job: Job) -> FragmentWriter:
    """The job's segment writer, its init segment published first."""
    writer = FragmentWriter(pipeline.size, pipeline.size, pipeline.fps, pipeline.sample_rate)
    job.segments.publish({"type": "start", "id": job.id, "mime": writer.mime, "clips_total": job.clips_total},
                         writer.init_segment)
    return writer


def _publish(job: Job, writer: FragmentWriter, frames: slice, video: torch.Tensor, audio: np.ndarray,
             last: bool) -> None:
    segment = writer.fragment(to_uint8_frames(video), audio, last=last)
    job.segments.publish({"type": "clip", "frames": [frames.start, frames.stop], "clips_done": job.clips_done,
                          "clips_total": job.clips_total, "seconds": frames.stop / writer.fps}, segment)


def render_file(pipeline: TalkingHeadPipeline, job: Job, image: torch.Tensor, waveform: torch.Tensor,
                sampler: ANSSampler, seed: int) -> None:
    """``generate``'s video into ``job.video``; each clip also to ``job.segments`` when the job streams."""
    pipeline = replace(pipeline, velocity=Checked(pipeline.velocity, job))
    sampler = pipeline.sampler_for(sampler)
    plan = plan_frames(len(waveform), pipeline.sample_rate, pipeline.fps, pipeline.vae.temporal_ratio,
                       sampler.clip_frames)
    job.clips_total = len(clip_starts(plan.padded_latent, sampler.clip_frames))
    writer = None if job.segments is None else _writer(pipeline, job)
    decoder = ClipDecoder(pipeline.vae, plan.audio_frames)
    audio, samples = waveform.numpy(), pipeline.sample_rate // pipeline.fps

    def on_clip(span: slice, latents: torch.Tensor) -> None:
        job.clips_done += 1
        decoded = None if writer is None else decoder(span, latents)
        if decoded is not None:
            frames, video = decoded
            _publish(job, writer, frames, video, audio[frames.start * samples: frames.stop * samples],
                     last=frames.stop == plan.audio_frames)

    with writer or contextlib.nullcontext():
        video = pipeline.generate(image, waveform, sampler, torch.Generator().manual_seed(seed), on_clip=on_clip)
    job.check()
    write_mp4(job.video, to_uint8_frames(video), pipeline.fps, audio, pipeline.sample_rate)


def render_live(pipeline: TalkingHeadPipeline, job: Job, image: torch.Tensor, audio: LiveAudio,
                sampler: ANSSampler, seed: int, lookahead: int) -> None:
    """Clips of ``audio`` as it arrives, each published at once; the segments become ``job.video`` at the end."""
    pipeline = replace(pipeline, velocity=Checked(pipeline.velocity, job))
    session = LiveSession(pipeline, image, sampler, torch.Generator().manual_seed(seed), lookahead)
    with _writer(pipeline, job) as writer:
        last = False
        for clip in session.clips(audio):
            job.clips_done += 1
            last = clip.frames.stop == session.audio_frames
            _publish(job, writer, clip.frames, clip.video, audio.waveform(clip.samples.stop)[clip.samples], last)
        if not last:  # the audio ended on a clip boundary: flush the encoders' tails
            empty = np.zeros((0, pipeline.size, pipeline.size, 3), np.uint8)
            job.segments.publish({"type": "flush"}, writer.fragment(empty, np.zeros(0, np.float32), last=True))
    job.check()
    with atomic_path(job.video) as tmp:  # a link: followers still read the segments by their name
        os.link(job.segments.path, tmp)
