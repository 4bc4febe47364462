"""Procedural talking heads: drawn faces whose mouth follows a synthetic speech-like voice.

The data exist to show, on a CPU and in minutes, that the whole pipeline learns lip sync. Each
*identity* is a cartoon face (colours, head and feature geometry) with a voice (pitch, vocal-tract
length, speaking rate). Each *session* is one continuous take of that identity talking: a 16 kHz mono
waveform, a per-frame mouth opening, slow head motion and blinks, at 25 video frames per second with
exactly ``sample_rate // fps`` (640) audio samples per frame.

The voice is a sequence of vowel syllables separated by pauses. Each syllable is a glottal-pulse source
at the speaker's pitch shaped by formant resonators, normalised to unit RMS so that loudness does not
depend on the vowel, and multiplied by a smooth attack/decay *articulation envelope* with a random peak
level. The mouth opening is that same envelope sampled at each frame centre; it is **not** measured from
the waveform. Loudness measured independently from the waveform (:func:`frame_loudness`) therefore
tracks the mouth only because the synthesis makes it so, which is exactly the audio-visual relation a
lip-sync model has to learn, and a test of that correlation checks the generator rather than itself.

Everything is deterministic: each random draw comes from a generator seeded with the entropy list
``[seed, identity, session, purpose]``, so the same arguments give the same bytes whatever else was
generated before.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy.signal import lfilter

from readlit.errors import ConfigError, DataError, ReadlitError
from readlit.frames import longest_prefix

RGB = tuple[float, float, float]

FPS = 25
SAMPLE_RATE = 16000
MIN_SIZE = 32

# Purposes of random draws. Every key has four entries, because numpy's SeedSequence treats an
# entropy list of up to four entries like the same list padded with zeros.
_IDENTITY, _SYLLABLES, _PITCH, _NOISE, _HEAD, _BLINK = 101, 102, 103, 104, 105, 106

# Peterson & Barney style formants (Hz) of a/e/i/o/u for an adult male voice, with bandwidths.
_FORMANTS = np.array(
    [[730, 1090, 2440], [530, 1840, 2480], [270, 2290, 3010], [570, 840, 2410], [300, 870, 2240]], float
)
_BANDWIDTHS = np.array([80.0, 100.0, 130.0])

_ATTACK, _DECAY = 0.3, 0.4  # fractions of a syllable spent opening and closing
_VOICE_RMS = 0.2  # waveform RMS of a syllable at envelope 1; leaves headroom for the pulse peaks
_NOISE_RMS = 0.002  # background noise, about 35 dB below loud speech
_PEAK = 0.98

# Mouth interior height in units of the short image side: a visible line when closed, and at 64 px
# about 1.6 px closed to 9.3 px open (about 4 px to 12 px with the lips).
_MOUTH_CLOSED = 0.025
_MOUTH_GAIN = 0.12
_LIP = 0.018
_HEAD_SHIFT = 0.04  # largest head offset, as a fraction of the image size
_HEAD_ROLL = 0.06  # largest roll, radians
_CHUNK_PIXELS = 1 << 21  # frames are rendered in chunks of about this many pixels to bound memory

_SKINS = np.array(
    [[0.96, 0.80, 0.69], [0.91, 0.72, 0.58], [0.78, 0.57, 0.43], [0.62, 0.44, 0.31], [0.47, 0.32, 0.22]]
)
_HAIRS = np.array(
    [[0.08, 0.06, 0.05], [0.25, 0.15, 0.08], [0.45, 0.30, 0.15], [0.76, 0.62, 0.36], [0.56, 0.56, 0.56],
     [0.52, 0.18, 0.08]]
)


@dataclass(frozen=True)
class Identity:
    """Everything about a face and voice that stays the same across its sessions.

    Geometry is in units of the short image side, relative to the head centre (x right, y down),
    except ``head_cy``, the head centre's offset below the image centre. Colours are RGB in [0, 1].
    """

    index: int
    skin: RGB
    hair: RGB
    background_top: RGB
    background_bottom: RGB
    eyes: RGB
    lips: RGB
    mouth_inside: RGB
    head_rx: float
    head_ry: float
    head_cy: float
    hair_rx: float
    hair_ry: float
    hair_dy: float
    eye_dx: float
    eye_y: float
    eye_rx: float
    eye_ry: float
    brow_y: float
    nose_y: float
    mouth_y: float
    mouth_rx: float
    f0: float  # mean pitch, Hz
    speaking_rate: float  # > 1 speaks faster: shorter syllables and pauses
    formant_scale: float  # shorter vocal tracts (higher voices) have higher formants
    breathiness: float  # aspiration noise relative to the glottal source


@dataclass(frozen=True, eq=False)  # eq=False: comparing numpy arrays elementwise has no single truth value
class Session:
    """One continuous take of one identity talking."""

    audio: np.ndarray  # (num_frames * 640,) float32 in [-1, 1]
    mouth_open: np.ndarray  # (num_frames,) float32 in [0, 1], ground-truth mouth opening per frame
    head: np.ndarray  # (num_frames, 3) float32: dx, dy (fractions of image width, height), roll (radians)
    blink: np.ndarray  # (num_frames,) float32 in [0, 1], 1 = eyes closed

    @property
    def num_frames(self) -> int:
        return len(self.mouth_open)


class _Plan(NamedTuple):
    """The syllables of a session, one entry per syllable; times in seconds."""

    onsets: np.ndarray
    durations: np.ndarray
    levels: np.ndarray
    vowels: np.ndarray
    bursts: np.ndarray  # consonant noise level relative to the syllable, 0 = none
    burst_durations: np.ndarray


def _rng(seed: int, identity: int, session: int, purpose: int) -> np.random.Generator:
    return np.random.default_rng([seed, identity, session, purpose])


def _check_index(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise DataError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def _colour(rng: np.random.Generator, palette: np.ndarray, jitter: float) -> RGB:
    base = palette[rng.integers(len(palette))]
    return _rgb(np.clip(base + rng.uniform(-jitter, jitter, 3), 0.0, 1.0))


def _rgb(values: np.ndarray) -> RGB:
    return (float(values[0]), float(values[1]), float(values[2]))


def make_identity(seed: int, identity: int) -> Identity:
    """Draw the face and voice of identity number ``identity`` under ``seed``."""
    seed = _check_index(seed, "seed")
    identity = _check_index(identity, "identity")
    rng = _rng(seed, identity, 0, _IDENTITY)
    skin = np.array(_colour(rng, _SKINS, 0.03))
    top = rng.uniform(0.25, 0.85, 3)
    head_rx, head_ry = rng.uniform(0.23, 0.28), rng.uniform(0.31, 0.36)
    eye_y = -rng.uniform(0.05, 0.09)
    f0 = rng.uniform(90.0, 260.0)
    return Identity(
        index=identity,
        skin=_rgb(skin),
        hair=_colour(rng, _HAIRS, 0.04),
        background_top=_rgb(top),
        background_bottom=_rgb(top * rng.uniform(0.55, 0.9)),
        eyes=_rgb(rng.uniform(0.05, 0.3, 3)),
        lips=_rgb(0.55 * skin * np.array([1.0, 0.62, 0.66]) + 0.45 * np.array([0.72, 0.26, 0.30])),
        mouth_inside=_rgb(np.array([0.16, 0.04, 0.06]) * rng.uniform(0.7, 1.2)),
        head_rx=head_rx,
        head_ry=head_ry,
        head_cy=rng.uniform(0.04, 0.08),
        hair_rx=head_rx * rng.uniform(1.04, 1.12),
        hair_ry=head_ry * rng.uniform(1.0, 1.08),
        hair_dy=-rng.uniform(0.05, 0.09),
        eye_dx=rng.uniform(0.075, 0.10),
        eye_y=eye_y,
        eye_rx=rng.uniform(0.028, 0.04),
        eye_ry=rng.uniform(0.016, 0.024),
        brow_y=eye_y - rng.uniform(0.045, 0.06),
        nose_y=rng.uniform(0.0, 0.03),
        mouth_y=rng.uniform(0.11, 0.13),
        mouth_rx=rng.uniform(0.07, 0.095),
        f0=f0,
        speaking_rate=rng.uniform(1.0, 1.5),
        formant_scale=1.0 + 0.18 * (f0 - 90.0) / 170.0 + rng.uniform(-0.03, 0.03),
        breathiness=rng.uniform(0.02, 0.08),
    )


def mouth_box(identity: Identity, height: int, width: int) -> tuple[slice, slice]:
    """Rows and columns of the pixels the identity's mouth can cover at any opening, shift and roll.

    Geometry follows the renderer: lengths in units of the short side, the upper lip stays put and the
    opening grows downwards, the head shifts by up to ``_HEAD_SHIFT`` of the image and rolls by up to
    ``_HEAD_ROLL`` about its centre.
    """
    half_width = identity.mouth_rx + _LIP
    top = identity.mouth_y - 0.5 * _MOUTH_CLOSED - _LIP
    bottom = identity.mouth_y + 0.5 * _MOUTH_CLOSED + _MOUTH_GAIN + _LIP
    # A roll by angle a moves a point at distance r from the head centre by at most r·a.
    swing = math.hypot(half_width, max(abs(top), abs(bottom))) * _HEAD_ROLL
    short = min(height, width)
    margin = (swing + _HEAD_SHIFT * max(height, width) / short) * short + 1.0  # + 1: the edge ramp

    def span(lo: float, hi: float, centre: float, limit: int) -> slice:
        low, high = math.floor(centre + lo * short - margin), math.ceil(centre + hi * short + margin)
        return slice(max(0, low), min(limit, high))

    rows = span(top + identity.head_cy, bottom + identity.head_cy, height / 2, height)
    return rows, span(-half_width, half_width, width / 2, width)


def make_session(
    seed: int,
    identity: Identity | int,
    session: int,
    num_frames: int,
    fps: int = FPS,
    sample_rate: int = SAMPLE_RATE,
) -> Session:
    """Synthesise take ``session`` of ``identity``: ``num_frames`` video frames and their audio.

    Passing an identity number or the :class:`Identity` made from it gives the same session; the
    session's own draws are keyed by ``identity.index``.
    """
    seed = _check_index(seed, "seed")
    session = _check_index(session, "session")
    if not isinstance(identity, Identity):
        identity = make_identity(seed, identity)
    if _check_index(num_frames, "num_frames") == 0:
        raise DataError("num_frames must be at least 1")
    samples_per_frame = _samples_per_frame(fps, sample_rate)
    key = (seed, identity.index, session)
    duration = num_frames / fps
    plan = _plan_syllables(_rng(*key, _SYLLABLES), identity, duration)
    sample_times = np.arange(num_frames * samples_per_frame) / sample_rate
    frame_centres = (np.arange(num_frames) + 0.5) / fps
    audio = _voice(key, identity, plan, sample_times, sample_rate)
    return Session(
        audio=audio,
        mouth_open=np.clip(_envelope(frame_centres, plan), 0.0, 1.0).astype(np.float32),
        head=_head_motion(_rng(*key, _HEAD), frame_centres),
        blink=_blinks(_rng(*key, _BLINK), frame_centres, duration),
    )


def frame_loudness(
    audio: np.ndarray, num_frames: int, fps: int = FPS, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """RMS of each video frame's span of ``sample_rate // fps`` samples, shape (num_frames,) float32."""
    num_frames = _check_index(num_frames, "num_frames")
    samples_per_frame = _samples_per_frame(fps, sample_rate)
    audio = np.asarray(audio)
    needed = num_frames * samples_per_frame
    if audio.ndim != 1 or len(audio) < needed:
        raise DataError(f"audio must be 1-D with at least {needed} samples for {num_frames} frames, "
                        f"got shape {audio.shape}")
    spans = audio[:needed].astype(np.float64).reshape(num_frames, samples_per_frame)
    return np.sqrt(np.mean(spans**2, axis=1)).astype(np.float32)


