"""Face tracking for the tracked mode of Sync-C/D: linking, interpolation, smoothing, crops."""

import numpy as np

from readlit.eval.networks import facetrack as T


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
