"""S3FD and face tracking for the tracked mode of Sync-C/D: loading, priors, box coding, NMS, tracks, crops."""

import numpy as np
import pytest
import torch

from readlit.errors import CheckpointError
from readlit.eval import facetrack as T
from readlit.eval import s3fd as S
from readlit.eval import syncnet


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


def _moving_box(frame: int) -> np.ndarray:
    return np.array([100 + 2 * frame, 50 + frame, 220 + 2 * frame, 170 + frame, 0.99])


def test_tracking_bridges_a_missed_frame_and_smooths():
    dets = [_moving_box(f)[None] for f in range(30)]
    dets[12] = np.zeros((0, 5))
    tracks = T.track_faces(dets, min_track=20)
    assert len(tracks) == 1
    track = tracks[0]
    np.testing.assert_array_equal(track.frames, np.arange(30))
    np.testing.assert_allclose(track.boxes[12], _moving_box(12)[:4])  # linear motion: interpolation is exact
    half, cx, cy = T.smooth(track).T
    np.testing.assert_allclose(half[6:-6], 60)  # median of a constant size, away from the zero-padded ends
    np.testing.assert_allclose(cx[6:-6], 160 + 2 * np.arange(6, 24))  # the median keeps a linear ramp
    np.testing.assert_allclose(cy[6:-6], 110 + np.arange(6, 24))


def test_tracking_separates_two_faces_and_drops_short_or_small_ones():
    left = np.array([10, 10, 130, 130, 0.99])
    right = np.array([300, 20, 420, 140, 0.98])
    dets = [np.stack([left, right]) for _ in range(30)]
    tracks = T.track_faces(dets, min_track=20)
    assert len(tracks) == 2
    starts = sorted(t.boxes[0, 0] for t in tracks)
    assert starts == [10, 300]
    assert T.track_faces(dets, min_track=30) == []  # needs more than min_track detections
    small = [np.array([[0, 0, 50, 50, 0.99]]) for _ in range(30)]
    assert T.track_faces(small, min_track=20) == []  # mean side below min_face_size


def test_short_track_smoothing_keeps_its_boxes():
    track = T.Track(np.arange(6), np.tile([100.0, 60.0, 180.0, 140.0], (6, 1)))
    np.testing.assert_allclose(T.smooth(track), np.tile([40.0, 140.0, 100.0], (6, 1)))


def test_track_ends_after_too_many_missed_frames():
    box = np.array([[100, 100, 220, 220, 0.99]])
    dets = [box] * 10 + [np.zeros((0, 5))] * 26 + [box] * 10
    chains = T.link(dets)
    assert [len(c) for c in chains] == [10, 10]


def test_crops_land_on_the_known_face_box():
    video = np.full((20, 240, 320, 3), 30, np.uint8)
    video[:, 60:140, 100:180] = (200, 40, 90)  # the "face": box x 100..180, y 60..140
    track = T.Track(np.arange(20), np.tile([100.0, 60.0, 180.0, 140.0], (20, 1)))
    pad, top, bottom, left, right = T.crop_window(40, 140, 100)
    assert (top - pad, bottom - pad, left - pad, right - pad) == (60, 172, 84, 196)
    crops = T.crop_track(video, track)
    assert crops.shape == (20, 224, 224, 3)
    np.testing.assert_array_equal(crops[0], crops[10])  # zero-padded median of a constant box is that box
    middle = crops[10].astype(int)  # 112 px crop -> 224: ×2; face rows 0..160, columns 32..192
    np.testing.assert_array_equal(middle[10:150, 42:182].reshape(-1, 3).min(0), [200, 40, 90])
    assert (middle[175:, :, 0] == 30).all() and (middle[:, :22, 0] == 30).all()


def test_tracked_scoring_uses_each_track_and_its_audio(monkeypatch):
    frames = np.zeros((40, 240, 320, 3), np.uint8)
    box = np.array([[100.0, 60.0, 220.0, 180.0, 0.99]])
    monkeypatch.setattr(S, "detect", lambda net, video, **_: [box] * 10 + [np.zeros((0, 5))] * 5 + [box] * 25)
    seen = []

    class _Net:
        def forward_lip(self, x):
            seen.append(tuple(x.shape))
            return torch.zeros(len(x), 4)

        def forward_aud(self, x):
            return torch.ones(len(x), 4)

    audio = np.zeros(40 * 640)
    scores = syncnet.score_video(_Net(), frames, audio, mode="tracked", detector=object(), min_track=20)
    assert seen and all(s[2:] == (5, 224, 224) for s in seen)
    assert set(scores) == {"sync_c", "sync_d", "offset"}
    monkeypatch.setattr(S, "detect", lambda net, video, **_: [np.zeros((0, 5))] * 40)
    assert syncnet.score_video(_Net(), frames, audio, mode="tracked", detector=object(), min_track=20) is None


def test_tracked_metric_reports_missing_detector_weights(tmp_path):
    torch.save(syncnet.SyncNetV2().state_dict(), tmp_path / "syncnet_v2.model")
    with pytest.raises(CheckpointError, match="sfd_face.pth"):
        syncnet.SyncScore(weights_dir=tmp_path, mode="tracked")
    syncnet.SyncScore(weights_dir=tmp_path, mode="precropped")  # the detector is only needed when tracking
