"""Which raw files make which clips: HDTF metadata and MEAD folders (file names only, nothing decoded)."""

from pathlib import Path

import pytest

from readlit.data.preprocess.hdtf_layout import HDTFLayout
from readlit.data.preprocess.mead_layout import MEADLayout
from readlit.data.preprocess.sources import Box
from readlit.errors import DataError


def _touch(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")


@pytest.fixture
def hdtf_raw(tmp_path: Path) -> Path:
    meta = tmp_path / "HDTF_dataset"
    meta.mkdir()
    (meta / "RD_crop_wh.txt").write_text(
        "Radio11_0.mp4 412 599 0 599\nRadio11_1.mp4 557 478 0 478\nRadio34_0.mp4 10 100 20 80\n\n")
    (meta / "WRA_annotion_time.txt").write_text(
        "Radio11.mp4 00:30-01:00 01:30-02:30\nRadio34.mp4 00:02-00:30 01:00:10-01:00:20 5-7.5\n")
    _touch(tmp_path, "a/Radio11.mp4", "b/Radio11_1.mp4", "a/Radio34.mp4", "b/Unknown_0.mp4")
    return tmp_path


def test_hdtf_spans_windows_and_split_clips(hdtf_raw):
    clips, skipped = HDTFLayout().discover(hdtf_raw)
    by_id = {clip.clip_id: clip for clip in clips}
    assert list(by_id) == ["Radio11_0", "Radio11_1", "Radio34_0"]
    assert (by_id["Radio11_0"].start, by_id["Radio11_0"].end) == (30.0, 60.0)
    assert by_id["Radio11_0"].box == Box(412 + 599 / 2, 599 / 2, 599)
    # the split clip file wins over the second span of the source video
    assert by_id["Radio11_1"].video == hdtf_raw / "b/Radio11_1.mp4" and by_id["Radio11_1"].start is None
    # a non-square window becomes the square of its larger side, on the same centre
    assert by_id["Radio34_0"].box == Box(60.0, 60.0, 100.0) and by_id["Radio34_0"].group == "Radio34"
    assert {(s.source, s.clip_id, s.reason) for s in skipped} == {
        ("a/Radio34.mp4", "Radio34_1", "no_crop_window"), ("a/Radio34.mp4", "Radio34_2", "no_crop_window"),
        ("b/Unknown_0.mp4", "Unknown_0", "no_crop_window")}


def test_hdtf_without_crop_windows_tracks_every_video(hdtf_raw):
    clips, skipped = HDTFLayout(crop_windows=False).discover(hdtf_raw)
    ids = ["Radio11_0", "Radio11_1", "Radio34_0", "Radio34_1", "Radio34_2", "Unknown_0"]
    assert [clip.clip_id for clip in clips] == ids
    assert all(clip.box is None for clip in clips) and not skipped
    spans = {clip.clip_id: (clip.start, clip.end) for clip in clips}
    assert spans["Radio34_1"] == (3610.0, 3620.0) and spans["Radio34_2"] == (5.0, 7.5)


def test_hdtf_refuses_missing_or_broken_metadata(tmp_path, hdtf_raw):
    _touch(tmp_path / "bare", "x.mp4")
    with pytest.raises(DataError, match="^raw_dir=.* has no \\*_crop_wh.txt .*raw.hdtf.crop_windows=false"):
        HDTFLayout().discover(tmp_path / "bare")
    (hdtf_raw / "HDTF_dataset" / "RD_crop_wh.txt").write_text("Radio11_0.mp4 412 599 0\n")
    with pytest.raises(DataError, match="RD_crop_wh.txt:1: cannot read 'Radio11_0.mp4 412 599 0'"):
        HDTFLayout().discover(hdtf_raw)
    (hdtf_raw / "HDTF_dataset" / "RD_crop_wh.txt").write_text("Radio11_0.mp4 412 599 0 599\n")
    (hdtf_raw / "HDTF_dataset" / "WRA_annotion_time.txt").write_text("Radio11.mp4 01:00-00:30\n")
    with pytest.raises(DataError, match="WRA_annotion_time.txt:1: .*ends before it starts"):
        HDTFLayout().discover(hdtf_raw)


@pytest.fixture
def mead_raw(tmp_path: Path) -> Path:
    _touch(tmp_path, "M003/video/front/angry/level_1/001.mp4", "M003/audio/angry/level_1/001.m4a",
           "M003/video/front/angry/level_1/002.mp4", "M003/video/left_30/angry/level_1/001.mp4",
           "W009/video/front/neutral/level_1/010.mp4", "W009/audio/neutral/level_1/010.m4a",
           "W009/video/front/neutral/level_x/011.mp4")
    return tmp_path


def test_mead_clips_tags_and_audio_files(mead_raw):
    clips, skipped = MEADLayout().discover(mead_raw)
    by_id = {clip.clip_id: clip for clip in clips}
    assert list(by_id) == ["M003_angry_level1_001", "M003_angry_level1_002", "W009_neutral_level1_010"]
    assert by_id["M003_angry_level1_001"].audio == mead_raw / "M003/audio/angry/level_1/001.m4a"
    assert by_id["M003_angry_level1_002"].audio is None  # no m4a: the video's own track is tried
    assert by_id["W009_neutral_level1_010"].tags == {"actor": "W009", "emotion": "neutral", "level": 1,
                                                      "sentence": 10}
    assert [(s.source, s.reason) for s in skipped] == [
        ("W009/video/front/neutral/level_x/011.mp4", "bad_name")]


def test_mead_filters_and_refuses_an_empty_folder(mead_raw, tmp_path):
    clips, _ = MEADLayout(emotions=["neutral"]).discover(mead_raw)
    assert [clip.clip_id for clip in clips] == ["W009_neutral_level1_010"]
    clips, _ = MEADLayout(view="left_30", actors=["M003"]).discover(mead_raw)
    assert [clip.clip_id for clip in clips] == ["M003_angry_level1_001"]
    with pytest.raises(DataError, match="^raw_dir=.* holds no MEAD videos .*video/front/"):
        MEADLayout().discover(tmp_path / "M003" / "audio")
