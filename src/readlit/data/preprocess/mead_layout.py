"""The raw MEAD download (after extracting each actor's ``video.tar`` and ``audio.tar``) as a list of clips.

Accepted layout under ``raw_dir``, one folder per actor (``M003``, ``W009``, ...)::

    {actor}/video/{view}/{emotion}/level_{n}/{NNN}.mp4      e.g. M003/video/front/angry/level_1/001.mp4
    {actor}/audio/{emotion}/level_{n}/{NNN}.m4a             e.g. M003/audio/angry/level_1/001.m4a

Only ``view`` (default ``front``, as talking-head papers use) is read. The clip id is
``{actor}_{emotion}_level{n}_{NNN}``. When the ``.m4a`` is missing the video's own audio track is used;
a clip with neither is skipped when it is preprocessed. MEAD has no crop windows: the face is tracked with
the configured detector.
"""

from __future__ import annotations

import re
from pathlib import Path

from readlit.data.preprocess.sources import ClipSource, Skipped
from readlit.errors import DataError

_LEVEL = re.compile(r"^level_(\d+)$")


class MEADLayout:
    """Finds MEAD clips under a raw folder (see the module docstring for the accepted layout).

    Args:
        view: camera view folder to read.
        emotions: emotions to keep (e.g. ``[neutral, happy]``), or None for all.
        actors: actor folders to keep, or None for all.
    """

    name = "mead"

    def __init__(self, view: str = "front", emotions: list[str] | None = None,
                 actors: list[str] | None = None):
        self.view = view
        self.emotions = None if emotions is None else set(emotions)
        self.actors = None if actors is None else set(actors)

    def discover(self, raw_dir: Path) -> tuple[list[ClipSource], list[Skipped]]:
        """Clips to preprocess, sorted by id, and the mp4 files that give none."""
        videos = sorted(raw_dir.glob(f"*/video/{self.view}/*/*/*.mp4"))
        if not videos:
            raise DataError(
                f"raw_dir={raw_dir} holds no MEAD videos {{actor}}/video/{self.view}/{{emotion}}/level_{{n}}/NNN.mp4; "
                "extract each actor's video.tar and audio.tar there (or set "
                "raw.mead.view)"
            )
        clips, skipped = [], []
        for video in videos:
            source = self._clip(raw_dir, video)
            if isinstance(source, Skipped):
                skipped.append(source)
            elif self._wanted(source):
                clips.append(source)
        return sorted(clips, key=lambda clip: clip.clip_id), skipped

    def _clip(self, raw_dir: Path, video: Path) -> ClipSource | Skipped:
        relative = video.relative_to(raw_dir)
        actor, _, _, emotion, level_dir, _ = relative.parts
        level = _LEVEL.match(level_dir)
        if level is None or not video.stem.isdigit():
            return Skipped(str(relative), "bad_name", "expected .../{emotion}/level_{n}/NNN.mp4")
        audio = raw_dir / actor / "audio" / emotion / level_dir / f"{video.stem}.m4a"
        tags = {"actor": actor, "emotion": emotion, "level": int(level.group(1)), "sentence": int(video.stem)}
        clip_id = f"{actor}_{emotion}_level{tags['level']}_{video.stem}"
        return ClipSource(clip_id, video, audio=audio if audio.is_file() else None, group=actor, tags=tags)

    def _wanted(self, clip: ClipSource) -> bool:
        return (self.emotions is None or clip.tags["emotion"] in self.emotions) and (
            self.actors is None or clip.tags["actor"] in self.actors
        )
