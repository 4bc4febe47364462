"""mp4 writing and reading: round trip fidelity, audio alignment, determinism and atomic writes."""

from fractions import Fraction

import av
import numpy as np
import pytest

from readlit.data import video_io
from readlit.data.synthetic import frame_loudness, make_identity, make_session, render_frames
from readlit.data.video_io import read_mp4, write_mp4
from readlit.errors import DataError

FRAMES = 41  # 1.64 s: the audio (26240 samples) does not fill a whole number of AAC frames


@pytest.fixture(scope="module")
def clip() -> tuple[np.ndarray, np.ndarray]:
    face = make_identity(5, 1)
    session = make_session(5, face, 0, FRAMES)
    return render_frames(face, session, 0, FRAMES, 64), session.audio


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def test_round_trip_keeps_frames_rate_and_audio(tmp_path, clip):
    frames, audio = clip
    path = write_mp4(tmp_path / "clip.mp4", frames, 25, audio, 16000)
    assert path == tmp_path / "clip.mp4"
    with av.open(str(path)) as container:
        assert len(container.streams.video) == 1 and len(container.streams.audio) == 1
        assert container.streams.video[0].codec_context.name in ("h264", "libx264")
        assert container.streams.audio[0].codec_context.name == "aac"
        assert container.streams.audio[0].codec_context.channels == 1
    decoded, fps, sound, sample_rate = read_mp4(path)
    assert decoded.shape == frames.shape and decoded.dtype == np.uint8
    assert fps == 25.0 and sample_rate == 16000
    assert np.abs(decoded.astype(np.float32) - frames).mean() < 8.0
    assert sound.dtype == np.float32 and sound.ndim == 1
    # AAC priming is dropped and the last frame's padding trimmed: the durations agree to the sample.
    assert abs(len(sound) / sample_rate - len(decoded) / fps) < 1 / fps
    assert len(sound) == len(audio)
    # Aligned, not just equally long: per-frame loudness matches, and so does the waveform.
    assert _pearson(frame_loudness(sound, FRAMES), frame_loudness(audio, FRAMES)) > 0.99
    error = np.sqrt(np.mean((sound - audio) ** 2)) / np.sqrt(np.mean(audio**2))
    assert error < 0.2


def test_video_without_audio(tmp_path, clip):
    frames, _ = clip
    path = write_mp4(tmp_path / "nested" / "folder" / "silent.mp4", frames[:9], 25)
    with av.open(str(path)) as container:
        assert len(container.streams.video) == 1 and len(container.streams.audio) == 0
    decoded, fps, sound, sample_rate = read_mp4(path)
    assert decoded.shape == (9, 64, 64, 3) and fps == 25.0
    assert sound is None and sample_rate is None


def test_non_square_frames_and_other_rates(tmp_path):
    rows = np.linspace(0, 255, 48, dtype=np.float32)[None, :, None, None]
    frames = np.broadcast_to(rows, (5, 48, 80, 3)).astype(np.uint8)
    audio = 0.1 * np.sin(np.linspace(0, 400, 5 * 800)).astype(np.float32)
    decoded, fps, sound, sample_rate = read_mp4(write_mp4(tmp_path / "wide.mp4", frames, 30, audio, 24000))
    assert decoded.shape == (5, 48, 80, 3) and fps == 30.0
    assert sample_rate == 24000 and len(sound) == len(audio)


def test_writing_is_deterministic(tmp_path, clip):
    frames, audio = clip
    first = write_mp4(tmp_path / "a.mp4", frames, 25, audio).read_bytes()
    second = write_mp4(tmp_path / "b.mp4", frames, 25, audio).read_bytes()
    assert first == second