def _samples_per_frame(fps: int, sample_rate: int) -> int:
    for value, name in ((fps, "fps"), (sample_rate, "sample_rate")):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
            raise DataError(f"{name} must be a positive integer, got {value!r}")
    if sample_rate % fps:
        raise DataError(f"sample_rate {sample_rate} is not a multiple of fps {fps}; "
                        "frames would not start on whole samples")
    return sample_rate // fps


# ---------------------------------------------------------------------------------------------- audio


def _plan_syllables(rng: np.random.Generator, identity: Identity, duration: float) -> _Plan:
    rate = identity.speaking_rate
    rows = []
    # A random lead-in keeps sessions from sharing a silent start, which would correlate their mouths.
    t = rng.uniform(0.0, 0.6)
    while t < duration:
        length = rng.uniform(0.1, 0.1 + 0.25 / rate)
        level = rng.uniform(0.3, 1.0)
        vowel = rng.integers(len(_FORMANTS))
        burst = rng.uniform(0.08, 0.2) if rng.random() < 0.5 else 0.0
        burst_length = rng.uniform(0.015, 0.04)
        long_pause = rng.random() < 0.1
        pause = rng.uniform(0.6, 1.4) if long_pause else rng.uniform(0.04, 0.04 + 0.46 / rate)
        rows.append((t, length, level, vowel, burst, burst_length))
        t += length + pause
    columns = np.array(rows, float).reshape(-1, 6).T
    return _Plan(columns[0], columns[1], columns[2], columns[3].astype(int), columns[4], columns[5])


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _envelope(times: np.ndarray, plan: _Plan) -> np.ndarray:
    """The articulation envelope at sorted ``times``: level times a smooth open-hold-close shape."""
    envelope = np.zeros(len(times))
    for onset, length, level in zip(plan.onsets, plan.durations, plan.levels, strict=True):
        lo, hi = np.searchsorted(times, [onset, onset + length])
        u = (times[lo:hi] - onset) / length
        envelope[lo:hi] = level * _smoothstep(np.minimum(u / _ATTACK, (1.0 - u) / _DECAY))
    return envelope


