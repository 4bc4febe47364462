"""The clip cache: atomic writes, leftovers of interrupted runs, manifest checks, memory-mapped reads."""

import json

import numpy as np
import pytest

from readlit.data import cache
from readlit.data.manifest import write_manifest
from readlit.errors import DataError
from readlit.utils.atomic import temp_path


def test_save_npy_atomic_leaves_the_old_file_or_the_new_one(tmp_path, monkeypatch):
    path = cache.save_npy_atomic(tmp_path / "a.npy", np.arange(5, dtype=np.int16))
    np.testing.assert_array_equal(np.load(path), np.arange(5))

    def broken_save(handle, array):
        handle.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(np, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        cache.save_npy_atomic(path, np.zeros(3))
    np.testing.assert_array_equal(np.load(path), np.arange(5))
    assert [p.name for p in tmp_path.iterdir()] == ["a.npy"]


def test_remove_tmp_dirs_removes_only_unfinished_clips(tmp_path):
    finished = cache.clip_dir(tmp_path, "clip_a")
    finished.mkdir(parents=True)
    cache.write_meta(finished, {"clip_id": "clip_a"})
    for clip_id in ("clip_b", "clip_c"):
        unfinished = temp_path(cache.clip_dir(tmp_path, clip_id))
        unfinished.mkdir(parents=True)
        (unfinished / "frames.npy").write_bytes(b"partial")
    assert cache.remove_tmp_dirs(tmp_path) == 2
    assert [p.name for p in (tmp_path / cache.CLIPS).iterdir()] == ["clip_a"]
    assert cache.read_meta(finished) == {"clip_id": "clip_a"}
    assert cache.read_meta(cache.clip_dir(tmp_path, "clip_b")) is None
    assert cache.remove_tmp_dirs(tmp_path / "nowhere") == 0


@pytest.mark.parametrize(("content", "match"), [
    (None, r"^root=.* holds no cache \(.*manifest.json missing\)"),
    ("{not json", "is not valid JSON"),
    (json.dumps({"format": 99}), "has cache format 99, this readlit reads 1"),
])
def test_read_manifest_refuses_what_it_cannot_use(tmp_path, content, match):
    if content is not None:
        (tmp_path / cache.MANIFEST).write_text(content)
    with pytest.raises(DataError, match=match):
        cache.read_manifest(tmp_path)


def test_clip_cache_reads_memory_mapped_arrays(tmp_path):
    folder = cache.clip_dir(tmp_path, "c0")
    folder.mkdir(parents=True)
    frames = np.random.default_rng(0).integers(0, 255, (9, 8, 8, 3), dtype=np.uint8)
    cache.save_npy_atomic(folder / cache.FRAMES, frames)
    cache.save_npy_atomic(folder / cache.AUDIO, np.linspace(-1, 1, 9 * 640, dtype=np.float32))
    write_manifest(tmp_path, {"format": cache.FORMAT_VERSION, "clips": {"c0": {"frames": 9}}})
    clips = cache.ClipCache(tmp_path)
    assert isinstance(clips.frames("c0"), np.memmap)
    np.testing.assert_array_equal(clips.frames("c0")[2:5], frames[2:5])
    assert clips.audio("c0").shape == (9 * 640,) and clips.whisper("c0") is None
    (folder / cache.WHISPER).write_bytes(b"not an npy file")
    with pytest.raises(DataError, match="the cache is damaged"):
        clips.whisper("c0")


def test_only_one_writer_at_a_time(tmp_path):
    with cache.writer_lock(tmp_path):
        with pytest.raises(DataError, match="another preprocessing run is writing out_dir="):
            with cache.writer_lock(tmp_path):
                pass
    with cache.writer_lock(tmp_path):  # released when the holder is done
        pass
