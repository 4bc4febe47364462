"""Audio latents of a whole waveform, computed only as far as the clips asked for so far reach.

A streamed video's first clip must not wait for the audio front end of the whole speech (issue #17: the time to
the first clip must not grow with the audio). Two facts make a lazy front end give the numbers of an eager one:

- The Whisper front end encodes 30 s chunks independently (:mod:`readlit.audio`), so chunk q's hidden states are
  final once chunk q is encoded, and the windows of frames 0 .. F - 1 need the tokens up to
  :func:`~readlit.audio.tokens_through` only.
- Every audio encoder is causal over frames (:mod:`readlit.nn.speech_ae`, :mod:`readlit.nn.audio_projection`):
  latent frame k sees pixel frames <= r·k, so the latents of frames 0 .. L - 1 computed from the windows of the
  first 1 + r·(L - 1) pixel frames are those of the whole audio (to float rounding: convolutions over longer
  inputs may sum in another order).

The encoder is rerun from frame 0 each time more latents are needed, to a length at least double the last, so the
whole video costs at most about twice one eager pass while the first clip pays for its own frames and one chunk.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from einops import rearrange

from readlit.audio import WhisperFrontEnd, tokens_through
from readlit.frames import pixel_frames


class AudioLatents:
    """The audio latents (1, N, hw, da) of a padded waveform, sliced by latent frames and computed on demand.

    Args:
        frontend: the Whisper front end.
        encode_audio: windows (B, F, Hw, Da) -> audio latents (B, f, hw, da), causal over frames.
        waveform: (A,) the waveform, already padded to the pixel frames of ``num_latent`` latent frames.
        num_latent: N, the latent frames the waveform covers.
        temporal_ratio: r of the video VAE.
        device: where the encoder runs.
    """

    def __init__(self, frontend: WhisperFrontEnd, encode_audio: Callable[[torch.Tensor], torch.Tensor],
                 waveform: torch.Tensor, num_latent: int, temporal_ratio: int, device: torch.device) -> None:
        self.frontend = frontend
        self.encode_audio = encode_audio
        self.waveform = waveform
        self.num_latent = num_latent
        self.temporal_ratio = temporal_ratio
        self.device = device
        self._hidden: list[torch.Tensor] = []  # one (tokens, E, Da) per encoded 30 s chunk
        self._latents: torch.Tensor | None = None

    @property
    def computed(self) -> int:
        """Latent frames computed so far."""
        return 0 if self._latents is None else self._latents.shape[1]

    def __len__(self) -> int:
        return self.num_latent

    def __getitem__(self, frames: slice) -> torch.Tensor:
        """Latents (1, len, hw, da) of latent frames ``frames`` (a slice with a stop, step 1)."""
        if frames.step not in (None, 1) or frames.stop is None:
            raise ValueError(f"frames={frames}: a slice with a stop and step 1 is expected")
        stop = min(frames.stop, self.num_latent)
        if stop > self.computed:
            self._encode(min(self.num_latent, max(stop, 2 * self.computed)))
        return self._latents[:, frames.start: stop]

    def all(self) -> torch.Tensor:
        """Latents of every latent frame (1, N, hw, da)."""
        return self[0: self.num_latent]

    def _encode(self, latent: int) -> None:
        frames = pixel_frames(latent, self.temporal_ratio)
        tokens = tokens_through(frames, self.frontend.window_tokens, self.frontend.tokens_per_frame)
        windows = self.frontend.frame_windows(self._hidden_through(tokens), frames)
        self._latents = self.encode_audio(rearrange(windows, "f k d -> 1 f k d").to(self.device))

    def _hidden_through(self, tokens: int) -> torch.Tensor:
        """Hidden states (S', E, Da) of whole chunks, as many as reach token ``tokens`` or the audio's end."""
        chunk, per_chunk = self.frontend.chunk_samples, self.frontend.tokens_per_chunk
        chunks = -(-len(self.waveform) // chunk)
        while len(self._hidden) < min(chunks, -(-tokens // per_chunk)):
            q = len(self._hidden)
            self._hidden.append(self.frontend.hidden(self.waveform[q * chunk: (q + 1) * chunk]))
        return torch.cat(self._hidden)
