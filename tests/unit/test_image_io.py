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


def _grey_ramp() -> np.ndarray:
    return np.linspace(0, 255, 16 * 16).reshape(16, 16)


@pytest.mark.parametrize(("name", "make"), [
    ("I;16 png", lambda grey, path: Image.fromarray(np.round(grey * 257).astype(np.uint16)).save(path)),
    ("I tiff", lambda grey, path: Image.fromarray(np.round(grey * 257).astype(np.int32), mode="I").save(path)),
    ("F tiff 0..1", lambda grey, path: Image.fromarray((grey / 255).astype(np.float32), mode="F").save(path)),
    ("F tiff 0..255", lambda grey, path: Image.fromarray(grey.astype(np.float32), mode="F").save(path)),
    ("LA png", lambda grey, path: Image.fromarray(np.round(grey).astype(np.uint8)).convert("LA").save(path)),
])
def test_wide_and_grey_modes_load_at_their_true_brightness(tmp_path, name, make):
    """A 16-bit, 32-bit or float greyscale portrait reads as the same picture in 8 bits (issue #19: a uniform 16-bit
    32768 image loaded as white, a float 0.5 image as black)."""
    grey = _grey_ramp()
    path = tmp_path / ("face.tif" if "tiff" in name else "face.png")
    make(grey, path)
    loaded = load_image(path, 16)
    expected = torch.from_numpy(np.round(grey).astype(np.float32) / 127.5 - 1.0)
    assert torch.allclose(loaded, expected.expand(3, 16, 16), atol=1.01 / 127.5)


def test_a_uniform_mid_grey_16_bit_image_is_mid_grey(tmp_path):
    Image.fromarray(np.full((16, 16), 32768, np.uint16)).save(tmp_path / "grey.png")
    assert torch.equal(load_image(tmp_path / "grey.png", 8), torch.full((3, 8, 8), 128.0) / 127.5 - 1.0)


def test_16_bit_rgb_png_loads_its_high_bytes(tmp_path):
    import struct
    import zlib

    pixels = (np.arange(8 * 8 * 3).reshape(8, 8, 3) * 257 * 2).astype(">u2")
    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    (tmp_path / "deep.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 16, 2, 0,
                                                                                       0, 0))
                                        + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    loaded = load_image(tmp_path / "deep.png", 8)
    expected = torch.from_numpy((pixels.astype(np.float64) / 257).astype(np.float32) / 127.5 - 1.0)
    assert torch.allclose(loaded, expected.permute(2, 0, 1), atol=1.01 / 127.5)


@pytest.mark.parametrize(("values", "reason"), [
    (np.full((16, 16), -1.0, np.float32), "negative"),
    (np.full((16, 16), np.nan, np.float32), "NaN"),
    (np.full((16, 16), 300.0, np.float32), "past the 255"),
])
def test_float_pixels_no_range_reads_are_refused(tmp_path, values, reason):
    Image.fromarray(values, mode="F").save(tmp_path / "odd.tif")
    with pytest.raises(DataError, match=reason):
        load_image(tmp_path / "odd.tif", 8)


def test_a_decompression_bomb_is_refused_unread(tmp_path):
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    (tmp_path / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    with pytest.raises(DataError, match=r"bomb.png is too large to be a portrait"):
        load_image(tmp_path / "bomb.png", 8)
