"""Talking heads from audio that is still arriving (a microphone, a TTS engine): clips go out as audio comes in.

:meth:`TalkingHeadPipeline.stream` needs the whole audio first: the Whisper front end encodes 30 s windows with
bidirectional attention (a token's hidden state depends on audio after it), and the initial noise of the whole
padded sequence is drawn at once. :class:`LiveSession` works on audio of unknown length instead:

- **Clips are committed by a fixed rule.** Clip j (latent frames s .. s + f - 1, pixel frames up to F_j) needs the
  Whisper tokens of its frames' windows, up to token T_j (:func:`~readlit.audio.tokens_through`). It is committed
  once the audio reaches T_j·320 samples plus ``lookahead`` samples, or has ended. The tokens T_(j-1) .. T_j are
  then encoded from the audio *cut at that point and zero-extended* (in the front end's 30 s chunks, aligned at 0
  as offline), and kept: no committed token ever changes. The audio latents of the clip's frames come from the
  SpeechAE (causal over frames) run on the windows of every frame so far.
- **Noise is drawn per clip**: (1, C, f, h, w) for the first clip, (1, C, f - 1, h, w) for each later one, in
  order from the seeded generator.
- **The end.** When the source closes after A samples, the plan of the whole audio (:func:`plan_frames`) says
  which clips are needed; the last is cut to the audio's F_a frames, as offline.

So the video is a deterministic function of (image, audio, settings, seed, lookahead): how the audio was cut
into chunks and when they arrived change nothing (a test feeds one chunk and many, and compares bits). It is not
:meth:`~TalkingHeadPipeline.generate`'s video of the same complete audio: the noise is drawn in another order,
and a token's hidden state sees at most ``lookahead`` of audio after its frame's window where offline it sees
the rest of its 30 s chunk (experiments/serve/README.md measures both effects). Every clip's frames follow
Algorithm 1 exactly given its inputs: the sampler is :meth:`ANSSampler.stream_clips`, the one ``stream`` uses.
The first clip leaves after the audio of its frames plus ``lookahead`` has arrived and one clip's denoising.
"""

from __future__ import annotations

import itertools
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from einops import rearrange

from readlit.audio import tokens_through
from readlit.errors import AudioError, ConfigError
from readlit.frames import pixel_frames
from readlit.pipeline import ClipDecoder, TalkingHeadPipeline, plan_frames
from readlit.sampling.ans_sampler import ANSSampler, clip_starts


class Cancelled(Exception):
    """Generation was stopped by its caller (the audio's source went away, a client left)."""


class LiveAudio:
    """A mono waveform that grows while a generator waits for it; safe to share between two threads.

    Args:
        max_samples: the most samples it accepts; :meth:`push` keeps what fits and ends the audio there.
    """

    def __init__(self, max_samples: int) -> None:
        if max_samples < 1:
            raise ConfigError(f"max_samples={max_samples} must be at least 1")
        self.max_samples = max_samples
        self._buffer = np.zeros(min(max_samples, 1 << 16), np.float32)
        self._length = 0
        self._ended = False
        self._cancelled = False
        self._changed = threading.Condition()

    @property
    def length(self) -> int:
        """Samples received so far."""
        with self._changed:
            return self._length

    @property
    def ended(self) -> bool:
        with self._changed:
            return self._ended

    def push(self, samples: np.ndarray) -> int:
        """Append (n,) float samples; returns how many were kept (fewer once ``max_samples`` is reached, which
        ends the audio)."""
        samples = np.asarray(samples, np.float32).reshape(-1)
        if not np.all(np.isfinite(samples)):
            raise AudioError("the audio chunk holds NaN or infinite samples")
        with self._changed:
            if self._ended:
                raise AudioError("the audio has already ended; no more chunks are taken")
            kept = min(len(samples), self.max_samples - self._length)
            if self._length + kept > len(self._buffer):
                grown = np.zeros(min(self.max_samples, 2 * (self._length + kept)), np.float32)
                grown[: self._length] = self._buffer[: self._length]
                self._buffer = grown
            self._buffer[self._length: self._length + kept] = samples[:kept]
            self._length += kept
            self._ended = self._length >= self.max_samples
            self._changed.notify_all()
            return kept

    def close(self) -> None:
        """No more audio: the source ended its stream."""
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def cancel(self) -> None:
        """Wake every waiter with :class:`Cancelled` (the source went away)."""
        with self._changed:
            self._cancelled = True
            self._changed.notify_all()

    def wait(self, samples: int) -> bool:
        """Block until ``samples`` samples are there (True) or the audio ended short of them (False)."""
        with self._changed:
            self._changed.wait_for(lambda: self._cancelled or self._ended or self._length >= samples)
            if self._cancelled:
                raise Cancelled("the audio source went away")
            return self._length >= samples

    def waveform(self, samples: int | None = None) -> np.ndarray:
        """A copy of the first ``samples`` samples (all so far when None), zero-extended past the end."""
        with self._changed:
            length = self._length if samples is None else samples
            out = np.zeros(length, np.float32)
            have = min(length, self._length)
            out[:have] = self._buffer[:have]
            return out


