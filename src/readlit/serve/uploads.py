"""Uploads: a multipart body parsed as it streams in, straight into a job folder, within fixed limits.

Files land under fixed names (``image.upload``, ``audio.upload``) in the job's folder, each written under a
temporary name and renamed when its part is complete; the client's file name is never used as a path. A part past
its size limit stops the upload with 413 before the rest is read. Then the media are checked and decoded off the
event loop: an image PIL reads (refused above ``max_image_pixels`` before decoding), audio with a stream whose
packets add up to at most ``max_audio_seconds`` (counted without decoding), and at least one sample.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import av
import torch
from PIL import Image, UnidentifiedImageError
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from readlit.audio import load_audio
from readlit.data.image_io import load_image
from readlit.errors import DataError
from readlit.serve.errors import Rejected
from readlit.serve.settings import Limits
from readlit.utils.atomic import temp_path

FIELD_BYTES = 1024


@dataclass
class Form:
    """What a multipart body held: text fields, and the paths of its files inside the job folder."""

    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)


class _Receiver:
    """python-multipart callbacks writing each part to its place, within its limit."""

    def __init__(self, folder: Path, file_limits: dict[str, int], fields: tuple[str, ...]) -> None:
        self.folder, self.file_limits, self.field_names = folder, file_limits, fields
        self.form = Form()
        self._header, self._value, self._headers = b"", b"", {}
        self._name: str | None = None
        self._size = 0
        self._file: BinaryIO | None = None
        self._tmp: Path | None = None
        self._text = bytearray()

    def callbacks(self) -> dict:
        return {"on_part_begin": self._begin, "on_header_field": self._header_field,
                "on_header_value": self._header_value, "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished, "on_part_data": self._data,
                "on_part_end": self._end}

    def _begin(self) -> None:
        self._headers, self._header, self._value, self._size, self._text = {}, b"", b"", 0, bytearray()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header.lower()] = self._value
        self._header, self._value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        known = (*self.file_limits, *self.field_names)
        if name not in known:
            raise Rejected(422, f"unknown field {name!r}; expected {', '.join(known)}")
        if name in self.form.fields or name in self.form.files:
            raise Rejected(422, f"field {name!r} is given twice")
        self._name = name
        if name in self.file_limits:
            if b"filename" not in options:
                raise Rejected(422, f"{name} must be a file upload, not a text field")
            self._tmp = temp_path(self.folder / f"{name}.upload")
            self._file = self._tmp.open("wb")

    def _data(self, data: bytes, start: int, end: int) -> None:
        self._size += end - start
        limit = self.file_limits.get(self._name, FIELD_BYTES)
        if self._size > limit:
            what = "file" if self._file is not None else "field"
            raise Rejected(413, f"{self._name}: the {what} is larger than this server's limit of {limit} bytes")
        if self._file is not None:
            self._file.write(data[start:end])
        else:
            self._text += data[start:end]

    def _end(self) -> None:
        if self._file is not None:
            self._file.close()
            target = self.folder / f"{self._name}.upload"
            os.replace(self._tmp, target)
            self.form.files[self._name] = target
            self._file = self._tmp = None
        else:
            try:
                self.form.fields[self._name] = self._text.decode()
            except UnicodeDecodeError as err:
                raise Rejected(422, f"{self._name}: not UTF-8 text") from err

    def close(self) -> None:
        """Drop a half-written part (the upload stopped)."""
        if self._file is not None:
            self._file.close()
            self._tmp.unlink(missing_ok=True)


async def receive_form(content_type: str | None, content_length: str | None, body: AsyncIterator[bytes],
                       folder: Path, file_limits: dict[str, int], fields: tuple[str, ...]) -> Form:
    """Parse a multipart/form-data ``body`` into ``folder``; Rejected with one line when it breaks a rule."""
    kind, options = parse_options_header(content_type or "")
    if kind != b"multipart/form-data" or b"boundary" not in options:
        raise Rejected(415, "send multipart/form-data (an HTML form with files, or curl -F)")
    limit = sum(file_limits.values()) + FIELD_BYTES * (len(fields) + 8) + 64 * 1024
    if content_length is not None and content_length.isdigit() and int(content_length) > limit:
        raise Rejected(413, f"the request is {content_length} bytes; this server takes at most {limit}")
    receiver = _Receiver(folder, file_limits, fields)
    parser = MultipartParser(options[b"boundary"], receiver.callbacks())
    try:
        async for chunk in body:
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as err:
        raise Rejected(400, f"the multipart body is malformed ({err})") from err
    finally:
        receiver.close()
    missing = [name for name in file_limits if name not in receiver.form.files]
    if missing:
        raise Rejected(422, f"missing file field(s): {', '.join(missing)}")
    return receiver.form


def read_image(path: Path, size: int, limits: Limits, name: str = "image") -> torch.Tensor:
    """The uploaded portrait as the model takes it (3, size, size) in [-1, 1]; Rejected when it is none."""
    try:
        with Image.open(path) as image:
            pixels = image.size[0] * image.size[1]
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise Rejected(415, f"{name}: not an image this server can read (PNG, JPEG, WebP, BMP, TIFF, GIF)") from err
    if pixels > limits.max_image_pixels:
        raise Rejected(413, f"{name}: {pixels} pixels; this server takes at most {limits.max_image_pixels}")
    try:
        return load_image(path, size)
    except DataError as err:
        raise Rejected(422, f"{name}: {str(err).replace(str(path), 'the upload')}") from err


def audio_seconds(path: Path) -> float:
    """The duration of a file's first audio stream from its packets (nothing decoded); Rejected if it has none."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise Rejected(415, "audio: the file has no audio stream")
            stream = container.streams.audio[0]
            ticks = sum(packet.duration or 0 for packet in container.demux(stream))
            return float(ticks * stream.time_base) if stream.time_base else 0.0
    except (av.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise Rejected(415, "audio: not an audio file this server can decode (wav, mp3, m4a, flac, ogg, webm)") from err


def read_audio(path: Path, sample_rate: int, limits: Limits) -> torch.Tensor:
    """The uploaded speech as (A,) float32 at ``sample_rate``, as ``generate`` reads it; Rejected when unusable."""
    seconds = audio_seconds(path)
    if seconds > limits.max_audio_seconds:
        raise Rejected(422, f"audio: {seconds:.1f} s long; this server takes at most {limits.max_audio_seconds:g} s")
    try:
        waveform = load_audio(path, sample_rate)
    except DataError as err:
        message = "has no samples" if "no samples" in str(err) else "cannot be decoded"
        raise Rejected(422 if message == "has no samples" else 415, f"audio: the file {message}") from err
    if len(waveform) > limits.max_audio_seconds * sample_rate:
        raise Rejected(422, f"audio: {len(waveform) / sample_rate:.1f} s long; this server takes at most "
                            f"{limits.max_audio_seconds:g} s")
    return waveform
