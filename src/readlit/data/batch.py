"""The batch contract: what every readlit datamodule yields, as TypedDicts.

Two kinds of batches:

- **pixel clips**: :class:`ClipBatch` from the HDTF / MEAD datamodules (:mod:`readlit.data.av_base`),
  :class:`SyntheticClipBatch` from the synthetic one (:mod:`readlit.data.synthetic_datamodule`);
- **latent-cache batches**: :class:`LatentBatch` from any datamodule given ``data.latents``
  (:mod:`readlit.data.latent_cache`): the VAE latents replace ``video`` and ``ref``, every other tensor field stays.

A dataset's ``__getitem__`` returns one sample, the matching ``*Item``: the batch without B (each tensor without its
leading B, ``fps`` an int, ``clip_id`` a str). DataLoader's default collation turns items into the batch.

Each tensor field is ``Annotated`` with its shape and dtype (the tests check real batches against them). Shape
letters: B batch, C latent channels, F pixel frames (1 + 8k), f latent frames (1 + k), H W pixel size, h w latent
size, Hw window rows per frame (Whisper tokens × hidden states), Da Whisper width, A audio samples of the clip's
frames (F · sample_rate / fps, sample 0 at frame 0); the glossary is docs/design.md §2.
"""

from typing import Annotated, NotRequired, TypedDict

import torch
from torch import Tensor

F32, I64 = torch.float32, torch.int64


class ClipItem(TypedDict):
    """One window of a clip, from HDTF, MEAD or the synthetic data."""

    audio: Annotated[Tensor, "A", F32]  # mono waveform
    fps: int  # video frame rate
    clip_id: str  # "<clip>_f<first frame:05d>"
    audio_windows: NotRequired[Annotated[Tensor, "F Hw Da", F32]]  # Whisper windows, with an audio front end
    video: NotRequired[Annotated[Tensor, "3 F H W", F32]]  # RGB in [-1, 1], with return_video
    ref: NotRequired[Annotated[Tensor, "3 H W", F32]]  # a frame of the same clip in [-1, 1], with return_video


class SyntheticClipItem(ClipItem):
    """One synthetic clip: a :class:`ClipItem` plus what only a rendered face can know."""

    mouth_open: Annotated[Tensor, "F", F32]  # true mouth opening of each frame, in [0, 1]
    mouth_mask: NotRequired[Annotated[Tensor, "H W", F32]]  # 1 where the mouth can be, with return_video
    identity: NotRequired[int]  # the face's identity number
    data_seed: NotRequired[int]  # the dataset seed, which with the identity fixes the face
    past_video: NotRequired[Annotated[Tensor, "3 P H W", F32]]  # the P frames before the clip, with past_frames
    past_audio_windows: NotRequired[Annotated[Tensor, "P Hw Da", F32]]  # their Whisper windows, with past_frames


class LatentItem(TypedDict):
    """One item of a latent cache: the VAE latents of a clip item and its other fields."""

    latents: Annotated[Tensor, "C f h w", F32]  # normalised posterior mean of ``video``
    ref_latent: Annotated[Tensor, "C 1 h w", F32]  # normalised posterior mean of ``ref``
    audio: Annotated[Tensor, "A", F32]
    fps: int
    clip_id: str
    audio_windows: NotRequired[Annotated[Tensor, "F Hw Da", F32]]
    mouth_open: NotRequired[Annotated[Tensor, "F", F32]]  # synthetic data
    mouth_mask: NotRequired[Annotated[Tensor, "H W", F32]]  # synthetic data
    identity: NotRequired[int]  # synthetic data
    data_seed: NotRequired[int]  # synthetic data


class ClipBatch(TypedDict):
    """A batch of :class:`ClipItem`."""

    audio: Annotated[Tensor, "B A", F32]
    fps: Annotated[Tensor, "B", I64]
    clip_id: list[str]
    audio_windows: NotRequired[Annotated[Tensor, "B F Hw Da", F32]]
    video: NotRequired[Annotated[Tensor, "B 3 F H W", F32]]
    ref: NotRequired[Annotated[Tensor, "B 3 H W", F32]]


class SyntheticClipBatch(ClipBatch):
    """A batch of :class:`SyntheticClipItem`."""

    mouth_open: Annotated[Tensor, "B F", F32]
    mouth_mask: NotRequired[Annotated[Tensor, "B H W", F32]]
    identity: NotRequired[Annotated[Tensor, "B", I64]]
    data_seed: NotRequired[Annotated[Tensor, "B", I64]]
    past_video: NotRequired[Annotated[Tensor, "B 3 P H W", F32]]
    past_audio_windows: NotRequired[Annotated[Tensor, "B P Hw Da", F32]]


class LatentBatch(TypedDict):
    """A batch of :class:`LatentItem`."""

    latents: Annotated[Tensor, "B C f h w", F32]
    ref_latent: Annotated[Tensor, "B C 1 h w", F32]
    audio: Annotated[Tensor, "B A", F32]
    fps: Annotated[Tensor, "B", I64]
    clip_id: list[str]
    audio_windows: NotRequired[Annotated[Tensor, "B F Hw Da", F32]]
    mouth_open: NotRequired[Annotated[Tensor, "B F", F32]]
    mouth_mask: NotRequired[Annotated[Tensor, "B H W", F32]]
    identity: NotRequired[Annotated[Tensor, "B", I64]]
    data_seed: NotRequired[Annotated[Tensor, "B", I64]]
