"""FID: torch-fidelity's Inception loaded from a local file through the real path; strict keys."""

import pytest
import torch
import torch_fidelity.feature_extractor_inceptionv3 as tfi

from readlit.errors import CheckpointError
from readlit.eval.metrics.fid import FID
from readlit.eval.networks.inception import load_inception


@pytest.fixture(scope="module")
def random_inception_file(tmp_path_factory):
    """A state dict of the exact architecture with untrained weights, saved like the real file."""
    patch = pytest.MonkeyPatch()
    patch.setattr(tfi, "load_state_dict_from_url", lambda *a, **k: {})
    patch.setattr(tfi.FeatureExtractorInceptionV3, "load_state_dict", lambda self, *a, **k: None)
    torch.manual_seed(0)
    net = tfi.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    patch.undo()
    path = tmp_path_factory.mktemp("w") / "weights-inception-2015-12-05-6726825d.pth"
    torch.save(net.state_dict(), path)
    return path, net.state_dict()


def test_loads_random_copy_through_the_real_path(random_inception_file):
    path, state = random_inception_file
    net = load_inception(path)
    for key, value in state.items():
        torch.testing.assert_close(net.state_dict()[key], value)


def test_rejects_wrong_keys_and_non_tensor_files(random_inception_file, tmp_path):
    _, state = random_inception_file
    torch.save({k.replace("Mixed", "Mix"): v for k, v in state.items()}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="does not match the FID Inception"):
        load_inception(tmp_path / "bad.pth")
    torch.save({"net": object()}, tmp_path / "pickle.pth")
    with pytest.raises(CheckpointError, match="not a readable weights file"):
        load_inception(tmp_path / "pickle.pth")


def test_fid_of_identical_sets_is_near_zero(random_inception_file):
    path, _ = random_inception_file
    gen = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8, generator=gen)
    fid = FID(weights=path)
    fid.update(frames, real=True)
    fid.update(frames, real=False)
    assert fid.real_count == 3 and fid.fake_count == 3
    assert abs(float(fid.compute())) < 1e-3


def test_fid_rejects_float_frames(random_inception_file):
    with pytest.raises(ValueError, match="uint8"):
        FID(weights=random_inception_file[0]).update(torch.rand(2, 3, 8, 8), real=True)
