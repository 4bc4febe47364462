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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from readlit.data.base import to_video
from readlit.data.synthetic import Identity, Session, make_identity, make_session, render_frames
from readlit.eval.metrics.mouth_sync import score_video
from readlit.eval.synthetic.mouth_sync import mouth_opening, pearson
from readlit.eval.synthetic.seams import seam_jump
from readlit.frames import latents_covering, pixel_span
from readlit.sampling.ans_sampler import clip_starts

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
