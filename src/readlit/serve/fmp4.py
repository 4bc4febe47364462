"""Fragmented MP4 (ISO BMFF) written clip by clip, for Media Source Extensions and HTTP clients alike.

One init segment (``ftyp`` + ``moov``, written by FFmpeg's mp4 muxer from the encoders' parameters), then one media
segment (``moof`` + ``mdat``) per clip, written here: FFmpeg's muxer holds a fragment back until the next packet
arrives, which would delay every clip by the next clip's denoising. The concatenation of all segments is a
playable mp4.

Video: H.264 (libx264, ``tune=zerolatency``: one packet out per frame in, no B-frames) with an IDR frame at the
start of every clip, so each media segment starts with a sync sample. Audio: AAC-LC, mono, fed in 1024-sample
frames; samples left over at the end of a clip wait for the next one (at most 1023, 64 ms at 16 kHz), and the
encoder's first (priming) packet is dropped so that packet timestamps are the times of the samples they decode to.
"""

from __future__ import annotations

import io
import re
import struct
from fractions import Fraction

import av
import numpy as np

from readlit.errors import DataError

_AAC_FRAME = 1024
_START_CODE = re.compile(b"\x00\x00\x00\x01|\x00\x00\x01")
_SYNC = 0x02000000  # sample_depends_on = 2 (an I frame)
_NON_SYNC = 0x01010000  # sample_depends_on = 1, sample_is_non_sync_sample
_TRUN_FLAGS = 0x000001 | 0x000100 | 0x000200 | 0x000400  # data offset, per-sample duration, size, flags


def _box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I", 8 + len(body)) + kind + body


def _full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *payload)


def _children(data: bytes) -> dict[bytes, bytes]:
    """The boxes directly inside ``data`` (first of each kind), by kind, without their headers."""
    out, offset = {}, 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset: offset + 8])
        out.setdefault(kind, data[offset + 8: offset + size])
        offset += size
    return out


def _tracks(init: bytes) -> dict[str, tuple[int, int]]:
    """{"vide"|"soun": (track id, timescale)} from an init segment's ``moov``."""
    tracks = {}
    moov = _children(init)[b"moov"]
    offset = 0
    while offset + 8 <= len(moov):
        size, kind = struct.unpack(">I4s", moov[offset: offset + 8])
        if kind == b"trak":
            trak = _children(moov[offset + 8: offset + size])
            tkhd, mdia = trak[b"tkhd"], _children(trak[b"mdia"])
            track_id = struct.unpack(">I", tkhd[20:24] if tkhd[0] == 1 else tkhd[12:16])[0]
            mdhd = mdia[b"mdhd"]
            timescale = struct.unpack(">I", mdhd[20:24] if mdhd[0] == 1 else mdhd[12:16])[0]
            tracks[mdia[b"hdlr"][8:12].decode()] = (track_id, timescale)
        offset += size
    return tracks


def _length_prefixed(annex_b: bytes) -> bytes:
    """H.264 NAL units from start-code form to the 4-byte length prefixes mp4 stores."""
    units = [unit.rstrip(b"\x00") for unit in _START_CODE.split(annex_b)]
    return b"".join(struct.pack(">I", len(unit)) + unit for unit in units if unit)


def _avc_codec(extradata: bytes) -> str:
    """The RFC 6381 codec string (avc1.PPCCLL) from the encoder's SPS."""
    if extradata[:1] == b"\x01":  # already an avcC record
        profile = extradata[1:4]
    else:
        sps = next(unit for unit in _START_CODE.split(extradata) if unit and unit[0] & 0x1F == 7)
        profile = sps[1:4]
    return "avc1." + profile.hex()


