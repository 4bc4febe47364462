"""Frame-rate conversion and audio on the video's clock: which frames and which samples a clip gets."""

import numpy as np
import pytest

from readlit.data.preprocess.decode import Timeline, decode_frames, frame_schedule, read_audio, read_timeline
from readlit.data.preprocess.sources import SkipClip
from tests.fake_raw import write_media


def _timeline(fps: float, count: int, first: float = 0.0) -> Timeline:
    return Timeline(first + np.arange(count) / fps, 1.0 / fps, 64, 48)


def _check_nearest_centres(index: np.ndarray, source_fps: float, count: int, t0: float) -> None:
    """Every output frame shows a source frame whose centre is nearest its own (ties either way)."""
    source = (np.arange(count) + 0.5) / source_fps
    target = t0 + (np.arange(len(index)) + 0.5) / 25
    distance = np.abs(source[None, :] - target[:, None])
    np.testing.assert_allclose(distance[np.arange(len(index)), index], distance.min(axis=1), atol=1e-9)


def test_same_rate_keeps_every_frame_from_the_first_frame_time():
    t0, index = frame_schedule(_timeline(25, 50, first=0.2), 25, None, None)
    assert t0 == pytest.approx(0.2)
    np.testing.assert_array_equal(index, np.arange(50))


@pytest.mark.parametrize(("source_fps", "count"), [(30, 60), (29.97, 90), (20, 40), (50, 100)])
def test_other_rates_take_the_frame_with_the_nearest_centre(source_fps, count):
    _, index = frame_schedule(_timeline(source_fps, count), 25, None, None)
    assert len(index) == int(count / source_fps * 25 + 1e-6)
    _check_nearest_centres(index, source_fps, count, 0.0)
    assert np.ptp(np.diff(index)) <= 1  # frames are dropped (or repeated) evenly


def test_a_span_starts_at_its_time_and_ends_before_its_end():
    t0, index = frame_schedule(_timeline(30, 300), 25, 2.0, 4.5)
    assert t0 == 2.0 and len(index) == 62  # 2.5 s at 25 fps = 62.5 frames: the partial frame is dropped
    _check_nearest_centres(index, 30, 300, 2.0)
    _, past_the_end = frame_schedule(_timeline(30, 300), 25, 9.0, 20.0)
    assert len(past_the_end) == 25  # the video ends at 10 s


def test_decode_frames_seeks_and_returns_the_scheduled_frames(tmp_path):
    """Each frame's brightness is its number, so the decoded images show which frames were picked."""
    levels = np.arange(90) * 2 + 30
    frames = np.broadcast_to(levels[:, None, None, None], (90, 32, 32, 3)).astype(np.uint8)
    path = write_media(tmp_path / "ramp.mp4", frames, 30, None, 16000)
    timeline = read_timeline(path)
    assert (timeline.width, timeline.height, len(timeline.times)) == (32, 32, 90)
    _, index = frame_schedule(timeline, 25, 1.5, 2.5)
    seen = np.full(len(index), -1.0)
    for outputs, image in decode_frames(path, timeline, index, lambda f: f.to_ndarray(format="gray")):
        seen[outputs] = image.mean()
    np.testing.assert_allclose(seen, levels[index], atol=2.5)
    assert index[0] == 45 and np.all(np.diff(index) >= 1)


def test_read_audio_cuts_the_span_mixes_stereo_and_resamples(tmp_path):
    rate, click_at = 44100, 1.5
    wave = np.zeros((2, 3 * rate), np.float32)
    burst = slice(int(click_at * rate), int(click_at * rate) + 441)  # 10 ms burst
    wave[0, burst], wave[1, burst] = 0.8, 0.4
    path = write_media(tmp_path / "click.m4a", None, 25, wave, rate)
    audio = read_audio(path, t0=1.0, num_frames=25, fps=25, sample_rate=16000)
    assert audio.shape == (16000,) and audio.dtype == np.float32
    energy = np.convolve(audio**2, np.ones(160), mode="same")
    assert abs(np.argmax(energy) / 16000 - (click_at - 1.0 + 0.005)) < 0.002  # within 2 ms
    assert np.median(np.abs(audio[int(0.502 * 16000) : int(0.508 * 16000)])) == pytest.approx(0.6, abs=0.06)


def test_a_file_without_audio_or_video_is_skipped_with_the_reason(tmp_path):
    silent = write_media(tmp_path / "silent.mp4", np.zeros((5, 16, 16, 3), np.uint8), 25, None, 16000)
    with pytest.raises(SkipClip) as caught:
        read_audio(silent, 0.0, 5, 25, 16000)
    assert caught.value.reason == "no_audio"
    (tmp_path / "junk.mp4").write_bytes(b"\x00" * 2000)
    with pytest.raises(SkipClip) as caught:
        read_timeline(tmp_path / "junk.mp4")
    assert caught.value.reason == "unreadable" and "junk.mp4" in caught.value.detail
