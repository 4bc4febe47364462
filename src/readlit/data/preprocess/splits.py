"""Train/test splits of the cached clips, written into the manifest: every clip in exactly one split.

- :func:`random_split`: seeded, by clip (default 95/5 train/test). It depends only on the seed and the
  set of clip ids, so a resumed run writes the same split.
- :func:`mead_official_split`: MEAD's sentence split (uniBruce/Mead README): for every actor, emotion
  and intensity level, the last 10 sentences of neutral and the last 6 of each other emotion are test,
  the rest train. "Last" is by sentence number among the files found, before any was skipped.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from readlit.data.preprocess.sources import ClipSource
from readlit.errors import ConfigError

MEAD_TEST_SENTENCES = {"neutral": 10}
MEAD_TEST_SENTENCES_OTHER = 6


def random_split(clip_ids: list[str], fractions: dict[str, float], seed: int) -> dict[str, list[str]]:
    """Shuffle the clips with ``seed`` and cut them by ``fractions`` (largest remainder, in order).

    Every split with a positive fraction gets at least one clip while there are enough clips.
    """
    if (not fractions or any(isinstance(v, bool) or not isinstance(v, int | float) or v < 0 for v in fractions.values())
            or sum(fractions.values()) <= 0):
        raise ConfigError(f"fractions={dict(fractions)} needs fractions >= 0 with a positive sum, "
                          "e.g. {train: 0.95, test: 0.05}")
    counts = _counts(len(clip_ids), fractions)
    order = np.random.default_rng(seed).permutation(len(clip_ids))
    shuffled = [sorted(clip_ids)[i] for i in order]
    splits, first = {}, 0
    for name, count in counts.items():
        splits[name] = sorted(shuffled[first : first + count])
        first += count
    return splits


def _counts(total: int, fractions: dict[str, float]) -> dict[str, int]:
    norm = sum(fractions.values())
    exact = {name: total * value / norm for name, value in fractions.items()}
    counts = {name: int(np.floor(value)) for name, value in exact.items()}
    by_remainder = sorted(exact, key=lambda name: exact[name] - counts[name], reverse=True)
    for name in by_remainder[: total - sum(counts.values())]:
        counts[name] += 1
    for name in fractions:
        # A tiny cache would otherwise get an empty test split from a 5 % fraction.
        donor = max(counts, key=counts.get)
        if fractions[name] > 0 and counts[name] == 0 and counts[donor] > 1:
            counts[name], counts[donor] = 1, counts[donor] - 1
    return counts


def mead_official_split(sources: list[ClipSource], kept: set[str]) -> dict[str, list[str]]:
    """MEAD's official sentence split of ``sources``, restricted to the clip ids in ``kept``."""
    groups: dict[tuple, list[ClipSource]] = defaultdict(list)
    for source in sources:
        tags = source.tags
        groups[tags["actor"], tags["emotion"], tags["level"]].append(source)
    test = set()
    for (_, emotion, _), members in groups.items():
        last = MEAD_TEST_SENTENCES.get(emotion, MEAD_TEST_SENTENCES_OTHER)
        members = sorted(members, key=lambda source: source.tags["sentence"])
        test.update(source.clip_id for source in members[-last:])
    return {"train": sorted(kept - test), "test": sorted(kept & test)}
