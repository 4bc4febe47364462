"""What a raw-layout reader finds: clips to preprocess, and inputs it had to skip (with the reason)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Box:
    """A square crop in source pixels: centre (cx, cy) and side length."""

    cx: float
    cy: float
    side: float


@dataclass(frozen=True)
class ClipSource:
    """One clip to preprocess.

    Args:
        clip_id: the clip's name in the cache (unique, file-system safe).
        video: the video file.
        audio: a separate audio file, or None for the video's own audio track.
        start, end: the clip's time span in the video in seconds; None = from the first / to the last frame.
        box: a fixed crop (HDTF windows), or None to track the face with the detector.
        group: the recording the clip comes from (HDTF source video, MEAD actor).
        tags: dataset labels kept in the manifest (MEAD: actor, emotion, level, sentence).
    """

    clip_id: str
    video: Path
    audio: Path | None = None
    start: float | None = None
    end: float | None = None
    box: Box | None = None
    group: str = ""
    tags: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Skipped:
    """An input that gives no clip: ``reason`` is a short category, ``detail`` says what and how to fix it."""

    source: str
    reason: str
    detail: str
    clip_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "clip_id": self.clip_id, "reason": self.reason, "detail": self.detail}


class SkipClip(Exception):
    """Raised while preprocessing one clip when it must be skipped; never leaves the worker."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