def test_write_leaves_only_the_target_file(tmp_path, clip):
    frames, audio = clip
    path = write_mp4(tmp_path / "out.mp4", frames, 25, audio)
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]
    reference = tmp_path / "reference"
    reference.touch()
    assert path.stat().st_mode == reference.stat().st_mode  # not a private temp-file mode


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        (np.zeros((3, 32, 32, 3), np.float32), "uint8"),
        (np.zeros((3, 32, 32), np.uint8), "shape"),
        (np.zeros((0, 32, 32, 3), np.uint8), "shape"),
        (np.zeros((3, 33, 32, 3), np.uint8), "even"),
    ],
)
def test_bad_frames_are_refused_and_leave_no_file(tmp_path, frames, message):
    with pytest.raises(DataError, match=message):
        write_mp4(tmp_path / "bad.mp4", frames, 25)
    assert not (tmp_path / "bad.mp4").exists()


@pytest.mark.parametrize(
    ("audio", "fps", "message"),
    [
        (np.zeros((2, 640), np.float32), 25, "mono"),
        (np.zeros(640, np.int16), 25, "floating"),
        (np.full(640, np.nan, np.float32), 25, "NaN"),
        (np.zeros(640, np.float32), 0, "fps"),
        (np.zeros(640, np.float32), 25.0, "fps"),
    ],
)
def test_bad_audio_or_rate_are_refused(tmp_path, audio, fps, message):
    with pytest.raises(DataError, match=message):
        write_mp4(tmp_path / "bad.mp4", np.zeros((1, 32, 32, 3), np.uint8), fps, audio)
    assert list(tmp_path.iterdir()) == []


def test_sample_rate_aac_cannot_store_is_refused(tmp_path):
    with pytest.raises(DataError, match="9600 Hz"):
        write_mp4(tmp_path / "bad.mp4", np.zeros((1, 32, 32, 3), np.uint8), 25, np.zeros(640), 9600)
    assert list(tmp_path.iterdir()) == []


def test_failure_while_encoding_keeps_the_old_file_and_leaves_no_temp(tmp_path, clip, monkeypatch):
    frames, audio = clip
    path = write_mp4(tmp_path / "out.mp4", frames[:5], 25)
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(video_io, "_mux_audio", broken)  # fails after the video is already encoded
    with pytest.raises(RuntimeError, match="disk full"):
        write_mp4(path, frames, 25, audio)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_read_missing_or_damaged_file_raises_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_mp4(tmp_path / "missing.mp4")
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(b"not a video at all" * 100)
    with pytest.raises(DataError, match="cannot decode"):
        read_mp4(damaged)


def test_read_mixes_stereo_integer_audio_down_to_float_mono(tmp_path):
    # A file from elsewhere: stereo AAC decoded from 16-bit samples, left and right in antiphase
    # except for a common tone, so only a true mix-down keeps the tone and cancels the rest.
    path = tmp_path / "stereo.mp4"
    rate, count = 16000, 16000
    t = np.arange(count) / rate
    common = 0.2 * np.sin(2 * np.pi * 300 * t)
    other = 0.2 * np.sin(2 * np.pi * 1000 * t)
    stereo = np.stack([common + other, common - other])
    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
        sound = container.add_stream("aac", rate=rate)
        sound.layout = "stereo"
        for index in range(25):
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, 25)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        for start in range(0, count, 1024):
            chunk = (stereo[:, start : start + 1024].T * 32767).astype(np.int16).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="s16", layout="stereo")
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            container.mux(sound.encode(frame))
        container.mux(sound.encode(None))
    _, _, mono, sample_rate = read_mp4(path)
    assert sample_rate == rate and mono.dtype == np.float32 and mono.ndim == 1
    assert abs(len(mono) - count) < rate / 25
    spectrum = np.abs(np.fft.rfft(mono[:count]))
    frequencies = np.fft.rfftfreq(count, 1 / rate)
    tone = spectrum[np.abs(frequencies - 300) < 5].max()
    cancelled = spectrum[np.abs(frequencies - 1000) < 5].max()
    assert tone > 20 * cancelled
    # The mean of the channels keeps the common tone at its level.
    level = np.sqrt(np.mean(mono[1000:-1000] ** 2)) / (0.2 / np.sqrt(2))
    assert 0.9 < level < 1.1
