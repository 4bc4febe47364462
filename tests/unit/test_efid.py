"""E-FID: the metric end to end on a random Deep3DFaceRecon, and its missing weights."""

import numpy as np
import pytest
import scipy.io
import torch

from readlit.errors import CheckpointError
from readlit.eval.metrics.efid import EFID
from readlit.eval.networks.deep3d import Deep3DRecon


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("w")
    torch.manual_seed(0)
    net = Deep3DRecon().eval()
    torch.save({"net_recon": net.state_dict(), "epoch": 20}, root / "epoch_20.pth")
    rng = np.random.default_rng(0)
    scipy.io.savemat(root / "similarity_Lm3D_all.mat", {"lm": rng.normal(size=(68, 3))})
    return root, net


def test_efid_metric_end_to_end(files):
    root, _ = files
    metric = EFID(weights_dir=root)
    frames = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    lm = np.tile(np.array([[22, 26], [42, 26], [32, 36], [24, 46], [40, 46]], float), (3, 1, 1))
    metric.update((frames, lm), real=True)
    metric.update((frames, lm), real=False)
    assert abs(float(metric.compute())) < 1e-6


def test_efid_missing_weights_is_reported(tmp_path):
    with pytest.raises(CheckpointError, match="epoch_20.pth"):
        EFID(weights_dir=tmp_path)
