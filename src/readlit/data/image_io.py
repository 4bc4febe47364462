"""Reference images for generation: any common file -> a square RGB tensor at the model's size.

PIL opens PNG, JPEG, WebP, BMP, TIFF, GIF (first frame) ...; palette, greyscale, RGBA (composited on white,
as a viewer shows it) and CMYK images become RGB, EXIF rotation is applied, the largest centred square is
cropped and resized with an antialiased filter.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from PIL import Image, ImageOps, UnidentifiedImageError

from readlit.errors import DataError


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB; transparency is composited on white."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def load_image(path: str | Path, size: int) -> torch.Tensor:
    """Read ``path`` as the reference frame: (3, size, size) float in [-1, 1].

    Raises:
        DataError: the file is missing or is not an image PIL can read.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"image={path}: no such file")
    try:
        with Image.open(path) as opened:
            opened.seek(0)
            image = to_rgb(ImageOps.exif_transpose(opened))
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise DataError(f"image={path} is not a readable image ({type(err).__name__}: {err})") from err
    side = min(image.size)
    if side < 8:
        raise DataError(f"image={path} is {image.size[0]}x{image.size[1]} pixels; the face needs at least 8x8")
    left, top = (image.size[0] - side) // 2, (image.size[1] - side) // 2
    square = image.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.LANCZOS)
    pixels = torch.from_numpy(np.asarray(square, dtype=np.float32) / 127.5 - 1.0)
    return rearrange(pixels, "h w c -> c h w")
