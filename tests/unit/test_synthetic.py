"""Synthetic talking heads: determinism, lip-sync statistics, rendering and the CLI."""

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from readlit.data.synthetic import (
    Identity,
    Session,
    frame_loudness,
    main,
    make_identity,
    make_session,
    render_frames,
)
from readlit.data.video_io import read_mp4
from readlit.errors import DataError

REPO = Path(__file__).resolve().parents[2]
TEN_SECONDS = 250
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def _luma(frames: np.ndarray) -> np.ndarray:
    return (frames.astype(np.float32) / 255.0) @ LUMA


def _box(identity: Identity, size: int, top: float, bottom: float, half_width: float) -> tuple[slice, slice]:
    """Pixel box around the head's resting position; offsets in short-side units from the head centre."""
    centre_y = size / 2 + identity.head_cy * size
    rows = slice(int(centre_y + top * size), int(np.ceil(centre_y + bottom * size)))
    columns = slice(int(size / 2 - half_width * size), int(np.ceil(size / 2 + half_width * size)))
    return rows, columns


@pytest.fixture(scope="module")
def sessions() -> list[tuple[Identity, Session]]:
    """Ten-second sessions of six identities, two sessions for the first three."""
    pairs = [(0, 0), (1, 0), (2, 0), (3, 0), (4, 0), (5, 0), (0, 1), (1, 1), (2, 1)]
    out = []
    for identity, session in pairs:
        face = make_identity(7, identity)
        out.append((face, make_session(7, face, session, TEN_SECONDS)))
    return out


# ------------------------------------------------------------------------------------ determinism


def test_same_arguments_give_same_bytes_regardless_of_call_order():
    first = make_session(3, 2, 1, 60)
    make_session(3, 5, 0, 40)  # unrelated draws in between must not matter
    make_identity(4, 2)
    second = make_session(3, 2, 1, 60)
    for name in ("audio", "mouth_open", "head", "blink"):
        assert getattr(first, name).tobytes() == getattr(second, name).tobytes(), name
    face = make_identity(3, 2)
    assert make_identity(3, 2) == face
    assert render_frames(face, first, 5, 8, 48).tobytes() == render_frames(face, second, 5, 8, 48).tobytes()


def test_identity_number_and_identity_object_give_the_same_session():
    by_number = make_session(11, 4, 2, 50)
    by_object = make_session(11, make_identity(11, 4), 2, 50)
    for name in ("audio", "mouth_open", "head", "blink"):
        np.testing.assert_array_equal(getattr(by_number, name), getattr(by_object, name))


@pytest.mark.parametrize("other", [(1, 0, 0), (0, 1, 0), (0, 0, 1)], ids=["seed", "identity", "session"])
def test_different_seed_identity_or_session_differ(other):
    base = make_session(0, 0, 0, 50)
    changed = make_session(*other, 50)
    assert not np.array_equal(base.audio, changed.audio)
    assert not np.array_equal(base.mouth_open, changed.mouth_open)
    assert not np.array_equal(base.head, changed.head)


def test_different_seed_gives_different_faces_and_frames():
    face_a, face_b = make_identity(0, 0), make_identity(1, 0)
    assert face_a != face_b
    frames_a = render_frames(face_a, make_session(0, face_a, 0, 5), 0, 5, 64)
    frames_b = render_frames(face_b, make_session(1, face_b, 0, 5), 0, 5, 64)
    assert np.abs(frames_a.astype(int) - frames_b).mean() > 5


# ------------------------------------------------------------------------------ shapes and ranges


@pytest.mark.parametrize("num_frames", [1, 33, 301])
def test_session_shapes_dtypes_and_ranges(num_frames):
    session = make_session(0, 1, 0, num_frames)
    assert session.num_frames == num_frames
    assert session.audio.shape == (num_frames * 640,) and session.audio.dtype == np.float32
    assert session.mouth_open.shape == (num_frames,) and session.mouth_open.dtype == np.float32
    assert session.head.shape == (num_frames, 3) and session.head.dtype == np.float32
    assert session.blink.shape == (num_frames,) and session.blink.dtype == np.float32
    assert np.abs(session.audio).max() < 1.0
    for values in (session.mouth_open, session.blink):
        assert values.min() >= 0.0 and values.max() <= 1.0
    assert np.abs(session.head[:, :2]).max() <= 0.04
    assert np.abs(session.head[:, 2]).max() <= 0.06


def test_other_frame_rates_keep_whole_samples_per_frame():
    session = make_session(0, 0, 0, 40, fps=20, sample_rate=16000)
    assert session.audio.shape == (40 * 800,)
    with pytest.raises(DataError, match="multiple of fps"):
        make_session(0, 0, 0, 40, fps=30, sample_rate=16000)


