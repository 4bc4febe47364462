"""Audio loading and the frozen Whisper front end that turns a waveform into per-video-frame windows.

Pipeline: waveform (16 kHz mono) -> log-mel features -> frozen Whisper encoder -> the hidden states of ALL
encoder layers (embedding output + one per layer, E = encoder_layers + 1) at 50 Hz, i.e. one token per
320 samples (10 ms mel hop x stride-2 conv) -> one window of tokens per video frame.

Any length: the Hugging Face encoder only accepts exactly 30 s (3000 mel frames, 1500 tokens), so the
audio is cut into 30 s chunks (480000 samples), the last one zero-padded, the chunks are encoded as one
batch, their tokens concatenated, and the result trimmed to the S = ceil(samples / 320) tokens the real
audio covers.

Windowing: at 25 fps a video frame lasts 40 ms = k = 2 tokens (k = tokens_per_frame = 50 // fps).
Frame i owns tokens k*i .. k*i + k - 1; its window of W = window_tokens tokens adds (W - k) / 2 tokens of
context on each side:

    tokens [k*i - (W - k)/2, k*i + k + (W - k)/2)      (W = 10, k = 2: tokens 2i-4 .. 2i+5, +-2 frames)

Tokens outside [0, S) (before the start or past the end of the audio) are zeros.
The E hidden states are folded into the window axis TOKEN-MAJOR: a frame's window is (Hw, Da) with
Hw = W * E and row t * E + l holding hidden state l of the t-th token of the window (einops "w l d -> (w l) d").

Shape letters (docs/design.md): S Whisper tokens, E hidden states, Da width, F frames, W window tokens, Hw = W·E rows.
"""

from __future__ import annotations

import functools
import struct
from pathlib import Path
from typing import Any

import av
import numpy as np
import soxr
import torch
from einops import rearrange
from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from readlit.errors import HUB_ID, AudioError, CheckpointError, ConfigError, DataError, one_line
from readlit.utils.fingerprint import state_fingerprint
from readlit.utils.plain import plain

# Whisper's fixed token rate: 100 mel frames/s (10 ms hop), halved by the stride-2 second conv.
WHISPER_TOKENS_PER_SECOND = 50
WHISPER_SOURCE_URL = "https://huggingface.co/openai/whisper-tiny"



# ----------------------------------------------------------------------------------------------- loading


# Containers whose header states the exact length of the audio (the others estimate it from the bit rate).
_EXACT_LENGTH = {"w64", "flac", "aiff"}
# A file holding less than this share of what its header promises is cut short (a copy or download interrupted).
_TRUNCATED = 0.9


