"""The batch contract's types: every item type is its batch type without B, and the checker catches breaches."""

from typing import Annotated, get_args, get_origin

import pytest
import torch

from readlit.data import batch
from tests.contract import assert_follows, field_types

PAIRS = [(batch.ClipItem, batch.ClipBatch), (batch.SyntheticClipItem, batch.SyntheticClipBatch),
         (batch.LatentItem, batch.LatentBatch)]


@pytest.mark.parametrize(("item", "collated"), PAIRS)
def test_a_batch_type_is_its_item_type_collated(item, collated):
    assert (item.__required_keys__, item.__optional_keys__) == (collated.__required_keys__,
                                                                  collated.__optional_keys__)
    items, batches = field_types(item), field_types(collated)
    for key, hint in items.items():
        if get_origin(hint) is Annotated:
            _, shape, dtype = get_args(hint)
            assert get_args(batches[key])[1:] == (f"B {shape}", dtype), key
        else:  # default collation: ints become an int64 tensor, strings a list
            assert batches[key] == {int: Annotated[torch.Tensor, "B", torch.int64], str: list[str]}[hint], key


def test_the_pixel_and_latent_contracts_share_their_common_fields():
    clip, latent = field_types(batch.SyntheticClipBatch), field_types(batch.LatentBatch)
    # the past frames (model.motion_context) are encoded on the fly, so only pixel batches carry them
    pixel_only = {"video", "ref", "past_video", "past_audio_windows"}
    assert set(clip) - set(latent) == pixel_only and set(latent) - set(clip) == {"latents", "ref_latent"}
    assert all(clip[key] == latent[key] for key in set(clip) & set(latent))


def clip_item() -> dict:
    return {"audio": torch.zeros(9 * 640), "fps": 25, "clip_id": "c_f00000", "video": torch.zeros(3, 9, 8, 8),
            "ref": torch.zeros(3, 8, 8)}


def test_assert_follows_accepts_a_conforming_item_and_returns_its_sizes():
    assert assert_follows(clip_item(), batch.ClipItem, {"F": 9}) == {"A": 9 * 640, "F": 9, "H": 8, "W": 8}


@pytest.mark.parametrize(("change", "message"), [
    ({"fps": None}, r"ClipItem: missing \['fps'\]"),
    ({"mouth_open": torch.zeros(9)}, r"ClipItem: undeclared \['mouth_open'\]"),
    ({"fps": torch.tensor(25)}, "fps: Tensor, declared int"),
    ({"audio": torch.zeros(9 * 640, dtype=torch.float64)}, "audio: .* torch.float64"),
    ({"video": torch.zeros(3, 9, 8)}, r"video: shape \(3, 9, 8\) is not \(3 F H W\)"),
    ({"video": torch.zeros(3, 17, 8, 8)}, r"video: F = 17 in \(3, 17, 8, 8\), expected 9"),
    ({"ref": torch.zeros(3, 8, 4)}, r"ref: W = 4 in \(3, 8, 4\), expected 8"),
    ({"ref": torch.zeros(1, 8, 8)}, r"ref: 3 = 1"),
])
def test_assert_follows_catches_every_breach(change, message):
    item = {**clip_item(), **change}
    item = {key: value for key, value in item.items() if value is not None}
    with pytest.raises(AssertionError, match=message):
        assert_follows(item, batch.ClipItem, {"F": 9})
