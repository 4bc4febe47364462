"""The video latent space: LTX-Video's causal video VAE (diffusers ``AutoencoderKLLTXVideo``).

Every stage that works in latent space goes through :class:`VideoVAE`:

- **Weights**: a pretrained checkpoint (``vae.pretrained``: a Hugging Face id such as ``Lightricks/LTX-Video``
  with ``vae.subfolder=vae``, or a local folder written by ``save_pretrained``) or an explicit
  ``vae.architecture`` (``AutoencoderKLLTXVideo`` arguments) for a random start. Exactly one of the two: a
  missing checkpoint is an error, never a reason to start from random weights.
- **Frame rule**: F = 1 + r_t·k pixel frames map to f = 1 + k latent frames, and H, W must be multiples of
  the spatial ratio r_s (LTX 0.9.0: r_t = 8, r_s = 32). The VAE itself silently drops the frames and pixels
  that do not fit, so anything else is refused.
- **Normalisation**: latents handed out are ``(z - latents_mean) / latents_std`` per channel with the
  checkpoint's statistics (LTX's ``per_channel_statistics``); decoding undoes it.
- **Causality**: the encoder is causal, so latent frame 0 depends on pixel frame 0 alone and
  :meth:`VideoVAE.encode_image` of a reference image equals latent frame 0 of a video that starts with it.
- **Timestep-conditioned decoders** (LTX 0.9.1+) decode at ``decode_timestep`` after mixing
  ``decode_noise_scale`` of noise into the denormalised latents, as diffusers' LTX pipeline does.
- **Temporal tiles**: long latent sequences decode in windows of ``tile_frames`` latent frames plus
  ``tile_context`` frames of context on each side, keeping only each window's core, so the decoder's working
  memory is bounded by one window whatever the length.

Shape letters: B batch, C channels, F / f pixel / latent frames, H W pixel size, h w latent size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKLLTXVideo
from einops import rearrange

from readlit import checks
from readlit.errors import HUB_ID, CheckpointError, ConfigError, one_line
from readlit.frames import check_frame_count, pixel_frames, pixel_span, window_pixels
from readlit.utils.atomic import atomic_folder
from readlit.utils.fingerprint import state_fingerprint
from readlit.utils.plain import plain


@dataclass(frozen=True)
class TemporalTile:
    """One decoder window of a tiled decode.

    ``latents`` are the latent frames fed to the decoder (core plus context), ``keep`` the pixel frames of the
    window's output that belong to the core, and ``pixels`` where those frames go in the whole video.
    """

    latents: slice
    keep: slice
    pixels: slice


def temporal_tiles(num_latent: int, tile_frames: int, context: int, ratio: int) -> list[TemporalTile]:
    """Cut f = ``num_latent`` latent frames into cores of ``tile_frames`` with ``context`` frames each side.

    The decoder turns a window of latent frames s..e-1 into the pixel frames r·s .. r·(e-1)
    (:func:`~readlit.frames.window_pixels`), so the core a..b-1 is the pixel spans of its latent frames,
    r·(a-1)+1 .. r·(b-1) (from pixel 0 when a = 0). At least one context frame is needed: without it, a later
    core's first latent frame would be decoded as a lone first frame and the r - 1 pixel frames before it would
    be missing.
    """
    checks.integer("tile_frames", tile_frames)
    checks.integer("tile_context", context)
    if tile_frames < 1 or context < 1:
        name, value = ("tile_frames", tile_frames) if tile_frames < 1 else ("tile_context", context)
        raise ConfigError(f"{name}={value} must be at least 1")
    tiles = []
    for start in range(0, num_latent, tile_frames):
        stop = min(start + tile_frames, num_latent)
        first, last = max(0, start - context), min(num_latent, stop + context)
        pixels = slice(pixel_span(start, ratio).start, pixel_frames(stop, ratio))
        origin = window_pixels(first, last, ratio).start
        keep = slice(pixels.start - origin, pixels.stop - origin)
        tiles.append(TemporalTile(slice(first, last), keep, pixels))
    return tiles


class VideoVAE(torch.nn.Module):
    """LTX-Video VAE with the frame rule, latent normalisation, reference-image latents and tiled decoding.

    Args:
        pretrained: Hugging Face id or local ``save_pretrained`` folder (config key ``vae.pretrained``).
        subfolder: folder of the VAE inside ``pretrained`` (``vae`` in LTX pipeline repos), or None.
        architecture: ``AutoencoderKLLTXVideo`` arguments for a randomly initialised VAE (tests, the demo).
        frozen: no gradients and always in eval mode (every stage except the VAE stage).
        decode_timestep: decoder timestep of a timestep-conditioned decoder (LTX 0.9.1 recommends 0.05);
            must be None for a decoder without timestep conditioning.
        decode_noise_scale: share of noise mixed into the latents before a timestep-conditioned decode.
        tile_frames: latent frames per decoder window (the core); longer sequences decode in tiles.
        tile_context: latent frames of context on each side of a core (>= 1).
        logvar_init: with ``architecture``, start the encoder's log-variance at this value everywhere; a fresh
            LTX encoder starts near 0, so sampled latents would be swamped by unit noise.
        seed: seed of the random initialisation.
    """

    def __init__(
        self,
        pretrained: str | None = None,
        subfolder: str | None = None,
        architecture: dict[str, Any] | None = None,
        frozen: bool = True,
        decode_timestep: float | None = None,
        decode_noise_scale: float | None = None,
        tile_frames: int = 4,
        tile_context: int = 1,
        logvar_init: float | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if (pretrained is None) == (architecture is None):
            raise ConfigError(
                f"pretrained={pretrained!r}: give exactly one of pretrained (a Hugging Face id or a save_pretrained "
                f"folder) and architecture (a random start); got architecture={architecture!r}"
            )
        self._kwargs = dict(pretrained=_resolve_local(pretrained), subfolder=subfolder,
                            architecture=plain(architecture), decode_timestep=decode_timestep,
                            decode_noise_scale=decode_noise_scale, tile_frames=tile_frames,
                            tile_context=tile_context, logvar_init=logvar_init, seed=seed)
        if pretrained is not None:
            if logvar_init is not None:
                raise ConfigError(f"logvar_init={logvar_init} initialises a random VAE; set it to null with pretrained")
            self.model = load_pretrained(pretrained, subfolder)
        else:
            self.model = build_random(self._kwargs["architecture"], seed, logvar_init)
        temporal_tiles(1, tile_frames, tile_context, 1)  # validates the tiling keys up front
        self.tile_frames, self.tile_context = tile_frames, tile_context
        self.decode_timestep, self.decode_noise_scale = _check_decode_keys(
            self.model.config.timestep_conditioning, decode_timestep, decode_noise_scale
        )
        self.frozen = frozen
        self._fingerprint: str | None = None
        if frozen:
            self.requires_grad_(False)
            self.train(False)

    # ------------------------------------------------------------------------------------------ facts

    @property
    def latent_channels(self) -> int:
        return int(self.model.config.latent_channels)

    @property
    def spatial_ratio(self) -> int:
        return int(self.model.spatial_compression_ratio)

    @property
    def temporal_ratio(self) -> int:
        return int(self.model.temporal_compression_ratio)

    @property
    def config(self) -> dict[str, Any]:
        """The architecture as plain types (for checkpoint tags); rebuilds this VAE as ``architecture``."""
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in self.model.config.items() if not key.startswith("_")}

    def reference(self) -> dict[str, Any]:
        """The arguments that rebuild this VAE as a frozen codec (a checkpoint stores them, not the weights)."""
        return dict(self._kwargs)

    def fingerprint(self) -> str:
        """sha256 of the weights (names, shapes, values): a frozen VAE's identity, computed once."""
        if not self.frozen:
            return state_fingerprint(self)
        if self._fingerprint is None:
            self._fingerprint = state_fingerprint(self)
        return self._fingerprint

    def train(self, mode: bool = True) -> VideoVAE:
        """A frozen VAE stays in eval mode whatever ``mode`` is."""
        return super().train(mode and not self.frozen)

    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        """(C, f, h, w) of the latents of a (3, F, H, W) video; raises ConfigError if the video breaks the rule."""
        frames = check_frame_count(num_frames, self.temporal_ratio, key="the video's frame count F")
        ratio = self.spatial_ratio
        if height % ratio or width % ratio or min(height, width) < ratio:
            low = (max(height // ratio, 1) * ratio, max(width // ratio, 1) * ratio)
            raise ConfigError(
                f"the video's size {height}x{width} is not a multiple of the VAE's spatial compression {ratio} "
                f"(the VAE would silently drop the remainder); crop or resize to e.g. {low[0]}x{low[1]}"
            )
        return self.latent_channels, frames, height // ratio, width // ratio

    def check_video(self, video: torch.Tensor) -> None:
        """Refuse a video the VAE would silently truncate. video: (B, 3, F, H, W)."""
        channels = self.model.config.in_channels
        if video.ndim != 5 or video.shape[1] != channels:
            raise ConfigError(f"expected a video batch (B, {channels}, F, H, W), got shape {tuple(video.shape)}")
        self.latent_shape(*video.shape[2:])

    def check_latents(self, z: torch.Tensor) -> None:
        """z: (B, C, f, h, w) with C = latent channels."""
        if z.ndim != 5 or z.shape[1] != self.latent_channels:
            raise ConfigError(
                f"expected latents (B, {self.latent_channels}, f, h, w), got shape {tuple(z.shape)}"
            )

    # -------------------------------------------------------------------------------- normalisation

    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        """Raw encoder latents (B, C, f, h, w) -> per-channel standardised latents, same shape."""
        mean, std = self._stats(z)
        return (z - mean) * self.model.config.scaling_factor / std

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`normalize`; (B, C, f, h, w) -> (B, C, f, h, w)."""
        mean, std = self._stats(z)
        return z * std / self.model.config.scaling_factor + mean

    def _stats(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        as_channels = "c -> 1 c 1 1 1"
        mean = rearrange(self.model.latents_mean, as_channels).to(z)
        return mean, rearrange(self.model.latents_std, as_channels).to(z)

    @torch.no_grad()
    def set_latent_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Replace the per-channel statistics (C,) and (C,), e.g. after training the encoder."""
        self.model.latents_mean.copy_(mean)
        self.model.latents_std.copy_(std)

    # ------------------------------------------------------------------------------------- encoding

    def encode_moments(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance in the raw (unnormalised) latent space.

        Args:
            video: (B, 3, F, H, W) in [-1, 1], F = 1 + r_t·k, H and W multiples of r_s.

        Returns:
            mean, logvar: each (B, C, f, h, w).
        """
        self.check_video(video)
        posterior = self.model.encode(video.to(self.model.dtype)).latent_dist
        return posterior.mean, posterior.logvar

    def encode(self, video: torch.Tensor, sample: bool = False,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Video -> normalised latents.

        Args:
            video: (B, 3, F, H, W) in [-1, 1].
            sample: draw from the posterior instead of taking its mean.
            generator: random source for ``sample``.

        Returns:
            (B, C, f, h, w), f = 1 + (F - 1) / r_t.
        """
        mean, logvar = self.encode_moments(video)
        if sample:
            noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
            mean = mean + torch.exp(0.5 * logvar) * noise
        return self.normalize(mean)

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """Reference image -> its one-frame latent, equal to latent frame 0 of a video starting with it.

        Args:
            image: (B, 3, H, W) in [-1, 1].

        Returns:
            (B, C, 1, h, w) normalised latents.
        """
        if not self.model.config.encoder_causal:
            raise ConfigError("encode_image needs a causal encoder (architecture.encoder_causal=true)")
        if image.ndim != 4:
            raise ConfigError(f"expected an image batch (B, 3, H, W), got shape {tuple(image.shape)}")
        return self.encode(rearrange(image, "b c h w -> b c 1 h w"))

    # ------------------------------------------------------------------------------------- decoding

    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        """Decode raw latents in one window (no normalisation, no noise, no tiling): the training path.

        Args:
            z: (B, C, f, h, w) raw latents.

        Returns:
            (B, 3, F, H, W), F = 1 + r_t·(f - 1).
        """
        self.check_latents(z)
        temb = None
        if self.decode_timestep is not None:
            temb = torch.full((z.shape[0],), self.decode_timestep, device=z.device, dtype=self.model.dtype)
        return self.model.decode(z.to(self.model.dtype), temb).sample

    def decode(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Normalised latents -> video, in temporal tiles when f > ``tile_frames``.

        Args:
            z: (B, C, f, h, w) normalised latents.
            generator: random source of the decode noise of a timestep-conditioned decoder.

        Returns:
            (B, 3, F, H, W), F = 1 + r_t·(f - 1).
        """
        self.check_latents(z)
        batch, _, frames, height, width = z.shape
        ratio = self.spatial_ratio
        video = None
        for pixels, chunk in self.stream_decode(z, generator):
            if video is None:  # allocated once: the output is the only thing that grows with f
                size = (batch, chunk.shape[1], pixel_frames(frames, self.temporal_ratio), height * ratio,
                        width * ratio)
                video = chunk.new_empty(size)
            video[:, :, pixels] = chunk
        return video

    def stream_decode(
        self, z: torch.Tensor, generator: torch.Generator | None = None
    ) -> Iterator[tuple[slice, torch.Tensor]]:
        """Decode window by window, yielding ``(pixel frames, video chunk)`` in order.

        Args:
            z: (B, C, f, h, w) normalised latents.
            generator: random source of the decode noise of a timestep-conditioned decoder.

        Yields:
            the slice of output frames and the chunk (B, 3, F_chunk, H, W) that fills it.
        """
        self.check_latents(z)
        raw = self._mix_decode_noise(self.denormalize(z), generator)
        for tile in temporal_tiles(z.shape[2], self.tile_frames, self.tile_context, self.temporal_ratio):
            yield tile.pixels, self.decode_raw(raw[:, :, tile.latents])[:, :, tile.keep]

    def _mix_decode_noise(self, z: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        # Drawn once for the whole sequence, so tiled and untiled decoding see the same noise.
        if not self.decode_noise_scale:
            return z
        noise = torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
        return (1.0 - self.decode_noise_scale) * z + self.decode_noise_scale * noise

    # ------------------------------------------------------------------------------------------ saving

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write the VAE (config + safetensors, statistics included) so ``vae.pretrained=folder`` loads it.

        The folder appears whole or not at all: it is written under a temporary name and renamed.
        """
        with atomic_folder(folder) as tmp:
            self.model.save_pretrained(tmp, safe_serialization=True)
        return Path(folder)


def _resolve_local(pretrained: str | None) -> str | None:
    """An existing local folder as an absolute path (a reference must not depend on the working folder)."""
    if pretrained is not None and Path(pretrained).expanduser().is_dir():
        return str(Path(pretrained).expanduser().resolve())
    return pretrained


def _check_decode_keys(
    conditioned: bool, timestep: float | None, noise_scale: float | None
) -> tuple[float | None, float]:
    if conditioned and timestep is None:
        raise ConfigError(
            "decode_timestep=None but this VAE's decoder is timestep-conditioned (LTX 0.9.1+): set decode_timestep "
            "(Lightricks use 0.05) and decode_noise_scale (0.025)"
        )
    if noise_scale is not None:
        checks.number("decode_noise_scale", noise_scale, minimum=0.0, maximum=1.0)
    if not conditioned and (timestep is not None or noise_scale):
        name, value = ("decode_timestep", timestep) if timestep is not None else ("decode_noise_scale", noise_scale)
        raise ConfigError(f"{name}={value}: this VAE's decoder is not timestep-conditioned; set decode_timestep "
                          "and decode_noise_scale to null")
    return timestep, noise_scale or 0.0


def build_random(architecture: dict[str, Any], seed: int, logvar_init: float | None) -> AutoencoderKLLTXVideo:
    """A randomly initialised VAE from explicit ``AutoencoderKLLTXVideo`` arguments, reproducible from ``seed``."""
    # fork_rng: seeding must not change the caller's global random stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            model = AutoencoderKLLTXVideo(**architecture)
        except (TypeError, ValueError, IndexError) as err:
            raise ConfigError(f"architecture={architecture} is not a valid AutoencoderKLLTXVideo config "
                              f"({one_line(err)})") from err
    if logvar_init is not None:
        # The encoder's last output channel is the log-variance shared by all latent channels.
        conv = model.encoder.conv_out.conv
        with torch.no_grad():
            conv.weight[-1].zero_()
            conv.bias[-1].fill_(logvar_init)
    return model


def load_pretrained(pretrained: str, subfolder: str | None) -> AutoencoderKLLTXVideo:
    """Load a hub id or a local ``save_pretrained`` folder (safetensors only, every weight present).

    Raises:
        CheckpointError: one line naming the checkpoint, where it comes from and the config key.
    """
    local = Path(pretrained).expanduser()
    where = f"{pretrained!r}" + (f" (subfolder {subfolder!r})" if subfolder else "")
    if local.is_dir():
        source = "a folder written by save_pretrained (the vae stage exports one as <run>/vae)"
    elif HUB_ID.match(pretrained):
        source = f"https://huggingface.co/{pretrained}"
    else:
        raise CheckpointError(
            f"pretrained={where}: no such VAE folder; it is a folder written by save_pretrained (the vae stage "
            "exports one as <run>/vae) or a Hugging Face id such as Lightricks/LTX-Video with subfolder=vae"
        )
    try:
        model, info = AutoencoderKLLTXVideo.from_pretrained(
            str(local) if local.is_dir() else pretrained, subfolder=subfolder, use_safetensors=True,
            output_loading_info=True, local_files_only=local.is_dir(),
        )
    # Any failure (offline, missing files, wrong format) must become one actionable line.
    except Exception as err:
        raise CheckpointError(
            f"pretrained={where}: cannot load the VAE from {source} ({one_line(err)}); on a machine with network "
            "run AutoencoderKLLTXVideo.from_pretrained(ID, subfolder=...).save_pretrained(DIR) and set "
            "pretrained=DIR subfolder=null"
        ) from err
    problems = {key: info[key] for key in ("missing_keys", "unexpected_keys", "mismatched_keys") if info.get(key)}
    if problems:
        summary = "; ".join(f"{key}: {len(keys)} (e.g. {list(keys)[0]})" for key, keys in problems.items())
        raise CheckpointError(f"pretrained={where}: the VAE from {source} does not match its config ({summary}); "
                              "re-export it with save_pretrained")
    return model


@torch.no_grad()
def temporal_reach(vae: VideoVAE, z: torch.Tensor, frame: int, delta: float = 1.0) -> list[float]:
    """How far the decoder carries a change in one latent frame: max |change| of the pixels by latent distance.

    Latent frame ``frame`` of the normalised latents z (1, C, f, h, w) moves by ``delta`` (in units of the
    latents' std) and both versions are decoded in one window. Entry d of the result is the largest absolute pixel
    change in the pixel frames of the latent frames ``frame - d`` and ``frame + d`` (0: its own frames). The
    smallest d past which the change stays below what a tile may differ by is the ``tile_context`` that makes
    tiled decoding match one window to that tolerance.
    """
    moved = z.clone()
    moved[:, :, frame] += delta
    change = (vae.decode_raw(vae.denormalize(moved)) - vae.decode_raw(vae.denormalize(z))).abs()  # (1, 3, F, H, W)
    reach = []
    for distance in range(z.shape[2]):
        frames = [j for j in (frame - distance, frame + distance) if 0 <= j < z.shape[2]]
        if not frames:
            break
        reach.append(max(change[:, :, pixel_span(j, vae.temporal_ratio)].max().item() for j in frames))
    return reach
