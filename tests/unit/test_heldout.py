"""Held-out synthetic cases and score_run, checked with an oracle pipeline that draws each face speaking its audio."""

import math
import time
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from readlit.data.synthetic import make_session, render_frames
from readlit.eval.metrics.mouth_sync import score_video
from readlit.eval.synthetic import heldout
from readlit.eval.synthetic.seams import seam_jump
from readlit.flow.schedule import TimeShift
from readlit.sampling.cfg import Guidance

FRAMES, SIZE, CLIP = 41, 64, 2  # 41 frames = 6 latent frames: 5 clips of 2 latent frames under ANS
PERFECT_PSNR = 10 * math.log10(255.0**2 / 1e-12)  # psnr()'s value for identical frames


class OraclePipeline:
    """Stands in for a trained model: 'generates' the portrait's face speaking the given audio, as the renderer
    draws it, and spends a known time in its backbone (one sleep per sampling step)."""

    def __init__(self, cases, step_seconds=0.01):
        self.cases, self.size, self.step_seconds = cases, SIZE, step_seconds
        self.vae = SimpleNamespace(temporal_ratio=8)
        self.velocity = self.backbone
        self.calls = []

    def backbone(self):
        time.sleep(self.step_seconds)
        return torch.zeros(())

    def sampler_for(self, sampler):
        return replace(sampler, clip_frames=CLIP, shift=TimeShift(mu=1.0))

    def generate(self, image, waveform, sampler, generator, method="ans"):
        face = next(c for c in self.cases if torch.equal(c.image, image)).face
        speaker = next(c for c in self.cases if np.array_equal(c.audio, waveform.numpy()))
        self.calls.append((face.index, speaker.face.index, method, generator.initial_seed()))
        for _ in range(sampler.steps):
            self.velocity()
        frames = render_frames(face, speaker.session, 0, speaker.session.num_frames, SIZE)
        return torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 127.5 - 1.0


@pytest.fixture(scope="module")
def cases():
    return heldout.cases(FRAMES, SIZE)


def test_cases_are_the_test_identities_speaking_held_out_speech(cases):
    assert [case.face.index for case in cases] == list(heldout.TEST_IDENTITIES)
    assert all(np.array_equal(case.audio, make_session(0, case.face, heldout.HELD_OUT_SESSION, FRAMES).audio)
               for case in cases)
    assert all(case.truth.shape == (FRAMES, SIZE, SIZE, 3) and case.audio.shape == (FRAMES * 640,) for case in cases)
    truth = heldout.score(cases[0].truth, cases[0])
    assert truth["psnr"] == pytest.approx(PERFECT_PSNR) and truth["lip_sync"] > 0.9 and truth["mouth_r"] > 0.9


def test_score_run_scores_times_and_controls_every_case(cases):
    pipeline = OraclePipeline(cases)
    run = heldout.score_run(pipeline, FRAMES, steps=3, guidance=Guidance("joint", 4.0), method="ans", seed=7)
    assert pipeline.velocity == pipeline.backbone  # the timing wrapper is removed again
    seams = [9, 17, 25, 33]  # each later clip's first new frame: 1 + 8 * (start of its second latent frame - 1)
    spans = heldout.clip_spans(FRAMES, CLIP, 1, 8)
    assert run["settings"] == {"frames": FRAMES, "steps": 3, "method": "ans", "seed": 7, "clip_frames": CLIP,
                               "clips": 5, "guidance": {"mode": "joint", "audio_scale": 4.0, "ref_scale": 2.0}}
    # each case: its own audio with seed 7 + k, then the control: the next case's audio, same seed
    assert pipeline.calls == [call for k, case in enumerate(cases) for call in (
        (case.face.index, case.face.index, "ans", 7 + k),
        (case.face.index, cases[(k + 1) % 4].face.index, "ans", 7 + k))]
    for case, video in zip(cases, run["videos"], strict=True):
        assert video["identity"] == case.face.index
        assert video["lip_sync"] == heldout.score(case.truth, case)["lip_sync"]  # the oracle draws the truth
        assert video["psnr"] == pytest.approx(PERFECT_PSNR) and video["mouth_r"] > 0.9
        assert video["seam_jump"] == seam_jump(case.truth, seams)["ratio"]
        assert [clip["psnr"] for clip in video["clips"]] == pytest.approx([PERFECT_PSNR] * len(spans))
        other = cases[(cases.index(case) + 1) % 4].session
        spoken = render_frames(case.face, other, 0, FRAMES, SIZE)  # this face speaking the next case's audio
        assert video["lip_sync_shuffled"] == score_video(spoken, case.audio, case.face)["mouth_sync"]
        assert abs(video["lip_sync_shuffled"]) < 0.5 < video["lip_sync"]  # the control breaks lip sync
        # three steps in the backbone, inside the whole video's time
        assert 3 * pipeline.step_seconds <= video["backbone_seconds"] <= video["total_seconds"]
    for key in heldout.RUN_SCORES:
        assert run["summary"][key] == pytest.approx(np.mean([video[key] for video in run["videos"]]))


def test_score_run_without_the_control_and_of_one_clip():
    short = heldout.cases(9, SIZE)  # 9 frames: one clip, so no seam
    pipeline = OraclePipeline(short, step_seconds=0.0)
    run = heldout.score_run(pipeline, 9, steps=1, method="independent", shuffled_control=False)
    assert len(pipeline.calls) == 4 and {call[2] for call in pipeline.calls} == {"independent"}
    assert run["settings"]["clips"] == 1
    assert all("seam_jump" not in video and "lip_sync_shuffled" not in video for video in run["videos"])
    assert set(run["summary"]) == {"lip_sync", "mouth_r", "psnr", "backbone_seconds", "total_seconds"}
