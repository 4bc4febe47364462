"""S3FD for the tracked mode of Sync-C/D: loading, priors, box coding, NMS, pixel boxes."""

import numpy as np
import pytest
import torch
from einops import rearrange

from readlit.errors import CheckpointError
from readlit.eval.networks import s3fd as S


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return S.S3FD().eval()


def test_checkpoint_round_trip_and_wrong_keys(net, tmp_path):
    path = tmp_path / "sfd_face.pth"
    torch.save(net.state_dict(), path)
    loaded = S.load_s3fd(path)
    for key, value in net.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)
    assert {"vgg.0.weight", "vgg.33.bias", "L2Norm3_3.weight", "extras.3.weight", "conf.0.weight"} <= set(
        net.state_dict())
    assert net.state_dict()["conf.0.weight"].shape[0] == 4 and net.state_dict()["conf.1.weight"].shape[0] == 2
    bad = {k.replace("vgg.", "features."): v for k, v in net.state_dict().items()}
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="does not match the s3fd network.*missing keys"):
        S.load_s3fd(tmp_path / "bad.pth")


@pytest.mark.parametrize("size", [(128, 128), (100, 140)])
def test_prior_count_and_shapes(net, size):
    with torch.no_grad():
        loc, conf, maps = net(torch.randn(1, 3, *size))
    # conv3_3 after two floor pools; conv4_3 after the ceil pool; conv5_3 and fc7 after floor pools; then two
    # stride-2 convs with padding 1 (ceil).
    expect, (h, w) = [], size
    for op in (lambda x: x // 4, lambda x: -(-x // 2), lambda x: x // 2, lambda x: x // 2,
               lambda x: -(-x // 2), lambda x: -(-x // 2)):
        h, w = op(h), op(w)
        expect.append((h, w))
    assert maps == expect
    count = sum(a * b for a, b in expect)
    priors = S.prior_boxes(size, maps)
    assert loc.shape == (1, count, 4) and conf.shape == (1, count, 2) and priors.shape == (count, 4)
    torch.testing.assert_close(priors[0], torch.tensor([2 / size[1], 2 / size[0], 16 / size[1], 16 / size[0]]))
    torch.testing.assert_close(priors[-1, 2:], torch.tensor([512 / size[1], 512 / size[0]]))


def test_decode_inverts_encode():
    priors = torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.1, 0.3, 0.05, 0.05], [0.7, 0.2, 0.4, 0.4]])
    boxes = torch.tensor([[0.35, 0.42, 0.61, 0.66], [0.08, 0.27, 0.13, 0.34], [0.4, 0.0, 1.0, 0.5]])
    torch.testing.assert_close(S.decode(S.encode(boxes, priors), priors), boxes)
    torch.testing.assert_close(S.decode(torch.zeros(3, 4), priors)[0], torch.tensor([0.4, 0.4, 0.6, 0.6]))


def test_select_thresholds_and_suppresses():
    boxes = torch.tensor([[0.10, 0.10, 0.30, 0.30],   # best face
                          [0.11, 0.10, 0.31, 0.30],   # overlaps the best: suppressed by NMS 0.3
                          [0.60, 0.60, 0.80, 0.80],   # a second face
                          [0.40, 0.00, 0.50, 0.10],   # below conf_th
                          [0.00, 0.50, 0.10, 0.60]])  # below the 0.05 floor
    scores = torch.tensor([0.97, 0.96, 0.92, 0.5, 0.01])
    out = S.select(boxes, scores, conf_th=0.9)
    torch.testing.assert_close(out, torch.cat([boxes[[0, 2]], scores[[0, 2], None]], 1))
    assert len(S.select(boxes, scores, conf_th=0.4)) == 3


def _tied_pairs(pairs: int = 40) -> torch.Tensor:
    """Boxes 2k and 2k + 1 overlap at IoU 0.6 (x shifted by a quarter side); different pairs do not overlap."""
    left = torch.tensor([[20.0 * k, 0.0, 20.0 * k + 10.0, 10.0] for k in range(pairs)])
    right = left + torch.tensor([2.5, 0.0, 2.5, 0.0])
    return rearrange(torch.stack([left, right], 1), "k two c -> (k two) c") / 1000.0


def test_exactly_tied_scores_keep_the_lower_index():
    boxes = _tied_pairs()
    scores = torch.full((80,), 0.95)
    assert S.stable_nms(boxes, scores, S.NMS_IOU).tolist() == list(range(0, 80, 2))
    out = S.select(boxes, scores, conf_th=0.9)
    assert torch.equal(out, torch.cat([boxes[0::2], scores[0::2, None]], 1))
    flipped = boxes.flip(0)  # same boxes, other indices: now the right box of every pair comes first
    assert torch.equal(S.select(flipped, scores, conf_th=0.9)[:, :4], flipped[0::2])
    scores[1] = 0.96  # a higher score still wins over a lower index, and comes first
    assert S.stable_nms(boxes, scores, S.NMS_IOU).tolist() == [1, *range(2, 80, 2)]


class _OneFace(torch.nn.Module):
    """Stand-in network: every prior is background except one at a chosen index, with zero offsets."""

    def __init__(self, index: int):
        super().__init__()
        self.index = index

    def forward(self, x):
        h, w = x.shape[2:]
        sizes = [(h // 4, w // 4), (h // 8, w // 8), (h // 16, w // 16), (h // 32, w // 32), (h // 64, w // 64),
                 (h // 128, w // 128)]
        count = sum(a * b for a, b in sizes)
        conf = torch.zeros(1, count, 2)
        conf[0, :, 0] = 10.0
        conf[0, self.index] = torch.tensor([0.0, 10.0])
        return torch.zeros(1, count, 4), conf, sizes


def test_detect_frame_returns_pixel_boxes():
    frame = np.zeros((256, 512, 3), np.uint8)  # at scale 0.25 the input is 64 × 128; first map 16 × 32
    dets = S.detect_frame(_OneFace(index=3 * 32 + 5), frame)
    # Prior (row 3, col 5) on stride 4: centre (22, 14) and side 16 in input pixels, ×4 in frame pixels.
    np.testing.assert_allclose(dets[:, :4], [[(22 - 8) * 4, (14 - 8) * 4, (22 + 8) * 4, (14 + 8) * 4]], atol=1e-3)
    assert dets[0, 4] > 0.99
