"""Raw download -> clip cache: find the clips, preprocess them in parallel, split, write the manifest.

One run at a time per cache (an OS lock on ``<root>/.lock``). Resume is the normal path: finished clip
folders are reused, temporary folders of an interrupted run are deleted, skipped inputs are tried again
(they are cheap to refuse, and a fixed file then gets in), and the manifest is rebuilt from every clip, so
an interrupted run followed by a resumed one ends with the same cache as one uninterrupted run.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tqdm.auto import tqdm

from readlit.data import cache
from readlit.data.manifest import write_manifest
from readlit.data.preprocess.clip_job import JobResult, JobSettings, init_worker, process_clip
from readlit.data.preprocess.sources import ClipSource, Skipped
from readlit.data.preprocess.splits import mead_official_split, random_split
from readlit.errors import DataError

log = logging.getLogger(__name__)


class Layout(Protocol):
    name: str

    def discover(self, raw_dir: Path) -> tuple[list[ClipSource], list[Skipped]]: ...


@dataclass(frozen=True)
class SplitSettings:
    """``fractions`` by split name and ``seed`` for the random split; ``official``: MEAD's sentence split."""

    fractions: dict[str, float]
    seed: int = 0
    official: bool = False


@dataclass(frozen=True)
class RunStats:
    """What one run did: clips made now, reused from an earlier run, skipped; temporary folders removed."""

    made: int
    reused: int
    skipped: int
    removed_tmp: int


def run_jobs(sources: list[ClipSource], settings: JobSettings, workers: int) -> Iterator[JobResult]:
    """Results of :func:`process_clip` for every source, in completion order (spawn-safe pool)."""
    if workers <= 1:
        init_worker(settings)
        yield from map(process_clip, sources)
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=init_worker, initargs=(settings, os.getpid())) as pool:
        yield from pool.imap_unordered(process_clip, sources)


def build_cache(layout: Layout, raw_dir: Path, settings: JobSettings, workers: int, split: SplitSettings,
                config: dict[str, Any], progress: bool = True) -> tuple[dict[str, Any], RunStats]:
    """Preprocess every clip ``layout`` finds under ``raw_dir`` into ``settings.root``.

    Returns:
        the manifest written, and what this run did.
    """
    sources, skipped = layout.discover(raw_dir)
    root = Path(settings.root)
    with cache.writer_lock(root):
        (root / cache.CLIPS).mkdir(parents=True, exist_ok=True)
        removed = cache.remove_tmp_dirs(root)
        if removed:
            log.info("removed %d unfinished clip folders of an interrupted run", removed)
        clips, failed, reused = _process_all(layout.name, sources, settings, workers, progress)
        skipped = skipped + failed
        if not clips:
            reasons = Counter(item.reason for item in skipped)
            raise DataError(f"raw_dir={raw_dir}: no clip could be made (skipped by reason: "
                            f"{dict(sorted(reasons.items())) or 'nothing found'}); check the files and the "
                            "preprocessing settings")
        manifest = _manifest(layout.name, clips, skipped, _splits(split, sources, clips), settings, config)
        write_manifest(root, manifest)
    return manifest, RunStats(len(clips) - reused, reused, len(skipped), removed)


def _process_all(name: str, sources: list[ClipSource], settings: JobSettings, workers: int,
                 progress: bool) -> tuple[dict[str, dict[str, Any]], list[Skipped], int]:
    """Finished clips by id, the sources skipped, and how many clips were reused; with a progress bar."""
    clips: dict[str, dict[str, Any]] = {}
    skipped: list[Skipped] = []
    reused = 0
    with tqdm(total=len(sources), desc=f"preprocess {name}", unit="clip", disable=not progress) as bar:
        for result in run_jobs(sources, settings, workers):
            if result.meta is not None:
                clips[result.meta["clip_id"]] = result.meta
                reused += result.reused
            else:
                skipped.append(result.skipped)
            bar.update()
            bar.set_postfix(clips=len(clips), skipped=len(skipped))
    return clips, skipped, reused


def _splits(split: SplitSettings, sources: list[ClipSource], clips: dict[str, Any]) -> dict[str, list[str]]:
    if split.official:
        return mead_official_split(sources, set(clips))
    return random_split(list(clips), split.fractions, split.seed)


def _manifest(name: str, clips: dict[str, dict[str, Any]], skipped: list[Skipped],
              splits: dict[str, list[str]], settings: JobSettings, config: dict[str, Any]) -> dict[str, Any]:
    skipped = sorted(skipped, key=lambda item: (item.source, item.clip_id or ""))
    return {
        "format": cache.FORMAT_VERSION,
        "dataset": name,
        "fps": settings.fps,
        "size": settings.size,
        "sample_rate": settings.sample_rate,
        "clips": {key: clips[key] for key in sorted(clips)},
        "splits": splits,
        "skipped": [item.as_dict() for item in skipped],
        "counts": {
            "clips": len(clips),
            "frames": sum(meta["frames"] for meta in clips.values()),
            "skipped": len(skipped),
            "skipped_by_reason": dict(sorted(Counter(item.reason for item in skipped).items())),
            "splits": {key: len(value) for key, value in splits.items()},
        },
        "config": config,
    }
