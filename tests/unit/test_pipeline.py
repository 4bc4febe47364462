"""The generation pipeline's frame bookkeeping: output length follows the audio, seeds repeat, streams cover it."""

import dataclasses
import math

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from readlit.errors import AudioError, ConfigError
from readlit.flow.schedule import TimeShift
from readlit.nn.speech_ae import SpeechAE
from readlit.pipeline import TalkingHeadPipeline, clip_overlap, plan_frames, to_uint8_frames
from readlit.resolvers import PROJECT_ROOT
from readlit.sampling.ans_sampler import ANSSampler
from readlit.sampling.cfg import Guidance
from readlit.vae import VideoVAE

CONF = PROJECT_ROOT / "conf"


class Drift(torch.nn.Module):
    """A velocity that depends on state, time and audio, so sampling does something."""

    def forward(self, z, t, audio):
        sound = audio.mean(dim=(2, 3))[:, None, :, None, None]
        sound = torch.cat([torch.zeros_like(sound[:, :, :1]), sound], dim=2)
        return torch.tanh(z + sound) * t[:, None, :, None, None]


class Coupled(Drift):
    """Frames also pull towards the clip's mean, so a clip's context (ANS's motion frame) matters."""

    def forward(self, z, t, audio):
        return super().forward(z, t, audio) + z.mean(dim=2, keepdim=True)


@pytest.fixture(scope="module")
def pipeline() -> TalkingHeadPipeline:
    vae = VideoVAE(architecture=OmegaConf.to_container(OmegaConf.load(CONF / "vae/tiny.yaml").architecture),
                   logvar_init=-8.0)
    frontend = instantiate(OmegaConf.load(CONF / "audio/whisper_random_tiny.yaml"))()
    speech = SpeechAE(in_tokens=30, in_dim=64, width=16, latent_tokens=2, latent_dim=8, num_down=3, res_blocks=1)
    return TalkingHeadPipeline(vae, frontend, speech.encode, Drift(), size=32)


def sampler() -> ANSSampler:
    return ANSSampler(steps=2, clip_frames=3, guidance=Guidance("joint", audio_scale=2.0), shift=TimeShift(mu=0.5))


@pytest.mark.parametrize("seconds", [0.04, 0.3, 1.0, 2.57])
def test_video_lasts_as_long_as_the_audio(pipeline, seconds):
    samples = round(seconds * 16000)
    image = torch.rand(3, 32, 32) * 2 - 1
    video = pipeline.generate(image, torch.randn(samples) * 0.1, sampler(), torch.Generator().manual_seed(0))
    frames = math.ceil(samples * 25 / 16000)
    assert video.shape == (3, frames, 32, 32)
    assert abs(frames / 25 - samples / 16000) < 1 / 25
    assert to_uint8_frames(video).shape == (frames, 32, 32, 3)


def test_same_seed_same_video_and_the_stream_covers_it(pipeline):
    image, audio = torch.rand(3, 32, 32) * 2 - 1, torch.randn(16000 * 2) * 0.1
    first = pipeline.generate(image, audio, sampler(), torch.Generator().manual_seed(3))
    again = pipeline.generate(image, audio, sampler(), torch.Generator().manual_seed(3))
    other = pipeline.generate(image, audio, sampler(), torch.Generator().manual_seed(4))
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    assert (first - other).abs().max() > 1e-3
    chunks = list(pipeline.stream(image, audio, sampler(), torch.Generator().manual_seed(3)))
    assert len(chunks) >= 3
    assert [c.start for c, _ in chunks] == [0] + [c.stop for c, _ in chunks[:-1]] and chunks[-1][0].stop == 50
    streamed = torch.cat([video for _, video in chunks], dim=1)
    assert streamed.shape == first.shape and bool(streamed.isfinite().all())


def test_plans_and_empty_audio():
    plan = plan_frames(16000, 16000, 25, 8, 3)
    assert (plan.audio_frames, plan.latent_frames, plan.padded_latent, plan.padded_frames) == (25, 4, 5, 33)
    with pytest.raises(AudioError, match="no samples"):
        plan_frames(0, 16000, 25, 8, 3)


@pytest.mark.parametrize("seconds", [0.04, 1.0, 2.57])
def test_baseline_methods_also_last_as_long_as_the_audio(pipeline, seconds):
    samples = round(seconds * 16000)
    image, audio = torch.rand(3, 32, 32) * 2 - 1, torch.randn(samples) * 0.1
    coupled = dataclasses.replace(pipeline, velocity=Coupled())
    videos = {method: coupled.generate(image, audio, sampler(), torch.Generator().manual_seed(0), method=method)
              for method in ("ans", "independent", "fuse")}
    frames = math.ceil(samples * 25 / 16000)
    assert {tuple(v.shape) for v in videos.values()} == {(3, frames, 32, 32)}
    if frames > 17:  # past the first clip, motion guidance makes ANS differ from side-by-side clips
        assert (videos["ans"] - videos["independent"]).abs().max() > 1e-3


def test_clip_overlaps_per_method():
    assert [clip_overlap(m, 16) for m in ("ans", "independent", "fuse")] == [1, 0, 4]
    assert plan_frames(16000, 16000, 25, 8, 3, overlap=0).padded_latent == 6  # 4 latents -> two clips of 3
    with pytest.raises(ConfigError, match="method='async'"):
        clip_overlap("async", 16)