def load_audio(path: str | Path, sample_rate: int = 16000) -> torch.Tensor:
    """Decode any audio (or video) file to a mono float32 waveform.

    Decoded with PyAV (wav, mp3, m4a/aac, flac, ogg, or the audio track of a video); channels are averaged;
    the result is resampled to ``sample_rate`` with soxr (high quality) when the file's rate differs. Samples the
    container marks as outside the presentation (an AAC encoder's priming before time 0 and padding past the
    stream's end) are dropped, so the waveform lasts as long as the file plays.

    Returns:
        (samples,) float32 waveform at ``sample_rate``.

    Raises:
        AudioError: missing or undecodable file, no audio stream, unknown sample rate, zero samples, NaN or
            infinite samples, or a file that holds clearly less than its header promises (truncated).
    """
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
        raise ConfigError(f"sample_rate={sample_rate} must be a positive whole number")
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file; check the path or the data folder it comes from")
    try:
        with av.open(str(path)) as container:
            channels, file_rate, declared = _decode_channels(container, path)
    except (av.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise AudioError(
            f"{path} cannot be decoded as audio ({one_line(err)}); "
            "check that it is a valid audio/video file or re-encode it, e.g. `ffmpeg -i IN -ac 1 OUT.wav`"
        ) from err
    mono = channels.mean(axis=0)
    if mono.size == 0:
        raise AudioError(f"{path} has no samples; replace it or drop it from the data list")
    if declared is not None and mono.size < _TRUNCATED * declared and declared - mono.size > file_rate // 25:
        raise AudioError(f"{path} is truncated: its header promises {declared / file_rate:.2f} s but it holds "
                         f"{mono.size / file_rate:.2f} s; copy or export it again")
    bad = np.flatnonzero(~np.isfinite(mono))
    if bad.size:
        raise AudioError(f"{path} holds NaN or infinite samples (the first at {bad[0] / file_rate:.2f} s); "
                         "export it again")
    if file_rate != sample_rate:
        # soxr directly: same HQ resampler librosa would use, without librosa's slow first-call lazy imports.
        mono = soxr.resample(mono, file_rate, sample_rate, quality="HQ")
    return torch.from_numpy(np.ascontiguousarray(mono, dtype=np.float32))


def _decode_channels(container: av.container.InputContainer, path: Path) -> tuple[np.ndarray, int, int | None]:
    """The first audio stream as (channels, samples) float32 within its presentation span, its sample rate, and
    the samples its header promises (None where the container only estimates them)."""
    if not container.streams.audio:
        raise AudioError(f"{path} has no audio stream; give a file with an audio track")
    stream = container.streams.audio[0]
    rate = stream.codec_context.sample_rate or stream.rate
    if not rate:
        raise AudioError(
            f"{path} has no readable sample rate; re-encode it, e.g. `ffmpeg -i IN -ar 16000 OUT.wav`"
        )
    span = _presented_samples(stream, rate)
    # Converting every frame to planar float (at the stream's rate) makes to_ndarray() always (channels, n),
    # whatever the codec's sample format (s16, s32p, flt, ...).
    resampler = av.AudioResampler(format="fltp", rate=rate)
    pieces, first = [], None
    for frame in container.decode(stream):
        if first is None and frame.pts is not None and frame.time_base is not None:
            first = round(float(frame.pts * frame.time_base) * rate)
        pieces += [out.to_ndarray() for out in resampler.resample(frame)]
    pieces += [out.to_ndarray() for out in resampler.resample(None)]
    if not pieces:
        return np.zeros((1, 0), dtype=np.float32), rate, None
    samples = np.concatenate(pieces, axis=1)
    # An AAC (or Opus) encoder's priming samples are presented before time 0: drop them.
    skip = max(0, -(first or 0))
    samples = samples[:, skip:]
    if span is not None and stream.codec_context.name in ("aac", "opus", "mp3", "vorbis"):
        samples = samples[:, :span]  # the padding that fills the last encoder frame
    if container.format.name == "wav":
        return samples, rate, _wav_promised_samples(path)
    return samples, rate, span if container.format.name in _EXACT_LENGTH else None


def _wav_promised_samples(path: Path) -> int | None:
    """The samples per channel a WAV's ``data`` chunk header promises (FFmpeg reports what the file holds instead);
    None where the header states no length (a streamed WAV) or cannot be read."""
    with open(path, "rb") as handle:
        if handle.read(4) != b"RIFF" or not handle.read(4) or handle.read(4) != b"WAVE":
            return None
        block_align = None
        while len(header := handle.read(8)) == 8:
            kind, size = header[:4], struct.unpack("<I", header[4:])[0]
            if kind == b"data":
                streamed = size in (0, 0xFFFFFFFF)
                return None if streamed or not block_align else size // block_align
            body = handle.read(size + size % 2)  # chunks are padded to an even length
            if kind == b"fmt " and len(body) >= 14:
                block_align = struct.unpack("<H", body[12:14])[0]
    return None


def _presented_samples(stream: av.audio.stream.AudioStream, rate: int) -> int | None:
    """The samples the stream presents, from its header's duration (None when it has none)."""
    if stream.duration is None or stream.time_base is None:
        return None
    return round(float(stream.duration * stream.time_base) * rate)


# ---------------------------------------------------------------------------------------------- windows


def window_token_indices(
    num_frames: int, window_tokens: int, tokens_per_frame: int, start_frame: int = 0
) -> torch.Tensor:
    """Token index of every window slot: row f covers frame ``start_frame + f``.

    Returns:
        (F, W) int64, ``k * (start_frame + f) - (W - k) // 2 + j``; may be negative or >= S (padding slots).
    """
    context = (window_tokens - tokens_per_frame) // 2
    frames = torch.arange(start_frame, start_frame + num_frames)
    return tokens_per_frame * frames[:, None] - context + torch.arange(window_tokens)[None, :]


def tokens_through(frames: int, window_tokens: int, tokens_per_frame: int) -> int:
    """T: the Whisper tokens the windows of frames 0 .. frames - 1 reach (tokens 0 .. T - 1)."""
    return tokens_per_frame * frames + (window_tokens - tokens_per_frame) // 2


# -------------------------------------------------------------------------------------------- front end


class WhisperFrontEnd(torch.nn.Module):
    """Frozen Whisper encoder -> per-frame windows.

    Args:
        pretrained: Hugging Face id (e.g. ``"openai/whisper-tiny"``) or a local folder written with
            ``save_pretrained`` holding the model and its feature extractor (config key ``audio.pretrained``).
        random_config: kwargs for ``transformers.WhisperConfig``; builds a random encoder seeded with
            ``seed`` (tests, CPU demo). Exactly one of ``pretrained`` / ``random_config``.
        window_tokens: W, tokens per frame window (10 = +-2 frames at 25 fps).
        hidden_states: E, must equal the encoder's layers + 1.
        dim: Da, must equal the encoder's d_model.
        fps: video frame rate; must divide Whisper's 50 tokens/s.
        sample_rate: waveform rate; must be the feature extractor's (16000).
        seed: seed for ``random_config`` weights.
    """

    def __init__(
        self,
        pretrained: str | None,
        random_config: dict | None = None,
        window_tokens: int = 10,
        hidden_states: int = 5,
        dim: int = 384,
        fps: int = 25,
        sample_rate: int = 16000,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if (pretrained is None) == (random_config is None):
            raise ConfigError(
                f"pretrained={pretrained!r}: give exactly one of pretrained (a Hugging Face id or local folder) "
                f"and random_config; got random_config={random_config!r}"
            )
        self._kwargs = dict(pretrained=pretrained, random_config=plain(random_config), window_tokens=window_tokens,
                            hidden_states=hidden_states, dim=dim, fps=fps, sample_rate=sample_rate, seed=seed)
        if pretrained is not None and Path(pretrained).expanduser().is_dir():
            self._kwargs["pretrained"] = str(Path(pretrained).expanduser().resolve())
        self._fingerprint: str | None = None
        self.tokens_per_frame = _tokens_per_frame(fps)
        _check_window(window_tokens, self.tokens_per_frame, fps)
        self.window_tokens = window_tokens
        self.fps = fps
        self.sample_rate = sample_rate
        if pretrained is not None:
            encoder, self.feature_extractor = _load_pretrained(pretrained)
            source = f"pretrained={pretrained!r}"
        else:
            encoder, self.feature_extractor = _build_random(random_config, seed)
            source = "random_config"
        _check_model(encoder.config, self.feature_extractor, hidden_states, dim, sample_rate, source)
        self.num_hidden_states = hidden_states
        self.dim = dim
        self.chunk_samples = self.feature_extractor.n_samples
        self.tokens_per_chunk = encoder.config.max_source_positions
        self.samples_per_token = self.chunk_samples // self.tokens_per_chunk
        self.encoder = encoder.requires_grad_(False)
        self.train(False)

    def reference(self) -> dict[str, Any]:
        """The arguments that rebuild this front end (a checkpoint stores them, not the weights)."""
        return dict(self._kwargs)

    def fingerprint(self) -> str:
        """sha256 of the encoder's weights, computed once (the encoder is frozen)."""
        if self._fingerprint is None:
            self._fingerprint = state_fingerprint(self)
        return self._fingerprint

    def train(self, mode: bool = True) -> WhisperFrontEnd:
        """Stay in eval mode whatever ``mode`` is: the encoder is frozen and dropout must stay off."""
        return super().train(False)

    @property
    def window_shape(self) -> tuple[int, int]:
        """(Hw, Da) of one frame's window, Hw = window_tokens * hidden_states."""
        return self.window_tokens * self.num_hidden_states, self.dim

    def num_tokens(self, samples: int) -> int:
        """S = ceil(samples / 320): the tokens that the real audio covers."""
        return -(-samples // self.samples_per_token)

    def num_frames(self, samples: int) -> int:
        """ceil(samples / (sample_rate / fps)): the video frames that the audio covers."""
        return -(-samples * self.fps // self.sample_rate)

    @torch.no_grad()
    def hidden(self, audio: torch.Tensor) -> torch.Tensor:
        """All hidden states of the encoder for audio of any length.

        Args:
            audio: (samples,) mono waveform at ``sample_rate``, on any device.

        Returns:
            (S, E, Da) on the module's device, S = ceil(samples / 320).
        """
        if audio.ndim != 1 or audio.numel() == 0:
            raise AudioError(
                f"expected a non-empty mono waveform of shape (samples,), got {tuple(audio.shape)}"
            )
        waveform = audio.detach().to("cpu", torch.float32).numpy()
        chunks = [waveform[i : i + self.chunk_samples] for i in range(0, waveform.size, self.chunk_samples)]
        # The feature extractor zero-pads the last chunk to 30 s (3000 mel frames), as the encoder requires.
        mel = self.feature_extractor(
            chunks, sampling_rate=self.sample_rate, padding="max_length", return_tensors="pt"
        ).input_features
        weight = self.encoder.conv1.weight
        out = self.encoder(mel.to(weight.device, weight.dtype), output_hidden_states=True)
        layers = torch.stack(out.hidden_states, dim=2)  # (chunks, 1500, E, Da)
        return rearrange(layers, "c s l d -> (c s) l d")[: self.num_tokens(waveform.size)]

    def frame_windows(self, hidden: torch.Tensor, num_frames: int, start_frame: int = 0) -> torch.Tensor:
        """Cut per-frame windows out of the hidden states, zero where they run past the audio.

        Args:
            hidden: (S, E, Da) from :meth:`hidden` (of the whole audio, token 0 = audio start).
            num_frames: F, frames to return.
            start_frame: index of the first returned frame in the audio (frame i is centred on tokens
                k*i .. k*i + k - 1).

        Returns:
            (F, Hw, Da), token-major: row t * E + l is hidden state l of the window's t-th token.
        """
        if hidden.ndim != 3 or tuple(hidden.shape[1:]) != (self.num_hidden_states, self.dim):
            raise DataError(
                f"hidden states of shape {tuple(hidden.shape)} do not match (S, hidden_states="
                f"{self.num_hidden_states}, dim={self.dim}); recompute them with this audio config"
            )
        if num_frames < 0:
            raise ValueError(f"num_frames must be >= 0, got {num_frames}")
        tokens = hidden.shape[0]
        index = window_token_indices(num_frames, self.window_tokens, self.tokens_per_frame, start_frame)
        index = index.to(hidden.device)
        # Slot S of the padded tensor is an all-zero token: every out-of-range slot reads it.
        padded = torch.cat([hidden, hidden.new_zeros(1, *hidden.shape[1:])])
        index = torch.where((index >= 0) & (index < tokens), index, tokens)
        return rearrange(padded[index], "f w l d -> f (w l) d")

    def forward(self, audio: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        """Waveform -> per-frame windows.

        Args:
            audio: (samples,) mono waveform at ``sample_rate``.
            num_frames: F; defaults to ceil(samples / (sample_rate / fps)).

        Returns:
            (F, Hw, Da) windows of frames 0 .. F-1.
        """
        if num_frames is None:
            num_frames = self.num_frames(audio.shape[-1])
        return self.frame_windows(self.hidden(audio), num_frames)


# ------------------------------------------------------------------------------------- building helpers


def _tokens_per_frame(fps: int) -> int:
    if isinstance(fps, bool) or not isinstance(fps, int) or fps <= 0 or WHISPER_TOKENS_PER_SECOND % fps:
        raise ConfigError(
            f"fps={fps} must divide Whisper's {WHISPER_TOKENS_PER_SECOND} tokens/s "
            "(e.g. 25, 50, 10); resample the video to such a rate"
        )
    return WHISPER_TOKENS_PER_SECOND // fps


def _check_window(window_tokens: int, tokens_per_frame: int, fps: int) -> None:
    # The window must contain the frame's own tokens plus the same context on both sides.
    parity = "even" if tokens_per_frame % 2 == 0 else "odd"
    if (isinstance(window_tokens, bool) or not isinstance(window_tokens, int) or window_tokens < tokens_per_frame
            or (window_tokens - tokens_per_frame) % 2):
        raise ConfigError(
            f"window_tokens={window_tokens} must be {parity} and >= {tokens_per_frame} at "
            f"fps={fps} ({tokens_per_frame} tokens per frame, centred with equal context on both sides)"
        )


def check_frontend(factory: Any) -> None:
    """Check what is cheap to check of a front end's partial (its keys, a local folder) without loading weights,
    so a datamodule that builds the front end only at set-up can refuse a bad key when it is made."""
    if not isinstance(factory, functools.partial):
        return  # a plain callable (or none) shows no keys to check; it is checked when it builds the front end
    kwargs = factory.keywords
    pretrained, random_config = kwargs.get("pretrained"), kwargs.get("random_config")
    if (pretrained is None) == (random_config is None):
        raise ConfigError(f"pretrained={pretrained!r}: give exactly one of pretrained (a Hugging Face id or local "
                          f"folder) and random_config; got random_config={random_config!r}")
    fps = kwargs.get("fps", 25)
    _check_window(kwargs.get("window_tokens", 10), _tokens_per_frame(fps), fps)
    for name in ("hidden_states", "dim", "sample_rate"):
        value = kwargs.get(name, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name}={value} must be a positive whole number")
    if pretrained is not None and not Path(str(pretrained)).expanduser().is_dir() and not HUB_ID.match(pretrained):
        raise CheckpointError(f"pretrained={pretrained!r}: no such Whisper folder, and not a Hugging Face id")


def _load_pretrained(pretrained: str) -> tuple[WhisperEncoder, WhisperFeatureExtractor]:
    """Encoder + feature extractor from a hub id or a local save_pretrained folder; CheckpointError if not."""
    local = Path(pretrained).expanduser()
    advice = (
        f"the weights come from {WHISPER_SOURCE_URL}: save WhisperModel and WhisperFeatureExtractor "
        "with save_pretrained(DIR) on a machine with network and set pretrained=DIR"
    )
    if not local.is_dir() and not HUB_ID.match(pretrained):
        raise CheckpointError(f"pretrained={pretrained!r}: no such Whisper folder; {advice}")
    # A local folder must never trigger a download.
    kwargs = {"local_files_only": True} if local.is_dir() else {}
    name = str(local) if local.is_dir() else pretrained
    try:
        # use_safetensors=None (default) loads model.safetensors when present, else the .bin file.
        encoder = WhisperModel.from_pretrained(name, **kwargs).encoder
        feature_extractor = WhisperFeatureExtractor.from_pretrained(name, **kwargs)
    # Any failure (offline, missing files, bad weights) must become one actionable line.
    except Exception as err:
        raise CheckpointError(
            f"pretrained={pretrained!r}: cannot load the Whisper encoder ({one_line(err)}); {advice}"
        ) from err
    return encoder, feature_extractor


def _build_random(random_config: dict, seed: int) -> tuple[WhisperEncoder, WhisperFeatureExtractor]:
    """A randomly initialised encoder (no decoder: it is never used), reproducible from ``seed``."""
    # fork_rng: seeding must not change the caller's global random stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            config = WhisperConfig(**random_config)
            encoder = WhisperEncoder(config)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"random_config={random_config} is not a valid WhisperConfig ({one_line(err)})") from err
    return encoder, WhisperFeatureExtractor(feature_size=config.num_mel_bins)


def _check_model(
    config: WhisperConfig,
    feature_extractor: WhisperFeatureExtractor,
    hidden_states: int,
    dim: int,
    sample_rate: int,
    source: str,
) -> None:
    """The loaded encoder must match the configured sizes and the 30 s / 1500-token chunk geometry."""
    if config.encoder_layers + 1 != hidden_states or config.d_model != dim:
        raise ConfigError(
            f"hidden_states={hidden_states} and dim={dim} do not match the Whisper encoder from {source}: it has "
            f"{config.encoder_layers + 1} hidden states ({config.encoder_layers} layers + embeddings) of width "
            f"{config.d_model}; set hidden_states={config.encoder_layers + 1} dim={config.d_model}"
        )
    if feature_extractor.sampling_rate != sample_rate:
        raise ConfigError(
            f"sample_rate={sample_rate} but the Whisper feature extractor from {source} expects "
            f"{feature_extractor.sampling_rate}; set sample_rate={feature_extractor.sampling_rate}"
        )
    if feature_extractor.feature_size != config.num_mel_bins:
        raise CheckpointError(
            f"the Whisper feature extractor from {source} makes {feature_extractor.feature_size} mel bins "
            f"but the encoder expects {config.num_mel_bins}; save both from the same checkpoint"
        )
    # The encoder takes exactly 2 * max_source_positions mel frames; one chunk must fill it exactly.
    tokens = config.max_source_positions
    if 2 * tokens != feature_extractor.nb_max_frames or feature_extractor.n_samples % tokens:
        raise ConfigError(
            f"the Whisper encoder from {source} takes {2 * tokens} mel frames but the feature extractor "
            f"makes {feature_extractor.nb_max_frames} per {feature_extractor.n_samples} samples; "
            "keep max_source_positions=1500 (30 s)"
        )
    if feature_extractor.n_samples // tokens * WHISPER_TOKENS_PER_SECOND != sample_rate:
        raise ConfigError(
            f"the Whisper model from {source} does not run at {WHISPER_TOKENS_PER_SECOND} tokens/s "
            f"at sample_rate={sample_rate}; use a standard Whisper checkpoint"
        )


# ------------------------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> None:
    """``python -m readlit.audio FILE [FILE ...]``: check that audio files load, and how long they are."""
    import argparse

    from readlit.cli import fail

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--fps", type=int, default=25)
    args = parser.parse_args(argv)
    for path in args.files:
        try:
            audio = load_audio(path, args.sample_rate)
        except AudioError as err:
            fail(str(err))
        seconds = audio.numel() / args.sample_rate
        frames = -(-audio.numel() * args.fps // args.sample_rate)
        print(f"{path}: {seconds:.2f} s, mono at {args.sample_rate} Hz, {frames} video frames at {args.fps} fps")


if __name__ == "__main__":
    main()
