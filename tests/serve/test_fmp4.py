"""Fragmented MP4 segments: the init segment plus every clip's segment decode to the frames and audio written, at
their times (the dropped AAC priming packet keeps audio aligned), and each clip starts on a sync sample."""

import io

import av
import numpy as np
import pytest

from readlit.errors import DataError
from readlit.serve.fmp4 import FragmentWriter, _children


def decode(data: bytes) -> tuple[np.ndarray, list[float], list[bool], np.ndarray]:
    with av.open(io.BytesIO(data)) as container:
        frames = list(container.decode(video=0))
    with av.open(io.BytesIO(data)) as container:
        audio = np.concatenate([f.to_ndarray()[0] for f in container.decode(audio=0)])
    return (np.stack([f.to_ndarray(format="rgb24") for f in frames]), [float(f.time) for f in frames],
            [f.key_frame for f in frames], audio)


def test_segments_decode_to_what_was_written():
    frames = (np.linspace(0, 255, 40)[:, None, None, None] * np.ones((40, 48, 64, 3))).astype(np.uint8)
    audio = (0.5 * np.sin(np.arange(40 * 640 - 100) * 2 * np.pi * 440 / 16000)).astype(np.float32)
    writer = FragmentWriter(64, 48, 25, 16000)
    assert writer.mime == 'video/mp4; codecs="avc1.64000a, mp4a.40.2"'
    clips = [(0, 9), (9, 17), (17, 40)]
    segments = [writer.fragment(frames[a:b], audio[a * 640: b * 640], last=b == 40) for a, b in clips]
    assert all(list(_children(s)) == [b"moof", b"mdat"] for s in segments)
    pixels, times, keys, sound = decode(writer.init_segment + b"".join(segments))
    assert pixels.shape == frames.shape and np.abs(pixels.astype(int) - frames).max() <= 2
    np.testing.assert_allclose(times, np.arange(40) / 25, atol=1e-6)
    assert [i for i, key in enumerate(keys) if key] == [0, 9, 17]
    assert len(audio) <= len(sound) < len(audio) + 1024
    middle = slice(2048, len(audio) - 2048)  # AAC is lossy, but a 440 Hz tone comes back in place, not shifted
    assert np.abs(sound[middle] - audio[middle]).max() < 0.01
    with pytest.raises(DataError, match="finished"):
        writer.fragment(frames[:1], audio[:640])
    with pytest.raises(DataError, match="even"):
        FragmentWriter(63, 48, 25, 16000)
