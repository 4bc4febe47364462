"""HDTF and MEAD datamodules on caches made from fake raw downloads: the batch contract and its numbers."""

import numpy as np
import pytest
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from readlit.data import cache
from readlit.data.av_base import frame_windows
from readlit.data.base import to_video
from readlit.data.batch import ClipBatch, ClipItem
from readlit.errors import ConfigError, DataError
from tests.contract import assert_follows
from tests.fake_raw import built_cache

SMALL = ["experiment=demo_speechae", "data.size=64", "data.num_frames=33", "data.clip_stride=8",
         "data.num_workers=0", "data.batch_size=4", "data.shuffle=false"]


def _datamodule(train_cfg, built, dataset: str, *overrides: str):
    cfg = train_cfg(*SMALL, f"data={dataset}", f"data.root={built.root}", *overrides)
    return instantiate(cfg.data)


def _set_up(datamodule_cfg: DictConfig) -> None:
    """Build and set up the datamodule; raise what its constructor raised (Hydra wraps that)."""
    try:
        datamodule = instantiate(datamodule_cfg)
    except InstantiationException as err:
        raise err.__cause__ from None
    datamodule.setup("fit")


def test_hdtf_batches_follow_the_contract(train_cfg, tmp_path_factory):
    built = built_cache(tmp_path_factory, "hdtf")
    datamodule = _datamodule(train_cfg, built, "hdtf", "data.return_video=true", "data.ref_distance=20")
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["video"].shape == (4, 3, 33, 64, 64) and batch["ref"].shape == (4, 3, 64, 64)
    assert batch["audio"].shape == (4, 33 * 640) and batch["audio_windows"].shape == (4, 33, 10 * 3, 64)
    assert batch["video"].min() >= -1 and batch["video"].max() <= 1 and batch["video"].std() > 0.1
    assert batch["fps"].tolist() == [25] * 4
    dataset = datamodule.datasets["train"]
    clip_id, start = dataset.windows[1]
    assert batch["clip_id"][1] == f"{clip_id}_f{start:05d}"
    folder = cache.clip_dir(built.root, clip_id)
    frames, audio = np.load(folder / cache.FRAMES), np.load(folder / cache.AUDIO)
    torch.testing.assert_close(batch["video"][1], to_video(frames[start : start + 33]))
    torch.testing.assert_close(batch["ref"][1], to_video(frames[(start + 16 + 20) % len(frames)][None])[:, 0])
    torch.testing.assert_close(batch["audio"][1], torch.from_numpy(audio[start * 640 : (start + 33) * 640]))
    # the windows read from the cached states are those of the front end run on the clip's audio
    frontend = datamodule.frontend
    expected = frontend.frame_windows(frontend.hidden(torch.from_numpy(audio)), 33, start)
    torch.testing.assert_close(batch["audio_windows"][1], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dataset", ["hdtf", "mead"])
def test_items_and_batches_have_exactly_the_contract_fields(train_cfg, tmp_path_factory, dataset):
    datamodule = _datamodule(train_cfg, built_cache(tmp_path_factory, dataset), dataset, "data.return_video=true")
    datamodule.setup("fit")
    sizes = dict(F=33, H=64, W=64, Hw=30, Da=64, samples=33 * 640)
    item_sizes = assert_follows(datamodule.datasets["train"][1], ClipItem, sizes)
    batch, count = next(iter(datamodule.train_dataloader())), min(4, len(datamodule.datasets["train"]))
    assert assert_follows(batch, ClipBatch, sizes | {"B": count}) == item_sizes | {"B": count}
    assert set(batch) == ClipBatch.__required_keys__ | ClipBatch.__optional_keys__  # video and a front end: all


def test_every_clip_window_is_used_once_per_split(train_cfg, tmp_path_factory):
    built = built_cache(tmp_path_factory, "hdtf")
    datamodule = _datamodule(train_cfg, built, "hdtf")
    datamodule.setup(None)
    for stage, split in (("train", "train"), ("test", "test")):
        windows = datamodule.datasets[stage].windows
        clips = built.manifest["splits"][split]
        expected = [(clip, start) for clip in clips
                    for start in range(0, built.manifest["clips"][clip]["frames"] - 32, 8)]
        assert windows == expected


def test_windows_cut_from_a_slice_equal_the_whole(train_cfg, tmp_path_factory):
    """frame_windows reads only the tokens a window needs, and gives the front end's own windows."""
    datamodule = _datamodule(train_cfg, built_cache(tmp_path_factory, "hdtf"), "hdtf")
    datamodule.setup("validate")
    frontend = datamodule.frontend
    hidden = torch.randn(137, 3, 64)
    for start in (0, 1, 2, 3, 17, 35):
        torch.testing.assert_close(frame_windows(frontend, hidden.numpy(), 33, start),
                                   frontend.frame_windows(hidden, 33, start))


def test_mead_computes_missing_whisper_states_and_filters_emotions(train_cfg, tmp_path_factory):
    built = built_cache(tmp_path_factory, "mead")
    emotion = {clip: meta["tags"]["emotion"] for clip, meta in built.manifest["clips"].items()}
    # two of the three emotions, chosen so that both splits keep a clip
    test_emotion = emotion[built.manifest["splits"]["test"][0]]
    kept = {test_emotion, next(emotion[clip] for clip in built.manifest["splits"]["train"]
                               if emotion[clip] != test_emotion)}
    datamodule = _datamodule(train_cfg, built, "mead", f"data.emotions=[{','.join(sorted(kept))}]")
    datamodule.setup(None)
    used = {clip for dataset in datamodule.datasets.values() for clip, _ in dataset.windows}
    assert len(kept) < len(set(emotion.values()))
    assert used == {clip for clip in emotion if emotion[clip] in kept}
    assert set(datamodule.hidden) == used  # computed at set-up: the cache holds no whisper.npy
    clip_id = sorted(used)[0]
    audio = torch.from_numpy(np.load(cache.clip_dir(built.root, clip_id) / cache.AUDIO))
    recomputed = datamodule.frontend.hidden(audio)
    torch.testing.assert_close(torch.from_numpy(datamodule.hidden[clip_id]), recomputed)
    item = next(item for item in (datamodule.datasets[s][0] for s in ("train", "test")) if item)
    assert item["audio_windows"].shape == (33, 30, 64)


def test_recomputed_and_cached_whisper_states_agree(train_cfg, tmp_path_factory):
    built = built_cache(tmp_path_factory, "hdtf")
    cached = _datamodule(train_cfg, built, "hdtf")
    fresh = _datamodule(train_cfg, built, "hdtf", "data.use_cached_whisper=false")
    for datamodule in (cached, fresh):
        datamodule.setup("test")
    assert not cached.hidden and set(fresh.hidden) == set(built.manifest["splits"]["test"])
    torch.testing.assert_close(cached.datasets["test"][0]["audio_windows"],
                               fresh.datasets["test"][0]["audio_windows"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("dataset", "overrides", "error", "match"), [
    ("hdtf", ["data.size=512"], ConfigError, "made with .*'size': 64.* set size=64 fps=25"),
    ("mead", [], ConfigError, "holds a hdtf cache, not mead; use data=hdtf"),
    ("hdtf", ["data.splits.val=val"], ConfigError, r"to a split of the cache \(\['test', 'train'\]\)"),
    ("hdtf", ["data.num_frames=121"], DataError, "num_frames=121: .* has no clip that long"),
])
def test_a_cache_that_does_not_fit_the_config_is_refused(train_cfg, tmp_path_factory, dataset, overrides,
                                                         error, match):
    root = built_cache(tmp_path_factory, "hdtf").root
    datamodule_cfg = train_cfg(*SMALL, f"data={dataset}", f"data.root={root}", *overrides).data
    with pytest.raises(error, match=match):
        _set_up(datamodule_cfg)


def test_a_missing_cache_says_how_to_make_one(train_cfg, tmp_path):
    cfg = train_cfg(*SMALL, "data=mead", f"data.root={tmp_path / 'none'}")
    with pytest.raises(DataError, match="root=.* holds no MEAD cache.*readlit.preprocess data=mead raw_dir="):
        _set_up(cfg.data)
