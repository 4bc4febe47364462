"""The lazy audio front end: the numbers of the eager one, and no more work before the first clip than it needs."""

import pytest
import torch
from einops import rearrange
from hydra.utils import instantiate
from omegaconf import OmegaConf

from readlit.audio_latents import AudioLatents
from readlit.frames import pixel_frames
from readlit.nn.audio_projection import RawWindowProjection
from readlit.nn.speech_ae import SpeechAE
from readlit.pipeline import TalkingHeadPipeline, plan_frames
from readlit.resolvers import PROJECT_ROOT
from tests.unit.test_pipeline import pipeline, sampler  # noqa: F401  (the tiny pipeline fixture)

SR, RATIO = 16000, 8


@pytest.fixture(scope="module")
def frontend():
    return instantiate(OmegaConf.load(PROJECT_ROOT / "conf" / "audio" / "whisper_random_tiny.yaml"))()


class Counting:
    """A front end's ``hidden`` that counts the samples it was given."""

    def __init__(self, frontend):
        self.frontend, self.samples = frontend, []

    def __getattr__(self, name):
        return getattr(self.frontend, name)

    def hidden(self, audio):
        self.samples.append(len(audio))
        return self.frontend.hidden(audio)


def padded_speech(seconds: float, clip_frames: int) -> tuple[torch.Tensor, int]:
    plan = plan_frames(round(seconds * SR), SR, 25, RATIO, clip_frames)
    waveform = torch.zeros(plan.padded_frames * SR // 25)
    waveform[: round(seconds * SR)] = torch.randn(round(seconds * SR), generator=torch.Generator().manual_seed(1))
    return 0.1 * waveform, plan.padded_latent


@pytest.mark.parametrize("encoder", ["speechae", "linear"])
def test_clip_by_clip_latents_are_the_whole_audio_s(frontend, encoder):
    torch.manual_seed(0)
    rows, width = frontend.window_shape
    if encoder == "speechae":
        encode = SpeechAE(in_tokens=rows, in_dim=width, width=16, latent_tokens=2, latent_dim=8, num_down=3,
                          res_blocks=1).encode
    else:
        encode = RawWindowProjection(in_tokens=rows, in_dim=width, latent_tokens=2, latent_dim=8, ratio=RATIO)
    waveform, latent = padded_speech(34.0, clip_frames=5)  # two 30 s chunks
    windows = frontend.frame_windows(frontend.hidden(waveform), pixel_frames(latent, RATIO))
    eager = encode(rearrange(windows, "f k d -> 1 f k d"))
    lazy = AudioLatents(frontend, encode, waveform, latent, RATIO, torch.device("cpu"))
    for start in range(0, latent - 4, 4):  # the clips of 5 frames, in the sampler's order
        torch.testing.assert_close(lazy[start: start + 5], eager[:, start: start + 5], atol=1e-5, rtol=1e-5)
    assert lazy.computed == latent == eager.shape[1]
    torch.testing.assert_close(lazy.all(), eager, atol=1e-5, rtol=1e-5)


def test_the_first_clip_costs_the_same_for_5_and_60_seconds(frontend):
    """The work before clip 1 is one 30 s chunk and clip 1's frames, whatever the audio's length (issue #17)."""
    rows, width = frontend.window_shape
    projection = RawWindowProjection(in_tokens=rows, in_dim=width, latent_tokens=2, latent_dim=8, ratio=RATIO)
    encoded = []

    def encode(windows):
        encoded.append(windows.shape[1])
        return projection(windows)

    work = {}
    for seconds in (5.0, 60.0):
        counting, waveform_latent = Counting(frontend), padded_speech(seconds, clip_frames=5)
        encoded.clear()
        lazy = AudioLatents(counting, encode, *waveform_latent, RATIO, torch.device("cpu"))
        assert lazy[0:5].shape[1] == 5
        # Whisper pads every chunk to 30 s: one chunk costs the same whether it holds 5 s or 30 s.
        work[seconds] = (len(counting.samples), list(encoded))
        lazy.all()
        assert sum(counting.samples) == len(waveform_latent[0])  # every sample encoded once, in the end
        assert max(encoded) == pixel_frames(waveform_latent[1], RATIO)
        assert sum(encoded) <= 2 * pixel_frames(waveform_latent[1], RATIO) + 4 * 33  # linear, not quadratic
    assert work[5.0] == work[60.0] == (1, [33])


def test_slices_past_the_end_stop_there_and_steps_are_refused(frontend):
    waveform, latent = padded_speech(1.0, clip_frames=3)
    lazy = AudioLatents(frontend, lambda w: w.mean(dim=2, keepdim=True)[:, ::RATIO], waveform, latent, RATIO,
                        torch.device("cpu"))
    assert len(lazy) == latent and lazy[latent - 1: latent + 5].shape[1] == 1
    with pytest.raises(ValueError, match="step 1"):
        lazy[0:4:2]


def test_streaming_asks_the_front_end_for_the_first_clip_only(pipeline: TalkingHeadPipeline):  # noqa: F811
    """Through the pipeline: before the first clip leaves, only the first chunk has been encoded."""
    counting = Counting(pipeline.frontend)
    streaming = TalkingHeadPipeline(pipeline.vae, counting, pipeline.encode_audio, pipeline.velocity, size=32)
    image = torch.rand(3, 32, 32) * 2 - 1
    stream = streaming.stream(image, torch.randn(40 * SR) * 0.1, sampler(), torch.Generator().manual_seed(0))
    next(stream)
    assert counting.samples == [30 * SR]
    stream.close()