class FragmentWriter:
    """Encode clips of frames and audio into fragmented MP4 segments.

    Args:
        width, height: frame size (even).
        fps: frame rate.
        sample_rate: audio rate (one AAC accepts).
        crf: libx264 quality (lower is better and larger).
    """

    def __init__(self, width: int, height: int, fps: int, sample_rate: int, crf: int = 20) -> None:
        if width % 2 or height % 2:
            raise DataError(f"H.264 needs an even frame size, got {width}x{height}")
        self.fps = fps
        self.sample_rate = sample_rate
        self._sink = io.BytesIO()
        self._muxer = av.open(self._sink, "w", format="mp4",
                              options={"movflags": "empty_moov+default_base_moof+frag_custom"})
        self._video = self._muxer.add_stream("libx264", rate=fps)
        self._video.width, self._video.height, self._video.pix_fmt = width, height, "yuv420p"
        self._video.options = {"tune": "zerolatency", "preset": "veryfast", "crf": str(crf), "forced-idr": "1",
                               "threads": "1"}
        self._audio = self._muxer.add_stream("aac", rate=sample_rate)
        self._audio.layout = "mono"
        self._audio.bit_rate = 96_000
        self._muxer.start_encoding()
        self.init_segment = self._sink.getvalue()
        tracks = _tracks(self.init_segment)
        (self._video_track, self._video_scale), (self._audio_track, self._audio_scale) = tracks["vide"], tracks["soun"]
        self.mime = f'video/mp4; codecs="{_avc_codec(bytes(self._video.codec_context.extradata))}, mp4a.40.2"'
        self._frames = 0
        self._fed = 0
        self._pending = np.zeros(0, np.float32)
        self._sequence = 0
        self._closed = False

    def fragment(self, frames: np.ndarray, audio: np.ndarray, last: bool = False) -> bytes:
        """One media segment: ``frames`` (F, H, W, 3) uint8 RGB and ``audio`` (n,) float mono in [-1, 1] that
        follow the previous call's. ``last`` flushes both encoders (no call after it)."""
        if self._closed:
            raise DataError("the fragmented mp4 is finished; start another writer")
        video = [self._encode_frame(image, index == 0) for index, image in enumerate(frames)]
        packets = [packet for group in video for packet in group]
        if last:
            packets += list(self._video.encode(None))
        sound = self._encode_audio(np.clip(np.asarray(audio, np.float32), -1, 1), last)
        segment = self._segment(packets, sound)
        if last:
            self.close()
        return segment

    def close(self) -> None:
        """Free the encoders (after the last segment, or when a job stops early)."""
        if not self._closed:
            self._closed = True
            self._muxer.close()

    def __enter__(self) -> FragmentWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _encode_frame(self, image: np.ndarray, idr: bool) -> list[av.Packet]:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame.pts, frame.time_base = self._frames, Fraction(1, self.fps)
        if idr:
            frame.pict_type = av.video.frame.PictureType.I
        self._frames += 1
        return list(self._video.encode(frame))

    def _encode_audio(self, audio: np.ndarray, last: bool) -> list[av.Packet]:
        self._pending = np.concatenate([self._pending, audio])
        whole = len(self._pending) if last else len(self._pending) // _AAC_FRAME * _AAC_FRAME
        packets = []
        for start in range(0, whole, _AAC_FRAME):
            chunk = np.ascontiguousarray(self._pending[None, start: min(start + _AAC_FRAME, whole)])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = self.sample_rate, self._fed, Fraction(1, self.sample_rate)
            self._fed += chunk.shape[1]
            packets += self._audio.encode(frame)
        self._pending = self._pending[whole:]
        if last:
            packets += self._audio.encode(None)
        return [packet for packet in packets if packet.pts >= 0]  # the priming packet decodes to no input sample

    def _segment(self, video: list[av.Packet], audio: list[av.Packet]) -> bytes:
        self._sequence += 1
        video_data = [_length_prefixed(bytes(packet)) for packet in video]
        audio_data = [bytes(packet) for packet in audio]
        first = self._frames - len(video)
        times = [round((first + i) * self._video_scale / self.fps) for i in range(len(video) + 1)]
        video_samples = [(times[i + 1] - times[i], len(data), _SYNC if packet.is_keyframe else _NON_SYNC)
                         for i, (packet, data) in enumerate(zip(video, video_data, strict=True))]
        audio_samples = [(round(packet.duration * self._audio_scale / self.sample_rate), len(data), _SYNC)
                         for packet, data in zip(audio, audio_data, strict=True)]
        audio_start = round(audio[0].pts * self._audio_scale / self.sample_rate) if audio else 0
        runs = [(self._video_track, times[0], video_samples), (self._audio_track, audio_start, audio_samples)]
        runs = [run for run in runs if run[2]]

        def moof(offset: int) -> bytes:
            trafs, position = [], offset
            for track, start, samples in runs:
                trun = _full_box(b"trun", 0, _TRUN_FLAGS, struct.pack(">Ii", len(samples), position),
                                 *(struct.pack(">III", *sample) for sample in samples))
                trafs.append(_box(b"traf", _full_box(b"tfhd", 0, 0x020000, struct.pack(">I", track)),
                                  _full_box(b"tfdt", 1, 0, struct.pack(">Q", start)), trun))
                position += sum(size for _, size, _ in samples)
            return _box(b"moof", _full_box(b"mfhd", 0, 0, struct.pack(">I", self._sequence)), *trafs)

        header = moof(0)
        return moof(len(header) + 8) + _box(b"mdat", *video_data, *audio_data)
