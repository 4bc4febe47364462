"""Face crops and tracking: padding at the frame edge, interpolated and smoothed boxes, Haar detection."""

import numpy as np
import pytest

from readlit.data.preprocess.crop import box_inside, crop_square
from readlit.data.preprocess.decode import frame_schedule, read_timeline
from readlit.data.preprocess.detect import HaarFaceDetector
from readlit.data.preprocess.face_track import FaceTracker
from readlit.data.preprocess.sources import Box, SkipClip
from readlit.data.synthetic import make_identity, make_session, render_frames
from readlit.errors import ConfigError
from tests.fake_raw import write_media

IMAGE = np.arange(40 * 60 * 3, dtype=np.uint32).reshape(40, 60, 3).astype(np.uint8)


def test_crop_inside_the_frame_is_a_plain_slice():
    np.testing.assert_array_equal(crop_square(IMAGE, Box(30, 20, 16), 16), IMAGE[12:28, 22:38])


def test_crop_past_the_edge_repeats_the_edge_pixels():
    crop = crop_square(IMAGE, Box(4, 20, 16), 16)  # 4 columns left of the frame
    np.testing.assert_array_equal(crop[:, 4:], IMAGE[12:28, 0:12])
    np.testing.assert_array_equal(crop[:, :4], np.repeat(IMAGE[12:28, :1], 4, axis=1))
    assert box_inside(Box(30, 20, 40), 60, 40) and not box_inside(Box(4, 20, 16), 60, 40)


def _bright_square(image: np.ndarray) -> np.ndarray:
    """A stand-in detector: the bounding box of the bright pixels."""
    rows, cols = np.nonzero(image[..., 0] > 128)
    if rows.size == 0:
        return np.zeros((0, 4), np.float32)
    return np.array([[cols.min(), rows.min(), np.ptp(cols) + 1, np.ptp(rows) + 1]], np.float32)


def _moving_square(tmp_path, frames: int = 50, hidden_from: int | None = None):
    video = np.full((frames, 64, 96, 3), 20, np.uint8)
    for i in range(frames):
        if hidden_from is None or i < hidden_from:
            x = 10 + i  # one pixel per frame to the right
            video[i, 20:40, x : x + 20] = 230
    path = write_media(tmp_path / "square.mp4", video, 25, None, 16000)
    timeline = read_timeline(path)
    return path, timeline, frame_schedule(timeline, 25, None, None)[1]


def test_tracker_interpolates_between_detections_and_scales_the_box(tmp_path):
    path, timeline, index = _moving_square(tmp_path)
    boxes = FaceTracker(_bright_square, every=7, scale=1.5, smooth_frames=5).track(path, timeline, index)
    assert len(boxes) == 50
    cx = np.array([box.cx for box in boxes])
    # a linear motion survives interpolation and smoothing, except where the average meets the ends
    np.testing.assert_allclose(cx[3:-3], 20 + np.arange(3, 47), atol=0.6)
    np.testing.assert_allclose([box.cy for box in boxes], 30, atol=0.6)
    np.testing.assert_allclose([box.side for box in boxes], 30, atol=1.0)


def test_tracker_skips_a_clip_with_too_few_faces(tmp_path):
    path, timeline, index = _moving_square(tmp_path, hidden_from=20)
    with pytest.raises(SkipClip) as caught:
        FaceTracker(_bright_square, every=5, min_found=0.5).track(path, timeline, index)
    assert caught.value.reason == "no_face" and "a face in 4 of 11 sampled frames" in caught.value.detail


def test_haar_finds_a_synthetic_face_and_no_face_in_a_blank_image():
    face = make_identity(0, 3)
    image = render_frames(face, make_session(0, face, 0, 1), 0, 1, (128, 160))[0]
    detector = HaarFaceDetector()
    faces = detector(image)
    assert len(faces) == 1
    x, y, w, h = faces[0]
    assert abs(x + w / 2 - 80) < 10 and abs(y + h / 2 - 64) < 16 and 30 < w < 100
    assert len(detector(np.full((128, 160, 3), 90, np.uint8))) == 0


def test_haar_refuses_an_unknown_cascade():
    with pytest.raises(ConfigError, match="^cascade='nope.xml' is not a Haar cascade"):
        HaarFaceDetector("nope.xml")
