"""Splits: by clip, seeded, no clip in two splits; MEAD's official sentence split."""

from pathlib import Path

import pytest

from readlit.data.preprocess.sources import ClipSource
from readlit.data.preprocess.splits import mead_official_split, random_split
from readlit.errors import ConfigError

CLIPS = [f"clip{i:03d}" for i in range(200)]


def test_random_split_is_disjoint_complete_and_95_5():
    splits = random_split(CLIPS, {"train": 0.95, "test": 0.05}, seed=0)
    assert (len(splits["train"]), len(splits["test"])) == (190, 10)
    assert not set(splits["train"]) & set(splits["test"])
    assert sorted(splits["train"] + splits["test"]) == CLIPS


def test_random_split_depends_on_seed_and_clip_set_only():
    one = random_split(CLIPS, {"train": 0.95, "test": 0.05}, seed=0)
    assert random_split(list(reversed(CLIPS)), {"train": 0.95, "test": 0.05}, seed=0) == one
    assert random_split(CLIPS, {"train": 0.95, "test": 0.05}, seed=1) != one


def test_three_way_split_and_tiny_caches_keep_every_split():
    splits = random_split(CLIPS[:41], {"train": 0.9, "val": 0.05, "test": 0.05}, seed=3)
    assert [len(splits[name]) for name in ("train", "val", "test")] == [37, 2, 2]
    tiny = random_split(CLIPS[:3], {"train": 0.95, "test": 0.05}, seed=0)
    assert (len(tiny["train"]), len(tiny["test"])) == (2, 1)


@pytest.mark.parametrize("fractions", [{}, {"train": -0.1, "test": 1.1}, {"train": 0.0}])
def test_random_split_refuses_bad_fractions(fractions):
    with pytest.raises(ConfigError, match="^fractions="):
        random_split(CLIPS, fractions, seed=0)


def _mead(actor: str, emotion: str, level: int, sentences: int) -> list[ClipSource]:
    return [ClipSource(f"{actor}_{emotion}_level{level}_{s:03d}", Path(f"{s:03d}.mp4"), group=actor,
                       tags={"actor": actor, "emotion": emotion, "level": level, "sentence": s})
            for s in range(1, sentences + 1)]


def test_mead_official_split_takes_the_last_sentences_of_each_level():
    sources = (_mead("M003", "neutral", 1, 40) + _mead("M003", "angry", 1, 30) + _mead("M003", "angry", 3, 30)
               + _mead("W009", "happy", 2, 30))
    kept = {source.clip_id for source in sources} - {"M003_angry_level1_030"}  # e.g. a corrupt file
    splits = mead_official_split(sources, kept)
    test = set(splits["test"])
    assert {c for c in test if "neutral" in c} == {f"M003_neutral_level1_{s:03d}" for s in range(31, 41)}
    assert {c for c in test if "angry_level1" in c} == {f"M003_angry_level1_{s:03d}" for s in range(25, 30)}
    assert {c for c in test if "angry_level3" in c} == {f"M003_angry_level3_{s:03d}" for s in range(25, 31)}
    assert {c for c in test if "W009" in c} == {f"W009_happy_level2_{s:03d}" for s in range(25, 31)}
    assert not test & set(splits["train"]) and test | set(splits["train"]) == kept