def test_identity_voice_and_face_parameters_in_range():
    faces = [make_identity(0, i) for i in range(40)]
    f0 = np.array([face.f0 for face in faces])
    assert f0.min() >= 90 and f0.max() <= 260 and f0.std() > 30
    assert len({face.skin for face in faces}) == 40


def test_session_statistics_look_like_speech(sessions):
    for _, session in sessions:
        silent = np.mean(session.mouth_open < 0.02)
        assert 0.15 < silent < 0.75  # syllables separated by pauses
        assert session.mouth_open.max() > 0.5
        assert np.abs(np.diff(session.head[:, :2], axis=0)).max() < 0.004  # slow motion
        assert session.blink.max() > 0.9  # at least one full blink in ten seconds


def test_pitch_of_loud_frames_matches_identity_f0(sessions):
    for face, session in sessions[:4]:
        loudness = frame_loudness(session.audio, TEN_SECONDS)
        semitones = []
        for frame in np.argsort(loudness)[-5:]:
            span = session.audio[frame * 640 : (frame + 1) * 640].astype(np.float64)
            span -= span.mean()
            autocorrelation = np.correlate(span, span, "full")[639:]
            lo, hi = 16000 // 320, 16000 // 70
            lag = lo + int(np.argmax(autocorrelation[lo:hi]))
            semitones.append(12 * np.log2(16000 / lag / face.f0))
        assert abs(np.median(semitones)) < 3.0, (face.f0, semitones)


def test_frame_loudness_is_per_frame_rms():
    t = np.arange(3 * 640) / 16000
    audio = np.concatenate([np.zeros(640), 0.5 * np.sin(2 * np.pi * 400 * t[:640]), np.full(640, -0.25)])
    loudness = frame_loudness(audio, 3)
    assert loudness.dtype == np.float32
    np.testing.assert_allclose(loudness, [0.0, 0.5 / np.sqrt(2), 0.25], atol=1e-6)
    with pytest.raises(DataError, match="at least 1920 samples"):
        frame_loudness(audio[:-1], 3)


# ------------------------------------------------------------------------------------ lip sync


def test_mouth_open_follows_independently_measured_loudness(sessions):
    correlations = [_pearson(s.mouth_open, frame_loudness(s.audio, TEN_SECONDS)) for _, s in sessions]
    assert min(correlations) > 0.9, correlations


def test_shuffled_pairs_are_uncorrelated(sessions):
    loudness = [frame_loudness(s.audio, TEN_SECONDS) for _, s in sessions]
    shuffled = [
        _pearson(sessions[i][1].mouth_open, loudness[(i + shift) % len(sessions)])
        for shift in (1, 4)
        for i in range(len(sessions))
    ]
    # Ten seconds hold about 40 syllables, so chance correlations have a spread of about 0.15: the
    # mean must vanish and no single pair may come near the matched pairs' > 0.9.
    assert abs(np.mean(shuffled)) < 0.1, shuffled
    assert np.mean(np.abs(shuffled)) < 0.2, shuffled
    assert np.max(np.abs(shuffled)) < 0.4, shuffled


# -------------------------------------------------------------------------------------- rendering


def test_render_shapes_and_dtype():
    face = make_identity(0, 0)
    session = make_session(0, face, 0, 10)
    assert render_frames(face, session, 2, 3, 32).shape == (3, 32, 32, 3)
    frames = render_frames(face, session, 0, 4, (48, 80))
    assert frames.shape == (4, 48, 80, 3) and frames.dtype == np.uint8
    assert render_frames(face, session, 10, 0, 64).shape == (0, 64, 64, 3)


def test_rendered_frames_do_not_depend_on_the_requested_range():
    face = make_identity(2, 3)
    session = make_session(2, face, 0, 40)
    whole = render_frames(face, session, 0, 40, 256)  # more than one internal chunk at 256 x 256
    np.testing.assert_array_equal(render_frames(face, session, 31, 3, 256), whole[31:34])
    np.testing.assert_array_equal(render_frames(face, session, 0, 1, 256), whole[:1])


def test_rendered_mouth_opening_tracks_mouth_open(sessions):
    for face, session in sessions[:4]:
        frames = render_frames(face, session, 0, TEN_SECONDS, 64)
        rows, columns = _box(face, 64, face.mouth_y - 0.07, face.mouth_y + 0.22, face.mouth_rx + 0.08)
        dark = (_luma(frames)[:, rows, columns] < 0.15).sum(axis=(1, 2))
        assert _pearson(dark, session.mouth_open) > 0.9
        # About 3 px closed to 9+ px open at 64 x 64: the dark area grows several times over.
        assert dark[session.mouth_open > 0.9].mean() > 4 * dark[session.mouth_open < 0.05].mean()


