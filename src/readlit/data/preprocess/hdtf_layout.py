"""The raw HDTF download (github.com/MRzzm/HDTF) as a list of clips with their crop windows.

Accepted layout (any folder depth under ``raw_dir``; file names are what the HDTF README prescribes):

- **metadata**: the official ``HDTF_dataset/{RD,WDA,WRA}_*.txt`` files, anywhere under ``metadata_dir``
  (default: ``raw_dir``):

  - ``xx_crop_wh.txt``, one line per clip: ``name_clipidx.mp4 min_width width min_height height``, the
    fixed crop window ``x0 w y0 h`` in the downloaded video's pixels, e.g. ``Radio11_0.mp4 412 599 0 599``;
  - ``xx_annotion_time.txt`` (also ``*_annotation_time.txt``), one line per source video:
    ``name.mp4 mm:ss-mm:ss [mm:ss-mm:ss ...]``, e.g. ``Radio11.mp4 00:30-01:00 01:30-02:30``; clip k
    (0-based) of ``name`` is the k-th span and is called ``name_k``. ``hh:mm:ss`` and plain seconds work too.

- **videos**: ``*.mp4`` files anywhere under ``raw_dir``, either

  - already split clips ``name_clipidx.mp4`` (e.g. ``Radio11_0.mp4``), used whole, or
  - whole source videos ``name.mp4`` listed in ``xx_annotion_time.txt``, cut into their spans here.

  A split clip file wins over the same span of a source video.

With ``crop_windows=false`` no metadata is needed: every mp4 is a clip (a source video listed in an
annotation file is still cut into its spans) and the face is found by the detector, as for MEAD. This
also reads downloads that were already cropped (e.g. by ``universome/HDTF``'s ``download.py``).

Clips without a crop window, and mp4 files the metadata does not know, are skipped with that reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from readlit import checks
from readlit.data.preprocess.sources import Box, ClipSource, Skipped
from readlit.errors import DataError

_CLIP_NAME = re.compile(r"^(?P<video>.+)_(?P<index>\d+)$")


class HDTFLayout:
    """Finds HDTF clips under a raw folder (see the module docstring for the accepted layout).

    Args:
        crop_windows: crop with the official windows of ``xx_crop_wh.txt``; false: track the face.
        metadata_dir: folder holding the ``xx_*.txt`` files; None = ``raw_dir``.
    """

    name = "hdtf"

    def __init__(self, crop_windows: bool = True, metadata_dir: str | None = None):
        self.crop_windows = checks.flag("crop_windows", crop_windows)
        if metadata_dir is not None and not Path(metadata_dir).expanduser().is_dir():
            raise DataError(f"metadata_dir={metadata_dir} is not a folder; point it at HDTF_dataset/")
        self.metadata_dir = metadata_dir

    def discover(self, raw_dir: Path) -> tuple[list[ClipSource], list[Skipped]]:
        """Clips to preprocess, sorted by id, and the mp4 files that give none."""
        meta_dir = Path(self.metadata_dir) if self.metadata_dir else raw_dir
        if not meta_dir.is_dir():
            raise DataError(f"raw_dir={meta_dir} is not a folder")
        windows = _read_all(meta_dir, "*_crop_wh.txt", _parse_crop_line)
        spans = _read_all(meta_dir, "*_anno*_time.txt", _parse_time_line)
        if self.crop_windows and not windows:
            raise DataError(
                f"raw_dir={raw_dir} has no *_crop_wh.txt (looked in {meta_dir}): copy the HDTF_dataset/ folder of "
                "github.com/MRzzm/HDTF into raw_dir (or set raw.hdtf.metadata_dir), or set "
                "raw.hdtf.crop_windows=false to detect faces"
            )
        videos = sorted(raw_dir.rglob("*.mp4"))
        if not videos:
            raise DataError(f"raw_dir={raw_dir} holds no .mp4 files; point raw_dir at the HDTF download")
        return self._clips(raw_dir, videos, windows, spans)

    def _clips(
        self, raw_dir: Path, videos: list[Path], windows: dict[str, Box], spans: dict[str, list[tuple]]
    ) -> tuple[list[ClipSource], list[Skipped]]:
        clips: dict[str, ClipSource] = {}
        skipped: list[Skipped] = []
        for video in videos:
            if video.stem in spans:
                continue
            source = self._split_clip(video, windows)
            if isinstance(source, Skipped):
                skipped.append(_relative(source, raw_dir))
            elif source.clip_id in clips:
                skipped.append(Skipped(_rel(video, raw_dir), "duplicate", f"another {video.name} is used"))
            else:
                clips[source.clip_id] = source
        for video in (v for v in videos if v.stem in spans):
            for index, (start, end) in enumerate(spans[video.stem]):
                clip_id = f"{video.stem}_{index}"
                if clip_id in clips:
                    continue
                box = windows.get(clip_id) if self.crop_windows else None
                if box is None and self.crop_windows:
                    skipped.append(Skipped(_rel(video, raw_dir), "no_crop_window",
                                           f"{clip_id} has no line in *_crop_wh.txt", clip_id))
                    continue
                clips[clip_id] = ClipSource(clip_id, video, start=start, end=end, box=box, group=video.stem)
        return [clips[key] for key in sorted(clips)], skipped

    def _split_clip(self, video: Path, windows: dict[str, Box]) -> ClipSource | Skipped:
        match = _CLIP_NAME.match(video.stem)
        group = match.group("video") if match else video.stem
        if not self.crop_windows:
            return ClipSource(video.stem, video, group=group)
        if video.stem not in windows:
            return Skipped(str(video), "no_crop_window",
                           f"{video.name} is in no *_crop_wh.txt and no *_annotion_time.txt", video.stem)
        return ClipSource(video.stem, video, box=windows[video.stem], group=group)


def _rel(path: Path, raw_dir: Path) -> str:
    return str(path.relative_to(raw_dir)) if path.is_relative_to(raw_dir) else str(path)


def _relative(skipped: Skipped, raw_dir: Path) -> Skipped:
    return Skipped(_rel(Path(skipped.source), raw_dir), skipped.reason, skipped.detail, skipped.clip_id)


def _read_all(folder: Path, pattern: str, parse: Callable[[list[str]], tuple[str, Any]]) -> dict[str, Any]:
    """Merge the entries of every metadata file matching ``pattern``, keyed by video/clip stem."""
    entries: dict = {}
    for path in sorted(folder.rglob(pattern)):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if line.strip():
                try:
                    key, value = parse(line.split())
                except (ValueError, IndexError) as err:
                    raise DataError(f"{path}:{number}: cannot read {line.strip()!r} ({err}); "
                                    "restore the file from github.com/MRzzm/HDTF") from err
                entries[Path(key).stem] = value
    return entries


def _parse_crop_line(fields: list[str]) -> tuple[str, Box]:
    """``name.mp4 x0 w y0 h`` -> the window as a square box (the larger side, centred)."""
    if len(fields) != 5:
        raise ValueError(f"expected 'name x0 width y0 height', got {len(fields)} fields")
    x0, width, y0, height = (float(value) for value in fields[1:])
    if width <= 0 or height <= 0:
        raise ValueError("width and height must be positive")
    return fields[0], Box(x0 + width / 2, y0 + height / 2, max(width, height))


def _parse_time_line(fields: list[str]) -> tuple[str, list[tuple[float, float]]]:
    """``name.mp4 00:30-01:00 01:30-02:30`` -> [(30, 60), (90, 150)] seconds."""
    spans = []
    for text in fields[1:]:
        start, end = (_seconds(part) for part in text.split("-"))
        if end <= start:
            raise ValueError(f"span {text} ends before it starts")
        spans.append((start, end))
    if not spans:
        raise ValueError("no time spans")
    return fields[0], spans


def _seconds(text: str) -> float:
    """``ss``, ``mm:ss`` or ``hh:mm:ss`` -> seconds."""
    total = 0.0
    for part in text.split(":"):
        total = 60.0 * total + float(part)
    return total