def _voice(
    key: tuple[int, int, int], identity: Identity, plan: _Plan, times: np.ndarray, sample_rate: int
) -> np.ndarray:
    noise_rng = _rng(*key, _NOISE)
    source = _glottal_source(_rng(*key, _PITCH), noise_rng, identity, times, sample_rate)
    envelope = _envelope(times, plan)
    voice = np.zeros(len(times))
    for onset, length, vowel in zip(plan.onsets, plan.durations, plan.vowels, strict=True):
        lo, hi = np.searchsorted(times, [onset, onset + length])
        if hi - lo > 1:
            vowel_wave = _vowel(source[lo:hi], vowel, identity.formant_scale, sample_rate)
            voice[lo:hi] = vowel_wave * envelope[lo:hi]
    voice += _consonants(noise_rng, plan, times)
    audio = _VOICE_RMS * voice + _NOISE_RMS * noise_rng.standard_normal(len(times))
    peak = np.max(np.abs(audio), initial=0.0)
    if peak > _PEAK:
        audio *= _PEAK / peak
    return audio.astype(np.float32)


def _glottal_source(
    pitch_rng: np.random.Generator,
    noise_rng: np.random.Generator,
    identity: Identity,
    times: np.ndarray,
    sample_rate: int,
) -> np.ndarray:
    """Derivative of a Rosenberg glottal pulse train (flow derivative, the usual voice source)."""
    semitones = np.zeros(len(times))
    for _ in range(2):  # slow intonation contours
        rate, phase = pitch_rng.uniform(0.1, 0.5), pitch_rng.uniform(0, 2 * np.pi)
        semitones += pitch_rng.uniform(0.5, 1.5) * np.sin(2 * np.pi * rate * times + phase)
    knots = np.arange(0.0, times[-1] + 0.2, 0.04)
    semitones += np.interp(times, knots, pitch_rng.normal(0.0, 0.3, len(knots)))  # jitter
    f0 = identity.f0 * 2.0 ** (semitones / 12.0)
    phase = np.cumsum(f0 / sample_rate) % 1.0
    opening, closing = 0.4, 0.16
    rising = 0.5 * np.pi / opening * np.sin(np.pi * phase / opening)
    falling = -0.5 * np.pi / closing * np.sin(0.5 * np.pi * (phase - opening) / closing)
    source = np.where(phase < opening, rising, np.where(phase < opening + closing, falling, 0.0))
    return source + identity.breathiness * np.std(source) * noise_rng.standard_normal(len(times))


