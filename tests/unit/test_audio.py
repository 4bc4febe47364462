"""Tests for readlit.audio: file decoding, Whisper loading, any-length encoding and exact windowing."""

import math
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

from readlit.audio import WhisperFrontEnd, load_audio, window_token_indices
from readlit.errors import AudioError, CheckpointError, ConfigError, DataError

SR = 16000
TINY = dict(d_model=32, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=64, num_mel_bins=80)


def tiny_front_end(seed: int = 0, **kwargs) -> WhisperFrontEnd:
    return WhisperFrontEnd(None, random_config=TINY, hidden_states=3, dim=32, seed=seed, **kwargs)


def tone(seconds: float, rate: int, freq: float) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return np.sin(2 * np.pi * freq * t).astype(np.float32)


@pytest.fixture(scope="module")
def saved_whisper(tmp_path_factory) -> Path:
    """A tiny random WhisperModel + feature extractor saved like a downloaded checkpoint."""
    folder = tmp_path_factory.mktemp("whisper")
    config = WhisperConfig(
        **TINY,
        decoder_layers=1,
        decoder_attention_heads=2,
        decoder_ffn_dim=64,
        max_source_positions=1500,
        vocab_size=64,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=3,
        suppress_tokens=None,
        begin_suppress_tokens=None,
    )
    torch.manual_seed(123)
    WhisperModel(config).save_pretrained(folder)
    WhisperFeatureExtractor().save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def front_end() -> WhisperFrontEnd:
    return tiny_front_end()


# ------------------------------------------------------------------------------------------- load_audio


def test_load_audio_resamples_44k_stereo_to_16k_mono_by_mean(tmp_path):
    left, right = tone(1.0, 44100, 440.0), 0.5 * tone(1.0, 44100, 660.0)
    sf.write(tmp_path / "stereo.wav", np.stack([left, right], axis=1), 44100, subtype="FLOAT")
    audio = load_audio(tmp_path / "stereo.wav")
    assert audio.dtype == torch.float32 and audio.ndim == 1
    assert abs(audio.numel() - SR) <= 2
    expected = 0.5 * (tone(1.0, SR, 440.0) + 0.5 * tone(1.0, SR, 660.0))
    n = min(audio.numel(), expected.size)
    middle = slice(200, n - 200)  # resampler edge effects stay out of the comparison
    np.testing.assert_allclose(audio.numpy()[:n][middle], expected[:n][middle], atol=1e-2)


def test_load_audio_16k_wav_is_unchanged(tmp_path):
    source = 0.3 * tone(0.5, SR, 300.0)
    sf.write(tmp_path / "mono.wav", source, SR, subtype="PCM_16")
    audio = load_audio(str(tmp_path / "mono.wav"))
    assert audio.numel() == source.size
    np.testing.assert_allclose(audio.numpy(), source, atol=1 / 32768 + 1e-6)


def test_load_audio_decodes_aac_m4a(tmp_path):
    path = tmp_path / "speech.m4a"
    source = 0.5 * tone(1.0, 22050, 440.0)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=22050, layout="mono")
        for start in range(0, source.size, 1024):
            frame = av.AudioFrame.from_ndarray(
                source[None, start : start + 1024], format="fltp", layout="mono"
            )
            frame.sample_rate = 22050
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    audio = load_audio(path).numpy()
    # AAC adds up to one frame of priming/padding; the tone's pitch and level must survive.
    assert abs(audio.size - SR) <= 2048
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * SR / audio.size - 440.0) < 3.0
    assert abs(np.sqrt(np.mean(audio[2000:-2000] ** 2)) - 0.5 / math.sqrt(2)) < 0.05


def test_load_audio_errors(tmp_path):
    with pytest.raises(AudioError, match="nope.wav: no such file"):
        load_audio(tmp_path / "nope.wav")
    (tmp_path / "noise.wav").write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(AudioError, match="noise.wav cannot be decoded as audio") as info:
        load_audio(tmp_path / "noise.wav")
    assert "\n" not in str(info.value)
    with av.open(str(tmp_path / "silent.mp4"), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        container.mux(
            stream.encode(av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24"))
        )
        container.mux(stream.encode(None))
    with pytest.raises(AudioError, match="silent.mp4 has no audio stream"):
        load_audio(tmp_path / "silent.mp4")
    sf.write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), SR)
    with pytest.raises(AudioError, match="no samples.*empty.wav|empty.wav.*no samples"):
        load_audio(tmp_path / "empty.wav")


# ------------------------------------------------------------------------------------------ loading/config


