"""Decode a clip's time span at the target frame rate, and its audio on the same clock, with PyAV.

Time convention: output frame i covers [t0 + i/fps, t0 + (i+1)/fps) of the video's clock, where t0 is the
span's start (or the first frame's time for a whole file). Its image is the source frame whose own span
has the nearest centre, so 30 -> 25 fps drops frames evenly and 25 -> 25 keeps every frame. Its audio is
the samples of the same interval, read from the audio stream's clock, so audio and video stay aligned
whatever the source rates and whatever the span's start.

Frame times come from a demux-only pass (no decoding), so the output frame count is known before any
pixel is decoded, and too-short clips cost nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import soxr

from readlit.data.preprocess.sources import SkipClip


@dataclass(frozen=True)
class Timeline:
    """The presentation times of a video's frames.

    Args:
        times: (N,) seconds, sorted.
        period: seconds per source frame.
        width, height: frame size in pixels.
    """

    times: np.ndarray
    period: float
    width: int
    height: int


def _unreadable(path: Path, err: BaseException) -> SkipClip:
    # FFmpeg errors repeat the full path; the record names the file already.
    reason = getattr(err, "strerror", None) or str(err).strip().split("\n")[0]
    return SkipClip("unreadable", f"cannot decode {path.name} ({type(err).__name__}: {reason})")


def read_timeline(path: Path) -> Timeline:
    """Frame times of the first video stream from its packets; SkipClip('unreadable') when it has none."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise SkipClip("unreadable", f"{path.name} has no video stream")
            stream = container.streams.video[0]
            pts = [packet.pts for packet in container.demux(stream) if packet.pts is not None]
            base = float(stream.time_base)
            size = stream.codec_context.width, stream.codec_context.height
            rate = stream.average_rate or stream.guessed_rate
    except (av.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise _unreadable(path, err) from err
    if not pts or not rate:
        raise SkipClip("unreadable", f"{path.name} has no timed video frames")
    return Timeline(np.sort(np.asarray(pts, np.float64)) * base, 1.0 / float(rate), *size)


def frame_schedule(
    timeline: Timeline, fps: int, start: float | None, end: float | None
) -> tuple[float, np.ndarray]:
    """Which source frame every output frame shows.

    Returns:
        t0, the clock time where output frame 0 starts, and (F,) int64 source frame indices.
    """
    times = timeline.times
    t0 = times[0] if start is None else start
    stop = times[-1] + timeline.period
    if end is not None:
        stop = min(stop, end)
    count = max(0, int(np.floor((stop - t0) * fps + 1e-6)))
    centres = t0 + (np.arange(count) + 0.5) / fps - 0.5 * timeline.period
    after = np.clip(np.searchsorted(times, centres), 1, len(times) - 1)
    # Ties (e.g. 50 -> 25 fps) go to the earlier frame, whatever the rounding of the times.
    nearer_before = centres - times[after - 1] <= times[after] - centres + 1e-9
    index = np.where(nearer_before, after - 1, after) if len(times) > 1 else np.zeros(count, np.int64)
    return t0, index.astype(np.int64)


def decode_frames(
    path: Path, timeline: Timeline, index: np.ndarray, convert: Callable[[av.VideoFrame], np.ndarray]
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Decode the source frames that ``index`` names, in order.

    Args:
        index: (F,) source frame index of every output frame (from :func:`frame_schedule`).
        convert: turns a decoded frame into the array to yield (only called for frames that are used).

    Yields:
        (k,) output frame numbers showing the frame, and ``convert(frame)``.
    """
    wanted = {int(i) for i in np.unique(index)}
    first = timeline.times[min(wanted)]
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            base = float(stream.time_base)
            if first > 1.0:
                # Seeking lands on the key frame before ``first``; decoding goes on from there.
                container.seek(int((first - 0.5) / base), stream=stream, backward=True)
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                source = int(np.searchsorted(timeline.times, frame.pts * base - 1e-6))
                if source in wanted:
                    yield np.flatnonzero(index == source), convert(frame)
                    wanted.discard(source)
                if not wanted:
                    return
    except av.FFmpegError as err:
        raise _unreadable(path, err) from err
    if wanted:
        missing = timeline.times[min(wanted)]
        raise SkipClip("unreadable", f"{path.name} ended before its frame at {missing:.2f} s")


def read_audio(path: Path, t0: float, num_frames: int, fps: int, sample_rate: int) -> np.ndarray:
    """The mono audio of output frames 0 .. F-1 (clock time t0 onwards), resampled to ``sample_rate``.

    Returns:
        (n,) float32, n <= F * sample_rate / fps (shorter when the audio ends first).
    """
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise SkipClip("no_audio", f"{path.name} has no audio stream; give the clip an audio track")
            mono, rate, start = _decode_mono(container)
    except (av.FFmpegError, OSError) as err:
        raise _unreadable(path, err) from err
    first = max(0, int(round((t0 - start) * rate)))
    lead = max(0, int(round((start - t0) * rate)))  # audio that starts after the video: zeros before it
    needed = int(np.ceil(num_frames / fps * rate)) + 1
    piece = np.concatenate([np.zeros(lead, np.float32), mono[first : first + needed - lead]])
    if rate != sample_rate and piece.size:
        piece = soxr.resample(piece, rate, sample_rate, quality="HQ")
    return piece[: num_frames * sample_rate // fps].astype(np.float32)


def _decode_mono(container: av.container.InputContainer) -> tuple[np.ndarray, int, float]:
    """The first audio stream as (samples,) float32 mono, its rate, and the clock time of sample 0."""
    stream = container.streams.audio[0]
    rate = stream.codec_context.sample_rate or stream.rate
    # Planar float keeps channels apart, so the mix-down is a plain mean whatever the layout.
    resampler = av.AudioResampler(format="fltp", rate=rate)
    pieces, start = [], None
    for frame in container.decode(stream):
        if start is None and frame.time is not None:
            start = frame.time
        pieces.extend(out.to_ndarray().mean(axis=0) for out in resampler.resample(frame))
    pieces.extend(out.to_ndarray().mean(axis=0) for out in resampler.resample(None))
    if not pieces:
        raise SkipClip("no_audio", "the audio stream has no samples")
    return np.concatenate(pieces).astype(np.float32), int(rate), float(start or 0.0)
