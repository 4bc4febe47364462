"""The 1 + r·k frame rule: every derived count, with exact values."""

import pytest

from readlit import frames
from readlit.errors import ConfigError


@pytest.mark.parametrize(("num_frames", "ratio", "latent"), [
    (1, 8, 1), (9, 8, 2), (17, 8, 3), (121, 8, 16), (16, 8, 2), (8, 8, 1), (5, 2, 3), (6, 2, 3), (7, 4, 2),
])
def test_latent_frames(num_frames, ratio, latent):
    assert frames.latent_frames(num_frames, ratio) == latent


@pytest.mark.parametrize(("latent", "ratio", "pixels"), [(1, 8, 1), (2, 8, 9), (16, 8, 121), (3, 2, 5), (4, 4, 13)])
def test_pixel_frames_inverts_latent_frames(latent, ratio, pixels):
    assert frames.pixel_frames(latent, ratio) == pixels
    assert frames.latent_frames(pixels, ratio) == latent


@pytest.mark.parametrize(("num_frames", "ratio", "prefix"), [
    (1, 8, 1), (8, 8, 1), (9, 8, 9), (16, 8, 9), (17, 8, 17), (125, 8, 121), (128, 8, 121), (129, 8, 129),
    (6, 2, 5), (7, 3, 7),
])
def test_longest_prefix(num_frames, ratio, prefix):
    assert frames.longest_prefix(num_frames, ratio) == prefix


@pytest.mark.parametrize(("num_frames", "ratio", "latent"), [
    (1, 8, 1), (2, 8, 2), (9, 8, 2), (10, 8, 3), (25, 8, 4), (26, 8, 5), (4, 2, 3), (5, 2, 3),
])
def test_latents_covering_is_the_fewest_that_decode_to_enough_frames(num_frames, ratio, latent):
    assert frames.latents_covering(num_frames, ratio) == latent
    assert frames.pixel_frames(latent, ratio) >= num_frames > frames.pixel_frames(latent - 1, ratio)


def test_pixel_spans_tile_the_video_in_order():
    assert [frames.pixel_span(j) for j in range(4)] == [slice(0, 1), slice(1, 9), slice(9, 17), slice(17, 25)]
    assert [frames.pixel_span(j, 3) for j in range(3)] == [slice(0, 1), slice(1, 4), slice(4, 7)]
    assert frames.pixel_span(15).stop == frames.pixel_frames(16) == 121


@pytest.mark.parametrize(("start", "stop", "ratio", "pixels"), [
    (0, 1, 8, slice(0, 1)), (0, 4, 8, slice(0, 25)), (1, 4, 8, slice(8, 25)), (3, 7, 8, slice(24, 49)),
    (2, 3, 4, slice(8, 9)),
])
def test_window_pixels(start, stop, ratio, pixels):
    """A window's first latent frame decodes to the last pixel frame of its span, the others to their spans."""
    assert frames.window_pixels(start, stop, ratio) == pixels
    assert pixels.start == frames.pixel_span(start, ratio).stop - 1
    assert pixels.stop == frames.pixel_span(stop - 1, ratio).stop


@pytest.mark.parametrize(("num_frames", "ratio", "valid"), [
    (1, 8, True), (9, 8, True), (121, 8, True), (0, 8, False), (-7, 8, False), (8, 8, False), (10, 8, False),
    (3, 2, True), (4, 2, False),
])
def test_is_valid(num_frames, ratio, valid):
    assert frames.is_valid(num_frames, ratio) is valid


def test_check_frame_count_gives_latent_frames_or_the_two_nearest_counts():
    assert frames.check_frame_count(33) == 5
    assert frames.check_frame_count(7, ratio=2, key="x") == 4
    with pytest.raises(ConfigError, match=r"^num_frames=32 is not 1\+8k frames .*; use 25 or 33$"):
        frames.check_frame_count(32)
    with pytest.raises(ConfigError, match=r"^model.train_frames=0 is not 1\+4k frames .*; use 1 or 5$"):
        frames.check_frame_count(0, 4, key="model.train_frames")
    with pytest.raises(ConfigError, match=r"^k=-3 is not 1\+8k frames .*; use 1 or 9$"):
        frames.check_frame_count(-3, key="k")
