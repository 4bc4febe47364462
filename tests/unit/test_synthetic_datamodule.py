"""The synthetic datamodule: batch contract, identity splits, determinism, frame rule."""

import pytest
import torch

from readlit.audio import WhisperFrontEnd
from readlit.data.batch import SyntheticClipBatch, SyntheticClipItem
from readlit.data.synthetic import frame_loudness, make_identity
from readlit.data.synthetic_datamodule import SPLITS, SyntheticDataModule
from readlit.errors import ConfigError
from tests.contract import assert_follows

FRONTEND = dict(pretrained=None, window_tokens=10, hidden_states=2, dim=16, seed=0,
                random_config=dict(d_model=16, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=32,
                                   num_mel_bins=80, max_source_positions=1500, init_std=0.2))


def datamodule(**overrides) -> SyntheticDataModule:
    args = dict(seed=0, identities={"train": 3, "val": 2, "test": 2}, sessions_per_identity=1,
                session_seconds=2.0, num_frames=17, clip_stride=8, size=32, fps=25, sample_rate=16000,
                return_video=True, ref_distance=20, audio_frontend=lambda: WhisperFrontEnd(**FRONTEND),
                batch_size=2)
    return SyntheticDataModule(**(args | overrides))


def test_batch_contract():
    dm = datamodule()
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["video"].shape == (2, 3, 17, 32, 32) and batch["ref"].shape == (2, 3, 32, 32)
    assert -1.0 <= batch["video"].min() and batch["video"].max() <= 1.0
    assert batch["audio_windows"].shape == (2, 17, 20, 16)
    assert batch["audio"].shape == (2, 17 * 640) and batch["mouth_open"].shape == (2, 17)
    assert batch["fps"].tolist() == [25, 25] and len(batch["clip_id"]) == 2
    assert batch["identity"].tolist() == [int(c[2:6]) for c in batch["clip_id"]]
    assert batch["data_seed"].tolist() == [0, 0]


def test_items_name_their_drawn_face():
    dm = datamodule(seed=3, sessions_per_identity=2)
    dm.setup("test")
    dataset = dm.datasets["test"]
    identities = [dataset[i]["identity"] for i in range(len(dataset))]
    assert sorted(set(identities)) == dm.split_identities("test") == [5, 6]
    for index in range(len(dataset)):
        item = dataset[index]
        assert type(item["identity"]) is int and item["data_seed"] == 3
        assert item["clip_id"].startswith(f"id{item['identity']:04d}_")
        assert make_identity(item["data_seed"], item["identity"]) == dataset.identity(index)


@pytest.mark.parametrize("overrides", [{}, dict(return_video=False, audio_frontend=None)])
def test_items_and_batches_have_exactly_the_contract_fields(overrides):
    dm = datamodule(**overrides)
    dm.setup("fit")
    sizes = dict(F=17, H=32, W=32, Hw=20, Da=16, samples=17 * 640)
    item = dm.datasets["train"][1]
    batch = next(iter(dm.train_dataloader()))
    item_sizes = assert_follows(item, SyntheticClipItem, sizes)
    assert assert_follows(batch, SyntheticClipBatch, sizes | {"B": 2}) == item_sizes | {"B": 2}
    optional = {"audio_windows", "video", "ref", "mouth_mask"}
    assert optional & set(item) == optional & set(batch) == (set() if overrides else optional)


def test_clip_audio_and_mouth_come_from_the_same_span():
    dm = datamodule(return_video=False)
    dm.setup("test")
    item = dm.datasets["test"][1]
    loudness = torch.from_numpy(frame_loudness(item["audio"].numpy(), 17))
    assert torch.corrcoef(torch.stack([loudness, item["mouth_open"]]))[0, 1] > 0.8


def test_splits_are_disjoint_by_identity():
    dm = datamodule()
    ids = {split: set(dm.split_identities(split)) for split in SPLITS}
    assert ids == {"train": {0, 1, 2}, "val": {3, 4}, "test": {5, 6}}
    dm.setup()
    names = {split: {item["clip_id"].split("_")[0] for item in dm.datasets[split]} for split in SPLITS}
    assert not (names["train"] & names["val"]) and not (names["train"] & names["test"])


def test_same_seed_same_samples_other_seed_other_samples():
    a, b, c = datamodule(), datamodule(), datamodule(seed=1)
    for dm in (a, b, c):
        dm.setup("validate")
    first, again, other = (dm.datasets["val"][0] for dm in (a, b, c))
    for key in ("video", "ref", "audio", "audio_windows", "mouth_open"):
        assert torch.equal(first[key], again[key])
    assert not torch.equal(first["audio"], other["audio"])


@pytest.mark.parametrize("num_frames", [16, 32, 0])
def test_frame_rule_is_enforced(num_frames):
    with pytest.raises(ConfigError, match="is not 1\\+8k"):
        datamodule(num_frames=num_frames)


def test_bad_identity_split_is_refused():
    with pytest.raises(ConfigError, match="^identities="):
        datamodule(identities={"train": 3, "val": 0, "test": 1})
