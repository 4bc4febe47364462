"""I3D: the PyTorch port's architecture and checkpoint layout."""

import pytest
import torch

from readlit.errors import CheckpointError
from readlit.eval.networks.i3d import TF_BN_EPS, InceptionI3d, load_i3d


@pytest.fixture(scope="module")
def i3d_file(tmp_path_factory):
    torch.manual_seed(0)
    net = InceptionI3d(TF_BN_EPS)
    path = tmp_path_factory.mktemp("w") / "i3d_pretrained_400.pt"
    torch.save(net.state_dict(), path)
    return path, net


def test_state_dict_keys_follow_the_pytorch_port(i3d_file):
    keys = set(i3d_file[1].state_dict())
    for key in ("Conv3d_1a_7x7.conv3d.weight", "Conv3d_1a_7x7.bn.running_mean", "Mixed_5c.b3b.conv3d.weight",
                "Mixed_4b.b1b.bn.bias", "logits.conv3d.weight", "logits.conv3d.bias"):
        assert key in keys
    assert sum(v.numel() for k, v in i3d_file[1].state_dict().items() if "num_batches" not in k) > 12_000_000


def test_loads_random_copy_and_gives_400_logits(i3d_file):
    path, net = i3d_file
    loaded = load_i3d(path, TF_BN_EPS)
    key = "Mixed_4f.b0.conv3d.weight"
    torch.testing.assert_close(loaded.state_dict()[key], net.state_dict()[key])
    with torch.no_grad():
        assert loaded(torch.rand(1, 3, 16, 224, 224) * 2 - 1).shape == (1, 400)


def test_rejects_wrong_keys(i3d_file, tmp_path):
    state = {f"module.{k}": v for k, v in i3d_file[1].state_dict().items()}
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="does not match the i3d_pretrained_400 network"):
        load_i3d(tmp_path / "bad.pt", TF_BN_EPS)
