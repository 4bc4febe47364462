"""Reference images: every common mode and format becomes a square RGB tensor; bad files are one clear error."""

import numpy as np
import pytest
import torch
from PIL import Image

from readlit.data.image_io import load_image
from readlit.errors import DataError


def _picture(width: int = 40, height: int = 30) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.uint8)[None, :, None].repeat(height, 0)
    return Image.fromarray(np.concatenate([x, 255 - x, np.full_like(x, 90)], axis=2))


@pytest.mark.parametrize(("mode", "suffix"), [("RGB", "png"), ("RGB", "jpg"), ("L", "png"), ("RGBA", "png"),
                                              ("CMYK", "jpg"), ("P", "gif"), ("RGB", "webp"), ("RGB", "bmp")])
def test_any_mode_and_format_becomes_square_rgb(tmp_path, mode, suffix):
    path = tmp_path / f"face.{suffix}"
    _picture().convert(mode).save(path)
    image = load_image(path, 32)
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert -1.0 <= image.min() and image.max() <= 1.0


def test_centre_square_is_kept_and_transparency_is_white(tmp_path):
    rgba = np.zeros((20, 60, 4), np.uint8)
    rgba[:, 20:40] = (255, 0, 0, 255)  # an opaque red centre square, transparent sides
    Image.fromarray(rgba).save(tmp_path / "a.png")
    image = load_image(tmp_path / "a.png", 20)
    torch.testing.assert_close(image[:, 10, 10], torch.tensor([1.0, -1.0, -1.0]))
    Image.fromarray(rgba[:, :20]).save(tmp_path / "clear.png")
    assert bool((load_image(tmp_path / "clear.png", 8) == 1.0).all())


def test_missing_and_unreadable_files_are_one_clear_error(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_image(tmp_path / "none.png", 32)
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="is not a readable image"):
        load_image(tmp_path / "bad.png", 32)