def test_local_folder_matches_saved_encoder(saved_whisper):
    front = WhisperFrontEnd(pretrained=str(saved_whisper), hidden_states=3, dim=32)
    audio = torch.randn(2 * SR + 123, generator=torch.Generator().manual_seed(1)) * 0.1

    extractor = WhisperFeatureExtractor.from_pretrained(saved_whisper)
    mel = extractor(audio.numpy(), sampling_rate=SR, padding="max_length", return_tensors="pt").input_features
    encoder = WhisperModel.from_pretrained(saved_whisper).encoder.eval()
    with torch.no_grad():
        reference = torch.stack(encoder(mel, output_hidden_states=True).hidden_states, dim=2)[0]
    tokens = math.ceil(audio.numel() / 320)

    hidden = front.hidden(audio)
    assert hidden.shape == (tokens, 3, 32)
    torch.testing.assert_close(hidden, reference[:tokens], atol=1e-6, rtol=0)
    # The saved weights were loaded, not a fresh random init.
    torch.testing.assert_close(front.encoder.conv1.weight, encoder.conv1.weight, atol=0, rtol=0)


def test_missing_folder_raises_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="^pretrained=.*: no such Whisper folder") as info:
        WhisperFrontEnd(pretrained=str(tmp_path / "nope"), hidden_states=3, dim=32)
    message = str(info.value)
    assert (
        "\n" not in message and "nope" in message and "https://huggingface.co/openai/whisper-tiny" in message
    )


def test_empty_folder_raises_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="^pretrained=.*: cannot load the Whisper encoder") as info:
        WhisperFrontEnd(pretrained=str(tmp_path), hidden_states=3, dim=32)
    assert "\n" not in str(info.value)


def test_mismatched_sizes_raise_config_error(saved_whisper):
    with pytest.raises(ConfigError, match="set hidden_states=3 dim=32"):
        WhisperFrontEnd(pretrained=str(saved_whisper), hidden_states=5, dim=32)
    with pytest.raises(ConfigError, match="dim=384 do not match.*set hidden_states=3 dim=32"):
        WhisperFrontEnd(pretrained=str(saved_whisper), hidden_states=3, dim=384)
    with pytest.raises(ConfigError, match="set hidden_states=3"):
        WhisperFrontEnd(None, random_config=TINY, hidden_states=5, dim=32)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(pretrained=None, random_config=None),
        dict(pretrained="x", random_config=TINY),
        dict(pretrained=None, random_config=TINY, window_tokens=7),
        dict(pretrained=None, random_config=TINY, window_tokens=0),
        dict(pretrained=None, random_config=TINY, fps=30),
        dict(pretrained=None, random_config=TINY, sample_rate=22050),
        dict(pretrained=None, random_config=dict(TINY, encoder_attention_heads=3)),
    ],
)
def test_invalid_config_raises_config_error(kwargs):
    with pytest.raises(ConfigError):
        WhisperFrontEnd(hidden_states=3, dim=32, **kwargs)


def test_random_config_is_reproducible_and_frozen():
    audio = torch.randn(SR, generator=torch.Generator().manual_seed(2))
    first, again, other = tiny_front_end(seed=7), tiny_front_end(seed=7), tiny_front_end(seed=8)
    torch.testing.assert_close(first(audio), again(audio), atol=0, rtol=0)
    assert not torch.allclose(first(audio), other(audio))

    assert not any(p.requires_grad for p in first.parameters())
    assert first.train() is first
    assert not first.training and not any(m.training for m in first.modules())
    assert not first(audio).requires_grad


def test_random_config_leaves_global_rng_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    tiny_front_end(seed=1)
    torch.testing.assert_close(torch.rand(3), expected)


# ---------------------------------------------------------------------------------------------- windows


def index_hidden(tokens: int, layers: int = 3, dim: int = 32) -> torch.Tensor:
    """hidden[s, l, d] = 1000 * (s + 1) + l: every value says which token and layer it came from."""
    s = torch.arange(tokens, dtype=torch.float32)[:, None, None]
    layer = torch.arange(layers, dtype=torch.float32)[None, :, None]
    return (1000 * (s + 1) + layer).expand(tokens, layers, dim).clone()


