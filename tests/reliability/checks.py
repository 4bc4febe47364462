"""What a run that had to work must have made: ``check(case_dir, result)`` -> a problem, or None."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

FPS = 25
Check = Callable[[Path, Any], str | None]


def _checkpoints(case: Path) -> list[Path]:
    return sorted(case.glob("**/checkpoints/last.ckpt"))


def run_folder(case: Path, result: Any) -> str | None:
    """One run folder with its metrics.json."""
    found = sorted(case.glob("**/runs/*/metrics.json"))
    return None if len(found) == 1 else f"{len(found)} run folders with metrics.json"


def run_with_checkpoint(case: Path, result: Any) -> str | None:
    """One run folder whose last.ckpt loads as a readlit checkpoint."""
    from readlit.checkpoint import load_checkpoint

    found = _checkpoints(case)
    if len(found) != 1:
        return f"{len(found)} last.ckpt files"
    load_checkpoint(found[0])
    return run_folder(case, result)


def video_matches_audio(seconds: float, name: str = "out.mp4") -> Check:
    """``name`` lasts ``seconds`` within one frame, carries that much sound, and shows a picture (not one colour)."""
    def check(case: Path, result: Any) -> str | None:
        from readlit.data.video_io import read_mp4

        path = case / name
        if not path.is_file():
            return f"no {name}"
        frames, fps, audio, rate = read_mp4(path)
        video_seconds = len(frames) / fps
        if abs(video_seconds - seconds) > 1 / FPS + 1e-9:
            return f"video lasts {video_seconds:.3f} s for {seconds:.3f} s of audio"
        if audio is None or abs(len(audio) / rate - video_seconds) > 1 / FPS + 0.03:
            return f"sound track of {0 if audio is None else len(audio) / rate:.3f} s"
        if frames.std() < 1.0:
            return f"the video is one colour ({frames.mean():.0f})"
        return None
    return check


def image_loads_like_rgb(name: str, grey: bool) -> Check:
    """The portrait ``name`` loads as the fixture face (its grey version for grey files), within 3 grey levels."""
    def check(case: Path, result: Any) -> str | None:
        from PIL import Image

        from readlit.data.image_io import load_image
        from tests.reliability.fixtures import face

        reference = Image.fromarray(face())
        reference = reference.convert("L").convert("RGB") if grey else reference
        reference.save(case / "reference.png")
        loaded, expected = (load_image(path, 64).numpy() for path in (case / name, case / "reference.png"))
        error = float(np.abs(loaded - expected).mean() * 127.5)
        if error > 3.0:
            return f"the portrait loads {error:.0f} grey levels away from the picture (mean {loaded.mean():+.2f})"
        return video_matches_audio(1.0)(case, result)
    return check


def _strict_json(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")
    return json.loads(text, parse_constant=refuse)


def results_json_valid(case: Path, result: Any) -> str | None:
    """results.json is standard JSON (no Infinity / NaN)."""
    path = case / "report" / "results.json"
    if not path.is_file():
        return "no results.json"
    try:
        _strict_json(path.read_text())
    except ValueError as err:
        return f"results.json is not valid JSON: {err}"
    return None


def latent_cache_readable(case: Path, result: Any) -> str | None:
    """A finished latent cache whose shards everyone may read, as any other file readlit writes."""
    root = case / "latents"
    shards = sorted(root.glob("*/shard-*.safetensors"))
    if not (root / "manifest.json").is_file() or not shards:
        return "no finished latent cache"
    private = [p.name for p in shards if not p.stat().st_mode & 0o044]
    return f"shards only their owner may read: {private[:2]}" if private else None


def mp4_frames(count: int, name: str = "s.mp4") -> Check:
    def check(case: Path, result: Any) -> str | None:
        from readlit.data.video_io import read_mp4

        frames = read_mp4(case / name)[0]
        return None if len(frames) == count else f"{len(frames)} frames, not {count}"
    return check