@dataclass(frozen=True)
class LiveClip:
    """One streamed clip: its output frames, their pixels (3, F_chunk, H, W) in [-1, 1] and the audio they show."""

    frames: slice
    video: torch.Tensor
    samples: slice


class LiveSession:
    """Clips of a talking head for a :class:`LiveAudio`, by the rules of the module docstring.

    Args:
        pipeline: the model (with its Whisper front end).
        image: (3, H, W) in [-1, 1], the portrait.
        sampler: ANS settings (the model's clip length and time shift where they name none).
        generator: the seeded source of every clip's noise.
        lookahead: samples of audio past a clip's windows that must have arrived before it is committed.
    """

    def __init__(self, pipeline: TalkingHeadPipeline, image: torch.Tensor, sampler: ANSSampler,
                 generator: torch.Generator, lookahead: int) -> None:
        if pipeline.frontend is None:
            raise ConfigError("this pipeline has no Whisper front end: it cannot listen to live audio")
        if lookahead < 0:
            raise ConfigError(f"lookahead={lookahead} must be 0 or more samples")
        self.pipeline = pipeline
        self.image = image
        self.sampler = pipeline.sampler_for(sampler)
        self.generator = generator
        self.lookahead = lookahead
        self.audio_frames: int | None = None  # F_a, once the audio has ended
        self._hidden: list[torch.Tensor] = []
        self._tokens = 0

    def clips(self, audio: LiveAudio) -> Iterator[LiveClip]:
        """Each clip as soon as it is final; blocks while the audio it needs has not arrived."""
        pipeline, f = self.pipeline, self.sampler.clip_frames
        device = next(pipeline.vae.parameters()).device
        z_ref = pipeline.vae.encode_image(rearrange(self.image, "c h w -> 1 c h w").to(device))
        decoder = ClipDecoder(pipeline.vae, sys.maxsize)
        starts: list[int] = []
        inputs = self._inputs(audio, z_ref, decoder, starts)
        for index, latents in enumerate(self.sampler.stream_clips(pipeline.velocity, z_ref, inputs)):
            first = 0 if index == 0 else 1
            decoded = decoder(slice(starts[index] + first, starts[index] + f), latents[:, :, first:])
            if decoded is None:
                return
            frames, video = decoded
            stop = min(self._sample(frames.stop), audio.length)
            yield LiveClip(frames, video, slice(self._sample(frames.start), stop))

    @torch.no_grad()
    def _inputs(self, audio: LiveAudio, z_ref: torch.Tensor, decoder: ClipDecoder,
                starts: list[int]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Each clip's audio latents (1, f, hw, da) and noise (1, C, f, h, w), once its audio is committed."""
        pipeline, frontend, f = self.pipeline, self.pipeline.frontend, self.sampler.clip_frames
        ratio = pipeline.vae.temporal_ratio
        for start in itertools.count(0, f - 1):
            frames = pixel_frames(start + f, ratio)
            tokens = tokens_through(frames, frontend.window_tokens, frontend.tokens_per_frame)
            cut = tokens * frontend.samples_per_token + self.lookahead
            if not audio.wait(cut):
                plan = plan_frames(audio.length, pipeline.sample_rate, pipeline.fps, ratio, f)
                self.audio_frames = decoder.audio_frames = plan.audio_frames
                if start not in clip_starts(plan.latent_frames, f):
                    return
            windows = frontend.frame_windows(self._commit(audio, tokens, cut), frames)
            latents = pipeline.encode_audio(rearrange(windows, "f k d -> 1 f k d").to(z_ref.device))
            fresh = f if start == 0 else f - 1
            noise = torch.randn(1, z_ref.shape[1], fresh, *z_ref.shape[-2:], generator=self.generator)
            if start > 0:
                noise = torch.cat([torch.zeros_like(noise[:, :, :1]), noise], dim=2)
            starts.append(start)
            yield latents[:, start: start + f], noise.to(z_ref)

    def _commit(self, audio: LiveAudio, tokens: int, cut: int) -> torch.Tensor:
        """Hidden states (T, E, Da) of tokens 0 .. T - 1; new ones from the audio cut at ``cut`` samples."""
        frontend = self.pipeline.frontend
        per_chunk, chunk = frontend.tokens_per_chunk, frontend.chunk_samples
        while self._tokens < tokens:
            q = self._tokens // per_chunk
            segment = audio.waveform(min((q + 1) * chunk, cut))[q * chunk:]
            hidden = frontend.hidden(torch.from_numpy(segment))
            offset = self._tokens - q * per_chunk
            take = min(tokens, (q + 1) * per_chunk) - self._tokens
            self._hidden.append(hidden[offset: offset + take])
            self._tokens += take
        return torch.cat(self._hidden)[:tokens]

    def _sample(self, frame: int) -> int:
        """The first audio sample of video frame ``frame``."""
        return frame * self.pipeline.sample_rate // self.pipeline.fps