def decode_windows(windows: torch.Tensor, layers: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """(F, Hw, Da) -> token index (F, W) with -1 for zero padding, and the layer index (F, W, L)."""
    values = windows[..., 0].reshape(windows.shape[0], -1, layers)  # token-major rows
    assert torch.equal(windows, windows[..., :1].expand_as(windows))  # every channel carries the same tag
    token = torch.div(values[..., 0], 1000, rounding_mode="floor").long() - 1
    return token, values - 1000 * (token[..., None] + 1)


def test_window_indices_are_centred_on_the_frame_tokens():
    index = window_token_indices(num_frames=4, window_tokens=10, tokens_per_frame=2)
    assert index.shape == (4, 10)
    for i in range(4):
        assert index[i].tolist() == list(range(2 * i - 4, 2 * i + 6))
        assert index[i, 4:6].tolist() == [2 * i, 2 * i + 1]  # the frame's own tokens in the middle


def test_frame_windows_exact_tokens_layers_and_zero_padding(front_end):
    tokens = 13  # frames 0..6 at 2 tokens/frame; frame 6 owns token 12 and a missing token 13
    windows = front_end.frame_windows(index_hidden(tokens), num_frames=8)
    assert windows.shape == (8, 30, 32) == (8, *front_end.window_shape)
    token, layer = decode_windows(windows)
    for i in range(8):
        expected = [s if 0 <= s < tokens else -1 for s in range(2 * i - 4, 2 * i + 6)]
        assert token[i].tolist() == expected, i
    # Padding slots are exact zeros; real slots hold layers 0, 1, 2 in order (token-major).
    padded = token < 0
    assert torch.equal(windows.reshape(8, 10, 3, 32)[padded], torch.zeros(int(padded.sum()), 3, 32))
    assert torch.equal(layer[~padded], torch.tensor([0.0, 1.0, 2.0]).expand(int((~padded).sum()), 3))
    assert token[0].tolist()[:4] == [-1] * 4 and token[7].tolist() == [10, 11, 12] + [-1] * 7


@pytest.mark.parametrize("start_frame", [0, 3, 9, -2])
def test_frame_windows_start_frame_offsets(front_end, start_frame):
    hidden = index_hidden(40)
    windows = front_end.frame_windows(hidden, num_frames=6, start_frame=start_frame)
    full = front_end.frame_windows(hidden, num_frames=30, start_frame=-10)
    torch.testing.assert_close(windows, full[start_frame + 10 : start_frame + 16], atol=0, rtol=0)
    token, _ = decode_windows(windows)
    for f in range(6):
        i = start_frame + f
        assert token[f].tolist() == [s if 0 <= s < 40 else -1 for s in range(2 * i - 4, 2 * i + 6)]


def test_frame_windows_other_fps_needs_matching_parity():
    # 10 fps = 5 tokens per frame: an even window cannot hold them with equal context on both sides.
    with pytest.raises(ConfigError, match="^window_tokens=6 must be odd"):
        tiny_front_end(window_tokens=6, fps=10)
    front = tiny_front_end(window_tokens=7, fps=10)
    assert front.tokens_per_frame == 5 and front.window_shape == (21, 32)
    token, _ = decode_windows(front.frame_windows(index_hidden(20), num_frames=3))
    assert token.tolist() == [[-1, 0, 1, 2, 3, 4, 5], [4, 5, 6, 7, 8, 9, 10], [9, 10, 11, 12, 13, 14, 15]]


def test_frame_windows_rejects_wrong_hidden_shape(front_end):
    with pytest.raises(DataError, match="hidden_states=3, dim=32"):
        front_end.frame_windows(torch.zeros(10, 5, 32), num_frames=2)


# ------------------------------------------------------------------------------------------- any length


def test_31_seconds_chunks_and_matches_first_30_seconds(front_end):
    audio = torch.randn(31 * SR + 77, generator=torch.Generator().manual_seed(3)) * 0.1
    hidden = front_end.hidden(audio)
    assert hidden.shape == (math.ceil(audio.numel() / 320), 3, 32)
    first = front_end.hidden(audio[: 30 * SR])
    assert first.shape[0] == 1500
    torch.testing.assert_close(hidden[:1500], first, atol=1e-5, rtol=1e-5)
    # The second chunk is real signal, not a copy of the first or zeros.
    assert hidden[1500:].abs().sum() > 0 and not torch.allclose(hidden[1500:1550], first[:50])

    windows = front_end(audio)
    assert windows.shape == (math.ceil(audio.numel() / 640), 30, 32)
    torch.testing.assert_close(windows, front_end.frame_windows(hidden, windows.shape[0]), atol=0, rtol=0)


def test_short_audio_and_explicit_num_frames(front_end):
    audio = torch.randn(int(0.3 * SR), generator=torch.Generator().manual_seed(4)) * 0.1
    hidden = front_end.hidden(audio)
    assert hidden.shape == (15, 3, 32)
    assert front_end(audio).shape == (8, 30, 32)  # ceil(4800 / 640)
    windows = front_end(audio, num_frames=11)
    assert windows.shape == (11, 30, 32)
    # Frames 10 and beyond start at token 16 > S: their windows are all zeros.
    assert torch.equal(windows[10], torch.zeros(30, 32)) and windows[7].abs().sum() > 0


def test_hidden_rejects_empty_or_multichannel_audio(front_end):
    with pytest.raises(AudioError):
        front_end.hidden(torch.zeros(0))
    with pytest.raises(AudioError):
        front_end.hidden(torch.zeros(2, SR))