def _vowel(source: np.ndarray, vowel: int, formant_scale: float, sample_rate: int) -> np.ndarray:
    """Cascade of two-pole formant resonators, normalised to unit RMS so loudness ignores the vowel."""
    wave = source
    for frequency, bandwidth in zip(_FORMANTS[vowel] * formant_scale, _BANDWIDTHS, strict=True):
        radius = np.exp(-np.pi * bandwidth / sample_rate)
        angle = 2.0 * np.pi * frequency / sample_rate
        wave = lfilter([1.0 - radius], [1.0, -2.0 * radius * np.cos(angle), radius * radius], wave)
    return wave / max(np.sqrt(np.mean(wave**2)), 1e-12)


def _consonants(rng: np.random.Generator, plan: _Plan, times: np.ndarray) -> np.ndarray:
    """Short high-passed noise bursts at the onsets of some syllables, quiet next to the vowels."""
    bursts = np.zeros(len(times))
    for onset, level, burst, length in zip(
        plan.onsets, plan.levels, plan.bursts, plan.burst_durations, strict=True
    ):
        lo, hi = np.searchsorted(times, [onset, onset + length])
        if burst == 0.0 or hi - lo < 2:
            continue
        hiss = np.diff(rng.standard_normal(hi - lo + 1))
        decay = (1.0 - np.linspace(0.0, 1.0, hi - lo)) ** 2
        bursts[lo:hi] = burst * level * hiss / np.std(hiss) * decay
    return bursts


