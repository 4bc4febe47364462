"""Write and read mp4 files (H.264 video, optional AAC mono audio) with PyAV.

Writing is atomic (:func:`readlit.utils.atomic.atomic_path`): the file is encoded under a temporary name in the
target folder and moved onto the target only when encoding succeeded, so a crash or an error never leaves a
truncated mp4 that a later run would mistake for a finished one.

Writing is deterministic: the same frames and audio give the same file bytes. libx264 is pinned to one
thread because its multi-threaded rate control may depend on thread timing.

H.264 in yuv420p stores chroma at half resolution, so frames must have an even height and width;
odd sizes are refused rather than silently padded, because a padded video would not read back at the
size that was written.

AAC adds encoder priming samples at the start and padding at the end. The mp4 muxer records both (edit
list), FFmpeg's decoder drops the priming, and :func:`read_mp4` trims the padding to the stream's
recorded duration, so the audio that reads back is aligned with, and as long as, the audio written.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from readlit.errors import DataError
from readlit.utils.atomic import atomic_path

# Visually near-lossless for the smooth images this project writes; lower is larger and closer.
_CRF = "18"
_AAC_FRAME = 1024
_AUDIO_BIT_RATE = 96_000
_AAC_RATES = frozenset(
    {7350, 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000}
)


def write_mp4(
    path: str | Path,
    frames: np.ndarray,
    fps: int,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
    overwrite: bool = True,
) -> Path:
    """Write ``frames`` (F, H, W, 3) uint8 RGB, and ``audio`` (n,) mono in [-1, 1] if given, to ``path``.

    H and W must be even (yuv420p). Audio is written as given (not cut to the video's length) and
    clipped to [-1, 1]. The parent folder is created. Returns the path written. With ``overwrite=False`` an
    existing ``path`` is never replaced (FileExistsError, even if it appeared while encoding).

    Raises:
        DataError: frames, fps, audio or sample_rate are unusable.
    """
    _check_frames(frames)
    fps = _check_positive_int(fps, "fps")
    if audio is not None:
        audio = _check_audio(audio)
        sample_rate = _check_positive_int(sample_rate, "sample_rate")
        if sample_rate not in _AAC_RATES:
            raise DataError(
                f"AAC cannot store {sample_rate} Hz audio; resample to one of {sorted(_AAC_RATES)}"
            )
    with atomic_path(path, replace=overwrite) as tmp:
        _encode(tmp, frames, fps, audio, sample_rate)
    return Path(path)


def read_mp4(path: str | Path) -> tuple[np.ndarray, float, np.ndarray | None, int | None]:
    """Read an mp4 written by :func:`write_mp4` (or any file FFmpeg can decode).

    Returns ``(frames, fps, audio, sample_rate)``: frames (F, H, W, 3) uint8 RGB, fps as a float, audio
    float32 mono (n,), the mean of all channels, or ``None`` and ``None`` without an audio stream.

    Raises:
        DataError: the file is missing, cannot be decoded or has no video stream.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"video file {path} does not exist; check the path")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DataError(f"{path} has no video stream; pass a video file")
            video = container.streams.video[0]
            sound = container.streams.audio[0] if container.streams.audio else None
            fps = float(video.average_rate or video.guessed_rate or 0)
            images, audio = _decode(container, video, sound)
    except av.error.FFmpegError as err:
        raise DataError(f"cannot decode {path} ({err}); the file is damaged or not a video") from err
    if not images:
        raise DataError(f"{path} has a video stream without frames; re-create the file")
    if sound is None:
        return np.stack(images), fps, None, None
    return np.stack(images), fps, audio, sound.codec_context.sample_rate


def _check_frames(frames: np.ndarray) -> None:
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
        kind = getattr(frames, "dtype", type(frames).__name__)
        raise DataError(
            f"frames must be a uint8 numpy array, got {kind}; clip to [0, 255] and convert with np.uint8"
        )
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise DataError(f"frames must have shape (F>0, H, W, 3) RGB, got {frames.shape}")
    height, width = frames.shape[1:3]
    if height < 2 or width < 2 or height % 2 or width % 2:
        raise DataError(
            f"H.264 yuv420p needs an even frame height and width, got {height}x{width}; "
            "crop or pad the frames"
        )