def test_mouth_spans_about_3_to_9_pixels_at_64(sessions):
    face, session = sessions[0]
    closed, opened = int(np.argmin(session.mouth_open)), int(np.argmax(session.mouth_open))
    frames = render_frames(face, session, 0, TEN_SECONDS, 64)
    rows, columns = _box(face, 64, face.mouth_y - 0.07, face.mouth_y + 0.22, 0.02)
    for frame, low, high in ((closed, 1, 4), (opened, 8, 14)):
        column_dark = _luma(frames[frame])[rows, columns] < 0.15
        assert low <= column_dark.sum(axis=0).max() <= high


def test_eyes_close_when_blinking(sessions):
    face, session = sessions[1]
    size = 96
    frames = render_frames(face, session, 0, TEN_SECONDS, size)
    below_skin = np.clip(_luma(np.asarray(face.skin) * 255.0) - _luma(frames), 0.0, None)
    # The box holds both eyes, stops short of the brows and follows the head.
    rows, columns = _box(face, size, face.eye_y - 0.028, face.eye_y + 0.028, face.eye_dx + face.eye_rx + 0.02)
    darkness = []
    for frame, (dx, dy, _) in enumerate(session.head):
        down, right = round(dy * size), round(dx * size)
        moved_rows = slice(rows.start + down, rows.stop + down)
        moved_columns = slice(columns.start + right, columns.stop + right)
        darkness.append(below_skin[frame, moved_rows, moved_columns].sum())
    assert _pearson(np.array(darkness), session.blink) < -0.8


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda f, s: render_frames(f, s, 0, 1, 31), "at least 32"),
        (lambda f, s: render_frames(f, s, 0, 1, (64, 20)), "at least 32"),
        (lambda f, s: render_frames(f, s, 8, 3, 64), "outside"),
        (lambda f, s: render_frames(f, s, -1, 1, 64), "non-negative"),
        (lambda f, s: make_session(-1, 0, 0, 10), "seed"),
        (lambda f, s: make_session(0, 0, 0, 0), "num_frames"),
        (lambda f, s: make_identity(0, -3), "identity"),
    ],
)
def test_bad_arguments_raise_data_error(call, message):
    face = make_identity(0, 0)
    with pytest.raises(DataError, match=message):
        call(face, make_session(0, face, 0, 10))


def test_speed():
    # A guard against per-pixel Python loops, with a margin for slow CI machines; the targets are
    # 20 ms for 33 frames at 64 x 64 and 0.3 s for a 12-second session.
    face = make_identity(0, 0)
    session = make_session(0, face, 0, 300)
    render = min(_seconds(lambda: render_frames(face, session, 0, 33, 64)) for _ in range(5))
    synth = min(_seconds(lambda: make_session(0, face, 0, 300)) for _ in range(3))
    assert render < 0.04, render
    assert synth < 0.6, synth


def _seconds(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


# -------------------------------------------------------------------------------------------- CLI


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "readlit.data.synthetic", *args],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )


def test_cli_writes_a_watchable_session(tmp_path):
    out = tmp_path / "sample.mp4"
    result = _cli("--seed", "0", "--identity", "3", "--seconds", "1.3", "--size", "64", "--out", str(out))
    assert result.returncode == 0, result.stderr
    frames, fps, audio, sample_rate = read_mp4(out)
    assert frames.shape == (25, 64, 64, 3)  # 32 frames rounded down to 1 + 8k
    assert fps == 25.0 and sample_rate == 16000
    assert audio.shape == (25 * 640,)


@pytest.mark.parametrize("args", [["--size", "16"], ["--colour", "red"]])
def test_cli_bad_arguments_exit_2_with_one_line(tmp_path, args):
    out = tmp_path / "bad.mp4"
    result = _cli("--seconds", "0.5", "--out", str(out), *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args",
    [["--seconds", "0"], ["--seconds", "nan"], ["--size", "65"], ["--seed", "-1"], ["--size", "big"]],
)
def test_cli_main_reports_bad_arguments_on_one_line(tmp_path, capsys, args):
    # In-process twin of the subprocess test above, for more cases at less cost.
    assert main(["--seconds", "0.5", "--out", str(tmp_path / "bad.mp4"), *args]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert list(tmp_path.iterdir()) == []
