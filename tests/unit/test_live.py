"""Live sessions: clips from audio that arrives in chunks are a function of the audio alone, cover it exactly, and
take the offline audio conditioning where the lookahead reaches as far as offline's context."""

import threading
import time

import numpy as np
import pytest
import torch

from readlit.audio import tokens_through
from readlit.errors import AudioError
from readlit.live import Cancelled, LiveAudio, LiveSession
from tests.unit.test_pipeline import pipeline, sampler  # noqa: F401  (the tiny pipeline fixture)

SAMPLES = 16000 * 2 + 123  # 2 s of audio that ends mid-frame


def speech(samples: int = SAMPLES) -> np.ndarray:
    return (np.random.default_rng(0).normal(0, 0.1, samples)).astype(np.float32)


def run(pipeline, audio: LiveAudio, lookahead: int = 3200, seed: int = 5) -> list:  # noqa: F811
    image = torch.linspace(-1, 1, 3 * 32 * 32).reshape(3, 32, 32)
    session = LiveSession(pipeline, image, sampler(), torch.Generator().manual_seed(seed), lookahead)
    return list(session.clips(audio))


def whole(samples: np.ndarray) -> LiveAudio:
    audio = LiveAudio(len(samples) + 1)
    audio.push(samples)
    audio.close()
    return audio


def test_chunks_and_their_timing_change_nothing(pipeline):  # noqa: F811
    wave = speech()
    at_once = run(pipeline, whole(wave))
    audio = LiveAudio(10 * 16000)

    def feed():
        cuts = np.sort(np.random.default_rng(1).choice(len(wave), 40, replace=False))
        for piece in np.split(wave, cuts):
            audio.push(piece)
            time.sleep(0.002)
        audio.close()

    feeder = threading.Thread(target=feed)
    feeder.start()
    chunked = run(pipeline, audio)
    feeder.join()
    assert len(chunked) == len(at_once) >= 4
    for a, b in zip(at_once, chunked, strict=True):
        assert (a.frames, a.samples) == (b.frames, b.samples)
        assert torch.equal(a.video, b.video)


def test_clips_cover_the_audio_frame_by_frame(pipeline):  # noqa: F811
    clips = run(pipeline, whole(speech()))
    frames = -(-SAMPLES * 25 // 16000)
    assert [c.frames.start for c in clips] == [0] + [c.frames.stop for c in clips[:-1]]
    assert clips[-1].frames.stop == frames == sum(c.video.shape[1] for c in clips)
    assert [c.samples.start for c in clips] == [c.frames.start * 640 for c in clips]
    assert clips[-1].samples.stop == SAMPLES
    assert all(c.samples.stop == c.frames.stop * 640 for c in clips[:-1])
    other_seed = run(pipeline, whole(speech()), seed=6)
    assert (clips[0].video - other_seed[0].video).abs().max() > 1e-3


class Recording(torch.nn.Module):
    """The velocity of the tiny pipeline, remembering the audio latents of every call."""

    def __init__(self, velocity):
        super().__init__()
        self.velocity, self.seen = velocity, []

    def forward(self, z, t, audio):
        self.seen.append(audio[-1:].clone())  # the conditioned branch (joint CFG stacks it last)
        return self.velocity(z, t, audio)


def test_a_lookahead_of_the_whole_chunk_conditions_as_offline(pipeline):  # noqa: F811
    """With 30 s of lookahead every committed token is encoded from its whole chunk, as offline: the audio latents
    of every clip equal offline's, except where a window reaches past the offline padding (the last clip)."""
    import dataclasses

    wave = speech()
    offline = dataclasses.replace(pipeline, velocity=Recording(pipeline.velocity))
    list(offline.stream(torch.zeros(3, 32, 32), torch.from_numpy(wave), sampler(), torch.Generator()))
    live = dataclasses.replace(pipeline, velocity=Recording(pipeline.velocity))
    clips = run(live, whole(wave), lookahead=30 * 16000)
    steps = 2
    per_clip = [s for s in live.velocity.seen[::steps]]
    offline_clips = offline.velocity.seen[::steps]
    assert len(per_clip) == len(clips) == len(offline_clips)
    for live_audio, offline_audio in zip(per_clip[:-1], offline_clips[:-1], strict=True):
        torch.testing.assert_close(live_audio, offline_audio, rtol=1e-5, atol=1e-6)
    short = dataclasses.replace(pipeline, velocity=Recording(pipeline.velocity))
    run(short, whole(wave), lookahead=0)  # less context: the first clip's conditioning moves
    assert (short.velocity.seen[0] - per_clip[0]).abs().max() > 1e-4


def test_tokens_through_matches_the_windows():
    # 25 fps, W = 10, k = 2: frame i's window ends at token 2i + 6, so frames 0..8 reach token 22
    assert tokens_through(9, 10, 2) == 22


def test_cancel_wakes_the_waiter_and_max_samples_ends_the_audio(pipeline):  # noqa: F811
    audio = LiveAudio(16000)
    audio.push(np.zeros(100, np.float32))
    threading.Timer(0.2, audio.cancel).start()
    with pytest.raises(Cancelled):
        run(pipeline, audio)
    full = LiveAudio(1000)
    assert full.push(np.zeros(600, np.float32)) == 600 and full.push(np.zeros(600, np.float32)) == 400
    assert full.ended and full.length == 1000
    with pytest.raises(AudioError, match="already ended"):
        full.push(np.zeros(1, np.float32))
    with pytest.raises(AudioError, match="NaN"):
        LiveAudio(10).push(np.array([np.nan], np.float32))