def _check_audio(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio)
    if audio.ndim != 1 or audio.size == 0:
        raise DataError(f"audio must be mono with shape (n>0,), got {audio.shape}; pass None for no audio")
    if not np.issubdtype(audio.dtype, np.floating):
        raise DataError(f"audio must be floating point in [-1, 1], got {audio.dtype}")
    if not np.all(np.isfinite(audio)):
        raise DataError("audio contains NaN or infinite samples")
    return np.clip(audio, -1.0, 1.0).astype(np.float32)


def _check_positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise DataError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _encode(path: Path, frames: np.ndarray, fps: int, audio: np.ndarray | None, sample_rate: int) -> None:
    # The edit lists that trim the AAC priming and padding count in the movie time scale, which is
    # milliseconds by default; counting in samples makes the trimmed length exact.
    options = {} if audio is None else {"movie_timescale": str(sample_rate)}
    with av.open(str(path), mode="w", format="mp4", options=options) as container:
        video = container.add_stream("libx264", rate=fps)
        video.width = frames.shape[2]
        video.height = frames.shape[1]
        video.pix_fmt = "yuv420p"
        video.options = {"crf": _CRF, "preset": "medium", "threads": "1"}
        video.codec_context.thread_count = 1
        sound = None
        if audio is not None:
            sound = container.add_stream("aac", rate=sample_rate)
            sound.layout = "mono"
            sound.bit_rate = _AUDIO_BIT_RATE
        _mux_video(container, video, frames, fps)
        if sound is not None:
            _mux_audio(container, sound, audio, sample_rate)


def _mux_video(
    container: av.container.OutputContainer, stream: av.VideoStream, frames: np.ndarray, fps: int
) -> None:
    time_base = Fraction(1, fps)
    for index, image in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame.pts = index
        frame.time_base = time_base
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def _mux_audio(
    container: av.container.OutputContainer, stream: av.AudioStream, audio: np.ndarray, sample_rate: int
) -> None:
    time_base = Fraction(1, sample_rate)
    for start in range(0, len(audio), _AAC_FRAME):
        chunk = np.ascontiguousarray(audio[None, start : start + _AAC_FRAME])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
        frame.sample_rate = sample_rate
        frame.pts = start
        frame.time_base = time_base
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def _decode(
    container: av.container.InputContainer, video: av.VideoStream, sound: av.AudioStream | None
) -> tuple[list[np.ndarray], np.ndarray]:
    images: list[np.ndarray] = []
    chunks: list[np.ndarray] = []
    streams = [video] if sound is None else [video, sound]
    # Planar float keeps the channels apart, so the mix-down below is a plain mean: swresample's own
    # stereo-to-mono matrix scales by 1/sqrt(2) instead.
    resampler = None if sound is None else av.AudioResampler(format="fltp")
    for packet in container.demux(streams):
        for frame in packet.decode():
            if packet.stream.index == video.index:
                images.append(frame.to_ndarray(format="rgb24"))
            else:
                chunks.extend(out.to_ndarray().mean(axis=0) for out in resampler.resample(frame))
    if sound is None:
        return images, np.zeros(0, np.float32)
    chunks.extend(out.to_ndarray().mean(axis=0) for out in resampler.resample(None))
    audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    return images, _trim_padding(audio, sound)


def _trim_padding(audio: np.ndarray, stream: av.AudioStream) -> np.ndarray:
    # The decoder drops the AAC priming itself but keeps the last frame's padding; the stream's
    # duration, from the edit list, is the number of samples written.
    if stream.duration is None or stream.time_base is None:
        return audio
    written = round(stream.duration * stream.time_base * stream.codec_context.sample_rate)
    return audio[: max(written, 0)]
