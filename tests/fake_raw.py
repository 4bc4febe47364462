"""Fake raw HDTF and MEAD downloads made of synthetic talking heads, written with PyAV.

Each builder writes a tree in the dataset's real layout, with the awkward inputs a real download has
(a corrupt file, 30 fps video, 44.1 kHz stereo audio, a video shorter than one clip, a scene cut, a
video without a face or without audio) and returns what preprocessing must make of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from readlit.data.synthetic import make_identity, make_session, render_frames
from readlit.preprocess import preprocess
from tests.helpers import compose_app

RAW_H, RAW_W = 128, 160  # raw frame size; the face is centred
# HDTF crop window "x0 w y0 h" around the synthetic face, in raw pixels
WINDOW = (24, 112, 8, 112)
SEED = 3


def write_media(path: Path, frames: np.ndarray | None, fps: int, audio: np.ndarray | None,
                sample_rate: int) -> Path:
    """Write H.264 ``frames`` (F, H, W, 3) uint8 and/or AAC ``audio`` (channels, n) float32 to mp4/m4a."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w", format="mp4") as container:
        video = sound = None
        if frames is not None:
            video = container.add_stream("libx264", rate=fps)
            video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
            video.options = {"crf": "18", "threads": "1"}
        if audio is not None:
            sound = container.add_stream("aac", rate=sample_rate)
            sound.layout = "stereo" if audio.shape[0] == 2 else "mono"
        if video is not None:
            for index, image in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts, frame.time_base = index, Fraction(1, fps)
                container.mux(video.encode(frame))
            container.mux(video.encode(None))
        if sound is not None:
            for start in range(0, audio.shape[1], 1024):
                chunk = np.ascontiguousarray(audio[:, start : start + 1024], dtype=np.float32)
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=sound.layout.name)
                frame.sample_rate, frame.pts, frame.time_base = sample_rate, start, Fraction(1, sample_rate)
                container.mux(sound.encode(frame))
            container.mux(sound.encode(None))
    return path


