"""Reference images for generation: any common file -> a square RGB tensor at the model's size.

PIL opens PNG, JPEG, WebP, BMP, TIFF, GIF (first frame) ...; every mode a portrait may come in is read to its
true brightness: palette, greyscale and bilevel images, RGBA and LA (composited on white, as a viewer shows it),
CMYK, 16-bit greyscale (``I;16``: 0..65535), 32-bit integer greyscale holding 16-bit values (``I``), and float
greyscale (``F``: 0..1, or 0..255 when its values go past 1). Values that fit none of these ranges (negative, NaN,
integers past 16 bits) are refused rather than guessed. EXIF rotation is applied, the largest centred square is
cropped and resized with an antialiased filter. An image larger than PIL's decompression-bomb limit is refused
before it is decoded.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from PIL import Image, ImageOps, UnidentifiedImageError

from readlit.errors import DataError

# Greyscale modes wider than 8 bits, and the value that is white in each (None: decided from the values).
_WIDE = {"I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535, "I": 65535, "F": None}


def _wide_to_l(image: Image.Image) -> Image.Image:
    """A 16-bit, 32-bit or float greyscale image as 8-bit greyscale of the same brightness."""
    values = np.asarray(image, dtype=np.float64)
    if not np.all(np.isfinite(values)) or values.min(initial=0.0) < 0:
        raise ValueError(f"{image.mode} pixels outside [0, inf) (negative, NaN or infinite values)")
    white = _WIDE[image.mode]
    if white is None:
        white = 1.0 if values.max(initial=0.0) <= 1.0 else 255.0
    if values.max(initial=0.0) > white:
        raise ValueError(f"{image.mode} pixels up to {values.max():.0f}, past the {white:.0f} this mode can be read to")
    return Image.fromarray(np.round(values * (255.0 / white)).astype(np.uint8), mode="L")


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB at the same brightness; transparency is composited on white."""
    if image.mode in _WIDE:
        image = _wide_to_l(image)
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _open(path: Path) -> Image.Image:
    """The first frame of ``path`` as RGB; a size past PIL's decompression-bomb limit is refused unread."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as opened:
            opened.seek(0)
            return to_rgb(ImageOps.exif_transpose(opened))


def load_image(path: str | Path, size: int) -> torch.Tensor:
    """Read ``path`` as the reference frame: (3, size, size) float in [-1, 1].

    Raises:
        DataError: the file is missing, is not an image PIL can read, is too large or too small, or holds pixel
            values no mode reads to a brightness; the message starts with the path.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        image = _open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise DataError(f"{path} is too large to be a portrait ({err}); scale it down first") from err
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise DataError(f"{path} is not a readable image ({type(err).__name__}: {err})") from err
    side = min(image.size)
    if side < 8:
        raise DataError(f"{path} is {image.size[0]}x{image.size[1]} pixels; the face needs at least 8x8")
    left, top = (image.size[0] - side) // 2, (image.size[1] - side) // 2
    square = image.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.LANCZOS)
    pixels = torch.from_numpy(np.asarray(square, dtype=np.float32) / 127.5 - 1.0)
    return rearrange(pixels, "h w c -> c h w")
