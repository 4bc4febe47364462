"""Atomic writes: the target holds the old content or the new one, never a part, and no temporary file stays."""

import os
from pathlib import Path

import pytest

from readlit.utils import atomic


def test_atomic_path_renames_the_new_content_onto_the_target(tmp_path):
    target = tmp_path / "sub" / "out.bin"
    with atomic.atomic_path(target) as tmp:
        assert tmp.parent == target.parent and not target.exists()
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in target.parent.iterdir()] == ["out.bin"]


def test_an_error_inside_keeps_the_old_target_and_leaves_no_temp(tmp_path):
    target = atomic.atomic_write_text(tmp_path / "out.txt", "old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_temp_names_are_unique_per_writer_and_recognisable(tmp_path):
    target = tmp_path / "shard-00000.safetensors"
    first, second = atomic.temp_path(target), atomic.temp_path(target)
    assert first != second and first.parent == tmp_path
    assert first.name.startswith(f".shard-00000.safetensors.{os.getpid()}-") and first.name.endswith(".tmp")
    assert atomic.is_leftover(first) and atomic.is_leftover(tmp_path / ".old.dead.tmp")
    assert not atomic.is_leftover(target) and not atomic.is_leftover(tmp_path / "a.tmp")


def test_remove_leftovers_deletes_only_temporary_files_and_folders(tmp_path):
    keep = [atomic.atomic_write_text(tmp_path / "a.json", "{}"), tmp_path / ".lock", tmp_path / "clips"]
    keep[1].write_text("")
    keep[2].mkdir()
    atomic.temp_path(tmp_path / "b.npy").write_bytes(b"half")
    folder = atomic.temp_path(tmp_path / "clip")
    folder.mkdir()
    (folder / "frames.npy").write_bytes(b"half")
    assert atomic.remove_leftovers(tmp_path) == 2
    assert sorted(tmp_path.iterdir()) == sorted(keep)
    assert atomic.remove_leftovers(tmp_path / "nowhere") == 0


def test_atomic_folder_replaces_the_whole_folder(tmp_path):
    target = tmp_path / "vae"
    target.mkdir()
    (target / "stale.bin").write_bytes(b"old")
    with atomic.atomic_folder(target) as tmp:
        (tmp / "config.json").write_text("{}")
    assert [p.name for p in target.iterdir()] == ["config.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["vae"]


def test_atomic_folder_keeps_the_old_folder_when_writing_or_swapping_fails(tmp_path, monkeypatch):
    target = tmp_path / "vae"
    target.mkdir()
    (target / "weights.bin").write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic.atomic_folder(target) as tmp:
            (tmp / "weights.bin").write_bytes(b"half")
            raise RuntimeError("disk full")
    assert (target / "weights.bin").read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["vae"]

    real_rename, failed = Path.rename, []

    def fails_onto_target(self, new):
        if Path(new) == target and not failed:  # the new folder's rename fails, putting the old one back works
            failed.append(self)
            raise OSError("rename failed")
        return real_rename(self, new)

    monkeypatch.setattr(Path, "rename", fails_onto_target)
    with pytest.raises(OSError, match="rename failed"):
        with atomic.atomic_folder(target) as tmp:
            (tmp / "weights.bin").write_bytes(b"new")
    monkeypatch.undo()
    assert failed and (target / "weights.bin").read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["vae"]


def test_text_bytes_and_json_conveniences_write_exact_bytes(tmp_path):
    assert atomic.atomic_write_bytes(tmp_path / "b", b"\x00\xff").read_bytes() == b"\x00\xff"
    assert atomic.atomic_write_text(tmp_path / "t", "ä\n").read_bytes() == "ä\n".encode()
    written = atomic.atomic_write_json(tmp_path / "j.json", {"b": [1, 2], "a": 1})
    assert written.read_text() == '{\n "a": 1,\n "b": [\n  1,\n  2\n ]\n}'
    assert atomic.atomic_write_json(tmp_path / "k.json", {"b": 1, "a": 2}, indent=None).read_text() == (
        '{"a": 2, "b": 1}')
