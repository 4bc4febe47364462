"""Cache manifests: byte-exact atomic writes, round trips, and one clear error for a missing or damaged file."""

import json

import pytest

from readlit.data import manifest
from readlit.errors import DataError

READ = dict(kind="cache", key="data.root", version=1, fix="make one with `python -m readlit.preprocess`")


def test_a_manifest_round_trips_with_the_cache_format_bytes(tmp_path):
    content = {"format": 1, "clips": {"b": {"frames": 9}, "a": {"frames": 17}}, "splits": {"train": ["a", "b"]}}
    path = manifest.write_manifest(tmp_path, content)
    assert path == tmp_path / "manifest.json"
    assert path.read_text() == json.dumps(content, indent=1, sort_keys=True)  # what existing caches hold
    assert manifest.read_manifest(tmp_path, **READ) == content
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_a_missing_manifest_names_the_file_the_key_and_the_fix(tmp_path):
    with pytest.raises(DataError) as err:
        manifest.read_manifest(tmp_path, **READ, why_missing="its build did not finish")
    assert str(err.value) == (f"data.root={tmp_path} holds no cache ({tmp_path / 'manifest.json'} missing: its build "
                              "did not finish); make one with `python -m readlit.preprocess`")


@pytest.mark.parametrize("content", [b"{not json", b'{"format": 1', b"\xff\xfe", b""])
def test_a_corrupt_manifest_gives_one_clear_error(tmp_path, content):
    (tmp_path / "manifest.json").write_bytes(content)
    with pytest.raises(DataError) as err:
        manifest.read_manifest(tmp_path, **READ)
    message = str(err.value)
    assert message.startswith(f"data.root={tmp_path}: {tmp_path / 'manifest.json'} is not valid JSON (")
    assert message.endswith("); make one with `python -m readlit.preprocess`") and "\n" not in message
    assert err.value.__cause__ is not None


@pytest.mark.parametrize(("content", "found"), [({"format": 2}, "2"), ({}, "None"), ([1, 2], "None")])
def test_another_format_is_refused(tmp_path, content, found):
    (tmp_path / "manifest.json").write_text(json.dumps(content))
    with pytest.raises(DataError, match=rf"manifest.json has cache format {found}, this readlit reads 1; make one "
                                        "with `python -m readlit.preprocess` into a new folder$"):
        manifest.read_manifest(tmp_path, **READ)
