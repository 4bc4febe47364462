"""SyncNet v2: the network's shapes and its checkpoint layout."""

import pytest
import torch

from readlit.errors import CheckpointError
from readlit.eval.networks.syncnet import SyncNetV2, load_syncnet


def test_syncnet_shapes():
    net = SyncNetV2().eval()
    with torch.no_grad():
        assert net.forward_aud(torch.randn(2, 1, 13, 20)).shape == (2, 1024)
        assert net.forward_lip(torch.rand(1, 3, 5, 224, 224) * 255).shape == (1, 1024)


def test_checkpoint_round_trip_and_wrong_keys(tmp_path):
    torch.manual_seed(0)
    net = SyncNetV2()
    path = tmp_path / "syncnet_v2.model"
    torch.save(net.state_dict(), path)
    loaded = load_syncnet(path)
    for key, value in net.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)
    bad = {f"module.{k}": v for k, v in net.state_dict().items()}
    torch.save(bad, tmp_path / "bad.model")
    with pytest.raises(CheckpointError, match="does not match the syncnet network.*missing keys"):
        load_syncnet(tmp_path / "bad.model")