# ------------------------------------------------------------------------------------ head and eyes


def _head_motion(rng: np.random.Generator, times: np.ndarray) -> np.ndarray:
    """Sums of slow sinusoids; amplitudes sum to the limit, so the limit holds for any length."""
    columns = []
    for limit in (_HEAD_SHIFT, _HEAD_SHIFT, _HEAD_ROLL):
        rates = rng.uniform(0.05, 0.4, 3)
        phases = rng.uniform(0.0, 2.0 * np.pi, 3)
        weights = rng.uniform(0.2, 1.0, 3)
        amplitudes = limit * rng.uniform(0.5, 1.0) * weights / weights.sum()
        columns.append(np.sin(2 * np.pi * rates * times[:, None] + phases) @ amplitudes)
    return np.stack(columns, axis=1).astype(np.float32).reshape(len(times), 3)


def _blinks(rng: np.random.Generator, times: np.ndarray, duration: float) -> np.ndarray:
    blink = np.zeros(len(times))
    t = rng.uniform(0.3, 3.0)
    while t < duration:
        half = rng.uniform(0.06, 0.12)
        blink = np.maximum(blink, _smoothstep(1.0 - np.abs(times - t) / half))
        t += 0.6 + rng.exponential(3.0)
    return blink.astype(np.float32)


# -------------------------------------------------------------------------------------------- render


