"""The video frame rule shared by the VAE, the SpeechAE and every datamodule.

LTX-Video's causal VAE maps F = 1 + 8k pixel frames to f = 1 + k latent frames: the first frame is
encoded alone, every later latent frame covers 8 pixel frames. Any other F is silently truncated by
the VAE, so readlit refuses it up front.
"""

from readlit.errors import ConfigError


def check_frame_count(num_frames: int, ratio: int = 8, key: str = "data.num_frames") -> int:
    """Return the latent frame count for ``num_frames`` or raise a ConfigError naming ``key``."""
    if num_frames < 1 or (num_frames - 1) % ratio != 0:
        lower = max(1, 1 + ratio * ((num_frames - 1) // ratio))
        raise ConfigError(
            f"{key}={num_frames} is not 1+{ratio}k frames (the VAE maps 1+{ratio}k frames to 1+k latent "
            f"frames); use {lower} or {lower + ratio}"
        )
    return latent_frames(num_frames, ratio)


def latent_frames(num_frames: int, ratio: int = 8) -> int:
    """Latent frames f for F = 1 + ratio·k pixel frames."""
    return 1 + (num_frames - 1) // ratio
