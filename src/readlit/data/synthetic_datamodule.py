"""Synthetic talking-head clips (``data=synthetic``), the embedded default that needs no download.

Each identity talks for a few sessions; clips of F = 1 + 8k frames are cut from the sessions on a fixed
grid, so every index always gives the same clip. Identities are split into train / val / test, so
held-out clips show unseen faces with unseen speech. Whisper hidden states are computed once per session
at set-up; windows are cut per clip on the fly. Video frames are rendered on the fly only when asked
for, so audio-only stages never pay for them.

Batches are :class:`~readlit.data.batch.SyntheticClipBatch`: ``audio``, ``mouth_open``, ``fps``, ``clip_id``,
``identity`` and ``data_seed``, ``audio_windows`` when an audio front-end is given and, with ``return_video``,
``video``, ``ref`` and ``mouth_mask``. ``identity`` (the identity number) and ``data_seed`` (the dataset seed) name
the drawn face exactly: ``make_identity(data_seed, identity)``, which the mouth-sync measure needs.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from readlit import checks
from readlit.audio import WhisperFrontEnd, check_frontend
from readlit.data.base import SplitDataModule, to_video
from readlit.data.batch import SyntheticClipItem
from readlit.data.synthetic import MIN_SIZE, Identity, Session, make_identity, make_session, mouth_box, render_frames
from readlit.errors import ConfigError, scope
from readlit.frames import check_frame_count

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class ClipIndex:
    session: int  # position in the dataset's session list
    start: int    # first video frame within the session


class SyntheticTalkingHeads(Dataset):
    """Clips of synthetic talking heads for a fixed list of identities.

    Args:
        seed: dataset seed; with the identity and session numbers it fixes every sample.
        identities: identity numbers in this split.
        sessions_per_identity: sessions (continuous takes) per identity.
        session_frames: frames per session.
        num_frames: F, frames per clip (1 + 8k).
        clip_stride: frames between consecutive clip starts within a session.
        size: rendered frame size (square).
        fps: video frame rate.
        sample_rate: audio sample rate.
        return_video: render ``video``, ``ref`` and ``mouth_mask`` (H, W), 1 where the mouth can be.
        ref_distance: frames between the clip's middle frame and its reference frame (same session).
        frontend: Whisper front-end for ``audio_windows``, or None to leave them out.
        past_frames: also give the P frames before each clip (``past_video`` with ``return_video``,
            ``past_audio_windows`` with a front end), for training the motion frame as inference sees it
            (:class:`~readlit.lit.a2v_module.A2VLitModule` ``motion_context``); clips then start at frame P or later.
    """

    def __init__(self, seed: int, identities: list[int], sessions_per_identity: int, session_frames: int,
                 num_frames: int, clip_stride: int, size: int, fps: int, sample_rate: int,
                 return_video: bool, ref_distance: int, frontend: WhisperFrontEnd | None, past_frames: int = 0):
        self.seed, self.num_frames, self.size, self.fps = seed, num_frames, size, fps
        self.samples_per_frame = sample_rate // fps
        self.return_video, self.ref_distance, self.past_frames = return_video, ref_distance, past_frames
        self.faces: list[Identity] = []
        self.sessions: list[Session] = []
        self.identity_numbers: list[int] = []  # per session
        for identity in identities:
            face = make_identity(seed, identity)
            for number in range(sessions_per_identity):
                self.faces.append(face)
                self.sessions.append(make_session(seed, face, number, session_frames, fps, sample_rate))
                self.identity_numbers.append(identity)
        self.names = [f"id{i:04d}_s{n:02d}" for i in identities for n in range(sessions_per_identity)]
        starts = range(past_frames, session_frames - num_frames + 1, clip_stride)
        self.clips = [ClipIndex(s, start) for s in range(len(self.sessions)) for start in starts]
        self.frontend = frontend
        self.hidden = [] if frontend is None else [
            frontend.hidden(torch.from_numpy(session.audio))
            for session in tqdm(self.sessions, desc="whisper features", leave=False)
        ]

    def __len__(self) -> int:
        return len(self.clips)

    def identity(self, index: int) -> Identity:
        """The face drawn in item ``index`` (the mouth measure needs its palette and geometry)."""
        return self.faces[self.clips[index].session]

    def __getitem__(self, index: int) -> SyntheticClipItem:
        """One clip (:class:`~readlit.data.batch.SyntheticClipItem`)."""
        clip = self.clips[index]
        session, span = self.sessions[clip.session], slice(clip.start, clip.start + self.num_frames)
        audio = session.audio[span.start * self.samples_per_frame: span.stop * self.samples_per_frame]
        item: SyntheticClipItem = {
            "audio": torch.from_numpy(audio.copy()),
            "mouth_open": torch.from_numpy(session.mouth_open[span].copy()),
            "fps": self.fps,
            "clip_id": f"{self.names[clip.session]}_f{clip.start:05d}",
            "identity": self.identity_numbers[clip.session],
            "data_seed": self.seed,
        }
        if self.frontend is not None:
            item["audio_windows"] = self.frontend.frame_windows(self.hidden[clip.session], self.num_frames,
                                                                clip.start)
        if self.return_video:
            item.update(self._render(clip))
        if self.past_frames:
            item.update(self._past(clip))
        return item

    def _past(self, clip: ClipIndex) -> dict[str, torch.Tensor]:
        """The P frames before the clip: ``past_video`` (3, P, H, W) and ``past_audio_windows`` (P, Hw, Da)."""
        first, past = clip.start - self.past_frames, {}
        if self.frontend is not None:
            past["past_audio_windows"] = self.frontend.frame_windows(self.hidden[clip.session], self.past_frames,
                                                                     first)
        if self.return_video:
            frames = render_frames(self.faces[clip.session], self.sessions[clip.session], first, self.past_frames,
                                   self.size)
            past["past_video"] = to_video(frames)
        return past

    def _render(self, clip: ClipIndex) -> dict[str, torch.Tensor]:
        face, session = self.faces[clip.session], self.sessions[clip.session]
        frames = render_frames(face, session, clip.start, self.num_frames, self.size)
        ref_frame = (clip.start + self.num_frames // 2 + self.ref_distance) % len(session.mouth_open)
        ref = render_frames(face, session, ref_frame, 1, self.size)
        return {"video": to_video(frames), "ref": to_video(ref)[:, 0], "mouth_mask": self._mouth_mask(face)}

    def _mouth_mask(self, face: Identity) -> torch.Tensor:
        """(H, W) float32, 1 on the pixels the mouth can reach (:func:`mouth_box`), for mouth-weighted losses."""
        mask = torch.zeros(self.size, self.size)
        mask[mouth_box(face, self.size, self.size)] = 1.0
        return mask


class SyntheticDataModule(SplitDataModule):
    """Train / val / test splits of :class:`SyntheticTalkingHeads`, disjoint by identity.

    Args:
        identities: number of identities per split, e.g. ``{train: 32, val: 4, test: 4}``; identity
            numbers are consecutive in split order, so no identity is in two splits.
        session_seconds: length of each session.
        audio_frontend: factory for the Whisper front-end (a Hydra partial, built at set-up so that
            a config problem elsewhere is reported before a model is loaded), or None.
        batch_size, num_workers, shuffle, pin_memory: DataLoader settings (shuffle: train only).
        latents: read the splits from this latent cache instead (see :class:`~readlit.data.base.SplitDataModule`).
        stream_shuffle: shuffle buffer of a latent cache streamed from a URL.
        Other arguments as in :class:`SyntheticTalkingHeads`.
    """

    def __init__(self, seed: int, identities: dict[str, int], sessions_per_identity: int,
                 session_seconds: float, num_frames: int, clip_stride: int, size: int, fps: int,
                 sample_rate: int, return_video: bool, ref_distance: int,
                 audio_frontend: Callable[[], WhisperFrontEnd] | None, batch_size: int, num_workers: int = 0,
                 shuffle: bool = True, pin_memory: bool = False, latents: str | None = None, past_frames: int = 0,
                 stream_shuffle: int = 256):
        super().__init__(batch_size, num_workers, shuffle, pin_memory, latents, stream_shuffle)
        check_frame_count(num_frames)
        unknown = set(identities) - set(SPLITS)
        counts = [identities.get(split, 0) for split in SPLITS]
        if unknown or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in counts):
            raise ConfigError(f"identities={dict(identities)} needs a positive count for each of {SPLITS}")
        checks.integer("seed", seed, minimum=0)
        checks.integer("sessions_per_identity", sessions_per_identity, minimum=1)
        checks.integer("clip_stride", clip_stride, minimum=1)
        checks.integer("size", size, minimum=MIN_SIZE)
        checks.integer("fps", fps, minimum=1)
        checks.integer("sample_rate", sample_rate, minimum=1)
        if sample_rate % fps:
            raise ConfigError(f"sample_rate={sample_rate} is not a multiple of fps={fps}: frames would not start on "
                              "whole samples")
        checks.integer("ref_distance", ref_distance)
        checks.integer("past_frames", past_frames, minimum=0)
        checks.flag("return_video", return_video)
        self.session_frames = round(checks.number("session_seconds", session_seconds, above=0.0) * fps)
        if self.session_frames < num_frames + past_frames:
            raise ConfigError(f"session_seconds={session_seconds} is shorter than one clip of num_frames={num_frames} "
                              f"(+ past_frames={past_frames}) frames at {fps} fps")
        with scope("audio_frontend"):
            check_frontend(audio_frontend)
        self.seed, self.identities = seed, dict(identities)
        self.dataset_args = dict(sessions_per_identity=sessions_per_identity, session_frames=self.session_frames,
                                 num_frames=num_frames, clip_stride=clip_stride, size=size, fps=fps,
                                 sample_rate=sample_rate, return_video=return_video, ref_distance=ref_distance,
                                 past_frames=past_frames)
        self.audio_frontend = audio_frontend
        self.frontend: WhisperFrontEnd | None = None
        self.check_latents()

    def split_identities(self, split: str) -> list[int]:
        """Identity numbers of one split."""
        first = sum(self.identities[name] for name in SPLITS[: SPLITS.index(split)])
        return list(range(first, first + self.identities[split]))

    def item_settings(self) -> dict[str, Any]:
        settings = {key: value for key, value in self.dataset_args.items() if key != "return_video"}
        return {"dataset": "synthetic", "seed": self.seed, "identities": self.identities, **settings}

    def setup(self, stage: str | None = None) -> None:
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), None: SPLITS}
        if self.latents is not None:
            self.setup_latents(wanted.get(stage, SPLITS))
            return
        if self.frontend is None and self.audio_frontend is not None:
            with scope("audio_frontend"):
                self.frontend = self.audio_frontend()
        for split in wanted.get(stage, SPLITS):
            if split not in self.datasets:
                self.datasets[split] = SyntheticTalkingHeads(
                    self.seed, self.split_identities(split), frontend=self.frontend, **self.dataset_args)
