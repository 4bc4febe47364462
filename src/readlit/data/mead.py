"""MEAD (``data=mead``): windows of the clip cache that ``python -m readlit.preprocess data=mead`` writes.

The cache holds one clip per front-view sentence recording (``M003_angry_level1_001``), 25 fps 512² crops
around the tracked face and 16 kHz mono audio, tagged with actor, emotion, level and sentence; see
:mod:`readlit.data.preprocess.mead_layout` for the raw layout and :mod:`readlit.data.av_base` for the
batches. ``splits: {train: train, val: test, test: test}`` with a cache made with ``split.official=true``
gives MEAD's official sentence split.
"""

from typing import Any

from readlit.data.av_base import CachedAVDataModule
from readlit.errors import ConfigError


class MEADDataModule(CachedAVDataModule):
    """Train / val / test windows of a MEAD cache.

    Args:
        emotions: keep only clips of these emotions (e.g. ``[neutral]``), or None for all.
        Other arguments as in :class:`CachedAVDataModule`.
    """

    def __init__(self, root: str, emotions: list[str] | None = None, name: str = "mead", **kwargs: Any):
        super().__init__(root=root, name=name, **kwargs)
        known = {meta["tags"]["emotion"] for meta in self.cache.clips.values()}
        if emotions is not None and not set(emotions) <= known:
            raise ConfigError(f"emotions={list(emotions)} names emotions the cache at {self.cache.root} does not "
                              f"hold; it has {sorted(known)}")
        self.emotions = None if emotions is None else set(emotions)
        self.check_latents()

    def clip_ids(self, stage: str) -> list[str]:
        """Cached clips of one stage's split, of the chosen emotions."""
        clips = super().clip_ids(stage)
        if self.emotions is None:
            return clips
        return [clip for clip in clips if self.cache.clips[clip]["tags"]["emotion"] in self.emotions]
