"""Deep3DFaceRecon: the network and checkpoint layout, the 5-point alignment, the expression slice."""

import numpy as np
import pytest
import scipy.io
import torch

from readlit.errors import CheckpointError
from readlit.eval.networks.deep3d import EXPRESSION, Deep3DRecon, align_face, load_deep3d, load_lm3d, pos


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("w")
    torch.manual_seed(0)
    net = Deep3DRecon().eval()
    torch.save({"net_recon": net.state_dict(), "epoch": 20}, root / "epoch_20.pth")
    rng = np.random.default_rng(0)
    scipy.io.savemat(root / "similarity_Lm3D_all.mat", {"lm": rng.normal(size=(68, 3))})
    return root, net


def test_heads_give_257_with_64_expression(files):
    _, net = files
    assert [layer.out_channels for layer in net.final_layers] == [80, 64, 80, 3, 27, 2, 1]
    assert EXPRESSION == slice(80, 144)
    assert "backbone.layer4.2.conv3.weight" in net.state_dict() and "backbone.fc.weight" not in net.state_dict()
    with torch.no_grad():
        assert net(torch.rand(1, 3, 224, 224)).shape == (1, 257)


def test_checkpoint_round_trip_and_wrong_layout(files, tmp_path):
    root, net = files
    loaded = load_deep3d(root / "epoch_20.pth")
    torch.testing.assert_close(loaded.state_dict()["final_layers.1.weight"], net.state_dict()["final_layers.1.weight"])
    torch.save(net.state_dict(), tmp_path / "flat.pth")  # not under net_recon
    with pytest.raises(CheckpointError, match="no 'net_recon' entry"):
        load_deep3d(tmp_path / "flat.pth")
    torch.save({"net_recon": {f"x.{k}": v for k, v in net.state_dict().items()}}, tmp_path / "keys.pth")
    with pytest.raises(CheckpointError, match="does not match the deep3d network"):
        load_deep3d(tmp_path / "keys.pth")


def test_pos_recovers_a_known_scale_and_translation():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 3))
    xp = 3.0 * x[:, :2] + np.array([10.0, -4.0])
    t, s = pos(xp, x)
    np.testing.assert_allclose(t, [10.0, -4.0], atol=1e-9)
    assert s == pytest.approx(3.0)


def test_lm3d_five_points_from_68(files):
    lm = load_lm3d(files[0] / "similarity_Lm3D_all.mat")
    full = scipy.io.loadmat(files[0] / "similarity_Lm3D_all.mat")["lm"]
    assert lm.shape == (5, 3)
    np.testing.assert_allclose(lm[2], full[30])  # nose tip, third after the two eyes
    np.testing.assert_allclose(lm[0], full[[36, 39]].mean(0))


def test_alignment_centres_a_face_at_the_reference_scale():
    lm3d = np.array([[-0.3, 0.3, 0], [0.3, 0.3, 0], [0, 0, 0.3], [-0.25, -0.35, 0], [0.25, -0.35, 0]])
    # A face whose 3D landmarks project with scale 102 (the target scale) centred in a 224 image.
    points = lm3d[:, :2] * 102 + 111.5
    points[:, 1] = 223 - points[:, 1]  # image rows grow downwards
    image = np.zeros((224, 224, 3), np.uint8)
    image[100:124, 100:124] = 255
    aligned = align_face(image, points, lm3d)
    assert aligned.shape == (224, 224, 3)
    assert abs(int(aligned[112, 112, 0]) - 255) < 5 and aligned[5, 5, 0] == 0