def render_frames(
    identity: Identity, session: Session, start: int, count: int, size: int | tuple[int, int]
) -> np.ndarray:
    """Draw frames ``start`` to ``start + count`` of ``session``: (count, H, W, 3) uint8 RGB.

    ``size`` is a side length or ``(H, W)``, each at least 32. Features are sized relative to the
    short side, so a face keeps its shape in non-square images.
    """
    height, width = _check_size(size)
    start = _check_index(start, "start")
    count = _check_index(count, "count")
    if start + count > session.num_frames:
        raise DataError(
            f"frames {start}..{start + count} are outside the session's {session.num_frames} frames"
        )
    out = np.empty((count, height, width, 3), np.uint8)
    chunk = max(1, _CHUNK_PIXELS // (height * width))
    for lo in range(start, start + count, chunk):
        hi = min(lo + chunk, start + count)
        image = _render_chunk(identity, session, slice(lo, hi), height, width)
        out[lo - start : hi - start] = np.rint(np.clip(image, 0.0, 1.0) * 255.0)
    return out


def _check_size(size: int | tuple[int, int]) -> tuple[int, int]:
    sides = (size, size) if isinstance(size, int | np.integer) else tuple(size)
    if len(sides) != 2 or not all(isinstance(s, int | np.integer) and not isinstance(s, bool) for s in sides):
        raise DataError(f"size must be an integer or (height, width), got {size!r}")
    if min(sides) < MIN_SIZE:
        raise DataError(f"image sides must be at least {MIN_SIZE} pixels, got {size!r}")
    return int(sides[0]), int(sides[1])


class _Canvas(NamedTuple):
    """A chunk of frames being painted, with each pixel centre in its frame's head coordinates."""

    image: np.ndarray  # (frames, H, W, 3) float32 RGB, painted in place
    u: np.ndarray  # (frames, H, W) float32, along the head's x axis
    v: np.ndarray  # (frames, H, W) float32, along the head's y axis (down)
    origin_x: np.ndarray  # (frames,) head centre in image coordinates (short side = 1, centre = 0)
    origin_y: np.ndarray
    roll: np.ndarray  # (frames,) radians
    pixel: float  # one pixel in short-side units


def _render_chunk(identity: Identity, session: Session, frames: slice, height: int, width: int) -> np.ndarray:
    canvas = _canvas(identity, session.head[frames], height, width)
    _draw_ellipse(canvas, 0.0, identity.hair_dy, identity.hair_rx, identity.hair_ry, identity.hair)
    _draw_ellipse(canvas, 0.0, 0.0, identity.head_rx, identity.head_ry, identity.skin)
    _draw_eyes(canvas, identity, session.blink[frames])
    _draw_nose(canvas, identity)
    _draw_mouth(canvas, identity, session.mouth_open[frames])
    return canvas.image


def _canvas(identity: Identity, head: np.ndarray, height: int, width: int) -> _Canvas:
    short = min(height, width)
    x = ((np.arange(width, dtype=np.float32) + 0.5 - width / 2) / short)[None, None, :]
    y = ((np.arange(height, dtype=np.float32) + 0.5 - height / 2) / short)[None, :, None]
    head = head.astype(np.float32)
    origin_x = head[:, 0] * np.float32(width / short)
    origin_y = head[:, 1] * np.float32(height / short) + np.float32(identity.head_cy)
    roll = head[:, 2]
    px, py = x - origin_x[:, None, None], y - origin_y[:, None, None]
    cos, sin = np.cos(roll)[:, None, None], np.sin(roll)[:, None, None]
    image = np.broadcast_to(_background(identity, height, width), (len(head), height, width, 3)).copy()
    return _Canvas(image, cos * px + sin * py, cos * py - sin * px, origin_x, origin_y, roll, 1.0 / short)


def _background(identity: Identity, height: int, width: int) -> np.ndarray:
    fraction = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    top, bottom = np.float32(identity.background_top), np.float32(identity.background_bottom)
    return np.broadcast_to(top + fraction * (bottom - top), (height, width, 3))


def _window(canvas: _Canvas, u0: float, u1: float, v0: float, v1: float) -> tuple[slice, slice]:
    """Pixel rows and columns that contain a head-frame box in every frame of the canvas.

    Painting only there keeps small features cheap; the margin covers the one-pixel edge ramp.
    """
    _, height, width = canvas.u.shape
    corner_u = np.array([u0, u1, u0, u1], np.float32)[None, :]
    corner_v = np.array([v0, v0, v1, v1], np.float32)[None, :]
    cos, sin = np.cos(canvas.roll)[:, None], np.sin(canvas.roll)[:, None]
    columns = (cos * corner_u - sin * corner_v + canvas.origin_x[:, None]) / canvas.pixel + width / 2 - 0.5
    rows = (sin * corner_u + cos * corner_v + canvas.origin_y[:, None]) / canvas.pixel + height / 2 - 0.5
    margin = 2

    def span(values: np.ndarray, limit: int) -> slice:
        lo = int(np.clip(np.floor(values.min()) - margin, 0, limit))
        hi = int(np.clip(np.ceil(values.max()) + margin + 1, 0, limit))
        return slice(lo, hi)

    return span(rows, height), span(columns, width)


def _draw_ellipse(
    canvas: _Canvas,
    cx: float,
    cy: float | np.ndarray,
    rx: float,
    ry: float | np.ndarray,
    colour: RGB,
    strength: float = 1.0,
    mirrored: bool = False,
) -> None:
    """Blend an ellipse in head coordinates over the canvas, with a one-pixel smooth edge.

    ``cy`` and ``ry`` may vary per frame. ``mirrored`` draws it on both sides of the face's midline.
    The signed distance is the first-order estimate ``k0 (k0 - 1) / k1``, accurate near the outline,
    which is the only place the edge ramp needs it.
    """
    cy = np.broadcast_to(np.asarray(cy, np.float32), canvas.roll.shape)
    ry = np.broadcast_to(np.asarray(ry, np.float32), canvas.roll.shape)
    u0, u1 = (-abs(cx) - rx, abs(cx) + rx) if mirrored else (cx - rx, cx + rx)
    rows, columns = _window(canvas, u0, u1, float(np.min(cy - ry)), float(np.max(cy + ry)))
    u = canvas.u[:, rows, columns]
    x = ((np.abs(u) if mirrored else u) - np.float32(cx)) / np.float32(rx)
    y = (canvas.v[:, rows, columns] - cy[:, None, None]) / ry[:, None, None]
    k0 = np.sqrt(x * x + y * y)
    k1 = np.sqrt((x / np.float32(rx)) ** 2 + (y / ry[:, None, None]) ** 2)
    distance = k0 * (k0 - 1.0) / np.maximum(k1, np.float32(1e-6))
    coverage = _smoothstep(np.float32(0.5) - distance / np.float32(canvas.pixel))
    image = canvas.image[:, rows, columns]
    image += (coverage * np.float32(strength))[..., None] * (np.asarray(colour, np.float32) - image)


def _draw_eyes(canvas: _Canvas, identity: Identity, blink: np.ndarray) -> None:
    _draw_ellipse(canvas, identity.eye_dx, identity.brow_y, 1.2 * identity.eye_rx, 0.008, identity.hair,
                  mirrored=True)
    # A closed eye stays a thin lid line instead of vanishing.
    height = np.maximum(identity.eye_ry * (1.0 - blink), 0.6 * canvas.pixel)
    _draw_ellipse(
        canvas, identity.eye_dx, identity.eye_y, identity.eye_rx, height, identity.eyes, mirrored=True
    )


def _draw_nose(canvas: _Canvas, identity: Identity) -> None:
    shade = _rgb(0.75 * np.asarray(identity.skin))
    _draw_ellipse(canvas, 0.0, identity.nose_y, 0.022, 0.03, shade, strength=0.6)


def _draw_mouth(canvas: _Canvas, identity: Identity, mouth_open: np.ndarray) -> None:
    inner = _MOUTH_CLOSED + _MOUTH_GAIN * mouth_open
    # The jaw drops: the upper lip stays put and the opening grows downwards.
    centre = identity.mouth_y + 0.5 * (inner - _MOUTH_CLOSED)
    _draw_ellipse(canvas, 0.0, centre, identity.mouth_rx + _LIP, 0.5 * inner + _LIP, identity.lips)
    _draw_ellipse(canvas, 0.0, centre, identity.mouth_rx, 0.5 * inner, identity.mouth_inside)


# ----------------------------------------------------------------------------------------------- CLI


class _Parser(argparse.ArgumentParser):
    """Reports a usage problem as a ConfigError, so main() prints it on one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(message)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = _Parser(
        prog="python -m readlit.data.synthetic",
        description="Write one synthetic talking-head session as an mp4 with its audio.",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--identity", type=int, default=0)
    parser.add_argument("--session", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--size", type=int, default=128, help="image side in pixels (even, >= 32)")
    parser.add_argument("--out", type=Path, default=Path("sample.mp4"))
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    return parser.parse_args(argv)


def _check(args: argparse.Namespace) -> int:
    """The frame count the arguments ask for; ConfigError for any argument out of range."""
    from readlit.checks import writable_folder

    frames = int(args.seconds * FPS) if np.isfinite(args.seconds) else 0
    if frames < 1:
        raise ConfigError(f"--seconds={args.seconds} must give at least one frame at {FPS} fps")
    if args.size < 32 or args.size % 2:
        raise ConfigError(f"--size={args.size} must be an even number of pixels >= 32")
    for name in ("seed", "identity", "session"):
        if getattr(args, name) < 0:
            raise ConfigError(f"--{name}={getattr(args, name)} must be >= 0")
    if args.out.suffix.lower() != ".mp4":
        raise ConfigError(f"--out={args.out} must end in .mp4")
    if args.out.is_dir():
        raise ConfigError(f"--out={args.out} is a folder")
    if args.out.exists() and not args.overwrite:
        raise ConfigError(f"--out={args.out} exists: add --overwrite to replace it, or choose another --out")
    writable_folder("--out", args.out, args.out.expanduser().parent)
    return longest_prefix(frames)  # the project's clip lengths are 1 + 8k frames


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parse(argv)
        frames = _check(args)
        # Imported here so that the data generator itself needs nothing beyond numpy and scipy.
        from readlit.data.video_io import write_mp4

        identity = make_identity(args.seed, args.identity)
        session = make_session(args.seed, identity, args.session, frames)
        images = render_frames(identity, session, 0, frames, args.size)
        path = write_mp4(args.out, images, FPS, session.audio, SAMPLE_RATE, overwrite=args.overwrite)
    except FileExistsError:
        print(f"error: --out={args.out} appeared while writing; it is kept (add --overwrite to replace it)",
              file=sys.stderr)
        return 2
    except ReadlitError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path}: {frames} frames at {args.size}x{args.size}, {frames / FPS:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
