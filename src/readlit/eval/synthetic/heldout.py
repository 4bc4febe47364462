"""Held-out synthetic talking heads: unseen faces speak unseen speech, scored per video and per clip.

A case is one test identity of ``data=synthetic`` (the default split's identities 36-39, never in training)
speaking session 1 of its own (training sees session 0 of other identities), any number of frames long, with its
ground-truth frames and true mouth opening. The experiments (``make demo``, the long-video and ablation tables,
the steps x CFG trade-off) all generate and score these cases, so their numbers compare.

Scores of a generated video (uint8 frames):

- ``lip_sync``: the mouth opening measured from pixels against the audio's loudness
  (:func:`readlit.eval.metrics.mouth_sync.score_video`, ground truth ~0.99);
- ``mouth_r``: the measured opening against the true opening the renderer drew;
- ``psnr``: against the ground-truth frames (dB, pixels in [0, 255]);
- ``seam_jump``: the frame change into each clip's first new frame over the change elsewhere (1 = invisible).

Per clip, ``mouth_r`` and ``psnr`` are computed over the pixel frames the clip contributes (:func:`clip_spans`).

:func:`score_run` does it all for a trained model: every case generated at one setting (frames, steps, guidance,
long-video method), scored, timed (backbone and whole video), with the shuffled-audio control.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from readlit.data.base import to_video
from readlit.data.synthetic import Identity, Session, make_identity, make_session, render_frames
from readlit.eval.metrics.mouth_sync import score_video
from readlit.eval.protocol import timed_backbone
from readlit.eval.synthetic.mouth_sync import mouth_opening, pearson
from readlit.eval.synthetic.seams import seam_frames, seam_jump
from readlit.frames import latents_covering, pixel_span
from readlit.pipeline import TalkingHeadPipeline, clip_overlap, to_uint8_frames
from readlit.sampling.ans_sampler import ANSSampler, clip_starts
from readlit.sampling.cfg import Guidance

# The test identities of data=synthetic with its default split {train: 32, val: 4, test: 4}.
TEST_IDENTITIES = (36, 37, 38, 39)
# Session 1 of a test identity: held-out speech (the a2v stage trains on session 0 of the train identities).
HELD_OUT_SESSION = 1


@dataclass(frozen=True)
class Case:
    """One held-out face speaking held-out speech, with its ground truth."""

    face: Identity
    session: Session
    truth: np.ndarray  # (F, H, W, 3) uint8

    @property
    def image(self) -> torch.Tensor:
        """The portrait: the first ground-truth frame, (3, H, W) in [-1, 1]."""
        return to_video(self.truth[:1])[:, 0]

    @property
    def audio(self) -> np.ndarray:
        """(A,) float32 at 16 kHz."""
        return self.session.audio


def cases(num_frames: int, size: int, seed: int = 0, identities: tuple[int, ...] = TEST_IDENTITIES) -> list[Case]:
    """The held-out cases of ``num_frames`` frames at ``size`` pixels (data seed ``seed``)."""
    out = []
    for identity in identities:
        face = make_identity(seed, identity)
        session = make_session(seed, face, HELD_OUT_SESSION, num_frames)
        out.append(Case(face, session, render_frames(face, session, 0, num_frames, size)))
    return out


def clip_spans(num_frames: int, clip_frames: int, overlap: int, ratio: int) -> list[slice]:
    """The pixel frames each clip of a long video contributes (clip 0 from frame 0; a later clip from its first
    frame after the ``overlap`` it shares), cut to ``num_frames``; clips wholly past the end are left out."""
    latent = latents_covering(num_frames, ratio)
    spans = []
    for index, start in enumerate(clip_starts(latent, clip_frames, overlap)):
        first = start if index == 0 else start + overlap
        span = slice(pixel_span(first, ratio).start, min(pixel_span(start + clip_frames - 1, ratio).stop, num_frames))
        if span.start < num_frames:
            spans.append(span)
    return spans


def psnr(frames: np.ndarray, truth: np.ndarray) -> float:
    """PSNR (dB) of uint8 frames against the ground truth."""
    error = np.mean((np.asarray(frames, np.float64) - np.asarray(truth, np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(error, 1e-12)))


def opening(frames: np.ndarray, face: Identity) -> np.ndarray:
    """The mouth opening measured from uint8 frames (F, H, W, 3): (F,)."""
    return mouth_opening(to_video(np.asarray(frames)), face).numpy()


def score(frames: np.ndarray, case: Case, audio: np.ndarray | None = None,
          seams: list[int] | None = None) -> dict[str, float]:
    """Scores of one generated video against ``case`` (lip sync against ``audio``, the case's own by default)."""
    count = min(len(frames), len(case.truth))
    frames, truth = frames[:count], case.truth[:count]
    scores = {"lip_sync": score_video(frames, case.audio if audio is None else audio, case.face)["mouth_sync"],
              "mouth_r": pearson(opening(frames, case.face), case.session.mouth_open[:count]),
              "psnr": psnr(frames, truth)}
    if seams:
        scores["seam_jump"] = seam_jump(frames, seams)["ratio"]
    return scores


def score_clips(frames: np.ndarray, case: Case, spans: list[slice]) -> list[dict[str, float]]:
    """``mouth_r`` and ``psnr`` over the frames of each clip (the drift of a long video, clip by clip)."""
    measured = opening(frames, case.face)
    return [{"mouth_r": pearson(measured[span], case.session.mouth_open[span]),
             "psnr": psnr(frames[span], case.truth[span])} for span in spans]


# The paper's sampling (Section 4.1): Split-CFG with alpha = 2 (reference) and beta = 6 (audio).
PAPER_GUIDANCE = Guidance("split", audio_scale=6.0, ref_scale=2.0)
# The per-video numbers of score_run, averaged in its summary.
RUN_SCORES = ("lip_sync", "lip_sync_shuffled", "mouth_r", "psnr", "seam_jump", "backbone_seconds", "total_seconds")


def score_run(ckpt: str | Path | TalkingHeadPipeline, frames: int, steps: int = 8,
              guidance: Guidance = PAPER_GUIDANCE, method: str = "ans", shuffled_control: bool = True,
              seed: int = 0, device: str = "cpu") -> dict[str, Any]:
    """Every held-out case of ``frames`` frames generated by a trained a2v model, scored and timed.

    Args:
        ckpt: an a2v checkpoint, or a pipeline already loaded (to score one model at many settings).
        steps, guidance: the ANS sampler's (the paper: 8 steps, Split-CFG 2/6); its clip length is the model's.
        method: how clips join: ``ans``, ``independent`` (w/o ANS) or ``fuse``.
        shuffled_control: also animate each face with the next case's audio and score that video's lip sync
            against the face's own audio (``lip_sync_shuffled``: ~0 for a model that follows the audio).
        seed: case k's noise seed is ``seed + k`` (the control reuses it).
        device: where a checkpoint is loaded.

    Returns:
        ``settings``; ``videos``, one per case: ``identity``, :func:`score`'s ``lip_sync``, ``mouth_r``, ``psnr``
        and ``seam_jump`` (videos of more than one clip), ``lip_sync_shuffled``, ``backbone_seconds`` (inside the
        A2V-DiT's forwards), ``total_seconds`` (audio features, sampling, decoding) and ``clips`` (per-clip
        ``mouth_r`` and ``psnr``, :func:`score_clips`); ``summary``, the means over cases of the per-video numbers.
    """
    pipeline = TalkingHeadPipeline.from_checkpoint(ckpt, device) if isinstance(ckpt, str | Path) else ckpt
    sampler = pipeline.sampler_for(ANSSampler(steps=steps, guidance=guidance))
    clip_frames, ratio = sampler.clip_frames, pipeline.vae.temporal_ratio
    overlap = clip_overlap(method, clip_frames)
    seams = seam_frames(latents_covering(frames, ratio), clip_frames, overlap, ratio, frames)
    spans = clip_spans(frames, clip_frames, overlap, ratio)
    held_out = cases(frames, pipeline.size)
    videos = []
    for k, case in enumerate(held_out):
        with timed_backbone(pipeline) as timed:
            start = time.perf_counter()
            video = _generate(pipeline, sampler, case, case.audio, seed + k, method)
            total = time.perf_counter() - start
        scores = {"identity": case.face.index, **score(video, case, seams=seams), "backbone_seconds": timed.seconds,
                  "total_seconds": total}
        if shuffled_control:
            other = held_out[(k + 1) % len(held_out)].audio
            scores["lip_sync_shuffled"] = score(_generate(pipeline, sampler, case, other, seed + k, method),
                                                case)["lip_sync"]
        videos.append({**scores, "clips": score_clips(video, case, spans)})
    settings = {"frames": frames, "steps": steps, "guidance": asdict(guidance), "method": method, "seed": seed,
                "clip_frames": clip_frames, "clips": len(spans)}
    return {"settings": settings, "videos": videos, "summary": _means(videos)}


def _generate(pipeline: TalkingHeadPipeline, sampler: ANSSampler, case: Case, audio: np.ndarray, seed: int,
              method: str) -> np.ndarray:
    """The case's portrait speaking ``audio``: (F, H, W, 3) uint8."""
    video = pipeline.generate(case.image, torch.from_numpy(audio), sampler, torch.Generator().manual_seed(seed),
                              method=method)
    return to_uint8_frames(video)


def _means(videos: list[dict[str, Any]]) -> dict[str, float]:
    """Mean over videos of each per-video number that every video has."""
    return {key: float(np.mean([video[key] for video in videos])) for key in RUN_SCORES
            if all(key in video for video in videos)}