def talking_head(identity: int, seconds: float, fps: int, sample_rate: int,
                 channels: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic speaker: frames (F, 128, 160, 3) uint8 and audio (channels, n) float32."""
    count = round(seconds * fps)
    face = make_identity(SEED, identity)
    session = make_session(SEED, face, 0, count, fps, sample_rate)
    frames = render_frames(face, session, 0, count, (RAW_H, RAW_W))
    # The second channel is quieter, so a wrong mix-down (e.g. taking one channel) changes the level.
    audio = np.stack([session.audio, 0.5 * session.audio][:channels])
    return frames, audio


def write_talking_head(path: Path, identity: int, seconds: float, fps: int, sample_rate: int,
                       channels: int = 1) -> Path:
    frames, audio = talking_head(identity, seconds, fps, sample_rate, channels)
    return write_media(path, frames, fps, audio, sample_rate)


def make_hdtf_tree(root: Path) -> dict:
    """A raw HDTF download: official metadata files plus split clips and one whole source video.

    Returns the expected clip frame counts at 25 fps and the expected skip reason of every bad file.
    """
    videos = root / "videos"
    write_talking_head(videos / "RadioA_0.mp4", 1, 2.6, 25, 16000)
    write_talking_head(videos / "RadioB_0.mp4", 2, 2.4, 30, 44100, channels=2)
    write_talking_head(videos / "RadioC.mp4", 3, 6.0, 25, 44100, channels=2)
    write_talking_head(videos / "RadioD_0.mp4", 4, 0.8, 25, 16000)
    (videos / "RadioE_0.mp4").write_bytes(np.random.default_rng(0).bytes(30000))
    first, audio = talking_head(5, 1.2, 25, 16000)
    second, _ = talking_head(6, 1.2, 25, 16000)
    write_media(videos / "RadioF_0.mp4", np.concatenate([first, second]), 25, np.tile(audio, 2), 16000)
    write_talking_head(videos / "Extra_0.mp4", 1, 1.6, 25, 16000)
    meta = root / "HDTF_dataset"
    meta.mkdir(parents=True)
    window = " ".join(str(value) for value in WINDOW)
    names = ["RadioA_0", "RadioB_0", "RadioC_0", "RadioC_1", "RadioD_0", "RadioE_0", "RadioF_0"]
    (meta / "RD_crop_wh.txt").write_text("".join(f"{name}.mp4 {window}\n" for name in names))
    (meta / "RD_annotion_time.txt").write_text("RadioC.mp4 00:01-00:03 00:03-00:05\n")
    return {
        "frames": {"RadioA_0": 65, "RadioB_0": 60, "RadioC_0": 50, "RadioC_1": 50},
        "skipped": {"videos/RadioD_0.mp4": "too_short", "videos/RadioE_0.mp4": "unreadable",
                    "videos/RadioF_0.mp4": "scene_cut", "videos/Extra_0.mp4": "no_crop_window"},
    }


def make_mead_tree(root: Path) -> dict:
    """A raw MEAD download: ``{actor}/video/front/{emotion}/level_{n}/NNN.mp4`` plus ``audio/.../NNN.m4a``.

    Videos are 30 fps with separate 44.1 kHz (stereo or mono) m4a audio, as in MEAD.
    """
    recordings = [("M001", "angry", 1, 1, 1), ("M001", "angry", 1, 2, 2), ("M001", "neutral", 1, 1, 3),
                  ("W002", "happy", 2, 1, 4)]
    for actor, emotion, level, sentence, identity in recordings:
        frames, audio = talking_head(identity, 1.6, 30, 44100, channels=1 + sentence % 2)
        name = f"{sentence:03d}"
        write_media(root / actor / "video" / "front" / emotion / f"level_{level}" / f"{name}.mp4", frames, 30,
                    None, 44100)
        write_media(root / actor / "audio" / emotion / f"level_{level}" / f"{name}.m4a", None, 30, audio,
                    44100)
    empty = np.broadcast_to(np.linspace(40, 200, RAW_W, dtype=np.uint8)[None, None, :, None],
                            (48, RAW_H, RAW_W, 3)).copy()
    silent = root / "W002" / "video" / "front" / "happy" / "level_2"
    write_media(silent / "002.mp4", empty, 30, None, 44100)
    write_media(root / "W002" / "audio" / "happy" / "level_2" / "002.m4a", None, 30,
                talking_head(4, 1.6, 30, 44100)[1], 44100)
    write_media(silent / "003.mp4", talking_head(4, 1.6, 30, 44100)[0], 30, None, 44100)
    return {
        "frames": {"M001_angry_level1_001": 40, "M001_angry_level1_002": 40, "M001_neutral_level1_001": 40,
                   "W002_happy_level2_001": 40},
        "skipped": {"W002/video/front/happy/level_2/002.mp4": "no_face",
                    "W002/video/front/happy/level_2/003.mp4": "no_audio"},
    }


def compose_preprocess(overrides: list[str], output_dir: Path) -> DictConfig:
    """Compose ``conf/preprocess.yaml`` as the CLI would, with Hydra's run folder under ``output_dir``."""
    return compose_app("preprocess", overrides, output_dir)


# HDTF: in-process, Whisper states cached. MEAD: two spawned workers, no Whisper states (the datamodule
# computes them), so both code paths run.
SMALL = ["data.size=64", "audio=whisper_random_tiny", "progress=false"]
PREPROCESS = {
    "hdtf": ["data=hdtf", *SMALL, "workers=1", "whisper=true"],
    "mead": ["data=mead", *SMALL, "workers=2", "whisper=false"],
}
BUILDERS = {"hdtf": make_hdtf_tree, "mead": make_mead_tree}


@dataclass(frozen=True)
class BuiltCache:
    """A fake raw tree, the cache preprocessing made of it, and what the tree should give."""

    raw: Path
    root: Path
    expected: dict[str, Any]
    manifest: dict[str, Any]


_BUILT: dict[tuple[str, str], BuiltCache] = {}


def built_cache(factory: pytest.TempPathFactory, dataset: str) -> BuiltCache:
    """Build the fake ``dataset`` tree and preprocess it, once per test session (shared by test modules)."""
    key = (str(factory.getbasetemp()), dataset)
    if key not in _BUILT:
        base = factory.mktemp(dataset)
        expected = BUILDERS[dataset](base / "raw")
        overrides = [*PREPROCESS[dataset], f"raw_dir={base / 'raw'}", f"out_dir={base / 'cache'}"]
        manifest = preprocess(compose_preprocess(overrides, base))
        GlobalHydra.instance().clear()
        _BUILT[key] = BuiltCache(base / "raw", base / "cache", expected, manifest)
    return _BUILT[key]
