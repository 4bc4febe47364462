"""The 1 + r·k frame rule shared by the VAE, the SpeechAE, the sampler's bookkeeping and every datamodule.

LTX-Video's causal VAE maps F = 1 + r·k pixel frames to f = 1 + k latent frames (r = 8 for LTX-Video): latent
frame 0 is pixel frame 0 alone, latent frame j >= 1 covers the r pixel frames r·(j - 1) + 1 .. r·j. Any other F
is silently truncated by the VAE, so readlit refuses it up front. Every count derived from the rule comes from
here; ``ratio`` is r.
"""

import math

from readlit import checks
from readlit.errors import ConfigError

# LTX-Video's temporal compression, the r of every 1 + r·k count unless a VAE says otherwise.
RATIO = 8


def latent_frames(num_frames: int, ratio: int = RATIO) -> int:
    """f = 1 + (F - 1) // r: the latent frames of F pixel frames (of the longest 1 + r·k prefix when F is not)."""
    return 1 + (num_frames - 1) // ratio


def pixel_frames(num_latent: int, ratio: int = RATIO) -> int:
    """F = 1 + r·(f - 1): the pixel frames f latent frames decode to."""
    return 1 + ratio * (num_latent - 1)


def longest_prefix(num_frames: int, ratio: int = RATIO) -> int:
    """The longest 1 + r·k frames within ``num_frames`` (>= 1) frames."""
    return pixel_frames(latent_frames(num_frames, ratio), ratio)


def latents_covering(num_frames: int, ratio: int = RATIO) -> int:
    """1 + ceil((F - 1) / r): the fewest latent frames that decode to at least F (>= 1) pixel frames."""
    return 1 + math.ceil((num_frames - 1) / ratio)


def pixel_span(latent: int, ratio: int = RATIO) -> slice:
    """The pixel frames latent frame ``latent`` stands for: frame 0 alone for j = 0, r·(j-1)+1 .. r·j after."""
    if latent == 0:
        return slice(0, 1)
    return slice(ratio * (latent - 1) + 1, ratio * latent + 1)


def window_pixels(start: int, stop: int, ratio: int = RATIO) -> slice:
    """The pixel frames of the whole video that latent frames start..stop-1, decoded on their own, give back.

    The window's first latent frame is decoded as a lone first frame, the last pixel frame of its span (r·start);
    each later one gives its r frames. So the window decodes to pixel frames r·start .. r·(stop - 1).
    """
    return slice(ratio * start, pixel_frames(stop, ratio))


def is_valid(num_frames: int, ratio: int = RATIO) -> bool:
    """Whether F = 1 + r·k for some k >= 0."""
    return num_frames >= 1 and (num_frames - 1) % ratio == 0


def check_frame_count(num_frames: int, ratio: int = RATIO, key: str = "num_frames") -> int:
    """Return the latent frame count for ``num_frames`` or raise a ConfigError naming ``key``."""
    checks.integer(key, num_frames)
    if not is_valid(num_frames, ratio):
        lower = longest_prefix(max(num_frames, 1), ratio)
        raise ConfigError(
            f"{key}={num_frames} is not 1+{ratio}k frames (the VAE maps 1+{ratio}k frames to 1+k latent "
            f"frames); use {lower} or {lower + ratio}"
        )
    return latent_frames(num_frames, ratio)
