"""Preprocessing fake raw HDTF and MEAD downloads: the cache's contents, alignment, splits, resume, CLI."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra.core.global_hydra import GlobalHydra

import readlit.preprocess as preprocess_cli
from readlit.data import cache
from readlit.data.preprocess import pipeline
from readlit.data.synthetic import frame_loudness
from readlit.errors import ConfigError
from readlit.preprocess import preprocess
from readlit.utils.atomic import is_leftover, temp_path
from tests.fake_raw import PREPROCESS, built_cache, compose_preprocess

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def hdtf(tmp_path_factory):
    return built_cache(tmp_path_factory, "hdtf")


@pytest.fixture(scope="module")
def mead(tmp_path_factory):
    return built_cache(tmp_path_factory, "mead")


def _check_cache(built, dataset: str, whisper: bool) -> None:
    manifest = built.manifest
    assert (manifest["dataset"], manifest["fps"], manifest["size"], manifest["sample_rate"]) == (
        dataset, 25, 64, 16000)
    assert {key: clip["frames"] for key, clip in manifest["clips"].items()} == built.expected["frames"]
    assert {item["source"]: item["reason"] for item in manifest["skipped"]} == built.expected["skipped"]
    assert manifest["counts"]["skipped"] == len(built.expected["skipped"])
    assert manifest["counts"]["frames"] == sum(built.expected["frames"].values())
    assert json.loads((built.root / cache.MANIFEST).read_text()) == manifest
    for clip_id, frames in built.expected["frames"].items():
        folder = cache.clip_dir(built.root, clip_id)
        video, audio = np.load(folder / cache.FRAMES), np.load(folder / cache.AUDIO)
        assert video.shape == (frames, 64, 64, 3) and video.dtype == np.uint8
        assert audio.shape == (frames * 640,) and audio.dtype == np.float32
        assert 0.02 < np.sqrt(np.mean(audio**2)) < 0.5  # real speech, not silence or clipping
        assert (folder / cache.WHISPER).is_file() == whisper
        if whisper:
            assert np.load(folder / cache.WHISPER).shape == (frames * 2, 3, 64)  # 50 Hz tokens, L=3, Da=64
    assert not [path for path in (built.root / cache.CLIPS).iterdir() if is_leftover(path)]
    folders = sorted(path.name for path in (built.root / cache.CLIPS).iterdir())
    assert folders == sorted(built.expected["frames"])


def test_hdtf_cache_has_the_right_clips_sizes_and_skips(hdtf):
    _check_cache(hdtf, "hdtf", whisper=True)
    clips = hdtf.manifest["clips"]
    # the whole source video was cut at its annotated spans; split clips were used whole
    assert (clips["RadioC_0"]["start"], clips["RadioC_1"]["start"]) == (1.0, 3.0)
    assert clips["RadioB_0"]["source"] == "videos/RadioB_0.mp4" and clips["RadioB_0"]["crop"] == "window"


def test_mead_cache_has_the_right_clips_sizes_and_skips(mead):
    _check_cache(mead, "mead", whisper=False)
    clip = mead.manifest["clips"]["W002_happy_level2_001"]
    assert clip["tags"] == {"actor": "W002", "emotion": "happy", "level": 2, "sentence": 1}
    assert clip["audio_source"] == "W002/audio/happy/level_2/001.m4a" and clip["crop"] == "tracked"


def _mouth_opening(frames: np.ndarray) -> np.ndarray:
    """Dark mouth-interior pixels in the lower middle of each synthetic face crop, per frame."""
    height, width = frames.shape[1:3]
    region = frames[:, int(0.55 * height) : int(0.9 * height), int(0.3 * width) : int(0.7 * width)]
    luma = region.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return (luma < 70).sum(axis=(1, 2)).astype(np.float32)


def _lagged_correlation(video: np.ndarray, audio: np.ndarray, lag: int) -> float:
    """Correlation of video[i + lag] with audio[i]."""
    a = video[max(0, lag) : len(video) + min(0, lag)]
    b = audio[max(0, -lag) : len(audio) + min(0, -lag)]
    return float(np.corrcoef(a, b)[0, 1])


@pytest.mark.parametrize("dataset", ["hdtf", "mead"])
def test_audio_and_video_are_aligned_within_one_frame(tmp_path_factory, dataset):
    """The synthetic mouth opens with the voice: the best match of cached mouth and loudness is at lag 0.

    This covers 30 fps video, 44.1 kHz stereo and separate m4a audio, and spans cut out of a longer video.
    """
    built = built_cache(tmp_path_factory, dataset)
    for clip_id in built.expected["frames"]:
        folder = cache.clip_dir(built.root, clip_id)
        frames = np.load(folder / cache.FRAMES)
        mouth = _mouth_opening(frames)
        loudness = frame_loudness(np.load(folder / cache.AUDIO), len(frames))
        scores = {lag: _lagged_correlation(mouth, loudness, lag) for lag in range(-3, 4)}
        assert max(scores, key=scores.get) == 0, (clip_id, scores)
        assert scores[0] > 0.9, (clip_id, scores)


@pytest.mark.parametrize("dataset", ["hdtf", "mead"])
def test_every_clip_is_in_exactly_one_split(tmp_path_factory, dataset):
    manifest = built_cache(tmp_path_factory, dataset).manifest
    splits = manifest["splits"]
    assert set(splits) == {"train", "test"} and all(splits.values())
    named = [clip for members in splits.values() for clip in members]
    assert len(named) == len(set(named)) and set(named) == set(manifest["clips"])


def _tree_bytes(root: Path) -> dict[str, bytes]:
    files = sorted(path for path in root.rglob("*") if path.is_file())
    return {str(path.relative_to(root)): path.read_bytes() for path in files}


def _without_config(manifest: dict) -> dict:
    return {key: value for key, value in manifest.items() if key != "config"}


def test_an_interrupted_run_resumes_to_the_same_cache(hdtf, tmp_path, monkeypatch):
    overrides = [*PREPROCESS["hdtf"], f"raw_dir={hdtf.raw}", f"out_dir={tmp_path / 'cache'}"]
    real_process = pipeline.process_clip
    calls = []

    def crash_on_third_clip(source):
        calls.append(source.clip_id)
        if len(calls) == 3:
            # a crash in the middle of writing a clip: its temporary folder stays behind
            temp_path(cache.clip_dir(tmp_path / "cache", source.clip_id)).mkdir(parents=True)
            raise KeyboardInterrupt
        return real_process(source)

    monkeypatch.setattr(pipeline, "process_clip", crash_on_third_clip)
    with pytest.raises(KeyboardInterrupt):
        preprocess(compose_preprocess(overrides, tmp_path))
    assert not (tmp_path / "cache" / cache.MANIFEST).exists()
    finished = sorted(path.name for path in (tmp_path / "cache" / cache.CLIPS).glob("Radio*"))
    assert finished == ["RadioA_0", "RadioB_0"]
    assert [path for path in (tmp_path / "cache" / cache.CLIPS).iterdir() if is_leftover(path)]

    monkeypatch.setattr(pipeline, "process_clip", real_process)
    made = []
    monkeypatch.setattr(preprocess_cli, "build_cache", _recording(pipeline.build_cache, made))
    manifest = preprocess(compose_preprocess(overrides, tmp_path))
    GlobalHydra.instance().clear()
    assert (made[0].reused, made[0].made, made[0].skipped, made[0].removed_tmp) == (2, 2, 4, 1)
    assert _without_config(manifest) == _without_config(hdtf.manifest)
    ours, reference = _tree_bytes(tmp_path / "cache"), _tree_bytes(hdtf.root)
    assert ours.keys() == reference.keys()
    assert [name for name in ours if name != cache.MANIFEST and ours[name] != reference[name]] == []


def _recording(build_cache, stats: list):
    def wrapped(*args, **kwargs):
        manifest, run_stats = build_cache(*args, **kwargs)
        stats.append(run_stats)
        return manifest, run_stats
    return wrapped


def test_a_cache_made_with_other_settings_is_refused(hdtf, tmp_path):
    before = _tree_bytes(hdtf.root)
    overrides = [*PREPROCESS["hdtf"], f"raw_dir={hdtf.raw}", f"out_dir={hdtf.root}", "data.size=32"]
    with pytest.raises(ConfigError, match=r"out_dir=.* was made with \{'size': 64.*preprocess into a new folder"):
        preprocess(compose_preprocess(overrides, tmp_path))
    GlobalHydra.instance().clear()
    assert _tree_bytes(hdtf.root) == before


def _run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "readlit.preprocess", f"paths.root_dir={tmp_path}", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(("args", "expected"), [
    (["data=hdtf", "raw_dir=/nonexistent/HDTF"], "raw_dir=/nonexistent/HDTF is not a folder"),
    (["data=synthetic", "raw_dir=/tmp"], "has no raw layout to preprocess; use data=hdtf or data=mead"),
])
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, args, expected):
    result = _run_cli(tmp_path, *args, f"out_dir={tmp_path / 'cache'}", "audio=whisper_random_tiny")
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and expected in errors[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "cache").exists() and not list(tmp_path.glob("logs/*/runs/*"))


def test_cli_preprocesses_a_download(hdtf, tmp_path):
    """`python -m readlit.preprocess` end to end, on metadata that lists one clip."""
    raw = tmp_path / "raw"
    (raw / "HDTF_dataset").mkdir(parents=True)
    (raw / "HDTF_dataset" / "RD_crop_wh.txt").write_text("RadioA_0.mp4 24 112 8 112\n")
    (raw / "RadioA_0.mp4").write_bytes((hdtf.raw / "videos" / "RadioA_0.mp4").read_bytes())
    result = _run_cli(tmp_path, "data=hdtf", f"raw_dir={raw}", f"out_dir={tmp_path / 'cache'}", "workers=1",
                      "whisper=false", "data.size=64")
    assert result.returncode == 0, result.stderr[-2000:]
    manifest = json.loads((tmp_path / "cache" / cache.MANIFEST).read_text())
    assert manifest["clips"]["RadioA_0"]["frames"] == 65 and manifest["config"]["raw_dir"] == str(raw)
    reference = np.load(cache.clip_dir(hdtf.root, "RadioA_0") / cache.FRAMES)
    ours = np.load(cache.clip_dir(tmp_path / "cache", "RadioA_0") / cache.FRAMES)
    np.testing.assert_array_equal(ours, reference)
